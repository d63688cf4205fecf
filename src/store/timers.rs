//! Local expiry timers: one min-heap and one task per node, so deadlines fire on time
//! whatever the server's own expiry does.
//!
//! Redis 7.0 finds expired keys by sampling; a lone due key among a million with a TTL
//! can wait minutes for its event. Touching the key after its deadline (here `PTTL`)
//! expires it, and fires the event, at once. On hash-field expiration (Valkey 9) the
//! fields of `P:timers` expire in deadline order, but by time buckets of up to 8192 ms
//! when deadlines are sparse; there the due timer wakes the claim-due pass directly
//! (the `hexpired` event remains the backstop). Every deadline this node should watch
//! is one entry of a min-heap; the task sleeps until the earliest and handles whatever
//! is due in batches. One task and ~100 bytes per pending message, instead of a task
//! and a connection handle per message.
//!
//! Entries come from the `P:armed` announcement of every script that sets a deadline
//! (on any node: a node also watches the deadlines other nodes set while it runs) and,
//! after every (re)subscription, from the whole deadline index `P:deadlines`: a
//! message whose first segment was stored by a node that has since died (or by this
//! process before a restart) would otherwise have no timer anywhere. Every node thus
//! watches every pending deadline — the touch is idempotent and the claim script runs
//! once, so two touches only cost a `PTTL`.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::{Arc, Mutex};

use tokio::sync::Notify;

use super::value::{items, string};
use super::{ExpiryBackend, Inner, StoreError};

/// Timer keys touched per pipeline.
const BATCH: usize = 512;
/// Deadline-index entries read per ZRANGE when loading.
const LOAD_BATCH: isize = 2048;

/// A deadline to watch: Redis time (ms), the group key, and whether it was already
/// found not yet expired once (local clock ahead of Redis): a second miss leaves the
/// key to Redis' own expiry rather than spin.
type Entry = Reverse<(i64, Box<str>, bool)>;

#[derive(Default)]
pub struct Timers {
    heap: Mutex<BinaryHeap<Entry>>,
    changed: Notify,
}

impl Timers {
    /// Watches `gk`'s timer key until `deadline_ms` (Redis time).
    pub fn arm(&self, gk: &str, deadline_ms: i64) {
        let earliest = {
            let mut heap = self.heap.lock().unwrap_or_else(|e| e.into_inner());
            heap.push(Reverse((deadline_ms, gk.into(), false)));
            heap.peek().map(|Reverse((d, ..))| *d) == Some(deadline_ms)
        };
        if earliest {
            self.changed.notify_one();
        }
    }

    /// Forgets every entry; [`load`] follows at once. Entries armed in between stay.
    fn clear(&self) {
        self.heap.lock().unwrap_or_else(|e| e.into_inner()).clear();
    }

    /// The earliest deadline, or `None` when nothing is armed.
    fn earliest(&self) -> Option<i64> {
        let heap = self.heap.lock().unwrap_or_else(|e| e.into_inner());
        heap.peek().map(|Reverse((d, ..))| *d)
    }

    /// Takes up to [`BATCH`] entries due at `now_ms`.
    fn take_due(&self, now_ms: i64) -> Vec<(i64, Box<str>, bool)> {
        let mut heap = self.heap.lock().unwrap_or_else(|e| e.into_inner());
        let mut due = Vec::new();
        while due.len() < BATCH {
            match heap.peek() {
                Some(Reverse((d, ..))) if *d <= now_ms => {
                    if let Some(Reverse(e)) = heap.pop() {
                        due.push(e);
                    }
                }
                _ => break,
            }
        }
        due
    }

    fn put_back(&self, e: (i64, Box<str>, bool)) {
        self.heap
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(Reverse(e));
    }
}

/// The timer task: sleeps until the earliest deadline (or an earlier one arrives),
/// touches what is due, repeats. No periodic wake-up when nothing is armed.
pub async fn run(inner: Arc<Inner>) {
    let timers = &inner.timers;
    loop {
        let at = timers.earliest().map(|ms| inner.clock.instant_at(ms));
        let sleep = async {
            match at {
                Some(at) => tokio::time::sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = sleep => {}
            _ = timers.changed.notified() => continue,
            _ = inner.shutdown.cancelled() => return,
        }
        loop {
            let due = timers.take_due(inner.clock.now_ms());
            if due.is_empty() {
                break;
            }
            if inner.backend == ExpiryBackend::HashFieldExpiry {
                // One claim-due pass takes every group due by Redis time, these
                // included (and wake-ups during a pass coalesce).
                inner.due_pass.notify_one();
                continue;
            }
            if let Err(e) = touch(&inner, due).await {
                // The deadline index keeps them; the recovery pass after the
                // resubscription this error leads to claims them.
                tracing::warn!(error = %e, "expiry timers could not touch their keys");
                break;
            }
        }
    }
}

/// `PTTL` of each due timer key, pipelined. A key still alive (this node's clock ahead
/// of Redis) is watched again for its remaining TTL, once.
async fn touch(inner: &Inner, due: Vec<(i64, Box<str>, bool)>) -> Result<(), StoreError> {
    let prefix = inner.prefix();
    let mut pipe = redis::pipe();
    for (_, gk, _) in &due {
        pipe.cmd("PTTL").arg(format!("{prefix}t:{gk}"));
    }
    let ttls: Vec<i64> = pipe.query_async(&mut inner.conn()).await?;
    let now = inner.clock.now_ms();
    for ((_, gk, retried), ttl) in due.into_iter().zip(ttls) {
        if ttl > 0 && !retried {
            inner.timers.put_back((now + ttl, gk, true));
        }
    }
    Ok(())
}

/// Arms a timer for every deadline of the index still in the future (by Redis time):
/// run after each (re)subscription, once — not a periodic scan.
pub async fn load(inner: &Inner) -> Result<usize, StoreError> {
    // Everything armed so far is in the index too (a submit adds its deadline there
    // before it answers): start over, so repeated resubscriptions add no duplicates.
    inner.timers.clear();
    let key = format!("{}deadlines", inner.prefix());
    let mut offset: isize = 0;
    let mut loaded = 0;
    loop {
        let reply: redis::Value = redis::cmd("ZRANGE")
            .arg(&key)
            .arg(offset)
            .arg(offset + LOAD_BATCH - 1)
            .arg("WITHSCORES")
            .query_async(&mut inner.conn())
            .await?;
        let a = items(reply);
        let n = a.len() / 2;
        for pair in a.chunks(2) {
            let (Some(gk), Some(dl)) = (string(&pair[0]), pair.get(1).and_then(score)) else {
                continue;
            };
            inner.timers.arm(&gk, dl);
            loaded += 1;
        }
        if (n as isize) < LOAD_BATCH {
            return Ok(loaded);
        }
        offset += LOAD_BATCH;
    }
}

/// A ZSET score (RESP2 bulk string or RESP3 double) as whole ms.
fn score(v: &redis::Value) -> Option<i64> {
    match v {
        redis::Value::Double(d) => Some(*d as i64),
        other => string(other)?.parse::<f64>().ok().map(|d| d as i64),
    }
}
