//! What the store keeps in Redis about a message, and how it reads it back.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use super::error::StoreError;
use crate::service::{Address, ConcatScheme, ExpiryMode, SubmitRequest};

/// Facts of a message fixed by its first segment (the `meta` field of a group hash).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupMeta {
    pub account: String,
    pub service_type: String,
    pub source: Address,
    pub dest: Address,
    pub scheme: Option<ConcatScheme>,
    pub reference: Option<u16>,
    pub total: u8,
    pub expiry_mode: ExpiryMode,
}

/// One received segment (an `s:<seq>` field). Short field names: this is stored per
/// segment at thousands per second.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredSegment {
    /// data_coding
    pub dc: u8,
    /// esm_class
    pub esm: u8,
    /// registered_delivery
    pub rd: u8,
    /// short_message / message_payload as received, hex
    pub raw: String,
    /// Where the user data starts in `raw`: the UDH's length (0 without UDHI). The
    /// user data is always the tail of what was received, so it is not stored twice.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub uo: usize,
    /// The user data, hex, as segments stored before `uo` existed carry it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ud: Option<String>,
    /// The message_id the ESME knows this segment by when it is not its own (a
    /// submit_multi destination after the first): its receipts name this id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rid: Option<String>,
}

impl StoredSegment {
    pub fn from_request(req: &SubmitRequest) -> StoredSegment {
        StoredSegment {
            dc: req.data_coding,
            esm: req.esm_class,
            rd: req.registered_delivery,
            raw: hex::encode(&req.raw_user_data),
            uo: req.raw_user_data.len().saturating_sub(req.user_data.len()),
            ud: None,
            rid: req.receipt_id.clone(),
        }
    }

    /// The id receipts of this segment carry: the one the ESME was given.
    pub fn receipt_id<'a>(&'a self, own: &'a str) -> &'a str {
        self.rid.as_deref().unwrap_or(own)
    }

    pub fn user_data(&self) -> Result<Vec<u8>, StoreError> {
        let corrupt = |e| StoreError::Corrupt(format!("segment user data: {e}"));
        if let Some(ud) = &self.ud {
            return hex::decode(ud).map_err(corrupt);
        }
        let mut raw = hex::decode(&self.raw).map_err(corrupt)?;
        if self.uo > raw.len() {
            return Err(StoreError::Corrupt(format!(
                "segment user data offset {} beyond its {} octets",
                self.uo,
                raw.len()
            )));
        }
        raw.drain(..self.uo);
        Ok(raw)
    }
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

/// How a message left the pending area.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FinishKind {
    /// Every segment arrived.
    Complete,
    /// The deadline passed first.
    Expired,
    /// cancel_sm.
    Cancelled,
}

/// One segment of a finished group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FinishedSegment {
    pub seq: u8,
    pub message_id: String,
    pub received_ms: i64,
    pub data: StoredSegment,
}

/// A finished group as read from `d:<gid>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FinishedGroup {
    pub gid: String,
    pub meta: GroupMeta,
    pub deadline_ms: i64,
    pub submitted_ms: i64,
    pub finished_ms: i64,
    pub kind: FinishKind,
    pub node: String,
    /// Sorted by seq.
    pub segments: Vec<FinishedSegment>,
}

impl FinishedGroup {
    /// Reads the flat `HGETALL` reply of a finished group hash.
    pub fn from_fields(fields: HashMap<String, String>) -> Result<FinishedGroup, StoreError> {
        let get = |k: &str| {
            fields
                .get(k)
                .ok_or_else(|| StoreError::Corrupt(format!("finished group lacks field {k:?}")))
        };
        let int = |k: &str| -> Result<i64, StoreError> {
            get(k)?
                .parse()
                .map_err(|_| StoreError::Corrupt(format!("field {k:?} is not a number")))
        };
        let meta: GroupMeta = serde_json::from_str(get("meta")?)
            .map_err(|e| StoreError::Corrupt(format!("group meta: {e}")))?;
        let kind = match get("state")?.as_str() {
            "complete" => FinishKind::Complete,
            "expired" => FinishKind::Expired,
            "cancelled" => FinishKind::Cancelled,
            other => return Err(StoreError::Corrupt(format!("unknown state {other:?}"))),
        };
        let mut segments = Vec::new();
        for (k, v) in &fields {
            let Some(seq) = k.strip_prefix("s:") else {
                continue;
            };
            let seq: u8 = seq
                .parse()
                .map_err(|_| StoreError::Corrupt(format!("segment field {k:?}")))?;
            let data: StoredSegment = serde_json::from_str(v)
                .map_err(|e| StoreError::Corrupt(format!("segment {seq}: {e}")))?;
            segments.push(FinishedSegment {
                seq,
                message_id: get(&format!("i:{seq}"))?.clone(),
                received_ms: int(&format!("r:{seq}"))?,
                data,
            });
        }
        segments.sort_by_key(|s| s.seq);
        Ok(FinishedGroup {
            gid: get("gid")?.clone(),
            meta,
            deadline_ms: int("dl")?,
            submitted_ms: int("sub")?,
            finished_ms: int("fin")?,
            kind,
            node: get("node")?.clone(),
            segments,
        })
    }

    /// Seqs of the message that never arrived.
    pub fn missing(&self) -> Vec<u8> {
        (1..=self.meta.total)
            .filter(|s| !self.segments.iter().any(|x| x.seq == *s))
            .collect()
    }
}

/// `ton.npi.addr`, the form in which the Lua scripts compare sources.
pub fn address_key(a: &Address) -> String {
    format!("{}.{}.{}", a.ton, a.npi, a.addr)
}

/// The group key: every field length-prefixed, so no address content can make two
/// different groups collide.
pub fn group_key(meta: &GroupMeta) -> String {
    let part = |s: &str| format!("{}:{s}", s.len());
    let scheme = match meta.scheme {
        Some(ConcatScheme::Udh8) => "u8",
        Some(ConcatScheme::Udh16) => "u16",
        Some(ConcatScheme::Sar) => "sar",
        None => "single",
    };
    format!(
        "{}|{}|{}|{scheme}|{}|{}",
        part(&meta.account),
        part(&address_key(&meta.source)),
        part(&address_key(&meta.dest)),
        meta.reference.unwrap_or(0),
        meta.total
    )
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn segment(json: &str) -> StoredSegment {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn user_data_is_the_tail_of_raw_after_the_udh() {
        // 05 00 03 2a 02 01 = UDH (IEI 0x00), then "hi".
        let s = segment(r#"{"dc":0,"esm":64,"rd":1,"raw":"0500032a02016869","uo":6}"#);
        assert_eq!(s.user_data().unwrap(), b"hi");
        let plain = segment(r#"{"dc":0,"esm":0,"rd":1,"raw":"6869"}"#);
        assert_eq!(plain.user_data().unwrap(), b"hi");
        let json = serde_json::to_string(&plain).unwrap();
        assert!(
            !json.contains("\"ud\"") && !json.contains("\"uo\""),
            "{json}"
        );
    }

    #[test]
    fn segments_stored_with_their_user_data_still_read() {
        let old = segment(r#"{"dc":0,"esm":64,"rd":1,"ud":"6869","raw":"0500032a02016869"}"#);
        assert_eq!(old.user_data().unwrap(), b"hi");
    }

    #[test]
    fn an_offset_beyond_raw_is_corrupt_not_a_panic() {
        let bad = segment(r#"{"dc":0,"esm":64,"rd":1,"raw":"6869","uo":9}"#);
        assert!(matches!(bad.user_data(), Err(StoreError::Corrupt(_))));
    }
}
