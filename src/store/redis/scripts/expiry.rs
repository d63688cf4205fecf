//! CLAIM_DUE: the claim-due pass, one call per batch.

use crate::store::redis::connection::Conn;

use crate::store::error::StoreError;
use crate::store::redis::scripts::{Name, RawGroup, Scripts};
use crate::store::redis::value::{int, int_at, items, string};

/// What one CLAIM_DUE call did.
pub struct ClaimDue {
    /// Per partition of the call, in its order: whether it has no due group left (it
    /// listed fewer than it was asked for). One the call's limit did not reach is not
    /// done.
    pub done: Vec<bool>,
    /// How late each claimed group was (ms past its deadline, Redis time).
    pub lateness_ms: Vec<i64>,
    /// The given ids not due yet by Redis time: (index in the call's partitions, id,
    /// deadline ms).
    pub not_due: Vec<(usize, String, i64)>,
    /// The claimed groups with their data (all of them in `P:fresh` too).
    pub groups: Vec<RawGroup>,
}

impl Scripts {
    /// Claims up to `limit` groups whose deadline passed by Redis time, in `parts`
    /// (one partition on a cluster; several on a standalone server), one partition
    /// after the other, first the group ids `given` for each (those the node's timers
    /// found due; claimed whatever the limit). Per group: the pending value written
    /// as `P:d:<gid>` (state `expired`), its index entry removed, the gid put in the
    /// outbox and `P:fresh`.
    pub async fn claim_due(
        &self,
        conn: &mut Conn,
        parts: &[usize],
        given: &[Vec<&str>],
        limit: usize,
        partial_grace_ms: u64,
    ) -> Result<ClaimDue, StoreError> {
        let mut inv = self.call_many(Name::ClaimDue, parts);
        inv.arg(limit).arg(self.hfe).arg(partial_grace_ms);
        for k in 0..parts.len() {
            let ids = given.get(k).map_or(&[][..], Vec::as_slice);
            inv.arg(ids.len());
            for id in ids {
                inv.arg(*id);
            }
        }
        let mut a = items(inv.invoke_async(conn).await?);
        let rest = a.split_off(3.min(a.len()));
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
        let not_due = head
            .next()
            .map(items)
            .unwrap_or_default()
            .chunks(3)
            .filter_map(|t| {
                let k = usize::try_from(int(t.first()?)?).ok()?.checked_sub(1)?;
                Some((k, string(t.get(1)?)?, int(t.get(2)?)?))
            })
            .collect();
        Ok(ClaimDue {
            done,
            lateness_ms,
            not_due,
            groups: RawGroup::pairs(rest),
        })
    }
}
