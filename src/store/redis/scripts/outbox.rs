//! The outcome writer's scripts: LEASE, READ_GROUPS, RECLAIM, FINALIZE.

use crate::store::redis::connection::Conn;

use crate::store::error::StoreError;
use crate::store::redis::scripts::{Name, RawGroup, ReceiptEntry, Scripts};
use crate::store::redis::value::{hash_bytes, int_at, items, string};

/// What one LEASE call took.
pub struct Leased {
    /// The leased gids (the writer takes those it holds in memory and reads the
    /// others with [`Scripts::read_groups`]).
    pub gids: Vec<String>,
    /// When the outbox's next entry falls due (ms, Redis time), if it has one.
    pub next_due_ms: Option<i64>,
}

/// One finished group for FINALIZE.
pub struct FinalizeRecord {
    /// Its partition (the one its gid names).
    pub part: usize,
    pub gid: String,
    /// Its account, and the octets of user data its segments hold: what SUBMIT
    /// counted in the account's usage.
    pub account: String,
    pub octets: usize,
    /// Its receipts, to queue if FINALIZE removes the gid from `P:fresh`; `None`
    /// when the writer saw the gid absent from `P:fresh` (its receipts were
    /// released, and a gid never re-enters it).
    pub receipts: Option<Vec<ReceiptEntry>>,
    /// Its segments' message_ids: a decimal or short one names its pointer key
    /// `P:m:<id>`.
    pub segment_ids: Vec<String>,
}

impl Scripts {
    /// Leases up to `limit` due finished groups from the outbox for `lease_ms`,
    /// recording the holder (this node, `epoch`) for [`Scripts::reclaim`].
    pub async fn lease(
        &self,
        conn: &mut Conn,
        p: usize,
        limit: usize,
        lease_ms: u64,
        epoch: u64,
    ) -> Result<Leased, StoreError> {
        let mut inv = self.call(Name::Lease, p);
        inv.arg(limit).arg(lease_ms).arg(epoch);
        let a = items(inv.invoke_async(conn).await?);
        let next = int_at(&a, 1, "lease")?;
        Ok(Leased {
            gids: a
                .iter()
                .skip(2)
                .map(|v| string(v).unwrap_or_default())
                .collect(),
            next_due_ms: (next >= 0).then_some(next),
        })
    }

    /// The finished groups `gids`, in order; `None` for one that is gone (finalized
    /// meanwhile by a node that took over its lease).
    pub async fn read_groups(
        &self,
        conn: &mut Conn,
        p: usize,
        gids: &[String],
    ) -> Result<Vec<Option<RawGroup>>, StoreError> {
        let mut inv = self.call(Name::ReadGroups, p);
        inv.arg(gids);
        let a = items(inv.invoke_async(conn).await?);
        Ok(gids
            .iter()
            .zip(a)
            .map(|(gid, v)| {
                let fields = hash_bytes(v);
                (!fields.is_empty()).then(|| RawGroup {
                    gid: gid.clone(),
                    fields,
                })
            })
            .collect())
    }

    /// At start: the leases an earlier process of this node (same node label, an
    /// epoch below `epoch`) holds are made due now. Returns how many.
    pub async fn reclaim(&self, conn: &mut Conn, p: usize, epoch: u64) -> Result<u64, StoreError> {
        let mut inv = self.call(Name::Reclaim, p);
        inv.arg(epoch);
        Ok(inv.invoke_async(conn).await?)
    }

    /// After MongoDB acknowledged their outcomes: deletes every key of each group
    /// still there (only the first caller deletes anything) and queues its receipts
    /// only if it removes the gid from `P:fresh`; the outbox entries go too. The
    /// groups may be of several partitions (one call on a standalone server).
    pub async fn finalize(
        &self,
        conn: &mut Conn,
        records: &[FinalizeRecord],
    ) -> Result<(), StoreError> {
        let (parts, index) =
            crate::store::redis::scripts::index_parts(records.iter().map(|r| r.part));
        let mut inv = self.call_many(Name::Finalize, &parts);
        for (r, k) in records.iter().zip(index) {
            // part, gid, k (-1: no receipts), s, account, octets, 3k receipt values,
            // s message ids.
            inv.arg(k).arg(&r.gid);
            match &r.receipts {
                None => inv.arg(-1),
                Some(list) => inv.arg(list.len()),
            };
            inv.arg(r.segment_ids.len()).arg(&r.account).arg(r.octets);
            for e in r.receipts.iter().flatten() {
                e.push(&mut inv);
            }
            for id in &r.segment_ids {
                inv.arg(id);
            }
        }
        inv.invoke_async::<()>(conn).await?;
        Ok(())
    }
}
