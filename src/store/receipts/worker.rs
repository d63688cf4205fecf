//! Sending queued receipts through the session side's [`ReceiptSink`].
//!
//! Receipts wait in Redis per account and partition (`P{t}:r:<acct>` ZSET id → due
//! time, `P{t}:rd:<acct>` hash id → payload; a receipt is in its message's partition)
//! until an ESME answered deliver_sm_resp OK. One worker per account takes due
//! receipts (leasing them, so a second node does not send the same one meanwhile)
//! from the partitions it was woken for ([`Turns`]: an announcement names its
//! partition; a bind, a rescan or a hold's end names all) and:
//! * OK → deletes it;
//! * NoReceiver → makes it due again and waits for `receiver_bound` of that account
//!   (or for new receipts) — no polling;
//!
//! A node where the account has no receiver bound does not take its receipts at all:
//! taking them would lease them away from the node whose receiver is bound, which
//! would then wait out the lease (found by the three-node skewed-clock test). It waits
//! for a receiver to bind here, and once per [`SWEEP`] (or the receipt lifetime, if
//! shorter) takes them anyway, so receipts nobody ever binds for are dropped at the
//! end of their lifetime.
//! * Refused / Timeout → due again after a growing pause;
//! * older than the lifetime → dropped, logged and counted.
//!
//! A worker sleeps until the earliest due time it saw (a one-shot timer), which also
//! picks up leases left by a node that died.
//!
//! Receipts leased to this node when they were queued come to the worker from memory
//! ([`crate::store::receipts::handoff`]; woken by [`DispatchEvent::Local`]): such a wake sends them
//! without a RECEIPT_TAKE, and the send, done and retry are those of a taken receipt.
//!
//! At start and after every resubscription the dispatcher rescans every partition's
//! `P{t}:racc`, so nothing waits for an event that was missed.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures::stream::{FuturesUnordered, StreamExt};
use tokio::sync::{broadcast, mpsc, Notify};

use crate::service::{DeliverError, ReceiptSink};
use crate::store::counters::Counters;
use crate::store::model::outcome::QueuedReceipt;
use crate::store::model::DeliveryResult;
use crate::store::receipts::announce::DispatchEvent;
use crate::store::receipts::handoff::Handoff;
use crate::store::receipts::lease::Local;
use crate::store::receipts::ready::HandOver;
use crate::store::redis::clock::Clock;
use crate::store::redis::connection::Shared;
use crate::store::redis::partition::{self, Turns};
use crate::store::redis::scripts::delivery::DeliveryEnd;
use crate::store::redis::scripts::ReceiptEntry;
use crate::store::redis::scripts::Scripts;
use crate::store::Counter;
use crate::store::{StoreError, StoreSettings};

/// How often a node without a receiver of the account takes its receipts anyway,
/// to drop those past their lifetime.
const SWEEP: Duration = Duration::from_secs(3600);

/// What the receipt workers use of the store.
#[derive(Clone, Copy)]
pub(crate) struct Env<'a> {
    pub settings: &'a StoreSettings,
    pub scripts: &'a Scripts,
    pub conn: &'a Shared,
    pub clock: &'a Clock,
    /// Receipts leased to this node, by account.
    pub handoff: &'a Handoff,
    pub counters: &'a Counters,
    /// Wakes the outcome writer (a forwarded message's delivery ended).
    pub finisher_wake: &'a partition::Wake,
    pub shutdown: &'a tokio_util::sync::CancellationToken,
}

impl<'a> Env<'a> {
    fn hand_over(&self) -> HandOver<'a> {
        HandOver {
            handoff: self.handoff,
            scripts: self.scripts,
            conn: self.conn,
        }
    }
}

/// An account's worker to start (on the store's task tracker, where it gets its
/// [`Env`]: [`Worker::new`]).
pub(crate) struct Start {
    account: String,
    wakes: Wakes,
    sink: Arc<dyn ReceiptSink>,
    dispatch: mpsc::Sender<DispatchEvent>,
}

/// Starts the worker of an account.
pub(crate) type Starter<'a> = Box<dyn Fn(Start) + Send + Sync + 'a>;

pub(crate) struct Dispatcher<'a> {
    prefix: &'a str,
    conn: &'a Shared,
    shutdown: &'a tokio_util::sync::CancellationToken,
    start: Starter<'a>,
    sink: Arc<dyn ReceiptSink>,
    events: mpsc::Receiver<DispatchEvent>,
    /// Its own queue's sending end, for workers that hand receipts to a worker of this
    /// node (a forwarded message's receipts to its sender's).
    dispatch: mpsc::Sender<DispatchEvent>,
    /// Per account: its worker's wake for Redis (new due receipts, a receiver bound,
    /// a rescan) and for receipts handed over in memory.
    workers: HashMap<String, Wakes>,
}

#[derive(Clone, Default)]
pub(crate) struct Wakes {
    /// Due receipts in Redis, in these partitions.
    redis: Arc<partition::Wake>,
    local: Arc<Notify>,
}

impl<'a> Dispatcher<'a> {
    pub fn new(
        prefix: &'a str,
        conn: &'a Shared,
        shutdown: &'a tokio_util::sync::CancellationToken,
        start: Starter<'a>,
        sink: Arc<dyn ReceiptSink>,
        events: mpsc::Receiver<DispatchEvent>,
        dispatch: mpsc::Sender<DispatchEvent>,
    ) -> Dispatcher<'a> {
        Dispatcher {
            prefix,
            conn,
            shutdown,
            start,
            sink,
            events,
            dispatch,
            workers: HashMap::new(),
        }
    }

    pub async fn run(mut self) {
        let mut bound = self.sink.receiver_bound();
        let shutdown = self.shutdown.clone();
        loop {
            tokio::select! {
                ev = self.events.recv() => match ev {
                    Some(DispatchEvent::Account(a, p)) => self.wakes(a).redis.wake(p),
                    Some(DispatchEvent::Rescan) => self.rescan().await,
                    Some(DispatchEvent::Local(a)) => self.wakes(a).local.notify_one(),
                    None => return,
                },
                b = bound.recv() => match b {
                    Ok(a) => self.wakes(a).redis.wake_all(),
                    Err(broadcast::error::RecvError::Lagged(_)) => self.rescan().await,
                    Err(broadcast::error::RecvError::Closed) => {
                        // The session side went away; keep serving other events.
                        bound = self.sink.receiver_bound();
                    }
                },
                _ = shutdown.cancelled() => return,
            }
        }
    }

    async fn rescan(&mut self) {
        for p in 0..partition::COUNT {
            let key = format!("{}racc", partition::prefix(self.prefix, p));
            match redis::cmd("SMEMBERS")
                .arg(&key)
                .query_async::<Vec<String>>(&mut self.conn.get())
                .await
            {
                Ok(accounts) => {
                    for a in accounts {
                        self.wakes(a).redis.wake(p);
                    }
                }
                Err(e) => tracing::warn!(error = %e, p, "receipt rescan failed"),
            }
        }
        for w in self.workers.values() {
            w.redis.wake_all();
        }
    }

    /// The account's worker's wakes, starting the worker if it has none yet.
    fn wakes(&mut self, account: String) -> &Wakes {
        if !self.workers.contains_key(&account) {
            let wakes = Wakes::default();
            (self.start)(Start {
                account: account.clone(),
                wakes: wakes.clone(),
                sink: self.sink.clone(),
                dispatch: self.dispatch.clone(),
            });
            self.workers.insert(account.clone(), wakes);
        }
        &self.workers[&account]
    }
}

pub(crate) struct Worker<'a> {
    env: Env<'a>,
    sink: Arc<dyn ReceiptSink>,
    dispatch: mpsc::Sender<DispatchEvent>,
    account: String,
    wakes: Wakes,
    /// Redis time (ms) of the next lifetime sweep while no receiver is bound here;
    /// 0 = none planned.
    next_sweep_ms: AtomicI64,
    /// Redis time (ms) by which a full round must run (0: none): a retry this
    /// worker queued falls due then, and nothing else would wake it for that.
    wake_by: AtomicI64,
    /// Redis time (ms) after which a full round looks at every partition (0: none):
    /// receipts held by a node that died are due by then, announced by nobody.
    look_all_by: AtomicI64,
    /// The partitions to take from, and when the others have receipts due.
    turns: std::sync::Mutex<Turns>,
}

/// Batches of receipts of one account in flight at once on a node (each up to
/// `receipt_window`).
const ROUNDS_IN_FLIGHT: usize = 4;

/// How long a round goes on sending receipts handed over while its batches are in
/// flight, before it ends and lets the worker look at Redis.
const LOCAL_ROUND: Duration = Duration::from_millis(50);

/// Attempts of one RECEIPT_DONE (see `Worker::done_call`).
const DONE_TRIES: u32 = 6;

/// A batch taken from Redis (or from this node's memory: `local`): its Redis time,
/// the next due time (-1: none) and the receipts.
struct Taken {
    now: i64,
    next: i64,
    receipts: Vec<(String, QueuedReceipt)>,
    local: bool,
}

/// What batches of sends reported, merged.
#[derive(Default)]
struct Sent {
    waiting_for_receiver: bool,
    drop_at: Option<i64>,
    failed: Option<StoreError>,
}

impl Sent {
    fn add(&mut self, r: Option<Result<Sent, StoreError>>) {
        match r {
            Some(Ok(s)) => {
                self.waiting_for_receiver |= s.waiting_for_receiver;
                self.drop_at = match (self.drop_at, s.drop_at) {
                    (Some(a), Some(b)) => Some(a.min(b)),
                    (a, b) => a.or(b),
                };
                if s.failed.is_some() {
                    self.failed = s.failed;
                }
            }
            Some(Err(e)) => self.failed = Some(e),
            None => {}
        }
    }

    async fn drain<F: std::future::Future<Output = Result<Sent, StoreError>>>(
        &mut self,
        in_flight: &mut FuturesUnordered<F>,
    ) {
        while let Some(r) = in_flight.next().await {
            self.add(Some(r));
        }
    }
}

/// A forwarded message's delivery that ended, with the sender's receipts it owes.
type Ending = (DeliveryEnd, Vec<(String, QueuedReceipt)>);

/// What one send left to do.
enum Sent1 {
    /// A receipt delivered or dropped: off the queue.
    Done(String),
    /// A forwarded message's delivery ended (delivered or refused for good), with the
    /// sender's receipts it owes.
    Ended(Box<Ending>),
    /// No receiver bound; a receipt expires at this time.
    Waiting(Option<i64>),
    /// Offered again later.
    Retry,
}

/// What a round of sends left the worker waiting for.
enum Wait {
    /// Work is due now.
    Nothing,
    /// The Redis time at which the next receipt becomes due.
    Until(i64),
    /// Nothing due; sleep until notified.
    Notify,
    /// No receiver bound: wait for one, but wake at this time to drop the expired.
    Receiver(Option<i64>),
}

/// When a worker without a receiver takes its account's receipts anyway.
#[derive(Debug, PartialEq, Eq)]
enum Sweep {
    /// At this Redis time (ms): wait for a receiver until then.
    At(i64),
    /// Now: take them, so that those past their lifetime are dropped.
    Now,
}

/// The sweep of a worker without a receiver: `planned` (Redis ms, 0: none yet) or,
/// when none is planned, `every` ms from `now`.
fn sweep(planned: i64, now: i64, every: i64) -> Sweep {
    match planned {
        0 => Sweep::At(now + every),
        at if now < at => Sweep::At(at),
        _ => Sweep::Now,
    }
}

impl<'a> Worker<'a> {
    pub fn new(env: Env<'a>, start: Start) -> Worker<'a> {
        Worker {
            env,
            sink: start.sink,
            dispatch: start.dispatch,
            account: start.account,
            wakes: start.wakes,
            next_sweep_ms: AtomicI64::new(0),
            wake_by: AtomicI64::new(0),
            look_all_by: AtomicI64::new(0),
            turns: std::sync::Mutex::new(Turns::none()),
        }
    }

    pub async fn run(self) {
        let shutdown = self.env.shutdown.clone();
        // A round for receipts handed over in memory only (`full` false) takes nothing
        // from Redis and keeps the timer the last full round set.
        let mut full = true;
        let mut at = None;
        loop {
            let wait = match self.round(full).await {
                Ok(w) => w,
                Err(e) => {
                    tracing::warn!(error = %e, account = %self.account, "receipt worker: redis unavailable");
                    Some(Wait::Until(self.env.clock.now_ms() + 1000))
                }
            };
            match wait {
                Some(Wait::Nothing) => {
                    full = true;
                    continue;
                }
                Some(Wait::Until(ms) | Wait::Receiver(Some(ms))) => {
                    at = Some(self.env.clock.instant_at(ms))
                }
                Some(Wait::Notify | Wait::Receiver(None)) => at = None,
                None => {}
            }
            // Only a full round (a RECEIPT_TAKE) sees what is due in Redis. While this
            // node sends from memory nothing announces the account, so a full round
            // is also due when a retry of this worker falls due, and at least once
            // per hold: what another node that died held becomes due by then.
            let mut by = self.wake_by.swap(0, Ordering::Relaxed);
            if !full {
                let hold = self.env.clock.now_ms()
                    + crate::store::receipts::lease::hold_ms(self.env.settings.receipt_lease);
                by = if by == 0 { hold } else { by.min(hold) };
                let _ = self.look_all_by.compare_exchange(
                    0,
                    hold,
                    Ordering::Relaxed,
                    Ordering::Relaxed,
                );
            }
            if by != 0 {
                let t = self.env.clock.instant_at(by);
                at = Some(at.map_or(t, |a| a.min(t)));
            }
            let timer = async {
                match at {
                    Some(at) => tokio::time::sleep_until(at).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                _ = self.wakes.redis.notified() => full = true,
                _ = self.wakes.local.notified() => full = false,
                _ = timer => full = true,
                _ = shutdown.cancelled() => return,
            }
        }
    }

    /// Sends the receipts handed over in memory and, in a `full` round, takes the
    /// due ones from Redis, trying each once. While one batch waits for its
    /// deliver_sm_resps, the next is taken and sent ([`ROUNDS_IN_FLIGHT`] at most):
    /// one batch at a time made the receipt rate one window per (take + slowest
    /// response + done) and left receipts seconds behind under load (BENCHMARKS.md).
    /// None: a round of handed-over receipts only, which changes no wait.
    async fn round(&self, full: bool) -> Result<Option<Wait>, StoreError> {
        let s = &self.env.settings;
        if !self.sink.has_receiver(&self.account) {
            if let Some(wait) = self.without_receiver(full).await {
                return Ok(wait);
            }
        } else {
            self.next_sweep_ms.store(0, Ordering::Relaxed);
        }
        let mut in_flight = FuturesUnordered::new();
        let mut sent = Sent::default();
        // A full round takes from Redis and from memory in turns, so that neither
        // starves the other under load; it ends when Redis has nothing due.
        let mut local_turn = true;
        let idle = loop {
            let mut local = None;
            if local_turn || !full {
                let l = self.take_local().await;
                if !l.receipts.is_empty() {
                    local = Some(l);
                }
            }
            local_turn = local.is_none();
            let taken = match local {
                Some(l) => l,
                None if !full => break None,
                None => {
                    // The batches in flight go on while this one is taken: their finished
                    // sends free window slots and report (pushed futures run only when polled).
                    let taken = {
                        let take = self.take();
                        tokio::pin!(take);
                        loop {
                            tokio::select! {
                                t = &mut take => break t,
                                Some(r) = in_flight.next(), if !in_flight.is_empty() => sent.add(Some(r)),
                            }
                        }
                    };
                    match taken {
                        Ok(t) => t,
                        Err(e) => {
                            // What is in flight still reports what was delivered.
                            sent.drain(&mut in_flight).await;
                            return Err(e);
                        }
                    }
                }
            };
            if taken.receipts.is_empty() {
                break Some(if taken.next >= 0 {
                    Wait::Until(taken.next)
                } else {
                    Wait::Notify
                });
            }
            // More may be waiting: handed-over receipts always (taken until none is
            // left), a full take from Redis.
            let more = taken.local || taken.receipts.len() >= s.receipt_window;
            in_flight.push(self.send(taken));
            if in_flight.len() >= ROUNDS_IN_FLIGHT || !more {
                // A full take means more is due now: take again at once while there
                // is room. Otherwise take again when this batch is done, as with one
                // batch at a time: taking on every announcement meanwhile meant more,
                // smaller Redis calls competing with the submits (receipt p99 at
                // 5k/s mixed 0.7 -> 1.2 s).
                sent.add(in_flight.next().await);
            }
            if sent.failed.is_some() || sent.waiting_for_receiver {
                break Some(Wait::Nothing);
            }
        };
        // Until the batches in flight are done, receipts handed over meanwhile are
        // sent as they come (within ROUNDS_IN_FLIGHT): waiting for the slowest
        // deliver_sm_resp and the DELIVERY_DONE of the batches before held each new one
        // that long (docs/design/receipts.md). For LOCAL_ROUND at most: under steady
        // traffic the round would otherwise never end, and only the run loop takes
        // what is due in Redis (another node's receipts, a dead node's leases).
        let open_until = tokio::time::Instant::now() + LOCAL_ROUND;
        while !in_flight.is_empty() {
            let open = in_flight.len() < ROUNDS_IN_FLIGHT
                && sent.failed.is_none()
                && !sent.waiting_for_receiver
                && tokio::time::Instant::now() < open_until;
            tokio::select! {
                r = in_flight.next() => sent.add(r),
                _ = self.wakes.local.notified(), if open => {
                    let l = self.take_local().await;
                    if !l.receipts.is_empty() {
                        in_flight.push(self.send(l));
                    }
                    if self.env.handoff.has(&self.account) {
                        // More than a window was handed over: the next look takes it.
                        self.wakes.local.notify_one();
                    }
                }
            }
        }
        if self.env.handoff.has(&self.account) {
            // Handed over after this round's last look: the push that found the
            // queue non-empty woke nobody.
            self.wakes.local.notify_one();
        }
        if let Some(e) = sent.failed {
            return Err(e);
        }
        Ok(if sent.waiting_for_receiver {
            Some(Wait::Receiver(sent.drop_at))
        } else {
            idle
        })
    }

    /// No receiver of the account is bound here: receipts handed over meanwhile go
    /// back to Redis for any node, and a `full` round takes nothing until the next
    /// lifetime sweep ([`sweep`]). `None`: sweep now (the round goes on and drops
    /// what outlived its lifetime); else what the round returns.
    async fn without_receiver(&self, full: bool) -> Option<Option<Wait>> {
        // Handed over while a receiver was bound; it is gone: due in Redis for any
        // node (announced, so a node with a receiver sends them).
        let back: Vec<_> = self
            .env
            .handoff
            .take(&self.account, usize::MAX)
            .into_iter()
            .map(|l| l.into_held())
            .collect();
        crate::store::receipts::ready::make_due(self.env.hand_over(), &back).await;
        if !full {
            return Some(None);
        }
        let every = SWEEP.min(self.env.settings.receipt_lifetime).as_millis() as i64;
        let planned = self.next_sweep_ms.load(Ordering::Relaxed);
        match sweep(planned, self.env.clock.now_ms(), every) {
            Sweep::At(at) => {
                self.next_sweep_ms.store(at, Ordering::Relaxed);
                Some(Some(Wait::Receiver(Some(at))))
            }
            Sweep::Now => {
                self.next_sweep_ms.store(0, Ordering::Relaxed);
                self.wakes.redis.wake_all();
                None
            }
        }
    }

    /// Up to a window of the receipts handed over in memory that can still be sent
    /// within their lease ([`crate::store::receipts::lease::Local::usable`]); the others are made due
    /// in Redis, for any node.
    async fn take_local(&self) -> Taken {
        let s = &self.env.settings;
        let lease = s.receipt_lease.as_millis() as i64;
        let now = self.env.clock.now_ms();
        let mut receipts = Vec::new();
        let mut late = Vec::new();
        while receipts.is_empty() {
            let batch = self
                .env
                .handoff
                .take(&self.account, s.receipt_window.max(1));
            if batch.is_empty() {
                break;
            }
            for l in batch {
                if l.usable(now, lease) {
                    receipts.push((l.id, l.receipt));
                } else {
                    late.push(l.into_held());
                }
            }
        }
        crate::store::receipts::ready::make_due(self.env.hand_over(), &late).await;
        Taken {
            now,
            next: -1,
            receipts,
            local: true,
        }
    }

    fn turns(&self) -> std::sync::MutexGuard<'_, Turns> {
        self.turns.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Leases up to a window of due receipts from the partitions in turn (empty
    /// when none has any due: `next` is then the earliest next due time).
    async fn take(&self) -> Result<Taken, StoreError> {
        let s = &self.env.settings;
        let now = self.env.clock.now_ms();
        let mut mask = self.wakes.redis.take();
        let all_by = self.look_all_by.load(Ordering::Relaxed);
        if all_by != 0 && all_by <= now {
            self.look_all_by.store(0, Ordering::Relaxed);
            mask = u64::MAX;
        }
        self.turns().add(mask, now);
        loop {
            let Some(p) = self.turns().current() else {
                return Ok(Taken {
                    now,
                    next: self.turns().next_due().unwrap_or(-1),
                    receipts: Vec::new(),
                    local: false,
                });
            };
            let taken = self
                .env
                .scripts
                .receipt_take(
                    &mut self.env.conn.get(),
                    p,
                    &self.account,
                    s.receipt_window,
                    s.receipt_lease.as_millis() as u64,
                )
                .await?;
            if taken.receipts.len() < s.receipt_window {
                self.turns().done(p, taken.next_due_ms);
            }
            let mut receipts = Vec::new();
            for (id, payload) in taken.receipts {
                match serde_json::from_str::<QueuedReceipt>(&payload) {
                    Ok(r) => receipts.push((id, r)),
                    Err(e) => {
                        tracing::error!(error = %e, id, "unreadable receipt dropped");
                        self.done(std::slice::from_ref(&id)).await?;
                    }
                }
            }
            if !receipts.is_empty() {
                // Forwarded messages of higher priority_flag first within the batch
                // (receipts and the rest keep their queue order).
                receipts.sort_by_key(|(_, r)| {
                    std::cmp::Reverse(r.receipt.forward.as_ref().map_or(0, |f| f.priority_flag))
                });
                return Ok(Taken {
                    now: taken.now_ms,
                    next: -1,
                    receipts,
                    local: false,
                });
            }
        }
    }

    /// Tries each taken receipt once; the done ones (delivered or dropped) leave Redis
    /// together.
    async fn send(&self, taken: Taken) -> Result<Sent, StoreError> {
        let s = &self.env.settings;
        let lifetime = s.receipt_lifetime.as_millis() as i64;
        let now = taken.now;
        let local = taken.local;
        // Each send reports whether its receipt is done, a forwarded message's
        // delivery ended, or it waits for a receiver (and when it expires).
        let sends = taken.receipts.into_iter().map(|(id, r)| async move {
            // A forwarded message's delivery ends by its message's deadline, not here.
            if r.delivery.is_none() && r.created_ms + lifetime <= now {
                tracing::warn!(id, account = %self.account, "receipt dropped after its lifetime");
                self.env.counters.add(Counter::ReceiptsDropped, 1);
                return Ok::<_, StoreError>(Sent1::Done(id));
            }
            if r.attempts == 0 && r.delivery.is_none() {
                crate::metrics::receipt_wait_ms(crate::metrics::ReceiptStage::Taken, now - r.created_ms);
            }
            let result = self.sink.deliver(r.receipt.clone()).await;
            if let Some(d) = &r.delivery {
                let end = |delivered: bool, status: u32| -> Result<Sent1, StoreError> {
                    use smpp_protocol::receipt::ReceiptStat;
                    let stat = if delivered {
                        ReceiptStat::Delivrd
                    } else {
                        ReceiptStat::Undeliv
                    };
                    let at_ms = self.env.clock.now_ms();
                    // The sender's receipts, queued by the same DELIVERY_DONE (leased
                    // to this node and sent from memory when its receiver is here).
                    let mut receipts = Vec::new();
                    let mut queued = Vec::new();
                    for stub in &d.receipts {
                        if let Some((rid, q)) = stub.receipt(stat, status, at_ms, at_ms, None) {
                            receipts.push(ReceiptEntry {
                                account: q.receipt.system_id.clone(),
                                id: rid.clone(),
                                payload: serde_json::to_string(&q).map_err(|e| {
                                    StoreError::Corrupt(format!("receipt: {e}"))
                                })?,
                            });
                            queued.push((rid, q));
                        }
                    }
                    let local = queued
                        .first()
                        .is_some_and(|(_, q)| self.sink.has_receiver(&q.receipt.system_id));
                    Ok(Sent1::Ended(Box::new((DeliveryEnd {
                        id: id.clone(),
                        gid: d.gid.clone(),
                        seq: d.seq,
                        result: DeliveryResult {
                            stat,
                            status,
                            attempts: r.attempts + 1,
                            at_ms,
                            node: self.env.settings.node_id.to_owned(),
                        }
                        .encode(),
                        receipts,
                        local,
                    }, queued))))
                };
                match result {
                    Ok(()) => return end(true, 0),
                    Err(DeliverError::Refused(st)) if s.delivery.is_permanent(st) => {
                        return end(false, st)
                    }
                    _ => {}
                }
            }
            match result {
                Ok(()) => {
                    self.env.counters.add(Counter::ReceiptsDelivered, 1);
                    if local {
                        self.env.counters.add(Counter::ReceiptsSentLocal, 1);
                    }
                    Ok(Sent1::Done(id))
                }
                Err(DeliverError::NoReceiver) => {
                    let r = self.notify_held(&id, r).await?;
                    self.retry(&id, &r, 0).await?;
                    Ok(Sent1::Waiting(
                        r.delivery.is_none().then_some(r.created_ms + lifetime),
                    ))
                }
                Err(e) => {
                    let mut again = self.notify_held(&id, r.clone()).await?;
                    again.attempts += 1;
                    let delay = match again.delivery {
                        Some(_) => backoff(s.delivery.retry_min, s.delivery.retry_max, again.attempts),
                        None => backoff(s.receipt_retry_min, s.receipt_retry_max, again.attempts),
                    };
                    tracing::debug!(error = %e, id, delay_ms = delay, "deliver_sm not accepted; will retry");
                    self.retry(&id, &again, delay).await?;
                    self.wake_by(now + delay as i64);
                    Ok(Sent1::Retry)
                }
            }
        });
        let results = futures::future::join_all(sends).await;
        let mut done = Vec::new();
        let mut ended = Vec::new();
        let mut sent = Sent::default();
        for r in results {
            match r {
                Ok(Sent1::Done(id)) => done.push(id),
                Ok(Sent1::Ended(e)) => ended.push(*e),
                Ok(Sent1::Waiting(expiry)) => {
                    sent.waiting_for_receiver = true;
                    if let Some(expiry) = expiry {
                        sent.drop_at = Some(sent.drop_at.map_or(expiry, |d: i64| d.min(expiry)));
                    }
                }
                Ok(Sent1::Retry) => {}
                Err(e) => sent.failed = Some(e),
            }
        }
        // Even when a retry failed: what was delivered must not be sent again.
        self.done(&done).await?;
        self.ended(ended).await?;
        Ok(sent)
    }

    /// A forwarded message's delivery is held (no receiver, a temporary refusal): its
    /// sender's intermediate notification, if asked for and not sent yet, is queued
    /// (`<id>.n`, once); returns the delivery without it, to put back.
    async fn notify_held(
        &self,
        id: &str,
        mut r: QueuedReceipt,
    ) -> Result<QueuedReceipt, StoreError> {
        let Some(n) = r.delivery.as_mut().and_then(|d| d.notify.take()) else {
            return Ok(r);
        };
        let Some(p) = partition::of_queue_id(id) else {
            return Ok(r);
        };
        let account = n.system_id.clone();
        let queued = QueuedReceipt {
            receipt: n,
            created_ms: self.env.clock.now_ms(),
            attempts: 0,
            delivery: None,
        };
        let payload = serde_json::to_string(&queued)
            .map_err(|e| StoreError::Corrupt(format!("notification: {e}")))?;
        self.env
            .scripts
            .receipt_add(
                &mut self.env.conn.get(),
                p,
                &account,
                &format!("{id}.n"),
                &payload,
            )
            .await?;
        Ok(r)
    }

    /// Ends forwarded messages' deliveries (DELIVERY_DONE, one call per partition);
    /// the messages that have nothing left to deliver go to this node's outcome
    /// writer and releaser (their receipts to the sender).
    async fn ended(&self, ends: Vec<Ending>) -> Result<(), StoreError> {
        let lease_ms = crate::store::receipts::lease::hold_ms(self.env.settings.receipt_lease);
        let mut parts: BTreeMap<usize, Vec<Ending>> = BTreeMap::new();
        for e in ends {
            match partition::of_message_id(&e.0.id) {
                Some(p) => parts.entry(p).or_default().push(e),
                None => tracing::error!(id = e.0.id, "a delivery id without a partition"),
            }
        }
        for (p, ends) in parts {
            let (records, mut receipts): (Vec<DeliveryEnd>, Vec<_>) = ends.into_iter().unzip();
            let r = self
                .env
                .scripts
                .delivery_done(
                    &mut self.env.conn.get(),
                    p,
                    &self.account,
                    lease_ms,
                    &records,
                )
                .await?;
            crate::metrics::forwarded(&self.account, records.len() as u64);
            if !r.done.is_empty() {
                // Their receipts are queued; their outcomes are the writer's.
                self.env.finisher_wake.wake(p);
            }
            // The receipts this call queued leased to this node go to their worker here.
            let held_until = self.env.clock.now_ms() + lease_ms;
            let mut local = Vec::new();
            for (rec, owed) in records.iter().zip(receipts.iter_mut()) {
                if rec.local && r.ended.contains(&rec.id) {
                    for (id, receipt) in owed.drain(..) {
                        let account = receipt.receipt.system_id.clone();
                        local.push((
                            account,
                            Local {
                                id,
                                receipt,
                                held_until,
                            },
                        ));
                    }
                }
            }
            if !local.is_empty() {
                crate::store::receipts::ready::hand_over(
                    self.env.hand_over(),
                    &self.dispatch,
                    local,
                    Vec::new(),
                )
                .await;
            }
        }
        Ok(())
    }

    /// Asks for a full round by Redis time `ms`.
    fn wake_by(&self, ms: i64) {
        let _ = self
            .wake_by
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |b| {
                Some(if b == 0 { ms } else { b.min(ms) })
            });
    }

    /// Removes receipts that are done (delivered or dropped), one script call per
    /// partition (a receipt id is its message's message_id, which names it).
    async fn done(&self, ids: &[String]) -> Result<(), StoreError> {
        let mut parts: BTreeMap<usize, Vec<String>> = BTreeMap::new();
        for id in ids {
            match partition::of_queue_id(id) {
                Some(p) => parts.entry(p).or_default().push(id.clone()),
                None => tracing::error!(id, "a receipt id without a partition"),
            }
        }
        if parts.is_empty() {
            return Ok(());
        }
        let parts: Vec<(usize, Vec<String>)> = parts.into_iter().collect();
        if self.env.settings.per_partition_calls {
            futures::future::try_join_all(parts.chunks(1).map(|one| self.done_call(one))).await?;
        } else {
            self.done_call(&parts).await?;
        }
        Ok(())
    }

    /// One RECEIPT_DONE, tried again a few times (0.1 s doubling, ~3 s in all) before
    /// giving up: these receipts were delivered, and one left leased is sent again when
    /// its lease ends (seen around a killed cluster primary, whose partitions answer
    /// again after its replica's promotion).
    async fn done_call(&self, parts: &[(usize, Vec<String>)]) -> Result<(), StoreError> {
        let mut pause = Duration::from_millis(100);
        let mut tries = 0;
        loop {
            let r = self
                .env
                .scripts
                .receipt_done(&mut self.env.conn.get(), &self.account, parts)
                .await;
            tries += 1;
            match r {
                Err(e) if tries < DONE_TRIES && !self.env.shutdown.is_cancelled() => {
                    tracing::debug!(error = %e, "receipt done not recorded; trying again");
                    tokio::select! {
                        _ = tokio::time::sleep(pause) => {}
                        _ = self.env.shutdown.cancelled() => return Err(e),
                    }
                    pause *= 2;
                }
                other => return other,
            }
        }
    }

    async fn retry(&self, id: &str, r: &QueuedReceipt, delay_ms: u64) -> Result<(), StoreError> {
        let Some(p) = partition::of_queue_id(id) else {
            tracing::error!(id, "a receipt id without a partition");
            return Ok(());
        };
        let payload =
            serde_json::to_string(r).map_err(|e| StoreError::Corrupt(format!("receipt: {e}")))?;
        self.env
            .scripts
            .receipt_retry(
                &mut self.env.conn.get(),
                p,
                &self.account,
                id,
                delay_ms,
                &payload,
            )
            .await?;
        let at = self.env.clock.now_ms() + delay_ms as i64;
        self.turns().due_at(p, at);
        Ok(())
    }
}

/// min · 2^(attempts−1), capped at max, in ms.
fn backoff(min: Duration, max: Duration, attempts: u32) -> u64 {
    let factor = 1u64 << attempts.saturating_sub(1).min(20);
    (min.as_millis() as u64)
        .saturating_mul(factor)
        .min(max.as_millis() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_worker_without_a_receiver_plans_one_sweep_and_takes_its_receipts_at_it() {
        const HOUR: i64 = 3_600_000;
        // None planned: one, `every` from now.
        assert_eq!(sweep(0, 1_000, HOUR), Sweep::At(1_000 + HOUR));
        // Planned: waits for it, whatever wakes the worker meanwhile.
        assert_eq!(sweep(1_000 + HOUR, 5_000, HOUR), Sweep::At(1_000 + HOUR));
        // Its time: takes them now.
        assert_eq!(sweep(1_000 + HOUR, 1_000 + HOUR, HOUR), Sweep::Now);
        assert_eq!(sweep(1_000 + HOUR, 9 * HOUR, HOUR), Sweep::Now);
    }

    #[test]
    fn a_retry_waits_twice_as_long_each_time_up_to_the_max() {
        let (min, max) = (Duration::from_secs(1), Duration::from_secs(60));
        let waits: Vec<u64> = (1..=8).map(|n| backoff(min, max, n)).collect();
        assert_eq!(
            waits,
            [1_000, 2_000, 4_000, 8_000, 16_000, 32_000, 60_000, 60_000]
        );
        // No attempt yet counts as the first; a huge count does not overflow.
        assert_eq!(backoff(min, max, 0), 1_000);
        assert_eq!(backoff(min, max, u32::MAX), 60_000);
    }
}
