//! Helpers shared by the hostile-input and security tests: codec fixtures, raw
//! sockets that can send arbitrary bytes, and the "server still serves" check.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use futures::StreamExt;
use smpp_protocol::codec::SmppCodec;
use smpp_protocol::{CommandId, CommandStatus, Pdu};
use tokio::net::tcp::OwnedReadHalf;
use tokio_util::codec::FramedRead;

use crate::support::esme::{BindAs, Esme, WAIT};
use crate::support::messages::submit_sm;

/// One `fixtures/pdu/malformed_*.hex` file.
pub struct Fixture {
    pub name: String,
    pub bytes: Vec<u8>,
    /// The status named on the `# expect:` line.
    pub status: CommandStatus,
}

impl Fixture {
    pub fn command_id(&self) -> CommandId {
        CommandId(u32::from_be_bytes(self.bytes[4..8].try_into().unwrap()))
    }

    pub fn command_length(&self) -> u32 {
        u32::from_be_bytes(self.bytes[0..4].try_into().unwrap())
    }

    /// The bytes with sequence_number replaced, so each answer can be told apart.
    pub fn with_seq(&self, seq: u32) -> Vec<u8> {
        let mut b = self.bytes.clone();
        b[12..16].copy_from_slice(&seq.to_be_bytes());
        b
    }
}

pub fn fixture_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/pdu")
}

/// Every malformed fixture, sorted by name (fails if there are none).
pub fn malformed_fixtures() -> Vec<Fixture> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(fixture_dir()).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_stem().unwrap().to_string_lossy().into_owned();
        if !name.starts_with("malformed_") || path.extension().is_none_or(|e| e != "hex") {
            continue;
        }
        out.push(parse_fixture(
            &name,
            &std::fs::read_to_string(&path).unwrap(),
        ));
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    assert!(out.len() >= 20, "expected the codec's malformed fixtures");
    out
}

fn parse_fixture(name: &str, text: &str) -> Fixture {
    let first = text.lines().next().unwrap();
    let status_name = first
        .strip_prefix("# expect: ")
        .and_then(|r| r.split_whitespace().next())
        .unwrap_or_else(|| panic!("{name}: first line must be `# expect: STATUS ...`"));
    let status = *CommandStatus::ALL
        .iter()
        .find(|s| s.name() == Some(status_name))
        .unwrap_or_else(|| panic!("{name}: unknown status {status_name}"));
    let mut bytes = Vec::new();
    for line in text.lines() {
        let data = line.split('#').next().unwrap();
        for tok in data.split_whitespace() {
            bytes.push(u8::from_str_radix(tok, 16).unwrap());
        }
    }
    Fixture {
        name: name.to_string(),
        bytes,
        status,
    }
}

/// The well-behaved client every test ends with: it binds as a transceiver and a
/// submit_sm is answered ESME_ROK.
pub async fn still_serves(addr: SocketAddr, system_id: &str) {
    let c = Esme::bound(addr, BindAs::Trx, system_id, "pw").await;
    let r = c.submit(submit_sm("4915112345", b"after the storm")).await;
    assert_eq!(r.command_status, CommandStatus::ESME_ROK, "{r:?}");
}

/// What a raw reader saw before the connection ended.
#[derive(Debug)]
pub struct Ending {
    pub pdus: Vec<Pdu>,
    /// When the end (EOF or reset) was seen.
    pub at: tokio::time::Instant,
}

/// Reads PDUs until EOF/reset (at most `limit`); panics on timeout or on an
/// undecodable PDU from the server.
pub async fn read_until_closed(
    reader: &mut FramedRead<OwnedReadHalf, SmppCodec>,
    limit: Duration,
) -> Ending {
    let mut pdus = Vec::new();
    tokio::time::timeout(limit, async {
        loop {
            match reader.next().await {
                None | Some(Err(_)) => {
                    return Ending {
                        pdus,
                        at: tokio::time::Instant::now(),
                    }
                }
                Some(Ok(Ok(p))) => pdus.push(p),
                Some(Ok(Err(e))) => panic!("undecodable PDU from the server: {e}"),
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("connection not closed within {limit:?}"))
}

/// Asserts `pdus` is exactly one generic_nack(ESME_RINVCMDLEN) with sequence 0.
pub fn assert_cmdlen_nack(pdus: &[Pdu], what: &str) {
    assert_eq!(pdus.len(), 1, "{what}: {pdus:?}");
    let p = &pdus[0];
    assert_eq!(p.command_id(), CommandId::GENERIC_NACK, "{what}: {p:?}");
    assert_eq!(p.command_status, CommandStatus::ESME_RINVCMDLEN, "{what}");
    assert_eq!(p.sequence_number, 0, "{what}");
}

/// A raw TCP connection split into a PDU reader and a byte writer.
pub async fn raw_connect(
    addr: SocketAddr,
) -> (
    FramedRead<OwnedReadHalf, SmppCodec>,
    tokio::net::tcp::OwnedWriteHalf,
) {
    let s = tokio::time::timeout(WAIT, tokio::net::TcpStream::connect(addr))
        .await
        .unwrap()
        .unwrap();
    let (r, w) = s.into_split();
    (FramedRead::new(r, SmppCodec::new()), w)
}

/// A small deterministic generator for "random" garbage (xorshift64*).
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.max(1))
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    pub fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next_u64() as u8).collect()
    }
}

/// Panics recorded by [`install_panic_recorder`], with the thread each was raised on.
static PANICS: std::sync::Mutex<Vec<(std::thread::ThreadId, String)>> =
    std::sync::Mutex::new(Vec::new());

/// Records every panic raised outside the test files themselves (the server's code,
/// the codec, dependencies), so a test can assert that hostile input panicked
/// nothing — a panicking session task would otherwise just vanish.
pub fn install_panic_recorder() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let file = info.location().map(|l| l.file()).unwrap_or("");
            if !file.starts_with("tests/") && !file.contains("/tests/") {
                PANICS
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push((std::thread::current().id(), info.to_string()));
            }
            previous(info);
        }));
    });
}

/// Panics recorded outside the test files so far on this thread. The hook is
/// process-wide and every integration test shares the process, so a test sees only
/// its own thread's: a `#[tokio::test]` (current-thread runtime) runs the server it
/// starts, and every session task of it, on that thread.
pub fn server_panics() -> Vec<String> {
    let me = std::thread::current().id();
    PANICS
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .iter()
        .filter(|(thread, _)| *thread == me)
        .map(|(_, p)| p.clone())
        .collect()
}
