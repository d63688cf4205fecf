//! From a finished group to its MongoDB document and its receipts. Pure functions:
//! the same group always gives the same document, which is what makes retried writes
//! harmless.

use chrono::{DateTime, TimeZone, Utc};
use mongodb::bson::{doc, spec::BinarySubtype, Binary, Bson, Document};
use serde::{Deserialize, Serialize};
use smpp_protocol::receipt::{DeliveryReceipt, ReceiptStat};
use smpp_protocol::text::{
    decode_user_data_in, decode_user_data_lossy_in, DecodedText, DefaultAlphabet, TextContext,
};

use crate::service::{
    default_alphabet, Address, ConcatScheme, ExpiryMode, Forward, ReceiptDelivery,
};
use crate::store::error::StoreError;
use crate::store::model::{FinishKind, FinishedGroup, FinishedSegment, GroupMeta};

/// Final state written to the outcome document.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutcomeState {
    Delivered,
    Partial,
    Expired,
    Cancelled,
    /// A forwarded message the receiver refused for good.
    Undeliverable,
    /// A forwarded message whose deliveries are under way (never an outcome
    /// document's: only what query_sm says meanwhile).
    Enroute,
    /// Simulated outcomes (`[[simulate]]`): REJECTD, ACCEPTD, UNKNOWN.
    Rejected,
    Accepted,
    Unknown,
}

impl OutcomeState {
    pub fn as_str(self) -> &'static str {
        match self {
            OutcomeState::Delivered => "DELIVERED",
            OutcomeState::Partial => "PARTIAL",
            OutcomeState::Expired => "EXPIRED",
            OutcomeState::Cancelled => "CANCELLED",
            OutcomeState::Undeliverable => "UNDELIVERABLE",
            OutcomeState::Enroute => "ENROUTE",
            OutcomeState::Rejected => "REJECTED",
            OutcomeState::Accepted => "ACCEPTED",
            OutcomeState::Unknown => "UNKNOWN",
        }
    }

    /// The state a segment's final stat stands for.
    pub fn of_stat(stat: ReceiptStat) -> OutcomeState {
        match stat {
            ReceiptStat::Delivrd => OutcomeState::Delivered,
            ReceiptStat::Undeliv => OutcomeState::Undeliverable,
            ReceiptStat::Expired => OutcomeState::Expired,
            ReceiptStat::Deleted => OutcomeState::Cancelled,
            ReceiptStat::Rejectd => OutcomeState::Rejected,
            ReceiptStat::Acceptd => OutcomeState::Accepted,
            ReceiptStat::Unknown => OutcomeState::Unknown,
            ReceiptStat::Enroute => OutcomeState::Enroute,
        }
    }

    pub fn parse(s: &str) -> Option<OutcomeState> {
        Some(match s {
            "DELIVERED" => OutcomeState::Delivered,
            "PARTIAL" => OutcomeState::Partial,
            "EXPIRED" => OutcomeState::Expired,
            "CANCELLED" => OutcomeState::Cancelled,
            "UNDELIVERABLE" => OutcomeState::Undeliverable,
            "ENROUTE" => OutcomeState::Enroute,
            "REJECTED" => OutcomeState::Rejected,
            "ACCEPTED" => OutcomeState::Accepted,
            "UNKNOWN" => OutcomeState::Unknown,
            _ => return None,
        })
    }

    /// What query_sm and the receipts say about a segment of such a message.
    pub fn receipt_stat(self) -> ReceiptStat {
        match self {
            // A partial message's received segments were each delivered on their own.
            OutcomeState::Delivered | OutcomeState::Partial => ReceiptStat::Delivrd,
            OutcomeState::Expired => ReceiptStat::Expired,
            OutcomeState::Cancelled => ReceiptStat::Deleted,
            OutcomeState::Undeliverable => ReceiptStat::Undeliv,
            OutcomeState::Enroute => ReceiptStat::Enroute,
            OutcomeState::Rejected => ReceiptStat::Rejectd,
            OutcomeState::Accepted => ReceiptStat::Acceptd,
            OutcomeState::Unknown => ReceiptStat::Unknown,
        }
    }
}

/// A forwarded segment's state: delivered, refused for good, or expired (its
/// delivery deadline came first).
pub fn segment_state(seg: &FinishedSegment) -> OutcomeState {
    match &seg.delivery {
        Some(r) => OutcomeState::of_stat(r.stat),
        None => OutcomeState::Expired,
    }
}

pub fn state_of(group: &FinishedGroup) -> OutcomeState {
    match group.kind {
        FinishKind::Complete => OutcomeState::Delivered,
        FinishKind::Cancelled => OutcomeState::Cancelled,
        FinishKind::Expired => match group.meta.expiry_mode {
            ExpiryMode::DeliverPartial => OutcomeState::Partial,
            ExpiryMode::ExpireWhole => OutcomeState::Expired,
        },
        FinishKind::Routed | FinishKind::Scheduled => OutcomeState::Enroute,
        // The worst of its segments': one refused makes it UNDELIVERABLE, one that
        // expired EXPIRED; all delivered is DELIVERED (PARTIAL when it was incomplete).
        FinishKind::Forwarded => {
            let states: Vec<OutcomeState> = group.segments.iter().map(segment_state).collect();
            if let [first, rest @ ..] = states.as_slice() {
                if *first != OutcomeState::Delivered && rest.iter().all(|s| s == first) {
                    // One state for all (a simulated message always): that one.
                    return *first;
                }
            }
            if states.contains(&OutcomeState::Undeliverable) {
                OutcomeState::Undeliverable
            } else if states.contains(&OutcomeState::Expired) || states.is_empty() {
                OutcomeState::Expired
            } else if group.partial {
                OutcomeState::Partial
            } else {
                OutcomeState::Delivered
            }
        }
    }
}

pub fn datetime(ms: i64) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(ms).single().unwrap_or_default()
}

fn bson_time(ms: i64) -> Bson {
    Bson::DateTime(mongodb::bson::DateTime::from_millis(ms))
}

fn address_doc(a: &Address) -> Document {
    doc! { "ton": i32::from(a.ton), "npi": i32::from(a.npi), "addr": &a.addr }
}

fn bytes(b: Vec<u8>) -> Bson {
    Bson::Binary(Binary {
        subtype: BinarySubtype::Generic,
        bytes: b,
    })
}

/// How a segment's user data reads: what data_coding 0 means for the account, and
/// the GSM 7-bit tables its UDH names (national language shifts, IEI 0x24/0x25).
fn text_context(seg: &FinishedSegment, alphabet: DefaultAlphabet) -> TextContext {
    TextContext::of(alphabet, seg.data.esm, &seg.data.raw)
}

/// A segment's own text (UDH already stripped by the session), `None` if binary or
/// not decodable on its own (e.g. half of a UCS-2 surrogate pair).
fn segment_text(
    seg: &FinishedSegment,
    alphabet: DefaultAlphabet,
) -> Result<Option<String>, StoreError> {
    let ud = seg.data.user_data()?;
    Ok(
        match decode_user_data_in(seg.data.dc, &ud, text_context(seg, alphabet)) {
            Ok(DecodedText::Text(t)) => Some(t),
            _ => None,
        },
    )
}

/// A segment's text for its receipt's `text:` field, decoded leniently: a segment an
/// ESME cut inside a GSM escape or a UTF-16 surrogate pair cannot be decoded alone,
/// and a strict decode gave such receipts an empty `text:` (interop matrix: 6 of 15
/// receipts of every client's long messages).
fn receipt_text(seg: &FinishedSegment, alphabet: DefaultAlphabet) -> Result<String, StoreError> {
    let ud = seg.data.user_data()?;
    Ok(
        match decode_user_data_lossy_in(seg.data.dc, &ud, text_context(seg, alphabet)) {
            DecodedText::Text(t) => t,
            _ => String::new(),
        },
    )
}

/// The outcome document. `_id` is the group id (the first segment's message_id), so
/// a retried insert of the same message hits a duplicate key instead of a second
/// document.
pub fn outcome_document(group: &FinishedGroup) -> Result<Document, StoreError> {
    let state = state_of(group);
    let alphabet = default_alphabet(&group.meta.account);
    let mut segments = Vec::with_capacity(group.segments.len());
    for seg in &group.segments {
        let mut d = doc! {
            "seq": i32::from(seg.seq),
            "message_id": &seg.message_id,
            "received_at": bson_time(seg.received_ms),
            "data_coding": i32::from(seg.data.dc),
            "esm_class": i32::from(seg.data.esm),
            "registered_delivery": i32::from(seg.data.rd),
        };
        if let Some(rid) = &seg.data.rid {
            // The id the ESME was given for it (submit_multi), which its receipts name.
            d.insert("receipt_id", rid);
        }
        if group.forward_to.is_some() || group.simulated {
            // Without a result of its own, a segment shares the message's end when
            // that was not its deliveries' (cancelled while under way); query_sm
            // answers from this state once the outcome is in MongoDB.
            let seg_state = match (&seg.delivery, group.kind) {
                (None, FinishKind::Cancelled) => state,
                _ => segment_state(seg),
            };
            let mut dl = doc! { "state": seg_state.as_str() };
            if let Some(r) = &seg.delivery {
                dl.insert("error", i64::from(r.status));
                dl.insert("attempts", i64::from(r.attempts));
                dl.insert("at", bson_time(r.at_ms));
                dl.insert("node", &r.node);
            }
            d.insert("delivery", dl);
        }
        match segment_text(seg, alphabet)? {
            Some(t) => d.insert("text", t),
            None => d.insert("bytes", bytes(seg.data.user_data()?)),
        };
        segments.push(Bson::Document(d));
    }
    let m = &group.meta;
    let mut out = doc! {
        "_id": &group.gid,
        "account": &m.account,
        "service_type": &m.service_type,
        "source": address_doc(&m.source),
        "dest": address_doc(&m.dest),
        "scheme": match m.scheme {
            Some(ConcatScheme::Udh8) => Bson::String("udh8".into()),
            Some(ConcatScheme::Udh16) => Bson::String("udh16".into()),
            Some(ConcatScheme::Sar) => Bson::String("sar".into()),
            None => Bson::Null,
        },
        "reference": m.reference.map(|r| Bson::Int32(i32::from(r))).unwrap_or(Bson::Null),
        "total": i32::from(m.total),
        "state": state.as_str(),
        "segments": segments,
        "missing": group.missing().into_iter().map(|s| Bson::Int32(i32::from(s))).collect::<Vec<_>>(),
        "submitted_at": bson_time(group.submitted_ms),
        "deadline": bson_time(group.deadline_ms),
        "completed_at": bson_time(group.finished_ms),
        "node": &group.node,
    };
    if let Some(to) = &group.forward_to {
        out.insert("route", doc! { "target": format!("esme:{to}") });
    } else if group.simulated {
        out.insert("route", doc! { "target": "simulate" });
    }
    if state == OutcomeState::Delivered {
        // Joined before decoding: a UCS-2 character or surrogate pair split across
        // segments is whole again.
        let mut joined = Vec::new();
        for seg in &group.segments {
            joined.extend_from_slice(&seg.data.user_data()?);
        }
        let dc = group.segments.first().map(|s| s.data.dc).unwrap_or(0);
        // The shift tables the first segment's UDH names (a sender repeats them in
        // every segment).
        let ctx = group
            .segments
            .first()
            .map(|s| text_context(s, alphabet))
            .unwrap_or_default();
        match decode_user_data_in(dc, &joined, ctx) {
            Ok(DecodedText::Text(t)) => out.insert("text", t),
            _ => out.insert("bytes", bytes(joined)),
        };
    }
    Ok(out)
}

/// A receipt as kept in Redis until an ESME took it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueuedReceipt {
    #[serde(rename = "r")]
    pub receipt: ReceiptDelivery,
    /// When it was queued (ms, Redis time).
    #[serde(rename = "c")]
    pub created_ms: i64,
    /// Sends tried so far.
    #[serde(rename = "a")]
    pub attempts: u32,
    /// Set for a forwarded message's delivery (not a receipt): which segment it is.
    #[serde(default, skip_serializing_if = "Option::is_none", rename = "d")]
    pub delivery: Option<DeliveryRef>,
}

impl QueuedReceipt {
    /// Names message_id `to` wherever it named `from` (a unique id the node made, which
    /// the submit script replaced with the segment's own; SUBMIT renames its queued
    /// copy the same way, on the same JSON).
    pub fn rename_message(&mut self, from: &str, to: &str) {
        let renamed = serde_json::to_string(self)
            .ok()
            .map(|j| j.replace(from, to))
            .and_then(|j| serde_json::from_str(&j).ok());
        if let Some(r) = renamed {
            *self = r;
        }
    }
}

/// Which message and segment a queued delivery carries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeliveryRef {
    pub gid: String,
    pub seq: u8,
    /// The sender's intermediate notification (registered_delivery bit 4), sent the
    /// first time this delivery is held (no receiver bound, a temporary refusal);
    /// `None` once sent, or when not asked for.
    #[serde(default, skip_serializing_if = "Option::is_none", rename = "n")]
    pub notify: Option<ReceiptDelivery>,
    /// The sender's receipts once this delivery ends: one per segment it carries.
    #[serde(default, rename = "r")]
    pub receipts: Vec<ReceiptStub>,
}

/// Whether `registered_delivery` asks for a receipt with this final stat. Bits 1–0:
/// 1 always, 2 on failure only, 3 (reserved in 3.4, success-only in 5.0) success only.
pub fn wants_receipt(registered_delivery: u8, stat: ReceiptStat) -> bool {
    let success = stat == ReceiptStat::Delivrd;
    match registered_delivery & 0x03 {
        1 => true,
        2 => !success,
        3 => success,
        _ => false,
    }
}

/// The receipts a finished group owes: one per received segment that asked for one.
/// The receipt names the id the ESME was given for the segment (its own message_id,
/// or the submit_multi_resp's for a later destination); the segment's own message_id,
/// unique, stays the receipt's id in Redis.
///
/// A forwarded message still under way owes its deliveries instead (see
/// [`deliveries`]); one whose deliveries ended owes each segment the receipt of its
/// own state, with the receiver's refusal as `err:`.
pub fn receipts(group: &FinishedGroup) -> Result<Vec<(String, QueuedReceipt)>, StoreError> {
    match group.kind {
        FinishKind::Routed => return deliveries(group),
        FinishKind::Scheduled => return Ok(Vec::new()),
        _ => {}
    }
    let group_stat = state_of(group).receipt_stat();
    let forwarded = group.kind == FinishKind::Forwarded;
    let mut out = Vec::new();
    for seg in &group.segments {
        if group.forward_to.is_some() && seg.delivery.is_some() {
            // The node that ended this segment's delivery queued its receipt then
            // (DELIVERY_DONE, from the delivery's `ReceiptStub`).
            continue;
        }
        let (stat, err, done_ms) = match (&seg.delivery, forwarded) {
            (Some(r), true) => (segment_state(seg).receipt_stat(), r.status, r.at_ms),
            (None, true) => (ReceiptStat::Expired, 0, group.finished_ms),
            _ => (group_stat, 0, group.finished_ms),
        };
        // A simulated failure's err as a GSM network error (type 3), as SMSCs report
        // an operator's cause.
        let network_error = (group.simulated && stat != ReceiptStat::Delivrd && err != 0)
            .then(|| (3, u16::try_from(err).unwrap_or(u16::MAX)));
        out.extend(ReceiptStub::of(group, seg)?.receipt(
            stat,
            err,
            done_ms,
            group.finished_ms,
            network_error,
        ));
    }
    Ok(out)
}

/// What a segment's receipt needs besides how it ended. A forwarded segment's delivery
/// carries it, so the node that ends the delivery queues the sender's receipt in the
/// same script call (DELIVERY_DONE), without reading the message back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReceiptStub {
    /// The segment's own message_id: the receipt's id in its queue.
    #[serde(rename = "id")]
    pub message_id: String,
    /// The id the ESME was given for it (`id:`, receipted_message_id).
    #[serde(rename = "k")]
    pub known_as: String,
    /// The sender's account, and the addresses the receipt goes between.
    #[serde(rename = "a")]
    pub account: String,
    #[serde(rename = "s")]
    pub source: Address,
    #[serde(rename = "d")]
    pub dest: Address,
    #[serde(rename = "t")]
    pub submit_ms: i64,
    #[serde(rename = "rd")]
    pub registered_delivery: u8,
    /// The `text:` of the receipt (decoded once).
    #[serde(rename = "x")]
    pub text: String,
}

impl ReceiptStub {
    pub fn of(group: &FinishedGroup, seg: &FinishedSegment) -> Result<ReceiptStub, StoreError> {
        ReceiptStub::of_segment(&group.meta, seg)
    }

    /// The stub of a segment of the message `meta` describes, finished or not (a
    /// segment just accepted owes its intermediate notification already).
    pub fn of_segment(meta: &GroupMeta, seg: &FinishedSegment) -> Result<ReceiptStub, StoreError> {
        let alphabet = default_alphabet(&meta.account);
        Ok(ReceiptStub {
            message_id: seg.message_id.clone(),
            known_as: seg.data.receipt_id(&seg.message_id).to_owned(),
            account: meta.account.clone(),
            source: meta.dest.clone(),
            dest: meta.source.clone(),
            submit_ms: seg.received_ms,
            registered_delivery: seg.data.rd,
            text: receipt_text(seg, alphabet)?,
        })
    }

    /// The receipt of a segment that ended `stat` (`err`) at `done_ms`, if its
    /// registered_delivery asks for one: its queue id and payload.
    pub fn receipt(
        &self,
        stat: ReceiptStat,
        err: u32,
        done_ms: i64,
        created_ms: i64,
        network_error: Option<(u8, u16)>,
    ) -> Option<(String, QueuedReceipt)> {
        wants_receipt(self.registered_delivery, stat)
            .then(|| self.build(stat, err, done_ms, created_ms, network_error))
    }

    /// The segment's intermediate notification: ENROUTE at `at_ms`, esm_class 0x20,
    /// addressed as its receipt would be (asked for by registered_delivery bit 4,
    /// whatever bits 1–0 ask). Queued as `<message_id>.n`, beside the receipt.
    pub fn notification(&self, at_ms: i64) -> ReceiptDelivery {
        let (_, q) = self.build(ReceiptStat::Enroute, 0, at_ms, at_ms, None);
        ReceiptDelivery {
            intermediate: true,
            ..q.receipt
        }
    }

    /// That receipt whether or not it is asked for.
    fn build(
        &self,
        stat: ReceiptStat,
        err: u32,
        done_ms: i64,
        created_ms: i64,
        network_error: Option<(u8, u16)>,
    ) -> (String, QueuedReceipt) {
        let alphabet = default_alphabet(&self.account);
        let dr = DeliveryReceipt {
            id: self.known_as.clone(),
            sub: 1,
            dlvrd: u32::from(stat == ReceiptStat::Delivrd),
            submit_date: datetime(self.submit_ms),
            done_date: datetime(done_ms),
            stat,
            err,
            text: self.text.clone(),
        };
        let receipt = ReceiptDelivery {
            system_id: self.account.clone(),
            source: self.source.clone(),
            dest: self.dest.clone(),
            short_message: dr.to_short_message_in(alphabet),
            receipted_message_id: self.known_as.clone(),
            message_state: stat.message_state(),
            forward: None,
            intermediate: false,
            network_error,
        };
        (
            self.message_id.clone(),
            QueuedReceipt {
                receipt,
                created_ms,
                attempts: 0,
                delivery: None,
            },
        )
    }
}

/// A complete multi-part message as one deliver_sm (`segments = "reassembled"`): the
/// segments' user data joined in order (UDH and SAR gone), the first segment's
/// data_coding and GSM bits without UDHI, queued under the gid with seq 0 (its result
/// is every segment's).
fn reassembled(
    group: &FinishedGroup,
    to: &str,
) -> Result<Vec<(String, QueuedReceipt)>, StoreError> {
    let m = &group.meta;
    let mut octets = Vec::new();
    for seg in &group.segments {
        octets.extend_from_slice(&seg.data.user_data()?);
    }
    let first = &group.segments[0];
    let receipt = ReceiptDelivery {
        system_id: to.to_owned(),
        source: m.source.clone(),
        dest: m.dest.clone(),
        short_message: octets,
        receipted_message_id: String::new(),
        message_state: 0,
        intermediate: false,
        network_error: None,
        forward: Some(Forward {
            service_type: m.service_type.clone(),
            esm_class: first.data.esm & 0x80,
            data_coding: first.data.dc,
            sar: None,
            payload: true,
            protocol_id: group.protocol_id,
            priority_flag: group.priority,
        }),
    };
    Ok(vec![(
        group.gid.clone(),
        QueuedReceipt {
            receipt,
            created_ms: group.finished_ms,
            attempts: 0,
            delivery: Some(DeliveryRef {
                gid: group.gid.clone(),
                seq: 0,
                notify: None,
                receipts: group
                    .segments
                    .iter()
                    .map(|s| ReceiptStub::of(group, s))
                    .collect::<Result<_, _>>()?,
            }),
        },
    )])
}

/// The intermediate notification of a forwarded segment that is held
/// ([`ReceiptStub::notification`]).
fn notification(
    group: &FinishedGroup,
    seg: &FinishedSegment,
) -> Result<ReceiptDelivery, StoreError> {
    Ok(ReceiptStub::of(group, seg)?.notification(group.finished_ms))
}

/// The deliveries a forwarded message owes its receiving account: one deliver_sm
/// per received segment, in order, each queued under the segment's message_id.
/// Addresses, data_coding, protocol fields and octets go through as received (UDH
/// or SAR intact); a partial message's segments go standalone, their concatenation
/// information removed.
pub fn deliveries(group: &FinishedGroup) -> Result<Vec<(String, QueuedReceipt)>, StoreError> {
    let Some(to) = &group.forward_to else {
        return Ok(Vec::new());
    };
    let m = &group.meta;
    if group.reassembled && !group.partial && group.segments.len() > 1 {
        return reassembled(group, to);
    }
    let mut out = Vec::with_capacity(group.segments.len());
    for seg in &group.segments {
        let (octets, esm, sar) = if group.partial {
            (seg.data.user_data()?, seg.data.esm & 0x80, None)
        } else {
            let sar = match (m.scheme, m.reference) {
                (Some(ConcatScheme::Sar), Some(r)) => Some((r, m.total, seg.seq)),
                _ => None,
            };
            (seg.data.raw.clone(), seg.data.esm & 0xC0, sar)
        };
        let receipt = ReceiptDelivery {
            system_id: to.clone(),
            source: m.source.clone(),
            dest: m.dest.clone(),
            short_message: octets,
            receipted_message_id: String::new(),
            message_state: 0,
            intermediate: false,
            network_error: None,
            forward: Some(Forward {
                service_type: m.service_type.clone(),
                esm_class: esm,
                data_coding: seg.data.dc,
                sar,
                payload: false,
                protocol_id: group.protocol_id,
                priority_flag: group.priority,
            }),
        };
        out.push((
            seg.message_id.clone(),
            QueuedReceipt {
                receipt,
                created_ms: group.finished_ms,
                attempts: 0,
                delivery: Some(DeliveryRef {
                    gid: group.gid.clone(),
                    seq: seg.seq,
                    notify: (seg.data.rd & 0x10 != 0)
                        .then(|| notification(group, seg))
                        .transpose()?,
                    receipts: vec![ReceiptStub::of(group, seg)?],
                }),
            },
        ));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::store::model::{DeliveryResult, StoredSegment};

    fn addr(a: &str) -> Address {
        Address {
            ton: 1,
            npi: 1,
            addr: a.into(),
        }
    }

    /// A forwarded 2-part SAR message of account `a` to `b`, its segments as given.
    fn forwarded(
        kind: FinishKind,
        partial: bool,
        results: [Option<DeliveryResult>; 2],
    ) -> FinishedGroup {
        let seg = |seq: u8, delivery: Option<DeliveryResult>| FinishedSegment {
            seq,
            message_id: format!("{seq:02}0000000000000000000{seq}"),
            received_ms: 10,
            data: StoredSegment {
                dc: 0,
                esm: 0x03,
                rd: 1,
                raw: format!("part{seq}").into_bytes(),
                uo: 0,
                rid: None,
            },
            delivery,
        };
        let [r1, r2] = results;
        FinishedGroup {
            gid: "010000000000000000000a".into(),
            meta: GroupMeta {
                account: "a".into(),
                service_type: "WAP".into(),
                source: addr("SRC"),
                dest: addr("447700900123"),
                scheme: Some(ConcatScheme::Sar),
                reference: Some(7),
                total: 2,
                expiry_mode: ExpiryMode::DeliverPartial,
            },
            deadline_ms: 1000,
            submitted_ms: 10,
            finished_ms: 20,
            kind,
            node: "n".into(),
            segments: vec![seg(1, r1), seg(2, r2)],
            forward_to: Some("b".into()),
            partial,
            simulated: false,
            reassembled: false,
            protocol_id: 0,
            priority: 0,
        }
    }

    fn result(delivered: bool, status: u32) -> Option<DeliveryResult> {
        Some(DeliveryResult {
            stat: if delivered {
                ReceiptStat::Delivrd
            } else {
                ReceiptStat::Undeliv
            },
            status,
            attempts: 2,
            at_ms: 30,
            node: "node b".into(),
        })
    }

    #[test]
    fn a_routed_message_owes_one_delivery_per_segment_to_its_target_sar_intact() {
        let d = receipts(&forwarded(FinishKind::Routed, false, [None, None])).unwrap();
        assert_eq!(d.len(), 2);
        for (i, (id, q)) in d.iter().enumerate() {
            let seq = i as u8 + 1;
            assert_eq!(id, &format!("{seq:02}0000000000000000000{seq}"));
            assert_eq!(q.receipt.system_id, "b");
            assert_eq!(
                (q.receipt.source.addr.as_str(), q.receipt.dest.addr.as_str()),
                ("SRC", "447700900123")
            );
            let f = q.receipt.forward.as_ref().unwrap();
            // The messaging mode bits of the submit are not the receiver's business.
            assert_eq!((f.esm_class, f.sar), (0, Some((7, 2, seq))));
            assert_eq!(f.service_type, "WAP");
            assert_eq!(q.delivery.as_ref().unwrap().seq, seq);
        }
    }

    #[test]
    fn a_forwarded_message_cancelled_under_way_is_cancelled_in_every_segment_of_its_document() {
        let g = forwarded(FinishKind::Cancelled, false, [None, None]);
        let d = outcome_document(&g).unwrap();
        assert_eq!(d.get_str("state").unwrap(), "CANCELLED");
        for s in d.get_array("segments").unwrap() {
            let dl = s.as_document().unwrap().get_document("delivery").unwrap();
            assert_eq!(dl.get_str("state").unwrap(), "CANCELLED", "{s:?}");
        }
        // One delivered before the cancel keeps its own state.
        let g = forwarded(FinishKind::Cancelled, false, [result(true, 0), None]);
        let d = outcome_document(&g).unwrap();
        let states: Vec<String> = d
            .get_array("segments")
            .unwrap()
            .iter()
            .map(|s| {
                let dl = s.as_document().unwrap().get_document("delivery").unwrap();
                dl.get_str("state").unwrap().to_owned()
            })
            .collect();
        assert_eq!(states, ["DELIVERED", "CANCELLED"]);
        // Its deliveries' deadline, not a cancel, ends one without a result.
        let g = forwarded(FinishKind::Forwarded, false, [result(true, 0), None]);
        let d = outcome_document(&g).unwrap();
        let segs = d.get_array("segments").unwrap();
        let state = |i: usize| {
            let dl = segs[i]
                .as_document()
                .unwrap()
                .get_document("delivery")
                .unwrap();
            dl.get_str("state").unwrap().to_owned()
        };
        assert_eq!(
            (state(0).as_str(), state(1).as_str()),
            ("DELIVERED", "EXPIRED")
        );
    }

    #[test]
    fn a_queued_receipt_renamed_names_the_new_id_in_its_text_and_its_tlv() {
        let g = forwarded(FinishKind::Forwarded, false, [result(true, 0), None]);
        let (from, mut q) = ReceiptStub::of(&g, &g.segments[0])
            .unwrap()
            .receipt(ReceiptStat::Delivrd, 0, 30, 30, None)
            .unwrap();
        let to = "0A0123456789ABCDEF0123456789ABCDEF01";
        q.rename_message(&from, to);
        assert_eq!(q.receipt.receipted_message_id, to);
        let text = String::from_utf8(q.receipt.short_message.clone()).unwrap();
        assert!(text.starts_with(&format!("id:{to} ")), "{text}");
        assert!(!text.contains(&from), "{text}");
    }

    #[test]
    fn a_partial_message_goes_out_standalone() {
        let mut g = forwarded(FinishKind::Routed, true, [None, None]);
        g.meta.scheme = Some(ConcatScheme::Udh8);
        for s in &mut g.segments {
            s.data.raw = [&[5, 0, 3, 7, 2, s.seq][..], b"txt"].concat();
            s.data.uo = 6;
            s.data.esm = 0x40;
        }
        for (_, q) in receipts(&g).unwrap() {
            let f = q.receipt.forward.as_ref().unwrap();
            assert_eq!((f.esm_class, f.sar), (0, None));
            assert_eq!(q.receipt.short_message, b"txt");
        }
    }

    #[test]
    fn each_segment_of_a_forwarded_message_gets_the_receipt_of_its_own_delivery() {
        let g = forwarded(
            FinishKind::Forwarded,
            false,
            [result(true, 0), result(false, 0x65)],
        );
        assert_eq!(state_of(&g), OutcomeState::Undeliverable);
        // The node that ended each delivery queued its receipt, from its stub.
        assert!(receipts(&g).unwrap().is_empty());
        let stub = |i: usize| ReceiptStub::of(&g, &g.segments[i]).unwrap();
        let (_, ok) = stub(0)
            .receipt(ReceiptStat::Delivrd, 0, 30, 30, None)
            .unwrap();
        let (id, refused) = stub(1)
            .receipt(ReceiptStat::Undeliv, 0x65, 30, 30, None)
            .unwrap();
        assert_eq!(id, g.segments[1].message_id);
        let text = |q: &QueuedReceipt| String::from_utf8(q.receipt.short_message.clone()).unwrap();
        assert!(text(&ok).contains("stat:DELIVRD err:000"), "{}", text(&ok));
        assert!(
            text(&refused).contains("stat:UNDELIV err:101"),
            "{}",
            text(&refused)
        );
        assert!([&ok, &refused]
            .iter()
            .all(|q| q.receipt.system_id == "a" && q.delivery.is_none()));
        // A segment its deadline ended gets an EXPIRED receipt from the group.
        let r = receipts(&forwarded(
            FinishKind::Forwarded,
            false,
            [result(true, 0), None],
        ))
        .unwrap();
        assert_eq!(r.len(), 1);
        assert!(text(&r[0].1).contains("stat:EXPIRED"), "{}", text(&r[0].1));
        let doc = outcome_document(&g).unwrap();
        assert_eq!(doc.get_str("state").unwrap(), "UNDELIVERABLE");
        assert_eq!(
            doc.get_document("route")
                .unwrap()
                .get_str("target")
                .unwrap(),
            "esme:b"
        );
        // Its deadline came before the second segment's delivery ended: EXPIRED.
        let g = forwarded(FinishKind::Forwarded, false, [result(true, 0), None]);
        assert_eq!(state_of(&g), OutcomeState::Expired);
        let g = forwarded(
            FinishKind::Forwarded,
            true,
            [result(true, 0), result(true, 0)],
        );
        assert_eq!(state_of(&g), OutcomeState::Partial);
    }

    #[test]
    fn a_delivery_result_reads_back() {
        let r = result(false, 0x65).unwrap();
        assert_eq!(DeliveryResult::decode(r.encode().as_bytes()).unwrap(), r);
        assert!(DeliveryResult::decode(b"Z 1 2 3 n").is_err());
    }
}
