//! Bind lists of every node sharing the Redis: each node with an admin listener
//! publishes its own, and `/api/binds` on any node shows them all.
//!
//! ```text
//! <key_prefix>binds:<node_id>   string, JSON NodeBinds, PX BIND_LIST_TTL
//! <key_prefix>binds:nodes       set of the node_ids that published
//! ```
//!
//! A node republishes when a bind comes or goes and every [`HEARTBEAT`] (so that its
//! entry outlives it by at most [`BIND_LIST_TTL`] after a crash); the set is pruned by
//! readers of members whose key has expired. These keys are the admin API's, outside
//! the message store's layout (`store/`): nothing there reads them.

use std::time::Duration;

use crate::store::redis::connection::Conn;
use chrono::Utc;
use tokio_util::sync::CancellationToken;

use super::api::{Bind, NodeBinds};
use crate::session::SessionRegistry;
use crate::store::Store;

/// How often a node republishes its bind list without a change.
pub const HEARTBEAT: Duration = Duration::from_secs(10);
/// How long a published list lives without being refreshed.
pub const BIND_LIST_TTL: Duration = Duration::from_secs(30);
/// How long one publication or read may take.
const REDIS_TIMEOUT: Duration = Duration::from_secs(2);

// One hash tag for both keys: the list and a node's entry are written in one
// pipeline, which a cluster sends to one slot.
fn node_key(prefix: &str, node: &str) -> String {
    format!("{prefix}{{binds}}:node:{node}")
}

fn nodes_key(prefix: &str) -> String {
    format!("{prefix}{{binds}}:nodes")
}

/// This node's binds as the API shows them.
pub fn local_binds(node: &str, registry: &SessionRegistry) -> Vec<Bind> {
    registry.binds().iter().map(|b| Bind::of(node, b)).collect()
}

/// Publishes this node's bind list until `stop`, then removes it.
pub async fn publish(
    store: Store,
    registry: std::sync::Arc<SessionRegistry>,
    node: String,
    stop: CancellationToken,
) {
    let prefix = store.key_prefix().to_owned();
    let mut conn = store.redis();
    let mut changes = registry.changes();
    let mut heartbeat = tokio::time::interval(HEARTBEAT);
    heartbeat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let list = NodeBinds {
            node: node.clone(),
            published_at: Utc::now(),
            binds: local_binds(&node, &registry),
        };
        if let Err(e) = write(&mut conn, &prefix, &list).await {
            tracing::debug!(error = %e, "admin: bind list not published");
        }
        tokio::select! {
            _ = stop.cancelled() => break,
            _ = heartbeat.tick() => {}
            changed = changes.changed() => if changed.is_err() { break },
        }
    }
    let mut pipe = redis::pipe();
    pipe.del(node_key(&prefix, &node))
        .srem(nodes_key(&prefix), &node);
    let _ = tokio::time::timeout(REDIS_TIMEOUT, pipe.query_async::<()>(&mut conn)).await;
}

async fn write(conn: &mut Conn, prefix: &str, list: &NodeBinds) -> Result<(), String> {
    let json = serde_json::to_string(list).map_err(|e| e.to_string())?;
    let ttl = BIND_LIST_TTL.as_millis() as u64;
    let mut pipe = redis::pipe();
    pipe.cmd("SET")
        .arg(node_key(prefix, &list.node))
        .arg(json)
        .arg("PX")
        .arg(ttl)
        .ignore()
        .sadd(nodes_key(prefix), &list.node)
        .ignore();
    tokio::time::timeout(REDIS_TIMEOUT, pipe.query_async::<()>(conn))
        .await
        .map_err(|_| format!("no answer within {REDIS_TIMEOUT:?}"))?
        .map_err(|e| e.to_string())
}

/// The bind lists other nodes published (not `own`), by node name.
pub async fn others(store: &Store, own: &str) -> Result<Vec<NodeBinds>, String> {
    let prefix = store.key_prefix();
    let mut conn = store.redis();
    let read = async {
        let nodes: Vec<String> = redis::cmd("SMEMBERS")
            .arg(nodes_key(prefix))
            .query_async(&mut conn)
            .await?;
        let nodes: Vec<String> = nodes.into_iter().filter(|n| n != own).collect();
        if nodes.is_empty() {
            return Ok::<_, redis::RedisError>(Vec::new());
        }
        let keys: Vec<String> = nodes.iter().map(|n| node_key(prefix, n)).collect();
        let values: Vec<Option<String>> =
            redis::cmd("MGET").arg(&keys).query_async(&mut conn).await?;
        let gone: Vec<&String> = nodes
            .iter()
            .zip(&values)
            .filter(|(_, v)| v.is_none())
            .map(|(n, _)| n)
            .collect();
        if !gone.is_empty() {
            redis::cmd("SREM")
                .arg(nodes_key(prefix))
                .arg(&gone)
                .query_async::<()>(&mut conn)
                .await?;
        }
        Ok(values.into_iter().flatten().collect())
    };
    let values = tokio::time::timeout(REDIS_TIMEOUT, read)
        .await
        .map_err(|_| format!("Redis did not answer within {REDIS_TIMEOUT:?}"))?
        .map_err(|e| format!("Redis: {e}"))?;
    let mut lists: Vec<NodeBinds> = values
        .iter()
        .filter_map(|v| match serde_json::from_str(v) {
            Ok(l) => Some(l),
            Err(e) => {
                tracing::debug!(error = %e, "admin: unreadable bind list in Redis");
                None
            }
        })
        .collect();
    lists.sort_by(|a, b| a.node.cmp(&b.node));
    Ok(lists)
}
