//! Receipts released the moment a message finishes, not when its outcome reaches
//! MongoDB.
//!
//! A finished message is durable in Redis (`P:d:<gid>`, in the outbox) from the
//! instant it finished; its MongoDB document may take seconds when the server is slow
//! and arbitrarily long when it is down. Receipts waiting for that write made receipt
//! latency the MongoDB write latency (seconds under load, BENCHMARKS.md). So `finish`
//! also lists the gid in `P:fresh` (multi-part messages only: a single-part message's
//! receipt is queued by its submit script, see `receipts/ready.rs`); this task reads those groups, builds their receipts
//! and runs the RELEASE script, which queues them only if it removed the gid from
//! `P:fresh`. The outcome writer's finalize queues them itself when the gid is still
//! there (this node died before releasing), so every receipt is queued exactly once
//! whichever runs first, on whichever node.
//!
//! Woken by the same events as the outcome writer (a message completed, a recovery
//! pass) and once at start; it drains `P:fresh` and sleeps. No polling. Groups the
//! claim-due pass expired come to it with their data, through a bounded queue
//! ([`Claimed`]): reading them again from `P:fresh` was the bound of expiry lateness
//! at 1M pending (the claim kept up, p99 <= 250 ms; the receipts were released 5-10 s
//! after it, BENCHMARKS.md). A batch the queue has no room for within
//! [`HAND_OVER_WAIT`], or whose release fails, stays in `P:fresh` and is released from there.
//!
//! Receipts of an account whose receiver is bound on this node are queued leased to
//! it and handed to its receipt worker in memory ([`crate::store::receipts::handoff`]), as a
//! single-part message's are: no RECEIPT_TAKE reads them back.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::service::ReceiptSink;
use crate::store::counters::Counters;
use crate::store::model::outcome::{receipts, QueuedReceipt};
use crate::store::outcomes::backlog::Backlog;
use crate::store::outcomes::known::Known;
use crate::store::receipts::announce::DispatchEvent;
use crate::store::receipts::lease::Local;
use crate::store::receipts::ready::HandOver;
use crate::store::redis::clock::Clock;
use crate::store::redis::connection::{Ack, Shared};
use crate::store::redis::partition::{self, Wake};
use crate::store::redis::scripts::receipts::ReleaseRecord;
use crate::store::redis::scripts::{RawGroup, ReceiptEntry, Scripts};
use crate::store::settings::StoreSettings;
use crate::store::{Counter, StoreError};

/// Groups per FRESH read.
const BATCH: usize = 256;

/// Claimed batches the queue holds (each up to the claim's 256 groups with their
/// segments: a few MB at most). Past it the claim waits up to [`HAND_OVER_WAIT`],
/// then leaves them to `P:fresh`.
pub const CLAIMED_QUEUE: usize = 16;

/// How long the claim-due pass waits for room in the releaser's queue. Waiting paces
/// the claims to the releaser; leaving a batch to `P:fresh` makes the releaser read
/// it back with FRESH, the dearest path for the server, just when the server is the
/// bound (1M partials on Valkey 9: 1,432 FRESH calls × 5.3 ms, claim p99 27 s).
pub const HAND_OVER_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

/// Groups the claim-due pass just finished in the partitions of a mask, with their
/// data, all of them in their `P{t}:fresh`.
pub struct Claimed(pub u64, pub Vec<RawGroup>);

/// Multi-part messages a submit just completed, with their data (SUBMIT
/// answers the completing segment with its group's data, so the releaser does not
/// read it back through `P:fresh` and FRESH). Put here once the last segment's
/// submit_sm_resp is queued (`AfterResponse`), so that no receipt can overtake it.
/// Gathered here, not queued one message per channel slot, so that the releaser takes
/// what accumulated in one RELEASE call per [`BATCH`] groups. At most
/// [`COMPLETED_MAX`] groups: beyond, a completion is left to `P:fresh` (where it is
/// anyway) and the releaser is told to read it.
#[derive(Default)]
pub struct Completed {
    groups: std::sync::Mutex<Vec<RawGroup>>,
    overflowed: std::sync::atomic::AtomicBool,
    wake: tokio::sync::Notify,
}

/// Completed groups [`Completed`] holds at most (their segments' data: a few MB).
pub const COMPLETED_MAX: usize = 4096;

impl Completed {
    /// Queues a completed group for the releaser; when full, tells it to read
    /// `P:fresh` instead.
    pub fn push(&self, group: RawGroup) {
        let mut p = self.groups.lock().unwrap_or_else(|e| e.into_inner());
        if p.len() >= COMPLETED_MAX {
            self.overflowed.store(true, Ordering::Relaxed);
        } else {
            p.push(group);
        }
        drop(p);
        self.wake.notify_one();
    }

    fn take(&self) -> Vec<RawGroup> {
        std::mem::take(&mut *self.groups.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

/// Hands a claimed batch to the releaser, waiting up to [`HAND_OVER_WAIT`] for room.
/// False when there was none, the releaser is gone or the store stops: the caller
/// wakes it to read `P:fresh` instead.
pub(crate) async fn hand_over(
    queue: &mpsc::Sender<Claimed>,
    shutdown: &CancellationToken,
    batch: Claimed,
) -> bool {
    tokio::select! {
        sent = tokio::time::timeout(HAND_OVER_WAIT, queue.send(batch)) => {
            matches!(sent, Ok(Ok(())))
        }
        _ = shutdown.cancelled() => false,
    }
}

/// The releaser and what it uses of the store: borrowed from it by the task that runs
/// it, so that this module sees nothing else of it.
pub struct Releaser<'a> {
    pub settings: &'a StoreSettings,
    pub scripts: &'a Scripts,
    pub conn: &'a Shared,
    /// The connection RELEASE goes over, and the replicas it must reach (`ack`).
    pub acked: &'a Shared,
    pub ack: &'a Ack,
    pub clock: &'a Clock,
    /// Rung for partitions whose `P{t}:fresh` is to be read.
    pub wake: &'a Wake,
    /// Claimed batches from the claim-due pass (`None` once closed or taken).
    pub claimed: Option<mpsc::Receiver<Claimed>>,
    pub completed: &'a Completed,
    /// Where the groups it parsed go for the outcome writer's lease.
    pub known: &'a Known,
    pub backlog: &'a Backlog,
    pub hand_over: HandOver<'a>,
    pub counters: &'a Counters,
    pub shutdown: &'a CancellationToken,
    /// Whether an account's receiver is bound here (then its receipts are sent from
    /// memory), and the dispatcher that wakes its worker.
    pub sink: Arc<dyn ReceiptSink>,
    pub dispatch: mpsc::Sender<DispatchEvent>,
}

impl Releaser<'_> {
    pub async fn run(mut self) {
        let shutdown = self.shutdown.clone();
        let mut claimed = self.claimed.take();
        // The partitions whose P{t}:fresh is to be read: those woken for. What a
        // stopped node left is read when the subscriber's recovery pass wakes all of
        // them (at start and after every resubscription).
        let mut read_fresh = 0u64;
        loop {
            read_fresh |= self.wake.take();
            if read_fresh != 0 {
                let all = read_fresh == u64::MAX;
                if let Err(e) = self.drain(&mut read_fresh).await {
                    // Nothing is lost meanwhile: finalize releases what is left.
                    tracing::warn!(error = %e, "receipt release: redis unavailable");
                    tokio::select! {
                        _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                        _ = shutdown.cancelled() => return,
                    }
                    continue;
                }
                if all {
                    self.counters.add(Counter::FreshScans, 1);
                }
            }
            let next = async {
                match claimed.as_mut() {
                    Some(rx) => rx.recv().await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                batch = next => match batch {
                    Some(Claimed(mask, groups)) => {
                        // More claimed batches waiting: a backlog, the outcome writer waits.
                        let _busy = claimed
                            .as_ref()
                            .filter(|rx| !rx.is_empty())
                            .map(|_| self.backlog.busy());
                        match self.release(groups).await {
                            Ok(n) => {
                                self.counters.add(Counter::ReleasedClaimed, n);
                            }
                            Err(e) => {
                                // Left in P{t}:fresh, where the next read finds it.
                                tracing::warn!(error = %e, "receipt release of claimed messages failed");
                                read_fresh |= mask;
                            }
                        }
                    }
                    None => claimed = None,
                },
                _ = self.completed.wake.notified() => {
                    if self.completed.overflowed.swap(false, Ordering::Relaxed) {
                        read_fresh = u64::MAX;
                    }
                    let mut groups = self.completed.take();
                    while !groups.is_empty() {
                        let rest = groups.split_off(groups.len().min(BATCH));
                        match self.release(std::mem::replace(&mut groups, rest)).await {
                            Ok(n) => {
                                self.counters.add(Counter::ReleasedCompleted, n);
                            }
                            Err(e) => {
                                // Left in P{t}:fresh, where the next read finds it.
                                tracing::warn!(error = %e, "receipt release of completed messages failed");
                                read_fresh = u64::MAX;
                            }
                        }
                    }
                }
                _ = self.wake.notified() => {}
                _ = shutdown.cancelled() => return,
            }
        }
    }

    /// Releases the fresh groups of the partitions in `mask` until none is left;
    /// each partition leaves the mask once done.
    async fn drain(&self, mask: &mut u64) -> Result<(), StoreError> {
        // Held from the first full batch on: more are waiting, the outcome writer waits.
        let mut _busy = None;
        for p in partition::members(*mask) {
            loop {
                let groups = self.scripts.fresh(&mut self.conn.get(), p, BATCH).await?;
                let n = groups.len();
                if n > 0 {
                    let released = self.release(groups).await?;
                    self.counters.add(Counter::ReleasedFresh, released);
                }
                if n < BATCH || self.shutdown.is_cancelled() {
                    break;
                }
                _busy.get_or_insert_with(|| self.backlog.busy());
            }
            *mask &= !(1 << p);
        }
        Ok(())
    }

    /// One RELEASE per partition of the batch (one script call, one announcement per
    /// account, instead of one of each per message).
    /// Returns how many groups' receipts were queued (RELEASE's count: a group
    /// another node or the finalize released first is not counted).
    async fn release(&self, groups: Vec<RawGroup>) -> Result<u64, StoreError> {
        let mut parts: BTreeMap<usize, Vec<RawGroup>> = BTreeMap::new();
        for g in groups {
            match partition::of_message_id(&g.gid) {
                Some(p) => parts.entry(p).or_default().push(g),
                None => tracing::error!(gid = g.gid, "a finished message without a partition"),
            }
        }
        if !self.settings.per_partition_calls {
            // One call whatever the partitions (a standalone server): completions
            // spread over many partitions, and a call each cost Redis a script's
            // fixed work each.
            return self
                .release_part(parts.into_values().flatten().collect())
                .await;
        }
        // One partition per call (a cluster), the partitions at once (pipelined):
        // one after the other, completions spread over many partitions fell behind
        // (3-part load: receipts queued p50 30 s).
        let n = futures::future::try_join_all(
            parts.into_values().map(|groups| self.release_part(groups)),
        )
        .await?;
        Ok(n.into_iter().sum())
    }

    /// One RELEASE for `groups` (of one partition or several).
    async fn release_part(&self, groups: Vec<RawGroup>) -> Result<u64, StoreError> {
        let lease_ms = crate::store::receipts::lease::hold_ms(self.settings.receipt_lease);
        let mut records = Vec::with_capacity(groups.len());
        let mut ended = Vec::new();
        // The receipts to send from memory, by gid, if RELEASE queues them.
        let mut local: HashMap<String, (String, Vec<(String, QueuedReceipt)>)> = HashMap::new();
        for raw in groups {
            let gid = raw.gid.clone();
            let routed;
            let (owed, account) = match raw.parse().and_then(|g| Ok((receipts(&g)?, g))) {
                Ok((r, g)) => {
                    routed = g.kind == crate::store::model::FinishKind::Routed;
                    ended.push(g.finished_ms);
                    // Whose queue they join: the sender's for receipts, the
                    // receiver's for a forwarded message's deliveries.
                    let account = r.first().map_or_else(
                        || g.meta.account.clone(),
                        |(_, q)| q.receipt.system_id.clone(),
                    );
                    // The outcome writer's lease takes it from here, not from Redis
                    // (a forwarded message under way is not in the outbox yet).
                    if !matches!(
                        g.kind,
                        crate::store::model::FinishKind::Routed
                            | crate::store::model::FinishKind::Scheduled
                    ) {
                        self.known.put(g);
                    }
                    (r, account)
                }
                Err(e) => {
                    // Left in P:fresh: finalize (which reads the same data) decides.
                    tracing::error!(error = %e, gid, "cannot build the receipts of a finished message");
                    continue;
                }
            };
            let here = !owed.is_empty() && self.sink.has_receiver(&account);
            let mut entries = Vec::with_capacity(owed.len());
            for (id, r) in &owed {
                entries.push(ReceiptEntry {
                    account: r.receipt.system_id.clone(),
                    id: id.clone(),
                    payload: serde_json::to_string(r)
                        .map_err(|e| StoreError::Corrupt(format!("receipt: {e}")))?,
                });
            }
            records.push(ReleaseRecord {
                // Checked by `release`.
                part: partition::of_message_id(&gid).unwrap_or_default(),
                gid: gid.clone(),
                local: here,
                routed,
                receipts: entries,
            });
            if here {
                local.insert(gid, (account, owed));
            }
        }
        if ended.is_empty() {
            return Ok(0);
        }
        let mut conn = self.acked.get();
        let released = self.scripts.release(&mut conn, lease_ms, &records).await?;
        self.ack.settle(&mut conn, records[0].part).await;
        let now = self.clock.now_ms();
        for fin in ended {
            crate::metrics::receipt_wait_ms(crate::metrics::ReceiptStage::Queued, now - fin);
        }
        if !local.is_empty() {
            self.hand_over_local(&released.gids, local, released.now_ms + lease_ms)
                .await;
        }
        Ok(released.gids.len() as u64)
    }

    /// Gives the receipts RELEASE queued leased to this node (the groups it took,
    /// `taken`) to their accounts' workers.
    async fn hand_over_local(
        &self,
        taken: &[String],
        mut local: HashMap<String, (String, Vec<(String, QueuedReceipt)>)>,
        held_until: i64,
    ) {
        let mut items = Vec::new();
        for gid in taken {
            let Some((account, owed)) = local.remove(gid) else {
                continue;
            };
            for (id, receipt) in owed {
                let l = Local {
                    id,
                    receipt,
                    held_until,
                };
                items.push((account.clone(), l));
            }
        }
        crate::store::receipts::ready::hand_over(self.hand_over, &self.dispatch, items, Vec::new())
            .await;
    }
}
