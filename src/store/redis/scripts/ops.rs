//! query_sm, cancel_sm and replace_sm on a message still in Redis: QUERY, CANCEL,
//! REPLACE. Each finds the message by message_id only for its owner (account, and
//! source unless the request's is empty).

use crate::store::redis::connection::Conn;

use crate::store::error::StoreError;
use crate::store::redis::partition;
use crate::store::redis::scripts::submit::Limit;
use crate::store::redis::scripts::{Name, Scripts};
use crate::store::redis::value::{int, items, string};

/// Whose message: the account, and the source (`ton.npi.addr`, or "" for any).
pub struct Owner<'a> {
    pub account: &'a str,
    pub source: &'a str,
}

pub enum QueryReply {
    /// Not in Redis (unknown, or its outcome is in MongoDB).
    Unknown,
    Pending,
    /// Finished, its outcome not yet in MongoDB.
    Final {
        /// `complete`, `expired` or `cancelled`.
        state: String,
        finished_ms: i64,
        /// The expiry mode code of a multi-part message; "" for a single-part one.
        expiry_code: String,
        /// A forwarded segment's delivery result (`model::DeliveryResult`), or "".
        delivery: String,
    },
}

/// What else a cancelled message must match: the start of its group key (account,
/// source, destination; "" = any) and its service_type (`None` = any).
pub struct CancelFilter<'a> {
    pub group_key_prefix: &'a str,
    pub service_type: Option<&'a str>,
}

impl CancelFilter<'_> {
    pub const ANY: CancelFilter<'static> = CancelFilter {
        group_key_prefix: "",
        service_type: None,
    };
}

pub enum CancelReply {
    Unknown,
    /// Finished already.
    Final,
    Cancelled,
}

/// A replacement of one pending segment.
pub struct Replacement<'a> {
    /// Where the user data starts in `short_message` (its UDH's length).
    pub user_data_offset: usize,
    pub short_message: &'a [u8],
    pub registered_delivery: u8,
    /// A new deadline for the message, or keep its own.
    pub deadline_ms: Option<i64>,
    /// The octets the store and the account may hold (`[redis] max_pending_bytes`, the
    /// account's `max_pending_bytes`): a replacement that grows past either is refused.
    pub max_pending_bytes: u64,
    pub account_max_pending_bytes: u64,
}

pub enum ReplaceReply {
    Unknown,
    Final,
    /// The new deadline is already past (Redis time).
    Expired,
    /// Growing by this much would pass a limit of held octets.
    Full(Limit),
    Replaced,
}

fn tag(v: redis::Value) -> (Option<String>, Vec<redis::Value>) {
    let a = items(v);
    (a.first().and_then(string), a)
}

impl Scripts {
    pub async fn query(
        &self,
        conn: &mut Conn,
        p: usize,
        message_id: &str,
        owner: &Owner<'_>,
    ) -> Result<QueryReply, StoreError> {
        let mut inv = self.call(Name::Query, p);
        inv.arg(message_id).arg(owner.account).arg(owner.source);
        let (t, a) = tag(inv.invoke_async(conn).await?);
        Ok(match t.as_deref() {
            None => QueryReply::Unknown,
            Some("pending") => QueryReply::Pending,
            Some(_) => QueryReply::Final {
                state: a.get(1).and_then(string).unwrap_or_default(),
                finished_ms: a
                    .get(2)
                    .and_then(int)
                    .ok_or_else(|| StoreError::Corrupt("query: no finish time".into()))?,
                expiry_code: a.get(3).and_then(string).unwrap_or_default(),
                delivery: a.get(4).and_then(string).unwrap_or_default(),
            },
        })
    }

    pub async fn cancel(
        &self,
        conn: &mut Conn,
        p: usize,
        message_id: &str,
        owner: &Owner<'_>,
        filter: &CancelFilter<'_>,
    ) -> Result<CancelReply, StoreError> {
        let mut inv = self.call(Name::Cancel, p);
        inv.arg(message_id)
            .arg(owner.account)
            .arg(owner.source)
            .arg(filter.group_key_prefix)
            .arg(
                filter
                    .service_type
                    .map_or(String::new(), |s| format!("={s}")),
            );
        let (t, _) = tag(inv.invoke_async(conn).await?);
        Ok(match t.as_deref() {
            Some("ok") => CancelReply::Cancelled,
            Some("final") => CancelReply::Final,
            _ => CancelReply::Unknown,
        })
    }

    pub async fn replace(
        &self,
        conn: &mut Conn,
        p: usize,
        message_id: &str,
        owner: &Owner<'_>,
        new: &Replacement<'_>,
    ) -> Result<ReplaceReply, StoreError> {
        let mut inv = self.call(Name::Replace, p);
        inv.arg(message_id)
            .arg(owner.account)
            .arg(owner.source)
            .arg(new.user_data_offset)
            .arg(new.short_message)
            .arg(new.registered_delivery)
            .arg(new.deadline_ms.map(|d| d.to_string()).unwrap_or_default())
            .arg(self.hfe)
            .arg(partition::share(new.max_pending_bytes))
            .arg(partition::share(new.account_max_pending_bytes));
        let (t, rest) = tag(inv.invoke_async(conn).await?);
        Ok(match t.as_deref() {
            Some("ok") => ReplaceReply::Replaced,
            Some("final") => ReplaceReply::Final,
            Some("expired") => ReplaceReply::Expired,
            Some("full") => match rest
                .get(1)
                .and_then(string)
                .as_deref()
                .and_then(Limit::parse)
            {
                Some(l) => ReplaceReply::Full(l),
                None => {
                    return Err(StoreError::Script(
                        "replace: full without a known limit".into(),
                    ))
                }
            },
            _ => ReplaceReply::Unknown,
        })
    }
}
