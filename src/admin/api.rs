//! The JSON documents of the admin API, shared by the server and the CLI.
//!
//! Field names are part of the API (`docs/admin-api.md`): add fields, never rename
//! or remove one. Times are RFC 3339 in UTC.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::session::BindSnapshot;

/// `GET /api/whoami`: what the presented token may do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WhoAmI {
    pub node: String,
    /// `read` or `admin`.
    pub role: String,
    /// Which configured token it is (`admin.tokens[1]`), never the token.
    pub token: String,
}

/// `GET /api/binds`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BindsReply {
    /// The node that answered; its binds are live, other nodes' are as they last
    /// published them.
    pub node: String,
    pub binds: Vec<Bind>,
    /// Every node whose bind list was read (this one first).
    pub nodes: Vec<NodeBinds>,
    /// Why other nodes' binds are missing (Redis unreachable), if they are.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster_error: Option<String>,
}

/// A node's published bind list (also the value of `<key_prefix>{binds}:node:<node_id>`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NodeBinds {
    pub node: String,
    pub published_at: DateTime<Utc>,
    /// Its binds; left out of the `nodes` list of `/api/binds` (they are in `binds`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub binds: Vec<Bind>,
}

/// One live bind.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Bind {
    /// Unique on its node while the node runs; `POST /api/binds/{id}/unbind` on that
    /// node takes it.
    pub id: u64,
    pub node: String,
    pub system_id: String,
    /// `transmitter`, `receiver` or `transceiver`.
    pub bind_type: String,
    /// The ESME's address and port.
    pub peer: String,
    pub tls: bool,
    /// As the ESME sent it in its bind (52 = 0x34 = SMPP 3.4).
    pub interface_version: u8,
    pub bound_since: DateTime<Utc>,
    /// Told to unbind (by an operator, a reload or shutdown), not closed yet.
    pub unbinding: bool,
    /// The account's window, and the requests of this bind in progress.
    pub window: usize,
    pub window_in_use: u64,
    /// deliver_sm sent to this bind and not answered yet.
    pub outbound_in_flight: usize,
    /// Requests received while bound (enquire_link and unbind aside).
    pub requests: u64,
    pub submits_ok: u64,
    pub submits_failed: u64,
    pub throttled: u64,
    pub receipts_delivered: u64,
}

impl Bind {
    pub fn of(node: &str, b: &BindSnapshot) -> Bind {
        Bind {
            id: b.id,
            node: node.to_owned(),
            system_id: b.system_id.clone(),
            bind_type: b.bind_type.as_str().to_owned(),
            peer: b.peer.to_string(),
            tls: b.tls,
            interface_version: b.interface_version,
            bound_since: b.bound_since,
            unbinding: b.unbinding,
            window: b.window,
            window_in_use: b.window_in_use,
            outbound_in_flight: b.outbound_in_flight,
            requests: b.requests,
            submits_ok: b.counters.submits_ok,
            submits_failed: b.counters.submits_failed,
            throttled: b.counters.throttled,
            receipts_delivered: b.counters.receipts_delivered,
        }
    }
}

/// `POST /api/binds/{id}/unbind`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnbindReply {
    pub id: u64,
    pub node: String,
    pub system_id: String,
    /// Always true: the session sends unbind, waits for unbind_resp (at most
    /// `shutdown_grace`), then closes.
    pub unbinding: bool,
}

/// `GET /api/messages/{message_id}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    /// As asked for (any segment's message_id).
    pub message_id: String,
    /// `DELIVERED`, `PARTIAL`, `EXPIRED`, `CANCELLED` once its outcome is in MongoDB;
    /// `pending_or_unknown` before that, or for an id smppd never gave.
    pub state: String,
    /// Whether `state` is final (read from the outcome document).
    #[serde(rename = "final")]
    pub is_final: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outcome: Option<Outcome>,
}

/// What a finished message's outcome document says (its text left out).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Outcome {
    /// The message_id of the message's first-arriving segment (the document's `_id`).
    pub group_id: String,
    pub account: String,
    pub source: Address,
    pub dest: Address,
    /// Segments the message was announced with (1 for a single-part message).
    pub total: u32,
    pub segments: Vec<Segment>,
    /// Seqs that never arrived.
    pub missing: Vec<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub submitted_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deadline: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completed_at: Option<DateTime<Utc>>,
    /// The node that finished it.
    pub node: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Address {
    pub ton: u8,
    pub npi: u8,
    pub addr: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Segment {
    pub seq: u32,
    pub message_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub received_at: Option<DateTime<Utc>>,
}

/// One element of `GET /api/accounts`: the account's settings, no secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Account {
    pub system_id: String,
    pub enabled: bool,
    /// `plain` or `argon2`: how the password is kept, never the password.
    pub credential: String,
    pub bind_types: Vec<String>,
    /// CIDRs; empty: any address.
    pub allowed_addresses: Vec<String>,
    pub tls_required: bool,
    pub max_binds: usize,
    /// Live binds on this node.
    pub binds: usize,
    /// submits per second and burst; absent: unlimited.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub throughput: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub burst: Option<u32>,
    pub window: usize,
    pub default_validity_seconds: u64,
    pub max_validity_seconds: u64,
    /// `deliver_partial` or `expire_whole`.
    pub expiry_mode: String,
    /// What data_coding 0 means: `gsm7`, `ascii` or `latin1`.
    #[serde(default)]
    pub default_alphabet: String,
    /// `deliver_sm` or `data_sm`.
    #[serde(default)]
    pub receipt_pdu: String,
    pub max_pending: u64,
    pub max_pending_bytes: u64,
    pub max_segment_octets: usize,
    pub max_queued_receipts: u64,
}

/// `GET /api/stats`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Stats {
    pub node: String,
    pub at: DateTime<Utc>,
    /// Multi-part messages waiting for segments or their deadline (all nodes);
    /// absent when Redis did not answer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pending_messages: Option<i64>,
    /// Finished messages not in MongoDB yet (all nodes); absent when Redis did not
    /// answer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outcome_backlog: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redis_error: Option<String>,
    pub expiry_subscribed: bool,
    /// This node's store counters (the `/metrics` counters of the same names).
    pub store: StoreCounters,
    pub accounts: Vec<AccountStats>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoreCounters {
    pub expired_claimed: u64,
    pub outcomes_written: u64,
    pub outcome_write_failures: u64,
    pub receipts_delivered: u64,
    pub receipts_dropped: u64,
    pub timers_armed: usize,
}

/// One account's counters on this node since start, and its receipt queue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountStats {
    pub system_id: String,
    pub binds: usize,
    pub submits_ok: u64,
    pub submits_failed: u64,
    pub throttled: u64,
    pub receipts_delivered: u64,
    /// Receipts queued for it (all nodes); absent when Redis did not answer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub receipt_queue: Option<i64>,
}

/// The body of every error answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Error {
    pub error: String,
}
