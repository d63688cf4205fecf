//! DELIVERY_DONE: deliveries of forwarded messages that ended.

use redis::aio::ConnectionManager;

use super::{Name, RawGroup, Scripts};
use crate::store::error::StoreError;
use crate::store::value::items;

/// One delivery that ended: its queue id, its message and segment, and the result
/// (`model::DeliveryResult::encode`).
pub struct DeliveryEnd {
    pub id: String,
    pub gid: String,
    pub seq: u8,
    pub result: String,
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

    /// Ends these deliveries of `account`'s queue in partition `p`; returns the
    /// messages they left with nothing to deliver (now in the outbox), with their data.
    pub async fn delivery_done(
        &self,
        conn: &mut ConnectionManager,
        p: usize,
        account: &str,
        ends: &[DeliveryEnd],
    ) -> Result<Vec<RawGroup>, StoreError> {
        let mut inv = self.call(Name::DeliveryDone, p);
        inv.arg(account).arg(self.hfe);
        for e in ends {
            inv.arg(&e.id).arg(&e.gid).arg(e.seq).arg(&e.result);
        }
        Ok(RawGroup::pairs(items(inv.invoke_async(conn).await?)))
    }
}
