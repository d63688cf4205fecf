//! TLS listener beside the plain one; certificates generated at test time.

use smpp_protocol::CommandStatus;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::support::config::TestConfig;
use crate::support::esme::{self, BindAs, Esme};
use crate::support::messages::submit_sm;
use crate::support::server_harness::{self, start_with, Options};

fn cfg() -> TestConfig {
    let mut c = TestConfig::new();
    c.esme("acme", "").esme("secure", "tls_required = true");
    c
}

#[tokio::test]
async fn binds_and_submits_over_tls_while_plain_tcp_works_too() {
    let s = start_with(
        &cfg(),
        Options {
            tls: true,
            service: None,
        },
    )
    .await;
    let tls_addr = s.tls_addr.unwrap();
    let ca = s.ca_der.clone().unwrap();
    let t = Esme::connect_tls(tls_addr, &ca).await;
    assert_eq!(
        t.bind(BindAs::Trx, "acme", "pw").await.command_status,
        CommandStatus::ESME_ROK
    );
    assert_eq!(
        t.submit(submit_sm("49", b"over tls")).await.command_status,
        CommandStatus::ESME_ROK
    );
    let p = Esme::bound(s.addr, BindAs::Tx, "acme", "pw").await;
    assert_eq!(
        p.submit(submit_sm("49", b"plain")).await.command_status,
        CommandStatus::ESME_ROK
    );
}

#[tokio::test]
async fn failed_handshake_closes_only_that_connection() {
    let s = start_with(
        &cfg(),
        Options {
            tls: true,
            service: None,
        },
    )
    .await;
    let tls_addr = s.tls_addr.unwrap();
    let ca = s.ca_der.clone().unwrap();
    let bound = Esme::connect_tls(tls_addr, &ca).await;
    assert_eq!(
        bound.bind(BindAs::Trx, "acme", "pw").await.command_status,
        CommandStatus::ESME_ROK
    );

    // Plain SMPP bytes on the TLS port: the handshake fails and that socket closes.
    let mut junk = tokio::net::TcpStream::connect(tls_addr).await.unwrap();
    let bind = crate::support::messages::encode(&smpp_protocol::Pdu::new(
        1,
        smpp_protocol::Body::BindTransceiver(esme::bind_body("acme", "pw")),
    ));
    junk.write_all(&bind).await.unwrap();
    let mut buf = [0u8; 256];
    let closed = tokio::time::timeout(esme::WAIT, async {
        loop {
            match junk.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => continue, // a TLS alert may come first
            }
        }
    })
    .await;
    assert!(closed.is_ok(), "server must close the failed handshake");

    // A client that does not trust the certificate fails too.
    let (_, _, other_ca) = server_harness::make_cert();
    assert!(esme::tls_connect(tls_addr, &other_ca).await.is_err());

    // The bound session and new TLS connections are unaffected.
    assert_eq!(
        bound
            .submit(submit_sm("49", b"still here"))
            .await
            .command_status,
        CommandStatus::ESME_ROK
    );
    let again = Esme::connect_tls(tls_addr, &ca).await;
    assert_eq!(
        again.bind(BindAs::Tx, "acme", "pw").await.command_status,
        CommandStatus::ESME_ROK
    );
}

#[tokio::test]
async fn tls_required_account_is_refused_on_the_plain_port_and_accepted_on_tls() {
    let s = start_with(
        &cfg(),
        Options {
            tls: true,
            service: None,
        },
    )
    .await;
    let p = Esme::connect(s.addr).await;
    let r = p.bind(BindAs::Trx, "secure", "pw").await;
    assert_eq!(r.command_status, CommandStatus::ESME_RBINDFAIL);
    p.expect_closed().await;
    let t = Esme::connect_tls(s.tls_addr.unwrap(), s.ca_der.as_ref().unwrap()).await;
    let r = t.bind(BindAs::Trx, "secure", "pw").await;
    assert_eq!(r.command_status, CommandStatus::ESME_ROK);
}

#[test]
fn unreadable_tls_key_is_a_config_problem() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, _, _) = server_harness::make_cert();
    std::fs::write(dir.path().join("cert.pem"), cert).unwrap();
    std::fs::write(dir.path().join("key.pem"), "not a key").unwrap();
    let text = cfg()
        .set("server.tls_listen", "127.0.0.1:0")
        .set("server.tls_cert", "cert.pem")
        .set("server.tls_key", "key.pem")
        .text();
    let err =
        smppd::config::Config::from_toml(&text, &Default::default(), Some(dir.path())).unwrap_err();
    assert!(
        err.to_string()
            .contains("server.tls_key: no PEM private key"),
        "{err}"
    );
}
