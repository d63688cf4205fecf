//! SMPP v3.4 protocol codec. Pure library: no I/O, no async runtime.
//!
//! # Layout
//! - [`header`], [`command_id`], [`command_status`]: the 16-octet header and its
//!   open wire-code newtypes.
//! - [`cstring`]: zero-copy C-Octet Strings; [`tlv`]: typed optional parameters.
//! - [`pdu`]: [`Pdu`] / [`Body`], one file per PDU family (decode + encode).
//! - [`udh`]: concatenation info (UDH IEI 0x00/0x08, SAR TLVs); [`gsm7`], [`text`]:
//!   GSM 03.38 and data_coding → Unicode, [`gsm7_national`]: the national language
//!   tables of 23.038 Annex A; [`time`]: SMPP time formats;
//!   [`receipt`]: delivery-receipt text.
//! - [`error`]: [`PduError`] carries the `command_status` to answer with and the
//!   name of the failing field.
//! - `codec` (feature `tokio-codec`): framing for `tokio_util::codec`.
//!
//! Decoding takes a `Bytes` frame and slices every string out of it, so a decoded
//! PDU owns no separately allocated strings. Encoding appends to a `BytesMut`.

pub mod command_id;
pub mod command_status;
pub mod cstring;
pub mod error;
pub mod gsm7;
pub mod gsm7_national;
pub mod header;
mod parse;
pub mod pdu;
pub mod receipt;
#[cfg(feature = "serde")]
mod serde_hex;
pub mod text;
pub mod time;
pub mod tlv;
pub mod udh;

#[cfg(feature = "tokio-codec")]
pub mod codec;

pub use command_id::CommandId;
pub use command_status::CommandStatus;
pub use cstring::COctetString;
pub use error::{ErrorKind, PduError};
pub use header::Header;
pub use pdu::*;
pub use tlv::{Tlv, TlvTag};
