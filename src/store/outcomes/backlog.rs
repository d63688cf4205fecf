//! Receipts before outcome documents when expiries pile up.
//!
//! When many deadlines fall due at once (the 1M partials spread over a minute)
//! the claim-due pass and the receipt releaser run batch after full batch, and so does
//! the outcome writer, for the same messages: its lease and finalize scripts take
//! Redis' one thread (~10 µs per message) and its MongoDB inserts take the Mongo
//! server's CPU, on the same machines. A late receipt is what an ESME sees; a late
//! outcome document is not (the message is durable in Redis, in the outbox, until it is
//! written). So while either of those stages has a backlog in hand, the writer waits
//! before its next batch until they are idle — at most [`MAX_YIELD`] per batch, so
//! outcomes still flow during a burst that lasts and the outbox cannot only grow.
//!
//! A stage holds a [`Busy`] guard from its first full batch until its loop ends; the
//! count of guards is a `watch` value, so waiting costs nothing and no wake-up is lost.

use std::time::Duration;

use tokio::sync::watch;

/// The longest the outcome writer waits for the receipt path before one batch.
pub const MAX_YIELD: Duration = Duration::from_secs(1);

pub struct Backlog {
    busy: watch::Sender<usize>,
}

impl Default for Backlog {
    fn default() -> Backlog {
        Backlog {
            busy: watch::Sender::new(0),
        }
    }
}

/// Held by a stage while it works through a backlog; dropping it ends that.
pub struct Busy<'a>(&'a Backlog);

impl Drop for Busy<'_> {
    fn drop(&mut self) {
        self.0.busy.send_modify(|n| *n = n.saturating_sub(1));
    }
}

impl Backlog {
    /// Marks one stage as working through a backlog until the guard is dropped.
    pub fn busy(&self) -> Busy<'_> {
        self.busy.send_modify(|n| *n += 1);
        Busy(self)
    }

    /// Whether some stage has a backlog right now.
    #[cfg(test)]
    pub fn is_busy(&self) -> bool {
        *self.busy.borrow() > 0
    }

    /// Waits until no stage has a backlog, at most `max`. Returns whether it waited
    /// (for the metrics: how often outcomes gave way).
    pub async fn wait_idle(&self, max: Duration) -> bool {
        let mut rx = self.busy.subscribe();
        if *rx.borrow_and_update() == 0 {
            return false;
        }
        // The sender lives as long as `self`, so wait_for only ends on the condition.
        let _ = tokio::time::timeout(max, rx.wait_for(|n| *n == 0)).await;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn an_idle_backlog_does_not_wait() {
        let b = Backlog::default();
        let t = tokio::time::Instant::now();
        assert!(!b.wait_idle(MAX_YIELD).await);
        assert_eq!(t.elapsed(), Duration::ZERO);
    }

    #[tokio::test(start_paused = true)]
    async fn the_writer_waits_until_the_last_busy_stage_is_done() {
        let b = std::sync::Arc::new(Backlog::default());
        let claim = b.busy();
        let release = b.busy();
        assert!(b.is_busy());
        let waiter = {
            let b = b.clone();
            tokio::spawn(async move {
                let t = tokio::time::Instant::now();
                assert!(b.wait_idle(Duration::from_secs(10)).await);
                t.elapsed()
            })
        };
        tokio::time::sleep(Duration::from_millis(200)).await;
        drop(claim);
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(!waiter.is_finished(), "one stage is still busy");
        drop(release);
        let waited = waiter.await.expect("the waiter task");
        assert_eq!(waited, Duration::from_millis(500));
        assert!(!b.is_busy());
    }

    #[tokio::test(start_paused = true)]
    async fn a_backlog_that_lasts_holds_the_writer_at_most_max() {
        let b = Backlog::default();
        let _busy = b.busy();
        let t = tokio::time::Instant::now();
        assert!(b.wait_idle(MAX_YIELD).await);
        assert_eq!(t.elapsed(), MAX_YIELD);
    }
}
