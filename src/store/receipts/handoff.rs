//! Receipts this node sends straight from memory, without taking them back from Redis.
//!
//! A receipt is always queued in Redis first (`P:r:<acct>`, `P:rd:<acct>`): that is
//! what survives this node. But the node that queued it usually has it in memory and
//! the account's receiver bound, and making it due, announcing it, and taking it back
//! (RECEIPT_READY, a `P:receipts` message, RECEIPT_TAKE with its payloads) cost Redis
//! about a quarter of its script time per single-part message (SLOWLOG, BENCHMARKS.md).
//! So when the receipt is queued *leased to this node* — its score in `P:r:<acct>` is
//! a time no node takes it before — and a receiver of its account is bound here, the
//! node hands it to the account's receipt worker through this queue, and only
//! RECEIPT_DONE (or RECEIPT_RETRY) touches Redis again.
//!
//! Exactly the rules of a taken receipt hold: no node takes it before its lease ends,
//! and the worker sends it only while at least a whole receipt lease of it is left
//! (`usable`), so a send that takes as long as a send can still ends before another
//! node may take it. What the worker cannot send in time, or finds no receiver for,
//! it makes due in Redis (RECEIPT_READY) for any node. If this node dies holding
//! them, they become due when their lease ends, as a taken receipt does.

use std::collections::HashMap;
use std::sync::Mutex;

use crate::store::receipts::lease::Local;

/// Receipts held here per account at most; past it they are made due in Redis
/// instead (the durable queue), so a receiver slower than its submitters cannot make
/// this node's memory grow.
pub const PER_ACCOUNT: usize = 8192;

/// Per account, the receipts waiting for this node's worker of that account.
#[derive(Debug, Default)]
pub struct Handoff {
    queues: Mutex<HashMap<String, Vec<Local>>>,
}

/// What [`Handoff::push`] did.
#[derive(Debug, PartialEq, Eq)]
pub enum Pushed {
    /// Queued, and the account's queue was empty: wake its worker.
    First,
    /// Queued behind others (the worker is woken already).
    Queued,
    /// The account's queue is full; the caller makes it due in Redis.
    Full(Box<Local>),
}

impl Handoff {
    pub fn push(&self, account: &str, item: Local) -> Pushed {
        let mut q = self.queues.lock().unwrap_or_else(|e| e.into_inner());
        let v = q.entry(account.to_owned()).or_default();
        if v.len() >= PER_ACCOUNT {
            return Pushed::Full(Box::new(item));
        }
        v.push(item);
        if v.len() == 1 {
            Pushed::First
        } else {
            Pushed::Queued
        }
    }

    /// Everything held, of every account (at shutdown).
    pub fn take_all(&self) -> Vec<Local> {
        let mut q = self.queues.lock().unwrap_or_else(|e| e.into_inner());
        q.drain().flat_map(|(_, v)| v).collect()
    }

    /// Whether receipts of the account are waiting.
    pub fn has(&self, account: &str) -> bool {
        let q = self.queues.lock().unwrap_or_else(|e| e.into_inner());
        q.get(account).is_some_and(|v| !v.is_empty())
    }

    /// Up to `max` of the account's receipts, oldest first.
    pub fn take(&self, account: &str, max: usize) -> Vec<Local> {
        let mut q = self.queues.lock().unwrap_or_else(|e| e.into_inner());
        let Some(v) = q.get_mut(account) else {
            return Vec::new();
        };
        if v.len() <= max {
            let all = std::mem::take(v);
            q.remove(account);
            return all;
        }
        v.drain(..max).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::service::{Address, ReceiptDelivery};
    use crate::store::model::outcome::QueuedReceipt;

    fn addr() -> Address {
        Address {
            ton: 1,
            npi: 1,
            addr: "1".into(),
        }
    }

    fn local(id: &str, held_until: i64) -> Local {
        Local {
            id: id.into(),
            receipt: QueuedReceipt {
                receipt: ReceiptDelivery {
                    system_id: "alice".into(),
                    source: addr(),
                    dest: addr(),
                    short_message: b"id:1".to_vec(),
                    receipted_message_id: id.into(),
                    message_state: 2,
                    forward: None,
                    intermediate: false,
                    network_error: None,
                },
                created_ms: 0,
                attempts: 0,
                delivery: None,
            },
            held_until,
        }
    }

    #[test]
    fn the_first_receipt_of_an_account_wakes_its_worker_and_a_full_queue_refuses() {
        let h = Handoff::default();
        assert_eq!(h.push("alice", local("a", 1)), Pushed::First);
        assert_eq!(h.push("alice", local("b", 1)), Pushed::Queued);
        assert_eq!(h.push("bob", local("c", 1)), Pushed::First);
        let taken = h.take("alice", 1);
        assert_eq!(taken[0].id, "a");
        assert_eq!(h.take("alice", 10)[0].id, "b");
        // Emptied: the next one wakes the worker again.
        assert_eq!(h.push("alice", local("d", 1)), Pushed::First);
        for i in 1..PER_ACCOUNT {
            assert_ne!(h.push("alice", local(&i.to_string(), 1)), Pushed::First);
        }
        assert!(matches!(h.push("alice", local("x", 1)), Pushed::Full(l) if l.id == "x"));
    }

    #[test]
    fn a_receipt_is_sent_only_while_a_whole_lease_of_it_is_left() {
        let l = local("a", 70_000);
        assert!(l.usable(5_000, 65_000));
        assert!(!l.usable(5_001, 65_000));
        let held = l.into_held();
        assert_eq!(
            (held.account.as_str(), held.id.as_str(), held.held_until),
            ("alice", "a", 70_000)
        );
    }
}
