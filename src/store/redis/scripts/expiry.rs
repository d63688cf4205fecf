//! CLAIM_DUE: the claim-due pass, one call per batch.

use crate::store::redis::connection::Conn;

use crate::store::error::StoreError;
use crate::store::redis::scripts::{Name, RawGroup, Scripts};
use crate::store::redis::value::{int, int_at, items};

/// What one CLAIM_DUE call did.
pub struct ClaimDue {
    /// Groups the deadline index listed as due (claimed, or found gone and removed
    /// from the index): fewer than asked means none is left due.
    pub listed: usize,
    /// How late each claimed group was (ms past its deadline, Redis time).
    pub lateness_ms: Vec<i64>,
    /// The claimed groups with their data (all of them in `P:fresh` too).
    pub groups: Vec<RawGroup>,
}

impl Scripts {
    /// Claims up to `limit` groups whose deadline passed by Redis time. Per group:
    /// the pending hash renamed to `P:d:<gid>` (state `expired`), its deadline entry
    /// removed, the gid put in the outbox and `P:fresh`.
    pub async fn claim_due(
        &self,
        conn: &mut Conn,
        p: usize,
        limit: usize,
        partial_grace_ms: u64,
    ) -> Result<ClaimDue, StoreError> {
        let mut inv = self.call(Name::ClaimDue, p);
        inv.arg(limit).arg(self.hfe).arg(partial_grace_ms);
        let mut a = items(inv.invoke_async(conn).await?);
        let listed = int_at(&a, 0, "claim due")? as usize;
        let rest = a.split_off(2.min(a.len()));
        let lateness_ms = a
            .into_iter()
            .nth(1)
            .map(items)
            .unwrap_or_default()
            .iter()
            .map(|v| int(v).unwrap_or(0))
            .collect();
        Ok(ClaimDue {
            listed,
            lateness_ms,
            groups: RawGroup::pairs(rest),
        })
    }
}
