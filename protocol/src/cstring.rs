//! C-Octet Strings: ASCII text terminated by one NUL (reference §1.6).

use std::fmt;

use bytes::{BufMut, Bytes, BytesMut};

/// A C-Octet String **without** its terminating NUL.
///
/// Decoding slices it out of the received frame (no copy, no allocation). The
/// constructor guarantees there is no NUL inside, so encoding can always append
/// exactly one. The contents are normally ASCII but are not required to be: the
/// spec's "ASCII" is not enforced on input, so peers sending Latin-1 in
/// `source_addr` still decode.
#[derive(Clone, PartialEq, Eq, Hash, Default, PartialOrd, Ord)]
pub struct COctetString(Bytes);

/// The text contained a NUL octet, which a C-Octet String cannot carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("C-Octet String cannot contain a NUL octet")]
pub struct InteriorNul;

impl COctetString {
    /// The empty (NULL) string, encoded as a single `0x00`.
    pub const fn empty() -> Self {
        COctetString(Bytes::new())
    }

    /// Wraps `bytes` (without NUL). Fails if they contain a NUL.
    pub fn new(bytes: impl Into<Bytes>) -> Result<Self, InteriorNul> {
        let b = bytes.into();
        if b.contains(&0) {
            return Err(InteriorNul);
        }
        Ok(COctetString(b))
    }

    /// Wraps a static string. Fails if it contains a NUL.
    pub fn from_static(s: &'static str) -> Result<Self, InteriorNul> {
        Self::new(Bytes::from_static(s.as_bytes()))
    }

    /// Caller guarantees `b` has no NUL (the decoder stops at the first one).
    pub(crate) fn from_bytes_unchecked(b: Bytes) -> Self {
        COctetString(b)
    }

    /// The octets, without the NUL.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// The octets as a cheap `Bytes` handle.
    pub fn to_bytes(&self) -> Bytes {
        self.0.clone()
    }

    /// The text if it is valid UTF-8 (always so for ASCII).
    pub fn as_str(&self) -> Option<&str> {
        std::str::from_utf8(&self.0).ok()
    }

    /// The text, with invalid UTF-8 replaced.
    pub fn to_string_lossy(&self) -> std::borrow::Cow<'_, str> {
        String::from_utf8_lossy(&self.0)
    }

    /// Length in octets, without the NUL.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True for the NULL string.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Encoded size: the text plus its NUL.
    pub fn encoded_len(&self) -> usize {
        self.0.len() + 1
    }

    /// Appends the text and its NUL.
    #[inline]
    pub fn encode(&self, dst: &mut BytesMut) {
        dst.put_slice(&self.0);
        dst.put_u8(0);
    }
}

impl TryFrom<&str> for COctetString {
    type Error = InteriorNul;
    fn try_from(s: &str) -> Result<Self, InteriorNul> {
        Self::new(Bytes::copy_from_slice(s.as_bytes()))
    }
}

impl TryFrom<String> for COctetString {
    type Error = InteriorNul;
    fn try_from(s: String) -> Result<Self, InteriorNul> {
        Self::new(Bytes::from(s))
    }
}

impl PartialEq<str> for COctetString {
    fn eq(&self, other: &str) -> bool {
        self.0 == other.as_bytes()
    }
}

impl PartialEq<&str> for COctetString {
    fn eq(&self, other: &&str) -> bool {
        self.0 == other.as_bytes()
    }
}

impl fmt::Debug for COctetString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.to_string_lossy(), f)
    }
}

impl fmt::Display for COctetString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_string_lossy())
    }
}

#[cfg(feature = "serde")]
impl serde::Serialize for COctetString {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string_lossy())
    }
}
