//! `command_id`: which operation a PDU is (reference §2.2).

use std::fmt;

/// An SMPP `command_id`. Open newtype: unknown values still parse and print as
/// `CommandId(0x…)`, so a peer speaking a newer protocol does not break decoding
/// of the header.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CommandId(pub u32);

macro_rules! command_ids {
    ($($name:ident = $value:expr, $text:literal;)*) => {
        impl CommandId {
            $(
                #[allow(missing_docs)]
                pub const $name: CommandId = CommandId($value);
            )*

            /// Spec name (`"submit_sm"`), or `None` for a value not in SMPP v3.4.
            pub fn name(self) -> Option<&'static str> {
                match self {
                    $(CommandId::$name => Some($text),)*
                    _ => None,
                }
            }

            /// Every command id defined by SMPP v3.4.
            pub const ALL: &'static [CommandId] = &[$(CommandId::$name),*];
        }
    };
}

command_ids! {
    GENERIC_NACK = 0x8000_0000, "generic_nack";
    BIND_RECEIVER = 0x0000_0001, "bind_receiver";
    BIND_RECEIVER_RESP = 0x8000_0001, "bind_receiver_resp";
    BIND_TRANSMITTER = 0x0000_0002, "bind_transmitter";
    BIND_TRANSMITTER_RESP = 0x8000_0002, "bind_transmitter_resp";
    QUERY_SM = 0x0000_0003, "query_sm";
    QUERY_SM_RESP = 0x8000_0003, "query_sm_resp";
    SUBMIT_SM = 0x0000_0004, "submit_sm";
    SUBMIT_SM_RESP = 0x8000_0004, "submit_sm_resp";
    DELIVER_SM = 0x0000_0005, "deliver_sm";
    DELIVER_SM_RESP = 0x8000_0005, "deliver_sm_resp";
    UNBIND = 0x0000_0006, "unbind";
    UNBIND_RESP = 0x8000_0006, "unbind_resp";
    REPLACE_SM = 0x0000_0007, "replace_sm";
    REPLACE_SM_RESP = 0x8000_0007, "replace_sm_resp";
    CANCEL_SM = 0x0000_0008, "cancel_sm";
    CANCEL_SM_RESP = 0x8000_0008, "cancel_sm_resp";
    BIND_TRANSCEIVER = 0x0000_0009, "bind_transceiver";
    BIND_TRANSCEIVER_RESP = 0x8000_0009, "bind_transceiver_resp";
    OUTBIND = 0x0000_000B, "outbind";
    ENQUIRE_LINK = 0x0000_0015, "enquire_link";
    ENQUIRE_LINK_RESP = 0x8000_0015, "enquire_link_resp";
    SUBMIT_MULTI = 0x0000_0021, "submit_multi";
    SUBMIT_MULTI_RESP = 0x8000_0021, "submit_multi_resp";
    ALERT_NOTIFICATION = 0x0000_0102, "alert_notification";
    DATA_SM = 0x0000_0103, "data_sm";
    DATA_SM_RESP = 0x8000_0103, "data_sm_resp";
}

impl CommandId {
    /// Bit 31 marks a response.
    pub const RESPONSE_BIT: u32 = 0x8000_0000;

    /// The id of this request's response (bit 31 set). Idempotent on responses.
    pub fn response(self) -> CommandId {
        CommandId(self.0 | Self::RESPONSE_BIT)
    }

    /// True when bit 31 is set (a response or `generic_nack`).
    pub fn is_response(self) -> bool {
        self.0 & Self::RESPONSE_BIT != 0
    }

    /// True for ids defined by SMPP v3.4.
    pub fn is_known(self) -> bool {
        self.name().is_some()
    }

    /// True for requests that have no response PDU (`outbind`, `alert_notification`).
    pub fn has_no_response(self) -> bool {
        matches!(self, CommandId::OUTBIND | CommandId::ALERT_NOTIFICATION)
    }
}

impl fmt::Debug for CommandId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(n) => f.write_str(n),
            None => write!(f, "CommandId(0x{:08x})", self.0),
        }
    }
}

impl fmt::Display for CommandId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

impl From<u32> for CommandId {
    fn from(v: u32) -> Self {
        CommandId(v)
    }
}

impl From<CommandId> for u32 {
    fn from(v: CommandId) -> Self {
        v.0
    }
}

/// Serialized as the spec name when known, otherwise as the number.
#[cfg(feature = "serde")]
impl serde::Serialize for CommandId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.name() {
            Some(n) => s.serialize_str(n),
            None => s.serialize_u32(self.0),
        }
    }
}
