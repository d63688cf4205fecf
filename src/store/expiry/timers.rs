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
use crate::store::redis::connection;
use crate::store::redis::partition::{self, Wake};
use crate::store::redis::value::{items, string};
use crate::store::StoreError;

/// Due entries taken per round.
const BATCH: usize = 512;
/// How long after a due entry woke the claim-due pass it is looked at once more, if
/// the pass found it not due yet (this node's clock ahead of Redis').
const RECHECK_MS: i64 = 1000;
/// Index entries read per call when loading.
const LOAD_BATCH: isize = 2048;

/// What a timer watches in partition `.0`: a pending group (its id, decimal, as the
/// index and `P:armed` name it) or a `^<gid>` schedule.
type Key = (u8, Box<str>);

/// The watched deadlines in deadline order, and by key so that a finished group
/// leaves at once (`P:armed` "- <id>"): the set holds the pending groups, not every
/// group of the last validity period (48 h by default).
#[derive(Default)]
struct Entries {
    by_deadline: BTreeSet<(i64, Key)>,
    /// key → (deadline ms, already rechecked once: one still not due after its
    /// recheck is left to Redis' own expiry event rather than spin).
    by_key: HashMap<Key, (i64, bool)>,
    /// Per partition, the group ids whose timers fired, for the next claim-due pass
    /// to claim by id (the index is by second; a timer fires at the deadline itself),
    /// with their recheck flag.
    fired: [Vec<(Box<str>, bool)>; partition::COUNT],
}

#[derive(Default)]
pub struct Timers {
    entries: Mutex<Entries>,
    changed: Notify,
}

/// A group id, not a `^<gid>` schedule (claimed from its ZSET by score).
fn is_group(member: &str) -> bool {
    member.bytes().next().is_some_and(|b| b.is_ascii_digit())
}

impl Timers {
    fn lock(&self) -> std::sync::MutexGuard<'_, Entries> {
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Watches `member` of partition `p` until `deadline_ms` (Redis time), replacing
    /// an earlier deadline of the same (replace_sm, or a new message under a reused id).
    pub fn arm(&self, p: usize, member: &str, deadline_ms: i64) {
        self.insert((p as u8, member.into()), deadline_ms, false);
    }

    fn insert(&self, key: Key, deadline_ms: i64, retried: bool) {
        let earliest = {
            let mut e = self.lock();
            if let Some((old, _)) = e.by_key.insert(key.clone(), (deadline_ms, retried)) {
                e.by_deadline.remove(&(old, key.clone()));
            }
            e.by_deadline.insert((deadline_ms, key));
            e.by_deadline.first().map(|(d, _)| *d) == Some(deadline_ms)
        };
        if earliest {
            self.changed.notify_one();
        }
    }

    /// Stops watching `member` of partition `p` (its group finished).
    pub fn disarm(&self, p: usize, member: &str) {
        let mut e = self.lock();
        let key = (p as u8, member.into());
        if let Some((dl, _)) = e.by_key.remove(&key) {
            e.by_deadline.remove(&(dl, key));
        }
    }

    /// Deadlines watched right now.
    pub fn len(&self) -> usize {
        self.lock().by_key.len()
    }

    /// Forgets every entry; [`Timers::load`] follows at once. Entries armed in between stay.
    fn clear(&self) {
        let mut e = self.lock();
        e.by_deadline.clear();
        e.by_key.clear();
    }

    /// The earliest deadline, or `None` when nothing is armed.
    fn earliest(&self) -> Option<i64> {
        self.lock().by_deadline.first().map(|(d, _)| *d)
    }

    /// Takes up to [`BATCH`] entries due at `now_ms`: (deadline, key, retried).
    fn take_due(&self, now_ms: i64) -> Vec<(i64, Key, bool)> {
        let mut e = self.lock();
        let mut due = Vec::new();
        while due.len() < BATCH {
            match e.by_deadline.first() {
                Some((d, _)) if *d <= now_ms => {
                    if let Some((d, key)) = e.by_deadline.pop_first() {
                        let retried = e.by_key.remove(&key).is_some_and(|(_, r)| r);
                        due.push((d, key, retried));
                    }
                }
                _ => break,
            }
        }
        due
    }

    fn put_back(&self, e: (i64, Key, bool)) {
        self.insert(e.1, e.0, e.2);
    }

    /// Up to `max` group ids of partition `p` whose timers fired, for a claim by id:
    /// (id, rechecked once already).
    pub(crate) fn take_fired(&self, p: usize, max: usize) -> Vec<(Box<str>, bool)> {
        let mut e = self.lock();
        let f = &mut e.fired[p];
        let n = f.len().min(max);
        f.drain(..n).collect()
    }

    /// Gives back ids taken by a claim that failed: the next pass claims them.
    pub(crate) fn give_back(&self, p: usize, ids: Vec<(Box<str>, bool)>) {
        self.lock().fired[p].extend(ids);
    }

    /// A fired id the claim found not due by Redis time (this node's clock runs ahead
    /// of Redis'): watched once more, [`RECHECK_MS`] after its deadline; one already
    /// rechecked is left to Redis' own expiry event.
    pub(crate) fn not_due(&self, p: usize, id: Box<str>, deadline_ms: i64, rechecked: bool) {
        if !rechecked {
            self.insert((p as u8, id), deadline_ms + RECHECK_MS, true);
        }
    }

    fn fire(&self, due: &[(i64, Key, bool)]) {
        let mut e = self.lock();
        for (_, (p, member), retried) in due {
            if is_group(member) {
                e.fired[usize::from(*p)].push((member.clone(), *retried));
            }
        }
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
            // One claim-due pass takes the fired groups by id (and whatever else is due
            // by Redis time; wake-ups during a pass coalesce), on either backend: one
            // script per batch of 256, where touching each Redis 7.0 timer key cost a
            // `PTTL`, an `expired` event and a claim script per group (claim p50 <= 25
            // ms vs <= 5 ms with the pass, BENCHMARKS.md).
            timers.fire(&due);
            for (_, (p, _), _) in &due {
                due_pass.wake(usize::from(*p));
            }
            // A schedule ('^<gid>', claimed by its score) is watched once more,
            // RECHECK_MS later, in case this node's clock runs ahead of Redis' and the
            // pass finds it not due yet; a group id comes back from the claim itself if
            // it was not due (`Timers::not_due`).
            let again = clock.now_ms() + RECHECK_MS;
            for (_, key, rechecked) in due {
                if !rechecked && !is_group(&key.1) {
                    timers.put_back((again, key, true));
                }
            }
        }
    }
}

/// Where the timers are loaded from: the partitions' deadline indexes.
pub(crate) struct Indexes<'a> {
    pub prefix: &'a str,
    pub conn: &'a connection::Shared,
}

impl Timers {
    /// Arms a timer for every deadline of every partition's index: run after each
    /// (re)subscription, once — not a periodic scan.
    pub async fn load(&self, from: Indexes<'_>) -> Result<usize, StoreError> {
        // Everything armed so far is in the indexes too (a submit adds its deadline
        // there before it answers): start over, so repeated resubscriptions add no
        // duplicates.
        self.clear();
        let mut loaded = 0;
        for p in 0..partition::COUNT {
            loaded += self.load_partition(&from, p).await?;
        }
        Ok(loaded)
    }

    /// A partition's pending groups, each at the end of its index second (the index
    /// keeps no finer deadline: a loaded timer fires at most a second late), and its
    /// `^`/`@` entries at their deadlines.
    pub(crate) async fn load_partition(
        &self,
        from: &Indexes<'_>,
        p: usize,
    ) -> Result<usize, StoreError> {
        let pre = partition::prefix(from.prefix, p);
        let mut loaded = 0;
        for (member, dl) in zrange_all(from.conn, &format!("{pre}deadlines")).await? {
            self.arm(p, &member, dl);
            loaded += 1;
        }
        for (bucket, b) in zrange_all(from.conn, &format!("{pre}ixb")).await? {
            let ids: Vec<String> = redis::cmd("SMEMBERS")
                .arg(format!("{pre}ix:{bucket}"))
                .query_async(&mut from.conn.get())
                .await?;
            for id in ids {
                self.arm(p, &id, b);
                loaded += 1;
            }
        }
        Ok(loaded)
    }
}

/// Every member of a ZSET with its score, LOAD_BATCH per call.
async fn zrange_all(
    conn: &connection::Shared,
    key: &str,
) -> Result<Vec<(String, i64)>, StoreError> {
    let mut offset: isize = 0;
    let mut out = Vec::new();
    loop {
        let reply: redis::Value = redis::cmd("ZRANGE")
            .arg(key)
            .arg(offset)
            .arg(offset + LOAD_BATCH - 1)
            .arg("WITHSCORES")
            .query_async(&mut conn.get())
            .await?;
        let a = items(reply);
        let n = a.len() / 2;
        for pair in a.chunks(2) {
            if let (Some(m), Some(dl)) = (string(&pair[0]), pair.get(1).and_then(score)) {
                out.push((m, dl));
            }
        }
        if (n as isize) < LOAD_BATCH {
            return Ok(out);
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

    /// Partition 3, where the tests' entries are.
    const P: usize = 3;
    const BIT: u64 = 1 << P;

    #[tokio::test(start_paused = true)]
    async fn a_deadline_wakes_its_partition_at_its_time() {
        let rig = start();
        rig.timers.arm(P, "11", T0 + 500);
        assert_eq!(
            next_wake(&rig, Duration::from_secs(5)).await,
            Some((BIT, 500))
        );
        rig.stop.cancel();
    }

    #[tokio::test(start_paused = true)]
    async fn an_earlier_deadline_armed_while_the_task_sleeps_fires_first() {
        let rig = start();
        rig.timers.arm(P, "12", T0 + 10_000);
        tokio::time::sleep(Duration::from_millis(10)).await;
        rig.timers.arm(P, "13", T0 + 100);
        assert_eq!(
            next_wake(&rig, Duration::from_secs(60)).await,
            Some((BIT, 100))
        );
        assert_eq!(rig.timers.len(), 1, "the late one still watched");
        assert_eq!(
            rig.timers.take_fired(P, 10),
            vec![("13".into(), false)],
            "the fired group, for a claim by id"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_disarmed_group_wakes_nothing() {
        let rig = start();
        rig.timers.arm(P, "11", T0 + 100);
        rig.timers.disarm(P, "11");
        assert_eq!(rig.timers.len(), 0);
        assert_eq!(next_wake(&rig, Duration::from_secs(3600)).await, None);
    }

    #[tokio::test(start_paused = true)]
    async fn a_due_schedule_is_looked_at_once_more_then_left_to_the_servers_event() {
        let rig = start();
        rig.timers.arm(P, "^gid", T0 + 100);
        let first = next_wake(&rig, Duration::from_secs(5)).await;
        assert_eq!(first, Some((BIT, 100)));
        let again = next_wake(&rig, Duration::from_secs(5)).await;
        assert_eq!(again, Some((BIT, 100 + RECHECK_MS)));
        assert_eq!(next_wake(&rig, Duration::from_secs(3600)).await, None);
        assert_eq!(rig.timers.len(), 0);
        assert!(rig.timers.take_fired(P, 10).is_empty(), "not claimed by id");
    }

    #[tokio::test(start_paused = true)]
    async fn a_fired_group_the_claim_found_not_due_is_watched_once_more() {
        let rig = start();
        rig.timers.arm(P, "11", T0 + 100);
        assert_eq!(
            next_wake(&rig, Duration::from_secs(5)).await,
            Some((BIT, 100))
        );
        let fired = rig.timers.take_fired(P, 10);
        assert_eq!(fired, vec![("11".into(), false)]);
        rig.timers.not_due(P, "11".into(), T0 + 100, false);
        assert_eq!(
            next_wake(&rig, Duration::from_secs(5)).await,
            Some((BIT, 100 + RECHECK_MS))
        );
        let again = rig.timers.take_fired(P, 10);
        assert_eq!(again, vec![("11".into(), true)]);
        rig.timers.not_due(P, "11".into(), T0 + 100, true);
        assert_eq!(next_wake(&rig, Duration::from_secs(3600)).await, None);
        assert_eq!(rig.timers.len(), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn a_replaced_deadline_fires_at_the_new_time_only() {
        let rig = start();
        rig.timers.arm(P, "11", T0 + 100);
        rig.timers.arm(P, "11", T0 + 5_000);
        assert_eq!(rig.timers.len(), 1);
        assert_eq!(
            next_wake(&rig, Duration::from_secs(60)).await,
            Some((BIT, 5_000))
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
        rig.timers.arm(P, "11", T0 + 60_000);
        let r = rig.clone();
        let task = tokio::spawn(async move { run(&r.timers, &r.clock, &r.wake, &r.stop).await });
        tokio::time::sleep(Duration::from_millis(10)).await;
        rig.stop.cancel();
        let ended = tokio::time::timeout(Duration::from_secs(1), task).await;
        assert!(matches!(ended, Ok(Ok(()))), "stopped within 1 s: {ended:?}");
        assert_eq!(rig.wake.take(), 0, "nothing was due");
    }
}
