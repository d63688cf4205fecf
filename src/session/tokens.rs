//! An account's rate on this node: submits are taken from the budget every node shares
//! ([`MessageService::take_tokens`]) a chunk at a time, and handed out here one per
//! submit, so that most submits cost no call at all
//! ([docs/design/account-limits.md](../../docs/design/account-limits.md)).
//!
//! Shared by every session of the account on this node. A session asks
//! [`AccountTokens::take`] without waiting. At half a chunk left, one submit starts a
//! top-up in the background ([`Take::AdmitAndTopUp`]), so that under load the pocket
//! does not run dry while a call is out (measured: waiting for an empty pocket to
//! refill cost 10 % of a node's submit rate). Only an empty pocket makes a submit wait
//! ([`Take::Refill`], in the request's task). One call at a time per account.

use std::sync::Mutex;

use tokio::time::Instant;

use crate::config::Throughput;
use crate::service::{MessageService, Rate, ServiceError, TokenGrant};

/// The largest chunk of an account below 6,400/s: what one node may hold beyond its
/// share is at most this.
pub const MAX_CHUNK: u32 = 64;

/// Submits taken from the shared budget per call: an eighth of the burst (so that at
/// least eight nodes each find a chunk in a full bucket), at least 1, at most
/// [`MAX_CHUNK`] or 10 ms of the rate, whichever is more. The tokens a node holds are
/// how far the sum of nodes can run past the limit. Why 10 ms of a high rate: a
/// chunk must outlast a call, which waits behind SUBMIT batches in a busy Redis
/// (2–4 ms measured); with 64 at 16k submit/s the pocket ran dry every 4 ms, the
/// account's submits stalled, and the node lost 13 % of its rate
/// ([account-limits.md](../../docs/design/account-limits.md)).
pub fn chunk_for(rate: Rate) -> u32 {
    (rate.burst / 8).clamp(1, MAX_CHUNK.max(rate.per_second / 100))
}

/// What a submit gets from [`AccountTokens::take`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Take {
    /// A token was taken: accept it.
    Admit,
    /// A token was taken, and the pocket is down to half a chunk: accept it, and top
    /// the pocket up in the background ([`AccountTokens::top_up`]) so that it does not
    /// run dry while the call is out.
    AdmitAndTopUp,
    /// The shared budget said it is empty until later: ESME_RTHROTTLED.
    Throttle,
    /// Nothing here: ask the shared budget ([`AccountTokens::refill`]).
    Refill,
}

/// The node's tokens of an account (pure bookkeeping). It never holds more than one
/// chunk: a refill or top-up asks for what is missing to a full chunk.
#[derive(Debug, Default)]
struct Pocket {
    left: u32,
    /// The shared budget granted nothing: no need to ask again before this.
    empty_until: Option<Instant>,
    /// A top-up was asked for and has not ended yet.
    topping_up: bool,
}

impl Pocket {
    fn take(&mut self, now: Instant, chunk: u32) -> Take {
        if self.left > 0 {
            self.left -= 1;
            if !self.topping_up && self.left <= chunk / 2 && !self.known_empty(now) {
                self.topping_up = true;
                return Take::AdmitAndTopUp;
            }
            return Take::Admit;
        }
        if self.known_empty(now) {
            Take::Throttle
        } else {
            Take::Refill
        }
    }

    fn known_empty(&self, now: Instant) -> bool {
        self.empty_until.is_some_and(|until| now < until)
    }

    /// What a call should ask for: the rest of a full chunk.
    fn wanted(&self, chunk: u32) -> u32 {
        chunk.saturating_sub(self.left)
    }

    fn add(&mut self, grant: TokenGrant, now: Instant) {
        self.left += grant.granted;
        self.empty_until = (grant.granted == 0).then(|| now + grant.retry_after);
    }

    /// One token for a submit that waited for a refill, without starting a top-up
    /// (the refill just asked).
    fn take_after_refill(&mut self) -> bool {
        let got = self.left > 0;
        self.left -= u32::from(got);
        got
    }
}

/// An account's rate and its tokens on this node.
#[derive(Debug)]
pub struct AccountTokens {
    rate: Rate,
    chunk: u32,
    pocket: Mutex<Pocket>,
    /// One call at a time per account: the submits that meet an empty pocket meanwhile
    /// wait for it rather than each making a call.
    calls: tokio::sync::Mutex<()>,
}

impl AccountTokens {
    pub fn new(t: Throughput) -> Self {
        let burst = t.burst.max(1);
        AccountTokens {
            rate: Rate {
                per_second: t.per_second.max(1),
                burst,
            },
            chunk: chunk_for(Rate {
                per_second: t.per_second,
                burst,
            }),
            pocket: Mutex::new(Pocket::default()),
            calls: tokio::sync::Mutex::new(()),
        }
    }

    fn pocket(&self) -> std::sync::MutexGuard<'_, Pocket> {
        self.pocket.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Takes a token for one submit without waiting.
    pub fn take(&self) -> Take {
        self.pocket().take(Instant::now(), self.chunk)
    }

    /// Asks the shared budget for the rest of a chunk and puts it in the pocket.
    async fn ask(&self, service: &dyn MessageService, system_id: &str) -> Result<(), ServiceError> {
        let n = self.pocket().wanted(self.chunk);
        if n == 0 {
            return Ok(());
        }
        let grant = service.take_tokens(system_id, self.rate, n).await?;
        self.pocket().add(grant, Instant::now());
        Ok(())
    }

    /// After [`Take::Refill`]: asks the shared budget for a chunk (unless a call that
    /// just ended brought tokens, or said it is empty) and takes one for this submit.
    /// Ok(false): ESME_RTHROTTLED; Err: the budget could not be asked (Redis
    /// unreachable), which the session answers like any store fault.
    pub async fn refill(
        &self,
        service: &dyn MessageService,
        system_id: &str,
    ) -> Result<bool, ServiceError> {
        let _one = self.calls.lock().await;
        {
            let mut p = self.pocket();
            if p.take_after_refill() {
                return Ok(true);
            }
            if p.known_empty(Instant::now()) {
                return Ok(false);
            }
        }
        self.ask(service, system_id).await?;
        Ok(self.pocket().take_after_refill())
    }

    /// After [`Take::AdmitAndTopUp`]: fills the pocket up to a chunk. A failure is only
    /// logged: the submits that then find the pocket empty ask again themselves.
    pub async fn top_up(&self, service: &dyn MessageService, system_id: &str) {
        let _one = self.calls.lock().await;
        let known_empty = self.pocket().known_empty(Instant::now());
        if !known_empty {
            if let Err(e) = self.ask(service, system_id).await {
                tracing::warn!(system_id, error = %e, "rate budget not topped up");
            }
        }
        self.pocket().topping_up = false;
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
    fn a_chunk_is_an_eighth_of_the_burst_within_1_and_64_or_10_ms_of_the_rate() {
        let chunk = |per_second, burst| chunk_for(Rate { per_second, burst });
        assert_eq!(chunk(100, 0), 1);
        assert_eq!(chunk(1, 3), 1);
        assert_eq!(chunk(100, 16), 2);
        assert_eq!(chunk(100, 200), 25);
        assert_eq!(chunk(100, 512), 64);
        assert_eq!(chunk(6_400, 10_000_000), MAX_CHUNK);
        // A high rate: 10 ms of it, still at most an eighth of the burst.
        assert_eq!(chunk(1_000_000, 1_000_000), 10_000);
        assert_eq!(chunk(50_000, 4_000), 500);
    }

    #[test]
    fn tokens_are_handed_out_one_by_one_and_topped_up_at_half_a_chunk() {
        let now = Instant::now();
        let mut p = Pocket::default();
        assert_eq!(p.take(now, 8), Take::Refill, "an empty pocket asks");
        assert_eq!(p.wanted(8), 8);
        p.add(grant(8, Duration::ZERO), now);
        assert!(p.take_after_refill(), "the asking submit gets one");
        let takes: Vec<Take> = (0..7).map(|_| p.take(now, 8)).collect();
        assert_eq!(
            takes,
            [
                Take::Admit,
                Take::Admit,
                Take::AdmitAndTopUp, // 4 left: half a chunk
                Take::Admit,         // one top-up at a time
                Take::Admit,
                Take::Admit,
                Take::Admit,
            ]
        );
        assert_eq!(p.take(now, 8), Take::Refill, "the top-up has not come yet");
        // The top-up asks for the rest of a chunk: never more than a chunk held.
        assert_eq!(p.wanted(8), 8);
        p.add(grant(3, Duration::ZERO), now);
        p.topping_up = false;
        assert_eq!(p.wanted(8), 5);
        assert_eq!(p.take(now, 8), Take::AdmitAndTopUp);
    }

    #[test]
    fn nothing_granted_throttles_locally_until_the_next_token_frees() {
        let now = Instant::now();
        let mut p = Pocket::default();
        p.add(grant(0, Duration::from_millis(40)), now);
        assert!(!p.take_after_refill());
        assert_eq!(p.take(now, 1), Take::Throttle);
        assert_eq!(p.take(now + Duration::from_millis(39), 1), Take::Throttle);
        assert_eq!(p.take(now + Duration::from_millis(40), 1), Take::Refill);
        // A later grant ends the wait; a chunk of 1 tops up as its token goes.
        p.add(grant(1, Duration::ZERO), now);
        assert_eq!(p.take(now, 1), Take::AdmitAndTopUp);
        assert_eq!(p.take(now, 1), Take::Refill);
    }
}
