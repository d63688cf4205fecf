//! The expiry subscriber on a Redis/Valkey Cluster.
//!
//! Keyspace events are node-local: a primary publishes only its own keys'
//! `expired`/`hexpired`, and a replica none until it is promoted — then at once, on
//! connections it already had. So the subscriber holds one connection per node,
//! primaries and replicas, each subscribed to the keyspace-event channels; the shard
//! channels of a partition (`armed`, `receipts`) are subscribed on the node serving it
//! (its primary, or while that is down its replica).
//!
//! The nodes come from `CLUSTER NODES`, read at start and again whenever a node's
//! connection ends or a node drops our shard subscriptions (a slot moved away:
//! `sunsubscribe`). Connections that still work are kept across such a change, so
//! only the partitions whose serving node changed, or whose node connection is new,
//! get a recovery pass (events sent while nobody listened are lost). A partition with
//! no reachable node is tried again after a pause (growing to 2 s) until one serves
//! it. There is no periodic scan.

use std::collections::HashMap;
use std::time::Duration;

use redis::aio::MultiplexedConnection;
use redis::{PushInfo, PushKind};
use tokio::sync::mpsc;

use super::Subscriber;
use crate::store::receipts::announce::DispatchEvent;
use crate::store::redis::partition;
use crate::store::redis::topology::{self, Topology};
use crate::store::Counter;
use crate::store::StoreError;

/// A node's subscription connection and the partitions whose shard channels it holds.
struct NodeSub {
    conn: MultiplexedConnection,
    parts: u64,
}

/// Why the event loop handed back to the supervisor.
enum Change {
    /// A node's connection ended.
    Lost(String),
    /// A node dropped shard subscriptions (its slots moved).
    Moved,
}

pub(super) async fn serve(sub: &Subscriber<'_>) {
    let inner = sub;
    let (tx, mut pushes) = mpsc::unbounded_channel::<(String, PushInfo)>();
    let mut nodes: HashMap<String, NodeSub> = HashMap::new();
    // The node serving each partition's shard channels, as last subscribed.
    let mut serving: Vec<Option<String>> = vec![None; partition::COUNT];
    // Each partition's reachable primary, as the store's connection was made for.
    let mut owners: Option<Vec<Option<String>>> = None;
    let mut pause = Duration::from_millis(50);
    // A subscription to count: the first, and each after a node connection was lost
    // (counted once every node is subscribed again).
    let mut to_count = true;
    let mut first = true;
    loop {
        if inner.shutdown.is_cancelled() {
            return;
        }
        let round = reconcile(sub, &mut nodes, &mut serving, &mut owners, &tx, &mut pushes);
        let retry = match round.await {
            Ok((recover, settled)) => {
                if to_count && (first || settled) {
                    inner.counters.add(Counter::Subscriptions, 1);
                    to_count = false;
                }
                first = false;
                inner
                    .counters
                    .set(Counter::ExpirySubscribed, u64::from(settled));
                if let Err(e) = recover_parts(sub, recover).await {
                    tracing::warn!(error = %e, "cluster recovery pass failed");
                    // Tried again for these partitions at the next round.
                    forget(&mut serving, recover);
                    true
                } else {
                    // A primary down and not yet replaced: look again until one is
                    // (promotion sends us nothing).
                    !settled
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "cluster expiry subscriber: topology not read");
                true
            }
        };
        let wait = if retry {
            let p = pause;
            pause = (pause * 2).min(Duration::from_secs(2));
            Some(p)
        } else {
            pause = Duration::from_millis(50);
            None
        };
        match events(sub, &mut pushes, wait).await {
            None => return,
            Some(Some(Change::Lost(node))) => {
                tracing::warn!(node, "expiry subscriber lost a node's connection");
                if let Some(gone) = nodes.remove(&node) {
                    forget(&mut serving, gone.parts);
                }
                to_count = true;
            }
            Some(Some(Change::Moved)) | Some(None) => {}
        }
    }
}

/// Marks the partitions of `mask` as served by no node (re-subscribed and recovered
/// at the next reconcile).
fn forget(serving: &mut [Option<String>], mask: u64) {
    for p in partition::members(mask) {
        serving[p] = None;
    }
}

/// Handles pushes until a topology change (`Some(Some(..))`), until `wait` passes
/// (`Some(None)`), or shutdown (`None`).
async fn events(
    sub: &Subscriber<'_>,
    pushes: &mut mpsc::UnboundedReceiver<(String, PushInfo)>,
    wait: Option<Duration>,
) -> Option<Option<Change>> {
    let timer = async {
        match wait {
            Some(d) => tokio::time::sleep(d).await,
            None => std::future::pending().await,
        }
    };
    tokio::pin!(timer);
    loop {
        let (node, push) = tokio::select! {
            m = pushes.recv() => m?,
            _ = &mut timer => return Some(None),
            _ = sub.shutdown.cancelled() => return None,
        };
        match push.kind {
            PushKind::Disconnection => return Some(Some(Change::Lost(node))),
            PushKind::SUnsubscribe => return Some(Some(Change::Moved)),
            PushKind::Subscribe | PushKind::SSubscribe => {}
            _ => sub.event(push).await,
        }
    }
}

/// Brings the subscriptions in line with the cluster: a connection per reachable node,
/// each partition's shard channels on its serving node; new store connections when a
/// partition's primary changed. Returns the partitions to recover, and whether every
/// partition has a reachable primary and a subscription.
async fn reconcile(
    sub: &Subscriber<'_>,
    nodes: &mut HashMap<String, NodeSub>,
    serving: &mut [Option<String>],
    owners: &mut Option<Vec<Option<String>>>,
    tx: &mpsc::UnboundedSender<(String, PushInfo)>,
    pushes: &mut mpsc::UnboundedReceiver<(String, PushInfo)>,
) -> Result<(u64, bool), StoreError> {
    let inner = sub;
    let timeout = inner.settings.redis_timeout;
    let conns = nodes.values().map(|n| n.conn.clone()).collect();
    let topo = match Topology::read_any(conns, timeout).await {
        Ok(t) => t,
        Err(_) => Topology::read(&mut inner.conn.get()).await?,
    };
    let now = topo.healthy_owners();
    if owners.as_ref().is_some_and(|before| *before != now) {
        tracing::info!("cluster: partitions changed primary; new store connections");
        let live: Vec<redis::ConnectionInfo> = topo
            .nodes
            .iter()
            .filter(|n| n.healthy && n.primary)
            .filter_map(|n| topology::node_info(&inner.settings.redis_url, n).ok())
            .collect();
        crate::store::redis::connection::reconnect(inner.settings, inner.conn, inner.acked, &live)
            .await?;
    }
    let owned = now.iter().all(Option::is_some);
    *owners = Some(now);
    clock_spread(sub, &topo, nodes).await;
    // Nodes gone from the cluster or failed: drop their connections.
    nodes.retain(|addr, ns| {
        let keep = topo.nodes.iter().any(|n| n.healthy && n.addr() == *addr);
        if !keep {
            forget(serving, ns.parts);
        }
        keep
    });
    let mut recover = 0u64;
    for node in topo.nodes.iter().filter(|n| n.healthy) {
        let addr = node.addr();
        if nodes.contains_key(&addr) {
            continue;
        }
        match connect(sub, node, tx).await {
            Ok(conn) => {
                // Events of this node's partitions may have been missed.
                recover |= owned_mask(&topo, &addr);
                nodes.insert(addr, NodeSub { conn, parts: 0 });
            }
            Err(e) => {
                tracing::warn!(node = addr, error = %e, "expiry subscriber: node not reachable")
            }
        }
    }
    let mut uncovered = 0u64;
    let mut asked: HashMap<String, Vec<usize>> = HashMap::new();
    for (p, served) in serving.iter_mut().enumerate() {
        let Some(addr) = topo
            .serving(p)
            .map(topology::Node::addr)
            .filter(|a| nodes.contains_key(a))
        else {
            uncovered |= 1 << p;
            continue;
        };
        if served.as_deref() != Some(addr.as_str()) {
            recover |= 1 << p;
            if let Some(old) = served.as_ref().and_then(|o| nodes.get_mut(o)) {
                old.parts &= !(1 << p);
            }
            asked.entry(addr.clone()).or_default().push(p);
            *served = Some(addr);
        }
    }
    for (addr, parts) in asked {
        let Some(ns) = nodes.get_mut(&addr) else {
            continue;
        };
        if let Err(e) = ssubscribe(sub, ns, &parts, pushes).await {
            for p in parts {
                serving[p] = None;
            }
            return Err(e);
        }
    }
    Ok((recover, owned && uncovered == 0))
}

/// Records the primaries and the spread of their clocks (each measured over its own
/// connection), for the metrics.
async fn clock_spread(sub: &Subscriber<'_>, topo: &Topology, nodes: &mut HashMap<String, NodeSub>) {
    let counters = &sub.counters;
    counters.set(Counter::ClusterPrimaries, topo.primaries() as u64);
    let mut offsets = Vec::new();
    for n in topo.nodes.iter().filter(|n| n.primary && n.healthy) {
        if let Some(ns) = nodes.get_mut(&n.addr()) {
            if let Ok(o) = crate::store::redis::clock::offset_ms(&mut ns.conn).await {
                offsets.push(o);
            }
        }
    }
    if let (Some(lo), Some(hi)) = (offsets.iter().min(), offsets.iter().max()) {
        let spread = (hi - lo) as u64;
        if spread > 1_000 {
            tracing::warn!(
                spread_ms = spread,
                "the cluster's primaries disagree on the time"
            );
        }
        counters.set(Counter::ClockSkewMs, spread);
    }
}

/// The partitions `addr` owns as primary.
fn owned_mask(topo: &Topology, addr: &str) -> u64 {
    (0..partition::COUNT)
        .filter(|p| topo.owner(*p).is_some_and(|n| n.addr() == addr))
        .fold(0, |m, p| m | (1 << p))
}

/// A RESP3 connection to `node` whose pushes go to `tx` tagged with its address,
/// subscribed to the keyspace-event channels, with the node's
/// `notify-keyspace-events` checked (a restarted node forgets a CONFIG SET).
async fn connect(
    sub: &Subscriber<'_>,
    node: &topology::Node,
    tx: &mpsc::UnboundedSender<(String, PushInfo)>,
) -> Result<MultiplexedConnection, StoreError> {
    let inner = sub;
    let info = topology::node_info(&inner.settings.redis_url, node)?;
    let resp3 = info
        .redis_settings()
        .clone()
        .set_protocol(redis::ProtocolVersion::RESP3);
    let client =
        crate::store::redis::connection::client(inner.settings, info.set_redis_settings(resp3))?;
    let (node_tx, mut node_rx) = mpsc::unbounded_channel::<PushInfo>();
    let config = redis::AsyncConnectionConfig::new()
        .set_push_sender(node_tx)
        .set_connection_timeout(Some(inner.settings.redis_timeout))
        .set_response_timeout(Some(inner.settings.redis_timeout));
    let mut conn = client
        .get_multiplexed_async_connection_with_config(&config)
        .await?;
    // Forwarded with the node's name, so a Disconnection says whose.
    let addr = node.addr();
    let out = tx.clone();
    inner.tasks.spawn(async move {
        while let Some(p) = node_rx.recv().await {
            if out.send((addr.clone(), p)).is_err() {
                return;
            }
        }
    });
    conn.subscribe(sub.event_channels()).await?;
    if let Err(e) = crate::store::check_keyspace_events(
        &mut conn,
        inner.backend,
        inner.settings.configure_keyspace_events,
    )
    .await
    {
        match e {
            StoreError::KeyspaceEvents(_) => {
                tracing::error!(node = node.addr(), error = %e, "expiry events are off on a cluster node")
            }
            other => return Err(other),
        }
    }
    Ok(conn)
}

/// SSUBSCRIBE of `parts`' shard channels on `ns`, confirmations read from the pushes
/// (see the standalone subscriber for why not as replies); other pushes meanwhile are
/// handled as they come.
async fn ssubscribe(
    sub: &Subscriber<'_>,
    ns: &mut NodeSub,
    parts: &[usize],
    pushes: &mut mpsc::UnboundedReceiver<(String, PushInfo)>,
) -> Result<(), StoreError> {
    let inner = sub;
    let mut channels = 0;
    for p in parts {
        let pre = partition::prefix(inner.prefix(), *p);
        for ch in [format!("{pre}armed"), format!("{pre}receipts")] {
            let mut c = redis::cmd("SSUBSCRIBE");
            c.arg(ch).set_no_response(true);
            c.query_async::<()>(&mut ns.conn).await?;
            channels += 1;
        }
        ns.parts |= 1 << p;
    }
    let mut confirmed = 0;
    let mut early = Vec::new();
    while confirmed < channels {
        let push = tokio::time::timeout(inner.settings.redis_timeout, pushes.recv())
            .await
            .map_err(|_| StoreError::Corrupt("SSUBSCRIBE not confirmed in time".into()))?;
        match push {
            Some((_, p)) if p.kind == PushKind::SSubscribe => confirmed += 1,
            Some((node, p)) if p.kind == PushKind::Disconnection => {
                return Err(StoreError::Corrupt(format!(
                    "subscription connection to {node} closed"
                )))
            }
            Some((_, p)) => early.push(p),
            None => return Err(StoreError::Corrupt("subscription stream ended".into())),
        }
    }
    for p in early {
        sub.event(p).await;
    }
    Ok(())
}

/// The recovery pass for the partitions of `mask`: their due deadlines claimed, their
/// timers loaded, and the outcome writer and receipt dispatcher woken for them.
async fn recover_parts(sub: &Subscriber<'_>, mask: u64) -> Result<(), StoreError> {
    if mask == 0 {
        return Ok(());
    }
    let inner = sub;
    inner.counters.add(Counter::RecoveryPasses, 1);
    // A changed owner may have another clock.
    inner.clock.sync(&mut inner.conn.get()).await?;
    let mut claimed = 0;
    for p in partition::members(mask) {
        claimed += inner.claim.claim_due(1u64 << p).await?;
        inner
            .claim
            .timers
            .load_partition(&inner.indexes(), p)
            .await?;
    }
    if claimed > 0 {
        tracing::info!(claimed, "recovery pass claimed expired messages");
    }
    inner.claim.release_wake.wake_mask(mask);
    inner.claim.finisher_wake.wake_mask(mask);
    let _ = sub.dispatch.send(DispatchEvent::Rescan).await;
    Ok(())
}
