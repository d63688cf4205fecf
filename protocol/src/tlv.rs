//! Optional parameters (TLVs, reference §5): every standard SMPP v3.4 tag typed,
//! unknown tags kept raw so they re-encode unchanged.
//!
//! ```text
//! +--------+--------+----------------+
//! | tag u16| len u16| value (len)    |
//! +--------+--------+----------------+
//! ```

use std::fmt;

use bytes::{BufMut, Bytes, BytesMut};

use crate::command_status::CommandStatus;
use crate::cstring::COctetString;
use crate::error::{ErrorKind, PduError};

/// A TLV tag. Open newtype: vendor tags (0x1400–0x3FFF) and future tags parse.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct TlvTag(pub u16);

macro_rules! tags {
    ($($name:ident = $value:expr, $text:literal;)*) => {
        impl TlvTag {
            $(
                #[doc = concat!("`", $text, "`")]
                pub const $name: TlvTag = TlvTag($value);
            )*

            /// Spec name (`"message_payload"`), or `None` for a non-standard tag.
            pub fn name(self) -> Option<&'static str> {
                match self {
                    $(TlvTag::$name => Some($text),)*
                    _ => None,
                }
            }

            /// Every standard SMPP v3.4 tag (44 values).
            pub const ALL: &'static [TlvTag] = &[$(TlvTag::$name),*];
        }
    };
}

tags! {
    DEST_ADDR_SUBUNIT = 0x0005, "dest_addr_subunit";
    DEST_NETWORK_TYPE = 0x0006, "dest_network_type";
    DEST_BEARER_TYPE = 0x0007, "dest_bearer_type";
    DEST_TELEMATICS_ID = 0x0008, "dest_telematics_id";
    SOURCE_ADDR_SUBUNIT = 0x000D, "source_addr_subunit";
    SOURCE_NETWORK_TYPE = 0x000E, "source_network_type";
    SOURCE_BEARER_TYPE = 0x000F, "source_bearer_type";
    SOURCE_TELEMATICS_ID = 0x0010, "source_telematics_id";
    QOS_TIME_TO_LIVE = 0x0017, "qos_time_to_live";
    PAYLOAD_TYPE = 0x0019, "payload_type";
    ADDITIONAL_STATUS_INFO_TEXT = 0x001D, "additional_status_info_text";
    RECEIPTED_MESSAGE_ID = 0x001E, "receipted_message_id";
    MS_MSG_WAIT_FACILITIES = 0x0030, "ms_msg_wait_facilities";
    PRIVACY_INDICATOR = 0x0201, "privacy_indicator";
    SOURCE_SUBADDRESS = 0x0202, "source_subaddress";
    DEST_SUBADDRESS = 0x0203, "dest_subaddress";
    USER_MESSAGE_REFERENCE = 0x0204, "user_message_reference";
    USER_RESPONSE_CODE = 0x0205, "user_response_code";
    SOURCE_PORT = 0x020A, "source_port";
    DESTINATION_PORT = 0x020B, "destination_port";
    SAR_MSG_REF_NUM = 0x020C, "sar_msg_ref_num";
    LANGUAGE_INDICATOR = 0x020D, "language_indicator";
    SAR_TOTAL_SEGMENTS = 0x020E, "sar_total_segments";
    SAR_SEGMENT_SEQNUM = 0x020F, "sar_segment_seqnum";
    SC_INTERFACE_VERSION = 0x0210, "sc_interface_version";
    CALLBACK_NUM_PRES_IND = 0x0302, "callback_num_pres_ind";
    CALLBACK_NUM_ATAG = 0x0303, "callback_num_atag";
    NUMBER_OF_MESSAGES = 0x0304, "number_of_messages";
    CALLBACK_NUM = 0x0381, "callback_num";
    DPF_RESULT = 0x0420, "dpf_result";
    SET_DPF = 0x0421, "set_dpf";
    MS_AVAILABILITY_STATUS = 0x0422, "ms_availability_status";
    NETWORK_ERROR_CODE = 0x0423, "network_error_code";
    MESSAGE_PAYLOAD = 0x0424, "message_payload";
    DELIVERY_FAILURE_REASON = 0x0425, "delivery_failure_reason";
    MORE_MESSAGES_TO_SEND = 0x0426, "more_messages_to_send";
    MESSAGE_STATE = 0x0427, "message_state";
    USSD_SERVICE_OP = 0x0501, "ussd_service_op";
    DISPLAY_TIME = 0x1201, "display_time";
    SMS_SIGNAL = 0x1203, "sms_signal";
    MS_VALIDITY = 0x1204, "ms_validity";
    ALERT_ON_MESSAGE_DELIVERY = 0x130C, "alert_on_message_delivery";
    ITS_REPLY_TYPE = 0x1380, "its_reply_type";
    ITS_SESSION_INFO = 0x1383, "its_session_info";
}

impl fmt::Debug for TlvTag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(n) => f.write_str(n),
            None => write!(f, "TlvTag(0x{:04x})", self.0),
        }
    }
}

macro_rules! define_tlv {
    (
        u8 { $($v8:ident = $t8:ident,)* }
        u16 { $($v16:ident = $t16:ident,)* }
        octets { $($vo:ident = $to:ident [$omin:expr, $omax:expr],)* }
        cstring { $($vc:ident = $tc:ident [$cmax:expr],)* }
    ) => {
        /// One optional parameter, typed by tag.
        ///
        /// Integer TLVs hold their value; octet-string TLVs hold a zero-copy slice of
        /// the frame; C-string TLVs hold the text without its NUL. Tags this crate
        /// does not know are kept in [`Tlv::Unknown`] and re-encoded unchanged.
        #[derive(Debug, Clone, PartialEq, Eq)]
        #[cfg_attr(feature = "serde", derive(serde::Serialize))]
        #[cfg_attr(feature = "serde", serde(rename_all = "snake_case"))]
        pub enum Tlv {
            $(
                #[doc = concat!("`", stringify!($t8), "` (1 octet).")]
                $v8(u8),
            )*
            $(
                #[doc = concat!("`", stringify!($t16), "` (2 octets).")]
                $v16(u16),
            )*
            $(
                #[doc = concat!("`", stringify!($to), "` (octets, length ", stringify!($omin), "..=", stringify!($omax), ").")]
                $vo(#[cfg_attr(feature = "serde", serde(serialize_with = "crate::serde_hex::bytes"))] Bytes),
            )*
            $(
                #[doc = concat!("`", stringify!($tc), "` (C-Octet String, NUL included in the TLV length, at most ", stringify!($cmax), ").")]
                $vc(COctetString),
            )*
            /// `qos_time_to_live` (4 octets, seconds).
            QosTimeToLive(u32),
            /// `source_telematics_id`: the spec says 1 octet but some peers send 2
            /// (reference §5.2 ⚠); `len` remembers which, for byte-exact re-encoding.
            SourceTelematicsId {
                /// The value.
                value: u16,
                /// Encoded length: 1 or 2.
                len: u8,
            },
            /// `network_error_code` (3 octets).
            NetworkErrorCode {
                /// 1 ANSI-136, 2 IS-95, 3 GSM.
                network_type: u8,
                /// The network's error code.
                error_code: u16,
            },
            /// `alert_on_message_delivery`: length 0 in 3.4 (presence is the flag);
            /// [5.0] allows one octet of alert priority. `None` = length 0.
            AlertOnMessageDelivery(Option<u8>),
            /// A tag this crate does not type: kept raw.
            Unknown {
                /// The tag.
                tag: TlvTag,
                /// The value octets.
                #[cfg_attr(feature = "serde", serde(serialize_with = "crate::serde_hex::bytes"))]
                value: Bytes,
            },
        }

        impl Tlv {
            /// This TLV's tag.
            pub fn tag(&self) -> TlvTag {
                match self {
                    $(Tlv::$v8(_) => TlvTag::$t8,)*
                    $(Tlv::$v16(_) => TlvTag::$t16,)*
                    $(Tlv::$vo(_) => TlvTag::$to,)*
                    $(Tlv::$vc(_) => TlvTag::$tc,)*
                    Tlv::QosTimeToLive(_) => TlvTag::QOS_TIME_TO_LIVE,
                    Tlv::SourceTelematicsId { .. } => TlvTag::SOURCE_TELEMATICS_ID,
                    Tlv::NetworkErrorCode { .. } => TlvTag::NETWORK_ERROR_CODE,
                    Tlv::AlertOnMessageDelivery(_) => TlvTag::ALERT_ON_MESSAGE_DELIVERY,
                    Tlv::Unknown { tag, .. } => *tag,
                }
            }

            /// Length of the value in octets (what goes in the TLV's length field).
            pub fn value_len(&self) -> usize {
                match self {
                    $(Tlv::$v8(_) => 1,)*
                    $(Tlv::$v16(_) => 2,)*
                    $(Tlv::$vo(b) => b.len(),)*
                    $(Tlv::$vc(s) => s.encoded_len(),)*
                    Tlv::QosTimeToLive(_) => 4,
                    Tlv::SourceTelematicsId { len, .. } => usize::from(*len),
                    Tlv::NetworkErrorCode { .. } => 3,
                    Tlv::AlertOnMessageDelivery(v) => usize::from(v.is_some()),
                    Tlv::Unknown { value, .. } => value.len(),
                }
            }

            /// Encoded size: 4 header octets plus the value.
            pub fn encoded_len(&self) -> usize {
                4 + self.value_len()
            }

            /// Appends tag, length and value to `dst`.
            ///
            /// Values longer than 65535 octets cannot be represented; the length
            /// field is then truncated, so callers must not build such TLVs (the
            /// decoder never does).
            pub fn encode(&self, dst: &mut BytesMut) {
                dst.put_u16(self.tag().0);
                dst.put_u16(self.value_len() as u16);
                match self {
                    $(Tlv::$v8(v) => dst.put_u8(*v),)*
                    $(Tlv::$v16(v) => dst.put_u16(*v),)*
                    $(Tlv::$vo(b) => dst.put_slice(b),)*
                    $(Tlv::$vc(s) => s.encode(dst),)*
                    Tlv::QosTimeToLive(v) => dst.put_u32(*v),
                    Tlv::SourceTelematicsId { value, len } => {
                        if *len == 1 {
                            dst.put_u8(*value as u8)
                        } else {
                            dst.put_u16(*value)
                        }
                    }
                    Tlv::NetworkErrorCode { network_type, error_code } => {
                        dst.put_u8(*network_type);
                        dst.put_u16(*error_code);
                    }
                    Tlv::AlertOnMessageDelivery(v) => {
                        if let Some(v) = v {
                            dst.put_u8(*v)
                        }
                    }
                    Tlv::Unknown { value, .. } => dst.put_slice(value),
                }
            }

            /// Types one TLV value. `value` must be a sub-slice of `body`.
            fn from_value(tag: TlvTag, body: &Bytes, value: &[u8]) -> Result<Tlv, PduError> {
                let len = value.len();
                let field = tag.name().unwrap_or("tlv");
                let bad_len = || Err(PduError::new(
                    CommandStatus::ESME_RINVPARLEN,
                    field,
                    ErrorKind::BadTlvLength { len: len as u16 },
                ));
                Ok(match tag {
                    $(TlvTag::$t8 => match value {
                        [v] => Tlv::$v8(*v),
                        _ => return bad_len(),
                    },)*
                    $(TlvTag::$t16 => match value {
                        [a, b] => Tlv::$v16(u16::from_be_bytes([*a, *b])),
                        _ => return bad_len(),
                    },)*
                    $(TlvTag::$to => {
                        if !($omin..=$omax).contains(&len) {
                            return bad_len();
                        }
                        Tlv::$vo(body.slice_ref(value))
                    },)*
                    $(TlvTag::$tc => {
                        if !(1..=$cmax).contains(&len) {
                            return bad_len();
                        }
                        let text = &value[..len - 1];
                        // The NUL must be last and only: the length counts it.
                        if value[len - 1] != 0 || text.contains(&0) {
                            return Err(PduError::new(
                                CommandStatus::ESME_RINVOPTPARAMVAL,
                                field,
                                ErrorKind::BadTlvValue,
                            ));
                        }
                        Tlv::$vc(COctetString::from_bytes_unchecked(body.slice_ref(text)))
                    },)*
                    TlvTag::QOS_TIME_TO_LIVE => match value {
                        [a, b, c, d] => Tlv::QosTimeToLive(u32::from_be_bytes([*a, *b, *c, *d])),
                        _ => return bad_len(),
                    },
                    TlvTag::SOURCE_TELEMATICS_ID => match value {
                        [a] => Tlv::SourceTelematicsId { value: u16::from(*a), len: 1 },
                        [a, b] => Tlv::SourceTelematicsId { value: u16::from_be_bytes([*a, *b]), len: 2 },
                        _ => return bad_len(),
                    },
                    TlvTag::NETWORK_ERROR_CODE => match value {
                        [t, a, b] => Tlv::NetworkErrorCode {
                            network_type: *t,
                            error_code: u16::from_be_bytes([*a, *b]),
                        },
                        _ => return bad_len(),
                    },
                    TlvTag::ALERT_ON_MESSAGE_DELIVERY => match value {
                        [] => Tlv::AlertOnMessageDelivery(None),
                        [v] => Tlv::AlertOnMessageDelivery(Some(*v)),
                        _ => return bad_len(),
                    },
                    _ => Tlv::Unknown { tag, value: body.slice_ref(value) },
                })
            }
        }
    };
}

define_tlv! {
    u8 {
        DestAddrSubunit = DEST_ADDR_SUBUNIT,
        DestNetworkType = DEST_NETWORK_TYPE,
        DestBearerType = DEST_BEARER_TYPE,
        SourceAddrSubunit = SOURCE_ADDR_SUBUNIT,
        SourceNetworkType = SOURCE_NETWORK_TYPE,
        SourceBearerType = SOURCE_BEARER_TYPE,
        PayloadType = PAYLOAD_TYPE,
        MsMsgWaitFacilities = MS_MSG_WAIT_FACILITIES,
        PrivacyIndicator = PRIVACY_INDICATOR,
        UserResponseCode = USER_RESPONSE_CODE,
        LanguageIndicator = LANGUAGE_INDICATOR,
        SarTotalSegments = SAR_TOTAL_SEGMENTS,
        SarSegmentSeqnum = SAR_SEGMENT_SEQNUM,
        ScInterfaceVersion = SC_INTERFACE_VERSION,
        CallbackNumPresInd = CALLBACK_NUM_PRES_IND,
        NumberOfMessages = NUMBER_OF_MESSAGES,
        DpfResult = DPF_RESULT,
        SetDpf = SET_DPF,
        MsAvailabilityStatus = MS_AVAILABILITY_STATUS,
        DeliveryFailureReason = DELIVERY_FAILURE_REASON,
        MoreMessagesToSend = MORE_MESSAGES_TO_SEND,
        MessageState = MESSAGE_STATE,
        UssdServiceOp = USSD_SERVICE_OP,
        DisplayTime = DISPLAY_TIME,
        MsValidity = MS_VALIDITY,
        ItsReplyType = ITS_REPLY_TYPE,
    }
    u16 {
        DestTelematicsId = DEST_TELEMATICS_ID,
        UserMessageReference = USER_MESSAGE_REFERENCE,
        SourcePort = SOURCE_PORT,
        DestinationPort = DESTINATION_PORT,
        SarMsgRefNum = SAR_MSG_REF_NUM,
        SmsSignal = SMS_SIGNAL,
        ItsSessionInfo = ITS_SESSION_INFO,
    }
    octets {
        SourceSubaddress = SOURCE_SUBADDRESS [2, 23],
        DestSubaddress = DEST_SUBADDRESS [2, 23],
        CallbackNumAtag = CALLBACK_NUM_ATAG [0, 65],
        CallbackNum = CALLBACK_NUM [4, 19],
        MessagePayload = MESSAGE_PAYLOAD [0, 65535],
    }
    cstring {
        AdditionalStatusInfoText = ADDITIONAL_STATUS_INFO_TEXT [256],
        ReceiptedMessageId = RECEIPTED_MESSAGE_ID [65],
    }
}

/// Parses TLVs until the end of `i` (which must be a sub-slice of `body`), keeping
/// their order. A header or value past the end → ESME_RINVOPTPARSTREAM; a bad
/// fixed length → ESME_RINVPARLEN.
pub(crate) fn parse_tlvs(body: &Bytes, mut i: &[u8]) -> Result<Vec<Tlv>, PduError> {
    let mut out = Vec::new();
    while !i.is_empty() {
        let [t0, t1, l0, l1, rest @ ..] = i else {
            return Err(PduError::new(
                CommandStatus::ESME_RINVOPTPARSTREAM,
                "tlv",
                ErrorKind::TlvOverrun,
            ));
        };
        let tag = TlvTag(u16::from_be_bytes([*t0, *t1]));
        let len = usize::from(u16::from_be_bytes([*l0, *l1]));
        if len > rest.len() {
            return Err(PduError::new(
                CommandStatus::ESME_RINVOPTPARSTREAM,
                tag.name().unwrap_or("tlv"),
                ErrorKind::TlvOverrun,
            ));
        }
        out.push(Tlv::from_value(tag, body, &rest[..len])?);
        i = &rest[len..];
    }
    Ok(out)
}

/// Appends every TLV in order.
pub(crate) fn encode_tlvs(tlvs: &[Tlv], dst: &mut BytesMut) {
    for t in tlvs {
        t.encode(dst);
    }
}

/// The `message_payload` value, if present.
pub fn message_payload(tlvs: &[Tlv]) -> Option<&Bytes> {
    tlvs.iter().find_map(|t| match t {
        Tlv::MessagePayload(b) => Some(b),
        _ => None,
    })
}

/// `(sar_msg_ref_num, sar_total_segments, sar_segment_seqnum)` as found; the
/// caller decides what a partial set means (reference §5.1: ignore it).
pub fn sar(tlvs: &[Tlv]) -> (Option<u16>, Option<u8>, Option<u8>) {
    let (mut r, mut t, mut s) = (None, None, None);
    for tlv in tlvs {
        match tlv {
            Tlv::SarMsgRefNum(v) => r = Some(*v),
            Tlv::SarTotalSegments(v) => t = Some(*v),
            Tlv::SarSegmentSeqnum(v) => s = Some(*v),
            _ => {}
        }
    }
    (r, t, s)
}

/// Fails when user data is in both `short_message` and `message_payload`.
///
/// The spec names no status for this; we answer ESME_RINVOPTPARAMVAL (the TLV
/// is the field that should not be there), as WS and several SMSCs do.
pub(crate) fn check_single_payload(short_message: &[u8], tlvs: &[Tlv]) -> Result<(), PduError> {
    if !short_message.is_empty() && message_payload(tlvs).is_some() {
        return Err(PduError::new(
            CommandStatus::ESME_RINVOPTPARAMVAL,
            "message_payload",
            ErrorKind::BothPayloads,
        ));
    }
    Ok(())
}
