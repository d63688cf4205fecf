//! Bind authentication: password checks and the per-address failure tracker.
//!
//! Passwords in clear are compared in constant time (`subtle`); argon2 hashes are
//! verified on the blocking pool since a verify costs tens of milliseconds of CPU.
//! Failed credential checks (unknown system_id, wrong password) are counted per IP:
//! each one is answered only after `bind_failures.delay`, and an address with
//! `max_failures` within `window` is refused (ESME_RBINDFAIL, credentials not even
//! checked) for `block_for`. Other refusals (address, bind type, bind count) are
//! policy, not guessing, and are not counted.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::Instant;

use argon2::{PasswordHash, PasswordVerifier};
use subtle::ConstantTimeEq;

use crate::config::{BindFailurePolicy, Credential};

/// Whether `given` (the bind PDU's password octets) matches `credential`.
pub async fn verify_password(credential: &Credential, given: &[u8]) -> bool {
    match credential {
        Credential::Plain(expected) => constant_time_eq(expected.as_bytes(), given),
        Credential::Argon2(phc) => {
            let phc = phc.clone();
            let given = given.to_vec();
            tokio::task::spawn_blocking(move || {
                PasswordHash::new(&phc)
                    .map(|h| {
                        argon2::Argon2::default()
                            .verify_password(&given, &h)
                            .is_ok()
                    })
                    .unwrap_or(false)
            })
            .await
            .unwrap_or(false)
        }
    }
}

/// Compares in time independent of where the first difference is. The length is not
/// secret (at most 8 octets in SMPP), so a length mismatch may return early.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && bool::from(a.ct_eq(b))
}

#[derive(Debug)]
struct Entry {
    window_start: Instant,
    failures: u32,
    blocked_until: Option<Instant>,
    last_seen: Instant,
}

/// Bounded map of recent bind failures per IP address.
#[derive(Debug)]
pub struct BindFailureTracker {
    entries: Mutex<HashMap<IpAddr, Entry>>,
}

impl Default for BindFailureTracker {
    fn default() -> Self {
        Self::new()
    }
}

impl BindFailureTracker {
    pub fn new() -> Self {
        BindFailureTracker {
            entries: Mutex::new(HashMap::new()),
        }
    }

    /// Whether binds from `ip` are refused right now.
    pub fn is_blocked(&self, ip: IpAddr, now: Instant) -> bool {
        let entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        entries
            .get(&ip)
            .and_then(|e| e.blocked_until)
            .is_some_and(|until| now < until)
    }

    /// Records one failed credential check; returns true if `ip` is now blocked.
    pub fn record_failure(&self, ip: IpAddr, now: Instant, policy: &BindFailurePolicy) -> bool {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        if !entries.contains_key(&ip) && entries.len() >= policy.max_tracked {
            evict(&mut entries, now, policy);
        }
        let e = entries.entry(ip).or_insert(Entry {
            window_start: now,
            failures: 0,
            blocked_until: None,
            last_seen: now,
        });
        if now.duration_since(e.window_start) > policy.window {
            e.window_start = now;
            e.failures = 0;
        }
        e.failures += 1;
        e.last_seen = now;
        if e.failures >= policy.max_failures {
            e.blocked_until = Some(now + policy.block_for);
            e.failures = 0;
            e.window_start = now;
        }
        e.blocked_until.is_some_and(|until| now < until)
    }

    /// A successful bind clears the address's failure count (not an active block).
    pub fn record_success(&self, ip: IpAddr) {
        let now = Instant::now();
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        // A block that has run out still leaves `blocked_until` set: it must not keep
        // the count alive past a success.
        if entries
            .get(&ip)
            .is_some_and(|e| e.blocked_until.is_none_or(|until| now >= until))
        {
            entries.remove(&ip);
        }
    }

    /// Addresses currently tracked.
    pub fn len(&self) -> usize {
        self.entries.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Drops stale entries; if none are stale, the least recently seen one.
fn evict(entries: &mut HashMap<IpAddr, Entry>, now: Instant, policy: &BindFailurePolicy) {
    entries.retain(|_, e| {
        let blocked = e.blocked_until.is_some_and(|u| now < u);
        blocked || now.duration_since(e.window_start) <= policy.window
    });
    if entries.len() >= policy.max_tracked {
        if let Some(oldest) = entries
            .iter()
            .min_by_key(|(_, e)| e.last_seen)
            .map(|(ip, _)| *ip)
        {
            entries.remove(&oldest);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn policy(max_tracked: usize) -> BindFailurePolicy {
        BindFailurePolicy {
            max_failures: 3,
            window: Duration::from_secs(60),
            block_for: Duration::from_secs(300),
            delay: Duration::ZERO,
            max_tracked,
        }
    }

    #[test]
    fn blocks_after_max_failures_and_unblocks_later() {
        let t = BindFailureTracker::new();
        let ip: IpAddr = "10.0.0.1".parse().unwrap_or(IpAddr::from([0, 0, 0, 0]));
        let now = Instant::now();
        let p = policy(10);
        assert!(!t.record_failure(ip, now, &p));
        assert!(!t.record_failure(ip, now, &p));
        assert!(t.record_failure(ip, now, &p));
        assert!(t.is_blocked(ip, now + Duration::from_secs(299)));
        assert!(!t.is_blocked(ip, now + Duration::from_secs(301)));
    }

    #[test]
    fn map_stays_bounded() {
        let t = BindFailureTracker::new();
        let now = Instant::now();
        let p = policy(4);
        for i in 0..100u8 {
            t.record_failure(IpAddr::from([10, 0, 0, i]), now, &p);
        }
        assert!(t.len() <= 4);
    }

    #[tokio::test]
    async fn plain_and_hashed_passwords_verify() {
        use argon2::password_hash::{PasswordHasher, SaltString};
        assert!(verify_password(&Credential::Plain("pw".into()), b"pw").await);
        assert!(!verify_password(&Credential::Plain("pw".into()), b"pX").await);
        assert!(!verify_password(&Credential::Plain("pw".into()), b"pw2").await);
        let salt = SaltString::encode_b64(b"0123456789abcdef").unwrap_or_else(|_| unreachable!());
        let hash = argon2::Argon2::default()
            .hash_password(b"pw", &salt)
            .map(|h| h.to_string())
            .unwrap_or_default();
        assert!(verify_password(&Credential::Argon2(hash.clone()), b"pw").await);
        assert!(!verify_password(&Credential::Argon2(hash), b"nope").await);
    }
}
