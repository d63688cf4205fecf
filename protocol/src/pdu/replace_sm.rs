//! replace_sm (reference §3.12). replace_sm_resp is header only.

use bytes::{BufMut, Bytes, BytesMut};

use crate::command_status::CommandStatus;
use crate::cstring::COctetString;
use crate::error::PduError;
use crate::parse::{cstring, short_message, time_field, u8_field};
use crate::pdu::submit_sm::{encode_short_message, user_data};
use crate::tlv::{check_single_payload, encode_tlvs, parse_tlvs, Tlv};

/// Body of `replace_sm` (no service_type: see reference §3.12 ⚠).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct ReplaceSm {
    /// C(65): the message to replace.
    pub message_id: COctetString,
    /// TON of the original `source_addr`.
    pub source_addr_ton: u8,
    /// NPI of the original `source_addr`.
    pub source_addr_npi: u8,
    /// C(21).
    pub source_addr: COctetString,
    /// NULL keeps the original.
    pub schedule_delivery_time: COctetString,
    /// NULL keeps the original.
    pub validity_period: COctetString,
    /// Receipt request bits.
    pub registered_delivery: u8,
    /// Canned message index.
    pub sm_default_msg_id: u8,
    /// 0–254 octets.
    #[cfg_attr(feature = "serde", serde(serialize_with = "crate::serde_hex::bytes"))]
    pub short_message: Bytes,
    /// TLVs: none in 3.4 ([5.0] adds message_payload); any present are kept.
    pub tlvs: Vec<Tlv>,
}

/// Decodes a replace_sm body.
pub fn parse_replace_sm(body: &Bytes) -> Result<ReplaceSm, PduError> {
    let (i, message_id) = cstring(body, &body[..], 65, "message_id")?;
    let (i, source_addr_ton) = u8_field(i, "source_addr_ton")?;
    let (i, source_addr_npi) = u8_field(i, "source_addr_npi")?;
    let (i, source_addr) = cstring(body, i, 21, "source_addr")?;
    let (i, schedule_delivery_time) = time_field(
        body,
        i,
        "schedule_delivery_time",
        CommandStatus::ESME_RINVSCHED,
    )?;
    let (i, validity_period) =
        time_field(body, i, "validity_period", CommandStatus::ESME_RINVEXPIRY)?;
    let (i, registered_delivery) = u8_field(i, "registered_delivery")?;
    let (i, sm_default_msg_id) = u8_field(i, "sm_default_msg_id")?;
    let (i, short_message) = short_message(body, i)?;
    let tlvs = parse_tlvs(body, i)?;
    check_single_payload(&short_message, &tlvs)?;
    Ok(ReplaceSm {
        message_id,
        source_addr_ton,
        source_addr_npi,
        source_addr,
        schedule_delivery_time,
        validity_period,
        registered_delivery,
        sm_default_msg_id,
        short_message,
        tlvs,
    })
}

impl ReplaceSm {
    /// Appends the body.
    pub fn encode(&self, dst: &mut BytesMut) {
        self.message_id.encode(dst);
        dst.put_u8(self.source_addr_ton);
        dst.put_u8(self.source_addr_npi);
        self.source_addr.encode(dst);
        self.schedule_delivery_time.encode(dst);
        self.validity_period.encode(dst);
        encode_short_message(
            &[self.registered_delivery, self.sm_default_msg_id],
            &self.short_message,
            dst,
        );
        encode_tlvs(&self.tlvs, dst);
    }

    /// The user data: `message_payload` if present, otherwise `short_message`.
    pub fn user_data(&self) -> &[u8] {
        user_data(&self.short_message, &self.tlvs)
    }
}
