//! Receipts of single-part messages held until their submit_sm_resp is queued.
//!
//! A single-part message is complete when its SUBMIT script runs, and that script
//! queues its receipt too (no P:fresh / RELEASE round). Due at once, the receipt
//! could reach the ESME before the submit_sm_resp that tells it the message_id —
//! a receipt for an id it does not know yet, which many ESMEs drop. So SUBMIT queues
//! it *held*: due only at `held_until` (now + [`HOLD_MS`]). Once the session queued
//! the response, [`crate::service::AfterResponse`] puts the receipt here, and this
//! task makes it due now (RECEIPT_READY, one script call per batch) and announces it.
//! The deliver_sm then queues behind the response on the same session, and on other
//! nodes it is sent after the response left this one.
//!
//! Nothing is lost if this never runs (node killed, Redis briefly down): the receipt
//! becomes due at `held_until` by itself, [`HOLD_MS`] late.

use std::sync::{Arc, Mutex};

use tokio::sync::Notify;

use super::Inner;

/// How long a receipt waits for its response when the node that stored it never
/// says the response was queued.
pub const HOLD_MS: i64 = 10_000;

/// A held receipt: account, receipt id, and the score SUBMIT gave it (only a receipt
/// still at that score — not taken meanwhile — is made due).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Held {
    pub account: String,
    pub id: String,
    pub held_until: i64,
}

/// Receipts whose responses are queued, waiting for the next RECEIPT_READY call.
/// Grows by one per accepted single-part submit and is emptied by every call, so it
/// holds at most what the sessions' windows let in meanwhile.
#[derive(Debug, Default)]
pub struct ReadyQueue {
    items: Mutex<Vec<Held>>,
    wake: Notify,
}

impl ReadyQueue {
    pub fn push(&self, held: Held) {
        self.items
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(held);
        self.wake.notify_one();
    }

    fn take(&self) -> Vec<Held> {
        std::mem::take(&mut *self.items.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

pub async fn run(inner: Arc<Inner>) {
    let queue = inner.ready.clone();
    loop {
        tokio::select! {
            _ = queue.wake.notified() => {}
            _ = inner.shutdown.cancelled() => return,
        }
        let batch = queue.take();
        if batch.is_empty() {
            continue;
        }
        let mut inv = inner.scripts.receipt_ready.prepare_invoke();
        inv.arg(inner.prefix()).arg(inner.node());
        for h in &batch {
            inv.arg(&h.account).arg(&h.id).arg(h.held_until);
        }
        if let Err(e) = inv.invoke_async::<()>(&mut inner.conn()).await {
            // They become due at held_until by themselves.
            tracing::warn!(error = %e, n = batch.len(), "could not release held receipts; they go out when their hold ends");
        }
    }
}
