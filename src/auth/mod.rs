//! Bind authentication: which binds get in, and what a refused one may learn.
//!
//! A refusal tells the peer nothing: every one (unknown system_id, wrong password,
//! disabled account, TLS required on the plain port, address not allowed, address
//! blocked, bind type or bind count) is ESME_RBINDFAIL, answered `bind_failures.delay`
//! after the bind arrived. Everything that does not need the password is checked
//! before it, so no answer depends on whether the password was right unless the bind
//! succeeds; an unknown system_id is verified against a dummy credential of the same
//! cost as the accounts'.
//!
//! Every attempt counts as a failure of its address group from the moment it starts
//! ([`tracker`]); only a success, or a refusal for bind type or bind count (policy,
//! not guessing), takes its count back. Of an address group only one bind is checked
//! at a time, and argon2 verifications run on the blocking pool, at most one per CPU.

mod tracker;

use std::net::IpAddr;

use argon2::{PasswordHash, PasswordVerifier};
use subtle::ConstantTimeEq;
use tokio::sync::Semaphore;

pub use tracker::Attempt;
use tracker::BindFailureTracker;

use crate::config::{Account, Config, Credential};

/// What a bind PDU asks for, and where it came from.
#[derive(Debug, Clone, Copy)]
pub struct BindRequest<'a> {
    pub peer: IpAddr,
    /// Whether it came over the TLS listener.
    pub tls: bool,
    pub system_id: &'a str,
    pub password: &'a [u8],
}

/// The outcome of [`Authenticator::check`].
pub enum Decision<'c, 'a> {
    /// The password is right and nothing refused the bind. The attempt is settled by
    /// whoever registers the bind.
    Accept(&'c Account, Attempt<'a>),
    /// Answer ESME_RBINDFAIL, `delay` after the bind arrived. The reason is for the log.
    Refuse(&'static str),
}

/// Checks binds; shared by all sessions.
#[derive(Debug)]
pub struct Authenticator {
    failures: BindFailureTracker,
    /// One argon2 verification per CPU at a time: a flood of binds queues here instead
    /// of filling the blocking pool and starving everything else of CPU.
    verifiers: Semaphore,
}

impl Default for Authenticator {
    fn default() -> Self {
        Self::new()
    }
}

impl Authenticator {
    pub fn new() -> Self {
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
        Authenticator {
            failures: BindFailureTracker::new(),
            verifiers: Semaphore::new(cpus),
        }
    }

    /// Decides a bind. `policy` refuses an account for reasons that are not about
    /// guessing (bind type, bind count); it is asked before the password is checked,
    /// and its refusals are not counted.
    pub async fn check<'c>(
        &self,
        cfg: &'c Config,
        req: BindRequest<'_>,
        policy: impl FnOnce(&Account) -> Option<&'static str>,
    ) -> Decision<'c, '_> {
        // From here on the attempt is counted; each `Refuse` below drops it so.
        let Some(attempt) = self
            .failures
            .begin(req.peer, req.system_id, &cfg.server.bind_failures)
            .await
        else {
            return Decision::Refuse("address blocked after repeated failures");
        };
        let Some(account) = cfg.account(req.system_id) else {
            self.verify(&cfg.unknown_account_credential, req.password)
                .await;
            return Decision::Refuse("unknown system_id");
        };
        if !account.enabled {
            return Decision::Refuse("account disabled");
        }
        if account.tls_required && !req.tls {
            return Decision::Refuse("account requires TLS");
        }
        if !account.address_allowed(req.peer) {
            return Decision::Refuse("address not allowed");
        }
        if let Some(why) = policy(account) {
            attempt.not_counted();
            return Decision::Refuse(why);
        }
        if !self.verify(&account.credential, req.password).await {
            return Decision::Refuse("wrong password");
        }
        Decision::Accept(account, attempt)
    }

    /// Whether `given` (the bind PDU's password octets) matches `credential`.
    async fn verify(&self, credential: &Credential, given: &[u8]) -> bool {
        match credential {
            Credential::Plain(expected) => constant_time_eq(expected.as_bytes(), given),
            Credential::Argon2(phc) => {
                let Ok(_slot) = self.verifiers.acquire().await else {
                    return false;
                };
                let phc = phc.clone();
                let given = given.to_vec();
                tokio::task::spawn_blocking(move || {
                    PasswordHash::new(&phc).is_ok_and(|h| {
                        argon2::Argon2::default()
                            .verify_password(&given, &h)
                            .is_ok()
                    })
                })
                .await
                .unwrap_or(false)
            }
        }
    }
}

/// Compares in time independent of where the first difference is. The length is not
/// secret (at most 8 octets in SMPP), so a length mismatch may return early.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && bool::from(a.ct_eq(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn plain_and_hashed_passwords_verify() {
        use argon2::password_hash::{PasswordHasher, SaltString};
        let auth = Authenticator::new();
        let plain = Credential::Plain("pw".into());
        assert!(auth.verify(&plain, b"pw").await);
        assert!(!auth.verify(&plain, b"pX").await);
        assert!(!auth.verify(&plain, b"pw2").await);
        let salt = SaltString::encode_b64(b"0123456789abcdef").unwrap_or_else(|_| unreachable!());
        let hash = argon2::Argon2::default()
            .hash_password(b"pw", &salt)
            .map(|h| h.to_string())
            .unwrap_or_default();
        assert!(auth.verify(&Credential::Argon2(hash.clone()), b"pw").await);
        assert!(!auth.verify(&Credential::Argon2(hash), b"nope").await);
    }
}
