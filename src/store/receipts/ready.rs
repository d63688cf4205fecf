//! Receipts of single-part messages held until their submit_sm_resp is queued.
//!
//! A single-part message is complete when its SUBMIT script runs, and that script
//! queues its receipt too (no P:fresh / RELEASE round). Due at once, the receipt
//! could reach the ESME before the submit_sm_resp that tells it the message_id —
//! a receipt for an id it does not know yet, which many ESMEs drop. So SUBMIT queues
//! it *held*: due only at `held_until` (now + [`hold_ms`]), which no node takes it
//! before. Once the session queued the response, [`crate::service::AfterResponse`]
//! puts the receipt here, and this task either
//! * hands it to this node's receipt worker ([`crate::store::receipts::handoff`]) when a receiver of
//!   its account is bound here: the hold is then this node's lease of it, as a
//!   RECEIPT_TAKE would have made, and Redis sees only the RECEIPT_DONE; or
//! * makes it due now (RECEIPT_READY, one script call per batch) and announces it,
//!   for whichever node has a receiver.
//!
//! Either way the deliver_sm queues behind the response on the same session, and on
//! other nodes it is sent after the response left this one.
//!
//! Nothing is lost if this never runs (node killed, Redis briefly down): the receipt
//! becomes due at `held_until` by itself, as a taken receipt does when its node dies.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use tokio::sync::{mpsc, Notify};
use tokio_util::sync::CancellationToken;

use crate::service::ReceiptSink;
use crate::store::receipts::announce::DispatchEvent;
use crate::store::receipts::handoff::{Handoff, Pushed};
use crate::store::receipts::lease::{Held, Local};
use crate::store::redis::connection::Shared;
use crate::store::redis::partition;
use crate::store::redis::scripts::receipts::HeldEntry;
use crate::store::redis::scripts::Scripts;

/// What giving receipts to this node's workers, or making them due in Redis, uses of
/// the store.
#[derive(Clone, Copy)]
pub struct HandOver<'a> {
    /// Receipts leased to this node, by account, for its workers.
    pub handoff: &'a Handoff,
    pub scripts: &'a Scripts,
    pub conn: &'a Shared,
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

    pub(crate) fn take(&self) -> Vec<Held> {
        std::mem::take(&mut *self.items.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

pub async fn run(
    queue: &ReadyQueue,
    h: HandOver<'_>,
    sink: Arc<dyn ReceiptSink>,
    dispatch: mpsc::Sender<DispatchEvent>,
    shutdown: &CancellationToken,
) {
    loop {
        tokio::select! {
            _ = queue.wake.notified() => {}
            _ = shutdown.cancelled() => return,
        }
        let mut local = Vec::new();
        let mut due = Vec::new();
        for mut h in queue.take() {
            match h.receipt.take() {
                Some(receipt) if sink.has_receiver(&h.account) => local.push((
                    h.account,
                    Local {
                        id: h.id,
                        receipt,
                        held_until: h.held_until,
                    },
                )),
                _ => due.push(h),
            }
        }
        if !hand_over(h, &dispatch, local, due).await {
            return;
        }
    }
}

/// Gives receipts leased to this node (`account`, receipt) to their accounts'
/// workers, and makes `due` — with those the hand-over has no room for — due in Redis
/// first. False when the dispatcher is gone (shutdown: what the handoff holds is made
/// due then).
pub(crate) async fn hand_over(
    h: HandOver<'_>,
    dispatch: &mpsc::Sender<DispatchEvent>,
    local: Vec<(String, Local)>,
    mut due: Vec<Held>,
) -> bool {
    let mut wake = Vec::new();
    for (account, l) in local {
        match h.handoff.push(&account, l) {
            Pushed::First => wake.push(account),
            Pushed::Queued => {}
            Pushed::Full(l) => due.push(l.into_held()),
        }
    }
    make_due(h, &due).await;
    for account in wake {
        // Bounded: waits while the dispatcher is behind (its worker finds the
        // receipts on any wake).
        if dispatch.send(DispatchEvent::Local(account)).await.is_err() {
            return false;
        }
    }
    true
}

/// RECEIPT_READY, one call per partition: makes held receipts due now and announces
/// their accounts. On failure they become due at `held_until` by themselves.
pub(crate) async fn make_due(h: HandOver<'_>, held: &[Held]) {
    let mut parts: BTreeMap<usize, Vec<HeldEntry<'_>>> = BTreeMap::new();
    for held in held {
        // A receipt id is its message's message_id (`.n` added for a notification),
        // which names the partition.
        let Some(p) = partition::of_queue_id(&held.id) else {
            tracing::error!(id = held.id, "a receipt id without a partition");
            continue;
        };
        parts.entry(p).or_default().push(HeldEntry {
            account: &held.account,
            id: &held.id,
            held_until: held.held_until,
        });
    }
    futures::future::join_all(parts.iter().map(|(p, entries)| async move {
        if let Err(e) = h
            .scripts
            .receipt_ready(&mut h.conn.get(), *p, entries)
            .await
        {
            tracing::warn!(error = %e, n = entries.len(), "could not release held receipts; they go out when their hold ends");
        }
    }))
    .await;
}
