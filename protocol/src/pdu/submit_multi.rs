//! submit_multi and submit_multi_resp (reference §3.7, §3.8).

use bytes::{BufMut, Bytes, BytesMut};

use crate::command_status::CommandStatus;
use crate::cstring::COctetString;
use crate::error::{ErrorKind, PduError};
use crate::parse::{cstring, short_message, time_field, u32_field, u8_field};
use crate::pdu::submit_sm::{encode_short_message, user_data};
use crate::tlv::{self, check_single_payload, encode_tlvs, parse_tlvs, Tlv};

/// Maximum `number_of_dests` in SMPP v3.4.
pub const MAX_DESTS: usize = 254;

/// One `dest_address` entry, selected by `dest_flag`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "snake_case"))]
pub enum DestAddress {
    /// `dest_flag` 1: an SME address.
    SmeAddress {
        /// TON.
        dest_addr_ton: u8,
        /// NPI.
        dest_addr_npi: u8,
        /// C(21).
        destination_addr: COctetString,
    },
    /// `dest_flag` 2: a distribution list name, C(21).
    DistributionList {
        /// C(21).
        dl_name: COctetString,
    },
}

/// Body of `submit_multi`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct SubmitMulti {
    /// C(6).
    pub service_type: COctetString,
    /// TON of `source_addr`.
    pub source_addr_ton: u8,
    /// NPI of `source_addr`.
    pub source_addr_npi: u8,
    /// C(21).
    pub source_addr: COctetString,
    /// 1..=254 destinations (`number_of_dests` is their count).
    pub dest_address: Vec<DestAddress>,
    /// See [`SubmitSm::esm_class`](crate::SubmitSm).
    pub esm_class: u8,
    /// GSM TP-PID.
    pub protocol_id: u8,
    /// 0–3.
    pub priority_flag: u8,
    /// NULL or 16 characters.
    pub schedule_delivery_time: COctetString,
    /// NULL or 16 characters.
    pub validity_period: COctetString,
    /// Receipt request bits.
    pub registered_delivery: u8,
    /// 0 or 1.
    pub replace_if_present_flag: u8,
    /// Alphabet.
    pub data_coding: u8,
    /// Canned message index.
    pub sm_default_msg_id: u8,
    /// 0–254 octets of user data.
    #[cfg_attr(feature = "serde", serde(serialize_with = "crate::serde_hex::bytes"))]
    pub short_message: Bytes,
    /// Optional parameters, in wire order.
    pub tlvs: Vec<Tlv>,
}

fn parse_dest_address<'a>(body: &Bytes, i: &'a [u8]) -> crate::parse::PResult<'a, DestAddress> {
    let (i, dest_flag) = u8_field(i, "dest_flag")?;
    match dest_flag {
        1 => {
            let (i, dest_addr_ton) = u8_field(i, "dest_addr_ton")?;
            let (i, dest_addr_npi) = u8_field(i, "dest_addr_npi")?;
            let (i, destination_addr) = cstring(body, i, 21, "destination_addr")?;
            Ok((
                i,
                DestAddress::SmeAddress {
                    dest_addr_ton,
                    dest_addr_npi,
                    destination_addr,
                },
            ))
        }
        2 => {
            let (i, dl_name) = cstring(body, i, 21, "dl_name")?;
            Ok((i, DestAddress::DistributionList { dl_name }))
        }
        f => Err(PduError::new(
            CommandStatus::ESME_RINVDESTFLAG,
            "dest_flag",
            ErrorKind::BadDestFlag(f),
        )),
    }
}

/// Decodes a submit_multi body.
pub fn parse_submit_multi(body: &Bytes) -> Result<SubmitMulti, PduError> {
    let i = &body[..];
    let (i, service_type) = cstring(body, i, 6, "service_type")?;
    let (i, source_addr_ton) = u8_field(i, "source_addr_ton")?;
    let (i, source_addr_npi) = u8_field(i, "source_addr_npi")?;
    let (i, source_addr) = cstring(body, i, 21, "source_addr")?;
    let (mut i, number_of_dests) = u8_field(i, "number_of_dests")?;
    if number_of_dests == 0 || usize::from(number_of_dests) > MAX_DESTS {
        return Err(PduError::new(
            CommandStatus::ESME_RINVNUMDESTS,
            "number_of_dests",
            ErrorKind::BadNumberOfDests(number_of_dests),
        ));
    }
    let mut dest_address = Vec::with_capacity(usize::from(number_of_dests));
    for _ in 0..number_of_dests {
        let (rest, d) = parse_dest_address(body, i)?;
        dest_address.push(d);
        i = rest;
    }
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
    Ok(SubmitMulti {
        service_type,
        source_addr_ton,
        source_addr_npi,
        source_addr,
        dest_address,
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

impl SubmitMulti {
    /// Appends the body. `number_of_dests` is written as the list length (at most
    /// 255 entries are written; callers must keep to 254).
    pub fn encode(&self, dst: &mut BytesMut) {
        self.service_type.encode(dst);
        dst.put_u8(self.source_addr_ton);
        dst.put_u8(self.source_addr_npi);
        self.source_addr.encode(dst);
        let dests = &self.dest_address[..self.dest_address.len().min(255)];
        dst.put_u8(dests.len() as u8);
        for d in dests {
            match d {
                DestAddress::SmeAddress {
                    dest_addr_ton,
                    dest_addr_npi,
                    destination_addr,
                } => {
                    dst.put_slice(&[1, *dest_addr_ton, *dest_addr_npi]);
                    destination_addr.encode(dst);
                }
                DestAddress::DistributionList { dl_name } => {
                    dst.put_u8(2);
                    dl_name.encode(dst);
                }
            }
        }
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

/// One failed destination in `submit_multi_resp`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct UnsuccessSme {
    /// TON.
    pub dest_addr_ton: u8,
    /// NPI.
    pub dest_addr_npi: u8,
    /// C(21).
    pub destination_addr: COctetString,
    /// Why this address failed.
    pub error_status_code: CommandStatus,
}

/// Body of `submit_multi_resp` when present.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct SubmitMultiResp {
    /// C(65).
    pub message_id: COctetString,
    /// Failed destinations (`no_unsuccess` is their count).
    pub unsuccess_sme: Vec<UnsuccessSme>,
    /// TLVs: none in 3.4; any present are kept.
    pub tlvs: Vec<Tlv>,
}

/// Decodes a non-empty submit_multi_resp body.
pub fn parse_submit_multi_resp(body: &Bytes) -> Result<SubmitMultiResp, PduError> {
    let (i, message_id) = cstring(body, &body[..], 65, "message_id")?;
    let (mut i, no_unsuccess) = u8_field(i, "no_unsuccess")?;
    let mut unsuccess_sme = Vec::with_capacity(usize::from(no_unsuccess));
    for _ in 0..no_unsuccess {
        let (r, dest_addr_ton) = u8_field(i, "dest_addr_ton")?;
        let (r, dest_addr_npi) = u8_field(r, "dest_addr_npi")?;
        let (r, destination_addr) = cstring(body, r, 21, "destination_addr")?;
        let (r, code) = u32_field(r, "error_status_code")?;
        unsuccess_sme.push(UnsuccessSme {
            dest_addr_ton,
            dest_addr_npi,
            destination_addr,
            error_status_code: CommandStatus(code),
        });
        i = r;
    }
    Ok(SubmitMultiResp {
        message_id,
        unsuccess_sme,
        tlvs: parse_tlvs(body, i)?,
    })
}

impl SubmitMultiResp {
    /// Appends the body (at most 255 unsuccess entries are written).
    pub fn encode(&self, dst: &mut BytesMut) {
        self.message_id.encode(dst);
        let list = &self.unsuccess_sme[..self.unsuccess_sme.len().min(255)];
        dst.put_u8(list.len() as u8);
        for u in list {
            dst.put_u8(u.dest_addr_ton);
            dst.put_u8(u.dest_addr_npi);
            u.destination_addr.encode(dst);
            dst.put_u32(u.error_status_code.0);
        }
        encode_tlvs(&self.tlvs, dst);
    }
}
