//! Messages and what becomes of them, for every kind of test: the PDUs an ESME sends
//! (submit_sm, segments of concatenated messages, GSM 03.38 and UCS-2 text) and
//! readers of the outcome documents smppd writes to MongoDB. The store tests build
//! their requests from the same [`segment`] (`support::harness::request`).

use bytes::Bytes;
use mongodb::bson::Document;
use smpp_protocol::{Body, COctetString, Pdu, SubmitSm, Tlv};

/// How the segments of a message are tied together (UDH 8-bit or 16-bit reference,
/// or SAR TLVs); the outcome document names it as [`scheme_name`] says.
pub use smppd::service::ConcatScheme;

pub fn cs(s: &str) -> COctetString {
    COctetString::try_from(s).unwrap()
}

/// Encodes a whole PDU to bytes (for hand-made malformed variants).
pub fn encode(pdu: &Pdu) -> Vec<u8> {
    pdu.to_bytes().to_vec()
}

/// A plain submit_sm from `SENDER` (alphanumeric) to `dest`, receipt requested.
pub fn submit_sm(dest: &str, text: &[u8]) -> SubmitSm {
    SubmitSm {
        source_addr_ton: 5,
        source_addr_npi: 0,
        source_addr: cs("SENDER"),
        dest_addr_ton: 1,
        dest_addr_npi: 1,
        destination_addr: cs(dest),
        registered_delivery: 1,
        short_message: Bytes::copy_from_slice(text),
        ..SubmitSm::default()
    }
}

/// GSM 03.38 unpacked septets (data_coding 0).
pub fn gsm(text: &str) -> Vec<u8> {
    smpp_protocol::text::encode_text(0, text).unwrap()
}

/// UCS-2 / UTF-16BE (data_coding 8); non-BMP characters as surrogate pairs.
pub fn ucs2(text: &str) -> Vec<u8> {
    text.encode_utf16().flat_map(|u| u.to_be_bytes()).collect()
}

/// The `scheme` field of an outcome document.
pub fn scheme_name(scheme: ConcatScheme) -> &'static str {
    match scheme {
        ConcatScheme::Udh8 => "udh8",
        ConcatScheme::Udh16 => "udh16",
        ConcatScheme::Sar => "sar",
    }
}

/// A submit_sm from `source` to `dest` (both ton 1, npi 1) carrying `user_data`;
/// segment `seq` of `total` of message `reference` when `concat` = (scheme,
/// reference, total, seq) is given (UDH before the user data, or SAR TLVs).
pub fn segment(
    source: &str,
    dest: &str,
    concat: Option<(ConcatScheme, u16, u8, u8)>,
    data_coding: u8,
    user_data: &[u8],
    registered_delivery: u8,
    validity: &str,
) -> SubmitSm {
    let mut esm_class = 0;
    let mut tlvs = Vec::new();
    let mut short_message = Vec::new();
    match concat {
        Some((ConcatScheme::Udh8, r, total, seq)) => {
            esm_class = 0x40;
            short_message.extend_from_slice(&[5, 0, 3, r as u8, total, seq]);
        }
        Some((ConcatScheme::Udh16, r, total, seq)) => {
            esm_class = 0x40;
            short_message.extend_from_slice(&[6, 8, 4, (r >> 8) as u8, r as u8, total, seq]);
        }
        Some((ConcatScheme::Sar, r, total, seq)) => {
            tlvs = vec![
                Tlv::SarMsgRefNum(r),
                Tlv::SarTotalSegments(total),
                Tlv::SarSegmentSeqnum(seq),
            ];
        }
        None => {}
    }
    short_message.extend_from_slice(user_data);
    SubmitSm {
        source_addr_ton: 1,
        source_addr_npi: 1,
        source_addr: cs(source),
        dest_addr_ton: 1,
        dest_addr_npi: 1,
        destination_addr: cs(dest),
        esm_class,
        registered_delivery,
        data_coding,
        validity_period: cs(validity),
        short_message: Bytes::from(short_message),
        tlvs,
        ..SubmitSm::default()
    }
}

/// Splits `data` at `cuts` (byte offsets, ascending).
pub fn split_at(data: &[u8], cuts: &[usize]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut from = 0;
    for &c in cuts {
        out.push(data[from..c].to_vec());
        from = c;
    }
    out.push(data[from..].to_vec());
    out
}

/// The message_id of a submit_sm_resp / data_sm_resp.
pub fn message_id_of(r: &Pdu) -> String {
    match &r.body {
        Body::SubmitSmResp(Some(m)) | Body::DataSmResp(Some(m)) => {
            m.message_id.to_string_lossy().into_owned()
        }
        other => panic!("no message_id in {other:?}"),
    }
}

fn segments(d: &Document) -> impl Iterator<Item = &Document> {
    d.get_array("segments")
        .unwrap()
        .iter()
        .map(|s| s.as_document().unwrap())
}

/// Texts of an outcome's segments in order (`<bytes>` where not decodable alone).
pub fn segment_texts(d: &Document) -> Vec<String> {
    segments(d)
        .map(|s| s.get_str("text").unwrap_or("<bytes>").to_owned())
        .collect()
}

/// message_ids of an outcome's segments, in order.
pub fn segment_ids(d: &Document) -> Vec<String> {
    segments(d)
        .map(|s| s.get_str("message_id").unwrap().to_owned())
        .collect()
}

/// seq numbers of an outcome's segments, in order.
pub fn segment_seqs(d: &Document) -> Vec<i32> {
    segments(d).map(|s| s.get_i32("seq").unwrap()).collect()
}

/// The seq numbers an outcome lists as missing.
pub fn missing(d: &Document) -> Vec<i32> {
    d.get_array("missing")
        .unwrap()
        .iter()
        .map(|v| v.as_i32().unwrap())
        .collect()
}

/// completed_at − deadline of an outcome, in ms.
pub fn lateness_ms(d: &Document) -> i64 {
    d.get_datetime("completed_at").unwrap().timestamp_millis()
        - d.get_datetime("deadline").unwrap().timestamp_millis()
}

/// The gid a message_id names: a multi-part segment's hex id is its message's gid
/// and 2 hex digits of its seq; any other id is its message's own.
pub fn gid_of(message_id: &str) -> &str {
    let hex = message_id.bytes().all(|b| b.is_ascii_hexdigit());
    if hex && message_id.len() == smppd::store::redis::partition::SEGMENT_ID_LEN {
        &message_id[..smppd::store::redis::partition::GROUP_ID_LEN]
    } else {
        message_id
    }
}
