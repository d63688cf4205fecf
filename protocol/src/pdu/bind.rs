//! bind_transmitter / bind_receiver / bind_transceiver, their responses, and
//! outbind (reference §3.1–3.3).

use bytes::{BufMut, Bytes, BytesMut};

use crate::cstring::COctetString;
use crate::error::PduError;
use crate::parse::{cstring, u8_field};
use crate::tlv::{encode_tlvs, parse_tlvs, Tlv};

/// Body of `bind_transmitter`, `bind_receiver` and `bind_transceiver` (identical).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct Bind {
    /// C(16): the ESME's login.
    pub system_id: COctetString,
    /// C(9).
    pub password: COctetString,
    /// C(13): ESME category; may be NULL.
    pub system_type: COctetString,
    /// `0x34` for SMPP 3.4.
    pub interface_version: u8,
    /// TON of `address_range`.
    pub addr_ton: u8,
    /// NPI of `address_range`.
    pub addr_npi: u8,
    /// C(41): address or regular expression served by the ESME.
    pub address_range: COctetString,
    /// TLVs: none defined for bind requests in 3.4; any present are kept.
    pub tlvs: Vec<Tlv>,
}

/// Decodes a bind request body.
pub fn parse_bind(body: &Bytes) -> Result<Bind, PduError> {
    let i = &body[..];
    let (i, system_id) = cstring(body, i, 16, "system_id")?;
    let (i, password) = cstring(body, i, 9, "password")?;
    let (i, system_type) = cstring(body, i, 13, "system_type")?;
    let (i, interface_version) = u8_field(i, "interface_version")?;
    let (i, addr_ton) = u8_field(i, "addr_ton")?;
    let (i, addr_npi) = u8_field(i, "addr_npi")?;
    let (i, address_range) = cstring(body, i, 41, "address_range")?;
    Ok(Bind {
        system_id,
        password,
        system_type,
        interface_version,
        addr_ton,
        addr_npi,
        address_range,
        tlvs: parse_tlvs(body, i)?,
    })
}

impl Bind {
    /// The largest bind request without TLVs (3.4 defines none for binds), 98 octets:
    /// header 16, system_id 16, password 9, system_type 13, interface_version,
    /// addr_ton and addr_npi 1 each, address_range 41.
    pub const MAX_LEN: usize = crate::header::Header::LEN + 16 + 9 + 13 + 1 + 1 + 1 + 41;

    /// Appends the body.
    pub fn encode(&self, dst: &mut BytesMut) {
        self.system_id.encode(dst);
        self.password.encode(dst);
        self.system_type.encode(dst);
        dst.put_u8(self.interface_version);
        dst.put_u8(self.addr_ton);
        dst.put_u8(self.addr_npi);
        self.address_range.encode(dst);
        encode_tlvs(&self.tlvs, dst);
    }
}

/// Body of `bind_*_resp` when present (it is omitted on error).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct BindResp {
    /// C(16): the SMSC's identity.
    pub system_id: COctetString,
    /// TLVs, normally only `sc_interface_version`.
    pub tlvs: Vec<Tlv>,
}

/// Decodes a non-empty bind response body.
pub fn parse_bind_resp(body: &Bytes) -> Result<BindResp, PduError> {
    let (i, system_id) = cstring(body, &body[..], 16, "system_id")?;
    Ok(BindResp {
        system_id,
        tlvs: parse_tlvs(body, i)?,
    })
}

impl BindResp {
    /// Appends the body.
    pub fn encode(&self, dst: &mut BytesMut) {
        self.system_id.encode(dst);
        encode_tlvs(&self.tlvs, dst);
    }
}

/// Body of `outbind` (no response PDU exists).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct Outbind {
    /// C(16): the SMSC's identity.
    pub system_id: COctetString,
    /// C(9).
    pub password: COctetString,
    /// TLVs: none defined in 3.4; any present are kept.
    pub tlvs: Vec<Tlv>,
}

/// Decodes an outbind body.
pub fn parse_outbind(body: &Bytes) -> Result<Outbind, PduError> {
    let (i, system_id) = cstring(body, &body[..], 16, "system_id")?;
    let (i, password) = cstring(body, i, 9, "password")?;
    Ok(Outbind {
        system_id,
        password,
        tlvs: parse_tlvs(body, i)?,
    })
}

impl Outbind {
    /// Appends the body.
    pub fn encode(&self, dst: &mut BytesMut) {
        self.system_id.encode(dst);
        self.password.encode(dst);
        encode_tlvs(&self.tlvs, dst);
    }
}
