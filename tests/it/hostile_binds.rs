//! Binds the server must refuse: past an account's max_binds or outside its bind
//! types (policy, not counted), and password guessing from one address (slowed by
//! `delay`, then blocked for `block_for`): counted per address across accounts,
//! before verification, so neither a valid account nor parallel binds get around it.

use std::net::SocketAddr;
use std::time::Duration;

use argon2::password_hash::{PasswordHasher, SaltString};
use smpp_protocol::{Body, CommandStatus, Pdu};
use tokio::time::Instant;

use crate::support::config::TestConfig;
use crate::support::esme::{self, bind_body, BindAs, Esme};
use crate::support::hostile::still_serves;
use crate::support::messages::submit_sm;
use crate::support::server_harness::start;

const MAX_FAILURES: u32 = 3;
const DELAY: Duration = Duration::from_millis(100);
const BLOCK_FOR: Duration = Duration::from_millis(1500);

/// The accounts, with `max_failures` failures per address allowed.
fn cfg_with(max_failures: u32) -> TestConfig {
    // argon2 with small parameters: a verification takes long enough (tens of ms
    // unoptimised) for binds to race it.
    let salt = SaltString::encode_b64(b"hostile-binds-01").unwrap();
    let params = argon2::Params::new(8 * 1024, 1, 1, None).unwrap();
    let hash = argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params)
        .hash_password(b"pw", &salt)
        .unwrap()
        .to_string();
    let mut c = TestConfig::new();
    c.set("server.bind_failures.max_failures", i64::from(max_failures))
        .set("server.bind_failures.window", "60s")
        .set(
            "server.bind_failures.block_for",
            format!("{}ms", BLOCK_FOR.as_millis()),
        )
        .set(
            "server.bind_failures.delay",
            format!("{}ms", DELAY.as_millis()),
        )
        .esme("acme", "")
        .esme("two", "max_binds = 2")
        .esme("txonly", "allowed_bind_types = [\"transmitter\"]")
        .esme("bystander", "")
        .esme("hashed", &format!("password_hash = \"{hash}\""));
    c
}

fn cfg() -> TestConfig {
    cfg_with(MAX_FAILURES)
}

/// A client whose socket comes from `local` (any 127/8 address reaches the listener).
async fn connect_from(local: &str, addr: SocketAddr) -> Esme {
    let sock = tokio::net::TcpSocket::new_v4().unwrap();
    sock.bind(format!("{local}:0").parse().unwrap()).unwrap();
    let s = tokio::time::timeout(esme::WAIT, sock.connect(addr))
        .await
        .unwrap()
        .unwrap();
    Esme::from_io(Box::new(s))
}

/// One bind attempt of type `id` on a fresh connection: its status, and how long the
/// answer took. A refused bind is followed by a close.
async fn attempt_as(
    id: BindAs,
    local: &str,
    addr: SocketAddr,
    system_id: &str,
    pw: &str,
) -> (CommandStatus, Duration) {
    let c = connect_from(local, addr).await;
    let t = Instant::now();
    let r = c.bind(id, system_id, pw).await;
    let took = t.elapsed();
    if r.command_status != CommandStatus::ESME_ROK {
        assert!(c.expect_closed().await.is_empty());
    }
    (r.command_status, took)
}

/// [`attempt_as`] a transceiver.
async fn attempt(
    local: &str,
    addr: SocketAddr,
    system_id: &str,
    pw: &str,
) -> (CommandStatus, Duration) {
    attempt_as(BindAs::Trx, local, addr, system_id, pw).await
}

/// Binds past max_binds, and bind types the account does not allow, are refused with
/// ESME_RBINDFAIL (and closed) after the same delay as any refusal, while the
/// existing binds keep working; these policy refusals are not counted as guessing,
/// so the address is not blocked by them; a freed bind slot can be taken again.
#[tokio::test]
async fn policy_refusals_bind_count_and_bind_type_do_not_count_as_failures() {
    let s = start(&cfg()).await;
    let first = Esme::bound(s.addr, BindAs::Tx, "two", "pw").await;
    let second = Esme::bound(s.addr, BindAs::Rx, "two", "pw").await;
    s.wait_binds("two", 2).await;
    for _ in 0..MAX_FAILURES + 2 {
        let (status, took) = attempt("127.0.0.1", s.addr, "two", "pw").await;
        assert_eq!(status, CommandStatus::ESME_RBINDFAIL);
        assert!(took >= DELAY, "answered after {took:?}");
        let (status, took) = attempt_as(BindAs::Rx, "127.0.0.1", s.addr, "txonly", "pw").await;
        assert_eq!(status, CommandStatus::ESME_RBINDFAIL);
        assert!(took >= DELAY, "answered after {took:?}");
    }
    assert_eq!(s.registry.bind_count("two"), 2);
    assert_eq!(
        first
            .submit(submit_sm("4915112345", b"one"))
            .await
            .command_status,
        CommandStatus::ESME_ROK
    );
    assert_eq!(
        second.request(Body::EnquireLink).await.command_status,
        CommandStatus::ESME_ROK
    );
    // Not blocked: another account binds from the same address.
    still_serves(s.addr, "acme").await;
    Esme::bound(s.addr, BindAs::Tx, "txonly", "pw").await;
    // Freeing one slot lets the next bind in.
    let r = first.request(Body::Unbind).await;
    assert_eq!(r.command_status, CommandStatus::ESME_ROK);
    first.expect_closed().await;
    s.wait_binds("two", 1).await;
    Esme::bound(s.addr, BindAs::Trx, "two", "pw").await;
}

/// Wrong passwords and unknown system_ids from one address are each answered
/// ESME_RBINDFAIL only after `delay`; after max_failures the address is refused the
/// same way for block_for even with the right password, other addresses are not;
/// afterwards the right password binds again.
#[tokio::test]
async fn bind_brute_force_blocks_the_address_for_block_for() {
    let s = start(&cfg()).await;
    let bystander = connect_from("127.0.0.2", s.addr).await;
    let r = bystander.bind(BindAs::Trx, "bystander", "pw").await;
    assert_eq!(r.command_status, CommandStatus::ESME_ROK);

    let guesses = [("acme", "guess1"), ("acme", "guess2"), ("nobody", "pw")];
    assert_eq!(guesses.len() as u32, MAX_FAILURES);
    // The block runs block_for from when the server took the last failure: after
    // it was sent, before it was answered.
    let mut last_failure_sent = Instant::now();
    let mut last_failure_answered = Instant::now();
    for (i, (id, pw)) in guesses.iter().enumerate() {
        last_failure_sent = Instant::now();
        let (status, took) = attempt("127.0.0.1", s.addr, id, pw).await;
        last_failure_answered = Instant::now();
        assert_eq!(status, CommandStatus::ESME_RBINDFAIL, "guess {i}");
        assert!(
            took >= DELAY,
            "guess {i} answered after {took:?}, before delay"
        );
    }
    // Blocked: the right password is refused too, the same way. (Refusals while
    // blocked count: fewer than max_failures of them leave the block as it is.)
    let (status, took) = attempt("127.0.0.1", s.addr, "acme", "pw").await;
    assert_eq!(status, CommandStatus::ESME_RBINDFAIL);
    assert!(took >= DELAY);
    // Another address is not blocked, and bound sessions carry on.
    let (status, _) = attempt("127.0.0.3", s.addr, "acme", "pw").await;
    assert_eq!(status, CommandStatus::ESME_ROK);
    assert_eq!(
        bystander
            .submit(submit_sm("4915112345", b"unaffected"))
            .await
            .command_status,
        CommandStatus::ESME_ROK
    );

    // Still refused shortly before block_for has passed since the last failure was
    // sent (so before the block can end)... A block's end is a time: a bind sent
    // 400 ms before it is the only way to see it has not ended, and it fails only
    // if that bind takes longer than that to reach the server.
    tokio::time::sleep_until(last_failure_sent + BLOCK_FOR - Duration::from_millis(400)).await;
    let (status, _) = attempt("127.0.0.1", s.addr, "acme", "pw").await;
    assert_eq!(status, CommandStatus::ESME_RBINDFAIL, "block ended early");
    // ...and allowed once block_for has passed since it was answered (so the block
    // has ended, however slow this machine is).
    tokio::time::sleep_until(last_failure_answered + BLOCK_FOR).await;
    let (status, _) = attempt("127.0.0.1", s.addr, "acme", "pw").await;
    assert_eq!(
        status,
        CommandStatus::ESME_ROK,
        "still blocked after block_for"
    );
    still_serves(s.addr, "bystander").await;
}

/// A successful bind clears its account's failure count from that address, also
/// after a block has run out: two failures, a success, one failure must not block.
#[tokio::test]
async fn success_after_an_expired_block_clears_the_failure_count() {
    let s = start(&cfg()).await;
    for pw in ["g1", "g2", "g3"] {
        let (status, _) = attempt("127.0.0.1", s.addr, "acme", pw).await;
        assert_eq!(status, CommandStatus::ESME_RBINDFAIL);
    }
    // The block began before the last failure was answered: it has ended
    // block_for after that.
    tokio::time::sleep(BLOCK_FOR).await;
    let (status, _) = attempt("127.0.0.1", s.addr, "acme", "pw").await;
    assert_eq!(status, CommandStatus::ESME_ROK, "never unblocked");
    for pw in ["g4", "g5"] {
        let (status, _) = attempt("127.0.0.1", s.addr, "acme", pw).await;
        assert_eq!(status, CommandStatus::ESME_RBINDFAIL);
    }
    let (status, _) = attempt("127.0.0.1", s.addr, "acme", "pw").await;
    assert_eq!(status, CommandStatus::ESME_ROK);
    // One more failure after that success is the first of a new count.
    let (status, _) = attempt("127.0.0.1", s.addr, "acme", "g6").await;
    assert_eq!(status, CommandStatus::ESME_RBINDFAIL);
    let (status, _) = attempt("127.0.0.1", s.addr, "acme", "pw").await;
    assert_eq!(
        status,
        CommandStatus::ESME_ROK,
        "blocked although a success reset the count"
    );
    still_serves(s.addr, "bystander").await;
}

/// A valid account does not reset the guessing at another: 4 wrong passwords for one
/// account and a good bind of another, repeated, is blocked at the 5th failure
/// (max_failures 5), and then the good account is refused from there too.
#[tokio::test]
async fn a_good_bind_of_another_account_does_not_reset_the_count() {
    let s = start(&cfg_with(5)).await;
    for i in 0..4 {
        let (status, _) = attempt("127.0.0.1", s.addr, "acme", &format!("g{i}")).await;
        assert_eq!(status, CommandStatus::ESME_RBINDFAIL);
    }
    let (status, _) = attempt("127.0.0.1", s.addr, "bystander", "pw").await;
    assert_eq!(status, CommandStatus::ESME_ROK);
    // The next round's first wrong password is the 5th failure: blocked.
    let (status, _) = attempt("127.0.0.1", s.addr, "acme", "g4").await;
    assert_eq!(status, CommandStatus::ESME_RBINDFAIL);
    for (id, what) in [
        ("bystander", "the good account"),
        ("acme", "the right password"),
    ] {
        let (status, _) = attempt("127.0.0.1", s.addr, id, "pw").await;
        assert_eq!(
            status,
            CommandStatus::ESME_RBINDFAIL,
            "{what} is blocked too"
        );
    }
    let (status, _) = attempt("127.0.0.2", s.addr, "bystander", "pw").await;
    assert_eq!(status, CommandStatus::ESME_ROK, "other addresses are not");
}

/// Binds sent in parallel are counted as they start, before their (argon2)
/// passwords are verified: of 2 × max_failures wrong binds and then the right one,
/// all in flight at once, none gets in, and the address is blocked afterwards.
#[tokio::test]
async fn parallel_binds_are_counted_before_their_passwords_are_verified() {
    let s = start(&cfg()).await;
    let mut clients = Vec::new();
    for _ in 0..2 * MAX_FAILURES + 1 {
        clients.push(connect_from("127.0.0.1", s.addr).await);
    }
    let bind = |pw: &str| Pdu::new(1, Body::BindTransceiver(bind_body("hashed", pw)));
    let (right, wrong) = clients.split_last().unwrap();
    for (i, c) in wrong.iter().enumerate() {
        c.send(bind(&format!("wrong{i}"))).await;
    }
    // Behind the wrong ones, while the first of them is still being verified. The
    // server tells nothing when it has read a bind before it answers it, and by its
    // answer (`delay` later) the wrong ones are done and the right one would meet a
    // block instead of the race under test: a short pause is the only way to put it
    // behind them.
    tokio::time::sleep(Duration::from_millis(20)).await;
    right.send(bind("pw")).await;
    for (i, c) in clients.iter().enumerate() {
        let r = c.recv().await;
        assert_eq!(r.command_status, CommandStatus::ESME_RBINDFAIL, "bind {i}");
        assert!(c.expect_closed().await.is_empty());
    }
    assert_eq!(s.registry.bind_count("hashed"), 0);
    let (status, _) = attempt("127.0.0.1", s.addr, "bystander", "pw").await;
    assert_eq!(status, CommandStatus::ESME_RBINDFAIL, "address blocked");
    let (status, _) = attempt("127.0.0.2", s.addr, "hashed", "pw").await;
    assert_eq!(status, CommandStatus::ESME_ROK);
}
