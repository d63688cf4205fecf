//! User Data Header (GSM 03.40 / 3GPP TS 23.040 §9.2.3.24) and concatenation info
//! from either a UDH or the SMPP SAR TLVs (reference §8.1–§8.4).
//!
//! ```text
//!  user data:  UDHL | IEI IEDL IED.. | IEI IEDL IED.. | ... | text / data
//!              <1 >   <-------------- UDHL octets ------->
//! ```
//!
//! Status choices (the spec names none; these are ours, kept in one place):
//! * a malformed UDH, a malformed concatenation IE, two concatenation IEs, or impossible
//!   concatenation values inside the UDH → `ESME_RINVMSGLEN` (0x01): the fault lies in the
//!   user data itself, whose length/structure does not add up;
//! * impossible SAR TLV values, or a UDH concatenation IE together with a complete SAR
//!   set → `ESME_RINVOPTPARAMVAL` (0xC4): the fault lies in the optional parameters.

use thiserror::Error;

use crate::gsm7::{NationalLanguage, Shift};

/// `esm_class` bit 6: the user data starts with a UDH.
pub const ESM_CLASS_UDHI: u8 = 0x40;
/// IEI of the concatenated-SM element with an 8-bit reference (IEDL 3).
pub const IEI_CONCAT_8BIT: u8 = 0x00;
/// IEI of the concatenated-SM element with a 16-bit reference (IEDL 4).
pub const IEI_CONCAT_16BIT: u8 = 0x08;
/// IEI of 8-bit application port addressing (IEDL 2).
pub const IEI_PORT_8BIT: u8 = 0x04;
/// IEI of 16-bit application port addressing (IEDL 4).
pub const IEI_PORT_16BIT: u8 = 0x05;

/// IEI of the national language single shift (IEDL 1: the [`NationalLanguage`]).
pub const IEI_NATIONAL_SINGLE_SHIFT: u8 = 0x24;
/// IEI of the national language locking shift (IEDL 1: the [`NationalLanguage`]).
pub const IEI_NATIONAL_LOCKING_SHIFT: u8 = 0x25;

/// `ESME_RINVMSGLEN`, returned for faults inside the user data / UDH.
pub const ESME_RINVMSGLEN: u32 = 0x0000_0001;
/// `ESME_RINVOPTPARAMVAL`, returned for faults in the SAR TLVs.
pub const ESME_RINVOPTPARAMVAL: u32 = 0x0000_00C4;

/// Where the concatenation info came from.
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ConcatScheme {
    /// UDH IEI 0x00, 8-bit reference.
    Udh8,
    /// UDH IEI 0x08, 16-bit reference.
    Udh16,
    /// The three SAR TLVs (0x020C, 0x020E, 0x020F).
    Sar,
}

/// One part of a concatenated message. Always valid: `1 <= seq <= total`.
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ConcatInfo {
    /// Message reference; an 8-bit UDH reference is widened to u16.
    pub reference: u16,
    /// Total number of parts (1–255).
    pub total: u8,
    /// This part's number, starting at 1.
    pub seq: u8,
    pub scheme: ConcatScheme,
}

/// The SAR TLV values of a PDU, as decoded (each `None` when absent).
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SarParts {
    pub msg_ref_num: Option<u16>,
    pub total_segments: Option<u8>,
    pub segment_seqnum: Option<u8>,
}

/// One information element of a UDH, borrowed from the user data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InformationElement<'a> {
    pub iei: u8,
    /// The IED octets (IEDL of them).
    pub data: &'a [u8],
}

/// A parsed UDH: every element in wire order, including those we do not interpret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Udh<'a> {
    /// The whole header including the UDHL octet (UDHL + 1 octets).
    pub raw: &'a [u8],
    pub elements: Vec<InformationElement<'a>>,
}

impl<'a> Udh<'a> {
    /// Header length in octets including the UDHL octet itself.
    pub fn len(&self) -> usize {
        self.raw.len()
    }

    /// Never true for a parsed UDH: it holds at least the UDHL octet.
    pub fn is_empty(&self) -> bool {
        self.raw.is_empty()
    }

    /// The concatenation IE of this header, validated.
    ///
    /// Errors (all `ESME_RINVMSGLEN`): IEI 0x00 with IEDL ≠ 3, IEI 0x08 with IEDL ≠ 4,
    /// two concatenation IEs (ambiguous: we cannot know which one the sender meant),
    /// total 0, seq 0 or seq > total. 23.040 tells a handset to *ignore* such an element;
    /// an SMSC accepting a submission would then silently deliver fragments as separate
    /// messages, so we reject instead.
    pub fn concat(&self) -> Result<Option<ConcatInfo>, ConcatError> {
        let mut found: Option<ConcatInfo> = None;
        for ie in &self.elements {
            let (reference, total, seq, scheme) = match (ie.iei, ie.data) {
                (IEI_CONCAT_8BIT, &[r, t, s]) => (u16::from(r), t, s, ConcatScheme::Udh8),
                (IEI_CONCAT_16BIT, &[r1, r2, t, s]) => {
                    (u16::from_be_bytes([r1, r2]), t, s, ConcatScheme::Udh16)
                }
                (IEI_CONCAT_8BIT | IEI_CONCAT_16BIT, data) => {
                    return Err(ConcatErrorKind::BadConcatIeLength {
                        iei: ie.iei,
                        iedl: data.len(),
                    }
                    .into())
                }
                _ => continue,
            };
            if found.is_some() {
                return Err(ConcatErrorKind::DuplicateConcatIe.into());
            }
            if total == 0 || seq == 0 || seq > total {
                return Err(ConcatErrorKind::ImpossibleUdhValues { total, seq }.into());
            }
            found = Some(ConcatInfo {
                reference,
                total,
                seq,
                scheme,
            });
        }
        Ok(found)
    }
}

impl Udh<'_> {
    /// The GSM 7-bit tables this header selects: IEI 0x25 names the locking shift
    /// table, IEI 0x24 the single shift table (3GPP TS 23.040 §9.2.3.24.15/16). An
    /// element with IEDL ≠ 1 is ignored, as 23.040 asks of a malformed element; the last
    /// of two of the same kind wins; an unknown language reads as the default tables.
    pub fn shift(&self) -> Shift {
        let mut shift = Shift::DEFAULT;
        for ie in &self.elements {
            match (ie.iei, ie.data) {
                (IEI_NATIONAL_LOCKING_SHIFT, &[id]) => shift.locking = NationalLanguage(id),
                (IEI_NATIONAL_SINGLE_SHIFT, &[id]) => shift.single = NationalLanguage(id),
                _ => {}
            }
        }
        shift
    }
}

/// The GSM 7-bit tables of a short_message / message_payload as received: those its
/// UDH selects ([`Udh::shift`]) when `esm_class` has UDHI, else (and for a UDH that
/// does not parse) the default ones.
pub fn shift_of(esm_class: u8, raw_user_data: &[u8]) -> Shift {
    if esm_class & ESM_CLASS_UDHI == 0 {
        return Shift::DEFAULT;
    }
    parse_udh(raw_user_data)
        .map(|(udh, _)| udh.shift())
        .unwrap_or_default()
}

/// Why concatenation info could not be read. [`ConcatError::command_status`] gives the
/// SMPP status to answer with.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{kind}")]
pub struct ConcatError {
    kind: ConcatErrorKind,
}

impl ConcatError {
    pub fn kind(&self) -> &ConcatErrorKind {
        &self.kind
    }

    /// `ESME_RINVMSGLEN` (0x01) for UDH faults, `ESME_RINVOPTPARAMVAL` (0xC4) for SAR faults.
    pub fn command_status(&self) -> u32 {
        match self.kind {
            ConcatErrorKind::EmptyUserData
            | ConcatErrorKind::UdhLengthOverrun { .. }
            | ConcatErrorKind::IeOverrun { .. }
            | ConcatErrorKind::BadConcatIeLength { .. }
            | ConcatErrorKind::DuplicateConcatIe
            | ConcatErrorKind::ImpossibleUdhValues { .. } => ESME_RINVMSGLEN,
            ConcatErrorKind::ImpossibleSarValues { .. } | ConcatErrorKind::UdhAndSar => {
                ESME_RINVOPTPARAMVAL
            }
        }
    }
}

impl From<ConcatErrorKind> for ConcatError {
    fn from(kind: ConcatErrorKind) -> Self {
        ConcatError { kind }
    }
}

/// The distinct faults; see the module doc for the status of each.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ConcatErrorKind {
    #[error("UDH: esm_class has UDHI set but the user data is empty")]
    EmptyUserData,
    #[error("UDH: UDHL {udhl} + 1 exceeds the user data length {len}")]
    UdhLengthOverrun { udhl: u8, len: usize },
    #[error("UDH: information element 0x{iei:02X} at header offset {offset} overruns UDHL")]
    IeOverrun { iei: u8, offset: usize },
    #[error("UDH: concatenation IE 0x{iei:02X} has IEDL {iedl} (expected 3 for 0x00, 4 for 0x08)")]
    BadConcatIeLength { iei: u8, iedl: usize },
    #[error("UDH: more than one concatenation IE")]
    DuplicateConcatIe,
    #[error(
        "UDH: impossible concatenation values total {total}, seq {seq} (need 1 <= seq <= total)"
    )]
    ImpossibleUdhValues { total: u8, seq: u8 },
    #[error("SAR: impossible values sar_total_segments {total}, sar_segment_seqnum {seq} (need 1 <= seq <= total)")]
    ImpossibleSarValues { total: u8, seq: u8 },
    #[error("both a UDH concatenation IE and the SAR TLVs are present")]
    UdhAndSar,
}

/// Split a UDH off the user data: the header with every IE listed (unknown ones such as
/// port addressing 0x04/0x05 included, uninterpreted) and the user data after it.
///
/// Malformed (all `ESME_RINVMSGLEN`): empty user data, UDHL + 1 > length, an IE header
/// or IE data running past UDHL. Concatenation values are not checked here; see
/// [`Udh::concat`].
pub fn parse_udh(user_data: &[u8]) -> Result<(Udh<'_>, &[u8]), ConcatError> {
    let (&udhl, _) = user_data
        .split_first()
        .ok_or(ConcatErrorKind::EmptyUserData)?;
    let header_len = usize::from(udhl) + 1;
    if header_len > user_data.len() {
        return Err(ConcatErrorKind::UdhLengthOverrun {
            udhl,
            len: user_data.len(),
        }
        .into());
    }
    let (raw, rest) = user_data.split_at(header_len);
    let mut elements = Vec::new();
    let mut offset = 1;
    while offset < header_len {
        let iei = raw[offset];
        let Some(&iedl) = raw.get(offset + 1) else {
            return Err(ConcatErrorKind::IeOverrun { iei, offset }.into());
        };
        let start = offset + 2;
        let end = start + usize::from(iedl);
        let Some(data) = raw.get(start..end) else {
            return Err(ConcatErrorKind::IeOverrun { iei, offset }.into());
        };
        elements.push(InformationElement { iei, data });
        offset = end;
    }
    Ok((Udh { raw, elements }, rest))
}

/// [`concat_info`] with the SAR parts taken from a PDU's TLVs.
pub fn concat_info_in<'a>(
    esm_class: u8,
    user_data: &'a [u8],
    tlvs: &[crate::tlv::Tlv],
) -> Result<(Option<ConcatInfo>, &'a [u8]), ConcatError> {
    let (msg_ref_num, total_segments, segment_seqnum) = crate::tlv::sar(tlvs);
    concat_info(
        esm_class,
        user_data,
        SarParts {
            msg_ref_num,
            total_segments,
            segment_seqnum,
        },
    )
}

/// Concatenation info of one submit_sm / deliver_sm / data_sm / submit_multi, and its
/// user data with any UDH removed.
///
/// * The UDH is looked at only when `esm_class` has UDHI (0x40); without it the user
///   data is returned whole, even if it happens to look like a UDH.
/// * SAR counts only when all three TLVs are present; a partial set is ignored (reference
///   §5.1), giving a single-part message unless the UDH says otherwise.
/// * A complete SAR set with impossible values → `ESME_RINVOPTPARAMVAL`.
/// * A UDH concatenation IE together with a complete SAR set → `ESME_RINVOPTPARAMVAL`
///   (the spec says never both; we refuse rather than guess which wins). A UDH without a
///   concatenation IE (e.g. only port addressing) plus SAR is fine: SAR is used.
/// * `None` means single-part. A valid `total == 1` is returned as is.
pub fn concat_info(
    esm_class: u8,
    user_data: &[u8],
    sar: SarParts,
) -> Result<(Option<ConcatInfo>, &[u8]), ConcatError> {
    let (udh_concat, rest) = if esm_class & ESM_CLASS_UDHI != 0 {
        let (udh, rest) = parse_udh(user_data)?;
        (udh.concat()?, rest)
    } else {
        (None, user_data)
    };
    let sar_concat = match (sar.msg_ref_num, sar.total_segments, sar.segment_seqnum) {
        (Some(reference), Some(total), Some(seq)) => {
            if total == 0 || seq == 0 || seq > total {
                return Err(ConcatErrorKind::ImpossibleSarValues { total, seq }.into());
            }
            Some(ConcatInfo {
                reference,
                total,
                seq,
                scheme: ConcatScheme::Sar,
            })
        }
        _ => None,
    };
    match (udh_concat, sar_concat) {
        (Some(_), Some(_)) => Err(ConcatErrorKind::UdhAndSar.into()),
        (info, None) | (None, info) => Ok((info, rest)),
    }
}
