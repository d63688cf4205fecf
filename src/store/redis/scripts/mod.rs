//! The Lua scripts, one typed Rust function each: every state change of a message is
//! one script, atomic on the Redis server whichever node runs it.
//!
//! The Lua is in `src/store/redis/lua/`: `lib.lua` (helpers every script shares, prepended
//! to each) and one file per script. Every call runs on one partition: `KEYS[1]` is
//! the partition's deadline index (a cluster routes the call by it) and `ARGV[1]` the
//! partition's key prefix `P{tag}:`, from which the script builds every other key it
//! touches (same tag, same slot); `ARGV[2]` is the node label. The clock is the
//! server's `TIME` — the one clock all nodes agree on. Nothing outside this module builds a script's arguments or reads its reply:
//! each function here takes its arguments as a struct or plain values and answers a
//! typed reply.
//!
//! * [`submit`] — SUBMIT (a batch of segments).
//! * [`expiry`] — CLAIM_DUE.
//! * [`outbox`] — LEASE, READ_GROUPS, RECLAIM, FINALIZE (the outcome writer's).
//! * [`receipts`] — FRESH, RELEASE, RECEIPT_TAKE / _DONE / _RETRY / _READY.
//! * [`ops`] — QUERY, CANCEL, REPLACE.
//! * [`delivery`] — DELIVERY_DONE, RECEIPT_ADD (forwarded messages).
//! * [`limits`] — RATE_TAKE, BIND_ADMIT, BIND_RENEW: an account's limits over all
//!   nodes. These take no partition: `KEYS[1]` is the account's own key (hash tag
//!   `{lim:<system_id>}`), and they go without `lib.lua`.
//!
//! Scripts are sent by SHA (EVALSHA), loaded with SCRIPT LOAD when the store connects
//! (see [`Scripts::load`] for why, and `docs/design/scripts.md` for why not a Redis
//! Functions library).

pub mod delivery;
pub mod expiry;
pub mod limits;
pub mod ops;
pub mod outbox;
pub mod receipts;
pub mod submit;

use std::collections::HashMap;

use crate::store::redis::connection::Conn;
use redis::{Script, ScriptInvocation, Value};

use crate::store::error::StoreError;
use crate::store::model::FinishedGroup;
use crate::store::redis::partition;
use crate::store::redis::value::hash_bytes;

const LIB: &str = include_str!("../lua/lib.lua");

/// Every script with its name (for SLOWLOG and INFO by script, and loading).
const SOURCES: [(&str, &str); 17] = [
    ("submit", include_str!("../lua/submit.lua")),
    ("claim_due", include_str!("../lua/claim_due.lua")),
    ("lease", include_str!("../lua/lease.lua")),
    ("read_groups", include_str!("../lua/read_groups.lua")),
    ("reclaim", include_str!("../lua/reclaim.lua")),
    ("finalize", include_str!("../lua/finalize.lua")),
    ("fresh", include_str!("../lua/fresh.lua")),
    ("release", include_str!("../lua/release.lua")),
    ("receipt_take", include_str!("../lua/receipt_take.lua")),
    ("receipt_done", include_str!("../lua/receipt_done.lua")),
    ("receipt_retry", include_str!("../lua/receipt_retry.lua")),
    ("receipt_ready", include_str!("../lua/receipt_ready.lua")),
    ("query", include_str!("../lua/query.lua")),
    ("cancel", include_str!("../lua/cancel.lua")),
    ("replace", include_str!("../lua/replace.lua")),
    ("delivery_done", include_str!("../lua/delivery_done.lua")),
    ("receipt_add", include_str!("../lua/receipt_add.lua")),
];

/// The scripts of an account's limits (after [`SOURCES`] in [`Name`]): no partition,
/// so no `lib.lua`.
const OWN_SOURCES: [(&str, &str); 3] = [
    ("rate_take", include_str!("../lua/rate_take.lua")),
    ("bind_admit", include_str!("../lua/bind_admit.lua")),
    ("bind_renew", include_str!("../lua/bind_renew.lua")),
];

/// Which script: an index into [`SOURCES`], then [`OWN_SOURCES`].
#[derive(Clone, Copy)]
enum Name {
    Submit,
    ClaimDue,
    Lease,
    ReadGroups,
    Reclaim,
    Finalize,
    Fresh,
    Release,
    ReceiptTake,
    ReceiptDone,
    ReceiptRetry,
    ReceiptReady,
    Query,
    Cancel,
    Replace,
    DeliveryDone,
    ReceiptAdd,
    RateTake,
    BindAdmit,
    BindRenew,
}

// Name indexes SOURCES, then OWN_SOURCES: the two lists and the enum agree.
const _: () = assert!(Name::ReceiptAdd as usize == SOURCES.len() - 1);
const _: () = assert!(Name::BindRenew as usize == SOURCES.len() + OWN_SOURCES.len() - 1);

/// The compiled scripts and what every call of them shares.
pub struct Scripts {
    scripts: Vec<Script>,
    /// Per partition: its key prefix and the key a call declares.
    prefixes: Vec<String>,
    anchors: Vec<String>,
    node: String,
    /// `key_prefix`, for the keys outside the partitions (`limits`).
    key_prefix: String,
    /// Which form the expiry timers take on this server: "1" fields of `P:timers`
    /// (hash-field expiration), "0" keys `P:t:#<bucket>`.
    hfe: &'static str,
}

impl Scripts {
    pub fn new(prefix: &str, node: &str, hash_field_expiry: bool) -> Scripts {
        Scripts {
            scripts: SOURCES
                .iter()
                .map(|(_, body)| Script::new(&format!("{LIB}{body}")))
                .chain(OWN_SOURCES.iter().map(|(_, body)| Script::new(body)))
                .collect(),
            prefixes: (0..partition::COUNT)
                .map(|p| partition::prefix(prefix, p))
                .collect(),
            anchors: (0..partition::COUNT)
                .map(|p| format!("{}deadlines", partition::prefix(prefix, p)))
                .collect(),
            node: node.to_owned(),
            key_prefix: prefix.to_owned(),
            hfe: if hash_field_expiry { "1" } else { "0" },
        }
    }

    /// "name=sha1 …" of every script, for reading SLOWLOG and INFO by script
    /// (`scripts/ab.sh` with `AB_SLOWLOG=1`).
    pub fn hashes(&self) -> String {
        SOURCES
            .iter()
            .chain(&OWN_SOURCES)
            .zip(&self.scripts)
            .map(|((n, _), s)| format!("{n}={}", s.get_hash()))
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// Loads every script into the server's script cache (SCRIPT LOAD). Why at
    /// start: an invocation that meets NOSCRIPT loads its script and runs again, and
    /// a submit batch sent after it may run in between — two batches in flight then
    /// run out of order (a resent segment behind its original, say, could find the
    /// message already completed). After a Redis restart (an empty script cache)
    /// that can still happen once; see ARCHITECTURE.md "Accepting a segment".
    pub async fn load(&self, conn: &mut Conn) -> Result<(), StoreError> {
        for s in &self.scripts {
            s.load_async(conn).await?;
        }
        Ok(())
    }

    /// An invocation of `name` on partition `p`, with the key and the arguments
    /// every script takes first.
    fn call(&self, name: Name, p: usize) -> ScriptInvocation<'_> {
        let mut inv = self.scripts[name as usize].prepare_invoke();
        inv.key(&self.anchors[p])
            .arg(&self.prefixes[p])
            .arg(&self.node);
        inv
    }

    /// An invocation of one of [`OWN_SOURCES`] on `key` alone (routed by it).
    fn call_key(&self, name: Name, key: &str) -> ScriptInvocation<'_> {
        let mut inv = self.scripts[name as usize].prepare_invoke();
        inv.key(key);
        inv
    }

    /// An invocation of `name` on several partitions (SUBMIT of a batch on a
    /// standalone server): each one's key declared, the first one's prefix as
    /// `ARGV[1]`.
    fn call_parts(&self, name: Name, parts: &[usize]) -> ScriptInvocation<'_> {
        let mut inv = self.scripts[name as usize].prepare_invoke();
        for p in parts {
            inv.key(&self.anchors[*p]);
        }
        inv.arg(&self.prefixes[parts.first().copied().unwrap_or_default()])
            .arg(&self.node);
        inv
    }

    /// An invocation of a script that takes several partitions (`parts_header` in
    /// `lib.lua`): their keys declared, their count and prefixes as its first
    /// arguments. Records then name their partition by its 1-based index in `parts`.
    fn call_many(&self, name: Name, parts: &[usize]) -> ScriptInvocation<'_> {
        let mut inv = self.call_parts(name, parts);
        inv.arg(parts.len());
        for p in parts {
            inv.arg(self.prefix(*p));
        }
        inv
    }

    /// Partition `p`'s key prefix.
    fn prefix(&self, p: usize) -> &str {
        &self.prefixes[p]
    }
}

/// The distinct partitions of `items` in first-seen order, and each item's 1-based
/// index among them (how a multi-partition call names a record's partition).
fn index_parts(items: impl Iterator<Item = usize>) -> (Vec<usize>, Vec<usize>) {
    let mut parts: Vec<usize> = Vec::new();
    let index = items
        .map(|p| match parts.iter().position(|q| *q == p) {
            Some(i) => i + 1,
            None => {
                parts.push(p);
                parts.len()
            }
        })
        .collect();
    (parts, index)
}

/// A receipt to queue: the account whose queue it joins, its id (the segment's
/// message_id) and its payload (`QueuedReceipt` JSON).
pub struct ReceiptEntry {
    pub account: String,
    pub id: String,
    pub payload: String,
}

impl ReceiptEntry {
    fn push(&self, inv: &mut ScriptInvocation<'_>) {
        inv.arg(&self.account).arg(&self.id).arg(&self.payload);
    }
}

/// A finished group as the scripts read it (`group_fields` in `lib.lua`): the
/// fields of `P:d:<gid>` (its segments in `v`, or a single-part one's in `m:1`).
#[derive(Debug, Clone)]
pub struct RawGroup {
    pub gid: String,
    pub fields: HashMap<String, Vec<u8>>,
}

impl RawGroup {
    pub fn parse(self) -> Result<FinishedGroup, StoreError> {
        FinishedGroup::from_fields(self.fields)
    }

    /// Reads `gid, {fields…}, gid, {fields…}, …` (the shape CLAIM_DUE, FRESH and
    /// SUBMIT answer groups in).
    fn pairs(values: impl IntoIterator<Item = Value>) -> Vec<RawGroup> {
        let mut out = Vec::new();
        let mut it = values.into_iter();
        while let (Some(gid), Some(fields)) = (it.next(), it.next()) {
            out.push(RawGroup {
                gid: crate::store::redis::value::string(&gid).unwrap_or_default(),
                fields: hash_bytes(fields),
            });
        }
        out
    }
}
