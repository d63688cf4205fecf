//! Bearer tokens of the admin API: which configured token (and so which role) a
//! request presents.
//!
//! A clear token is compared in constant time, as SHA-256 digests (equal length
//! whatever was presented, so neither the length nor a common prefix leaks). A
//! `token_hash` is verified with argon2 once per presented token: a success is cached
//! by the SHA-256 of the presented token and the PHC string, so a console refreshing
//! every few seconds does not cost an argon2 hash per request. Failures are not
//! cached (random guesses would only fill the cache); they queue behind one argon2
//! verification at a time, and a cached success never waits behind them.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;

use argon2::{PasswordHash, PasswordVerifier};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use tokio::sync::Semaphore;

use crate::config::{AdminRole, AdminToken, Credential};

/// Longest token looked at; a longer Authorization header is refused unread.
const MAX_TOKEN_LEN: usize = 512;
/// Presented tokens whose argon2 success is remembered; past this the cache starts
/// over (only valid tokens get in, so it holds a handful in practice).
const CACHE_ENTRIES: usize = 64;

type Digest32 = [u8; 32];

/// A presented token that matched: its role and which `admin.tokens[i]` it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Granted {
    pub role: AdminRole,
    pub index: usize,
}

impl Granted {
    /// How logs name the token (never the token itself).
    pub fn name(&self) -> String {
        format!("admin.tokens[{}]", self.index)
    }
}

/// Checks presented tokens against the configured ones. One per admin listener.
pub struct TokenCheck {
    /// PHC strings a presented token (by digest) verified against.
    verified: Mutex<HashMap<Digest32, HashSet<String>>>,
    /// One argon2 verification at a time.
    argon2: Semaphore,
}

impl Default for TokenCheck {
    fn default() -> Self {
        TokenCheck {
            verified: Mutex::new(HashMap::new()),
            argon2: Semaphore::new(1),
        }
    }
}

fn sha256(s: &[u8]) -> Digest32 {
    Sha256::digest(s).into()
}

impl TokenCheck {
    /// The first of `tokens` that `presented` is, if any.
    pub async fn check(&self, presented: Option<&str>, tokens: &[AdminToken]) -> Option<Granted> {
        let presented = presented.filter(|p| !p.is_empty() && p.len() <= MAX_TOKEN_LEN)?;
        let digest = sha256(presented.as_bytes());
        // Clear tokens first: no argon2 for them.
        for (index, t) in tokens.iter().enumerate() {
            if let Credential::Plain(clear) = &t.secret {
                if bool::from(sha256(clear.as_bytes()).ct_eq(&digest)) {
                    return Some(Granted {
                        role: t.role,
                        index,
                    });
                }
            }
        }
        for (index, t) in tokens.iter().enumerate() {
            if let Credential::Argon2(phc) = &t.secret {
                if self.verify(digest, presented, phc).await {
                    return Some(Granted {
                        role: t.role,
                        index,
                    });
                }
            }
        }
        None
    }

    fn cached(&self, digest: &Digest32, phc: &str) -> bool {
        self.lock().get(digest).is_some_and(|s| s.contains(phc))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Digest32, HashSet<String>>> {
        self.verified.lock().unwrap_or_else(|e| e.into_inner())
    }

    async fn verify(&self, digest: Digest32, presented: &str, phc: &str) -> bool {
        if self.cached(&digest, phc) {
            return true;
        }
        let Ok(_permit) = self.argon2.acquire().await else {
            return false;
        };
        // Verified by the request we waited behind?
        if self.cached(&digest, phc) {
            return true;
        }
        let (given, hash) = (presented.to_owned(), phc.to_owned());
        let ok = tokio::task::spawn_blocking(move || {
            PasswordHash::new(&hash).is_ok_and(|h| {
                argon2::Argon2::default()
                    .verify_password(given.as_bytes(), &h)
                    .is_ok()
            })
        })
        .await
        .unwrap_or(false);
        if ok {
            let mut cache = self.lock();
            if cache.len() >= CACHE_ENTRIES && !cache.contains_key(&digest) {
                cache.clear();
            }
            cache.entry(digest).or_default().insert(phc.to_owned());
        }
        ok
    }
}

/// The token of an `Authorization: Bearer <token>` header value.
pub fn bearer(header: Option<&str>) -> Option<&str> {
    let (scheme, token) = header?.trim().split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then_some(token.trim())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn phc(secret: &str) -> String {
        use argon2::password_hash::{PasswordHasher, SaltString};
        let salt = SaltString::encode_b64(b"0123456789abcdef").unwrap_or_else(|_| unreachable!());
        // Cheap parameters: the test is about the flow, not the cost.
        let params = argon2::Params::new(1024, 1, 1, None).unwrap_or_else(|_| unreachable!());
        argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params)
            .hash_password(secret.as_bytes(), &salt)
            .map(|h| h.to_string())
            .unwrap_or_default()
    }

    fn tokens() -> Vec<AdminToken> {
        vec![
            AdminToken {
                secret: Credential::Plain("read-token-0123456789".into()),
                role: AdminRole::Read,
            },
            AdminToken {
                secret: Credential::Argon2(phc("admin-token-0123456789")),
                role: AdminRole::Admin,
            },
        ]
    }

    #[tokio::test]
    async fn clear_and_hashed_tokens_grant_their_role() {
        let check = TokenCheck::default();
        let t = tokens();
        assert_eq!(
            check.check(Some("read-token-0123456789"), &t).await,
            Some(Granted {
                role: AdminRole::Read,
                index: 0
            })
        );
        assert_eq!(
            check.check(Some("admin-token-0123456789"), &t).await,
            Some(Granted {
                role: AdminRole::Admin,
                index: 1
            })
        );
        for wrong in [
            None,
            Some(""),
            Some("read-token-012345678"),
            Some("admin-token-0123456780"),
        ] {
            assert_eq!(check.check(wrong, &t).await, None, "{wrong:?}");
        }
    }

    #[tokio::test]
    async fn a_verified_hash_is_cached_and_a_failure_is_not() {
        let check = TokenCheck::default();
        let t = tokens();
        assert!(check
            .check(Some("admin-token-0123456789"), &t)
            .await
            .is_some());
        assert_eq!(check.lock().len(), 1);
        assert!(check.check(Some("nope-nope-nope-nope"), &t).await.is_none());
        assert_eq!(check.lock().len(), 1, "failures are not cached");
        // The cached success still needs the same PHC string: a reload that changes
        // the hash is not bypassed by the cache.
        let changed = vec![AdminToken {
            secret: Credential::Argon2(phc("another-admin-token-0")),
            role: AdminRole::Admin,
        }];
        assert!(check
            .check(Some("admin-token-0123456789"), &changed)
            .await
            .is_none());
    }

    #[test]
    fn bearer_header_is_parsed() {
        assert_eq!(bearer(Some("Bearer abc")), Some("abc"));
        assert_eq!(bearer(Some("bearer  abc ")), Some("abc"));
        assert_eq!(bearer(Some("Basic abc")), None);
        assert_eq!(bearer(Some("Bearer")), None);
        assert_eq!(bearer(None), None);
    }
}
