//! submit_sm and deliver_sm: the same 18 mandatory fields (reference §3.5).

use bytes::{BufMut, Bytes, BytesMut};

use crate::command_status::CommandStatus;
use crate::cstring::COctetString;
use crate::error::PduError;
use crate::parse::{cstring, short_message, time_field, u8_field};
use crate::tlv::{self, check_single_payload, encode_tlvs, parse_tlvs, Tlv};

/// Body of `submit_sm` (and of `deliver_sm`, see [`DeliverSm`]).
///
/// `sm_length` is not stored: it is always `short_message.len()`, so the two
/// cannot disagree.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct SubmitSm {
    /// C(6).
    pub service_type: COctetString,
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
    /// Messaging mode, message type, UDHI / reply path (reference §6.1).
    pub esm_class: u8,
    /// GSM TP-PID.
    pub protocol_id: u8,
    /// 0–3.
    pub priority_flag: u8,
    /// NULL or 16 characters (`YYMMDDhhmmsstnnp`).
    pub schedule_delivery_time: COctetString,
    /// NULL or 16 characters.
    pub validity_period: COctetString,
    /// Receipt request bits (reference §6.2).
    pub registered_delivery: u8,
    /// 0 or 1.
    pub replace_if_present_flag: u8,
    /// Alphabet (reference §6.3).
    pub data_coding: u8,
    /// Canned message index; 0 = unused.
    pub sm_default_msg_id: u8,
    /// 0–254 octets of user data (UDH included when esm_class has UDHI).
    #[cfg_attr(feature = "serde", serde(serialize_with = "crate::serde_hex::bytes"))]
    pub short_message: Bytes,
    /// Optional parameters, in wire order.
    pub tlvs: Vec<Tlv>,
}

/// Body of `deliver_sm`: the same fields as `submit_sm` (reference §3.5).
pub type DeliverSm = SubmitSm;

/// Decodes a submit_sm or deliver_sm body.
pub fn parse_submit_sm(body: &Bytes) -> Result<SubmitSm, PduError> {
    let i = &body[..];
    let (i, service_type) = cstring(body, i, 6, "service_type")?;
    let (i, source_addr_ton) = u8_field(i, "source_addr_ton")?;
    let (i, source_addr_npi) = u8_field(i, "source_addr_npi")?;
    let (i, source_addr) = cstring(body, i, 21, "source_addr")?;
    let (i, dest_addr_ton) = u8_field(i, "dest_addr_ton")?;
    let (i, dest_addr_npi) = u8_field(i, "dest_addr_npi")?;
    let (i, destination_addr) = cstring(body, i, 21, "destination_addr")?;
    let (i, esm_class) = u8_field(i, "esm_class")?;
    let (i, protocol_id) = u8_field(i, "protocol_id")?;
    let (i, priority_flag) = u8_field(i, "priority_flag")?;
    let (i, schedule_delivery_time) = time_field(
        body,
        i,
        "schedule_delivery_time",
        CommandStatus::ESME_RINVSCHED,
    )?;
    let (i, validity_period) =
        time_field(body, i, "validity_period", CommandStatus::ESME_RINVEXPIRY)?;
    let (i, registered_delivery) = u8_field(i, "registered_delivery")?;
    let (i, replace_if_present_flag) = u8_field(i, "replace_if_present_flag")?;
    let (i, data_coding) = u8_field(i, "data_coding")?;
    let (i, sm_default_msg_id) = u8_field(i, "sm_default_msg_id")?;
    let (i, short_message) = short_message(body, i)?;
    let tlvs = parse_tlvs(body, i)?;
    check_single_payload(&short_message, &tlvs)?;
    Ok(SubmitSm {
        service_type,
        source_addr_ton,
        source_addr_npi,
        source_addr,
        dest_addr_ton,
        dest_addr_npi,
        destination_addr,
        esm_class,
        protocol_id,
        priority_flag,
        schedule_delivery_time,
        validity_period,
        registered_delivery,
        replace_if_present_flag,
        data_coding,
        sm_default_msg_id,
        short_message,
        tlvs,
    })
}

impl SubmitSm {
    /// Appends the body. `sm_length` is written as `short_message.len()`; a
    /// `short_message` over 255 octets cannot be represented and is truncated to
    /// its first 255 so the PDU stays self-consistent.
    pub fn encode(&self, dst: &mut BytesMut) {
        self.service_type.encode(dst);
        dst.put_u8(self.source_addr_ton);
        dst.put_u8(self.source_addr_npi);
        self.source_addr.encode(dst);
        dst.put_u8(self.dest_addr_ton);
        dst.put_u8(self.dest_addr_npi);
        self.destination_addr.encode(dst);
        dst.put_slice(&[self.esm_class, self.protocol_id, self.priority_flag]);
        self.schedule_delivery_time.encode(dst);
        self.validity_period.encode(dst);
        encode_short_message(
            &[
                self.registered_delivery,
                self.replace_if_present_flag,
                self.data_coding,
                self.sm_default_msg_id,
            ],
            &self.short_message,
            dst,
        );
        encode_tlvs(&self.tlvs, dst);
    }

    /// The user data: `message_payload` if present, otherwise `short_message`.
    pub fn user_data(&self) -> &[u8] {
        user_data(&self.short_message, &self.tlvs)
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

/// Writes `prefix` then `sm_length` + `short_message`.
#[inline]
pub(crate) fn encode_short_message(prefix: &[u8], sm: &[u8], dst: &mut BytesMut) {
    let sm = &sm[..sm.len().min(255)];
    dst.put_slice(prefix);
    dst.put_u8(sm.len() as u8);
    dst.put_slice(sm);
}

/// `message_payload` wins over `short_message`: the decoder guarantees only one
/// of them carries data.
#[inline]
pub(crate) fn user_data<'a>(short_message: &'a [u8], tlvs: &'a [Tlv]) -> &'a [u8] {
    match tlv::message_payload(tlvs) {
        Some(p) => p,
        None => short_message,
    }
}
