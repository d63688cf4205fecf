//! Serialize octet strings as lowercase hex in JSON output.

/// Serializes bytes as a hex string.
pub(crate) fn bytes<S: serde::Serializer>(b: &bytes::Bytes, s: S) -> Result<S::Ok, S::Error> {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(b.len() * 2);
    for &x in b.iter() {
        out.push(char::from(HEX[usize::from(x >> 4)]));
        out.push(char::from(HEX[usize::from(x & 0xf)]));
    }
    s.serialize_str(&out)
}
