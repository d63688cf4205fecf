//! Where a receipt is sent: queued in Redis when its message finishes ([`release`]),
//! held until the submit_sm_resp is queued ([`ready`]), sent by the per-account
//! workers ([`worker`]) from this node's memory when it can ([`handoff`], Redis as
//! the fallback) under the lease rule ([`lease`]), woken by [`announce`].

pub(crate) mod announce;
pub(crate) mod handoff;
pub(crate) mod lease;
pub(crate) mod ready;
pub(crate) mod release;
pub(crate) mod worker;
