//! Sending queued receipts through the session side's [`ReceiptSink`].
//!
//! Receipts wait in Redis per account (`P:r:<acct>` ZSET id → due time, `P:rd:<acct>`
//! hash id → payload) until an ESME answered deliver_sm_resp OK. One worker per
//! account takes due receipts (leasing them, so a second node does not send the same
//! one meanwhile) and:
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
//! picks up leases left by a node that died. At start and after every
//! resubscription the dispatcher rescans `P:racc`, so nothing waits for an event that
//! was missed.

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures::stream::{FuturesUnordered, StreamExt};
use tokio::sync::{broadcast, mpsc, Notify};

use super::outcome::QueuedReceipt;
use super::value::{int_at, items, str_at, string};
use super::{Inner, StoreError};
use crate::service::{DeliverError, ReceiptSink};

/// How often a node without a receiver of the account takes its receipts anyway,
/// to drop those past their lifetime.
const SWEEP: Duration = Duration::from_secs(3600);

/// What wakes the dispatcher.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DispatchEvent {
    /// This account has new receipts (announced on `P:receipts`).
    Account(String),
    /// Look at every account with receipts (after a (re)subscription).
    Rescan,
}

pub struct Dispatcher {
    inner: Arc<Inner>,
    sink: Arc<dyn ReceiptSink>,
    events: mpsc::Receiver<DispatchEvent>,
    workers: HashMap<String, Arc<Notify>>,
}

impl Dispatcher {
    pub fn new(
        inner: Arc<Inner>,
        sink: Arc<dyn ReceiptSink>,
        events: mpsc::Receiver<DispatchEvent>,
    ) -> Dispatcher {
        Dispatcher {
            inner,
            sink,
            events,
            workers: HashMap::new(),
        }
    }

    pub async fn run(mut self) {
        let mut bound = self.sink.receiver_bound();
        let shutdown = self.inner.shutdown.clone();
        loop {
            tokio::select! {
                ev = self.events.recv() => match ev {
                    Some(DispatchEvent::Account(a)) => self.wake(a),
                    Some(DispatchEvent::Rescan) => self.rescan().await,
                    None => return,
                },
                b = bound.recv() => match b {
                    Ok(a) => self.wake(a),
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
        let key = format!("{}racc", self.inner.prefix());
        match redis::cmd("SMEMBERS")
            .arg(&key)
            .query_async::<Vec<String>>(&mut self.inner.conn())
            .await
        {
            Ok(accounts) => {
                for a in accounts {
                    self.wake(a);
                }
            }
            Err(e) => tracing::warn!(error = %e, "receipt rescan failed"),
        }
        for n in self.workers.values() {
            n.notify_one();
        }
    }

    fn wake(&mut self, account: String) {
        if let Some(n) = self.workers.get(&account) {
            n.notify_one();
            return;
        }
        let notify = Arc::new(Notify::new());
        self.workers.insert(account.clone(), notify.clone());
        let worker = Worker {
            inner: self.inner.clone(),
            sink: self.sink.clone(),
            account,
            notify,
            next_sweep_ms: AtomicI64::new(0),
        };
        tokio::spawn(worker.run());
    }
}

struct Worker {
    inner: Arc<Inner>,
    sink: Arc<dyn ReceiptSink>,
    account: String,
    notify: Arc<Notify>,
    /// Redis time (ms) of the next lifetime sweep while no receiver is bound here;
    /// 0 = none planned.
    next_sweep_ms: AtomicI64,
}

/// Batches of receipts of one account in flight at once on a node (each up to
/// `receipt_window`).
const ROUNDS_IN_FLIGHT: usize = 4;

/// A batch taken from Redis: its Redis time, the next due time (-1: none) and the
/// receipts.
struct Taken {
    now: i64,
    next: i64,
    receipts: Vec<(String, QueuedReceipt)>,
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

impl Worker {
    async fn run(self) {
        let shutdown = self.inner.shutdown.clone();
        loop {
            let wait = match self.round().await {
                Ok(w) => w,
                Err(e) => {
                    tracing::warn!(error = %e, account = %self.account, "receipt worker: redis unavailable");
                    Wait::Until(self.inner.clock.now_ms() + 1000)
                }
            };
            let at = match wait {
                Wait::Nothing => continue,
                Wait::Until(ms) | Wait::Receiver(Some(ms)) => Some(self.inner.clock.instant_at(ms)),
                Wait::Notify | Wait::Receiver(None) => None,
            };
            let timer = async {
                match at {
                    Some(at) => tokio::time::sleep_until(at).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                _ = self.notify.notified() => {}
                _ = timer => {}
                _ = shutdown.cancelled() => return,
            }
        }
    }

    /// Takes the due receipts and tries each once. While one batch waits for its
    /// deliver_sm_resps, the next is taken and sent ([`ROUNDS_IN_FLIGHT`] at most):
    /// one batch at a time made the receipt rate one window per (take + slowest
    /// response + done) and left receipts seconds behind under load (BENCHMARKS.md).
    async fn round(&self) -> Result<Wait, StoreError> {
        let s = &self.inner.settings;
        if !self.sink.has_receiver(&self.account) {
            let now = self.inner.clock.now_ms();
            let planned = self.next_sweep_ms.load(Ordering::Relaxed);
            if planned == 0 || now < planned {
                let at = if planned == 0 {
                    let every = SWEEP.min(s.receipt_lifetime).as_millis() as i64;
                    self.next_sweep_ms.store(now + every, Ordering::Relaxed);
                    now + every
                } else {
                    planned
                };
                return Ok(Wait::Receiver(Some(at)));
            }
            // Sweep time: take them this once (expired ones are dropped below).
            self.next_sweep_ms.store(0, Ordering::Relaxed);
        } else {
            self.next_sweep_ms.store(0, Ordering::Relaxed);
        }
        let mut in_flight = FuturesUnordered::new();
        let mut sent = Sent::default();
        let idle = loop {
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
            let taken = match taken {
                Ok(t) => t,
                Err(e) => {
                    // What is in flight still reports what was delivered.
                    sent.drain(&mut in_flight).await;
                    return Err(e);
                }
            };
            if taken.receipts.is_empty() {
                break if taken.next >= 0 {
                    Wait::Until(taken.next)
                } else {
                    Wait::Notify
                };
            }
            let full = taken.receipts.len() >= s.receipt_window;
            in_flight.push(self.send(taken));
            if in_flight.len() >= ROUNDS_IN_FLIGHT || !full {
                // A full take means more is due now: take again at once while there
                // is room. Otherwise take again when this batch is done, as with one
                // batch at a time: taking on every announcement meanwhile meant more,
                // smaller Redis calls competing with the submits (receipt p99 at
                // 5k/s mixed 0.7 -> 1.2 s).
                sent.add(in_flight.next().await);
            }
            if sent.failed.is_some() || sent.waiting_for_receiver {
                break Wait::Nothing;
            }
        };
        sent.drain(&mut in_flight).await;
        if let Some(e) = sent.failed {
            return Err(e);
        }
        Ok(if sent.waiting_for_receiver {
            Wait::Receiver(sent.drop_at)
        } else {
            idle
        })
    }

    /// Leases up to a window of due receipts.
    async fn take(&self) -> Result<Taken, StoreError> {
        let s = &self.inner.settings;
        let reply: redis::Value = self
            .inner
            .scripts
            .receipt_take
            .arg(self.inner.prefix())
            .arg(self.inner.node())
            .arg(&self.account)
            .arg(s.receipt_window)
            .arg(s.receipt_lease.as_millis() as u64)
            .invoke_async(&mut self.inner.conn())
            .await?;
        let a = items(reply);
        let now = int_at(&a, 0, "receipt take")?;
        let next = int_at(&a, 1, "receipt take")?;
        let mut receipts = Vec::new();
        for pair in a[2..].chunks(2) {
            let id = str_at(pair, 0, "receipt id")?;
            let payload = pair.get(1).and_then(string).unwrap_or_default();
            match serde_json::from_str::<QueuedReceipt>(&payload) {
                Ok(r) => receipts.push((id, r)),
                Err(e) => {
                    tracing::error!(error = %e, id, "unreadable receipt dropped");
                    self.done(std::slice::from_ref(&id)).await?;
                }
            }
        }
        Ok(Taken {
            now,
            next,
            receipts,
        })
    }

    /// Tries each taken receipt once; the done ones (delivered or dropped) leave Redis
    /// together.
    async fn send(&self, taken: Taken) -> Result<Sent, StoreError> {
        let s = &self.inner.settings;
        let lifetime = s.receipt_lifetime.as_millis() as i64;
        let now = taken.now;
        // Each send reports whether its receipt is done and, when no receiver was
        // bound, when it expires.
        let sends = taken.receipts.into_iter().map(|(id, r)| async move {
            if r.created_ms + lifetime <= now {
                tracing::warn!(id, account = %self.account, "receipt dropped after its lifetime");
                self.inner.stats.receipts_dropped.fetch_add(1, Ordering::Relaxed);
                return Ok::<_, StoreError>((Some(id), None));
            }
            if r.attempts == 0 {
                crate::metrics::receipt_wait_ms(crate::metrics::ReceiptStage::Taken, now - r.created_ms);
            }
            match self.sink.deliver(r.receipt.clone()).await {
                Ok(()) => {
                    self.inner.stats.receipts_delivered.fetch_add(1, Ordering::Relaxed);
                    Ok((Some(id), None))
                }
                Err(DeliverError::NoReceiver) => {
                    self.retry(&id, &r, 0).await?;
                    Ok((None, Some(r.created_ms + lifetime)))
                }
                Err(e) => {
                    let mut again = r.clone();
                    again.attempts += 1;
                    let delay = backoff(s.receipt_retry_min, s.receipt_retry_max, again.attempts);
                    tracing::debug!(error = %e, id, delay_ms = delay, "receipt not accepted; will retry");
                    self.retry(&id, &again, delay).await?;
                    Ok((None, None))
                }
            }
        });
        let results = futures::future::join_all(sends).await;
        let mut done = Vec::new();
        let mut sent = Sent::default();
        for r in results {
            match r {
                Ok((id, expiry)) => {
                    done.extend(id);
                    if let Some(expiry) = expiry {
                        sent.waiting_for_receiver = true;
                        sent.drop_at = Some(sent.drop_at.map_or(expiry, |d: i64| d.min(expiry)));
                    }
                }
                Err(e) => sent.failed = Some(e),
            }
        }
        // Even when a retry failed: what was delivered must not be sent again.
        self.done(&done).await?;
        Ok(sent)
    }

    /// Removes receipts that are done (delivered or dropped), in one script call.
    async fn done(&self, ids: &[String]) -> Result<(), StoreError> {
        if ids.is_empty() {
            return Ok(());
        }
        self.inner
            .scripts
            .receipt_done
            .arg(self.inner.prefix())
            .arg(self.inner.node())
            .arg(&self.account)
            .arg(ids)
            .invoke_async::<()>(&mut self.inner.conn())
            .await?;
        Ok(())
    }

    async fn retry(&self, id: &str, r: &QueuedReceipt, delay_ms: u64) -> Result<(), StoreError> {
        let payload =
            serde_json::to_string(r).map_err(|e| StoreError::Corrupt(format!("receipt: {e}")))?;
        self.inner
            .scripts
            .receipt_retry
            .arg(self.inner.prefix())
            .arg(self.inner.node())
            .arg(&self.account)
            .arg(id)
            .arg(delay_ms)
            .arg(payload)
            .invoke_async::<()>(&mut self.inner.conn())
            .await?;
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
