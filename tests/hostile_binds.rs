//! Binds the server must refuse: past an account's max_binds, and password guessing
//! from one address (slowed by `delay`, then blocked for `block_for`).
#![allow(clippy::unwrap_used)]

#[path = "hostile_common/mod.rs"]
mod common;
#[path = "server_harness/mod.rs"]
mod harness;
#[path = "support/smpp_client.rs"]
mod smpp_client;

use std::net::SocketAddr;
use std::time::Duration;

use common::still_serves;
use harness::{esme, server_section, start};
use smpp_client::Client;
use smpp_protocol::{Body, CommandId, CommandStatus};
use tokio::time::Instant;

const MAX_FAILURES: u32 = 3;
const DELAY: Duration = Duration::from_millis(100);
const BLOCK_FOR: Duration = Duration::from_millis(1500);

fn cfg() -> String {
    let policy = format!(
        "max_failures = {MAX_FAILURES}\nwindow = \"60s\"\nblock_for = \"{}ms\"\ndelay = \"{}ms\"\n",
        BLOCK_FOR.as_millis(),
        DELAY.as_millis()
    );
    let server = server_section("").replace("max_failures = 100\ndelay = \"0\"\n", &policy);
    assert!(server.contains("block_for"), "harness section changed");
    format!(
        "{server}{}{}{}",
        esme("acme", ""),
        esme("two", "max_binds = 2"),
        esme("bystander", "")
    )
}

/// A client whose socket comes from `local` (any 127/8 address reaches the listener).
async fn connect_from(local: &str, addr: SocketAddr) -> Client {
    let sock = tokio::net::TcpSocket::new_v4().unwrap();
    sock.bind(format!("{local}:0").parse().unwrap()).unwrap();
    let s = tokio::time::timeout(smpp_client::WAIT, sock.connect(addr))
        .await
        .unwrap()
        .unwrap();
    Client::from_io(Box::new(s))
}

/// One bind attempt on a fresh connection: its status, and how long the answer took.
/// A refused bind is followed by a close.
async fn attempt(
    local: &str,
    addr: SocketAddr,
    system_id: &str,
    pw: &str,
) -> (CommandStatus, Duration) {
    let mut c = connect_from(local, addr).await;
    let t = Instant::now();
    let r = c.bind(CommandId::BIND_TRANSCEIVER, system_id, pw).await;
    let took = t.elapsed();
    if r.command_status != CommandStatus::ESME_ROK {
        assert!(c.expect_closed().await.is_empty());
    }
    (r.command_status, took)
}

/// Binds past max_binds are refused with ESME_RBINDFAIL (and closed) while the
/// existing binds keep working; these policy refusals are not counted as guessing,
/// so the address is not blocked by them; a freed bind slot can be taken again.
#[tokio::test]
async fn binds_past_max_binds_are_refused_and_do_not_count_as_failures() {
    let s = start(&cfg()).await;
    let mut first = Client::bound(s.addr, CommandId::BIND_TRANSMITTER, "two", "pw").await;
    let mut second = Client::bound(s.addr, CommandId::BIND_RECEIVER, "two", "pw").await;
    s.wait_binds("two", 2).await;
    for _ in 0..MAX_FAILURES + 2 {
        let (status, _) = attempt("127.0.0.1", s.addr, "two", "pw").await;
        assert_eq!(status, CommandStatus::ESME_RBINDFAIL);
    }
    assert_eq!(s.registry.bind_count("two"), 2);
    assert_eq!(
        first.submit("4915112345", b"one").await.command_status,
        CommandStatus::ESME_ROK
    );
    assert_eq!(
        second.request(Body::EnquireLink).await.command_status,
        CommandStatus::ESME_ROK
    );
    // Not blocked: another account binds from the same address.
    still_serves(s.addr, "acme").await;
    // Freeing one slot lets the next bind in.
    let r = first.request(Body::Unbind).await;
    assert_eq!(r.command_status, CommandStatus::ESME_ROK);
    first.expect_closed().await;
    s.wait_binds("two", 1).await;
    Client::bound(s.addr, CommandId::BIND_TRANSCEIVER, "two", "pw").await;
}

/// Wrong passwords and unknown system_ids from one address are each answered only
/// after `delay`; after max_failures the address is refused (ESME_RBINDFAIL) for
/// block_for even with the right password, other addresses are not; afterwards the
/// right password binds again.
#[tokio::test]
async fn bind_brute_force_blocks_the_address_for_block_for() {
    let s = start(&cfg()).await;
    let mut bystander = connect_from("127.0.0.2", s.addr).await;
    let r = bystander
        .bind(CommandId::BIND_TRANSCEIVER, "bystander", "pw")
        .await;
    assert_eq!(r.command_status, CommandStatus::ESME_ROK);

    let guesses = [("acme", "guess1"), ("acme", "guess2"), ("nobody", "pw")];
    assert_eq!(guesses.len() as u32, MAX_FAILURES);
    let mut last_failure_sent = Instant::now();
    for (i, (id, pw)) in guesses.iter().enumerate() {
        last_failure_sent = Instant::now();
        let (status, took) = attempt("127.0.0.1", s.addr, id, pw).await;
        let want = if *id == "nobody" {
            CommandStatus::ESME_RINVSYSID
        } else {
            CommandStatus::ESME_RINVPASWD
        };
        assert_eq!(status, want, "guess {i}");
        assert!(
            took >= DELAY,
            "guess {i} answered after {took:?}, before delay"
        );
    }
    // Blocked: the right password is refused too, without a credential check.
    for _ in 0..2 {
        let (status, took) = attempt("127.0.0.1", s.addr, "acme", "pw").await;
        assert_eq!(status, CommandStatus::ESME_RBINDFAIL);
        assert!(took >= DELAY);
    }
    // Another address is not blocked, and bound sessions carry on.
    let (status, _) = attempt("127.0.0.3", s.addr, "acme", "pw").await;
    assert_eq!(status, CommandStatus::ESME_ROK);
    assert_eq!(
        bystander
            .submit("4915112345", b"unaffected")
            .await
            .command_status,
        CommandStatus::ESME_ROK
    );

    // Refused until block_for has passed since the last failure, then allowed.
    let deadline = last_failure_sent + BLOCK_FOR + Duration::from_secs(4);
    let unblocked_at = loop {
        let t = Instant::now();
        let (status, _) = attempt("127.0.0.1", s.addr, "acme", "pw").await;
        if status == CommandStatus::ESME_ROK {
            break t;
        }
        assert_eq!(status, CommandStatus::ESME_RBINDFAIL);
        assert!(
            Instant::now() < deadline,
            "still blocked long after block_for"
        );
        // Poll interval (each refused attempt already waits `delay`).
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let blocked_for = unblocked_at - last_failure_sent;
    assert!(
        blocked_for + DELAY >= BLOCK_FOR,
        "unblocked after only {blocked_for:?}"
    );
    still_serves(s.addr, "bystander").await;
}

/// A successful bind clears the address's failure count, also after a block has run
/// out: two failures, a success, one failure must not block.
#[tokio::test]
async fn success_after_an_expired_block_clears_the_failure_count() {
    let s = start(&cfg()).await;
    for pw in ["g1", "g2", "g3"] {
        let (status, _) = attempt("127.0.0.1", s.addr, "acme", pw).await;
        assert_eq!(status, CommandStatus::ESME_RINVPASWD);
    }
    let blocked_at = Instant::now();
    // Wait out the block the server enforces (bounded), then bind.
    let deadline = blocked_at + BLOCK_FOR + Duration::from_secs(4);
    loop {
        let (status, _) = attempt("127.0.0.1", s.addr, "acme", "pw").await;
        if status == CommandStatus::ESME_ROK {
            break;
        }
        assert!(Instant::now() < deadline, "never unblocked");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for pw in ["g4", "g5"] {
        let (status, _) = attempt("127.0.0.1", s.addr, "acme", pw).await;
        assert_eq!(status, CommandStatus::ESME_RINVPASWD);
    }
    let (status, _) = attempt("127.0.0.1", s.addr, "acme", "pw").await;
    assert_eq!(status, CommandStatus::ESME_ROK);
    // One more failure after that success is the first of a new count.
    let (status, _) = attempt("127.0.0.1", s.addr, "acme", "g6").await;
    assert_eq!(status, CommandStatus::ESME_RINVPASWD);
    let (status, _) = attempt("127.0.0.1", s.addr, "acme", "pw").await;
    assert_eq!(
        status,
        CommandStatus::ESME_ROK,
        "blocked although a success reset the count"
    );
    still_serves(s.addr, "bystander").await;
}
