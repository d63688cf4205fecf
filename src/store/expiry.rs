//! Expiry without polling.
//!
//! The trigger is a keyspace event on a timer:
//! * where the server has hash-field expiration, every timer is a field (gk) of the one
//!   hash `P:timers`, and the event is `hexpired` naming only that key. It means "some
//!   deadline passed": a claim-due pass runs ([`claim_due`]: the deadline index
//!   `P:deadlines` ≤ Redis time, claimed in batches). One dedicated task runs these
//!   passes; events arriving during a pass leave one wake-up for another pass after
//!   it, so passes never overlap and the last event is never dropped. One hash, not a
//!   hash per message: the server finds keys with volatile fields by sampling (seconds
//!   to minutes late with many keys), but expires the fields of one key in deadline
//!   order, by time buckets — within ~1/hz for dense deadlines, at most ~8.2 s (its
//!   widest bucket window) for a deadline with few neighbours.
//! * on Redis 7.0, a key `P:t:<gk>` per group with `expired` events. The event names
//!   the group, but it wakes the same claim-due pass: every pending group is in the
//!   deadline index (written by the script that armed its timer), and a pass per
//!   burst of events costs one script, where a claim script per event cost Redis one
//!   call per expired group — on top of the pass that had already claimed it (the
//!   local timer fires first, and the claim's `DEL` of the timer key is what fires the
//!   event: Redis expires a due key when a command touches it). 100k expiring
//!   partials: 100,001 claim calls, ~8 µs of Redis each (SLOWLOG, 2026-12-03).
//!
//! On both, the timer heap of [`super::timers`] wakes the same claim-due pass at each
//! deadline, so the server's sampling (minutes late with many keys) and bucket
//! windows (seconds) only matter for a deadline no node watched.
//!
//! The group's data lives under another key and is still there. Every node receives
//! every event; the claim scripts move a group out of the pending area, so exactly one
//! node (or pass) gets it.
//!
//! Events sent while no subscriber listens are lost (pub/sub has no memory), so after
//! every (re)subscription the subscriber runs one recovery pass — the same claim-due
//! pass. There is no periodic scan.
//!
//! The same connection listens on `P:receipts`, where finished messages announce
//! accounts with new receipts, and forwards them to the receipt dispatcher.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use tokio::sync::mpsc;

use super::announce::DispatchEvent;
use super::{ExpiryBackend, Inner, StoreError};

/// Groups per claim-due round trip.
const CLAIM_DUE_BATCH: usize = 256;

pub struct Subscriber {
    inner: Arc<Inner>,
    dispatch: mpsc::Sender<DispatchEvent>,
}

impl Subscriber {
    pub fn new(inner: Arc<Inner>, dispatch: mpsc::Sender<DispatchEvent>) -> Subscriber {
        Subscriber { inner, dispatch }
    }

    fn channels(&self) -> Vec<String> {
        let db = self.inner.db;
        let mut c = vec![
            format!("{}receipts", self.inner.prefix()),
            format!("{}armed", self.inner.prefix()),
        ];
        c.push(format!("__keyevent@{db}__:expired"));
        if self.inner.backend == ExpiryBackend::HashFieldExpiry {
            c.push(format!("__keyevent@{db}__:hexpired"));
        }
        c
    }

    /// Subscribes, runs the recovery pass, handles events; on a lost connection does
    /// it all again (with a growing pause) until shutdown.
    pub async fn run(self) {
        let passes = self.inner.tasks.spawn(due_passes(self.inner.clone()));
        self.serve().await;
        if let Err(e) = passes.await {
            tracing::error!(error = %e, "claim-due task failed");
        }
    }

    async fn serve(&self) {
        let mut pause = Duration::from_millis(50);
        loop {
            if self.inner.shutdown.is_cancelled() {
                return;
            }
            let ended = self.session().await;
            self.inner
                .stats
                .expiry_subscribed
                .store(false, Ordering::Relaxed);
            match ended {
                Ok(()) => pause = Duration::from_millis(50),
                Err(e) => {
                    tracing::warn!(error = %e, "expiry subscriber lost its connection");
                    pause = (pause * 2).min(Duration::from_secs(2));
                }
            }
            tokio::select! {
                _ = tokio::time::sleep(pause) => {}
                _ = self.inner.shutdown.cancelled() => return,
            }
        }
    }

    async fn session(&self) -> Result<(), StoreError> {
        let mut pubsub = self.inner.client.get_async_pubsub().await?;
        for ch in self.channels() {
            pubsub.subscribe(ch).await?;
        }
        self.inner
            .stats
            .subscriptions
            .fetch_add(1, Ordering::Relaxed);
        self.inner
            .stats
            .expiry_subscribed
            .store(true, Ordering::Relaxed);
        // A reconnect may mean a restarted Redis or a changed clock offset.
        self.inner.clock.sync(&mut self.inner.conn()).await?;
        // A restarted Redis forgets a `notify-keyspace-events` set with CONFIG SET
        // (unless it was also in redis.conf): without this check no expiry event would
        // ever fire again and pending messages would wait until the next
        // resubscription. Checked after SUBSCRIBE, so the recovery pass below covers
        // whatever expired before the events were on.
        if let Err(e) = super::check_keyspace_events(
            &mut self.inner.conn(),
            self.inner.backend,
            self.inner.settings.configure_keyspace_events,
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
        let n = super::timers::load(&self.inner).await?;
        tracing::debug!(n, "expiry timers armed from the deadline index");
        let timer_prefix = format!("{}t:", self.inner.prefix());
        let timers_key = format!("{}timers", self.inner.prefix());
        let receipts_channel = format!("{}receipts", self.inner.prefix());
        let armed_channel = format!("{}armed", self.inner.prefix());
        let mut stream = pubsub.on_message();
        loop {
            let msg = tokio::select! {
                m = stream.next() => m,
                _ = self.inner.shutdown.cancelled() => return Ok(()),
            };
            let Some(msg) = msg else {
                return Err(StoreError::Corrupt("subscription stream ended".into()));
            };
            let payload: String = msg.get_payload().unwrap_or_default();
            if msg.get_channel_name() == armed_channel {
                // A deadline set by any node (this one included): watch it here too,
                // so it fires on time even if the node that set it dies.
                // "- <gk>": the group finished, stop watching it.
                match payload.split_once(' ') {
                    Some(("-", gk)) => self.inner.timers.disarm(gk),
                    Some((dl, gk)) => {
                        if let Ok(dl) = dl.parse::<i64>() {
                            self.inner.timers.arm(gk, dl);
                        }
                    }
                    None => {}
                }
            } else if msg.get_channel_name() == receipts_channel {
                let _ = self.dispatch.send(DispatchEvent::Account(payload)).await;
            } else if payload == timers_key || payload.starts_with(&timer_prefix) {
                // `hexpired` of P:timers, or `expired` of a P:t:#<bucket> timer
                // (Redis 7.0). Never blocks: while a pass runs, this leaves one
                // wake-up for the next.
                self.inner.due_pass.notify_one();
            }
        }
    }

    /// Claims every group whose deadline passed by Redis time, then wakes the outcome
    /// writer and the receipt dispatcher for work left by nodes that stopped.
    async fn recovery_pass(&self) -> Result<(), StoreError> {
        self.inner
            .stats
            .recovery_passes
            .fetch_add(1, Ordering::Relaxed);
        let claimed = claim_due(&self.inner).await?;
        if claimed > 0 {
            tracing::info!(claimed, "recovery pass claimed expired messages");
        }
        self.inner.finished();
        let _ = self.dispatch.send(DispatchEvent::Rescan).await;
        Ok(())
    }
}

/// The claim-due task: one pass per wake-up (a local timer, or an `hexpired` event). Wake-ups during
/// a pass coalesce into one (a [`Notify`] stores one permit), so a burst of events
/// costs at most one pass more, and passes never overlap.
async fn due_passes(inner: Arc<Inner>) {
    let due = &inner.due_pass;
    let mut pause = Duration::from_millis(50);
    loop {
        tokio::select! {
            _ = due.notified() => {}
            _ = inner.shutdown.cancelled() => return,
        }
        match claim_due(&inner).await {
            Ok(claimed) => {
                pause = Duration::from_millis(50);
                tracing::debug!(claimed, "claim-due pass");
            }
            Err(e) => {
                // The event that asked for this pass will not come again: try again
                // after a pause (a lost connection also brings a recovery pass).
                tracing::warn!(error = %e, "claim-due pass failed");
                due.notify_one();
                tokio::select! {
                    _ = tokio::time::sleep(pause) => {}
                    _ = inner.shutdown.cancelled() => return,
                }
                pause = (pause * 2).min(Duration::from_secs(2));
            }
        }
    }
}

/// Claims every group whose deadline passed by Redis time, [`CLAIM_DUE_BATCH`] per
/// script, recording each one's lateness; wakes the outcome writer and the receipt
/// releaser as batches finish groups. Returns how many this call claimed.
async fn claim_due(inner: &Inner) -> Result<usize, StoreError> {
    let mut claimed = 0usize;
    // Held from the first full batch on: more are due, the outcome writer waits.
    let mut _busy = None;
    loop {
        // One script per batch: claiming group by group (a round trip each) fell
        // behind when the subscriber was killed every second (chaos run: ~400
        // claims/s, lateness p99 20 s).
        let batch = inner
            .scripts
            .claim_due(&mut inner.conn(), CLAIM_DUE_BATCH)
            .await?;
        let listed = batch.listed;
        for late in batch.lateness_ms {
            crate::metrics::expiry_lateness_ms(late);
            inner.stats.expired_claimed.fetch_add(1, Ordering::Relaxed);
            claimed += 1;
        }
        if listed > 0 {
            // Their receipts: straight to the releaser with the data the claim read,
            // or, if it has no room, from P:fresh where they are too.
            let groups = batch.groups;
            if groups.is_empty()
                || super::release::hand_over(inner, super::release::Claimed(groups))
            {
                inner.finisher_wake.notify_one();
            } else {
                inner.finished();
            }
        }
        if listed < CLAIM_DUE_BATCH {
            return Ok(claimed);
        }
        _busy.get_or_insert_with(|| inner.backlog.busy());
    }
}
