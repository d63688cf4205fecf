//! Helpers shared by the integration tests (included with `mod common;`).
#![allow(dead_code, clippy::unwrap_used)]

use std::path::PathBuf;

use bytes::Bytes;
use smpp_protocol::COctetString;

/// `fixtures/pdu/` at the workspace root.
pub fn fixtures_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fixtures/pdu")
}

/// Reads a `.hex` fixture: whitespace-separated hex octets, `#` comments.
pub fn load_hex(name: &str) -> Bytes {
    let text = std::fs::read_to_string(fixtures_dir().join(format!("{name}.hex")))
        .unwrap_or_else(|e| panic!("fixture {name}: {e}"));
    let mut out = Vec::new();
    for line in text.lines() {
        let data = line.split('#').next().unwrap();
        for tok in data.split_whitespace() {
            out.push(
                u8::from_str_radix(tok, 16).unwrap_or_else(|_| panic!("{name}: bad hex {tok}")),
            );
        }
    }
    Bytes::from(out)
}

/// The first-line `# expect: STATUS field=NAME` of a malformed fixture.
pub fn expectation(name: &str) -> (String, String) {
    let text = std::fs::read_to_string(fixtures_dir().join(format!("{name}.hex"))).unwrap();
    let first = text.lines().next().unwrap();
    let rest = first
        .strip_prefix("# expect: ")
        .unwrap_or_else(|| panic!("{name}: first line must be `# expect: STATUS field=NAME`"));
    let (status, field) = rest.split_once(" field=").unwrap();
    (status.trim().to_string(), field.trim().to_string())
}

/// A C-Octet String from a literal.
pub fn cs(s: &str) -> COctetString {
    COctetString::try_from(s).unwrap()
}
