//! What the store keeps in Redis about a message, and how it reads it back.

pub mod outcome;
pub mod pending;

use std::collections::HashMap;

use smpp_protocol::receipt::ReceiptStat;

use crate::service::{Address, ConcatScheme, ExpiryMode, SubmitRequest};
use crate::store::error::StoreError;

/// Facts of a message fixed by its first segment: its group key
/// ([`group_key`]) plus the service_type and expiry mode fields.
#[derive(Debug, Clone, PartialEq, Eq)]
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

/// One received segment. A multi-part message's segments are packed in its value
/// ([`pending`]), pending and finished alike (field `v` of its finished hash); a
/// single-part message's is the `m:1` field of its hash, a
/// [record](StoredSegment::from_record) (binary user data).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredSegment {
    /// data_coding
    pub dc: u8,
    /// esm_class
    pub esm: u8,
    /// registered_delivery
    pub rd: u8,
    /// short_message / message_payload as received
    pub raw: Vec<u8>,
    /// Where the user data starts in `raw`: the UDH's length (0 without UDHI). The
    /// user data is always the tail of what was received, so it is not stored twice.
    pub uo: usize,
    /// The message_id the ESME knows this segment by when it is not its own (a
    /// submit_multi destination after the first): its receipts name this id.
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
            rid: req.receipt_id.clone(),
        }
    }

    /// The id receipts of this segment carry: the one the ESME was given.
    pub fn receipt_id<'a>(&'a self, own: &'a str) -> &'a str {
        self.rid.as_deref().unwrap_or(own)
    }

    pub fn user_data(&self) -> Result<Vec<u8>, StoreError> {
        match self.raw.get(self.uo..) {
            Some(ud) => Ok(ud.to_vec()),
            None => Err(StoreError::Corrupt(format!(
                "segment user data offset {} beyond its {} octets",
                self.uo,
                self.raw.len()
            ))),
        }
    }

    /// What the node sends the submit script for a segment: `<dc> <esm> <rd> <uo> <rid
    /// or ->` LF, then the raw short_message as is (user data stored once, in binary).
    /// Its length is what the segment counts against the octet limits; a finished
    /// record is `= 0 ` LF `<received_ms> ` and this.
    pub fn record_tail(&self) -> Vec<u8> {
        let head = self.record_head();
        let mut out = Vec::with_capacity(head.len() + self.raw.len());
        out.extend_from_slice(head.as_bytes());
        out.extend_from_slice(&self.raw);
        out
    }

    /// How many octets [`record_tail`](Self::record_tail) has: what the store counts
    /// against the account's `max_pending_bytes` for this segment.
    pub fn record_len(&self) -> usize {
        self.record_head().len() + self.raw.len()
    }

    fn record_head(&self) -> String {
        format!(
            "{} {} {} {} {}\n",
            self.dc,
            self.esm,
            self.rd,
            self.uo,
            self.rid.as_deref().unwrap_or("-")
        )
    }

    /// Reads a finished segment record (`m:1` of a single-part message's hash):
    /// `= 0 ` LF `<received_ms> <dc> <esm> <rd> <uo> <rid or ->` LF raw.
    pub fn from_record(v: &[u8]) -> Result<(i64, StoredSegment), StoreError> {
        let corrupt = |what: &str| StoreError::Corrupt(format!("segment record: {what}"));
        let record = v
            .strip_prefix(b"= 0 \n")
            .ok_or_else(|| corrupt("not a segment record"))?;
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
            rid: (rid != "-").then(|| rid.to_owned()),
        };
        Ok((num(received)?, segment))
    }
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
    /// Its route forwards it to an account, and deliveries are still under way
    /// (state `routed`: not in the outbox; the releaser queues its deliveries).
    Routed,
    /// Complete, waiting for its schedule_delivery_time (state `sched`): nothing is
    /// owed yet.
    Scheduled,
    /// Every delivery of a forwarded message ended (state `done`): each segment's
    /// [`DeliveryResult`], or none when its delivery deadline came first.
    Forwarded,
}

/// How one forwarded (or simulated) segment ended, kept in its message's hash as
/// `r:<seq>` = `<stat letter> <status> <attempts> <at_ms> <node>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryResult {
    /// DELIVRD (the receiver answered ESME_ROK), UNDELIV (a permanent refusal,
    /// `status`), or a simulated profile's pick.
    pub stat: ReceiptStat,
    /// The receiver's command_status, or the simulated `err`.
    pub status: u32,
    /// deliver_sm sent for it, this one included.
    pub attempts: u32,
    pub at_ms: i64,
    /// The node that sent the last one.
    pub node: String,
}

/// The one-letter code of a stat in `r:<seq>` (the Lua of simulated outcomes writes
/// the same letters).
const STAT_LETTERS: [(ReceiptStat, char); 8] = [
    (ReceiptStat::Delivrd, 'D'),
    (ReceiptStat::Undeliv, 'U'),
    (ReceiptStat::Expired, 'E'),
    (ReceiptStat::Deleted, 'X'),
    (ReceiptStat::Acceptd, 'A'),
    (ReceiptStat::Unknown, 'K'),
    (ReceiptStat::Rejectd, 'R'),
    (ReceiptStat::Enroute, 'N'),
];

pub fn stat_letter(stat: ReceiptStat) -> char {
    STAT_LETTERS
        .iter()
        .find(|(s, _)| *s == stat)
        .map_or('K', |(_, c)| *c)
}

impl DeliveryResult {
    pub fn delivered(&self) -> bool {
        self.stat == ReceiptStat::Delivrd
    }

    pub fn encode(&self) -> String {
        format!(
            "{} {} {} {} {}",
            stat_letter(self.stat),
            self.status,
            self.attempts,
            self.at_ms,
            self.node
        )
    }

    pub fn decode(v: &[u8]) -> Result<DeliveryResult, StoreError> {
        let corrupt =
            || StoreError::Corrupt(format!("delivery result {:?}", String::from_utf8_lossy(v)));
        let s = std::str::from_utf8(v).map_err(|_| corrupt())?;
        let f: Vec<&str> = s.splitn(5, ' ').collect();
        let [code, status, attempts, at, node] = f[..] else {
            return Err(corrupt());
        };
        Ok(DeliveryResult {
            stat: STAT_LETTERS
                .iter()
                .find(|(_, c)| code.len() == 1 && code.starts_with(*c))
                .map(|(s, _)| *s)
                .ok_or_else(corrupt)?,
            status: status.parse().map_err(|_| corrupt())?,
            attempts: attempts.parse().map_err(|_| corrupt())?,
            at_ms: at.parse().map_err(|_| corrupt())?,
            node: node.to_owned(),
        })
    }
}

/// One segment of a finished group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FinishedSegment {
    pub seq: u8,
    pub message_id: String,
    pub received_ms: i64,
    pub data: StoredSegment,
    /// A forwarded message's: how this segment's delivery ended (`None`: not yet, or
    /// its delivery deadline came first).
    pub delivery: Option<DeliveryResult>,
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
    /// The account its route forwards it to (`to`); `None`: the store keeps it.
    pub forward_to: Option<String>,
    /// A forwarded message whose deadline passed before it was complete (`pe`): its
    /// received segments are delivered standalone.
    pub partial: bool,
    /// Its route named a `[[simulate]]` profile (`sim`): its segments end as picked.
    pub simulated: bool,
    /// Forwarded as one deliver_sm, its segments' text joined (`ra`).
    pub reassembled: bool,
    /// protocol_id and priority_flag of its first segment (`pp`; 0 0 when absent).
    pub protocol_id: u8,
    pub priority: u8,
}

impl FinishedGroup {
    /// Reads the flat `HGETALL` reply of a finished message's hash: a multi-part
    /// message's segments in its packed value `v` ([`pending`]), a single-part one's
    /// record in `m:1`.
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
        let gk = get("gk")?.to_owned();
        let meta = GroupMeta::from_key(
            &gk,
            fields
                .get("st")
                .map_or("", |v| std::str::from_utf8(v).unwrap_or("")),
            expiry_mode(fields.get("x").map(Vec::as_slice)),
        )?;
        let kind = match get("state")? {
            "complete" => FinishKind::Complete,
            "expired" => FinishKind::Expired,
            "cancelled" => FinishKind::Cancelled,
            "routed" => FinishKind::Routed,
            "done" => FinishKind::Forwarded,
            "sched" => FinishKind::Scheduled,
            other => return Err(StoreError::Corrupt(format!("unknown state {other:?}"))),
        };
        let gid = get("gid")?;
        let mut segments = Vec::new();
        if let Some(v) = fields.get("v") {
            // A multi-part message: its pending value, segments in arrival order; a
            // segment's id is its own (decimal, short) or the gid and its seq.
            for s in pending::segments(v)? {
                let delivery = match fields.get(&format!("r:{}", s.seq)) {
                    Some(v) => Some(DeliveryResult::decode(v)?),
                    None => None,
                };
                segments.push(FinishedSegment {
                    seq: s.seq,
                    message_id: s.id.unwrap_or_else(|| format!("{gid}{:02X}", s.seq)),
                    received_ms: s.received_ms,
                    data: s.data,
                    delivery,
                });
            }
        } else if let Some(record) = fields.get("m:1") {
            // A single-part message: its one record; its id is the gid.
            let (received_ms, data) = StoredSegment::from_record(record)?;
            let delivery = match fields.get("r:1") {
                Some(v) => Some(DeliveryResult::decode(v)?),
                None => None,
            };
            segments.push(FinishedSegment {
                seq: 1,
                message_id: gid.to_owned(),
                received_ms,
                data,
                delivery,
            });
        }
        segments.sort_by_key(|s| s.seq);
        let pp = fields
            .get("pp")
            .and_then(|v| std::str::from_utf8(v).ok())
            .and_then(|v| v.split_once(' '))
            .and_then(|(a, b)| Some((a.parse().ok()?, b.parse().ok()?)))
            .unwrap_or((0, 0));
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
            forward_to: match fields.get("to") {
                Some(_) => Some(get("to")?.to_owned()),
                None => None,
            },
            partial: fields.get("pe").is_some_and(|v| v == b"1"),
            simulated: fields.contains_key("sim"),
            reassembled: fields.contains_key("ra"),
            protocol_id: pp.0,
            priority: pp.1,
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

/// The expiry mode code (`x`) of a multi-part message: how its account wants expiry
/// handled.
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

    fn segment(esm: u8, raw: &[u8], uo: usize) -> StoredSegment {
        StoredSegment {
            dc: 0,
            esm,
            rd: 1,
            raw: raw.to_vec(),
            uo,
            rid: None,
        }
    }

    #[test]
    fn user_data_is_the_tail_of_raw_after_the_udh() {
        // 05 00 03 2a 02 01 = UDH (IEI 0x00), then "hi".
        let s = segment(0x40, b"\x05\x00\x03\x2a\x02\x01hi", 6);
        assert_eq!(s.user_data().unwrap(), b"hi");
        assert_eq!(segment(0, b"hi", 0).user_data().unwrap(), b"hi");
    }

    #[test]
    fn an_offset_beyond_raw_is_corrupt_not_a_panic() {
        let bad = segment(0x40, b"hi", 9);
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
            rid: Some("0000000100000000002A".into()),
        };
        let mut record = b"= 0 \n1764000000123 ".to_vec();
        record.extend(seg.record_tail());
        let (received, back) = StoredSegment::from_record(&record).unwrap();
        assert_eq!(received, 1_764_000_000_123);
        assert_eq!(back, seg);
        assert_eq!(
            back.user_data().unwrap(),
            vec![0x00, 0x0a, 0xd8, 0x3d, 0x0a, 0x00]
        );
        let plain = StoredSegment { rid: None, ..seg };
        let mut record = b"= 0 \n1 ".to_vec();
        record.extend(plain.record_tail());
        assert_eq!(StoredSegment::from_record(&record).unwrap().1, plain);
        assert!(StoredSegment::from_record(b"= 0 \n1 2 3").is_err());
        // A value that does not start as a record is refused, not misread.
        let mut old = b"g 1 k\n1 ".to_vec();
        old.extend(plain.record_tail());
        assert!(StoredSegment::from_record(&old).is_err());
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
    fn a_single_part_message_reads_from_its_eight_fields() {
        let meta = test_meta("WAP", None, None, 1);
        let seg = StoredSegment {
            dc: 0,
            esm: 0,
            rd: 1,
            raw: b"hi\n\0".to_vec(),
            uo: 0,
            rid: None,
        };
        let mut record = b"= 0 \n50 ".to_vec();
        record.extend(seg.record_tail());
        // Facts as the group key plus st, the segment a record.
        let fields: Vec<(&str, Vec<u8>)> = vec![
            ("gid", b"M1".to_vec()),
            ("gk", group_key(&meta).into_bytes()),
            ("st", b"WAP".to_vec()),
            ("dl", b"900".to_vec()),
            ("sub", b"50".to_vec()),
            ("m:1", record),
            ("state", b"complete".to_vec()),
            ("node", b"n".to_vec()),
        ];
        let a = FinishedGroup::from_fields(
            fields.into_iter().map(|(k, v)| (k.to_owned(), v)).collect(),
        )
        .unwrap();
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
            rid: None,
        };
        // Its pending value (`model::pending`): head, then segment 2 received at 55.
        let mut v = vec![8];
        v.extend_from_slice(&100i64.to_be_bytes()[2..]);
        v.extend_from_slice(&50i64.to_be_bytes()[2..]);
        v.extend_from_slice(&[0xAB; 10]);
        v.push(gk.len() as u8);
        v.extend_from_slice(gk.as_bytes());
        v.extend_from_slice(&[2, 0]);
        v.extend_from_slice(&55i64.to_be_bytes()[2..]);
        v.extend_from_slice(&[0, 0, 1, 0, 0, 2]);
        v.extend_from_slice(b"hi");
        let fields: HashMap<String, Vec<u8>> = [
            ("gid", b"G1".to_vec()),
            ("gk", gk.clone().into_bytes()),
            ("st", Vec::new()),
            ("x", b"p".to_vec()),
            ("dl", b"100".to_vec()),
            ("sub", b"50".to_vec()),
            ("fin", b"101".to_vec()),
            ("state", b"expired".to_vec()),
            ("node", b"n".to_vec()),
            ("v", v),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        let mut without_gk = fields.clone();
        without_gk.remove("gk");
        let g = FinishedGroup::from_fields(fields).unwrap();
        assert!(FinishedGroup::from_fields(without_gk).is_err());
        assert_eq!(g.meta, meta);
        assert_eq!(g.kind, FinishKind::Expired);
        assert_eq!(g.missing(), vec![1]);
        assert_eq!(g.segments.len(), 1);
        assert_eq!((g.segments[0].seq, g.segments[0].received_ms), (2, 55));
        assert_eq!(g.segments[0].message_id, "G102", "the gid and its seq");
        assert_eq!(g.segments[0].data, seg);
    }
}
