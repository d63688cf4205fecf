//! Local expiry timers: one min-heap and one task per node, so deadlines fire on time
//! whatever the server's own expiry does.
//!
//! Redis 7.0 finds expired keys by sampling; a lone due key among a million with a TTL
//! can wait minutes for its event. On hash-field expiration (Valkey 9) the fields of
//! a partition's `P{t}:timers` expire in deadline order, but by time buckets of up to 8192 ms when
//! deadlines are sparse. So on both, a due timer here wakes the claim-due pass
//! directly, and the server's own event (`expired` of `P{t}:t:#<bucket>`, `hexpired` of
//! `P{t}:timers`) is the backstop. Every deadline this node should watch is one entry of
//! an ordered set; the task sleeps until the earliest and handles whatever is due in
//! batches. One task and ~150 bytes per pending message, instead of a
//! task and a connection handle per message; a group that finishes is removed at once.
//!
//! Entries come from the `P{t}:armed` announcement of every script that sets a deadline
//! (on any node: a node also watches the deadlines other nodes set while it runs) and,
//! after every (re)subscription, from every partition's deadline index: a
//! message whose first segment was stored by a node that has since died (or by this
//! process before a restart) would otherwise have no timer anywhere. Every node thus
//! watches every pending deadline — the claim-due pass is idempotent and claims each
//! group once, so a second node's wake-up costs one script call that finds nothing.

use std::collections::{BTreeSet, HashMap};
use std::sync::Mutex;

use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::store::redis::clock::Clock;
use crate::store::redis::partition::{self, Wake};
use crate::store::redis::value::{items, string};
use crate::store::{Inner, StoreError};

/// Due entries taken per round.
const BATCH: usize = 512;
/// How long after a due entry woke the claim-due pass it is looked at once more.
const RECHECK_MS: i64 = 1000;
/// Deadline-index entries read per ZRANGE when loading.
const LOAD_BATCH: isize = 2048;

/// The watched deadlines in deadline order, and by group key so that a finished group
/// leaves at once (`P:armed` "- <gk>"): the set holds the pending groups, not every
/// group of the last validity period (48 h by default).
#[derive(Default)]
struct Entries {
    by_deadline: BTreeSet<(i64, Box<str>)>,
    /// gk → (deadline ms, already rechecked once: a group still pending after its
    /// recheck is left to Redis' own expiry event rather than spin).
    by_group: HashMap<Box<str>, (i64, bool)>,
}

#[derive(Default)]
pub struct Timers {
    entries: Mutex<Entries>,
    changed: Notify,
}

impl Timers {
    fn lock(&self) -> std::sync::MutexGuard<'_, Entries> {
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Watches `gk`'s timer until `deadline_ms` (Redis time), replacing an earlier
    /// deadline of the same group (replace_sm, or a new message under a reused key).
    pub fn arm(&self, gk: &str, deadline_ms: i64) {
        self.insert(gk.into(), deadline_ms, false);
    }

    fn insert(&self, gk: Box<str>, deadline_ms: i64, retried: bool) {
        let earliest = {
            let mut e = self.lock();
            if let Some((old, _)) = e.by_group.insert(gk.clone(), (deadline_ms, retried)) {
                e.by_deadline.remove(&(old, gk.clone()));
            }
            e.by_deadline.insert((deadline_ms, gk));
            e.by_deadline.first().map(|(d, _)| *d) == Some(deadline_ms)
        };
        if earliest {
            self.changed.notify_one();
        }
    }

    /// Stops watching `gk` (its group finished).
    pub fn disarm(&self, gk: &str) {
        let mut e = self.lock();
        if let Some((dl, _)) = e.by_group.remove(gk) {
            e.by_deadline.remove(&(dl, gk.into()));
        }
    }

    /// Deadlines watched right now.
    pub fn len(&self) -> usize {
        self.lock().by_group.len()
    }

    /// Forgets every entry; [`load`] follows at once. Entries armed in between stay.
    fn clear(&self) {
        let mut e = self.lock();
        e.by_deadline.clear();
        e.by_group.clear();
    }

    /// The earliest deadline, or `None` when nothing is armed.
    fn earliest(&self) -> Option<i64> {
        self.lock().by_deadline.first().map(|(d, _)| *d)
    }

    /// Takes up to [`BATCH`] entries due at `now_ms`: (deadline, gk, retried).
    fn take_due(&self, now_ms: i64) -> Vec<(i64, Box<str>, bool)> {
        let mut e = self.lock();
        let mut due = Vec::new();
        while due.len() < BATCH {
            match e.by_deadline.first() {
                Some((d, _)) if *d <= now_ms => {
                    if let Some((d, gk)) = e.by_deadline.pop_first() {
                        let retried = e.by_group.remove(&gk).is_some_and(|(_, r)| r);
                        due.push((d, gk, retried));
                    }
                }
                _ => break,
            }
        }
        due
    }

    fn put_back(&self, e: (i64, Box<str>, bool)) {
        self.insert(e.1, e.0, e.2);
    }
}

/// The timer task: sleeps until the earliest deadline (or an earlier one arrives),
/// wakes the claim-due pass (`due_pass`) for the partitions of what is due, repeats,
/// until `stop`. No periodic wake-up when nothing is armed.
pub async fn run(timers: &Timers, clock: &Clock, due_pass: &Wake, stop: &CancellationToken) {
    loop {
        let at = timers.earliest().map(|ms| clock.instant_at(ms));
        let sleep = async {
            match at {
                Some(at) => tokio::time::sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = sleep => {}
            _ = timers.changed.notified() => continue,
            _ = stop.cancelled() => return,
        }
        loop {
            let due = timers.take_due(clock.now_ms());
            if due.is_empty() {
                break;
            }
            // One claim-due pass takes every group due by Redis time, these included
            // (wake-ups during a pass coalesce), on either backend: one script per
            // batch of 256, where touching each Redis 7.0 timer key cost a `PTTL`, an
            // `expired` event and a claim script per group (claim p50 <= 25 ms vs <= 5
            // ms with the pass, BENCHMARKS.md).
            for (_, gk, _) in &due {
                // A deadline is a multi-part message's, in its group key's partition.
                due_pass.wake(partition::of_group(gk));
            }
            // Watched once more, RECHECK_MS later, in case this node's clock runs
            // ahead of Redis' and the pass finds them not due yet. A claim does not
            // announce "- <gk>" (one PUBLISH per expired group cost more), so this
            // entry fires once more and wakes a pass that finds the group gone (passes
            // coalesce: under load they ride along with the passes for new deadlines).
            let again = clock.now_ms() + RECHECK_MS;
            for (_, gk, rechecked) in due {
                if !rechecked {
                    timers.put_back((again, gk, true));
                }
            }
        }
    }
}

/// Arms a timer for every deadline of every partition's index: run after each
/// (re)subscription, once — not a periodic scan.
pub async fn load(inner: &Inner) -> Result<usize, StoreError> {
    // Everything armed so far is in the indexes too (a submit adds its deadline there
    // before it answers): start over, so repeated resubscriptions add no duplicates.
    inner.timers.clear();
    let mut loaded = 0;
    for p in 0..partition::COUNT {
        loaded += load_partition(inner, p).await?;
    }
    Ok(loaded)
}

pub(crate) async fn load_partition(inner: &Inner, p: usize) -> Result<usize, StoreError> {
    let key = format!("{}deadlines", partition::prefix(inner.prefix(), p));
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

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use super::*;

    const T0: i64 = 1_700_000_000_000;

    /// The task's handles, as the store wires them, on a clock at `T0`.
    struct Rig {
        timers: Timers,
        clock: Clock,
        wake: Wake,
        stop: CancellationToken,
    }

    fn start() -> Arc<Rig> {
        let rig = Arc::new(Rig {
            timers: Timers::default(),
            clock: Clock::at(T0),
            wake: Wake::default(),
            stop: CancellationToken::new(),
        });
        let r = rig.clone();
        tokio::spawn(async move { run(&r.timers, &r.clock, &r.wake, &r.stop).await });
        rig
    }

    /// The partitions woken next, and when (ms after `T0`); `None` if nothing within
    /// `within` (paused time: the runtime jumps to each timer).
    async fn next_wake(rig: &Rig, within: Duration) -> Option<(u64, i64)> {
        tokio::time::timeout(within, rig.wake.notified())
            .await
            .ok()?;
        Some((rig.wake.take(), rig.clock.now_ms() - T0))
    }

    fn bit(gk: &str) -> u64 {
        1 << partition::of_group(gk)
    }

    #[tokio::test(start_paused = true)]
    async fn a_deadline_wakes_its_partition_at_its_time() {
        let rig = start();
        rig.timers.arm("a", T0 + 500);
        assert_eq!(
            next_wake(&rig, Duration::from_secs(5)).await,
            Some((bit("a"), 500))
        );
        rig.stop.cancel();
    }

    #[tokio::test(start_paused = true)]
    async fn an_earlier_deadline_armed_while_the_task_sleeps_fires_first() {
        let rig = start();
        rig.timers.arm("late", T0 + 10_000);
        tokio::time::sleep(Duration::from_millis(10)).await;
        rig.timers.arm("early", T0 + 100);
        assert_eq!(
            next_wake(&rig, Duration::from_secs(60)).await,
            Some((bit("early"), 100))
        );
        assert_eq!(
            rig.timers.len(),
            2,
            "both watched: the early one for its recheck"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_disarmed_group_wakes_nothing() {
        let rig = start();
        rig.timers.arm("a", T0 + 100);
        rig.timers.disarm("a");
        assert_eq!(rig.timers.len(), 0);
        assert_eq!(next_wake(&rig, Duration::from_secs(3600)).await, None);
    }

    #[tokio::test(start_paused = true)]
    async fn a_due_group_is_looked_at_once_more_then_left_to_the_servers_event() {
        let rig = start();
        rig.timers.arm("a", T0 + 100);
        let first = next_wake(&rig, Duration::from_secs(5)).await;
        assert_eq!(first, Some((bit("a"), 100)));
        let again = next_wake(&rig, Duration::from_secs(5)).await;
        assert_eq!(again, Some((bit("a"), 100 + RECHECK_MS)));
        assert_eq!(next_wake(&rig, Duration::from_secs(3600)).await, None);
        assert_eq!(rig.timers.len(), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn a_replaced_deadline_fires_at_the_new_time_only() {
        let rig = start();
        rig.timers.arm("a", T0 + 100);
        rig.timers.arm("a", T0 + 5_000);
        assert_eq!(rig.timers.len(), 1);
        assert_eq!(
            next_wake(&rig, Duration::from_secs(60)).await,
            Some((bit("a"), 5_000))
        );
    }

    #[tokio::test(start_paused = true)]
    async fn the_task_ends_when_stopped() {
        let rig = Arc::new(Rig {
            timers: Timers::default(),
            clock: Clock::at(T0),
            wake: Wake::default(),
            stop: CancellationToken::new(),
        });
        rig.timers.arm("a", T0 + 60_000);
        let r = rig.clone();
        let task = tokio::spawn(async move { run(&r.timers, &r.clock, &r.wake, &r.stop).await });
        tokio::time::sleep(Duration::from_millis(10)).await;
        rig.stop.cancel();
        let ended = tokio::time::timeout(Duration::from_secs(1), task).await;
        assert!(matches!(ended, Ok(Ok(()))), "stopped within 1 s: {ended:?}");
        assert_eq!(rig.wake.take(), 0, "nothing was due");
    }
}
