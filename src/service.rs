//! The port between SMPP sessions and the message store.
//!
//! Sessions (`session/`) turn decoded PDUs into these plain requests and turn the
//! answers back into `_resp` PDUs; the store (`store/`) implements [`MessageService`]
//! on Redis + MongoDB. Tests of the session layer may use a test double; the shipped
//! binary always wires the real store.
//!
//! Requests carry owned, already-decoded values (no protocol types) so the store does
//! not depend on how a PDU was framed, and the session does not know about Redis.

use std::time::Duration;

use bytes::Bytes;
use futures::future::BoxFuture;
pub use smpp_protocol::text::DefaultAlphabet;

/// An SMPP address: `(ton, npi, address)`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct Address {
    pub ton: u8,
    pub npi: u8,
    pub addr: String,
}

/// How the segments of one message were tied together by the ESME.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConcatScheme {
    /// UDH IEI 0x00 (8-bit reference).
    Udh8,
    /// UDH IEI 0x08 (16-bit reference).
    Udh16,
    /// sar_msg_ref_num / sar_total_segments / sar_segment_seqnum TLVs.
    Sar,
}

/// Concatenation info of one segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct Concat {
    pub scheme: ConcatScheme,
    pub reference: u16,
    pub total: u8,
    /// 1-based.
    pub seq: u8,
}

/// Per-account settings the store needs to accept a segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountPolicy {
    pub system_id: String,
    /// Used when validity_period is NULL.
    pub default_validity: Duration,
    /// Deadlines further away are capped to this.
    pub max_validity: Duration,
    /// On expiry: deliver received segments one by one (default) or expire the whole message.
    pub expiry_mode: ExpiryMode,
    pub limits: AccountLimits,
    /// The form of the message_ids this account is given (`message_id_format`).
    pub message_id_format: MessageIdFormat,
}

/// How an account's message_ids are written. Every form names the message's
/// partition (`store::redis::partition::of_message_id`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MessageIdFormat {
    /// 22 hex digits: partition, node epoch, counter.
    #[default]
    Hex,
    /// Decimal digits of an unsigned 64-bit integer (Kannel's `msg-id-type` and
    /// billing systems that parse ids as integers): partition in the top 6 bits, then
    /// 20 bits of node epoch and 38 of counter.
    Decimal,
    /// 8 characters, a letter then 7 base-36 digits (SMPP 3.3 clients: a 9-octet
    /// message_id): partition and a store-wide sequence number (`store::redis::partition::short_id`).
    Short,
}

/// What one account may hold of the store (`[[esme]]`, see `config::Account`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AccountLimits {
    pub max_pending: u64,
    pub max_pending_bytes: u64,
    pub max_segment_octets: usize,
    pub max_queued_receipts: u64,
}

impl Default for AccountLimits {
    /// No limit of its own (the store's limits still apply).
    fn default() -> Self {
        AccountLimits {
            max_pending: u64::MAX >> 12,
            max_pending_bytes: u64::MAX >> 12,
            max_segment_octets: 65_535,
            max_queued_receipts: u64::MAX >> 12,
        }
    }
}

/// The PDU an account's receivers get delivery receipts in (`receipt_pdu`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ReceiptPdu {
    /// deliver_sm, esm_class 0x04 (reference §9.1).
    #[default]
    DeliverSm,
    /// data_sm with the same esm_class, TLVs and the text in message_payload.
    DataSm,
}

impl ReceiptPdu {
    /// The name `config.toml` uses.
    pub fn as_str(self) -> &'static str {
        match self {
            ReceiptPdu::DeliverSm => "deliver_sm",
            ReceiptPdu::DataSm => "data_sm",
        }
    }
}

/// What data_coding 0 means for each account, read by the store when it turns a
/// finished message into its outcome document and receipts, set from the config in
/// force (at start and on every reload) by [`publish_default_alphabets`].
///
/// A process-wide table rather than a field of [`AccountPolicy`] carried with each
/// message: the store keeps no such field with a message yet, so the setting in force
/// when the message finishes applies. An account no config named reads as GSM 03.38;
/// one a reload removed keeps its last setting (its messages may still finish).
static DEFAULT_ALPHABETS: std::sync::LazyLock<
    std::sync::RwLock<std::collections::HashMap<String, DefaultAlphabet>>,
> = std::sync::LazyLock::new(Default::default);

/// Makes these accounts' `default_alphabet` the one the store reads.
pub fn publish_default_alphabets<'a>(
    accounts: impl IntoIterator<Item = (&'a str, DefaultAlphabet)>,
) {
    let mut map = DEFAULT_ALPHABETS.write().unwrap_or_else(|e| e.into_inner());
    for (system_id, alphabet) in accounts {
        if alphabet == DefaultAlphabet::Gsm7 {
            map.remove(system_id);
        } else {
            map.insert(system_id.to_owned(), alphabet);
        }
    }
}

/// What data_coding 0 means for `system_id` (see [`publish_default_alphabets`]).
pub fn default_alphabet(system_id: &str) -> DefaultAlphabet {
    let map = DEFAULT_ALPHABETS.read().unwrap_or_else(|e| e.into_inner());
    if map.is_empty() {
        return DefaultAlphabet::Gsm7;
    }
    map.get(system_id).copied().unwrap_or_default()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExpiryMode {
    /// Each received segment is processed individually when the deadline passes.
    #[default]
    DeliverPartial,
    /// Nothing is delivered; every received segment gets an EXPIRED receipt.
    ExpireWhole,
}

/// One `submit_sm` / `data_sm` (or one destination of a `submit_multi`), decoded.
#[derive(Debug, Clone)]
pub struct SubmitRequest {
    pub policy: AccountPolicy,
    pub service_type: String,
    pub source: Address,
    pub dest: Address,
    pub esm_class: u8,
    pub protocol_id: u8,
    pub priority_flag: u8,
    pub registered_delivery: u8,
    pub data_coding: u8,
    /// `None` for a single-part message.
    pub concat: Option<Concat>,
    /// The segment's user data with any UDH removed.
    pub user_data: Bytes,
    /// The short_message / message_payload exactly as received (UDH included).
    pub raw_user_data: Bytes,
    /// validity_period as received, without its NUL; empty = account default.
    pub validity_period: Bytes,
    /// schedule_delivery_time as received, without its NUL; empty = at once.
    pub schedule_delivery_time: Bytes,
    /// replace_if_present_flag = 1: a message of the same source, destination and
    /// service_type that nothing has ended yet is replaced by this one.
    pub replace_if_present: bool,
    /// The message_id the ESME knows this message by, when it is not the one this
    /// submit gets: destinations 2..n of a submit_multi carry the id of the
    /// submit_multi_resp, and their receipts name it. `None` = its own message_id.
    pub receipt_id: Option<String>,
    /// The account its route forwards it to (`routing::RouteTarget::Esme`); `None`:
    /// the store keeps it (outcome and receipt at once).
    pub forward_to: Option<String>,
    /// A multi-part message goes to `forward_to` as one deliver_sm, its whole text in
    /// message_payload.
    pub forward_reassembled: bool,
    /// The `[[simulate]]` profile its route names: it ends as the profile picks,
    /// delivered nowhere.
    pub simulate: Option<std::sync::Arc<crate::simulate::Profile>>,
}

/// What a submit was answered with.
#[derive(Debug)]
pub struct SubmitAccepted {
    pub message_id: String,
    /// What must not reach the ESME before this submit's response (its receipt):
    /// released when dropped, which the session does once the response is queued.
    pub after_response: Option<AfterResponse>,
}

impl SubmitAccepted {
    pub fn new(message_id: String) -> SubmitAccepted {
        SubmitAccepted {
            message_id,
            after_response: None,
        }
    }
}

/// Runs its action when dropped. The session holds it until the response PDU is in
/// the session's write queue, whatever happens to the request task meanwhile (a
/// closing session drops it too), so the action runs exactly once.
pub struct AfterResponse(Option<Box<dyn FnOnce() + Send>>);

impl AfterResponse {
    pub fn new(action: impl FnOnce() + Send + 'static) -> AfterResponse {
        AfterResponse(Some(Box::new(action)))
    }
}

impl Drop for AfterResponse {
    fn drop(&mut self) {
        if let Some(action) = self.0.take() {
            action();
        }
    }
}

impl std::fmt::Debug for AfterResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AfterResponse")
    }
}

/// Why the service refused a request. Peer faults map to a precise status; internal
/// faults (Redis, MongoDB) to a temporary one, and the bind stays up either way.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// The request itself is wrong; answer with this command_status (raw u32 value).
    #[error("rejected with command_status {status:#010x}: {reason}")]
    Rejected { status: u32, reason: String },
    /// The store cannot take more right now (ESME_RMSGQFUL).
    #[error("message queue full: {0}")]
    QueueFull(String),
    /// Redis or MongoDB unreachable or failing (ESME_RSYSERR); the store's error,
    /// with its source, for the log.
    #[error("internal error: {0}")]
    Internal(#[source] Box<dyn std::error::Error + Send + Sync + 'static>),
}

/// State of a message as query_sm reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueryAnswer {
    pub message_id: String,
    /// message_state value (SMPP §6.6): 1 ENROUTE, 2 DELIVERED, 3 EXPIRED, 4 DELETED, ...
    pub message_state: u8,
    /// When the message reached its final state; `None` while pending.
    pub final_date: Option<chrono::DateTime<chrono::Utc>>,
    pub error_code: u8,
}

/// An account's rate as every node shares it (`throughput`, `burst`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    pub per_second: u32,
    /// Submits accepted at once before the rate applies.
    pub burst: u32,
}

/// What one take from an account's shared rate gave.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TokenGrant {
    /// Submits this node may accept now (0 up to the number asked for).
    pub granted: u32,
    /// With none granted: how long until the next one frees, so that the node need not
    /// ask again before (its submits meanwhile are ESME_RTHROTTLED without a call).
    pub retry_after: Duration,
}

/// Gives a bind's place back: resolves once every node sees it free.
type GiveBack = Box<dyn FnOnce() -> BoxFuture<'static, ()> + Send + Sync>;

/// A bind's place among its account's `max_binds`, counted over every node
/// ([`MessageService::acquire_bind`]). [`BindLease::release`] gives it back; a lease
/// dropped without that is given back in the background (it expires anyway, later).
pub struct BindLease {
    /// How the service names the place (logs, tests).
    pub id: String,
    give_back: Option<GiveBack>,
}

impl BindLease {
    pub fn new(
        id: String,
        give_back: impl FnOnce() -> BoxFuture<'static, ()> + Send + Sync + 'static,
    ) -> Self {
        BindLease {
            id,
            give_back: Some(Box::new(give_back)),
        }
    }

    /// Gives the place back and waits until it is free for every node (a bind that
    /// follows an unbind_resp must find it free).
    pub async fn release(mut self) {
        if let Some(f) = self.give_back.take() {
            f().await;
        }
    }
}

impl Drop for BindLease {
    fn drop(&mut self) {
        if let Some(f) = self.give_back.take() {
            // Called now, so the service forgets the place at once; the rest needs a
            // runtime (none at process exit: the place then expires with its lease).
            let fut = f();
            if let Ok(rt) = tokio::runtime::Handle::try_current() {
                rt.spawn(fut);
            }
        }
    }
}

impl std::fmt::Debug for BindLease {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BindLease").field("id", &self.id).finish()
    }
}

/// The message store as sessions see it.
pub trait MessageService: Send + Sync + 'static {
    /// Stores the segment durably, then returns its message_id. Must not return Ok
    /// before the segment is stored.
    fn submit(&self, req: SubmitRequest) -> BoxFuture<'_, Result<SubmitAccepted, ServiceError>>;

    /// query_sm: the state of a pending or finished message of this account.
    fn query(
        &self,
        system_id: &str,
        message_id: &str,
        source: &Address,
    ) -> BoxFuture<'_, Result<QueryAnswer, ServiceError>>;

    /// cancel_sm of one message (message_id set) or of every pending message from
    /// source to dest (message_id empty).
    fn cancel(
        &self,
        system_id: &str,
        message_id: &str,
        source: &Address,
        dest: Option<&Address>,
        service_type: &str,
    ) -> BoxFuture<'_, Result<(), ServiceError>>;

    /// replace_sm of one pending segment.
    fn replace(
        &self,
        account: &AccountPolicy,
        message_id: &str,
        source: &Address,
        registered_delivery: u8,
        validity_period: Bytes,
        short_message: Bytes,
    ) -> BoxFuture<'_, Result<(), ServiceError>>;

    /// Takes up to `n` submits of the account's `rate`, one budget shared by every
    /// node (its throughput holds across nodes). A session takes them in chunks and
    /// hands them out itself (`session::tokens`).
    fn take_tokens(
        &self,
        system_id: &str,
        rate: Rate,
        n: u32,
    ) -> BoxFuture<'_, Result<TokenGrant, ServiceError>>;

    /// A place among the account's `max_binds` binds on every node; `None` when all of
    /// them are taken. Held for as long as the bind lasts.
    fn acquire_bind(
        &self,
        system_id: &str,
        max_binds: usize,
    ) -> BoxFuture<'_, Result<Option<BindLease>, ServiceError>>;
}

/// A delivery receipt to send as `deliver_sm` (esm_class 0x04).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ReceiptDelivery {
    /// The account whose RX/TRX binds may take it.
    pub system_id: String,
    /// The original recipient (the handset) — becomes deliver_sm's source_addr.
    pub source: Address,
    /// The original originator — becomes deliver_sm's destination_addr.
    pub dest: Address,
    /// The receipt text (`id:… sub:… dlvrd:… submit date:… done date:… stat:… err:… text:…`)
    /// as sent with data_coding 0, in the account's `default_alphabet`: GSM 03.38
    /// septets by default (`DeliveryReceipt::to_short_message_in`).
    #[serde(with = "octets_json")]
    pub short_message: Vec<u8>,
    /// receipted_message_id TLV.
    pub receipted_message_id: String,
    /// message_state TLV.
    pub message_state: u8,
    /// Set when this is not a receipt but a message forwarded to the account: then
    /// `source`/`dest` are the message's own, `short_message` its octets as received
    /// (UDH included), and `receipted_message_id` / `message_state` are unused.
    #[serde(default, skip_serializing_if = "Option::is_none", rename = "fw")]
    pub forward: Option<Forward>,
    /// An intermediate notification (esm_class 0x20, registered_delivery bit 4), not
    /// a final receipt (0x04).
    #[serde(default, skip_serializing_if = "std::ops::Not::not", rename = "im")]
    pub intermediate: bool,
    /// network_error_code TLV (network type, error code) of a simulated failure.
    #[serde(default, skip_serializing_if = "Option::is_none", rename = "ne")]
    pub network_error: Option<(u8, u16)>,
}

/// The fields of a forwarded message's deliver_sm beyond its addresses and octets.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Forward {
    #[serde(rename = "st")]
    pub service_type: String,
    /// GSM features (UDHI, reply path) as submitted; the receiving side's message
    /// type bits are 0 (a plain mobile-originated message).
    #[serde(rename = "esm")]
    pub esm_class: u8,
    #[serde(rename = "dc")]
    pub data_coding: u8,
    /// sar_msg_ref_num, sar_total_segments, sar_segment_seqnum of a SAR segment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sar: Option<(u16, u8, u8)>,
    /// The octets go in message_payload whatever their length (a reassembled message,
    /// to a 3.4 bind).
    #[serde(default, skip_serializing_if = "std::ops::Not::not", rename = "pl")]
    pub payload: bool,
    #[serde(default, rename = "pid")]
    pub protocol_id: u8,
    /// priority_flag as submitted; a worker sends the higher ones of a batch first.
    #[serde(default, rename = "pr")]
    pub priority_flag: u8,
}

/// `short_message` as a queued receipt keeps it in JSON: a string when the octets are
/// UTF-8 (GSM 03.38 septets, all < 0x80, always are), else the array of octets;
/// either form is read back. Why a string when it can be: parsing the array, a number
/// per octet, was ~6 % of the node's CPU at 19k receipts/s (perf, BENCHMARKS.md).
mod octets_json {
    use serde::de::{self, SeqAccess, Visitor};
    use serde::{Deserializer, Serializer};

    pub fn serialize<S: Serializer>(b: &[u8], s: S) -> Result<S::Ok, S::Error> {
        match std::str::from_utf8(b) {
            Ok(text) => s.serialize_str(text),
            Err(_) => s.collect_seq(b),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        struct Octets;
        impl<'de> Visitor<'de> for Octets {
            type Value = Vec<u8>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a string or an array of octets")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Vec<u8>, E> {
                Ok(v.as_bytes().to_vec())
            }
            fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<Vec<u8>, E> {
                Ok(v.to_vec())
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut a: A) -> Result<Vec<u8>, A::Error> {
                let mut out = Vec::with_capacity(a.size_hint().unwrap_or(0));
                while let Some(x) = a.next_element::<u8>()? {
                    out.push(x);
                }
                Ok(out)
            }
        }
        d.deserialize_any(Octets)
    }
}

/// Why a receipt could not be handed over.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DeliverError {
    /// No receiver or transceiver bind of that account is up.
    #[error("no receiver bound for the account")]
    NoReceiver,
    /// The ESME answered deliver_sm_resp with this non-zero status.
    #[error("ESME answered command_status {0:#010x}")]
    Refused(u32),
    /// The ESME answered the deliver_sm with generic_nack (this command_status, which
    /// may be 0): the request failed (reference §10.4), whatever the status says. Retried
    /// later like a refusal.
    #[error("ESME answered generic_nack, command_status {0:#010x}")]
    Nacked(u32),
    /// No deliver_sm_resp within the response timeout, or the session went away.
    #[error("no deliver_sm_resp in time")]
    Timeout,
}

/// The sessions as the receipt dispatcher sees them (implemented by the session
/// registry).
pub trait ReceiptSink: Send + Sync + 'static {
    /// Sends the receipt to one RX/TRX bind of `receipt.system_id` (any of them, using
    /// that session's outbound window) and resolves once deliver_sm_resp arrives.
    fn deliver(&self, receipt: ReceiptDelivery) -> BoxFuture<'_, Result<(), DeliverError>>;

    /// Fires with an account's system_id each time a receiver or transceiver of that
    /// account binds, so receipts waiting for it can go out at once.
    fn receiver_bound(&self) -> tokio::sync::broadcast::Receiver<String>;

    /// Whether a receiver or transceiver of `system_id` is bound here now. The receipt
    /// worker of a node without one leaves the account's receipts alone, so it does not
    /// lease them away from the node whose receiver is bound. A sink that cannot tell
    /// answers true: the worker then tries, and [`DeliverError::NoReceiver`] applies.
    fn has_receiver(&self, system_id: &str) -> bool {
        let _ = system_id;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn receipt(text: &[u8]) -> ReceiptDelivery {
        ReceiptDelivery {
            system_id: "alice".into(),
            source: Address {
                ton: 1,
                npi: 1,
                addr: "447700900001".into(),
            },
            dest: Address {
                ton: 0,
                npi: 0,
                addr: "12345".into(),
            },
            short_message: text.to_vec(),
            receipted_message_id: "42".into(),
            message_state: 2,
            forward: None,
            intermediate: false,
            network_error: None,
        }
    }

    #[test]
    fn a_receipt_text_is_a_json_string_and_reads_back() {
        let r = receipt(b"id:42 sub:001 dlvrd:001 stat:DELIVRD err:000 text:hi");
        let json = serde_json::to_string(&r).expect("serializes");
        assert!(json.contains(r#""short_message":"id:42 sub:001"#), "{json}");
        assert_eq!(
            serde_json::from_str::<ReceiptDelivery>(&json).expect("reads back"),
            r
        );
    }

    #[test]
    fn octets_that_are_not_utf8_stay_an_array_and_read_back() {
        let r = receipt(&[b'i', b'd', 0xff, 0x00]);
        let json = serde_json::to_string(&r).expect("serializes");
        assert!(
            json.contains(r#""short_message":[105,100,255,0]"#),
            "{json}"
        );
        assert_eq!(
            serde_json::from_str::<ReceiptDelivery>(&json).expect("reads back"),
            r
        );
    }

    #[test]
    fn a_receipt_text_given_as_an_array_reads() {
        let old = r#"{"system_id":"alice","source":{"ton":1,"npi":1,"addr":"447700900001"},"dest":{"ton":0,"npi":0,"addr":"12345"},"short_message":[104,105],"receipted_message_id":"42","message_state":2}"#;
        let r: ReceiptDelivery = serde_json::from_str(old).expect("reads");
        assert_eq!(r.short_message, b"hi");
    }
}
