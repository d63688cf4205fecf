//! Account security: passwords stored as argon2 PHC hashes, per-account source
//! address lists, and refusals that reveal neither which accounts exist nor whether
//! a password was right.

use std::net::SocketAddr;
use std::time::Duration;

use argon2::password_hash::{PasswordHasher, SaltString};
use smpp_protocol::{Body, CommandStatus, Pdu};
use tokio::time::Instant;

use crate::support::config::TestConfig;
use crate::support::esme::{BindAs, Esme};
use crate::support::hostile::still_serves;
use crate::support::messages::submit_sm;
use crate::support::server_harness::{self, start, start_with, Options};

/// An argon2 PHC string for `pw` with the given variant and small (fast) parameters.
fn phc(pw: &str, algorithm: argon2::Algorithm, salt: &[u8]) -> String {
    phc_m(pw, algorithm, salt, 8 * 1024)
}

/// [`phc`] with `m_kib` of memory.
fn phc_m(pw: &str, algorithm: argon2::Algorithm, salt: &[u8], m_kib: u32) -> String {
    let params = argon2::Params::new(m_kib, 1, 1, None).unwrap();
    let a = argon2::Argon2::new(algorithm, argon2::Version::V0x13, params);
    let salt = SaltString::encode_b64(salt).unwrap();
    a.hash_password(pw.as_bytes(), &salt).unwrap().to_string()
}

/// The `password_hash` line of an account.
fn hashed(hash: &str) -> String {
    format!("password_hash = \"{hash}\"")
}

async fn bind_status(addr: SocketAddr, system_id: &str, pw: &str) -> CommandStatus {
    let c = Esme::connect(addr).await;
    c.bind(BindAs::Trx, system_id, pw).await.command_status
}

/// Accounts configured with password_hash bind with the password (argon2id and
/// argon2i, parameters taken from the PHC string) and refuse any other, including
/// the hash text itself; the config holds no clear password.
#[tokio::test]
async fn password_hash_accounts_bind_with_the_password_only() {
    let id_hash = phc("S3cr3t", argon2::Algorithm::Argon2id, b"salt-for-hashed1");
    let i_hash = phc("0ther#", argon2::Algorithm::Argon2i, b"salt-for-hashed2");
    assert!(id_hash.starts_with("$argon2id$v=19$m=8192,t=1,p=1$"));
    let mut config = TestConfig::new();
    config
        .esme("hashed1", &hashed(&id_hash))
        .esme("hashed2", &hashed(&i_hash))
        .esme("bystander", "");
    let text = config.text();
    assert!(!text.contains("S3cr3t") && !text.contains("0ther#"));
    let s = start(&config).await;

    assert_eq!(
        bind_status(s.addr, "hashed1", "S3cr3t").await,
        CommandStatus::ESME_ROK
    );
    assert_eq!(
        bind_status(s.addr, "hashed2", "0ther#").await,
        CommandStatus::ESME_ROK
    );
    for (id, wrong) in [
        ("hashed1", "S3cr3T"),
        ("hashed1", ""),
        ("hashed1", "0ther#"),
        ("hashed2", "S3cr3t"),
        ("hashed1", &id_hash[..8]),
    ] {
        assert_eq!(
            bind_status(s.addr, id, wrong).await,
            CommandStatus::ESME_RBINDFAIL,
            "{id} / {wrong:?}"
        );
    }
    let c = Esme::bound(s.addr, BindAs::Tx, "hashed1", "S3cr3t").await;
    assert_eq!(
        c.submit(submit_sm("4915112345", b"hashed ok"))
            .await
            .command_status,
        CommandStatus::ESME_ROK
    );
    still_serves(s.addr, "bystander").await;
}

/// A hash that is not argon2 (or not PHC at all) is a config error, not an account
/// nobody can bind to.
#[test]
fn non_argon2_hashes_are_config_problems() {
    for (hash, want) in [
        ("$2b$12$abcdefghijklmnopqrstuv", "esme[0].password_hash"),
        ("plainpw", "esme[0].password_hash"),
    ] {
        let text = TestConfig::new().esme("x", &hashed(hash)).text();
        let err = smppd::config::Config::from_toml(&text, &Default::default(), None).unwrap_err();
        assert!(err.to_string().contains(want), "{hash}: {err}");
    }
}

/// allowed_addresses: a bind from outside the list is refused (ESME_RBINDFAIL) even
/// with the right password; inside it binds. Checked per account.
#[tokio::test]
async fn allowed_addresses_are_enforced_per_account() {
    let s = start(
        TestConfig::new()
            .esme(
                "local1",
                "allowed_addresses = [\"127.0.0.1/32\", \"10.0.0.0/8\"]",
            )
            .esme("bystander", ""),
    )
    .await;
    let from = |local: &'static str| async move {
        let sock = tokio::net::TcpSocket::new_v4().unwrap();
        sock.bind(format!("{local}:0").parse().unwrap()).unwrap();
        Esme::from_io(Box::new(sock.connect(s.addr).await.unwrap()))
    };
    let outside = from("127.0.0.2").await;
    let r = outside.bind(BindAs::Trx, "local1", "pw").await;
    assert_eq!(r.command_status, CommandStatus::ESME_RBINDFAIL);
    assert!(outside.expect_closed().await.is_empty());
    let inside = from("127.0.0.1").await;
    let r = inside.bind(BindAs::Trx, "local1", "pw").await;
    assert_eq!(r.command_status, CommandStatus::ESME_ROK);
    // An account without a list binds from anywhere.
    let other = from("127.0.0.2").await;
    let r = other.bind(BindAs::Trx, "bystander", "pw").await;
    assert_eq!(r.command_status, CommandStatus::ESME_ROK);
    still_serves(s.addr, "bystander").await;
}

/// The test server's config with the given bind_failures `delay` and `max_failures`.
fn server_with(delay: &str, max_failures: u32) -> TestConfig {
    let mut c = TestConfig::new();
    c.set("server.bind_failures.delay", delay)
        .set("server.bind_failures.max_failures", i64::from(max_failures));
    c
}

/// [`server_with`] and accounts refused for a reason checked before the password,
/// each given its right password, and one account with a plain and one with a
/// hashed password.
fn refusal_config(delay: &str, max_failures: u32, hash: &str) -> TestConfig {
    let mut c = server_with(delay, max_failures);
    c.esme("acme", "")
        .esme("secure", "tls_required = true")
        .esme("off", "enabled = false")
        .esme("far", "allowed_addresses = [\"10.0.0.0/8\"]")
        .esme("hashed", &hashed(hash));
    c
}

/// A server with a TLS listener too.
async fn start_tls(config: &TestConfig) -> server_harness::TestServer {
    start_with(
        config,
        Options {
            tls: true,
            service: None,
        },
    )
    .await
}

/// A bind on a fresh plain connection: the whole answer, how long it took; the
/// connection must close after a refusal.
async fn bind_answer(addr: SocketAddr, system_id: &str, pw: &str) -> (Pdu, Duration) {
    let c = Esme::connect(addr).await;
    let t = Instant::now();
    let r = c.bind(BindAs::Trx, system_id, pw).await;
    let took = t.elapsed();
    if r.command_status != CommandStatus::ESME_ROK {
        assert!(c.expect_closed().await.is_empty(), "{system_id}");
    }
    (r, took)
}

/// Unknown system_id, wrong password (plain or argon2), and the right password of a
/// disabled account, of a TLS-only account on the plain port, or from an address
/// outside the account's list: the same answer, byte for byte, after the same delay.
/// A peer learns neither which system_ids exist nor whether a password was right.
#[tokio::test]
async fn every_refusal_is_the_same_rbindfail_after_the_same_delay() {
    const DELAY: Duration = Duration::from_millis(400);
    let hash = phc_m(
        "S3cr3t",
        argon2::Algorithm::Argon2id,
        b"salt-for-refusal",
        1024,
    );
    let config = refusal_config("400ms", 100, &hash);
    let s = start_tls(&config).await;
    let cases = [
        ("nobody", "pw", "unknown system_id"),
        (
            "nobody",
            "S3cr3t",
            "unknown system_id, a hashed account's password",
        ),
        ("acme", "nope", "wrong password"),
        ("hashed", "nope", "wrong password, argon2"),
        (
            "secure",
            "pw",
            "TLS required, right password on the plain port",
        ),
        (
            "secure",
            "nope",
            "TLS required, wrong password on the plain port",
        ),
        ("off", "pw", "disabled, right password"),
        ("far", "pw", "address not allowed, right password"),
    ];
    let want = Pdu {
        command_status: CommandStatus::ESME_RBINDFAIL,
        sequence_number: 1,
        body: Body::BindTransceiverResp(None),
    };
    for (id, pw, what) in cases {
        let (r, took) = bind_answer(s.addr, id, pw).await;
        assert_eq!(r, want, "{what}");
        assert!(
            took >= DELAY && took < DELAY + Duration::from_millis(300),
            "{what}: answered after {took:?}"
        );
    }
    // The same accounts bind where they may.
    let t = Esme::connect_tls(s.tls_addr.unwrap(), s.ca_der.as_ref().unwrap()).await;
    let r = t.bind(BindAs::Trx, "secure", "pw").await;
    assert_eq!(r.command_status, CommandStatus::ESME_ROK);
    let (r, took) = bind_answer(s.addr, "hashed", "S3cr3t").await;
    assert_eq!(r.command_status, CommandStatus::ESME_ROK);
    assert!(took < DELAY, "a success is not delayed: {took:?}");
}

/// Those refusals count as failures like a wrong password: max_failures of them from
/// one address (here each with the right password) block it, so even a good bind
/// of another account is refused from there.
#[tokio::test]
async fn refusals_before_the_password_count_as_failures() {
    let hash = phc_m(
        "S3cr3t",
        argon2::Algorithm::Argon2id,
        b"salt-for-counted",
        1024,
    );
    let config = refusal_config("0", 3, &hash);
    for (id, what) in [
        ("secure", "TLS required, right password on the plain port"),
        ("off", "disabled"),
        ("far", "address not allowed"),
        ("nobody", "unknown system_id"),
    ] {
        let s = start_tls(&config).await;
        for _ in 0..3 {
            let (r, _) = bind_answer(s.addr, id, "pw").await;
            assert_eq!(r.command_status, CommandStatus::ESME_RBINDFAIL, "{what}");
        }
        let (r, _) = bind_answer(s.addr, "acme", "pw").await;
        assert_eq!(
            r.command_status,
            CommandStatus::ESME_RBINDFAIL,
            "{what}: not counted"
        );
    }
}

/// A bind with an unknown system_id is verified against a dummy argon2 hash as
/// costly as the accounts' own: without the `delay` to hide it, it takes about as
/// long as a wrong password of a hashed account, not the instant of a lookup miss.
#[tokio::test]
async fn unknown_system_ids_cost_a_verification_like_known_ones() {
    let hash = phc("S3cr3t", argon2::Algorithm::Argon2id, b"salt-for-dummies");
    let s = start(
        server_with("0", 100)
            .esme("hashed", &hashed(&hash))
            .esme("bystander", ""),
    )
    .await;
    let mut wrong = Duration::MAX;
    let mut unknown = Duration::MAX;
    for _ in 0..3 {
        let (r, took) = bind_answer(s.addr, "hashed", "nope").await;
        assert_eq!(r.command_status, CommandStatus::ESME_RBINDFAIL);
        wrong = wrong.min(took);
        let (r, took) = bind_answer(s.addr, "nobody", "nope").await;
        assert_eq!(r.command_status, CommandStatus::ESME_RBINDFAIL);
        unknown = unknown.min(took);
    }
    assert!(
        unknown * 2 >= wrong,
        "unknown system_id answered in {unknown:?}, a wrong password in {wrong:?}"
    );
    still_serves(s.addr, "bystander").await;
}
