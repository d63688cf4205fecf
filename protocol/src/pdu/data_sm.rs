//! data_sm (reference §3.9). Its response is a [`MessageIdResp`](super::MessageIdResp).

use bytes::{BufMut, Bytes, BytesMut};

use crate::cstring::COctetString;
use crate::error::PduError;
use crate::parse::{cstring, u8_field};
use crate::tlv::{self, encode_tlvs, parse_tlvs, Tlv};

/// Body of `data_sm`. User data normally travels in `message_payload`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct DataSm {
    /// C(6).
    pub service_type: COctetString,
    /// TON of `source_addr`.
    pub source_addr_ton: u8,
    /// NPI of `source_addr`.
    pub source_addr_npi: u8,
    /// C(65).
    pub source_addr: COctetString,
    /// TON of `destination_addr`.
    pub dest_addr_ton: u8,
    /// NPI of `destination_addr`.
    pub dest_addr_npi: u8,
    /// C(65).
    pub destination_addr: COctetString,
    /// Reference §6.1.
    pub esm_class: u8,
    /// Reference §6.2.
    pub registered_delivery: u8,
    /// Reference §6.3.
    pub data_coding: u8,
    /// Optional parameters, in wire order.
    pub tlvs: Vec<Tlv>,
}

/// Decodes a data_sm body.
pub fn parse_data_sm(body: &Bytes) -> Result<DataSm, PduError> {
    let i = &body[..];
    let (i, service_type) = cstring(body, i, 6, "service_type")?;
    let (i, source_addr_ton) = u8_field(i, "source_addr_ton")?;
    let (i, source_addr_npi) = u8_field(i, "source_addr_npi")?;
    let (i, source_addr) = cstring(body, i, 65, "source_addr")?;
    let (i, dest_addr_ton) = u8_field(i, "dest_addr_ton")?;
    let (i, dest_addr_npi) = u8_field(i, "dest_addr_npi")?;
    let (i, destination_addr) = cstring(body, i, 65, "destination_addr")?;
    let (i, esm_class) = u8_field(i, "esm_class")?;
    let (i, registered_delivery) = u8_field(i, "registered_delivery")?;
    let (i, data_coding) = u8_field(i, "data_coding")?;
    Ok(DataSm {
        service_type,
        source_addr_ton,
        source_addr_npi,
        source_addr,
        dest_addr_ton,
        dest_addr_npi,
        destination_addr,
        esm_class,
        registered_delivery,
        data_coding,
        tlvs: parse_tlvs(body, i)?,
    })
}

impl DataSm {
    /// Appends the body.
    pub fn encode(&self, dst: &mut BytesMut) {
        self.service_type.encode(dst);
        dst.put_u8(self.source_addr_ton);
        dst.put_u8(self.source_addr_npi);
        self.source_addr.encode(dst);
        dst.put_u8(self.dest_addr_ton);
        dst.put_u8(self.dest_addr_npi);
        self.destination_addr.encode(dst);
        dst.put_slice(&[self.esm_class, self.registered_delivery, self.data_coding]);
        encode_tlvs(&self.tlvs, dst);
    }

    /// The user data: `message_payload`, or empty when absent.
    pub fn user_data(&self) -> &[u8] {
        tlv::message_payload(&self.tlvs).map_or(&[], |b| &b[..])
    }

    /// `(sar_msg_ref_num, sar_total_segments, sar_segment_seqnum)`.
    pub fn sar(&self) -> (Option<u16>, Option<u8>, Option<u8>) {
        tlv::sar(&self.tlvs)
    }

    /// Concatenation info (UDH IEI 0x00/0x08 when esm_class has UDHI, else a complete
    /// set of SAR TLVs; `None` = single part) and the user data without its UDH.
    pub fn concat(
        &self,
    ) -> Result<(Option<crate::udh::ConcatInfo>, &[u8]), crate::udh::ConcatError> {
        crate::udh::concat_info_in(self.esm_class, self.user_data(), &self.tlvs)
    }
}
