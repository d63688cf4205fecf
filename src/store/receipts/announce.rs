//! What wakes the receipt dispatcher: an account announced on `P{t}:receipts`, a rescan
//! after a (re)subscription, or receipts this node handed to a worker in memory.

/// What wakes the dispatcher.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DispatchEvent {
    /// This account has new receipts in this partition (announced on its
    /// `P{t}:receipts`).
    Account(String, usize),
    /// Look at every account with receipts (after a (re)subscription).
    Rescan,
    /// This node handed receipts of this account to its worker (`handoff`).
    Local(String),
}
