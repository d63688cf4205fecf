//! Receipts released the moment a message finishes, not when its outcome reaches
//! MongoDB.
//!
//! A finished message is durable in Redis (`P:d:<gid>`, in the outbox) from the
//! instant it finished; its MongoDB document may take seconds when the server is slow
//! and arbitrarily long when it is down. Receipts waiting for that write made receipt
//! latency the MongoDB write latency (seconds under load, BENCHMARKS.md). So `finish`
//! also lists the gid in `P:fresh` (multi-part messages only: a single-part message's
//! receipt is queued by its submit script, see `ready.rs`); this task reads those groups, builds their receipts
//! and runs the RELEASE script, which queues them only if it removed the gid from
//! `P:fresh`. The outcome writer's finalize queues them itself when the gid is still
//! there (this node died before releasing), so every receipt is queued exactly once
//! whichever runs first, on whichever node.
//!
//! Woken by the same events as the outcome writer (a message completed, a claim won,
//! a recovery pass) and once at start; it drains `P:fresh` and sleeps. No polling.

use std::sync::Arc;
use std::time::Duration;

use super::model::FinishedGroup;
use super::outcome::receipts;
use super::value::{hash_bytes, items, string};
use super::{Inner, StoreError};

/// Groups per FRESH read.
const BATCH: usize = 256;

pub struct Releaser {
    inner: Arc<Inner>,
}

impl Releaser {
    pub fn new(inner: Arc<Inner>) -> Releaser {
        Releaser { inner }
    }

    pub async fn run(self) {
        let shutdown = self.inner.shutdown.clone();
        loop {
            match self.drain().await {
                Ok(()) => {
                    tokio::select! {
                        _ = self.inner.release_wake.notified() => {}
                        _ = shutdown.cancelled() => return,
                    }
                }
                Err(e) => {
                    // Nothing is lost meanwhile: finalize releases what is left.
                    tracing::warn!(error = %e, "receipt release: redis unavailable");
                    tokio::select! {
                        _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                        _ = shutdown.cancelled() => return,
                    }
                }
            }
        }
    }

    /// Releases fresh groups until none is left.
    async fn drain(&self) -> Result<(), StoreError> {
        // Held from the first full batch on: more are waiting, the outcome writer waits.
        let mut _busy = None;
        loop {
            let reply: redis::Value = self
                .inner
                .scripts
                .fresh
                .arg(self.inner.prefix())
                .arg(self.inner.node())
                .arg(BATCH)
                .invoke_async(&mut self.inner.conn())
                .await?;
            let a = items(reply);
            let n = a.len() / 2;
            if n == 0 {
                return Ok(());
            }
            self.release(a).await?;
            if n < BATCH || self.inner.shutdown.is_cancelled() {
                return Ok(());
            }
            _busy.get_or_insert_with(|| self.inner.backlog.busy());
        }
    }

    /// One RELEASE for the whole batch (one script call, one announcement per
    /// account, instead of one of each per message).
    async fn release(&self, pairs: Vec<redis::Value>) -> Result<(), StoreError> {
        let mut inv = self.inner.scripts.release.prepare_invoke();
        inv.arg(self.inner.prefix()).arg(self.inner.node());
        let mut ended = Vec::new();
        let mut it = pairs.into_iter();
        while let (Some(gid), Some(fields)) = (it.next(), it.next()) {
            let gid = string(&gid).unwrap_or_default();
            let owed = match FinishedGroup::from_fields(hash_bytes(fields))
                .and_then(|g| Ok((g.finished_ms, receipts(&g)?)))
            {
                Ok((fin, r)) => {
                    ended.push(fin);
                    r
                }
                Err(e) => {
                    // Left in P:fresh: finalize (which reads the same data) decides.
                    tracing::error!(error = %e, gid, "cannot build the receipts of a finished message");
                    continue;
                }
            };
            inv.arg(&gid).arg(owed.len());
            for (id, r) in owed {
                let payload = serde_json::to_string(&r)
                    .map_err(|e| StoreError::Corrupt(format!("receipt: {e}")))?;
                inv.arg(&r.receipt.system_id).arg(id).arg(payload);
            }
        }
        if !ended.is_empty() {
            inv.invoke_async::<()>(&mut self.inner.conn()).await?;
            let now = self.inner.clock.now_ms();
            for fin in ended {
                crate::metrics::receipt_wait_ms(crate::metrics::ReceiptStage::Queued, now - fin);
            }
        }
        Ok(())
    }
}
