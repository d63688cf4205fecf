//! Account security: passwords stored as argon2 PHC hashes, per-account source
//! address lists.
#![allow(clippy::unwrap_used)]

#[path = "hostile_common/mod.rs"]
mod common;
#[path = "server_harness/mod.rs"]
mod harness;
#[path = "support/smpp_client.rs"]
mod smpp_client;

use std::net::SocketAddr;

use argon2::password_hash::{PasswordHasher, SaltString};
use common::still_serves;
use harness::{esme, server_section, start};
use smpp_client::Client;
use smpp_protocol::{CommandId, CommandStatus};

/// An argon2 PHC string for `pw` with the given variant and small (fast) parameters.
fn phc(pw: &str, algorithm: argon2::Algorithm, salt: &[u8]) -> String {
    let params = argon2::Params::new(8 * 1024, 1, 1, None).unwrap();
    let a = argon2::Argon2::new(algorithm, argon2::Version::V0x13, params);
    let salt = SaltString::encode_b64(salt).unwrap();
    a.hash_password(pw.as_bytes(), &salt).unwrap().to_string()
}

fn hashed(system_id: &str, hash: &str) -> String {
    format!("[[esme]]\nsystem_id = \"{system_id}\"\npassword_hash = \"{hash}\"\n")
}

async fn bind_status(addr: SocketAddr, system_id: &str, pw: &str) -> CommandStatus {
    let mut c = Client::connect(addr).await;
    c.bind(CommandId::BIND_TRANSCEIVER, system_id, pw)
        .await
        .command_status
}

/// Accounts configured with password_hash bind with the password (argon2id and
/// argon2i, parameters taken from the PHC string) and refuse any other, including
/// the hash text itself; the config holds no clear password.
#[tokio::test]
async fn password_hash_accounts_bind_with_the_password_only() {
    let id_hash = phc("S3cr3t", argon2::Algorithm::Argon2id, b"salt-for-hashed1");
    let i_hash = phc("0ther#", argon2::Algorithm::Argon2i, b"salt-for-hashed2");
    assert!(id_hash.starts_with("$argon2id$v=19$m=8192,t=1,p=1$"));
    let config = format!(
        "{}{}{}{}",
        server_section(""),
        hashed("hashed1", &id_hash),
        hashed("hashed2", &i_hash),
        esme("bystander", "")
    );
    assert!(!config.contains("S3cr3t") && !config.contains("0ther#"));
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
            CommandStatus::ESME_RINVPASWD,
            "{id} / {wrong:?}"
        );
    }
    let mut c = Client::bound(s.addr, CommandId::BIND_TRANSMITTER, "hashed1", "S3cr3t").await;
    assert_eq!(
        c.submit("4915112345", b"hashed ok").await.command_status,
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
        let text = format!("{}{}", server_section(""), hashed("x", hash));
        let err = smppd::config::Config::from_toml(&text, &Default::default(), None).unwrap_err();
        assert!(err.to_string().contains(want), "{hash}: {err}");
    }
}

/// allowed_addresses: a bind from outside the list is refused (ESME_RBINDFAIL) even
/// with the right password; inside it binds. Checked per account.
#[tokio::test]
async fn allowed_addresses_are_enforced_per_account() {
    let config = format!(
        "{}{}{}",
        server_section(""),
        esme(
            "local1",
            "allowed_addresses = [\"127.0.0.1/32\", \"10.0.0.0/8\"]"
        ),
        esme("bystander", "")
    );
    let s = start(&config).await;
    let from = |local: &'static str| async move {
        let sock = tokio::net::TcpSocket::new_v4().unwrap();
        sock.bind(format!("{local}:0").parse().unwrap()).unwrap();
        Client::from_io(Box::new(sock.connect(s.addr).await.unwrap()))
    };
    let mut outside = from("127.0.0.2").await;
    let r = outside
        .bind(CommandId::BIND_TRANSCEIVER, "local1", "pw")
        .await;
    assert_eq!(r.command_status, CommandStatus::ESME_RBINDFAIL);
    assert!(outside.expect_closed().await.is_empty());
    let mut inside = from("127.0.0.1").await;
    let r = inside
        .bind(CommandId::BIND_TRANSCEIVER, "local1", "pw")
        .await;
    assert_eq!(r.command_status, CommandStatus::ESME_ROK);
    // An account without a list binds from anywhere.
    let mut other = from("127.0.0.2").await;
    let r = other
        .bind(CommandId::BIND_TRANSCEIVER, "bystander", "pw")
        .await;
    assert_eq!(r.command_status, CommandStatus::ESME_ROK);
    still_serves(s.addr, "bystander").await;
}
