//! Decoded submit_sm / data_sm / submit_multi → [`SubmitRequest`]s for the store.

use bytes::Bytes;
use smpp_protocol::{CommandStatus, DataSm, SubmitMulti, SubmitSm, Tlv};

use crate::service::{AccountPolicy, Address, Concat, ConcatScheme, SubmitRequest};

/// The fields of one message every submit form carries.
pub(crate) struct Parts<'a> {
    pub service_type: String,
    pub source: Address,
    pub esm_class: u8,
    pub protocol_id: u8,
    pub priority_flag: u8,
    pub registered_delivery: u8,
    pub data_coding: u8,
    pub validity_period: Bytes,
    /// schedule_delivery_time as received, without its NUL; empty = at once.
    pub schedule: Bytes,
    pub replace_if_present: u8,
    pub short_message: &'a Bytes,
    pub tlvs: &'a [Tlv],
}

fn address(ton: u8, npi: u8, addr: &smpp_protocol::COctetString) -> Address {
    Address {
        ton,
        npi,
        addr: addr.to_string_lossy().into_owned(),
    }
}

/// qos_time_to_live (seconds from submission) as the relative validity_period the
/// store understands: `0000DDhhmmss000R`. Days beyond 99 (the field's two digits) are
/// 99 days, far past any account's max_validity, which caps the result anyway. Absent
/// or 0 (no lifetime is not "expire at once") → empty = the account's default.
pub(crate) fn qos_validity(tlvs: &[Tlv]) -> Bytes {
    let Some(secs) = tlvs.iter().find_map(|t| match t {
        Tlv::QosTimeToLive(s) => Some(*s),
        _ => None,
    }) else {
        return Bytes::new();
    };
    if secs == 0 {
        return Bytes::new();
    }
    let (days, rest) = (secs / 86_400, secs % 86_400);
    let (days, rest) = if days > 99 { (99, 0) } else { (days, rest) };
    Bytes::from(format!(
        "0000{days:02}{:02}{:02}{:02}000R",
        rest / 3600,
        rest % 3600 / 60,
        rest % 60
    ))
}

impl<'a> Parts<'a> {
    pub fn of_submit_sm(s: &'a SubmitSm) -> (Parts<'a>, Address) {
        let parts = Parts {
            service_type: s.service_type.to_string_lossy().into_owned(),
            source: address(s.source_addr_ton, s.source_addr_npi, &s.source_addr),
            esm_class: s.esm_class,
            protocol_id: s.protocol_id,
            priority_flag: s.priority_flag,
            registered_delivery: s.registered_delivery,
            data_coding: s.data_coding,
            validity_period: s.validity_period.to_bytes(),
            schedule: s.schedule_delivery_time.to_bytes(),
            replace_if_present: s.replace_if_present_flag,
            short_message: &s.short_message,
            tlvs: &s.tlvs,
        };
        (
            parts,
            address(s.dest_addr_ton, s.dest_addr_npi, &s.destination_addr),
        )
    }

    pub fn of_data_sm(d: &'a DataSm, empty: &'a Bytes) -> (Parts<'a>, Address) {
        let parts = Parts {
            service_type: d.service_type.to_string_lossy().into_owned(),
            source: address(d.source_addr_ton, d.source_addr_npi, &d.source_addr),
            esm_class: d.esm_class,
            // data_sm has no protocol_id, priority_flag nor validity_period field; its
            // lifetime is the qos_time_to_live TLV (§5.3.2.9), if any.
            protocol_id: 0,
            priority_flag: 0,
            registered_delivery: d.registered_delivery,
            data_coding: d.data_coding,
            validity_period: qos_validity(&d.tlvs),
            schedule: Bytes::new(),
            replace_if_present: 0,
            short_message: empty,
            tlvs: &d.tlvs,
        };
        (
            parts,
            address(d.dest_addr_ton, d.dest_addr_npi, &d.destination_addr),
        )
    }

    pub fn of_submit_multi(m: &'a SubmitMulti) -> Parts<'a> {
        Parts {
            service_type: m.service_type.to_string_lossy().into_owned(),
            source: address(m.source_addr_ton, m.source_addr_npi, &m.source_addr),
            esm_class: m.esm_class,
            protocol_id: m.protocol_id,
            priority_flag: m.priority_flag,
            registered_delivery: m.registered_delivery,
            data_coding: m.data_coding,
            validity_period: m.validity_period.to_bytes(),
            schedule: m.schedule_delivery_time.to_bytes(),
            replace_if_present: m.replace_if_present_flag,
            short_message: &m.short_message,
            tlvs: &m.tlvs,
        }
    }

    /// One request for `dest`. Err: the status to answer with (bad concatenation info).
    pub fn request(
        &self,
        policy: AccountPolicy,
        dest: Address,
    ) -> Result<SubmitRequest, CommandStatus> {
        // Reference §5.2.14 / §5.2.18: values past the defined ones.
        if self.priority_flag > 3 {
            return Err(CommandStatus::ESME_RINVPRTFLG);
        }
        if self.replace_if_present > 1 {
            return Err(CommandStatus::ESME_RINVREPFLAG);
        }
        let raw = match smpp_protocol::tlv::message_payload(self.tlvs) {
            Some(p) => p.clone(),
            None => self.short_message.clone(),
        };
        let (concat, user_data) = concat_info(self.esm_class, &raw, self.tlvs)?;
        Ok(SubmitRequest {
            policy,
            service_type: self.service_type.clone(),
            source: self.source.clone(),
            dest,
            esm_class: self.esm_class,
            protocol_id: self.protocol_id,
            priority_flag: self.priority_flag,
            registered_delivery: self.registered_delivery,
            data_coding: self.data_coding,
            concat,
            user_data,
            raw_user_data: raw,
            validity_period: self.validity_period.clone(),
            schedule_delivery_time: self.schedule.clone(),
            replace_if_present: self.replace_if_present == 1,
            receipt_id: None,
            forward_to: None,
            forward_reassembled: false,
            simulate: None,
        })
    }
}

/// Concatenation info and the user data without its UDH (UDH IEI 0x00/0x08 when
/// esm_class has UDHI, else a complete set of SAR TLVs). A malformed UDH or impossible
/// concatenation values are answered with the status the protocol crate assigns.
fn concat_info(
    esm_class: u8,
    raw: &Bytes,
    tlvs: &[Tlv],
) -> Result<(Option<Concat>, Bytes), CommandStatus> {
    use smpp_protocol::udh;
    let (info, user_data) =
        udh::concat_info_in(esm_class, raw, tlvs).map_err(|e| CommandStatus(e.command_status()))?;
    let concat = info.map(|c| Concat {
        scheme: match c.scheme {
            udh::ConcatScheme::Udh8 => ConcatScheme::Udh8,
            udh::ConcatScheme::Udh16 => ConcatScheme::Udh16,
            udh::ConcatScheme::Sar => ConcatScheme::Sar,
        },
        reference: c.reference,
        total: c.total,
        seq: c.seq,
    });
    Ok((concat, raw.slice_ref(user_data)))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use smpp_protocol::time::{parse_time, SmppTime};

    fn period(secs: Option<u32>) -> Bytes {
        let tlvs: Vec<Tlv> = secs.map(Tlv::QosTimeToLive).into_iter().collect();
        qos_validity(&tlvs)
    }

    #[test]
    fn qos_time_to_live_becomes_a_relative_validity_period() {
        let v = period(Some(90_061)); // 1 d 1 h 1 min 1 s
        assert_eq!(&v[..], b"000001010101000R");
        assert_eq!(
            parse_time(&v).unwrap(),
            Some(SmppTime::Relative {
                years: 0,
                months: 0,
                days: 1,
                hours: 1,
                minutes: 1,
                seconds: 1
            })
        );
        assert_eq!(&period(Some(59))[..], b"000000000059000R");
    }

    #[test]
    fn absent_or_zero_qos_time_to_live_means_the_account_default() {
        assert!(period(None).is_empty());
        assert!(period(Some(0)).is_empty());
    }

    #[test]
    fn a_lifetime_past_99_days_is_99_days() {
        assert_eq!(&period(Some(u32::MAX))[..], b"000099000000000R");
    }
}
