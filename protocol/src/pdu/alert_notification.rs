//! alert_notification (reference §3.13). No response PDU exists.

use bytes::{BufMut, Bytes, BytesMut};

use crate::cstring::COctetString;
use crate::error::PduError;
use crate::parse::{cstring, u8_field};
use crate::tlv::{encode_tlvs, parse_tlvs, Tlv};

/// Body of `alert_notification`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct AlertNotification {
    /// TON of the mobile that became reachable.
    pub source_addr_ton: u8,
    /// NPI.
    pub source_addr_npi: u8,
    /// C(65).
    pub source_addr: COctetString,
    /// TON of the ESME that asked for the alert.
    pub esme_addr_ton: u8,
    /// NPI.
    pub esme_addr_npi: u8,
    /// C(65).
    pub esme_addr: COctetString,
    /// TLVs, normally `ms_availability_status`.
    pub tlvs: Vec<Tlv>,
}

/// Decodes an alert_notification body.
pub fn parse_alert_notification(body: &Bytes) -> Result<AlertNotification, PduError> {
    let (i, source_addr_ton) = u8_field(&body[..], "source_addr_ton")?;
    let (i, source_addr_npi) = u8_field(i, "source_addr_npi")?;
    let (i, source_addr) = cstring(body, i, 65, "source_addr")?;
    let (i, esme_addr_ton) = u8_field(i, "esme_addr_ton")?;
    let (i, esme_addr_npi) = u8_field(i, "esme_addr_npi")?;
    let (i, esme_addr) = cstring(body, i, 65, "esme_addr")?;
    Ok(AlertNotification {
        source_addr_ton,
        source_addr_npi,
        source_addr,
        esme_addr_ton,
        esme_addr_npi,
        esme_addr,
        tlvs: parse_tlvs(body, i)?,
    })
}

impl AlertNotification {
    /// Appends the body.
    pub fn encode(&self, dst: &mut BytesMut) {
        dst.put_u8(self.source_addr_ton);
        dst.put_u8(self.source_addr_npi);
        self.source_addr.encode(dst);
        dst.put_u8(self.esme_addr_ton);
        dst.put_u8(self.esme_addr_npi);
        self.esme_addr.encode(dst);
        encode_tlvs(&self.tlvs, dst);
    }
}
