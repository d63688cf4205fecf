//! cancel_sm (reference §3.11). cancel_sm_resp is header only.

use bytes::{BufMut, Bytes, BytesMut};

use crate::cstring::COctetString;
use crate::error::PduError;
use crate::parse::{cstring, u8_field};
use crate::tlv::{encode_tlvs, parse_tlvs, Tlv};

/// Body of `cancel_sm`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct CancelSm {
    /// C(6).
    pub service_type: COctetString,
    /// C(65): one message, or NULL to cancel by source + destination.
    pub message_id: COctetString,
    /// TON of `source_addr`.
    pub source_addr_ton: u8,
    /// NPI of `source_addr`.
    pub source_addr_npi: u8,
    /// C(21).
    pub source_addr: COctetString,
    /// TON of `destination_addr`.
    pub dest_addr_ton: u8,
    /// NPI of `destination_addr`.
    pub dest_addr_npi: u8,
    /// C(21).
    pub destination_addr: COctetString,
    /// TLVs: none in 3.4; any present are kept.
    pub tlvs: Vec<Tlv>,
}

/// Decodes a cancel_sm body.
pub fn parse_cancel_sm(body: &Bytes) -> Result<CancelSm, PduError> {
    let (i, service_type) = cstring(body, &body[..], 6, "service_type")?;
    let (i, message_id) = cstring(body, i, 65, "message_id")?;
    let (i, source_addr_ton) = u8_field(i, "source_addr_ton")?;
    let (i, source_addr_npi) = u8_field(i, "source_addr_npi")?;
    let (i, source_addr) = cstring(body, i, 21, "source_addr")?;
    let (i, dest_addr_ton) = u8_field(i, "dest_addr_ton")?;
    let (i, dest_addr_npi) = u8_field(i, "dest_addr_npi")?;
    let (i, destination_addr) = cstring(body, i, 21, "destination_addr")?;
    Ok(CancelSm {
        service_type,
        message_id,
        source_addr_ton,
        source_addr_npi,
        source_addr,
        dest_addr_ton,
        dest_addr_npi,
        destination_addr,
        tlvs: parse_tlvs(body, i)?,
    })
}

impl CancelSm {
    /// Appends the body.
    pub fn encode(&self, dst: &mut BytesMut) {
        self.service_type.encode(dst);
        self.message_id.encode(dst);
        dst.put_u8(self.source_addr_ton);
        dst.put_u8(self.source_addr_npi);
        self.source_addr.encode(dst);
        dst.put_u8(self.dest_addr_ton);
        dst.put_u8(self.dest_addr_npi);
        self.destination_addr.encode(dst);
        encode_tlvs(&self.tlvs, dst);
    }
}
