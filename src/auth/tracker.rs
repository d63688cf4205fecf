//! Bind failures per address group, and one bind in progress per group.
//!
//! A group is an IPv4 address or an IPv6 /64: one /64 is one customer network, and
//! per-address counters would give its holder 2^64 fresh ones. An IPv4 peer on a
//! dual-stack socket (`::ffff:a.b.c.d`) is its IPv4 address, not a member of `::/64`.
//!
//! A group's failures are kept by system_id for `window`. Every attempt counts as a
//! failure from the moment it starts, before its password is verified: attempts that
//! race cannot all be verified, since once `max_failures` are counted the next one is
//! refused as blocked. A success takes back the failures of its own (group,
//! system_id) pair only, so a valid account cannot reset the guessing at another.
//! Refusals of a blocked group count too: a group that keeps trying stays blocked.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::config::BindFailurePolicy;

/// Where a bind comes from, as far as counting failures goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AddrGroup {
    V4(Ipv4Addr),
    /// The upper 64 bits of the address.
    V6(u64),
}

impl From<IpAddr> for AddrGroup {
    fn from(ip: IpAddr) -> Self {
        match ip {
            IpAddr::V4(v4) => AddrGroup::V4(v4),
            // Not `to_ipv4`: that also turns ::1 into 0.0.0.1.
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => AddrGroup::V4(v4),
                None => AddrGroup::V6((u128::from(v6) >> 64) as u64),
            },
        }
    }
}

#[derive(Debug)]
struct Entry {
    /// (system_id, when) of each failure within `window`, oldest first; bind attempts
    /// in progress are among them.
    failures: Vec<(Box<str>, Instant)>,
    blocked_until: Option<Instant>,
    last_seen: Instant,
}

impl Entry {
    fn blocked(&self, now: Instant) -> bool {
        self.blocked_until.is_some_and(|until| now < until)
    }

    /// Whether a new attempt is refused: blocked, or as many failures counted (some
    /// of them still being verified) as are allowed.
    fn refuses(&self, now: Instant, policy: &BindFailurePolicy) -> bool {
        self.blocked(now) || self.failures.len() >= policy.max_failures as usize
    }

    fn prune(&mut self, now: Instant, policy: &BindFailurePolicy) {
        self.failures
            .retain(|(_, at)| now.duration_since(*at) <= policy.window);
    }

    fn block_if_over(&mut self, now: Instant, policy: &BindFailurePolicy) {
        if self.failures.len() >= policy.max_failures as usize {
            self.blocked_until = Some(now + policy.block_for);
            self.failures.clear();
        }
    }

    fn is_stale(&self, now: Instant, policy: &BindFailurePolicy) -> bool {
        !self.blocked(now)
            && self
                .failures
                .iter()
                .all(|(_, at)| now.duration_since(*at) > policy.window)
    }
}

/// How an admitted attempt ended.
enum Outcome {
    /// Stays counted.
    Failed,
    /// Takes back every failure of its (group, system_id) pair.
    Succeeded,
    /// Takes back its own count only: refused by a policy that is not about guessing.
    NotCounted,
}

/// Bounded map of recent bind failures per address group.
#[derive(Debug, Default)]
pub struct BindFailureTracker {
    entries: Mutex<HashMap<AddrGroup, Entry>>,
    turns: Turns,
}

impl BindFailureTracker {
    pub fn new() -> Self {
        Self::default()
    }

    /// Starts a bind attempt from `ip` for `system_id`: waits until no other bind of
    /// the group is in progress, then counts the attempt as a failure. `None`: the
    /// group is blocked (the refusal is counted too).
    pub async fn begin(
        &self,
        ip: IpAddr,
        system_id: &str,
        policy: &BindFailurePolicy,
    ) -> Option<Attempt<'_>> {
        let group = AddrGroup::from(ip);
        // A blocked group is refused at once, without queueing behind its other binds.
        if !self.admit(group, system_id, Instant::now(), policy, false) {
            return None;
        }
        let turn = self.turns.take(group).await;
        let at = Instant::now();
        if !self.admit(group, system_id, at, policy, true) {
            return None;
        }
        Some(Attempt {
            tracker: self,
            group,
            system_id: system_id.into(),
            at,
            policy: policy.clone(),
            settled: false,
            _turn: turn,
        })
    }

    /// Whether an attempt may go on; a refused one is counted. With `count`, an
    /// admitted one is counted as a failure too.
    fn admit(
        &self,
        group: AddrGroup,
        system_id: &str,
        now: Instant,
        policy: &BindFailurePolicy,
        count: bool,
    ) -> bool {
        let mut entries = self.lock();
        if let Some(e) = entries.get_mut(&group) {
            e.prune(now, policy);
            e.last_seen = now;
            let refused = e.refuses(now, policy);
            if refused || count {
                e.failures.push((system_id.into(), now));
            }
            if refused {
                e.block_if_over(now, policy);
            }
            return !refused;
        }
        if count {
            if entries.len() >= policy.max_tracked {
                evict(&mut entries, now, policy);
            }
            entries.insert(
                group,
                Entry {
                    failures: vec![(system_id.into(), now)],
                    blocked_until: None,
                    last_seen: now,
                },
            );
        }
        true
    }

    fn settle(
        &self,
        group: AddrGroup,
        system_id: &str,
        at: Instant,
        policy: &BindFailurePolicy,
        outcome: Outcome,
    ) {
        let mut entries = self.lock();
        // Evicted meanwhile: nothing left to settle.
        let Some(e) = entries.get_mut(&group) else {
            return;
        };
        match outcome {
            Outcome::Failed => e.block_if_over(at, policy),
            Outcome::Succeeded => e.failures.retain(|(id, _)| &**id != system_id),
            Outcome::NotCounted => {
                if let Some(i) = e
                    .failures
                    .iter()
                    .position(|(id, t)| &**id == system_id && *t == at)
                {
                    e.failures.remove(i);
                }
            }
        }
        if e.failures.is_empty() && !e.blocked(at) {
            entries.remove(&group);
        }
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<AddrGroup, Entry>> {
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Drops stale groups; if none is stale, the least recently seen one that is not
/// blocked, and only when every group is blocked the one whose block ends first
/// (filling the map from fresh addresses must not free a blocked one).
fn evict(entries: &mut HashMap<AddrGroup, Entry>, now: Instant, policy: &BindFailurePolicy) {
    entries.retain(|_, e| !e.is_stale(now, policy));
    if entries.len() < policy.max_tracked {
        return;
    }
    let victim = entries
        .iter()
        .min_by_key(|(_, e)| match e.blocked_until.filter(|_| e.blocked(now)) {
            None => (false, e.last_seen),
            Some(until) => (true, until),
        })
        .map(|(g, _)| *g);
    if let Some(g) = victim {
        entries.remove(&g);
    }
}

/// A bind attempt being checked: counted as a failure unless settled otherwise, and
/// the only attempt of its address group until it ends. Dropping it keeps the count.
#[must_use = "dropping an attempt counts it as a failure"]
pub struct Attempt<'a> {
    tracker: &'a BindFailureTracker,
    group: AddrGroup,
    system_id: Box<str>,
    at: Instant,
    policy: BindFailurePolicy,
    settled: bool,
    /// Released after the tracker is updated (fields drop after `Drop::drop`).
    _turn: Turn<'a>,
}

impl Attempt<'_> {
    /// The bind succeeded: the failures of this (group, system_id) pair are forgotten.
    pub fn succeeded(mut self) {
        self.settle(Outcome::Succeeded);
    }

    /// Refused for a reason that is not about guessing (bind type, bind count): this
    /// attempt is not counted.
    pub fn not_counted(mut self) {
        self.settle(Outcome::NotCounted);
    }

    fn settle(&mut self, outcome: Outcome) {
        if !self.settled {
            self.settled = true;
            self.tracker
                .settle(self.group, &self.system_id, self.at, &self.policy, outcome);
        }
    }
}

impl Drop for Attempt<'_> {
    fn drop(&mut self) {
        self.settle(Outcome::Failed);
    }
}

/// One bind in progress per address group: a group's binds have their passwords
/// verified one after the other, so one address cannot occupy every verifier.
#[derive(Debug, Default)]
struct Turns(Mutex<HashMap<AddrGroup, Arc<Semaphore>>>);

impl Turns {
    async fn take(&self, group: AddrGroup) -> Turn<'_> {
        let gate = self
            .lock()
            .entry(group)
            .or_insert_with(|| Arc::new(Semaphore::new(1)))
            .clone();
        // Built before waiting, so a cancelled wait still cleans up the map.
        let mut turn = Turn {
            turns: self,
            group,
            gate: Some(gate.clone()),
            permit: None,
        };
        turn.permit = gate.acquire_owned().await.ok();
        turn
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<AddrGroup, Arc<Semaphore>>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

struct Turn<'a> {
    turns: &'a Turns,
    group: AddrGroup,
    gate: Option<Arc<Semaphore>>,
    permit: Option<OwnedSemaphorePermit>,
}

impl Drop for Turn<'_> {
    fn drop(&mut self) {
        let mut map = self.turns.lock();
        self.permit = None;
        self.gate = None;
        // Only the map's own reference left: nobody holds or waits for this group.
        if map
            .get(&self.group)
            .is_some_and(|g| Arc::strong_count(g) == 1)
        {
            map.remove(&self.group);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    impl BindFailureTracker {
        fn is_blocked(&self, ip: IpAddr, now: Instant) -> bool {
            self.lock()
                .get(&AddrGroup::from(ip))
                .is_some_and(|e| e.blocked(now))
        }

        fn len(&self) -> usize {
            self.lock().len()
        }
    }

    fn policy(max_failures: u32, max_tracked: usize) -> BindFailurePolicy {
        BindFailurePolicy {
            max_failures,
            window: Duration::from_secs(60),
            block_for: Duration::from_secs(300),
            delay: Duration::ZERO,
            max_tracked,
        }
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap_or(IpAddr::from([0, 0, 0, 0]))
    }

    /// One attempt that fails, at `now`.
    fn fail(t: &BindFailureTracker, from: &str, id: &str, now: Instant, p: &BindFailurePolicy) {
        let g = AddrGroup::from(ip(from));
        if t.admit(g, id, now, p, true) {
            t.settle(g, id, now, p, Outcome::Failed);
        }
    }

    fn succeed(
        t: &BindFailureTracker,
        from: &str,
        id: &str,
        now: Instant,
        p: &BindFailurePolicy,
    ) -> bool {
        let g = AddrGroup::from(ip(from));
        let admitted = t.admit(g, id, now, p, true);
        if admitted {
            t.settle(g, id, now, p, Outcome::Succeeded);
        }
        admitted
    }

    #[test]
    fn blocks_after_max_failures_and_unblocks_later() {
        let t = BindFailureTracker::new();
        let now = Instant::now();
        let p = policy(3, 10);
        for _ in 0..2 {
            fail(&t, "10.0.0.1", "acme", now, &p);
            assert!(!t.is_blocked(ip("10.0.0.1"), now));
        }
        fail(&t, "10.0.0.1", "acme", now, &p);
        assert!(t.is_blocked(ip("10.0.0.1"), now + Duration::from_secs(299)));
        assert!(!t.is_blocked(ip("10.0.0.1"), now + Duration::from_secs(301)));
        assert!(!t.is_blocked(ip("10.0.0.2"), now));
    }

    #[test]
    fn ipv6_is_grouped_by_64_and_mapped_ipv4_by_address() {
        let g = |s: &str| AddrGroup::from(ip(s));
        assert_eq!(g("2001:db8:1:2::1"), g("2001:db8:1:2:ffff:ffff:ffff:ffff"));
        assert_ne!(g("2001:db8:1:2::1"), g("2001:db8:1:3::1"));
        // A v4 peer on a dual-stack socket is its v4 address, not a member of ::/64.
        assert_eq!(g("::ffff:127.0.0.2"), g("127.0.0.2"));
        assert_ne!(g("::ffff:127.0.0.2"), g("::ffff:127.0.0.3"));
        assert_ne!(g("::1"), g("127.0.0.2"));
        assert_ne!(g("::1"), g("::ffff:127.0.0.2"));
        assert_ne!(g("::1"), g("0.0.0.1"));

        let t = BindFailureTracker::new();
        let now = Instant::now();
        let p = policy(3, 10);
        for i in 1..=3 {
            fail(&t, &format!("2001:db8::{i}"), "acme", now, &p);
        }
        assert!(t.is_blocked(ip("2001:db8::ffff"), now), "same /64");
        assert!(!t.is_blocked(ip("2001:db8:0:1::1"), now), "next /64");
        for from in ["::1", "::ffff:127.0.0.2", "::1"] {
            fail(&t, from, "acme", now, &p);
        }
        assert!(
            !t.is_blocked(ip("::1"), now),
            "::1 and 127.0.0.2 counted apart"
        );
        assert!(!t.is_blocked(ip("127.0.0.2"), now));
        fail(&t, "127.0.0.2", "acme", now, &p);
        assert!(!t.is_blocked(ip("::1"), now));
        fail(&t, "127.0.0.2", "acme", now, &p);
        assert!(t.is_blocked(ip("127.0.0.2"), now));
        assert!(t.is_blocked(ip("::ffff:127.0.0.2"), now));
        assert!(!t.is_blocked(ip("::1"), now));
    }

    #[test]
    fn a_success_takes_back_only_its_own_accounts_failures() {
        let t = BindFailureTracker::new();
        let now = Instant::now();
        let p = policy(5, 10);
        // 4 wrong on acme, 1 good on other, repeated: blocked on the 5th wrong.
        for _ in 0..4 {
            fail(&t, "10.0.0.1", "acme", now, &p);
        }
        assert!(succeed(&t, "10.0.0.1", "other", now, &p));
        assert!(!t.is_blocked(ip("10.0.0.1"), now));
        fail(&t, "10.0.0.1", "acme", now, &p);
        assert!(t.is_blocked(ip("10.0.0.1"), now));
        assert!(!succeed(&t, "10.0.0.1", "other", now, &p));

        // Typos on one account, then its own success: counting starts over.
        let u = BindFailureTracker::new();
        for _ in 0..4 {
            fail(&u, "10.0.0.1", "acme", now, &p);
        }
        assert!(succeed(&u, "10.0.0.1", "acme", now, &p));
        assert_eq!(u.len(), 0);
        for _ in 0..4 {
            fail(&u, "10.0.0.1", "acme", now, &p);
        }
        assert!(!u.is_blocked(ip("10.0.0.1"), now));
    }

    #[test]
    fn attempts_in_progress_count_before_they_are_verified() {
        let t = BindFailureTracker::new();
        let now = Instant::now();
        let p = policy(3, 10);
        let g = AddrGroup::from(ip("10.0.0.1"));
        // Three admitted, none settled yet: the fourth is refused and blocks the group.
        for _ in 0..3 {
            assert!(t.admit(g, "acme", now, &p, true));
        }
        assert!(!t.admit(g, "acme", now, &p, true));
        assert!(t.is_blocked(ip("10.0.0.1"), now));
        // One of the three turns out right: the block stays.
        t.settle(g, "acme", now, &p, Outcome::Succeeded);
        assert!(t.is_blocked(ip("10.0.0.1"), now));
    }

    #[test]
    fn not_counted_attempts_leave_the_other_failures() {
        let t = BindFailureTracker::new();
        let now = Instant::now();
        let p = policy(3, 10);
        let g = AddrGroup::from(ip("10.0.0.1"));
        fail(&t, "10.0.0.1", "acme", now, &p);
        fail(&t, "10.0.0.1", "acme", now, &p);
        let later = now + Duration::from_secs(1);
        assert!(t.admit(g, "acme", later, &p, true));
        t.settle(g, "acme", later, &p, Outcome::NotCounted);
        assert!(!t.is_blocked(ip("10.0.0.1"), later));
        fail(&t, "10.0.0.1", "acme", later, &p);
        assert!(t.is_blocked(ip("10.0.0.1"), later));
    }

    #[test]
    fn refusals_while_blocked_count_and_renew_the_block() {
        let t = BindFailureTracker::new();
        let now = Instant::now();
        let p = policy(2, 10);
        fail(&t, "10.0.0.1", "acme", now, &p);
        fail(&t, "10.0.0.1", "acme", now, &p);
        let g = AddrGroup::from(ip("10.0.0.1"));
        let later = now + Duration::from_secs(200);
        assert!(!t.admit(g, "acme", later, &p, false));
        assert!(!t.admit(g, "acme", later, &p, false));
        // Blocked again from `later`, past the first block's end.
        assert!(t.is_blocked(ip("10.0.0.1"), now + Duration::from_secs(400)));
        assert!(!t.is_blocked(ip("10.0.0.1"), later + Duration::from_secs(301)));
    }

    #[test]
    fn map_stays_bounded_and_never_drops_a_blocked_group_first() {
        let t = BindFailureTracker::new();
        let now = Instant::now();
        let p = policy(2, 4);
        fail(&t, "10.0.0.1", "acme", now, &p);
        fail(&t, "10.0.0.1", "acme", now, &p);
        assert!(t.is_blocked(ip("10.0.0.1"), now));
        for i in 0..100u8 {
            let later = now + Duration::from_millis(u64::from(i) + 1);
            fail(&t, &format!("10.1.0.{i}"), "acme", later, &p);
            assert!(t.len() <= 4);
        }
        assert!(t.is_blocked(ip("10.0.0.1"), now + Duration::from_secs(1)));

        // All blocked: the one whose block ends first goes.
        let u = BindFailureTracker::new();
        for i in 0..5u8 {
            let at = now + Duration::from_secs(u64::from(i));
            fail(&u, &format!("10.0.0.{i}"), "acme", at, &p);
            fail(&u, &format!("10.0.0.{i}"), "acme", at, &p);
        }
        let at = now + Duration::from_secs(5);
        assert_eq!(u.len(), 4);
        assert!(!u.is_blocked(ip("10.0.0.0"), at));
        for i in 1..5u8 {
            assert!(u.is_blocked(ip(&format!("10.0.0.{i}")), at), "{i}");
        }
    }

    #[tokio::test]
    async fn one_attempt_per_group_at_a_time() {
        let t = BindFailureTracker::new();
        let p = policy(100, 10);
        let first = t.begin(ip("2001:db8::1"), "acme", &p).await;
        assert!(first.is_some());
        // Same /64: waits; another group: goes ahead.
        let same = t.begin(ip("2001:db8::2"), "acme", &p);
        tokio::pin!(same);
        assert!(tokio::time::timeout(Duration::from_millis(50), &mut same)
            .await
            .is_err());
        let other = t.begin(ip("2001:db8:0:1::1"), "acme", &p).await;
        assert!(other.is_some());
        drop(first);
        let second = tokio::time::timeout(Duration::from_secs(1), same).await;
        assert!(second.is_ok_and(|a| a.is_some()));
        drop(other);
        assert_eq!(t.turns.lock().len(), 0);
    }
}
