//! `tokio_util::codec` framing for SMPP streams (feature `tokio-codec`).
//!
//! Framing follows `LengthDelimitedCodec` with "length includes header":
//! `command_length` is read from the first 4 octets and checked against
//! 16..=`max_length` **before** any buffer is reserved.
//!
//! Item type: `Result<Pdu, InvalidPdu>`.
//! - `Ok(pdu)`: a well-formed PDU.
//! - `Err(InvalidPdu { header, error })`: the frame was consumed but its body did
//!   not decode (or its command_id is unknown). The stream stays usable; the
//!   session answers using `header.sequence_number` and `error.command_status()`
//!   (see [`Pdu::error_response`]).
//!
//! Only framing faults (`command_length` < 16 or > max) are returned as the
//! codec's `Err` ([`FrameError`]): the byte stream can no longer be trusted, so
//! the session sends `generic_nack(ESME_RINVCMDLEN)` and closes.

use bytes::{Buf, BytesMut};
use tokio_util::codec::{Decoder, Encoder};

use crate::error::PduError;
use crate::header::Header;
use crate::pdu::Pdu;

/// Default maximum `command_length`: 64 KiB (reference §1.3).
pub const DEFAULT_MAX_LENGTH: usize = 64 * 1024;

/// A frame whose body failed to decode; the frame has been consumed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{} seq {}: {error}", header.command_id, header.sequence_number)]
pub struct InvalidPdu {
    /// The frame's header (valid framing, so safe to answer).
    pub header: Header,
    /// Why the body failed; carries the `command_status` to answer with.
    pub error: PduError,
}

/// A fault that ends the stream.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    /// `command_length` is below 16 or above the configured maximum.
    #[error("command_length {command_length} outside 16..={max}")]
    InvalidLength {
        /// The length read.
        command_length: u32,
        /// The configured maximum.
        max: usize,
        /// The sequence number, if the whole header had arrived (for the nack).
        sequence_number: Option<u32>,
    },
    /// The underlying transport failed.
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// SMPP framing codec. Decodes `Result<Pdu, InvalidPdu>`, encodes `Pdu`/`&Pdu`.
#[derive(Debug, Clone, Copy)]
pub struct SmppCodec {
    max_length: usize,
}

impl Default for SmppCodec {
    fn default() -> Self {
        Self::new()
    }
}

impl SmppCodec {
    /// Codec with the default 64 KiB maximum.
    pub fn new() -> Self {
        SmppCodec {
            max_length: DEFAULT_MAX_LENGTH,
        }
    }

    /// Codec accepting PDUs up to `max_length` octets (header included).
    /// Values below 16 are raised to 16.
    pub fn with_max_length(max_length: usize) -> Self {
        SmppCodec {
            max_length: max_length.max(Header::LEN),
        }
    }

    /// The configured maximum.
    pub fn max_length(&self) -> usize {
        self.max_length
    }

    /// Changes the maximum for the frames still to come (a session raises it once
    /// bound). Values below 16 are raised to 16.
    pub fn set_max_length(&mut self, max_length: usize) {
        self.max_length = max_length.max(Header::LEN);
    }
}

impl Decoder for SmppCodec {
    type Item = Result<Pdu, InvalidPdu>;
    type Error = FrameError;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Self::Item>, FrameError> {
        let Some(len_bytes) = src.get(..4) else {
            return Ok(None);
        };
        let command_length =
            u32::from_be_bytes([len_bytes[0], len_bytes[1], len_bytes[2], len_bytes[3]]);
        let len = command_length as usize;
        if len < Header::LEN || len > self.max_length {
            return Err(FrameError::InvalidLength {
                command_length,
                max: self.max_length,
                sequence_number: Header::parse(src).map(|h| h.sequence_number),
            });
        }
        if src.len() < len {
            src.reserve(len - src.len());
            return Ok(None);
        }
        let mut frame = src.split_to(len).freeze();
        let Some(header) = Header::parse(&frame) else {
            // Unreachable: len >= 16 was checked above.
            return Ok(None);
        };
        frame.advance(Header::LEN);
        Ok(Some(
            Pdu::decode_body(&header, &frame).map_err(|error| InvalidPdu { header, error }),
        ))
    }
}

impl Encoder<&Pdu> for SmppCodec {
    type Error = FrameError;

    fn encode(&mut self, pdu: &Pdu, dst: &mut BytesMut) -> Result<(), FrameError> {
        pdu.encode(dst);
        Ok(())
    }
}

impl Encoder<Pdu> for SmppCodec {
    type Error = FrameError;

    fn encode(&mut self, pdu: Pdu, dst: &mut BytesMut) -> Result<(), FrameError> {
        pdu.encode(dst);
        Ok(())
    }
}
