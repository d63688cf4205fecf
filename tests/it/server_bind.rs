//! Binds over real sockets: all three types, and every refusal (ESME_RBINDFAIL, see
//! `security_accounts` for what they must not reveal).

use smpp_protocol::{Body, CommandStatus, Tlv};

use crate::support::config::TestConfig;
use crate::support::esme::{self, BindAs, Esme};
use crate::support::server_harness::start;

/// The test server with one account, `extra` its keys.
fn cfg(system_id: &str, extra: &str) -> TestConfig {
    let mut c = TestConfig::new();
    c.esme(system_id, extra);
    c
}

#[tokio::test]
async fn binds_as_transmitter_receiver_and_transceiver() {
    let s = start(&cfg("acme", "")).await;
    let mut clients = Vec::new();
    for id in [BindAs::Tx, BindAs::Rx, BindAs::Trx] {
        let c = Esme::connect(s.addr).await;
        let r = c.bind(id, "acme", "pw").await;
        assert_eq!(r.command_status, CommandStatus::ESME_ROK);
        assert_eq!(r.command_id(), id.command_id().response());
        let resp = match r.body {
            Body::BindTransmitterResp(Some(b))
            | Body::BindReceiverResp(Some(b))
            | Body::BindTransceiverResp(Some(b)) => b,
            other => panic!("{other:?}"),
        };
        assert_eq!(resp.system_id, "smppd-test");
        assert!(resp.tlvs.contains(&Tlv::ScInterfaceVersion(0x34)));
        clients.push(c);
    }
    s.wait_binds("acme", 3).await;
}

/// SMPP 3.3 (interface_version < 0x34) peers must never be sent TLVs (reference §3.2).
#[tokio::test]
async fn bind_resp_to_an_smpp_33_esme_carries_no_tlv() {
    let s = start(&cfg("acme", "")).await;
    let c = Esme::connect(s.addr).await;
    let mut b = esme::bind_body("acme", "pw");
    b.interface_version = 0x33;
    let r = c.request(Body::BindTransceiver(b)).await;
    assert_eq!(r.command_status, CommandStatus::ESME_ROK);
    match r.body {
        Body::BindTransceiverResp(Some(resp)) => assert!(resp.tlvs.is_empty(), "{resp:?}"),
        other => panic!("{other:?}"),
    }
}

async fn refused(addr: std::net::SocketAddr, id: BindAs, sid: &str, pw: &str) -> CommandStatus {
    let c = Esme::connect(addr).await;
    let r = c.bind(id, sid, pw).await;
    assert_eq!(r.command_id(), id.command_id().response());
    assert_eq!(
        r.body,
        Body::empty_response(id.command_id()).unwrap(),
        "error bind_resp has no body"
    );
    c.expect_closed().await;
    r.command_status
}

#[tokio::test]
async fn unknown_system_id_is_refused_with_rbindfail() {
    let s = start(&cfg("acme", "")).await;
    let st = refused(s.addr, BindAs::Trx, "nobody", "pw").await;
    assert_eq!(st, CommandStatus::ESME_RBINDFAIL);
}

#[tokio::test]
async fn wrong_password_is_refused_with_rbindfail() {
    let s = start(&cfg("acme", "")).await;
    let st = refused(s.addr, BindAs::Tx, "acme", "nope").await;
    assert_eq!(st, CommandStatus::ESME_RBINDFAIL);
}

#[tokio::test]
async fn argon2_hashed_password_binds_and_rejects_wrong_one() {
    use argon2::password_hash::{PasswordHasher, SaltString};
    let salt = SaltString::encode_b64(b"0123456789abcdef").unwrap();
    let hash = argon2::Argon2::default()
        .hash_password(b"s3cret", &salt)
        .unwrap()
        .to_string();
    let s = start(&cfg("hashed", &format!("password_hash = \"{hash}\""))).await;
    Esme::bound(s.addr, BindAs::Trx, "hashed", "s3cret").await;
    let st = refused(s.addr, BindAs::Trx, "hashed", "s3creX").await;
    assert_eq!(st, CommandStatus::ESME_RBINDFAIL);
}

#[tokio::test]
async fn address_outside_allowed_cidrs_is_refused_with_rbindfail() {
    let s = start(&cfg("far", "allowed_addresses = [\"10.0.0.0/8\"]")).await;
    let st = refused(s.addr, BindAs::Trx, "far", "pw").await;
    assert_eq!(st, CommandStatus::ESME_RBINDFAIL);
}

#[tokio::test]
async fn address_inside_allowed_cidrs_binds() {
    let s = start(&cfg("near", "allowed_addresses = [\"127.0.0.0/8\"]")).await;
    Esme::bound(s.addr, BindAs::Trx, "near", "pw").await;
}

#[tokio::test]
async fn disallowed_bind_type_is_refused_with_rbindfail() {
    let s = start(&cfg("txonly", "allowed_bind_types = [\"transmitter\"]")).await;
    let st = refused(s.addr, BindAs::Rx, "txonly", "pw").await;
    assert_eq!(st, CommandStatus::ESME_RBINDFAIL);
    Esme::bound(s.addr, BindAs::Tx, "txonly", "pw").await;
}

#[tokio::test]
async fn bind_past_max_binds_is_refused_until_one_unbinds() {
    let s = start(&cfg("two", "max_binds = 2")).await;
    let _a = Esme::bound(s.addr, BindAs::Tx, "two", "pw").await;
    let b = Esme::bound(s.addr, BindAs::Rx, "two", "pw").await;
    let st = refused(s.addr, BindAs::Trx, "two", "pw").await;
    assert_eq!(st, CommandStatus::ESME_RBINDFAIL);
    let r = b.request(Body::Unbind).await;
    assert_eq!(r.body, Body::UnbindResp);
    b.expect_closed().await;
    s.wait_binds("two", 1).await;
    Esme::bound(s.addr, BindAs::Trx, "two", "pw").await;
}

#[tokio::test]
async fn disabled_account_is_refused_with_rbindfail() {
    let s = start(&cfg("off", "enabled = false")).await;
    let st = refused(s.addr, BindAs::Trx, "off", "pw").await;
    assert_eq!(st, CommandStatus::ESME_RBINDFAIL);
}

#[tokio::test]
async fn repeated_failures_from_one_address_block_it_for_a_while() {
    let s = start(
        cfg("acme", "")
            .set("server.bind_failures.max_failures", 3)
            .set("server.bind_failures.block_for", "1h"),
    )
    .await;
    for _ in 0..3 {
        let st = refused(s.addr, BindAs::Trx, "acme", "bad").await;
        assert_eq!(st, CommandStatus::ESME_RBINDFAIL);
    }
    // Even the right password is refused now, without a credential check.
    let st = refused(s.addr, BindAs::Trx, "acme", "pw").await;
    assert_eq!(st, CommandStatus::ESME_RBINDFAIL);
}

#[tokio::test]
async fn failed_binds_are_answered_only_after_the_delay() {
    let s = start(cfg("acme", "").set("server.bind_failures.delay", "300ms")).await;
    let t = std::time::Instant::now();
    let st = refused(s.addr, BindAs::Trx, "acme", "bad").await;
    assert_eq!(st, CommandStatus::ESME_RBINDFAIL);
    assert!(t.elapsed() >= std::time::Duration::from_millis(300));
}

#[tokio::test]
async fn connection_without_bind_is_closed_after_bind_timeout() {
    let s = start(cfg("acme", "").set("server.bind_timeout", "200ms")).await;
    let c = Esme::connect(s.addr).await;
    let t = std::time::Instant::now();
    assert!(c.expect_closed().await.is_empty());
    assert!(t.elapsed() >= std::time::Duration::from_millis(200));
}
