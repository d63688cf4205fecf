//! Expiry without polling.
//!
//! Every partition has its own deadline index `P{t}:deadlines` and its own expiry
//! timers; the trigger is a keyspace event on a timer:
//! * where the server has hash-field expiration, every timer of a partition is a field
//!   of its hash `P{t}:timers`, and the event is `hexpired` naming that key. It means
//!   "some deadline of this partition passed": a claim-due pass runs for it
//!   ([`claim_due`]: the partition's deadline index ≤ Redis time, claimed in
//!   batches). One dedicated task runs these passes; events arriving during a pass
//!   leave one wake-up and their partitions for another pass after it, so passes
//!   never overlap and no event is dropped. One hash per partition, not per message:
//!   the server finds keys with volatile fields by sampling (seconds to minutes late
//!   with many keys), but expires the fields of one key in deadline order, by time
//!   buckets — within ~1/hz for dense deadlines, at most ~8.2 s (its widest bucket
//!   window) for a deadline with few neighbours.
//! * on Redis 7.0, a key `P{t}:t:#<bucket>` per deadline bucket with `expired`
//!   events, which wake the same pass for the key's partition.
//!
//! On both, the timer heap of [`timers`] wakes the same claim-due pass at each
//! deadline, so the server's sampling (minutes late with many keys) and bucket
//! windows (seconds) only matter for a deadline no node watched.
//!
//! The group's data lives under another key and is still there. Every node receives
//! every event; the claim scripts move a group out of the pending area, so exactly one
//! node (or pass) gets it.
//!
//! Events sent while no subscriber listens are lost (pub/sub has no memory), so after
//! every (re)subscription the subscriber runs one recovery pass over every partition —
//! the same claim-due pass. There is no periodic scan.
//!
//! The same connection listens on the partitions' sharded channels: `P{t}:armed`
//! (deadlines set and groups finished, for the timer heap) and `P{t}:receipts`
//! (accounts with new receipts, for the receipt dispatcher). Sharded pub/sub needs
//! RESP3 push messages here (the crate's RESP2 pub/sub has no SSUBSCRIBE), so this
//! connection speaks RESP3 whatever the store's URL says.

use std::time::Duration;

use redis::{PushInfo, PushKind};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

mod cluster;
pub(crate) mod timers;

use crate::store::counters::Counters;
use crate::store::outcomes::backlog::Backlog;
use crate::store::receipts::announce::DispatchEvent;
use crate::store::receipts::release;
use crate::store::redis::clock::Clock;
use crate::store::redis::connection;
use crate::store::redis::partition::{self, Wake};
use crate::store::redis::scripts::Scripts;
use crate::store::Counter;
use crate::store::{ExpiryBackend, StoreError, StoreSettings};

/// Groups per claim-due round trip.
const CLAIM_DUE_BATCH: usize = 256;

/// The claim-due passes, with what they use of the store.
pub(crate) struct Claimer<'a> {
    pub settings: &'a StoreSettings,
    pub scripts: &'a Scripts,
    /// The connection for claims (followed by `ack.wait`).
    pub acked: &'a connection::Shared,
    pub ack: &'a connection::Ack,
    pub timers: &'a timers::Timers,
    /// Wakes these passes (a local timer at a deadline, or an expiry event).
    pub due_pass: &'a Wake,
    /// Claimed batches with their data, for the receipt releaser.
    pub claimed: &'a mpsc::Sender<release::Claimed>,
    pub finisher_wake: &'a Wake,
    pub release_wake: &'a Wake,
    pub backlog: &'a Backlog,
    pub counters: &'a Counters,
    pub shutdown: &'a CancellationToken,
}

/// The expiry subscriber, with what it uses of the store.
pub(crate) struct Subscriber<'a> {
    pub settings: &'a StoreSettings,
    pub db: i64,
    pub backend: ExpiryBackend,
    pub conn: &'a connection::Shared,
    /// Replaced with `conn` when a cluster partition changes owner.
    pub acked: Option<&'a connection::Shared>,
    pub clock: &'a Clock,
    pub counters: &'a Counters,
    pub tasks: &'a TaskTracker,
    pub shutdown: &'a CancellationToken,
    /// The recovery passes' claims.
    pub claim: Claimer<'a>,
    pub dispatch: mpsc::Sender<DispatchEvent>,
}

impl Subscriber<'_> {
    fn prefix(&self) -> &str {
        &self.settings.key_prefix
    }

    /// Where the timers are loaded from.
    fn indexes(&self) -> timers::Indexes<'_> {
        timers::Indexes {
            prefix: self.prefix(),
            conn: self.conn,
        }
    }

    /// The keyspace-event channels (classic pub/sub: the server publishes them).
    pub(super) fn event_channels(&self) -> Vec<String> {
        let db = self.db;
        let mut c = vec![format!("__keyevent@{db}__:expired")];
        if self.backend == ExpiryBackend::HashFieldExpiry {
            c.push(format!("__keyevent@{db}__:hexpired"));
        }
        c
    }

    /// Every partition's sharded channels.
    fn shard_channels(&self) -> Vec<String> {
        (0..partition::COUNT)
            .flat_map(|p| {
                let pre = partition::prefix(self.prefix(), p);
                [format!("{pre}armed"), format!("{pre}receipts")]
            })
            .collect()
    }

    /// Subscribes, runs the recovery pass, handles events; on a lost connection does
    /// it all again (with a growing pause) until shutdown.
    pub async fn run(&self) {
        if self.settings.cluster {
            return cluster::serve(self).await;
        }
        let mut pause = Duration::from_millis(50);
        loop {
            if self.shutdown.is_cancelled() {
                return;
            }
            let ended = self.session().await;
            self.counters.set(Counter::ExpirySubscribed, 0);
            match ended {
                Ok(()) => pause = Duration::from_millis(50),
                Err(e) => {
                    tracing::warn!(error = %e, "expiry subscriber lost its connection");
                    pause = (pause * 2).min(Duration::from_secs(2));
                }
            }
            tokio::select! {
                _ = tokio::time::sleep(pause) => {}
                _ = self.shutdown.cancelled() => return,
            }
        }
    }

    async fn session(&self) -> Result<(), StoreError> {
        let settings = self.settings;
        let info = redis::IntoConnectionInfo::into_connection_info(settings.redis_url.as_str())?;
        let resp3 = info
            .redis_settings()
            .clone()
            .set_protocol(redis::ProtocolVersion::RESP3);
        let client =
            crate::store::redis::connection::client(settings, info.set_redis_settings(resp3))?;
        // Unbounded is the crate's push sender; this task drains it at once.
        let (tx, mut pushes) = mpsc::unbounded_channel();
        let config = redis::AsyncConnectionConfig::new()
            .set_push_sender(tx)
            .set_connection_timeout(Some(settings.redis_timeout))
            .set_response_timeout(Some(settings.redis_timeout));
        let mut conn = client
            .get_multiplexed_async_connection_with_config(&config)
            .await?;
        conn.subscribe(self.event_channels()).await?;
        // Sent without waiting for replies, their confirmations read from the pushes:
        // matched as replies by the crate, an SSUBSCRIBE among arriving shard messages
        // was seen to wait forever (redis 1.8). Nothing else is sent on this
        // connection meanwhile, so no reply can be taken for another's.
        let channels = self.shard_channels();
        for ch in &channels {
            let mut c = redis::cmd("SSUBSCRIBE");
            c.arg(ch).set_no_response(true);
            c.query_async::<()>(&mut conn).await?;
        }
        let mut early = Vec::new();
        let mut confirmed = 0;
        while confirmed < channels.len() {
            let push = tokio::time::timeout(settings.redis_timeout, pushes.recv())
                .await
                .map_err(|_| StoreError::Corrupt("SSUBSCRIBE not confirmed in time".into()))?;
            match push {
                Some(p) if p.kind == PushKind::SSubscribe => confirmed += 1,
                Some(p) if p.kind == PushKind::Disconnection => {
                    return Err(StoreError::Corrupt("subscription connection closed".into()))
                }
                Some(p) => early.push(p),
                None => return Err(StoreError::Corrupt("subscription stream ended".into())),
            }
        }
        self.counters.add(Counter::Subscriptions, 1);
        self.counters.set(Counter::ExpirySubscribed, 1);
        // A reconnect may mean a restarted Redis or a changed clock offset.
        self.clock.sync(&mut self.conn.get()).await?;
        // A restarted Redis forgets a `notify-keyspace-events` set with CONFIG SET
        // (unless it was also in redis.conf): without this check no expiry event would
        // ever fire again and pending messages would wait until the next
        // resubscription. Checked after SUBSCRIBE, so the recovery pass below covers
        // whatever expired before the events were on.
        if let Err(e) = crate::store::check_keyspace_events(
            &mut self.conn.get(),
            self.backend,
            settings.configure_keyspace_events,
        )
        .await
        {
            match e {
                // Not allowed to fix it: say so loudly, keep serving receipts and
                // recovery passes rather than stop.
                StoreError::KeyspaceEvents(_) => {
                    tracing::error!(error = %e, "expiry events are off on the Redis server")
                }
                other => return Err(other),
            }
        }
        self.recovery_pass().await?;
        // Deadlines armed by a process that is gone (this one before a restart, or
        // another node) have no local timer anywhere: watch every pending one.
        let n = self.claim.timers.load(self.indexes()).await?;
        tracing::debug!(n, "expiry timers armed from the deadline index");
        // What arrived while subscribing: announcements of deadlines the load above
        // found anyway, and of receipts the rescan found; handled all the same.
        for p in early {
            self.event(p).await;
        }
        loop {
            let push = tokio::select! {
                m = pushes.recv() => m,
                _ = self.shutdown.cancelled() => return Ok(()),
            };
            match push {
                Some(p) if p.kind == PushKind::Disconnection => {
                    return Err(StoreError::Corrupt("subscription connection closed".into()))
                }
                Some(p) => self.event(p).await,
                None => return Err(StoreError::Corrupt("subscription stream ended".into())),
            }
        }
    }

    /// One pushed message: an announcement on a partition's channel, or a keyspace
    /// event of a partition's timer.
    pub(super) async fn event(&self, push: PushInfo) {
        let Some(msg) = redis::Msg::from_push_info(push) else {
            return; // a (s)subscribe confirmation
        };
        let prefix = self.prefix();
        let channel = msg.get_channel_name();
        let payload: String = msg.get_payload().unwrap_or_default();
        if let Some(p) = partition::of_key(prefix, channel) {
            if channel.ends_with("}:armed") {
                // A deadline set by any node (this one included): watch it here too,
                // so it fires on time even if the node that set it dies.
                // "- <id>": the group finished, stop watching it.
                match payload.split_once(' ') {
                    Some(("-", member)) => self.claim.timers.disarm(p, member),
                    Some((dl, member)) => {
                        if let Ok(dl) = dl.parse::<i64>() {
                            self.claim.timers.arm(p, member, dl);
                        }
                    }
                    None => {}
                }
            } else if channel.ends_with("}:receipts") {
                let _ = self.dispatch.send(DispatchEvent::Account(payload, p)).await;
            }
        } else if let Some(p) = partition::of_key(prefix, &payload) {
            // `hexpired` of P{t}:timers, or `expired` of a P{t}:t:#<bucket> timer
            // (Redis 7.0). Never blocks: while a pass runs, this leaves one wake-up
            // (and the partition) for the next.
            let rest = &payload[partition::prefix(prefix, p).len()..];
            if rest == "timers" || rest.starts_with("t:") {
                self.claim.due_pass.wake(p);
            }
        }
    }

    /// Claims every group whose deadline passed by Redis time, then wakes the outcome
    /// writer and the receipt dispatcher for work left by nodes that stopped.
    async fn recovery_pass(&self) -> Result<(), StoreError> {
        self.counters.add(Counter::RecoveryPasses, 1);
        let claimed = self.claim.claim_due((1u64 << partition::COUNT) - 1).await?;
        if claimed > 0 {
            tracing::info!(claimed, "recovery pass claimed expired messages");
        }
        self.claim.release_wake.wake_all();
        self.claim.finisher_wake.wake_all();
        let _ = self.dispatch.send(DispatchEvent::Rescan).await;
        Ok(())
    }
}

impl Claimer<'_> {
    /// The claim-due task: one pass per wake-up (a local timer, or an expiry event) over
    /// the partitions woken. Wake-ups during a pass coalesce into one (the [`Wake`]
    /// keeps one permit and the partitions), so a burst of events costs at most one pass
    /// more, and passes never overlap.
    pub async fn run(&self) {
        let due = self.due_pass;
        let mut pause = Duration::from_millis(50);
        loop {
            tokio::select! {
                _ = due.notified() => {}
                _ = self.shutdown.cancelled() => return,
            }
            let mask = due.take();
            let failed = match self.claim_due(mask).await {
                Ok(claimed) => {
                    tracing::debug!(claimed, mask, "claim-due pass");
                    None
                }
                // The partitions not done are woken again (claim_due) and tried below.
                Err(e) => Some(e),
            };
            match failed {
                None => pause = Duration::from_millis(50),
                Some(e) => {
                    // The event that asked for this pass will not come again: try again
                    // after a pause (a lost connection also brings a recovery pass).
                    tracing::warn!(error = %e, "claim-due pass failed");
                    tokio::select! {
                        _ = tokio::time::sleep(pause) => {}
                        _ = self.shutdown.cancelled() => return,
                    }
                    pause = (pause * 2).min(Duration::from_secs(2));
                }
            }
        }
    }

    /// Claims every group of the partitions of `mask` whose deadline passed by Redis
    /// time, [`CLAIM_DUE_BATCH`] per script (on a standalone server one call covers all of
    /// them, one partition after the other; on a cluster a call each), recording each
    /// one's lateness; wakes the outcome writer and the receipt releaser as batches finish
    /// groups. Returns how many this call claimed. On an error the partitions not done are
    /// woken again.
    pub(super) async fn claim_due(&self, mask: u64) -> Result<usize, StoreError> {
        let mut claimed = 0usize;
        let mut left = mask;
        // Held from the first full batch on: more are due, the outcome writer waits.
        let mut _busy = None;
        while left != 0 {
            let parts: Vec<usize> = if self.settings.per_partition_calls {
                partition::members(left).take(1).collect()
            } else {
                partition::members(left).collect()
            };
            // One script per batch: claiming group by group (a round trip each) fell
            // behind when the subscriber was killed every second (chaos run: ~400
            // claims/s, lateness p99 20 s). The groups whose local timers fired go by
            // id, at most a batch in all.
            let mut room = CLAIM_DUE_BATCH;
            let given: Vec<Vec<(Box<str>, bool)>> = parts
                .iter()
                .map(|p| {
                    let ids = self.timers.take_fired(*p, room);
                    room -= ids.len();
                    ids
                })
                .collect();
            let ids: Vec<Vec<&str>> = given
                .iter()
                .map(|g| g.iter().map(|(id, _)| &**id).collect())
                .collect();
            let mut conn = self.acked.get();
            let batch = match self
                .scripts
                .claim_due(
                    &mut conn,
                    &parts,
                    &ids,
                    CLAIM_DUE_BATCH,
                    self.settings.delivery.partial_grace.as_millis() as u64,
                )
                .await
            {
                Ok(b) => b,
                Err(e) => {
                    for (p, g) in parts.iter().zip(given) {
                        self.timers.give_back(*p, g);
                    }
                    self.due_pass.wake_mask(left);
                    return Err(e);
                }
            };
            for (k, id, dl) in &batch.not_due {
                let Some(p) = parts.get(*k) else { continue };
                let rechecked = given[*k].iter().any(|(g, r)| **g == **id && *r);
                self.timers.not_due(*p, id.as_str().into(), *dl, rechecked);
            }
            let mut touched = 0u64;
            for (p, done) in parts.iter().zip(&batch.done) {
                if *done {
                    left &= !(1u64 << p);
                }
            }
            for g in &batch.groups {
                if let Some(p) = partition::of_message_id(&g.gid) {
                    touched |= 1u64 << p;
                }
            }
            for late in batch.lateness_ms {
                crate::metrics::expiry_lateness_ms(late);
                self.counters.add(Counter::ExpiredClaimed, 1);
                claimed += 1;
            }
            if touched != 0 {
                self.ack.settle(&mut conn, parts[0]).await;
                // Their receipts: straight to the releaser with the data the claim read
                // (waiting a little for room), else from P:fresh where they are too.
                if release::hand_over(
                    self.claimed,
                    self.shutdown,
                    release::Claimed(touched, batch.groups),
                )
                .await
                {
                    for p in partition::members(touched) {
                        self.finisher_wake.wake(p);
                    }
                } else {
                    for p in partition::members(touched) {
                        self.release_wake.wake(p);
                        self.finisher_wake.wake(p);
                    }
                }
            }
            if left != 0 {
                _busy.get_or_insert_with(|| self.backlog.busy());
            }
        }
        Ok(claimed)
    }
}
