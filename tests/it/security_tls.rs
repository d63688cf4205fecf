//! TLS with modern defaults only: TLS 1.2 and 1.3 handshakes succeed (AEAD suites
//! with forward secrecy), TLS 1.0 / 1.1 and legacy cipher suites get an alert.

use std::sync::Arc;
use std::time::Duration;

use smpp_protocol::CommandStatus;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::support::config::TestConfig;
use crate::support::esme::{BindAs, Esme};
use crate::support::hostile;
use crate::support::server_harness::{start_with, Options, TestServer};

async fn tls_server() -> TestServer {
    start_with(
        TestConfig::new().esme("acme", ""),
        Options {
            tls: true,
            service: None,
        },
    )
    .await
}

fn client_config(
    ca: &[u8],
    versions: &[&'static rustls::SupportedProtocolVersion],
) -> rustls::ClientConfig {
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(rustls::pki_types::CertificateDer::from(ca.to_vec()))
        .unwrap();
    rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_protocol_versions(versions)
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth()
}

/// A TLS 1.2-only and a TLS 1.3-only client both complete the handshake with the
/// version they asked for and an AEAD suite, and bind.
#[tokio::test]
async fn tls_1_2_and_1_3_clients_both_bind() {
    let s = tls_server().await;
    let ca = s.ca_der.clone().unwrap();
    for (version, want) in [
        (&rustls::version::TLS12, rustls::ProtocolVersion::TLSv1_2),
        (&rustls::version::TLS13, rustls::ProtocolVersion::TLSv1_3),
    ] {
        let connector = tokio_rustls::TlsConnector::from(Arc::new(client_config(&ca, &[version])));
        let tcp = tokio::net::TcpStream::connect(s.tls_addr.unwrap())
            .await
            .unwrap();
        let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
        let tls = tokio::time::timeout(Duration::from_secs(5), connector.connect(name, tcp))
            .await
            .unwrap()
            .unwrap_or_else(|e| panic!("{want:?} handshake failed: {e}"));
        let (_, conn) = tls.get_ref();
        assert_eq!(conn.protocol_version(), Some(want));
        let suite = format!("{:?}", conn.negotiated_cipher_suite().unwrap().suite());
        assert!(
            suite.contains("GCM") || suite.contains("CHACHA20_POLY1305"),
            "{want:?}: {suite}"
        );
        if want == rustls::ProtocolVersion::TLSv1_2 {
            assert!(suite.contains("ECDHE"), "forward secrecy: {suite}");
        }
        let c = Esme::from_io(Box::new(tls));
        let r = c.bind(BindAs::Trx, "acme", "pw").await;
        assert_eq!(r.command_status, CommandStatus::ESME_ROK, "{want:?}");
    }
}

const ECDHE_ECDSA_AES128_GCM: u16 = 0xC02B;
const ECDHE_RSA_AES128_GCM: u16 = 0xC02F;
const ECDHE_RSA_AES128_CBC_SHA: u16 = 0xC013;
const ECDHE_ECDSA_AES128_CBC_SHA: u16 = 0xC009;
const RSA_AES128_CBC_SHA: u16 = 0x002F;
const RSA_3DES_EDE_CBC_SHA: u16 = 0x000A;
const RSA_RC4_128_SHA: u16 = 0x0005;

fn u16be(v: usize) -> [u8; 2] {
    (v as u16).to_be_bytes()
}

fn ext(kind: u16, data: &[u8]) -> Vec<u8> {
    let mut e = kind.to_be_bytes().to_vec();
    e.extend_from_slice(&u16be(data.len()));
    e.extend_from_slice(data);
    e
}

/// A hand-made ClientHello (rustls cannot produce the old versions): `version` as
/// client_version, the given suites, and the extensions a TLS 1.2 server needs
/// (groups, point formats, signature algorithms).
fn client_hello(version: u16, suites: &[u16]) -> Vec<u8> {
    let mut body = version.to_be_bytes().to_vec();
    body.extend_from_slice(&[0x5A; 32]); // random
    body.push(0); // session_id
    body.extend_from_slice(&u16be(suites.len() * 2));
    for s in suites {
        body.extend_from_slice(&s.to_be_bytes());
    }
    body.extend_from_slice(&[1, 0]); // compression: null
    let mut exts = Vec::new();
    // supported_groups: x25519, secp256r1, secp384r1
    exts.extend(ext(0x000A, &[0, 6, 0x00, 0x1D, 0x00, 0x17, 0x00, 0x18]));
    // ec_point_formats: uncompressed
    exts.extend(ext(0x000B, &[1, 0]));
    // signature_algorithms: ecdsa_secp256r1_sha256, rsa_pss_rsae_sha256, rsa_pkcs1_sha256
    exts.extend(ext(0x000D, &[0, 6, 0x04, 0x03, 0x08, 0x04, 0x04, 0x01]));
    body.extend_from_slice(&u16be(exts.len()));
    body.extend(exts);
    let mut hs = vec![1]; // client_hello
    hs.extend_from_slice(&(body.len() as u32).to_be_bytes()[1..]);
    hs.extend(body);
    let mut rec = vec![0x16, 0x03, 0x01];
    rec.extend_from_slice(&u16be(hs.len()));
    rec.extend(hs);
    rec
}

/// Sends `hello` to the TLS port; returns the first record the server answers with:
/// (content type, first two octets of its payload).
async fn first_record(s: &TestServer, hello: &[u8]) -> (u8, [u8; 2]) {
    let mut tcp = tokio::net::TcpStream::connect(s.tls_addr.unwrap())
        .await
        .unwrap();
    tcp.write_all(hello).await.unwrap();
    let mut head = [0u8; 7];
    tokio::time::timeout(Duration::from_secs(5), tcp.read_exact(&mut head))
        .await
        .expect("no answer to the ClientHello")
        .expect("closed without a TLS record");
    (head[0], [head[5], head[6]])
}

const HANDSHAKE: u8 = 0x16;
const ALERT: u8 = 0x15;
const FATAL: u8 = 2;
const PROTOCOL_VERSION: u8 = 70;
const HANDSHAKE_FAILURE: u8 = 40;

#[tokio::test]
async fn old_protocol_versions_and_legacy_suites_are_refused() {
    let s = tls_server().await;
    let modern = [ECDHE_ECDSA_AES128_GCM, ECDHE_RSA_AES128_GCM];
    let legacy = [
        ECDHE_ECDSA_AES128_CBC_SHA,
        ECDHE_RSA_AES128_CBC_SHA,
        RSA_AES128_CBC_SHA,
        RSA_3DES_EDE_CBC_SHA,
        RSA_RC4_128_SHA,
    ];
    // Control: the hand-made hello is good enough for a TLS 1.2 ServerHello, so the
    // alerts below are about the version or suites, not a broken hello.
    let (kind, payload) = first_record(&s, &client_hello(0x0303, &modern)).await;
    assert_eq!(
        kind, HANDSHAKE,
        "TLS 1.2 with AEAD suites gets a ServerHello"
    );
    assert_eq!(payload[0], 2, "server_hello");

    let mut both: Vec<u16> = modern.to_vec();
    both.extend(legacy);
    for (what, version) in [("TLS 1.0", 0x0301u16), ("TLS 1.1", 0x0302)] {
        let (kind, alert) = first_record(&s, &client_hello(version, &both)).await;
        assert_eq!(kind, ALERT, "{what}: no ServerHello");
        assert_eq!(alert, [FATAL, PROTOCOL_VERSION], "{what}");
    }
    let (kind, alert) = first_record(&s, &client_hello(0x0303, &legacy)).await;
    assert_eq!(kind, ALERT, "legacy suites only: no ServerHello");
    assert_eq!(alert, [FATAL, HANDSHAKE_FAILURE]);

    // The refused handshakes cost nothing else.
    let c = Esme::connect_tls(s.tls_addr.unwrap(), s.ca_der.as_ref().unwrap()).await;
    let r = c.bind(BindAs::Trx, "acme", "pw").await;
    assert_eq!(r.command_status, CommandStatus::ESME_ROK);
    hostile::still_serves(s.addr, "acme").await;
}
