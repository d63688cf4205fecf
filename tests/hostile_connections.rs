//! Connection floods: many sockets that never bind, and connections past
//! `max_connections` (shared by the plain and TLS listeners).
#![allow(clippy::unwrap_used)]

#[path = "hostile_common/mod.rs"]
mod common;
#[path = "server_harness/mod.rs"]
mod harness;
#[path = "support/smpp_client.rs"]
mod smpp_client;

use std::time::Duration;

use common::still_serves;
use harness::{esme, server_section, start, start_with, Options};
use smpp_client::{bind_body, encode, Client};
use smpp_protocol::{Body, CommandId, CommandStatus, Pdu};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;

/// Idle connections opened at once (the 10k run is the soak script's job).
const IDLE: usize = 1000;

/// Reads until EOF or reset; returns how many octets arrived before.
async fn closed(mut s: TcpStream, limit: Duration) -> (usize, Instant) {
    let mut buf = [0u8; 512];
    let mut n = 0;
    tokio::time::timeout(limit, async {
        loop {
            match s.read(&mut buf).await {
                Ok(0) | Err(_) => return (n, Instant::now()),
                Ok(k) => n += k,
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("connection not closed within {limit:?}"))
}

/// A thousand connections that never send a byte are each closed at bind_timeout
/// (not before), silently; meanwhile, and afterwards, a real ESME binds and submits.
#[tokio::test]
async fn a_thousand_connections_that_never_bind_are_closed_at_bind_timeout() {
    let bind_timeout = Duration::from_secs(2);
    let config = format!(
        "{}{}",
        server_section("max_connections = 5000")
            .replace("bind_timeout = \"5s\"", "bind_timeout = \"2s\""),
        esme("acme", "")
    );
    let s = start(&config).await;
    let started = Instant::now();
    let mut conns = Vec::with_capacity(IDLE);
    for _ in 0..IDLE {
        conns.push(TcpStream::connect(s.addr).await.unwrap());
    }
    let all_connected = Instant::now();
    assert!(
        all_connected - started < bind_timeout,
        "connecting took {:?}; the test needs them all open before bind_timeout",
        all_connected - started
    );
    let waits: Vec<_> = conns
        .into_iter()
        .map(|c| tokio::spawn(closed(c, bind_timeout * 10)))
        .collect();
    // While all of them are open, the server serves.
    still_serves(s.addr, "acme").await;

    let mut last = started;
    for w in waits {
        let (octets, at) = w.await.unwrap();
        assert_eq!(
            octets, 0,
            "nothing is sent to a connection that never bound"
        );
        assert!(
            at - started >= bind_timeout,
            "closed after {:?}",
            at - started
        );
        last = last.max(at);
    }
    assert!(
        last - all_connected < bind_timeout + Duration::from_secs(3),
        "the last idle connection closed only {:?} after the last connect",
        last - all_connected
    );
    // Nothing leaked into the registry, and the server goes on serving.
    s.wait_binds("acme", 0).await;
    still_serves(s.addr, "acme").await;
}

/// With max_connections sessions open (plain and TLS together), one more connection
/// is closed at once — its bind unanswered — on either port; once a session ends,
/// its slot is free again.
#[tokio::test]
async fn connections_past_max_connections_are_closed_at_once() {
    const MAX: usize = 5;
    let config = format!(
        "{}{}",
        server_section(&format!("max_connections = {MAX}")),
        esme("acme", "")
    );
    let s = start_with(
        &config,
        Options {
            tls: true,
            service: None,
        },
    )
    .await;
    let tls_addr = s.tls_addr.unwrap();
    let ca = s.ca_der.clone().unwrap();
    let mut bound = Vec::new();
    for i in 0..MAX {
        let c = if i % 2 == 0 {
            Client::bound(s.addr, CommandId::BIND_TRANSCEIVER, "acme", "pw").await
        } else {
            let mut c = Client::connect_tls(tls_addr, &ca).await;
            let r = c.bind(CommandId::BIND_TRANSCEIVER, "acme", "pw").await;
            assert_eq!(r.command_status, CommandStatus::ESME_ROK);
            c
        };
        bound.push(c);
    }
    s.wait_binds("acme", MAX).await;

    // bind_timeout is 5 s: "at once" means well before any server timer.
    let at_once = Duration::from_secs(2);
    for _ in 0..3 {
        let mut extra = TcpStream::connect(s.addr).await.unwrap();
        let bind = encode(&Pdu::new(1, Body::BindTransceiver(bind_body("acme", "pw"))));
        // The server may already have closed it: a failed write is fine.
        let _ = extra.write_all(&bind).await;
        let (octets, _) = closed(extra, at_once).await;
        assert_eq!(octets, 0, "no bind_resp past max_connections");
    }
    let tcp = TcpStream::connect(tls_addr).await.unwrap();
    let (_, _) = closed(tcp, at_once).await;
    assert!(
        smpp_client::tls_connect(tls_addr, &ca).await.is_err(),
        "TLS handshake past max_connections must fail"
    );
    // The sessions holding the slots never noticed.
    for c in &mut bound {
        assert_eq!(
            c.submit("4915112345", b"inside").await.command_status,
            CommandStatus::ESME_ROK
        );
    }

    // One unbinds: its slot frees once the session task has finished.
    let mut leaving = bound.pop().unwrap();
    let r = leaving.request(Body::Unbind).await;
    assert_eq!(r.command_status, CommandStatus::ESME_ROK);
    leaving.expect_closed().await;
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let mut c = Client::connect(s.addr).await;
        let seq = c.next_seq();
        c.send(Pdu::new(
            seq,
            Body::BindTransceiver(bind_body("acme", "pw")),
        ))
        .await;
        match c.recv_item().await {
            Some(Ok(Ok(p))) => {
                assert_eq!(p.command_status, CommandStatus::ESME_ROK, "{p:?}");
                break;
            }
            // Closed: the old session is still finishing; try again.
            _ => {
                assert!(
                    Instant::now() < deadline,
                    "slot never freed after an unbind"
                );
                // Poll interval while the old session finishes, not a synchronisation.
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    }
    s.wait_binds("acme", MAX).await;
}
