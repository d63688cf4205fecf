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

/// One received segment. A multi-part message keeps it in the segment's `P:m:<id>`
/// key as a [record](StoredSegment::record_tail) (binary user data), a single-part
/// message in the `m:1` field of its hash (the same record, with an empty group key);
/// messages stored by earlier versions as JSON in an `s:<seq>` field of the group
/// hash. Short field names: this is stored per segment
/// at thousands per second.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredSegment {
    /// data_coding
    pub dc: u8,
    /// esm_class
    pub esm: u8,
    /// registered_delivery
    pub rd: u8,
    /// short_message / message_payload as received (hex in JSON)
    #[serde(with = "hex_bytes")]
    pub raw: Vec<u8>,
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
            raw: req.raw_user_data.to_vec(),
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
        match self.raw.get(self.uo..) {
            Some(ud) => Ok(ud.to_vec()),
            None => Err(StoreError::Corrupt(format!(
                "segment user data offset {} beyond its {} octets",
                self.uo,
                self.raw.len()
            ))),
        }
    }

    /// What the node sends the submit script for a multi-part segment, which stores
    /// `<gid or => <len of gk> <gk>` LF `<received_ms> ` + this as the segment's
    /// `P:m:<id>` value (see [`SegmentKey`]): `<dc> <esm> <rd> <uo> <rid or ->` LF,
    /// then the raw short_message as is. One string per segment (the key that
    /// query/cancel/replace need anyway) instead of three hash fields with the data
    /// in hex JSON: the group hash keeps only small fields, so Redis stores it as a
    /// compact listpack, and the user data is stored once, in binary.
    pub fn record_tail(&self) -> Vec<u8> {
        let head = format!(
            "{} {} {} {} {}\n",
            self.dc,
            self.esm,
            self.rd,
            self.uo,
            self.rid.as_deref().unwrap_or("-")
        );
        let mut out = Vec::with_capacity(head.len() + self.raw.len());
        out.extend_from_slice(head.as_bytes());
        out.extend_from_slice(&self.raw);
        out
    }

    /// Reads the segment record of a whole `P:m:<id>` value: (received_ms, segment).
    pub fn from_record(v: &[u8]) -> Result<(i64, StoredSegment), StoreError> {
        SegmentKey::parse(v)?
            .record
            .ok_or_else(|| StoreError::Corrupt("segment key without a record".into()))
    }
}

/// A `P:m:<message_id>` value: `<gid> <gk>` (versions before segment records) or
/// `<gid> <len> <gk>` LF segment record. The group key is length-prefixed because it
/// may hold any octet but NUL (addresses are C-Octet strings), LF and space included.
/// A gid of `=` is the record's own message_id (the group's first segment, whose id
/// names the group): [`SegmentKey::gid_of`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentKey {
    pub gid: String,
    pub gk: String,
    /// (received_ms, segment); `None` in the older form.
    pub record: Option<(i64, StoredSegment)>,
}

impl SegmentKey {
    /// The group id, given the message_id whose record this is.
    pub fn gid_of<'a>(&'a self, own: &'a str) -> &'a str {
        if self.gid == "=" {
            own
        } else {
            &self.gid
        }
    }

    pub fn parse(v: &[u8]) -> Result<SegmentKey, StoreError> {
        let corrupt = |what: &str| StoreError::Corrupt(format!("segment key value: {what}"));
        let text = |b: &[u8]| {
            std::str::from_utf8(b)
                .map(str::to_owned)
                .map_err(|_| corrupt("not text"))
        };
        let sp = v
            .iter()
            .position(|b| *b == b' ')
            .ok_or_else(|| corrupt("no group key"))?;
        let gid = text(&v[..sp])?;
        let rest = &v[sp + 1..];
        // The length: digits, then a space. An older value's group key starts with
        // "<digits>:", never with digits and a space.
        let digits = rest.iter().take_while(|b| b.is_ascii_digit()).count();
        if digits == 0 || rest.get(digits) != Some(&b' ') {
            return Ok(SegmentKey {
                gid,
                gk: text(rest)?,
                record: None,
            });
        }
        let len: usize = text(&rest[..digits])?
            .parse()
            .map_err(|_| corrupt("group key length"))?;
        let gk_start = digits + 1;
        let gk = rest
            .get(gk_start..gk_start + len)
            .ok_or_else(|| corrupt("group key shorter than its length"))?;
        let after = &rest[gk_start + len..];
        let record = after
            .strip_prefix(b"\n")
            .ok_or_else(|| corrupt("no LF after the group key"))?;
        let nl = record
            .iter()
            .position(|b| *b == b'\n')
            .ok_or_else(|| corrupt("no segment header"))?;
        let head = std::str::from_utf8(&record[..nl]).map_err(|_| corrupt("header"))?;
        let f: Vec<&str> = head.split(' ').collect();
        let [received, dc, esm, rd, uo, rid] = f[..] else {
            return Err(corrupt("header fields"));
        };
        let num = |s: &str| s.parse::<i64>().map_err(|_| corrupt("header number"));
        let byte = |s: &str| s.parse::<u8>().map_err(|_| corrupt("header octet"));
        let segment = StoredSegment {
            dc: byte(dc)?,
            esm: byte(esm)?,
            rd: byte(rd)?,
            raw: record[nl + 1..].to_vec(),
            uo: num(uo)?
                .try_into()
                .map_err(|_| corrupt("user data offset"))?,
            ud: None,
            rid: (rid != "-").then(|| rid.to_owned()),
        };
        Ok(SegmentKey {
            gid,
            gk: text(gk)?,
            record: Some((num(received)?, segment)),
        })
    }
}

/// `Vec<u8>` as a hex string in JSON (segments written as `s:<seq>` JSON).
mod hex_bytes {
    use serde::de::{self, Visitor};
    use serde::{Deserializer, Serializer};

    // Through a buffer, not hex::encode/decode's char iterators: those were ~2 % of
    // the node's CPU at 20k single-part submits/s (perf).
    pub fn serialize<S: Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
        let mut buf = vec![0u8; v.len() * 2];
        hex::encode_to_slice(v, &mut buf).map_err(serde::ser::Error::custom)?;
        s.serialize_str(std::str::from_utf8(&buf).map_err(serde::ser::Error::custom)?)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        struct Hex;
        impl<'de> Visitor<'de> for Hex {
            type Value = Vec<u8>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a hex string")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Vec<u8>, E> {
                let mut out = vec![0u8; v.len() / 2];
                hex::decode_to_slice(v, &mut out).map_err(E::custom)?;
                Ok(out)
            }
        }
        d.deserialize_str(Hex)
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
    /// Reads the flat `HGETALL` reply of a finished group hash, with the `m:<seq>`
    /// segment records the LEASE/FRESH scripts add beside it.
    pub fn from_fields(fields: HashMap<String, Vec<u8>>) -> Result<FinishedGroup, StoreError> {
        let get = |k: &str| -> Result<&str, StoreError> {
            let v = fields
                .get(k)
                .ok_or_else(|| StoreError::Corrupt(format!("finished group lacks field {k:?}")))?;
            std::str::from_utf8(v)
                .map_err(|_| StoreError::Corrupt(format!("field {k:?} is not text")))
        };
        let int = |k: &str| -> Result<i64, StoreError> {
            get(k)?
                .parse()
                .map_err(|_| StoreError::Corrupt(format!("field {k:?} is not a number")))
        };
        let meta = match fields.get("meta") {
            Some(_) => serde_json::from_str(get("meta")?)
                .map_err(|e| StoreError::Corrupt(format!("group meta: {e}")))?,
            // Messages keep their facts in the group key and two small fields, so that
            // a pending hash stays a listpack (see StoredSegment::record_tail); only
            // single-part messages of versions before 2026-12-05 have meta.
            None => GroupMeta::from_key(
                &match fields.get("gk") {
                    Some(_) => get("gk")?.to_owned(),
                    // A multi-part group stored since 2026-12-05 has no gk field
                    // (its pending key said it): every segment record names it.
                    None => fields
                        .iter()
                        .filter(|(k, _)| k.starts_with("m:"))
                        .find_map(|(_, v)| SegmentKey::parse(v).ok())
                        .map(|k| k.gk)
                        .filter(|gk| !gk.is_empty())
                        .ok_or_else(|| {
                            StoreError::Corrupt("finished group lacks field \"gk\"".into())
                        })?,
                },
                fields
                    .get("st")
                    .map_or("", |v| std::str::from_utf8(v).unwrap_or("")),
                expiry_mode(fields.get("x").map(Vec::as_slice)),
            )?,
        };
        let kind = match get("state")? {
            "complete" => FinishKind::Complete,
            "expired" => FinishKind::Expired,
            "cancelled" => FinishKind::Cancelled,
            other => return Err(StoreError::Corrupt(format!("unknown state {other:?}"))),
        };
        let mut segments = Vec::new();
        for (k, v) in &fields {
            let seq = |s: &str| -> Result<u8, StoreError> {
                s.parse()
                    .map_err(|_| StoreError::Corrupt(format!("segment field {k:?}")))
            };
            let (seq, received_ms, data) = if let Some(n) = k.strip_prefix("s:") {
                let n = seq(n)?;
                let text = std::str::from_utf8(v)
                    .map_err(|_| StoreError::Corrupt(format!("segment {n} is not text")))?;
                let data: StoredSegment = serde_json::from_str(text)
                    .map_err(|e| StoreError::Corrupt(format!("segment {n}: {e}")))?;
                // A single-part message written since 2026-12-05 has no r:1: it
                // was received when it was submitted.
                let r = format!("r:{n}");
                let received = if fields.contains_key(&r) {
                    int(&r)?
                } else {
                    int("sub")?
                };
                (n, received, data)
            } else if let Some(n) = k.strip_prefix("m:") {
                let n = seq(n)?;
                let (received, data) = StoredSegment::from_record(v)?;
                (n, received, data)
            } else {
                continue;
            };
            // No i:1 (a single-part message since 2026-12-05): its id is the
            // group's.
            let i = format!("i:{seq}");
            let id = if fields.contains_key(&i) || meta.total != 1 {
                get(&i)?
            } else {
                get("gid")?
            };
            segments.push(FinishedSegment {
                seq,
                message_id: id.to_owned(),
                received_ms,
                data,
            });
        }
        segments.sort_by_key(|s| s.seq);
        Ok(FinishedGroup {
            gid: get("gid")?.to_owned(),
            meta,
            deadline_ms: int("dl")?,
            submitted_ms: int("sub")?,
            // No fin: a single-part message, finished when submitted.
            finished_ms: if fields.contains_key("fin") {
                int("fin")?
            } else {
                int("sub")?
            },
            kind,
            node: get("node")?.to_owned(),
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

/// The `x` field of a multi-part group hash: how its account wants expiry handled.
pub fn expiry_mode_code(m: ExpiryMode) -> &'static str {
    match m {
        ExpiryMode::DeliverPartial => "p",
        ExpiryMode::ExpireWhole => "w",
    }
}

/// Reads an `x` field (absent: the default, as before the field existed).
pub fn expiry_mode(x: Option<&[u8]>) -> ExpiryMode {
    match x {
        Some(b"w") => ExpiryMode::ExpireWhole,
        _ => ExpiryMode::DeliverPartial,
    }
}

/// Reads a `ton.npi.addr` address key back.
fn parse_address_key(s: &str) -> Option<Address> {
    let mut it = s.splitn(3, '.');
    Some(Address {
        ton: it.next()?.parse().ok()?,
        npi: it.next()?.parse().ok()?,
        addr: it.next()?.to_owned(),
    })
}

impl GroupMeta {
    /// The facts of a message as its first segment gives them.
    pub fn of(req: &SubmitRequest) -> GroupMeta {
        GroupMeta {
            account: req.policy.system_id.clone(),
            service_type: req.service_type.clone(),
            source: req.source.clone(),
            dest: req.dest.clone(),
            scheme: req.concat.map(|c| c.scheme),
            reference: req.concat.map(|c| c.reference),
            total: req.concat.map_or(1, |c| c.total.max(1)),
            expiry_mode: req.policy.expiry_mode,
        }
    }

    /// The facts of a message from its [group key](group_key) and the two that are
    /// not part of it.
    pub fn from_key(
        gk: &str,
        service_type: &str,
        expiry_mode: ExpiryMode,
    ) -> Result<GroupMeta, StoreError> {
        let corrupt = || StoreError::Corrupt(format!("group key {gk:?}"));
        // A length-prefixed part `<len>:<text>` followed by '|'.
        fn part(rest: &str) -> Option<(&str, &str)> {
            let (len, tail) = rest.split_once(':')?;
            let len: usize = len.parse().ok()?;
            let text = tail.get(..len)?;
            Some((text, tail.get(len..)?.strip_prefix('|')?))
        }
        let (account, rest) = part(gk).ok_or_else(corrupt)?;
        let (source, rest) = part(rest).ok_or_else(corrupt)?;
        let (dest, rest) = part(rest).ok_or_else(corrupt)?;
        let mut tail = rest.split('|');
        let scheme = match tail.next() {
            Some("u8") => Some(ConcatScheme::Udh8),
            Some("u16") => Some(ConcatScheme::Udh16),
            Some("sar") => Some(ConcatScheme::Sar),
            Some("single") => None,
            _ => return Err(corrupt()),
        };
        let reference: u16 = tail
            .next()
            .and_then(|r| r.parse().ok())
            .ok_or_else(corrupt)?;
        let total: u8 = tail
            .next()
            .and_then(|t| t.parse().ok())
            .ok_or_else(corrupt)?;
        Ok(GroupMeta {
            account: account.to_owned(),
            service_type: service_type.to_owned(),
            source: parse_address_key(source).ok_or_else(corrupt)?,
            dest: parse_address_key(dest).ok_or_else(corrupt)?,
            scheme,
            reference: scheme.map(|_| reference),
            total,
            expiry_mode,
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// Account `test`, 1.1.1 to 1.1.2.
    fn test_meta(
        service_type: &str,
        scheme: Option<ConcatScheme>,
        reference: Option<u16>,
        total: u8,
    ) -> GroupMeta {
        let addr = |a: &str| Address {
            ton: 1,
            npi: 1,
            addr: a.into(),
        };
        GroupMeta {
            account: "test".into(),
            service_type: service_type.into(),
            source: addr("1"),
            dest: addr("2"),
            scheme,
            reference,
            total,
            expiry_mode: ExpiryMode::DeliverPartial,
        }
    }

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
    fn raw_is_hex_in_json_and_reads_back() {
        let seg = segment(r#"{"dc":8,"esm":0,"rd":1,"raw":"00ff10Ab"}"#);
        assert_eq!(seg.raw, [0x00, 0xff, 0x10, 0xab]);
        let json = serde_json::to_string(&seg).unwrap();
        assert!(json.contains(r#""raw":"00ff10ab""#), "{json}");
        assert_eq!(segment(&json), seg);
        for bad in ["0", "zz", "abc"] {
            let json = format!(r#"{{"dc":0,"esm":0,"rd":0,"raw":"{bad}"}}"#);
            assert!(
                serde_json::from_str::<StoredSegment>(&json).is_err(),
                "{bad}"
            );
        }
    }

    #[test]
    fn an_offset_beyond_raw_is_corrupt_not_a_panic() {
        let bad = segment(r#"{"dc":0,"esm":64,"rd":1,"raw":"6869","uo":9}"#);
        assert!(matches!(bad.user_data(), Err(StoreError::Corrupt(_))));
    }

    #[test]
    fn a_segment_record_keeps_binary_data_and_reads_back() {
        let seg = StoredSegment {
            dc: 8,
            esm: 0x40,
            rd: 1,
            // UDH, then UCS-2 with LF and NUL octets in it.
            raw: vec![5, 0, 3, 0x2a, 2, 1, 0x00, 0x0a, 0xd8, 0x3d, 0x0a, 0x00],
            uo: 6,
            ud: None,
            rid: Some("0000000100000000002A".into()),
        };
        // A group key with LF and spaces in it (addresses may hold any octet but NUL).
        let gk = "4:test|9:1.1.a\nb c|";
        let mut record =
            format!("00000001000000000001 {} {gk}\n1764000000123 ", gk.len()).into_bytes();
        record.extend(seg.record_tail());
        let key = SegmentKey::parse(&record).unwrap();
        assert_eq!(
            (key.gid.as_str(), key.gk.as_str()),
            ("00000001000000000001", gk)
        );
        let (received, back) = StoredSegment::from_record(&record).unwrap();
        assert_eq!(received, 1_764_000_000_123);
        assert_eq!(back, seg);
        assert_eq!(
            back.user_data().unwrap(),
            vec![0x00, 0x0a, 0xd8, 0x3d, 0x0a, 0x00]
        );
        let plain = StoredSegment { rid: None, ..seg };
        let mut record = b"g 1 k\n1 ".to_vec();
        record.extend(plain.record_tail());
        assert_eq!(StoredSegment::from_record(&record).unwrap().1, plain);
        assert!(StoredSegment::from_record(b"g 1 k\n1 2 3").is_err());
        assert!(StoredSegment::from_record(b"g 9 k\n1 2 3").is_err());
        // The older form: "<gid> <gk>", no record.
        let old = SegmentKey::parse(b"G 4:te s|12:1.1.x").unwrap();
        assert_eq!((old.gk.as_str(), old.record), ("4:te s|12:1.1.x", None));
    }

    #[test]
    fn group_facts_read_back_from_the_group_key() {
        let meta = GroupMeta {
            account: "a|c:c.t".into(),
            service_type: "WAP".into(),
            source: Address {
                ton: 5,
                npi: 0,
                addr: "Alpha.|1:x".into(),
            },
            dest: Address {
                ton: 1,
                npi: 1,
                addr: "447700900001".into(),
            },
            scheme: Some(ConcatScheme::Udh16),
            reference: Some(65_535),
            total: 3,
            expiry_mode: ExpiryMode::ExpireWhole,
        };
        let back = GroupMeta::from_key(&group_key(&meta), "WAP", ExpiryMode::ExpireWhole).unwrap();
        assert_eq!(back, meta);
        assert!(GroupMeta::from_key("4:te|x", "", ExpiryMode::DeliverPartial).is_err());
        assert_eq!(
            expiry_mode(Some(expiry_mode_code(ExpiryMode::ExpireWhole).as_bytes())),
            ExpiryMode::ExpireWhole
        );
        assert_eq!(expiry_mode(None), ExpiryMode::DeliverPartial);
    }

    #[test]
    fn a_single_part_message_reads_the_same_in_each_stored_form() {
        let meta = test_meta("WAP", None, None, 1);
        let seg = StoredSegment {
            dc: 0,
            esm: 0,
            rd: 1,
            raw: b"hi\n\0".to_vec(),
            uo: 0,
            ud: None,
            rid: None,
        };
        let mut record = b"= 0 \n50 ".to_vec();
        record.extend(seg.record_tail());
        // Since 2026-12-05: facts as the group key plus st, the segment a record.
        let now: Vec<(&str, Vec<u8>)> = vec![
            ("gid", b"M1".to_vec()),
            ("gk", group_key(&meta).into_bytes()),
            ("st", b"WAP".to_vec()),
            ("dl", b"900".to_vec()),
            ("sub", b"50".to_vec()),
            ("m:1", record),
            ("state", b"complete".to_vec()),
            ("node", b"n".to_vec()),
        ];
        // Earlier: meta and the segment as JSON, the derivable fields written too.
        let before: Vec<(&str, Vec<u8>)> = vec![
            ("gid", b"M1".to_vec()),
            ("meta", serde_json::to_vec(&meta).unwrap()),
            ("dl", b"900".to_vec()),
            ("sub", b"50".to_vec()),
            ("acct", b"test".to_vec()),
            ("src", b"1.1.1".to_vec()),
            ("s:1", serde_json::to_vec(&seg).unwrap()),
            ("state", b"complete".to_vec()),
            ("node", b"n".to_vec()),
            ("gk", group_key(&meta).into_bytes()),
            ("total", b"1".to_vec()),
            ("n", b"1".to_vec()),
            ("r:1", b"50".to_vec()),
            ("i:1", b"M1".to_vec()),
            ("fin", b"50".to_vec()),
        ];
        let read = |f: Vec<(&str, Vec<u8>)>| {
            FinishedGroup::from_fields(f.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())
                .unwrap()
        };
        let (a, b) = (read(now), read(before));
        assert_eq!(a, b);
        assert_eq!(a.meta, meta);
        assert_eq!((a.finished_ms, a.submitted_ms), (50, 50));
        assert_eq!(a.segments.len(), 1);
        assert_eq!(
            (a.segments[0].message_id.as_str(), a.segments[0].received_ms),
            ("M1", 50)
        );
        assert_eq!(a.segments[0].data, seg);
    }

    #[test]
    fn a_finished_group_reads_from_small_fields_and_segment_records() {
        let meta = test_meta("", Some(ConcatScheme::Sar), Some(7), 2);
        let gk = group_key(&meta);
        let seg = StoredSegment {
            dc: 0,
            esm: 0,
            rd: 1,
            raw: b"hi".to_vec(),
            uo: 0,
            ud: None,
            rid: None,
        };
        let mut record = format!("G1 {} {gk}\n55 ", gk.len()).into_bytes();
        record.extend(seg.record_tail());
        let fields: HashMap<String, Vec<u8>> = [
            ("gid", b"G1".to_vec()),
            ("gk", gk.into_bytes()),
            ("st", Vec::new()),
            ("x", b"p".to_vec()),
            ("dl", b"100".to_vec()),
            ("sub", b"50".to_vec()),
            ("fin", b"101".to_vec()),
            ("state", b"expired".to_vec()),
            ("node", b"n".to_vec()),
            ("i:2", b"M2".to_vec()),
            ("m:2", record),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        let mut without_gk = fields.clone();
        without_gk.remove("gk");
        let g = FinishedGroup::from_fields(fields).unwrap();
        // Without a gk field (a group stored since 2026-12-05): the records name it.
        assert_eq!(FinishedGroup::from_fields(without_gk).unwrap(), g);
        assert_eq!(g.meta, meta);
        assert_eq!(g.kind, FinishKind::Expired);
        assert_eq!(g.missing(), vec![1]);
        assert_eq!(g.segments.len(), 1);
        assert_eq!((g.segments[0].seq, g.segments[0].received_ms), (2, 55));
        assert_eq!(g.segments[0].message_id, "M2");
        assert_eq!(g.segments[0].data, seg);
    }
}
