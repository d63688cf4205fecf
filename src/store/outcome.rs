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

use super::error::StoreError;
use super::model::{FinishKind, FinishedGroup, FinishedSegment};
use crate::service::{default_alphabet, Address, ConcatScheme, ExpiryMode, ReceiptDelivery};

/// Final state written to the outcome document.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutcomeState {
    Delivered,
    Partial,
    Expired,
    Cancelled,
}

impl OutcomeState {
    pub fn as_str(self) -> &'static str {
        match self {
            OutcomeState::Delivered => "DELIVERED",
            OutcomeState::Partial => "PARTIAL",
            OutcomeState::Expired => "EXPIRED",
            OutcomeState::Cancelled => "CANCELLED",
        }
    }

    pub fn parse(s: &str) -> Option<OutcomeState> {
        Some(match s {
            "DELIVERED" => OutcomeState::Delivered,
            "PARTIAL" => OutcomeState::Partial,
            "EXPIRED" => OutcomeState::Expired,
            "CANCELLED" => OutcomeState::Cancelled,
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
        }
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
pub fn receipts(group: &FinishedGroup) -> Result<Vec<(String, QueuedReceipt)>, StoreError> {
    let stat = state_of(group).receipt_stat();
    let alphabet = default_alphabet(&group.meta.account);
    let mut out = Vec::new();
    for seg in &group.segments {
        if !wants_receipt(seg.data.rd, stat) {
            continue;
        }
        let known_as = seg.data.receipt_id(&seg.message_id).to_owned();
        let dr = DeliveryReceipt {
            id: known_as.clone(),
            sub: 1,
            dlvrd: u32::from(stat == ReceiptStat::Delivrd),
            submit_date: datetime(seg.received_ms),
            done_date: datetime(group.finished_ms),
            stat,
            err: 0,
            text: receipt_text(seg, alphabet)?,
        };
        let receipt = ReceiptDelivery {
            system_id: group.meta.account.clone(),
            source: group.meta.dest.clone(),
            dest: group.meta.source.clone(),
            short_message: dr.to_short_message_in(alphabet),
            receipted_message_id: known_as,
            message_state: stat.message_state(),
            forward: None,
        };
        out.push((
            seg.message_id.clone(),
            QueuedReceipt {
                receipt,
                created_ms: group.finished_ms,
                attempts: 0,
            },
        ));
    }
    Ok(out)
}
