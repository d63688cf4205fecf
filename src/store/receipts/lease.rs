//! The receipt lease: while a receipt's score in `P:r:<acct>` lies ahead, one node
//! holds it and no other takes it. The rules, in one place:
//!
//! * A node that takes receipts (RECEIPT_TAKE) leases them for `receipt_lease` (set
//!   in `app.rs`: longer than a send may take — every try's window slot, hand-over
//!   and response wait — so that no second node sends one while the first still
//!   may).
//! * SUBMIT queues a single-part message's receipt *held* for [`hold_ms`] (a lease
//!   plus [`HOLD_MARGIN_MS`]) until its submit_sm_resp is queued (`receipts/ready.rs`); RELEASE
//!   queues the receipts of a finished message leased to this node the same way when
//!   its receiver is bound here.
//! * A node sends a receipt it holds in memory only while a whole lease of it is left
//!   ([`Local::usable`]); what it cannot send in time it makes due in Redis for any
//!   node (RECEIPT_READY), and what it holds when it dies becomes due when the hold
//!   ends, as a taken receipt does.

use crate::store::model::outcome::QueuedReceipt;

/// What the hold adds to a receipt lease: the time for the response to be queued and
/// this node's worker to start the send, which must still find a whole lease left
/// ([`Local::usable`]).
pub const HOLD_MARGIN_MS: i64 = 5_000;

/// How long SUBMIT holds a receipt: a receipt lease and the margin. It is also how
/// late the receipt goes out when the node that stored it dies before sending it (a
/// taken receipt waits its lease the same way).
pub fn hold_ms(receipt_lease: std::time::Duration) -> i64 {
    receipt_lease.as_millis() as i64 + HOLD_MARGIN_MS
}

/// A held receipt: account, receipt id, and the score SUBMIT gave it (only a receipt
/// still at that score — not taken meanwhile — is made due), with the receipt itself
/// when this node built it (then it may be sent from memory).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Held {
    pub account: String,
    pub id: String,
    pub held_until: i64,
    pub receipt: Option<QueuedReceipt>,
}

/// A receipt queued in Redis leased to this node until `held_until` (ms, Redis time).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Local {
    pub id: String,
    pub receipt: QueuedReceipt,
    pub held_until: i64,
}

impl Local {
    /// Whether a send started at `now` ends before the lease does: a send may take
    /// up to a whole receipt lease (every try's slot and response wait).
    pub fn usable(&self, now: i64, lease_ms: i64) -> bool {
        self.held_until - now >= lease_ms
    }

    /// The form RECEIPT_READY takes, to make it due in Redis instead.
    pub fn into_held(self) -> Held {
        Held {
            account: self.receipt.receipt.system_id.clone(),
            id: self.id,
            held_until: self.held_until,
            receipt: None,
        }
    }
}
