//! Hot reload and graceful shutdown, in-process and through signals to the binary.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use smpp_protocol::{Body, CommandStatus, Pdu};

use crate::support::config::TestConfig;
use crate::support::esme::{BindAs, Esme};
use crate::support::messages::submit_sm;
use crate::support::server_harness::start;
use crate::support::servers;

#[tokio::test]
async fn reload_adds_and_removes_accounts_live() {
    let s = start(TestConfig::new().esme("old", "")).await;
    let old = Esme::bound(s.addr, BindAs::Trx, "old", "pw").await;
    let c = Esme::connect(s.addr).await;
    assert_eq!(
        c.bind(BindAs::Trx, "new", "pw").await.command_status,
        CommandStatus::ESME_RBINDFAIL
    );

    s.rewrite_config(TestConfig::new().esme("new", ""));
    assert_eq!(s.handle.reload().unwrap(), 1, "one session told to unbind");

    // The removed account's session is unbound by the server...
    let p = old.recv().await;
    assert_eq!(p.body, Body::Unbind);
    old.send(Pdu::new(p.sequence_number, Body::UnbindResp))
        .await;
    assert!(old.expect_closed().await.is_empty());
    s.wait_binds("old", 0).await;
    // ...it cannot bind again, and the new account can.
    let c = Esme::connect(s.addr).await;
    assert_eq!(
        c.bind(BindAs::Trx, "old", "pw").await.command_status,
        CommandStatus::ESME_RBINDFAIL
    );
    Esme::bound(s.addr, BindAs::Trx, "new", "pw").await;
}

#[tokio::test]
async fn reload_disabling_an_account_unbinds_it_and_limit_changes_apply_live() {
    let s = start(TestConfig::new().esme("a", "").esme("b", "")).await;
    let a = Esme::bound(s.addr, BindAs::Tx, "a", "pw").await;
    let b = Esme::bound(s.addr, BindAs::Tx, "b", "pw").await;
    s.rewrite_config(
        TestConfig::new()
            .esme("a", "enabled = false")
            .esme("b", "throughput = 1\nburst = 1"),
    );
    s.handle.reload().unwrap();
    assert_eq!(a.recv().await.body, Body::Unbind);
    // b stays bound, now limited to a burst of 1.
    for seq in 1..=3u32 {
        b.send(Pdu::new(
            seq,
            Body::SubmitSm(crate::support::messages::submit_sm("49", b"x")),
        ))
        .await;
    }
    let mut statuses = Vec::new();
    for _ in 0..3 {
        statuses.push(b.recv().await.command_status);
    }
    assert!(
        statuses.contains(&CommandStatus::ESME_RTHROTTLED),
        "{statuses:?}"
    );
    assert_eq!(statuses[0], CommandStatus::ESME_ROK);
}

/// Connects and reports whether the server closed the connection at once (past
/// max_connections) rather than keeping it open for a bind.
async fn closed_at_once(addr: std::net::SocketAddr) -> bool {
    use tokio::io::AsyncReadExt;
    let mut tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let mut buf = [0u8; 16];
    // bind_timeout is 5 s: a close within 2 s is the connection limit, not a timer.
    match tokio::time::timeout(Duration::from_secs(2), tcp.read(&mut buf)).await {
        Ok(Ok(0)) | Ok(Err(_)) => true,
        Ok(Ok(n)) => panic!("server sent {n} octets to an unbound connection"),
        Err(_) => false,
    }
}

#[tokio::test]
async fn reload_changes_max_connections_for_the_next_connections() {
    let cfg = |max: i64| {
        let mut c = TestConfig::new();
        c.set("server.max_connections", max).esme("acme", "");
        c
    };
    let s = start(&cfg(2)).await;
    let mut open = Vec::new();
    for _ in 0..2 {
        open.push(Esme::bound(s.addr, BindAs::Trx, "acme", "pw").await);
    }
    assert!(closed_at_once(s.addr).await, "a third connection past 2");

    s.rewrite_config(&cfg(3));
    s.handle.reload().unwrap();
    open.push(Esme::bound(s.addr, BindAs::Trx, "acme", "pw").await);
    assert!(closed_at_once(s.addr).await, "a fourth connection past 3");

    // Lowering the limit closes nobody; it holds new connections back.
    s.rewrite_config(&cfg(1));
    s.handle.reload().unwrap();
    for c in &open {
        assert_eq!(
            c.submit(submit_sm("49", b"still bound"))
                .await
                .command_status,
            CommandStatus::ESME_ROK
        );
    }
    assert!(closed_at_once(s.addr).await, "past the lowered limit");
}

#[tokio::test]
async fn invalid_config_on_reload_keeps_the_old_one() {
    let s = start(TestConfig::new().esme("acme", "")).await;
    let c = Esme::bound(s.addr, BindAs::Tx, "acme", "pw").await;
    s.rewrite_config(TestConfig::new().esme("acme", "window = -1"));
    let problems = s.handle.reload().unwrap_err();
    assert!(
        problems.to_string().contains("esme[0].window"),
        "{problems}"
    );
    assert_eq!(
        c.submit(submit_sm("49", b"still fine"))
            .await
            .command_status,
        CommandStatus::ESME_ROK
    );
    Esme::bound(s.addr, BindAs::Tx, "acme", "pw").await;
}

#[tokio::test]
async fn graceful_shutdown_unbinds_every_session_and_finishes() {
    let s = start(TestConfig::new().esme("acme", "")).await;
    let mut clients = Vec::new();
    for id in [BindAs::Tx, BindAs::Rx, BindAs::Trx] {
        clients.push(Esme::bound(s.addr, id, "acme", "pw").await);
    }
    let open = Esme::connect(s.addr).await;
    s.wait_binds("acme", 3).await;
    s.handle.shutdown();
    for c in &mut clients {
        let p = c.recv().await;
        assert_eq!(p.body, Body::Unbind);
        c.send(Pdu::new(p.sequence_number, Body::UnbindResp)).await;
        assert!(c.expect_closed().await.is_empty());
    }
    assert!(
        open.expect_closed().await.is_empty(),
        "unbound connections are just closed"
    );
    let res = tokio::time::timeout(Duration::from_secs(5), s.join)
        .await
        .unwrap()
        .unwrap();
    assert!(res.is_ok());
}

#[tokio::test]
async fn shutdown_does_not_wait_past_the_grace_for_a_silent_esme() {
    let s = start(
        TestConfig::new()
            .set("server.shutdown_grace", "300ms")
            .esme("acme", ""),
    )
    .await;
    let c = Esme::bound(s.addr, BindAs::Trx, "acme", "pw").await;
    s.handle.shutdown();
    assert_eq!(c.recv().await.body, Body::Unbind);
    // No unbind_resp: the server closes after the grace period anyway.
    assert!(c.expect_closed().await.is_empty());
    tokio::time::timeout(Duration::from_secs(5), s.join)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
}

/// The built binary: SIGHUP reloads (new account binds), SIGTERM exits 0 after
/// unbinding.
#[tokio::test]
async fn binary_reloads_on_sighup_and_exits_cleanly_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.toml");
    let mut config = TestConfig::new();
    config.set("server.log_format", "json").esme("first", "");
    std::fs::write(&path, config.text()).unwrap();
    // `serve` connects the real store before it binds any port.
    let redis = servers::RedisServer::start(servers::RedisKind::Redis7);
    let mongo = servers::MongoServer::start();
    let mut child = Command::new(env!("CARGO_BIN_EXE_smppd"))
        .args(["serve", "--config"])
        .arg(&path)
        .env("SMPPD_REDIS_URL", redis.url())
        .env("SMPPD_MONGODB_URI", mongo.uri())
        .env("RUST_LOG", "info")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<String>();
    let stderr = child.stderr.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            let _ = tx.send(line);
        }
    });
    let mut wait_line = async |needle: &str| -> String {
        tokio::time::timeout(Duration::from_secs(10), async {
            loop {
                let line = rx.recv().await.expect("smppd exited early");
                if line.contains(needle) {
                    return line;
                }
            }
        })
        .await
        .unwrap_or_else(|_| panic!("no log line with {needle:?}"))
    };
    let line = wait_line("smppd accepting").await;
    let v: serde_json::Value = serde_json::from_str(&line).unwrap();
    let addr: std::net::SocketAddr = v["fields"]["listen"].as_str().unwrap().parse().unwrap();

    let first = Esme::bound(addr, BindAs::Trx, "first", "pw").await;
    std::fs::write(&path, config.esme("second", "").text()).unwrap();
    let pid = child.id().to_string();
    assert!(Command::new("kill")
        .args(["-HUP", &pid])
        .status()
        .unwrap()
        .success());
    wait_line("config reloaded").await;
    Esme::bound(addr, BindAs::Tx, "second", "pw").await;

    assert!(Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap()
        .success());
    let p = first.recv().await;
    assert_eq!(p.body, Body::Unbind);
    first
        .send(Pdu::new(p.sequence_number, Body::UnbindResp))
        .await;
    let status = tokio::task::spawn_blocking(move || child.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(status.success(), "{status:?}");
}
