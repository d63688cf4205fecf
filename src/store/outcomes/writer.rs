//! The outcome writer: finished messages from the Redis outboxes to MongoDB.
//!
//! A finished message stays in Redis (`P{t}:d:<gid>`, listed in its partition's
//! `P{t}:outbox` ZSET)
//! until MongoDB acknowledged its document. The writer leases a batch (the ZSET score
//! becomes "leased until"), builds the documents, inserts them (duplicates count as
//! written), and only then runs the finalize script (one call per batch), which deletes each
//! message's keys — once, whichever node gets there first — and queues its receipts
//! if [`crate::store::receipts::release`] has not already (it normally has, long before).
//! If MongoDB is down the batch is retried with a growing pause; nothing is deleted.
//! A node that dies mid-batch leaves leases that run out; the writer sleeps until the
//! earliest lease end it saw in any partition (a one-shot timer, not a scan) and takes
//! them over. It leases from the partitions it was woken for (a message finished
//! there) and those whose next entry fell due ([`Turns`]); a batch may span several. A
//! node restarted with the same node_id takes its predecessor's leases back at start
//! (the lease records node_id + epoch), so its own crash costs no lease wait.

use std::collections::BTreeMap;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::store::counters::Counters;
use crate::store::model::outcome::{outcome_document, receipts};
use crate::store::model::FinishedGroup;
use crate::store::outcomes::backlog::Backlog;
use crate::store::outcomes::known::Known;
use crate::store::outcomes::mongo::Outcomes;
use crate::store::redis::clock::Clock;
use crate::store::redis::connection::{Conn, Shared};
use crate::store::redis::partition::{self, Turns, Wake};
use crate::store::redis::scripts::outbox::FinalizeRecord;
use crate::store::redis::scripts::{ReceiptEntry, Scripts};
use crate::store::settings::StoreSettings;
use crate::store::{Counter, StoreError};

/// The outcome writer and what it uses of the store: borrowed from it by the task
/// that runs it, so that this module sees nothing else of it.
pub struct Finisher<'a> {
    pub settings: &'a StoreSettings,
    pub conn: &'a Shared,
    pub scripts: &'a Scripts,
    pub outcomes: &'a Outcomes,
    /// This node's epoch: its leases name it (`reclaim`).
    pub epoch: u64,
    pub clock: &'a Clock,
    /// Rung when a message finished in a partition.
    pub wake: &'a Wake,
    /// Finished groups this node holds already: leased without a read.
    pub known: &'a Known,
    /// The claim-due pass's and the releaser's backlog, which goes first.
    pub backlog: &'a Backlog,
    pub counters: &'a Counters,
    pub shutdown: &'a CancellationToken,
}

/// Groups per lease and finalize script call. A script holds Redis for every other
/// client while it runs, and all of a node's commands share one connection, in
/// order: leasing 256 three-part groups in one call took ~7 ms (SLOWLOG), the tail of
/// submit latency under mixed load. A slice of 64 runs ~1–2 ms; the slices go one
/// after the other so that submits get in between (the few extra calls cost little
/// beside MongoDB's insert of the batch).
const SCRIPT_SLICE: usize = 64;

impl Finisher<'_> {
    pub async fn run(self) {
        let shutdown = self.shutdown.clone();
        match self.reclaim().await {
            Ok(0) => {}
            Ok(n) => tracing::info!(n, "took back outbox leases of this node's previous run"),
            // Not fatal: those leases then run out as if another node had held them.
            Err(e) => tracing::warn!(error = %e, "could not take back this node's old leases"),
        }
        // Work may be waiting from before a restart, in any partition.
        let mut cursor = Turns::all();
        let mut wake_at: Option<tokio::time::Instant> = Some(tokio::time::Instant::now());
        loop {
            let timer = async {
                match wake_at {
                    Some(at) => tokio::time::sleep_until(at).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                _ = self.wake.notified() => {
                    // Let a few more finish, so they share one MongoDB round trip.
                    tokio::time::sleep(self.settings.outcome_flush_interval).await;
                }
                _ = timer => {}
                _ = shutdown.cancelled() => return,
            }
            cursor.add(self.wake.take(), self.clock.now_ms());
            wake_at = match self.drain(&mut cursor).await {
                Ok(()) => cursor.next_due().map(|ms| self.clock.instant_at(ms)),
                Err(e) => {
                    tracing::warn!(error = %e, "outcome writer: redis unavailable");
                    Some(tokio::time::Instant::now() + Duration::from_secs(1))
                }
            };
        }
    }

    /// Writes batches until the cursor's outboxes have nothing due. While MongoDB
    /// inserts batch k, the next batch is leased and batch k−1 finalized, so the Redis
    /// round trips (lease, reading the groups, finalize) hide behind the insert; one
    /// insert is in flight at a time.
    async fn drain(&self, cursor: &mut Turns) -> Result<(), StoreError> {
        self.yield_to_receipts().await;
        let mut lease = self.lease(cursor).await?;
        // Acknowledged by MongoDB, not finalized yet.
        let mut written: Option<Vec<FinishedGroup>> = None;
        loop {
            if lease.is_empty() {
                if let Some(done) = written.take() {
                    self.finalize(&done).await?;
                }
                return Ok(());
            }
            self.yield_to_receipts().await;
            let previous = written.take();
            let (inserted, next, finalized) =
                tokio::join!(self.insert(&lease), self.lease(cursor), async {
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
                return Ok(());
            }
            written = Some(lease);
            lease = next?;
        }
    }

    /// Waits (at most `backlog::MAX_YIELD`) while the claim-due pass or the receipt
    /// releaser works through a backlog: the messages are safe in the outbox, and
    /// their receipts are what the ESMEs wait for.
    async fn yield_to_receipts(&self) {
        if self
            .backlog
            .wait_idle(crate::store::outcomes::backlog::MAX_YIELD)
            .await
        {
            self.counters.add(Counter::OutcomeYields, 1);
        }
    }

    fn conn(&self) -> Conn {
        self.conn.get()
    }

    /// Makes the leases an earlier run of this node left behind due now, in every
    /// partition.
    async fn reclaim(&self) -> Result<u64, StoreError> {
        let mut n = 0;
        for p in 0..partition::COUNT {
            n += self
                .scripts
                .reclaim(&mut self.conn(), p, self.epoch)
                .await?;
        }
        Ok(n)
    }

    /// Leases a batch from the cursor's partitions in turn.
    async fn lease(&self, cursor: &mut Turns) -> Result<Vec<FinishedGroup>, StoreError> {
        let s = self.settings;
        let want = s.outcome_batch_size.max(1);
        let mut groups = Vec::new();
        // In slices of SCRIPT_SLICE groups, one call after the other (see there).
        while groups.len() < want {
            let Some(p) = cursor.current() else {
                break;
            };
            let ask = (want - groups.len()).min(SCRIPT_SLICE);
            let leased = self
                .scripts
                .lease(
                    &mut self.conn(),
                    p,
                    ask,
                    s.outbox_lease.as_millis() as u64,
                    self.epoch,
                )
                .await?;
            let got = leased.gids.len();
            if got < ask {
                // Nothing more due here: out of turn until woken or due.
                cursor.done(p, leased.next_due_ms);
            }
            // The groups this node holds already (`known`); the others are read.
            let mut unknown = Vec::new();
            for gid in leased.gids {
                match self.known.take(&gid) {
                    Some(g) => groups.push(g),
                    None => unknown.push(gid),
                }
            }
            let known = (got - unknown.len()) as u64;
            self.counters.add(Counter::LeasedKnown, known);
            self.counters.add(Counter::LeasedRead, unknown.len() as u64);
            if !unknown.is_empty() {
                self.read(p, &unknown, &mut groups).await?;
            }
        }
        Ok(groups)
    }

    /// Reads leased groups of partition `p` this node does not hold (READ_GROUPS)
    /// into `groups`.
    async fn read(
        &self,
        p: usize,
        gids: &[String],
        groups: &mut Vec<FinishedGroup>,
    ) -> Result<(), StoreError> {
        let read = self.scripts.read_groups(&mut self.conn(), p, gids).await?;
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
            match self.outcomes.write(docs.clone()).await {
                Ok(()) => break,
                Err(e) => {
                    self.counters.add(Counter::OutcomeWriteFailures, 1);
                    tracing::warn!(error = %e, batch = docs.len(), "outcome write failed; retrying");
                    tokio::select! {
                        _ = tokio::time::sleep(pause) => {}
                        // Leave the batch in the outbox; the next start writes it.
                        _ = self.shutdown.cancelled() => return Ok(false),
                    }
                    pause = (pause * 2).min(Duration::from_secs(5));
                }
            }
        }
        crate::metrics::outcome_written(started.elapsed());
        self.counters
            .add(Counter::OutcomesWritten, groups.len() as u64);
        Ok(true)
    }

    /// After MongoDB acknowledged the batch: deletes its messages' keys in Redis (a
    /// script per slice of groups, whatever their partitions on a standalone server),
    /// queueing the receipts that were not released yet.
    async fn finalize(&self, groups: &[FinishedGroup]) -> Result<(), StoreError> {
        let mut parted = Vec::with_capacity(groups.len());
        for g in groups {
            match partition::of_message_id(&g.gid) {
                Some(p) => parted.push((p, g)),
                None => tracing::error!(gid = g.gid, "a finished message without a partition"),
            }
        }
        // Receipts are normally released long before (crate::store::receipts::release): send them
        // again only for the gids still in their P{t}:fresh. A gid in the outbox is
        // final and cannot re-enter it, so one seen absent here is released for good.
        let mut by_part: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
        for (i, (p, _)) in parted.iter().enumerate() {
            by_part.entry(*p).or_default().push(i);
        }
        // One ZMSCORE per partition, all at once (the connection pipelines them; a
        // cluster sends each to its partition's primary).
        let scores: Vec<Vec<Option<f64>>> =
            futures::future::try_join_all(by_part.iter().map(|(p, idx)| {
                let mut conn = self.conn();
                let key = format!(
                    "{}fresh",
                    partition::prefix(self.settings.key_prefix.as_str(), *p)
                );
                let gids: Vec<&str> = idx.iter().map(|i| parted[*i].1.gid.as_str()).collect();
                let cmd = redis::cmd("ZMSCORE").arg(key).arg(gids).clone();
                async move { cmd.query_async::<Vec<Option<f64>>>(&mut conn).await }
            }))
            .await?;
        let mut fresh = vec![false; parted.len()];
        for ((_, idx), sc) in by_part.iter().zip(scores) {
            for (i, s) in idx.iter().zip(sc) {
                fresh[*i] = s.is_some();
            }
        }
        let mut records = Vec::with_capacity(parted.len());
        for ((p, g), fresh) in parted.into_iter().zip(fresh) {
            records.push(self.record(p, g, fresh)?);
        }
        if self.settings.per_partition_calls {
            // One partition per call (a cluster), the partitions at once.
            let mut parts: BTreeMap<usize, Vec<FinalizeRecord>> = BTreeMap::new();
            for r in records {
                parts.entry(r.part).or_default().push(r);
            }
            futures::future::try_join_all(
                parts
                    .values()
                    .flat_map(|rs| rs.chunks(SCRIPT_SLICE))
                    .map(
                        |slice| async move { self.scripts.finalize(&mut self.conn(), slice).await },
                    ),
            )
            .await?;
        } else {
            for slice in records.chunks(SCRIPT_SLICE) {
                self.scripts.finalize(&mut self.conn(), slice).await?;
            }
        }
        Ok(())
    }

    /// FINALIZE's record of group `g` of partition `p`, with its receipts if they may
    /// still be unreleased (`fresh`).
    fn record(
        &self,
        p: usize,
        g: &FinishedGroup,
        fresh: bool,
    ) -> Result<FinalizeRecord, StoreError> {
        let receipts = if !fresh {
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
        Ok(FinalizeRecord {
            part: p,
            gid: g.gid.clone(),
            account: g.meta.account.clone(),
            octets: g.segments.iter().map(|s| s.data.record_len()).sum(),
            receipts,
            segment_ids: g.segments.iter().map(|s| s.message_id.clone()).collect(),
        })
    }
}
