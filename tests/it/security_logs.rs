//! Secrets stay out of the logs of the real binary (even at RUST_LOG=debug, every
//! crate), and `check-config` warns about a config file others can read.

use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::process::{Command, Stdio};
use std::time::Duration;

use smpp_protocol::{Body, CommandStatus, Pdu};

use crate::support::config::TestConfig;
use crate::support::esme::{BindAs, Esme};
use crate::support::messages::submit_sm;
use crate::support::servers;

/// The right password (8 octets, the SMPP maximum), a wrong one, and the text.
const PASSWORD: &str = "Pw9xQz7K";
const WRONG: &str = "Wr0ngPw4";
const TEXT: &str = "canary-text-ZQXJ-58213 do not log me";

#[tokio::test]
async fn binary_never_logs_passwords_or_message_text_at_debug_level() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.toml");
    let config = TestConfig::new()
        .set("server.log_format", "json")
        .esme("acme", &format!("password = \"{PASSWORD}\""))
        .text();
    std::fs::write(&path, config).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    let redis = servers::RedisServer::start(servers::RedisKind::Redis7);
    let mongo = servers::MongoServer::start();
    let mut child = Command::new(env!("CARGO_BIN_EXE_smppd"))
        .args(["serve", "--config"])
        .arg(&path)
        .env("SMPPD_REDIS_URL", redis.url())
        .env("SMPPD_MONGODB_URI", mongo.uri())
        .env("RUST_LOG", "debug")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<String>();
    let stderr = child.stderr.take().unwrap();
    let stdout = child.stdout.take().unwrap();
    let out_tx = tx.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = out_tx.send(line);
        }
    });
    let mut log = Vec::new();
    let addr: std::net::SocketAddr = tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            let line = rx.recv().await.expect("smppd exited early");
            log.push(line.clone());
            if line.contains("smppd accepting") {
                let v: serde_json::Value = serde_json::from_str(&line).unwrap();
                return v["fields"]["listen"].as_str().unwrap().parse().unwrap();
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("smppd did not start:\n{}", log.join("\n")));

    let bad = Esme::connect(addr).await;
    let r = bad.bind(BindAs::Trx, "acme", WRONG).await;
    assert_eq!(r.command_status, CommandStatus::ESME_RBINDFAIL);
    let c = Esme::bound(addr, BindAs::Trx, "acme", PASSWORD).await;
    let r = c.submit(submit_sm("4915112345", TEXT.as_bytes())).await;
    assert_eq!(r.command_status, CommandStatus::ESME_ROK, "{r:?}");
    // Its receipt (it quotes the text, so it is logged-or-not too) comes next: answer
    // it before unbinding, as an ESME does.
    let p = c.recv().await;
    assert!(matches!(p.body, Body::DeliverSm(_)), "{p:?}");
    c.send(Pdu::new(p.sequence_number, Body::DeliverSmResp(None)))
        .await;
    let r = c.request(Body::Unbind).await;
    assert_eq!(r.command_status, CommandStatus::ESME_ROK);
    c.expect_closed().await;

    // Stop it, so everything it would log is flushed, then read all of it.
    let pid = child.id().to_string();
    assert!(Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap()
        .success());
    let status = tokio::task::spawn_blocking(move || child.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(status.success(), "{status:?}");
    while let Some(line) = rx.recv().await {
        log.push(line);
    }
    let all = log.join("\n");
    assert!(
        all.contains("bind refused") && all.contains("bound"),
        "the binds were logged (so the log was really captured)"
    );
    assert!(all.contains("DEBUG") || all.contains("\"level\":\"DEBUG\""));
    for (what, secret) in [
        ("right password", PASSWORD),
        ("wrong password", WRONG),
        ("message text", TEXT),
        ("message text (hex)", &hex::encode(TEXT)),
        ("message text fragment", "ZQXJ-58213"),
    ] {
        let hits: Vec<&String> = log.iter().filter(|l| l.contains(secret)).collect();
        assert!(hits.is_empty(), "{what} logged:\n{hits:#?}");
    }
}

/// `check-config` on a file readable by group/others warns (it holds passwords);
/// with 0600 it does not.
#[test]
fn check_config_warns_about_a_world_readable_config() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.toml");
    std::fs::write(
        &path,
        TestConfig::new()
            .esme("acme", &format!("password = \"{PASSWORD}\""))
            .text(),
    )
    .unwrap();
    let run = |mode: u32| {
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
        let out = Command::new(env!("CARGO_BIN_EXE_smppd"))
            .args(["check-config", "--config"])
            .arg(&path)
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            !text.contains(PASSWORD),
            "check-config printed the password"
        );
        text
    };
    for mode in [0o644, 0o640, 0o604] {
        let text = run(mode);
        let warning = text
            .lines()
            .find(|l| l.starts_with("warning:"))
            .unwrap_or_else(|| panic!("mode {mode:o}: no warning in\n{text}"));
        assert!(
            warning.contains(&format!("{:o}", mode)) && warning.contains("chmod 600"),
            "{warning}"
        );
    }
    let text = run(0o600);
    assert!(!text.contains("warning"), "{text}");
    assert!(text.contains("config OK"));
}
