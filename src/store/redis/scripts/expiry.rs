//! CLAIM_DUE: the claim-due pass, one call per batch.

use crate::store::redis::connection::Conn;

use crate::store::error::StoreError;
use crate::store::redis::scripts::{Name, RawGroup, Scripts};
use crate::store::redis::value::{int, int_at, items};

/// What one CLAIM_DUE call did.
pub struct ClaimDue {
    /// Per partition of the call, in its order: whether it has no due group left (it
    /// listed fewer than it was asked for). One the call's limit did not reach is not
    /// done.
    pub done: Vec<bool>,
    /// How late each claimed group was (ms past its deadline, Redis time).
    pub lateness_ms: Vec<i64>,
    /// The claimed groups with their data (all of them in `P:fresh` too).
    pub groups: Vec<RawGroup>,
}

impl Scripts {
    /// Claims up to `limit` groups whose deadline passed by Redis time, in `parts`
    /// (one partition on a cluster; several on a standalone server), one partition
    /// after the other. Per group: the pending hash renamed to `P:d:<gid>` (state
    /// `expired`), its deadline entry removed, the gid put in the outbox and `P:fresh`.
    pub async fn claim_due(
        &self,
        conn: &mut Conn,
        parts: &[usize],
        limit: usize,
        partial_grace_ms: u64,
    ) -> Result<ClaimDue, StoreError> {
        let mut inv = self.call_many(Name::ClaimDue, parts);
        inv.arg(limit).arg(self.hfe).arg(partial_grace_ms);
        let mut a = items(inv.invoke_async(conn).await?);
        let rest = a.split_off(2.min(a.len()));
        let mut head = a.into_iter();
        let mut done = Vec::with_capacity(parts.len());
        for c in head.next().map(items).unwrap_or_default() {
            let c = items(c);
            let (asked, listed) = (int_at(&c, 0, "claim due")?, int_at(&c, 1, "claim due")?);
            done.push(asked > 0 && listed < asked);
        }
        if done.len() != parts.len() {
            return Err(StoreError::Corrupt(format!(
                "claim due: {} partition counts for {} partitions",
                done.len(),
                parts.len()
            )));
        }
        let lateness_ms = head
            .next()
            .map(items)
            .unwrap_or_default()
            .iter()
            .map(|v| int(v).unwrap_or(0))
            .collect();
        Ok(ClaimDue {
            done,
            lateness_ms,
            groups: RawGroup::pairs(rest),
        })
    }
}
