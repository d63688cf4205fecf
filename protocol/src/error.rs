//! Decode errors. Every error carries the `command_status` the peer should be
//! answered with and the spec name of the field that failed.

use crate::command_status::CommandStatus;

/// What went wrong with a field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ErrorKind {
    /// The body ended inside a fixed-size field.
    #[error("body ends inside the field")]
    Truncated,
    /// A C-Octet String has no NUL before the end of the body.
    #[error("C-Octet String has no terminating NUL")]
    MissingNul,
    /// A C-Octet String is longer than its maximum (which counts the NUL).
    #[error("C-Octet String longer than its maximum of {max} octets")]
    TooLong {
        /// The maximum, NUL included.
        max: usize,
    },
    /// A time field is neither NULL nor exactly 16 characters.
    #[error("time field must be empty or exactly 16 characters, got {len}")]
    BadTimeLength {
        /// Number of characters found (without the NUL).
        len: usize,
    },
    /// `sm_length` is above 254 or past the end of the body.
    #[error("sm_length {sm_length} is above 254 or past the end of the body")]
    BadSmLength {
        /// The value of `sm_length`.
        sm_length: u8,
    },
    /// A TLV header or value runs past the end of the body.
    #[error("TLV runs past the end of the body")]
    TlvOverrun,
    /// A TLV has a length its tag does not allow.
    #[error("TLV length {len} is invalid for this tag")]
    BadTlvLength {
        /// The length found in the TLV header.
        len: u16,
    },
    /// A TLV value is invalid (e.g. a C-string TLV without its NUL).
    #[error("invalid TLV value")]
    BadTlvValue,
    /// Both `short_message` and `message_payload` carry user data.
    #[error("both short_message and message_payload are present")]
    BothPayloads,
    /// Bytes left after a PDU that has no body (or after its mandatory fields).
    #[error("{count} unexpected trailing octets")]
    TrailingBytes {
        /// Number of extra octets.
        count: usize,
    },
    /// `number_of_dests` is 0 or above 254.
    #[error("number_of_dests {0} must be 1..=254")]
    BadNumberOfDests(u8),
    /// `dest_flag` is neither 1 (SME address) nor 2 (distribution list).
    #[error("dest_flag {0} is neither 1 nor 2")]
    BadDestFlag(u8),
    /// `command_id` is not an SMPP v3.4 command.
    #[error("unknown command_id")]
    UnknownCommandId,
    /// `command_length` is below 16 or disagrees with the frame.
    #[error("command_length {0} is inconsistent with the frame")]
    BadCommandLength(u32),
}

/// A PDU that could not be decoded.
///
/// `status` is what a session answers with (in the PDU's own `_resp`, or in a
/// `generic_nack` for [`CommandStatus::ESME_RINVCMDID`]); `field` is the spec
/// name of the field that failed, e.g. `"destination_addr"` or `"message_payload"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {kind} ({status:?})")]
pub struct PduError {
    /// Status to answer with.
    pub status: CommandStatus,
    /// Spec name of the failing field.
    pub field: &'static str,
    /// What was wrong.
    pub kind: ErrorKind,
}

impl PduError {
    /// Builds an error.
    pub fn new(status: CommandStatus, field: &'static str, kind: ErrorKind) -> Self {
        PduError {
            status,
            field,
            kind,
        }
    }

    /// The `command_status` to answer this PDU with.
    pub fn command_status(&self) -> CommandStatus {
        self.status
    }

    /// Spec name of the field that failed.
    pub fn field(&self) -> &'static str {
        self.field
    }
}

/// Conventional status for a C-Octet String that is too long or has no NUL
/// (reference §3.15, after jsmpp's `StringParameter`).
pub(crate) fn cstring_status(field: &'static str) -> CommandStatus {
    match field {
        "system_id" => CommandStatus::ESME_RINVSYSID,
        "password" => CommandStatus::ESME_RINVPASWD,
        "system_type" => CommandStatus::ESME_RINVSYSTYP,
        "service_type" => CommandStatus::ESME_RINVSERTYP,
        "source_addr" | "esme_addr" => CommandStatus::ESME_RINVSRCADR,
        "destination_addr" => CommandStatus::ESME_RINVDSTADR,
        "schedule_delivery_time" => CommandStatus::ESME_RINVSCHED,
        "validity_period" => CommandStatus::ESME_RINVEXPIRY,
        "message_id" => CommandStatus::ESME_RINVMSGID,
        "dl_name" => CommandStatus::ESME_RINVDLNAME,
        "address_range" => CommandStatus::ESME_RBINDFAIL,
        // final_date (a response field) and anything else: no convention exists; the
        // PDU is malformed as a whole.
        _ => CommandStatus::ESME_RUNKNOWNERR,
    }
}
