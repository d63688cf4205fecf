//! The 16-octet PDU header (reference §1.2).
//!
//! ```text
//!  0               4               8               12              16
//! +---------------+---------------+---------------+---------------+
//! |command_length |  command_id   |command_status |sequence_number|
//! +---------------+---------------+---------------+---------------+
//! ```

use bytes::{BufMut, BytesMut};

use crate::command_id::CommandId;
use crate::command_status::CommandStatus;

/// A decoded PDU header. `command_length` counts the header itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct Header {
    /// Total PDU length in octets, header included.
    pub command_length: u32,
    /// Which operation this PDU is.
    pub command_id: CommandId,
    /// Result code (0 in requests).
    pub command_status: CommandStatus,
    /// Links a response to its request.
    pub sequence_number: u32,
}

impl Header {
    /// Size of the header in octets, which is also the minimum `command_length`.
    pub const LEN: usize = 16;

    /// Reads a header from the first 16 octets of `buf`; `None` if `buf` is shorter.
    /// No validation: framing checks belong to the caller (the codec).
    #[inline]
    pub fn parse(buf: &[u8]) -> Option<Header> {
        let b: &[u8; 16] = buf.get(..Self::LEN)?.try_into().ok()?;
        let word = |i: usize| u32::from_be_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
        Some(Header {
            command_length: word(0),
            command_id: CommandId(word(4)),
            command_status: CommandStatus(word(8)),
            sequence_number: word(12),
        })
    }

    /// Appends the 16 header octets to `dst`.
    #[inline]
    pub fn encode(&self, dst: &mut BytesMut) {
        dst.put_u32(self.command_length);
        dst.put_u32(self.command_id.0);
        dst.put_u32(self.command_status.0);
        dst.put_u32(self.sequence_number);
    }
}
