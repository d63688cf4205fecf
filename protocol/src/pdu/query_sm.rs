//! query_sm and query_sm_resp (reference §3.10).

use bytes::{BufMut, Bytes, BytesMut};

use crate::command_status::CommandStatus;
use crate::cstring::COctetString;
use crate::error::PduError;
use crate::parse::{cstring, time_field, u8_field};
use crate::tlv::{encode_tlvs, parse_tlvs, Tlv};

/// Body of `query_sm`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct QuerySm {
    /// C(65): id returned by submit_sm_resp.
    pub message_id: COctetString,
    /// TON of the original `source_addr`.
    pub source_addr_ton: u8,
    /// NPI of the original `source_addr`.
    pub source_addr_npi: u8,
    /// C(21).
    pub source_addr: COctetString,
    /// TLVs: none in 3.4; any present are kept.
    pub tlvs: Vec<Tlv>,
}

/// Decodes a query_sm body.
pub fn parse_query_sm(body: &Bytes) -> Result<QuerySm, PduError> {
    let (i, message_id) = cstring(body, &body[..], 65, "message_id")?;
    let (i, source_addr_ton) = u8_field(i, "source_addr_ton")?;
    let (i, source_addr_npi) = u8_field(i, "source_addr_npi")?;
    let (i, source_addr) = cstring(body, i, 21, "source_addr")?;
    Ok(QuerySm {
        message_id,
        source_addr_ton,
        source_addr_npi,
        source_addr,
        tlvs: parse_tlvs(body, i)?,
    })
}

impl QuerySm {
    /// Appends the body.
    pub fn encode(&self, dst: &mut BytesMut) {
        self.message_id.encode(dst);
        dst.put_u8(self.source_addr_ton);
        dst.put_u8(self.source_addr_npi);
        self.source_addr.encode(dst);
        encode_tlvs(&self.tlvs, dst);
    }
}

/// Body of `query_sm_resp` when present.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct QuerySmResp {
    /// C(65).
    pub message_id: COctetString,
    /// NULL or an absolute 16-character time.
    pub final_date: COctetString,
    /// Reference §6.6.
    pub message_state: u8,
    /// Network-specific error code.
    pub error_code: u8,
    /// TLVs: none in 3.4; any present are kept.
    pub tlvs: Vec<Tlv>,
}

/// Decodes a non-empty query_sm_resp body. A bad `final_date` gets
/// ESME_RUNKNOWNERR: no status is defined for it and responses are never
/// answered anyway.
pub fn parse_query_sm_resp(body: &Bytes) -> Result<QuerySmResp, PduError> {
    let (i, message_id) = cstring(body, &body[..], 65, "message_id")?;
    let (i, final_date) = time_field(body, i, "final_date", CommandStatus::ESME_RUNKNOWNERR)?;
    let (i, message_state) = u8_field(i, "message_state")?;
    let (i, error_code) = u8_field(i, "error_code")?;
    Ok(QuerySmResp {
        message_id,
        final_date,
        message_state,
        error_code,
        tlvs: parse_tlvs(body, i)?,
    })
}

impl QuerySmResp {
    /// Appends the body.
    pub fn encode(&self, dst: &mut BytesMut) {
        self.message_id.encode(dst);
        self.final_date.encode(dst);
        dst.put_u8(self.message_state);
        dst.put_u8(self.error_code);
        encode_tlvs(&self.tlvs, dst);
    }
}
