//! A pending multi-part message as Redis keeps it: one binary value `P{t}:g:<id>`
//! (written and read by the scripts: `pg_encode_head`/`pg_encode_seg` and
//! `pg_head`/`pg_scan` in `store/redis/lua/lib.lua`), named by an id derived from
//! its group key.
//!
//! The node reads it for the operators' view, for cancel_sm without a message_id
//! (which message and whose) and for replace_sm (the segment as received).

use crate::store::error::StoreError;
use crate::store::model::StoredSegment;

/// Bits of the group ids: exact in a Lua number (a double), so the scripts can
/// format and parse them.
const ID_BITS: u32 = 52;

/// The two ids a group key may be stored under, as 13 hex digits each: the first
/// unless another group key holds it, then the second (`find_group` in SUBMIT). A
/// fixed function of the group key (FNV-1a, then two splitmix64 finalizers), never
/// `std`'s hasher, whose algorithm may change between builds: every node, of any
/// build, must find the same group.
pub fn group_ids(gk: &str) -> (String, String) {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in gk.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    let id = |seed: u64| {
        let mut z = h ^ seed;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^= z >> 31;
        let v = (z & ((1u64 << ID_BITS) - 1)).max(1);
        format!("{v:013X}")
    };
    (id(0x9e37_79b9_7f4a_7c15), id(0x6a09_e667_f3bc_c909))
}

/// The head of a pending group value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingHead {
    pub partition: usize,
    pub deadline_ms: i64,
    pub submitted_ms: i64,
    /// The id the node gave the group's first segment (a hex id without its partition
    /// digits), which makes its gid unique.
    pub uniq: String,
    /// `model::group_key`.
    pub gk: String,
}

impl PendingHead {
    /// Reads the head of a `P{t}:g:<id>` value.
    pub fn parse(v: &[u8]) -> Result<PendingHead, StoreError> {
        Self::read(v).map(|(h, _)| h)
    }

    /// The head, and where the rest (extras, segments) starts.
    fn read(v: &[u8]) -> Result<(PendingHead, usize), StoreError> {
        let corrupt = |what: &str| StoreError::Corrupt(format!("pending group value: {what}"));
        let head = v
            .get(..13)
            .ok_or_else(|| corrupt("shorter than its head"))?;
        let flags = head[0];
        let mut pos = 13;
        let uniq = if flags & 8 != 0 {
            let raw = v.get(pos..pos + 10).ok_or_else(|| corrupt("uniq"))?;
            pos += 10;
            raw.iter().map(|b| format!("{b:02X}")).collect()
        } else {
            let n = usize::from(*v.get(pos).ok_or_else(|| corrupt("uniq length"))?);
            let raw = v.get(pos + 1..pos + 1 + n).ok_or_else(|| corrupt("uniq"))?;
            pos += 1 + n;
            String::from_utf8(raw.to_vec()).map_err(|_| corrupt("uniq is not text"))?
        };
        let n = usize::from(*v.get(pos).ok_or_else(|| corrupt("group key length"))?);
        let gk = v
            .get(pos + 1..pos + 1 + n)
            .ok_or_else(|| corrupt("group key"))?;
        pos += 1 + n;
        if flags & 4 != 0 {
            let len = v
                .get(pos..pos + 2)
                .ok_or_else(|| corrupt("extras length"))?;
            pos += 2 + usize::from(u16::from_be_bytes([len[0], len[1]]));
        }
        Ok((
            PendingHead {
                partition: usize::from(flags >> 4),
                deadline_ms: be48(&head[1..7]),
                submitted_ms: be48(&head[7..13]),
                uniq,
                gk: String::from_utf8(gk.to_vec()).map_err(|_| corrupt("group key is not text"))?,
            },
            pos,
        ))
    }

    /// The gid of the group stored at `id` (13 hex digits): what its outcome and
    /// finished hash are named after, and every hex segment id starts with.
    pub fn gid(&self, id: &str) -> String {
        format!("{:02X}{id}{}", self.partition, self.uniq)
    }
}

/// A time in ms as the value holds it: 6 octets, big-endian (`>I6`).
fn be48(b: &[u8]) -> i64 {
    b.iter().fold(0i64, |n, x| (n << 8) | i64::from(*x))
}

/// One received segment of a pending group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingSegment {
    pub seq: u8,
    pub received_ms: i64,
    pub data: StoredSegment,
    /// Its own message_id (decimal and short formats); `None`: `<gid><seq, 2 hex>`.
    pub id: Option<String>,
}

/// A segment as its pending value holds it, but for the seq, flags and time that
/// SUBMIT puts before it (`pg_encode_seg` in lib.lua writes the same): its flags (2:
/// a rid, 4: its own id, 8: uo in two octets; SUBMIT adds 1 when it was received at the
/// message's submit time) and dc, esm, rd, uo, \[rid\], \[id\], the length and the raw
/// short_message. Packed by the node so that SUBMIT only prefixes it.
pub fn packed_segment(seg: &StoredSegment, own_id: Option<&str>) -> (u8, Vec<u8>) {
    let mut flags = 0u8;
    let mut out = Vec::with_capacity(seg.raw.len() + 16);
    out.extend_from_slice(&[seg.dc, seg.esm, seg.rd]);
    match u8::try_from(seg.uo) {
        Ok(uo) => out.push(uo),
        Err(_) => {
            flags |= 8;
            out.extend_from_slice(&(seg.uo as u16).to_be_bytes());
        }
    }
    for (bit, text) in [(2u8, seg.rid.as_deref()), (4u8, own_id)] {
        if let Some(t) = text {
            flags |= bit;
            out.push(t.len() as u8);
            out.extend_from_slice(t.as_bytes());
        }
    }
    out.extend_from_slice(&(seg.raw.len() as u16).to_be_bytes());
    out.extend_from_slice(&seg.raw);
    (flags, out)
}

/// Reads a value field by field.
struct Cursor<'a> {
    v: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], StoreError> {
        let b = self.v.get(self.pos..self.pos + n).ok_or_else(|| {
            StoreError::Corrupt("pending segment: shorter than its fields".into())
        })?;
        self.pos += n;
        Ok(b)
    }

    fn u16(&mut self) -> Result<usize, StoreError> {
        let b = self.take(2)?;
        Ok(usize::from(u16::from_be_bytes([b[0], b[1]])))
    }

    /// A string of a length octet and its octets.
    fn text(&mut self) -> Result<String, StoreError> {
        let n = usize::from(self.take(1)?[0]);
        String::from_utf8(self.take(n)?.to_vec())
            .map_err(|_| StoreError::Corrupt("pending segment: not text".into()))
    }
}

/// Every segment of a pending group value, in arrival order.
pub fn segments(v: &[u8]) -> Result<Vec<PendingSegment>, StoreError> {
    let (head, pos) = PendingHead::read(v)?;
    let mut c = Cursor { v, pos };
    let mut out = Vec::new();
    while c.pos < v.len() {
        let b = c.take(2)?;
        let (seq, flags) = (b[0], b[1]);
        let received_ms = if flags & 1 != 0 {
            head.submitted_ms
        } else {
            be48(c.take(6)?)
        };
        let b = c.take(3)?;
        let (dc, esm, rd) = (b[0], b[1], b[2]);
        let uo = if flags & 8 != 0 {
            c.u16()?
        } else {
            usize::from(c.take(1)?[0])
        };
        let rid = if flags & 2 != 0 {
            Some(c.text()?)
        } else {
            None
        };
        let id = if flags & 4 != 0 {
            Some(c.text()?)
        } else {
            None
        };
        let len = c.u16()?;
        let raw = c.take(len)?.to_vec();
        out.push(PendingSegment {
            seq,
            received_ms,
            data: StoredSegment {
                dc,
                esm,
                rd,
                raw,
                uo,
                rid,
            },
            id,
        });
    }
    Ok(out)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn group_ids_are_fixed_13_hex_digit_numbers_within_52_bits_and_differ() {
        let (a, b) = group_ids("4:acct|7:1.1.123|7:1.1.456|u8|7|3");
        assert_eq!((a.len(), b.len()), (13, 13));
        assert_ne!(a, b);
        for id in [&a, &b] {
            let v = u64::from_str_radix(id, 16).unwrap();
            assert!(v > 0 && v < 1 << 52, "{id}");
        }
        // Fixed across builds: nodes of different versions must agree, so the
        // function's values are pinned.
        assert_eq!((a.as_str(), b.as_str()), ("ECE053AB97E99", "CEF3591C49274"));
        assert_eq!(
            group_ids("x"),
            ("B4B9263BDEBDD".to_owned(), "E477B218A52BA".to_owned())
        );
        assert_ne!(group_ids("x").0, group_ids("y").0);
    }

    #[test]
    fn a_head_reads_back_partition_times_uniq_and_group_key() {
        let mut v = vec![0x3A | 8];
        v.extend_from_slice(&[0, 0, 0, 0, 1, 2]);
        v.extend_from_slice(&[0, 0, 0, 0, 0, 9]);
        v.extend_from_slice(&[0xAB; 10]);
        v.push(3);
        v.extend_from_slice(b"k|1");
        let h = PendingHead::parse(&v).unwrap();
        assert_eq!(h.partition, 3);
        assert_eq!((h.deadline_ms, h.submitted_ms), (258, 9));
        assert_eq!(h.uniq, "AB".repeat(10));
        assert_eq!(h.gk, "k|1");
        assert_eq!(
            h.gid("0000000000001"),
            format!("030000000000001{}", "AB".repeat(10))
        );
        assert!(PendingHead::parse(&v[..20]).is_err());
        // One segment: seq 2, received at the submit time, dc 0, esm 64, rd 1, uo 6,
        // no rid, its own id "77", 3 octets.
        v.extend_from_slice(&[2, 1 | 4, 0, 64, 1, 6, 2, b'7', b'7', 0, 3, b'a', b'b', b'c']);
        let segs = segments(&v).unwrap();
        assert_eq!(segs.len(), 1);
        assert_eq!((segs[0].seq, segs[0].received_ms), (2, 9));
        assert_eq!(segs[0].id.as_deref(), Some("77"));
        assert_eq!(
            (
                segs[0].data.esm,
                segs[0].data.uo,
                segs[0].data.raw.as_slice()
            ),
            (64, 6, &b"abc"[..])
        );
        assert!(segments(&v[..v.len() - 1]).is_err());
        // What the node packs reads back the same, once SUBMIT put seq, flags and
        // time before it.
        let seg = StoredSegment {
            dc: 8,
            esm: 0x40,
            rd: 1,
            raw: vec![0; 300],
            uo: 300,
            rid: Some("R1".into()),
        };
        let (flags, body) = packed_segment(&seg, Some("123"));
        assert_eq!(flags, 2 | 4 | 8);
        let mut w = v[..v.len() - 14].to_vec();
        w.extend_from_slice(&[5, flags, 0, 0, 0, 0, 0, 7]);
        w.extend_from_slice(&body);
        let back = segments(&w).unwrap();
        assert_eq!((back[0].seq, back[0].received_ms), (5, 7));
        assert_eq!(back[0].data, seg);
        assert_eq!(back[0].id.as_deref(), Some("123"));
    }
}
