//! The receipt path's scripts: FRESH and RELEASE (receipts of finished messages
//! queued), RECEIPT_TAKE / _DONE / _RETRY (an account's queue), RECEIPT_READY (held
//! receipts made due).

use crate::store::redis::connection::Conn;

use crate::store::error::StoreError;
use crate::store::redis::scripts::{Name, RawGroup, ReceiptEntry, Scripts};
use crate::store::redis::value::{int_at, items, str_at, string};

/// One finished group's receipts for RELEASE.
pub struct ReleaseRecord {
    /// Its partition (the one its gid names).
    pub part: usize,
    pub gid: String,
    /// This node has the account's receiver and sends them from memory: queued
    /// leased to it (due at now + lease, not announced) instead of due now.
    pub local: bool,
    /// The entries are a forwarded message's deliveries, built while it was
    /// `routed`: queued only if it still is (its delivery deadline may have ended it
    /// meanwhile; then its receipts are released on a later read).
    pub routed: bool,
    pub receipts: Vec<ReceiptEntry>,
}

/// What one RELEASE call queued.
pub struct Released {
    /// Redis time of the call (ms).
    pub now_ms: i64,
    /// The groups whose receipts this call queued (it removed them from
    /// `P:fresh`); a group another node or the finalize released first is not here.
    pub gids: Vec<String>,
}

/// What one RECEIPT_TAKE call leased.
pub struct TakenReceipts {
    /// Redis time of the call (ms).
    pub now_ms: i64,
    /// When the account's next queued receipt falls due, if any is left.
    pub next_due_ms: Option<i64>,
    /// (receipt id, payload JSON).
    pub receipts: Vec<(String, String)>,
}

/// A held receipt to make due now: its account, id and the `held_until` it was
/// queued with (one taken meanwhile has another score and is left alone).
pub struct HeldEntry<'a> {
    pub account: &'a str,
    pub id: &'a str,
    pub held_until: i64,
}

impl Scripts {
    /// Up to `limit` finished groups whose receipts are not released yet
    /// (`P:fresh`); gone ones are dropped from it.
    pub async fn fresh(
        &self,
        conn: &mut Conn,
        p: usize,
        limit: usize,
    ) -> Result<Vec<RawGroup>, StoreError> {
        let mut inv = self.call(Name::Fresh, p);
        inv.arg(limit);
        Ok(RawGroup::pairs(items(inv.invoke_async(conn).await?)))
    }

    /// Queues the receipts of the groups it removes from their `P:fresh` (only the
    /// caller that removes a gid queues them); `lease_ms`: how long local ones are
    /// leased. The groups may be of several partitions.
    pub async fn release(
        &self,
        conn: &mut Conn,
        lease_ms: i64,
        records: &[ReleaseRecord],
    ) -> Result<Released, StoreError> {
        let (parts, index) =
            crate::store::redis::scripts::index_parts(records.iter().map(|r| r.part));
        let mut inv = self.call_many(Name::Release, &parts);
        inv.arg(lease_ms);
        for (r, k) in records.iter().zip(index) {
            inv.arg(k)
                .arg(&r.gid)
                .arg(match (r.routed, r.local) {
                    (false, l) => u8::from(l),
                    (true, l) => 2 + u8::from(l),
                })
                .arg(r.receipts.len());
            for e in &r.receipts {
                e.push(&mut inv);
            }
        }
        let a = items(inv.invoke_async(conn).await?);
        Ok(Released {
            now_ms: int_at(&a, 0, "release")?,
            gids: a.iter().skip(1).filter_map(string).collect(),
        })
    }

    /// Leases up to `limit` due receipts of `account` for `lease_ms`.
    pub async fn receipt_take(
        &self,
        conn: &mut Conn,
        p: usize,
        account: &str,
        limit: usize,
        lease_ms: u64,
    ) -> Result<TakenReceipts, StoreError> {
        let mut inv = self.call(Name::ReceiptTake, p);
        inv.arg(account).arg(limit).arg(lease_ms);
        let a = items(inv.invoke_async(conn).await?);
        let next = int_at(&a, 1, "receipt take")?;
        let mut receipts = Vec::new();
        for pair in a[2..].chunks(2) {
            let id = str_at(pair, 0, "receipt id")?;
            receipts.push((id, pair.get(1).and_then(string).unwrap_or_default()));
        }
        Ok(TakenReceipts {
            now_ms: int_at(&a, 0, "receipt take")?,
            next_due_ms: (next >= 0).then_some(next),
            receipts,
        })
    }

    /// Removes receipts that are done (delivered or dropped).
    /// `ids` by partition (each receipt id is its message's message_id).
    pub async fn receipt_done(
        &self,
        conn: &mut Conn,
        account: &str,
        ids: &[(usize, Vec<String>)],
    ) -> Result<(), StoreError> {
        let parts: Vec<usize> = ids.iter().map(|(p, _)| *p).collect();
        let mut inv = self.call_many(Name::ReceiptDone, &parts);
        inv.arg(account);
        for (k, (_, list)) in ids.iter().enumerate() {
            inv.arg(k + 1).arg(list.len()).arg(list);
        }
        inv.invoke_async::<()>(conn).await?;
        Ok(())
    }

    /// Puts a receipt back, due in `delay_ms` with `payload` (its attempts counted);
    /// due at once it is announced. False when it is gone.
    pub async fn receipt_retry(
        &self,
        conn: &mut Conn,
        p: usize,
        account: &str,
        id: &str,
        delay_ms: u64,
        payload: &str,
    ) -> Result<bool, StoreError> {
        let mut inv = self.call(Name::ReceiptRetry, p);
        inv.arg(account).arg(id).arg(delay_ms).arg(payload);
        let n: i64 = inv.invoke_async(conn).await?;
        Ok(n == 1)
    }

    /// Makes held receipts due now and announces their accounts.
    pub async fn receipt_ready(
        &self,
        conn: &mut Conn,
        p: usize,
        held: &[HeldEntry<'_>],
    ) -> Result<(), StoreError> {
        let mut inv = self.call(Name::ReceiptReady, p);
        for h in held {
            inv.arg(h.account).arg(h.id).arg(h.held_until);
        }
        inv.invoke_async::<()>(conn).await?;
        Ok(())
    }
}
