//! DELIVERY_DONE: deliveries of forwarded messages that ended.

use crate::store::redis::connection::Conn;

use crate::store::error::StoreError;
use crate::store::redis::scripts::{Name, ReceiptEntry, Scripts};
use crate::store::redis::value::{items, string};

/// One delivery that ended: its queue id, its message and segment, and the result
/// (`model::DeliveryResult::encode`).
pub struct DeliveryEnd {
    pub id: String,
    pub gid: String,
    pub seq: u8,
    pub result: String,
    /// The sender's receipts it owes now (queued only if this call ends it).
    pub receipts: Vec<ReceiptEntry>,
    /// The sender's receiver is bound on this node: the receipts are queued leased to
    /// it, for its worker to send from memory.
    pub local: bool,
}

/// What one DELIVERY_DONE did.
pub struct DeliveryDone {
    /// Messages with nothing left to deliver (now in the outbox).
    pub done: Vec<String>,
    /// The deliveries it ended (those still queued when it ran).
    pub ended: Vec<String>,
}

impl Scripts {
    /// Queues one receipt of `account` due now (an intermediate notification), once.
    pub async fn receipt_add(
        &self,
        conn: &mut Conn,
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
        conn: &mut Conn,
        p: usize,
        account: &str,
        lease_ms: i64,
        ends: &[DeliveryEnd],
    ) -> Result<DeliveryDone, StoreError> {
        let mut inv = self.call(Name::DeliveryDone, p);
        inv.arg(account).arg(self.hfe).arg(lease_ms);
        for e in ends {
            let k = e.receipts.len() as i64;
            inv.arg(&e.id)
                .arg(&e.gid)
                .arg(e.seq)
                .arg(&e.result)
                .arg(if e.local { -k } else { k });
            for r in &e.receipts {
                r.push(&mut inv);
            }
        }
        let mut a = items(inv.invoke_async(conn).await?).into_iter();
        let mut list = || {
            a.next()
                .map(items)
                .unwrap_or_default()
                .iter()
                .filter_map(string)
                .collect::<Vec<String>>()
        };
        let done = list();
        let ended = list();
        Ok(DeliveryDone { done, ended })
    }
}
