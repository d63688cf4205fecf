//! The outcome writer: finished messages from the Redis outbox to MongoDB.
//!
//! A finished message stays in Redis (`P:d:<gid>`, listed in the `P:outbox` ZSET)
//! until MongoDB acknowledged its document. The writer leases a batch (the ZSET score
//! becomes "leased until"), builds the documents, inserts them (duplicates count as
//! written), and only then runs the finalize script (one call per batch), which deletes each
//! message's keys — once, whichever node gets there first — and queues its receipts
//! if [`super::release`] has not already (it normally has, long before).
//! If MongoDB is down the batch is retried with a growing pause; nothing is deleted.
//! A node that dies mid-batch leaves leases that run out; the writer sleeps until the
//! earliest lease end it saw (a one-shot timer, not a scan) and takes them over. A
//! node restarted with the same node_id takes its predecessor's leases back at start
//! (the lease records node_id + epoch), so its own crash costs no lease wait.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use super::model::FinishedGroup;
use super::outcome::{outcome_document, receipts};
use super::scripts::outbox::FinalizeRecord;
use super::scripts::ReceiptEntry;
use super::{Inner, StoreError};

pub struct Finisher {
    inner: Arc<Inner>,
}

/// Groups per lease and finalize script call. A script holds Redis for every other
/// client while it runs, and all of a node's commands share one connection, in
/// order: leasing 256 three-part groups in one call took ~7 ms (SLOWLOG), the tail of
/// submit latency under mixed load. A slice of 64 runs ~1–2 ms; the slices go one
/// after the other so that submits get in between (the few extra calls cost little
/// beside MongoDB's insert of the batch).
const SCRIPT_SLICE: usize = 64;

/// A leased batch: the groups and when the next outbox entry becomes due.
struct Lease {
    groups: Vec<FinishedGroup>,
    next_due_ms: Option<i64>,
}

impl Finisher {
    pub fn new(inner: Arc<Inner>) -> Finisher {
        Finisher { inner }
    }

    pub async fn run(self) {
        let shutdown = self.inner.shutdown.clone();
        match self.reclaim().await {
            Ok(0) => {}
            Ok(n) => tracing::info!(n, "took back outbox leases of this node's previous run"),
            // Not fatal: those leases then run out as if another node had held them.
            Err(e) => tracing::warn!(error = %e, "could not take back this node's old leases"),
        }
        // Work may be waiting from before a restart.
        let mut wake_at: Option<tokio::time::Instant> = Some(tokio::time::Instant::now());
        loop {
            let timer = async {
                match wake_at {
                    Some(at) => tokio::time::sleep_until(at).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                _ = self.inner.finisher_wake.notified() => {
                    // Let a few more finish, so they share one MongoDB round trip.
                    tokio::time::sleep(self.inner.settings.outcome_flush_interval).await;
                }
                _ = timer => {}
                _ = shutdown.cancelled() => return,
            }
            wake_at = match self.drain().await {
                Ok(next) => next.map(|ms| self.inner.clock.instant_at(ms)),
                Err(e) => {
                    tracing::warn!(error = %e, "outcome writer: redis unavailable");
                    Some(tokio::time::Instant::now() + Duration::from_secs(1))
                }
            };
        }
    }

    /// Writes batches until the outbox has nothing due; returns when the next leased
    /// entry becomes due. While MongoDB inserts batch k, the next batch is leased and
    /// batch k−1 finalized, so the Redis round trips (lease, reading the groups,
    /// finalize) hide behind the insert; one insert is in flight at a time.
    async fn drain(&self) -> Result<Option<i64>, StoreError> {
        self.yield_to_receipts().await;
        let mut lease = self.lease().await?;
        // Acknowledged by MongoDB, not finalized yet.
        let mut written: Option<Vec<FinishedGroup>> = None;
        loop {
            if lease.groups.is_empty() {
                if let Some(done) = written.take() {
                    self.finalize(&done).await?;
                }
                return Ok(lease.next_due_ms);
            }
            self.yield_to_receipts().await;
            let previous = written.take();
            let (inserted, next, finalized) =
                tokio::join!(self.insert(&lease.groups), self.lease(), async {
                    match &previous {
                        Some(done) => self.finalize(done).await,
                        None => Ok(()),
                    }
                });
            // A failed step leaves its batch leased (taken over when the lease ends),
            // and a batch leased beside it waits the same way, as a crash here would.
            finalized?;
            if !inserted? {
                // Shut down before MongoDB acknowledged: the batch stays in the outbox,
                // and the one leased beside it too; this node's next start takes its
                // own leases back at once (see `reclaim`).
                return Ok(None);
            }
            written = Some(lease.groups);
            lease = next?;
        }
    }

    /// Waits (at most `backlog::MAX_YIELD`) while the claim-due pass or the receipt
    /// releaser works through a backlog: the messages are safe in the outbox, and
    /// their receipts are what the ESMEs wait for.
    async fn yield_to_receipts(&self) {
        if self
            .inner
            .backlog
            .wait_idle(super::backlog::MAX_YIELD)
            .await
        {
            self.inner
                .stats
                .outcome_yields
                .fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Makes the leases an earlier run of this node left behind due now.
    async fn reclaim(&self) -> Result<u64, StoreError> {
        self.inner
            .scripts
            .reclaim(&mut self.inner.conn(), self.inner.epoch)
            .await
    }

    async fn lease(&self) -> Result<Lease, StoreError> {
        let s = &self.inner.settings;
        let want = s.outcome_batch_size.max(1);
        let mut groups = Vec::new();
        let mut next: Option<i64>;
        // In slices of SCRIPT_SLICE groups, one call after the other (see there).
        loop {
            let ask = (want - groups.len()).min(SCRIPT_SLICE);
            let leased = self
                .inner
                .scripts
                .lease(
                    &mut self.inner.conn(),
                    ask,
                    s.outbox_lease.as_millis() as u64,
                    self.inner.epoch,
                )
                .await?;
            next = leased.next_due_ms;
            let got = leased.gids.len();
            // The groups this node holds already (`known`); the others are read.
            let mut unknown = Vec::new();
            for gid in leased.gids {
                match self.inner.known.take(&gid) {
                    Some(g) => groups.push(g),
                    None => unknown.push(gid),
                }
            }
            let known = (got - unknown.len()) as u64;
            self.inner
                .stats
                .leased_known
                .fetch_add(known, Ordering::Relaxed);
            self.inner
                .stats
                .leased_read
                .fetch_add(unknown.len() as u64, Ordering::Relaxed);
            if !unknown.is_empty() {
                self.read(&unknown, &mut groups).await?;
            }
            if got < ask || groups.len() >= want {
                break;
            }
        }
        Ok(Lease {
            groups,
            next_due_ms: next,
        })
    }

    /// Reads leased groups this node does not hold (READ_GROUPS) into `groups`.
    async fn read(
        &self,
        gids: &[String],
        groups: &mut Vec<FinishedGroup>,
    ) -> Result<(), StoreError> {
        let read = self
            .inner
            .scripts
            .read_groups(&mut self.inner.conn(), gids)
            .await?;
        // None: finalized meanwhile by a node that took over the lease.
        for raw in read.into_iter().flatten() {
            let gid = raw.gid.clone();
            match raw.parse() {
                Ok(g) => groups.push(g),
                // Cannot happen with data written by this code; keep it for an
                // operator rather than lose it, and do not block the others.
                Err(e) => {
                    tracing::error!(error = %e, gid, "unreadable finished message left in the outbox")
                }
            }
        }
        Ok(())
    }

    /// Inserts the batch's documents, retried until MongoDB acknowledged them. False
    /// when shutdown came first (nothing may be finalized then).
    async fn insert(&self, groups: &[FinishedGroup]) -> Result<bool, StoreError> {
        let mut docs = Vec::with_capacity(groups.len());
        for g in groups {
            docs.push(outcome_document(g)?);
        }
        let mut pause = Duration::from_millis(100);
        let started = std::time::Instant::now();
        loop {
            match self.inner.outcomes.write(docs.clone()).await {
                Ok(()) => break,
                Err(e) => {
                    self.inner
                        .stats
                        .outcome_write_failures
                        .fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(error = %e, batch = docs.len(), "outcome write failed; retrying");
                    tokio::select! {
                        _ = tokio::time::sleep(pause) => {}
                        // Leave the batch in the outbox; the next start writes it.
                        _ = self.inner.shutdown.cancelled() => return Ok(false),
                    }
                    pause = (pause * 2).min(Duration::from_secs(5));
                }
            }
        }
        crate::metrics::outcome_written(started.elapsed());
        self.inner
            .stats
            .outcomes_written
            .fetch_add(groups.len() as u64, Ordering::Relaxed);
        Ok(true)
    }

    /// After MongoDB acknowledged the batch: deletes its messages' keys in Redis (one
    /// script), queueing the receipts that were not released yet.
    async fn finalize(&self, groups: &[FinishedGroup]) -> Result<(), StoreError> {
        // Receipts are normally released long before (super::release): send them
        // again only for the gids still in P:fresh. A gid cannot re-enter P:fresh, so
        // one seen absent here is released for good.
        let gids: Vec<&str> = groups.iter().map(|g| g.gid.as_str()).collect();
        let fresh: Vec<Option<f64>> = redis::cmd("ZMSCORE")
            .arg(format!("{}fresh", self.inner.prefix()))
            .arg(&gids)
            .query_async(&mut self.inner.conn())
            .await?;
        for (slice, fresh) in groups.chunks(SCRIPT_SLICE).zip(fresh.chunks(SCRIPT_SLICE)) {
            self.finalize_slice(slice, fresh).await?;
        }
        Ok(())
    }

    async fn finalize_slice(
        &self,
        groups: &[FinishedGroup],
        fresh: &[Option<f64>],
    ) -> Result<(), StoreError> {
        let mut records = Vec::with_capacity(groups.len());
        for (i, g) in groups.iter().enumerate() {
            let receipts = if fresh.get(i).copied().flatten().is_none() {
                None
            } else {
                let mut entries = Vec::new();
                for (id, r) in receipts(g)? {
                    entries.push(ReceiptEntry {
                        account: g.meta.account.clone(),
                        id,
                        payload: serde_json::to_string(&r)
                            .map_err(|e| StoreError::Corrupt(format!("receipt: {e}")))?,
                    });
                }
                Some(entries)
            };
            records.push(FinalizeRecord {
                gid: g.gid.clone(),
                account: g.meta.account.clone(),
                octets: g.segments.iter().map(|s| s.data.record_len()).sum(),
                receipts,
                segment_ids: g.segments.iter().map(|s| s.message_id.clone()).collect(),
            });
        }
        self.inner
            .scripts
            .finalize(&mut self.inner.conn(), &records)
            .await?;
        Ok(())
    }
}
