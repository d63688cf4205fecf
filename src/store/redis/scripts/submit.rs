//! SUBMIT: a batch of segments, each stored exactly as if it were alone, in order
//! (group commit, see `submit/batch.rs`).

use crate::store::redis::connection::Conn;

use crate::service::AccountLimits;
use crate::store::error::StoreError;
use crate::store::redis::partition::share;
use crate::store::redis::scripts::{Name, RawGroup, ReceiptEntry, Scripts};
use crate::store::redis::value::{int, items, string};

/// What every record of one call shares.
#[derive(Clone, Copy)]
pub struct SubmitHeader {
    /// Pending messages (deadline index + outbox) past which a new message is
    /// refused.
    pub max_pending: u64,
    /// How long a single-part message's receipt is held (ms) until the node says its
    /// submit_sm_resp is queued (RECEIPT_READY): see `receipts/ready.rs`.
    pub hold_ms: i64,
    /// Octets of user data those messages may hold together.
    pub max_pending_bytes: u64,
}

/// One segment to store.
pub struct SubmitRecord {
    /// Its partition (`partition::of_group` of a multi-part message's group key).
    pub part: usize,
    /// The group key (`model::group_key`): names the pending group.
    pub gk: String,
    pub seq: u8,
    pub total: u8,
    /// The id the node made for it: a single-part message's message_id; a
    /// multi-part segment's in the decimal and short formats (in the hex format the
    /// segment's id names its group, and comes back with the reply).
    pub message_id: String,
    pub deadline_ms: i64,
    pub service_type: String,
    /// A single-part message's `StoredSegment::record_tail`; a multi-part segment
    /// packed (`model::pending::packed_segment`).
    pub record_tail: Vec<u8>,
    /// Whose message, and that account's limits. What it adds to the account's
    /// octets is its record tail's length (`StoredSegment::record_len`).
    pub account: String,
    pub limits: AccountLimits,
    /// The account the message's route forwards it to; `None`: the store keeps it.
    pub forward_to: Option<String>,
    /// Forwarded as one deliver_sm (a multi-part message reassembled).
    pub forward_reassembled: bool,
    /// Its schedule_delivery_time (ms, Redis time) when that is still ahead.
    pub schedule_ms: Option<i64>,
    /// A simulated outcome (`[[simulate]]`): `<stat letter> <err> <delay ms>`.
    pub sim: Option<String>,
    /// protocol_id and priority_flag, for a forwarded deliver_sm.
    pub protocol_id: u8,
    pub priority: u8,
    pub kind: SubmitKind,
}

/// What differs between a single-part message and a segment of a longer one.
pub enum SubmitKind {
    /// Complete on arrival: written straight as a finished group, its receipt (if
    /// owed) queued held by the same call.
    Single {
        /// Its time (ms, the node's reading of Redis time, which its receipt
        /// already carries).
        at_ms: i64,
        receipt: Option<ReceiptEntry>,
    },
    /// A segment of a multi-part message, with its account's expiry mode code and,
    /// for a simulated segment, its intermediate notification (queued held).
    Part {
        expiry_code: &'static str,
        /// The group's two possible ids (`model::pending::group_ids`).
        group_ids: (String, String),
        /// The node's id in the hex form, whatever the account's format: what makes
        /// a new group's gid unique.
        unique: String,
        /// What the segment counts against the octet limits (its record tail's
        /// length), and the flags of its packed form (`record_tail` holds
        /// `model::pending::packed_segment`).
        octets: usize,
        flags: u8,
        notify: Option<ReceiptEntry>,
    },
}

/// What became of one record.
#[derive(Debug)]
pub enum SubmitReply {
    /// A segment stored (its message_id); its message is still pending.
    /// `held_until` when its intermediate notification is queued held.
    Stored {
        held_until: Option<i64>,
        message_id: String,
    },
    /// A single-part message stored (and finished), or a simulated or scheduled
    /// multi-part one completed (`message_id`: this segment's); `held_until` when its
    /// receipt (or notification) is queued held.
    Single {
        held_until: Option<i64>,
        message_id: Option<String>,
    },
    /// The last segment of a multi-part message (its message_id): the message
    /// finished, its data comes back for the receipt releaser.
    Completed { group: RawGroup, message_id: String },
    /// This segment was stored before: the first submit's message_id.
    Duplicate { message_id: String },
    /// A limit is reached: the store's or the account's.
    Full(Limit),
    /// The deadline passed (by Redis time) before the record was stored.
    Expired,
    /// A command of this record failed (out of memory, say); the batch's other
    /// records are unaffected.
    Failed(String),
}

/// Which limit refused a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    /// `[redis] max_pending`: messages in the store.
    Store,
    /// `[redis] max_pending_bytes`.
    StoreBytes,
    /// The account's `max_pending`.
    Account,
    /// The account's `max_pending_bytes`.
    AccountBytes,
    /// The account's `max_queued_receipts`: receipts waiting for its receiver.
    Receipts,
}

impl Limit {
    pub fn as_str(self) -> &'static str {
        match self {
            Limit::Store => "store",
            Limit::StoreBytes => "store_bytes",
            Limit::Account => "account",
            Limit::AccountBytes => "account_bytes",
            Limit::Receipts => "receipts",
        }
    }

    /// The setting that sets it, as an operator finds it in `config.toml`.
    pub fn setting(self) -> &'static str {
        match self {
            Limit::Store => "[redis] max_pending",
            Limit::StoreBytes => "[redis] max_pending_bytes",
            Limit::Account => "the account's max_pending",
            Limit::AccountBytes => "the account's max_pending_bytes",
            Limit::Receipts => "the account's max_queued_receipts",
        }
    }

    pub(crate) fn parse(s: &str) -> Option<Limit> {
        [
            Limit::Store,
            Limit::StoreBytes,
            Limit::Account,
            Limit::AccountBytes,
            Limit::Receipts,
        ]
        .into_iter()
        .find(|l| l.as_str() == s)
    }
}

impl Scripts {
    /// Runs SUBMIT for `records`, which may belong to several partitions (one call
    /// on a standalone server; in a cluster a call may hold one partition only); one
    /// reply per record, in order.
    pub async fn submit(
        &self,
        conn: &mut Conn,
        header: SubmitHeader,
        records: &[SubmitRecord],
    ) -> Result<Vec<SubmitReply>, StoreError> {
        let (parts, part_index) =
            crate::store::redis::scripts::index_parts(records.iter().map(|r| r.part));
        let mut inv = self.call_parts(Name::Submit, &parts);
        // Every limit is counted per partition, each admitting its share.
        inv.arg(share(header.max_pending))
            .arg(self.hfe)
            .arg(header.hold_ms)
            .arg(share(header.max_pending_bytes));
        // The batch's accounts once each, then every record names its account by index.
        let mut accounts: Vec<(&str, &AccountLimits)> = Vec::new();
        let index: Vec<usize> = records
            .iter()
            .map(
                |r| match accounts.iter().position(|(a, _)| *a == r.account) {
                    Some(i) => i + 1,
                    None => {
                        accounts.push((&r.account, &r.limits));
                        accounts.len()
                    }
                },
            )
            .collect();
        inv.arg(accounts.len());
        for (name, l) in &accounts {
            inv.arg(*name)
                .arg(share(l.max_pending))
                .arg(share(l.max_pending_bytes))
                .arg(share(l.max_queued_receipts));
        }
        inv.arg(parts.len());
        for p in &parts {
            inv.arg(self.prefix(*p));
        }
        for ((r, account_index), part_index) in records.iter().zip(index).zip(part_index) {
            // Each record: its field count, its partition's index, then fields 1 gk,
            // 2 seq, 3 total,
            // 4 message_id, 5 deadline, 6 service_type, 7 record tail, 8 the account's
            // index, 9 the account it is forwarded to or "", 10 the schedule (0:
            // none), 11 the simulated outcome or "", 12 "<protocol_id> <priority>" or
            // "", then 13 the single-part time and 14-16 its receipt (or delivery)
            // triple, or 13 `<expiry code> <partition> <id> <id> <hex node id> <octets>
            // <flags>` and 14-16 a notification triple.
            let n = match &r.kind {
                SubmitKind::Single { receipt: None, .. }
                | SubmitKind::Part { notify: None, .. } => 13,
                SubmitKind::Single {
                    receipt: Some(_), ..
                }
                | SubmitKind::Part {
                    notify: Some(_), ..
                } => 16,
            };
            inv.arg(n)
                .arg(part_index)
                .arg(&r.gk)
                .arg(r.seq)
                .arg(r.total)
                .arg(&r.message_id)
                .arg(r.deadline_ms)
                .arg(&r.service_type)
                .arg(r.record_tail.as_slice())
                .arg(account_index)
                .arg(match &r.forward_to {
                    Some(to) if r.forward_reassembled => format!("1{to}"),
                    Some(to) => format!("0{to}"),
                    None => String::new(),
                })
                .arg(r.schedule_ms.unwrap_or(0))
                .arg(r.sim.as_deref().unwrap_or(""))
                .arg(if r.protocol_id == 0 && r.priority == 0 {
                    String::new()
                } else {
                    format!("{} {}", r.protocol_id, r.priority)
                });
            match &r.kind {
                SubmitKind::Single { at_ms, receipt } => {
                    inv.arg(at_ms);
                    if let Some(e) = receipt {
                        e.push(&mut inv);
                    }
                }
                SubmitKind::Part {
                    expiry_code,
                    group_ids,
                    unique,
                    octets,
                    flags,
                    notify,
                } => {
                    inv.arg(format!(
                        "{expiry_code} {:02X} {} {} {unique} {octets} {flags}",
                        r.part, group_ids.0, group_ids.1
                    ));
                    if let Some(e) = notify {
                        e.push(&mut inv);
                    }
                }
            }
        }
        let replies = items(inv.invoke_async(conn).await?);
        if replies.len() != records.len() {
            return Err(StoreError::Corrupt(format!(
                "submit script answered {} replies for {}",
                replies.len(),
                records.len()
            )));
        }
        Ok(replies.into_iter().map(reply).collect())
    }
}

fn reply(v: redis::Value) -> SubmitReply {
    let mut a = items(v);
    let tag = a.first().and_then(string).unwrap_or_default();
    match tag.as_str() {
        "stored" => match a.get(2).and_then(string) {
            Some(message_id) => SubmitReply::Stored {
                held_until: a.get(1).and_then(int),
                message_id,
            },
            None => SubmitReply::Failed("submit: a stored segment without its id".into()),
        },
        "complete" if a.len() > 2 && matches!(a[2], redis::Value::Array(_)) => {
            let message_id = a.get(3).and_then(string).unwrap_or_default();
            let fields = a.swap_remove(2);
            let gid = a.swap_remove(1);
            match RawGroup::pairs([gid, fields]).pop() {
                Some(group) if !message_id.is_empty() => {
                    SubmitReply::Completed { group, message_id }
                }
                _ => SubmitReply::Failed("submit: a completed group without data or id".into()),
            }
        }
        "complete" => SubmitReply::Single {
            held_until: a.get(2).and_then(int),
            message_id: a.get(3).and_then(string),
        },
        "dup" => SubmitReply::Duplicate {
            message_id: a.get(1).and_then(string).unwrap_or_default(),
        },
        "full" => match a.get(1).and_then(string).as_deref().and_then(Limit::parse) {
            Some(l) => SubmitReply::Full(l),
            None => SubmitReply::Failed("submit: full without a known limit".into()),
        },
        "expired" => SubmitReply::Expired,
        "err" => SubmitReply::Failed(a.get(1).and_then(string).unwrap_or_default()),
        other => SubmitReply::Failed(format!("submit script answered {other:?}")),
    }
}
