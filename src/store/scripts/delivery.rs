//! DELIVERY_DONE: deliveries of forwarded messages that ended.

use redis::aio::ConnectionManager;

use super::{Name, ReceiptEntry, Scripts};
use crate::store::error::StoreError;
use crate::store::value::{items, string};

/// One delivery that ended: its queue id, its message and segment, and the result
/// (`model::DeliveryResult::encode`).
pub struct DeliveryEnd {
    pub id: String,
    pub gid: String,
    pub seq: u8,
    pub result: String,
    /// The sender's receipts it owes now (queued only if this call ends it).
    pub receipts: Vec<ReceiptEntry>,
}

impl Scripts {
    /// Queues one receipt of `account` due now (an intermediate notification), once.
    pub async fn receipt_add(
        &self,
        conn: &mut ConnectionManager,
        p: usize,
        account: &str,
        id: &str,
        payload: &str,
    ) -> Result<bool, StoreError> {
        let mut inv = self.call(Name::ReceiptAdd, p);
        inv.arg(account).arg(id).arg(payload);
        let n: i64 = inv.invoke_async(conn).await?;
        Ok(n == 1)
    }

    /// Ends these deliveries of `account`'s queue in partition `p`, queueing their
    /// receipts; returns the messages they left with nothing to deliver (now in the
    /// outbox).
    pub async fn delivery_done(
        &self,
        conn: &mut ConnectionManager,
        p: usize,
        account: &str,
        ends: &[DeliveryEnd],
    ) -> Result<Vec<String>, StoreError> {
        let mut inv = self.call(Name::DeliveryDone, p);
        inv.arg(account).arg(self.hfe);
        for e in ends {
            inv.arg(&e.id)
                .arg(&e.gid)
                .arg(e.seq)
                .arg(&e.result)
                .arg(e.receipts.len());
            for r in &e.receipts {
                r.push(&mut inv);
            }
        }
        Ok(items(inv.invoke_async(conn).await?)
            .iter()
            .filter_map(string)
            .collect())
    }
}
