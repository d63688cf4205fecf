//! Responses whose body is a message_id (+ TLVs): submit_sm_resp,
//! deliver_sm_resp, data_sm_resp (reference §3.6, §3.9).

use bytes::{Bytes, BytesMut};

use crate::cstring::COctetString;
use crate::error::PduError;
use crate::parse::cstring;
use crate::tlv::{encode_tlvs, parse_tlvs, Tlv};

/// Body of `submit_sm_resp`, `deliver_sm_resp` and `data_sm_resp` when present.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct MessageIdResp {
    /// C(65): the SMSC message id (always NULL in deliver_sm_resp).
    pub message_id: COctetString,
    /// TLVs (data_sm_resp defines some; [5.0] allows them on the others).
    pub tlvs: Vec<Tlv>,
}

/// Body of `submit_sm_resp`.
pub type SubmitSmResp = MessageIdResp;
/// Body of `deliver_sm_resp`.
pub type DeliverSmResp = MessageIdResp;
/// Body of `data_sm_resp`.
pub type DataSmResp = MessageIdResp;

/// Decodes a non-empty message_id response body.
///
/// deliver_sm_resp's message_id is C(1) in the spec, but peers that echo an id
/// there are common; we accept up to C(65) for all three (lenient on input).
pub fn parse_message_id_resp(body: &Bytes) -> Result<MessageIdResp, PduError> {
    let (i, message_id) = cstring(body, &body[..], 65, "message_id")?;
    Ok(MessageIdResp {
        message_id,
        tlvs: parse_tlvs(body, i)?,
    })
}

impl MessageIdResp {
    /// Appends the body.
    pub fn encode(&self, dst: &mut BytesMut) {
        self.message_id.encode(dst);
        encode_tlvs(&self.tlvs, dst);
    }
}
