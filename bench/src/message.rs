//! Builds the submit_sm PDUs of one message: text, UDH or SAR TLVs, validity.

use bytes::{BufMut, Bytes, BytesMut};
use chrono::{DateTime, Utc};
use smpp_protocol::{Body, COctetString, Pdu, SubmitSm, Tlv};

use crate::cli::{Coding, Kind, MixEntry};

/// Source address of every message.
pub const SOURCE: &str = "smppdbench";

/// A small, fast, reproducible PRNG (xorshift64*): the mix and validity spread must not
/// depend on a crate or cost more than the PDU encoding.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    /// Uniform in [0, 1).
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// What a message is made of.
#[derive(Debug, Clone)]
pub struct MessagePlan {
    pub entry: MixEntry,
    pub coding: Coding,
    /// Characters of a single-part message.
    pub chars: usize,
    pub registered_delivery: u8,
    /// validity_period deadline, if any.
    pub deadline: Option<DateTime<Utc>>,
    /// Global message number: picks the destination and the reference.
    pub number: u64,
    pub dest: u64,
}

/// Characters per part: full segments for concatenated messages.
fn part_chars(kind: Kind, coding: Coding, single_chars: usize) -> usize {
    match (kind, coding) {
        (Kind::Single, Coding::Gsm) => single_chars.clamp(1, 160),
        (Kind::Single, Coding::Ucs2) => single_chars.clamp(1, 70),
        (Kind::Udh8 | Kind::Sar, Coding::Gsm) => 153,
        (Kind::Udh16, Coding::Gsm) => 152,
        (Kind::Udh8 | Kind::Sar, Coding::Ucs2) => 67,
        (Kind::Udh16, Coding::Ucs2) => 66,
    }
}

/// `n` characters of text, GSM-safe (ASCII letters, digits, space) and varying per message.
fn text(number: u64, seq: u8, n: usize) -> Vec<u8> {
    const ALPHA: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789 ";
    let mut v = Vec::with_capacity(n);
    let mut x = number.wrapping_mul(31).wrapping_add(u64::from(seq));
    for _ in 0..n {
        v.push(ALPHA[(x % ALPHA.len() as u64) as usize]);
        x = x
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407)
            >> 7;
    }
    v
}

/// Encodes text characters into user data octets of the coding.
fn encode_text(chars: &[u8], coding: Coding, dst: &mut BytesMut) {
    match coding {
        // Unpacked septets: for these characters GSM 03.38 equals ASCII.
        Coding::Gsm => dst.put_slice(chars),
        Coding::Ucs2 => {
            for &c in chars {
                dst.put_u16(u16::from(c));
            }
        }
    }
}

/// Absolute SMPP time with tenths of a second (`YYMMDDhhmmsst00+`).
pub fn validity_field(deadline: DateTime<Utc>) -> COctetString {
    COctetString::try_from(smpp_protocol::time::format_absolute(deadline)).unwrap_or_default()
}

impl MessagePlan {
    /// The submit_sm body of part `seq` (1-based).
    pub fn segment(&self, seq: u8) -> SubmitSm {
        let kind = self.entry.kind;
        let total = self.entry.parts;
        let chars = text(self.number, seq, part_chars(kind, self.coding, self.chars));
        let mut ud = BytesMut::with_capacity(160);
        let mut esm_class = 0u8;
        let mut tlvs = Vec::new();
        let reference = self.number as u16;
        match kind {
            Kind::Single => {}
            Kind::Udh8 => {
                esm_class = smpp_protocol::udh::ESM_CLASS_UDHI;
                ud.put_slice(&[0x05, 0x00, 0x03, reference as u8, total, seq]);
            }
            Kind::Udh16 => {
                esm_class = smpp_protocol::udh::ESM_CLASS_UDHI;
                ud.put_slice(&[0x06, 0x08, 0x04]);
                ud.put_u16(reference);
                ud.put_slice(&[total, seq]);
            }
            Kind::Sar => {
                tlvs.push(Tlv::SarMsgRefNum(reference));
                tlvs.push(Tlv::SarTotalSegments(total));
                tlvs.push(Tlv::SarSegmentSeqnum(seq));
            }
        }
        encode_text(&chars, self.coding, &mut ud);
        SubmitSm {
            source_addr_ton: 5,
            source_addr_npi: 0,
            source_addr: COctetString::from_static(SOURCE).unwrap_or_default(),
            dest_addr_ton: 1,
            dest_addr_npi: 1,
            destination_addr: COctetString::try_from(self.dest.to_string()).unwrap_or_default(),
            esm_class,
            validity_period: self.deadline.map(validity_field).unwrap_or_default(),
            registered_delivery: self.registered_delivery,
            data_coding: match self.coding {
                Coding::Gsm => 0x00,
                Coding::Ucs2 => 0x08,
            },
            short_message: Bytes::from(ud),
            tlvs,
            ..SubmitSm::default()
        }
    }

    /// The whole PDU of part `seq`.
    pub fn pdu(&self, seq: u8, sequence_number: u32) -> Pdu {
        Pdu::new(sequence_number, Body::SubmitSm(self.segment(seq)))
    }
}
