//! The wrong protocol on each port: a TLS ClientHello on the plain SMPP port and
//! plain SMPP on the TLS port. Each is closed cleanly and both ports keep serving.
//! Accounts with tls_required are refused on the plain port.

use std::time::Duration;

use smpp_protocol::{Body, CommandStatus, Pdu};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::support::config::TestConfig;
use crate::support::esme::{self, bind_body, BindAs, Esme};
use crate::support::hostile::{assert_cmdlen_nack, raw_connect, read_until_closed, still_serves};
use crate::support::messages::{encode, submit_sm};
use crate::support::server_harness::{start_with, Options, TestServer};

fn cfg() -> TestConfig {
    let mut c = TestConfig::new();
    c.esme("acme", "").esme("secure", "tls_required = true");
    c
}

async fn tls_server() -> TestServer {
    start_with(
        &cfg(),
        Options {
            tls: true,
            service: None,
        },
    )
    .await
}

/// The first flight of a TLS client (its ClientHello records), as sent on the wire.
fn client_hello(ca: &[u8]) -> Vec<u8> {
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let mut conn = rustls::ClientConnection::new(esme::tls_client_config(ca), name).unwrap();
    let mut out = Vec::new();
    while conn.wants_write() {
        conn.write_tls(&mut out).unwrap();
    }
    assert_eq!(out[0], 0x16, "a TLS handshake record");
    out
}

/// Both ports still work: a plain and a TLS client bind and submit.
async fn both_ports_serve(s: &TestServer) {
    still_serves(s.addr, "acme").await;
    let t = Esme::connect_tls(s.tls_addr.unwrap(), s.ca_der.as_ref().unwrap()).await;
    let r = t.bind(BindAs::Trx, "secure", "pw").await;
    assert_eq!(r.command_status, CommandStatus::ESME_ROK);
    assert_eq!(
        t.submit(submit_sm("4915112345", b"tls ok"))
            .await
            .command_status,
        CommandStatus::ESME_ROK
    );
}

/// A ClientHello read as SMPP has command_length 0x1603xxxx: far above max_pdu_len,
/// so the plain port answers generic_nack(ESME_RINVCMDLEN) and closes; a real TLS
/// client just sees its handshake fail.
#[tokio::test]
async fn tls_client_on_the_plain_port_is_nacked_and_closed() {
    let s = tls_server().await;
    let ca = s.ca_der.clone().unwrap();
    let bound = Esme::bound(s.addr, BindAs::Trx, "acme", "pw").await;

    let hello = client_hello(&ca);
    let (mut r, mut w) = raw_connect(s.addr).await;
    w.write_all(&hello).await.unwrap();
    let end = read_until_closed(&mut r, Duration::from_secs(2)).await;
    assert_cmdlen_nack(&end.pdus, "ClientHello on the plain port");

    let failed = tokio::time::timeout(Duration::from_secs(5), esme::tls_connect(s.addr, &ca))
        .await
        .expect("the TLS client must not hang on the plain port");
    assert!(failed.is_err(), "no TLS session on the plain port");

    assert_eq!(
        bound
            .submit(submit_sm("4915112345", b"unaffected"))
            .await
            .command_status,
        CommandStatus::ESME_ROK
    );
    both_ports_serve(&s).await;
}

/// Plain SMPP on the TLS port fails the handshake: the server sends at most a TLS
/// alert (never an SMPP PDU) and closes at once, not at bind_timeout.
#[tokio::test]
async fn plain_smpp_on_the_tls_port_is_closed() {
    let s = tls_server().await;
    let tls_addr = s.tls_addr.unwrap();
    let ca = s.ca_der.clone().unwrap();
    let bound = Esme::connect_tls(tls_addr, &ca).await;
    let r = bound.bind(BindAs::Trx, "acme", "pw").await;
    assert_eq!(r.command_status, CommandStatus::ESME_ROK);

    for body in [
        Body::BindTransceiver(bind_body("acme", "pw")),
        Body::EnquireLink,
    ] {
        let mut raw = tokio::net::TcpStream::connect(tls_addr).await.unwrap();
        raw.write_all(&encode(&Pdu::new(1, body))).await.unwrap();
        let mut got = Vec::new();
        let mut buf = [0u8; 512];
        // bind_timeout is 5 s: the close must come well before it.
        tokio::time::timeout(Duration::from_secs(2), async {
            loop {
                match raw.read(&mut buf).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => got.extend_from_slice(&buf[..n]),
                }
            }
        })
        .await
        .expect("plain SMPP on the TLS port must be closed at once");
        // Nothing, or a TLS alert record (content type 21) — never SMPP.
        assert!(got.is_empty() || got[0] == 0x15, "{got:02x?}");
    }
    assert_eq!(
        bound
            .submit(submit_sm("4915112345", b"still tls"))
            .await
            .command_status,
        CommandStatus::ESME_ROK
    );
    both_ports_serve(&s).await;
}

/// tls_required: refused (ESME_RBINDFAIL, closed) on the plain port even with the
/// right password, for every bind type; accepted over TLS.
#[tokio::test]
async fn tls_required_account_only_binds_over_tls() {
    let s = tls_server().await;
    for _ in 0..2 {
        for id in [BindAs::Tx, BindAs::Rx, BindAs::Trx] {
            let p = Esme::connect(s.addr).await;
            let r = p.bind(id, "secure", "pw").await;
            assert_eq!(r.command_status, CommandStatus::ESME_RBINDFAIL, "{id:?}");
            assert!(p.expect_closed().await.is_empty());
        }
    }
    assert_eq!(s.registry.bind_count("secure"), 0);
    let t = Esme::connect_tls(s.tls_addr.unwrap(), s.ca_der.as_ref().unwrap()).await;
    let r = t.bind(BindAs::Rx, "secure", "pw").await;
    assert_eq!(r.command_status, CommandStatus::ESME_ROK);
    // An account without the flag may use either port.
    both_ports_serve(&s).await;
}
