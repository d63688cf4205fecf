//! An account's rate on this node: submits are taken from the budget every node shares
//! ([`MessageService::take_tokens`]) a chunk at a time, and handed out here one per
//! submit, so that most submits cost no call at all
//! ([docs/design/account-limits.md](../../docs/design/account-limits.md)).
//!
//! Shared by every session of the account on this node. A session asks [`AccountTokens::take`]
//! without waiting; only [`Take::Refill`] needs a call, which the request's task makes
//! ([`AccountTokens::refill`]): one at a time per account, the others wait for it and
//! take from what it brought.

use std::sync::Mutex;

use tokio::time::Instant;

use crate::config::Throughput;
use crate::service::{MessageService, Rate, ServiceError, TokenGrant};

/// The largest chunk: what one node may hold beyond its share is at most this.
pub const MAX_CHUNK: u32 = 64;

/// Submits taken from the shared budget per call: an eighth of the burst (so that at
/// least eight nodes each find a chunk in a full bucket), 1 to [`MAX_CHUNK`]. The
/// tokens a node holds are how far the sum of nodes can run past the limit.
pub fn chunk_for(burst: u32) -> u32 {
    (burst / 8).clamp(1, MAX_CHUNK)
}

/// What a submit gets from [`AccountTokens::take`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Take {
    /// A token was taken: accept it.
    Admit,
    /// The shared budget said it is empty until later: ESME_RTHROTTLED.
    Throttle,
    /// Nothing here: ask the shared budget ([`AccountTokens::refill`]).
    Refill,
}

/// The node's tokens of an account (pure bookkeeping).
#[derive(Debug, Default)]
struct Pocket {
    left: u32,
    /// The shared budget granted nothing: no need to ask again before this.
    empty_until: Option<Instant>,
}

impl Pocket {
    fn take(&mut self, now: Instant) -> Take {
        if self.left > 0 {
            self.left -= 1;
            return Take::Admit;
        }
        match self.empty_until {
            Some(until) if now < until => Take::Throttle,
            _ => Take::Refill,
        }
    }

    /// Puts a grant in and takes one of it for the submit that asked: true if it got one.
    fn fill(&mut self, grant: TokenGrant, now: Instant) -> bool {
        self.left += grant.granted;
        self.empty_until = (grant.granted == 0).then(|| now + grant.retry_after);
        self.take(now) == Take::Admit
    }
}

/// An account's rate and its tokens on this node.
#[derive(Debug)]
pub struct AccountTokens {
    rate: Rate,
    chunk: u32,
    pocket: Mutex<Pocket>,
    /// One refill call at a time per account: the submits that meet an empty pocket
    /// meanwhile wait for it rather than each making a call.
    refill: tokio::sync::Mutex<()>,
}

impl AccountTokens {
    pub fn new(t: Throughput) -> Self {
        let burst = t.burst.max(1);
        AccountTokens {
            rate: Rate {
                per_second: t.per_second.max(1),
                burst,
            },
            chunk: chunk_for(burst),
            pocket: Mutex::new(Pocket::default()),
            refill: tokio::sync::Mutex::new(()),
        }
    }

    fn pocket(&self) -> std::sync::MutexGuard<'_, Pocket> {
        self.pocket.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Takes a token for one submit without waiting.
    pub fn take(&self) -> Take {
        self.pocket().take(Instant::now())
    }

    /// After [`Take::Refill`]: asks the shared budget for a chunk (unless another
    /// submit just did) and takes one for this submit. Ok(false): ESME_RTHROTTLED;
    /// Err: the budget could not be asked (Redis unreachable), which the session
    /// answers like any store fault.
    pub async fn refill(
        &self,
        service: &dyn MessageService,
        system_id: &str,
    ) -> Result<bool, ServiceError> {
        let _one = self.refill.lock().await;
        match self.take() {
            Take::Admit => return Ok(true),
            Take::Throttle => return Ok(false),
            Take::Refill => {}
        }
        let grant = service
            .take_tokens(system_id, self.rate, self.chunk)
            .await?;
        Ok(self.pocket().fill(grant, Instant::now()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// A grant of `n` (`retry_after` when 0).
    fn grant(n: u32, retry_after: Duration) -> TokenGrant {
        TokenGrant {
            granted: n,
            retry_after,
        }
    }

    #[test]
    fn a_chunk_is_an_eighth_of_the_burst_within_1_and_64() {
        assert_eq!(chunk_for(0), 1);
        assert_eq!(chunk_for(3), 1);
        assert_eq!(chunk_for(16), 2);
        assert_eq!(chunk_for(200), 25);
        assert_eq!(chunk_for(512), 64);
        assert_eq!(chunk_for(10_000_000), MAX_CHUNK);
    }

    #[test]
    fn tokens_of_a_grant_are_handed_out_one_by_one_then_refilled() {
        let now = Instant::now();
        let mut p = Pocket::default();
        assert_eq!(p.take(now), Take::Refill, "an empty pocket asks");
        assert!(
            p.fill(grant(3, Duration::ZERO), now),
            "the asking submit gets one"
        );
        assert_eq!(p.take(now), Take::Admit);
        assert_eq!(p.take(now), Take::Admit);
        assert_eq!(p.take(now), Take::Refill);
    }

    #[test]
    fn nothing_granted_throttles_locally_until_the_next_token_frees() {
        let now = Instant::now();
        let mut p = Pocket::default();
        assert!(!p.fill(grant(0, Duration::from_millis(40)), now));
        assert_eq!(p.take(now), Take::Throttle);
        assert_eq!(p.take(now + Duration::from_millis(39)), Take::Throttle);
        assert_eq!(p.take(now + Duration::from_millis(40)), Take::Refill);
        // A later grant ends the wait.
        assert!(p.fill(grant(2, Duration::ZERO), now));
        assert_eq!(p.take(now), Take::Admit);
        assert_eq!(p.take(now), Take::Refill);
    }
}
