//! The admin API and its CLI against a full App (real Redis, real Mongo-protocol
//! server, real SMPP binds and HTTP over sockets): tokens and roles, binds listed and
//! unbound, messages looked up, two nodes sharing one Redis, and the `smppd binds`,
//! `unbind` and `hash-password` commands of the built binary.

use std::io::Write;
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use smpp_protocol::{Body, CommandId, CommandStatus, Pdu};
use smppd::app::App;
use smppd::config::{Config, ConfigSource, EnvOverrides};
use smppd::server::ServerHandle;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::support::config::TestConfig;
use crate::support::esme::{BindAs, Esme};
use crate::support::messages::submit_sm;
use crate::support::servers::{MongoServer, RedisKind, RedisServer};
use crate::support::wait_for;

/// How long any condition may take to come true.
const WAIT: Duration = Duration::from_secs(20);
const READ_TOKEN: &str = "read-token-0123456789abcdef";
const ADMIN_TOKEN: &str = "admin-token-0123456789abcdef";

/// `ADMIN_TOKEN` as an argon2id PHC string (cheap parameters: m=1 MiB, t=1).
fn admin_token_hash() -> String {
    use argon2::password_hash::{PasswordHasher, SaltString};
    let salt = SaltString::encode_b64(b"smppd-admin-test").unwrap();
    let params = argon2::Params::new(1024, 1, 1, None).unwrap();
    argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params)
        .hash_password(ADMIN_TOKEN.as_bytes(), &salt)
        .unwrap()
        .to_string()
}

/// Node `node` on the test's servers, its keys and database called `name`, the
/// admin API on with a read token and an admin token (its hash), one account `name`.
fn config(redis: &RedisServer, mongo: &MongoServer, name: &str, node: &str) -> TestConfig {
    let mut c = TestConfig::new();
    c.set("server.node_id", node)
        .set("server.shutdown_grace", "2s")
        .stores(&redis.url(), &mongo.uri(), name)
        .set("admin.listen", "127.0.0.1:0")
        .toml(&format!(
            "[admin]\ntokens = [ {{ token = \"{READ_TOKEN}\", role = \"read\" }}, \
             {{ token_hash = \"{}\", role = \"admin\" }} ]\n",
            admin_token_hash()
        ))
        .esme(name, "window = 7");
    c
}

/// A running App: its SMPP and admin addresses, and how to stop it.
struct Running {
    smpp: SocketAddr,
    admin: SocketAddr,
    handle: ServerHandle,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl Running {
    async fn stop(self) {
        self.handle.shutdown();
        tokio::time::timeout(WAIT, self.task)
            .await
            .expect("app did not stop")
            .unwrap()
            .unwrap();
    }
}

async fn start_app(config: TestConfig) -> Running {
    let text = config.text();
    let config = Config::from_toml(&text, &EnvOverrides::default(), None).unwrap();
    let app = App::start(ConfigSource::Inline(text), Arc::new(config))
        .await
        .unwrap();
    Running {
        smpp: app.local_addr().unwrap(),
        admin: app.admin_addr().expect("admin.listen is set"),
        handle: app.handle(),
        task: tokio::spawn(app.run()),
    }
}

/// One HTTP/1.1 request over a fresh connection: (status code, headers, body).
async fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    token: Option<&str>,
) -> (u16, String, String) {
    let exchange = async {
        let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
        let auth = token
            .map(|t| format!("Authorization: Bearer {t}\r\n"))
            .unwrap_or_default();
        let req = format!(
            "{method} {path} HTTP/1.1\r\nHost: smppd\r\n{auth}Content-Length: 0\r\nConnection: close\r\n\r\n"
        );
        s.write_all(req.as_bytes()).await.unwrap();
        let mut raw = Vec::new();
        s.read_to_end(&mut raw).await.unwrap();
        String::from_utf8(raw).unwrap()
    };
    let text = tokio::time::timeout(Duration::from_secs(10), exchange)
        .await
        .expect("no HTTP answer within 10 s");
    let (head, body) = text.split_once("\r\n\r\n").expect("no header end");
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("bad status line in {head:?}"));
    (status, head.to_string(), body.to_string())
}

/// GET with a token, expecting 200 and JSON.
async fn get_json(addr: SocketAddr, path: &str, token: &str) -> serde_json::Value {
    let (status, _, body) = http(addr, "GET", path, Some(token)).await;
    assert_eq!(status, 200, "GET {path}: {body}");
    serde_json::from_str(&body).unwrap_or_else(|e| panic!("{e}: {body}"))
}

fn binds_of<'a>(reply: &'a serde_json::Value, system_id: &str) -> Vec<&'a serde_json::Value> {
    reply["binds"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|b| b["system_id"] == system_id)
        .collect()
}

/// The ESME answers the server's unbind, then sees the connection close.
async fn answer_unbind(c: &Esme) {
    let p = c.recv().await;
    assert_eq!(p.body, Body::Unbind, "{p:?}");
    c.send(Pdu::new(p.sequence_number, Body::UnbindResp)).await;
    let rest = c.expect_closed().await;
    assert!(rest.is_empty(), "after unbind_resp: {rest:?}");
}

#[test]
fn admin_config_problems_name_their_keys() {
    let text = "[admin]\nlisten = \"nowhere\"\n\
                tokens = [ { token = \"short\", role = \"read\" }, \
                           { token_hash = \"$argon2d$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\", role = \"admin\" }, \
                           { token = \"0123456789abcdef0\", token_hash = \"x\", role = \"admin\" }, \
                           { token = \"0123456789abcdef1\", role = \"root\" }, \
                           { token = \"0123456789abcdef2\" } ]\n";
    let problems = Config::from_toml(text, &EnvOverrides::default(), None)
        .unwrap_err()
        .0;
    let keys: Vec<&str> = problems.iter().map(|p| p.path.as_str()).collect();
    for key in [
        "admin.listen",
        "admin.tokens[0].token",
        "admin.tokens[1].token_hash",
        "admin.tokens[2].token",
        "admin.tokens[3].role",
        "admin.tokens[4].role",
    ] {
        assert!(keys.contains(&key), "{key} not in {problems:?}");
    }
    let dump = format!("{problems:?}");
    assert!(
        !dump.contains("0123456789abcdef1"),
        "a token in a problem: {dump}"
    );

    let no_tokens = Config::from_toml(
        "[admin]\nlisten = \"127.0.0.1:9776\"\n",
        &EnvOverrides::default(),
        None,
    )
    .unwrap_err()
    .0;
    assert_eq!(no_tokens[0].path, "admin.tokens", "{no_tokens:?}");

    let ok = Config::from_toml(
        &format!(
            "[admin]\nlisten = \"127.0.0.1:9776\"\n\
             tokens = [ {{ token = \"{READ_TOKEN}\", role = \"read\" }} ]\n"
        ),
        &EnvOverrides::default(),
        None,
    )
    .unwrap();
    assert_eq!(ok.admin.tokens.len(), 1);
    assert!(
        !format!("{ok:?}").contains(READ_TOKEN),
        "Debug shows a token"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_and_roles_are_enforced() {
    let redis = RedisServer::start(RedisKind::Redis7);
    let mongo = MongoServer::start();
    let app = start_app(config(&redis, &mongo, "aauth", "node-a")).await;
    let a = app.admin;

    // No token, a wrong one, another scheme: 401 with a Bearer challenge.
    for token in [None, Some("wrong-token-0123456789"), Some("")] {
        let (status, head, _) = http(a, "GET", "/api/binds", token).await;
        assert_eq!(status, 401, "{token:?}");
        assert!(
            head.to_ascii_lowercase()
                .contains("www-authenticate: bearer"),
            "{head}"
        );
    }
    // A read token reads everything and may not act.
    for path in ["/api/binds", "/api/accounts", "/api/stats", "/api/routes"] {
        get_json(a, path, READ_TOKEN).await;
    }
    let (status, _, body) = http(a, "POST", "/api/binds/1/unbind", Some(READ_TOKEN)).await;
    assert_eq!(status, 403, "{body}");
    // The hashed admin token acts (nothing to unbind here) and reads, twice: the
    // second time from the cache.
    for _ in 0..2 {
        let (status, _, body) = http(a, "POST", "/api/binds/999/unbind", Some(ADMIN_TOKEN)).await;
        assert_eq!(status, 404, "{body}");
        get_json(a, "/api/binds", ADMIN_TOKEN).await;
    }
    // Wrong methods and paths.
    assert_eq!(
        http(a, "GET", "/api/binds/1/unbind", Some(ADMIN_TOKEN))
            .await
            .0,
        405
    );
    assert_eq!(http(a, "GET", "/api/nope", Some(ADMIN_TOKEN)).await.0, 404);
    // The console is served without a token (it asks for one) and loads nothing
    // from elsewhere.
    let (status, head, body) = http(a, "GET", "/", None).await;
    assert_eq!(status, 200);
    assert!(body.contains("<html"), "{body}");
    assert!(head.contains("default-src 'none'"), "{head}");
    assert_eq!(http(a, "GET", "/console.js", None).await.0, 200);

    // Accounts show settings and never the password.
    let accounts = get_json(a, "/api/accounts", READ_TOKEN).await;
    assert_eq!(accounts[0]["system_id"], "aauth");
    assert_eq!(accounts[0]["credential"], "plain");
    assert_eq!(accounts[0]["window"], 7);
    assert_eq!(accounts[0]["default_alphabet"], "gsm7");
    assert_eq!(accounts[0]["receipt_pdu"], "deliver_sm");
    assert!(!accounts.to_string().contains("\"pw\""), "{accounts}");
    assert_eq!(
        get_json(a, "/api/routes", READ_TOKEN).await,
        serde_json::json!([])
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bound_esme_is_listed_counted_and_unbound() {
    let redis = RedisServer::start(RedisKind::Redis7);
    let mongo = MongoServer::start();
    let acct = "abinds";
    let app = start_app(config(&redis, &mongo, acct, "node-a")).await;
    let a = app.admin;

    let reply = get_json(a, "/api/binds", READ_TOKEN).await;
    assert_eq!(reply["node"], "node-a");
    assert!(binds_of(&reply, acct).is_empty(), "{reply}");

    let esme = Esme::bound(app.smpp, BindAs::Trx, acct, "pw").await;
    let r = esme.submit(submit_sm("491701", b"hello")).await;
    assert_eq!(r.command_status, CommandStatus::ESME_ROK);
    // Its receipt comes back on the same transceiver bind.
    let p = esme.recv().await;
    assert_eq!(p.command_id(), CommandId::DELIVER_SM, "{p:?}");
    esme.send(Pdu::new(p.sequence_number, Body::DeliverSmResp(None)))
        .await;

    let reply = wait_for("the receipt counted", WAIT, || async {
        let r = get_json(a, "/api/binds", READ_TOKEN).await;
        (binds_of(&r, acct)
            .first()
            .map(|b| b["receipts_delivered"].clone())
            == Some(serde_json::json!(1)))
        .then_some(r)
    })
    .await;
    let listed = binds_of(&reply, acct);
    assert_eq!(listed.len(), 1, "{reply}");
    let b = listed[0];
    assert_eq!(b["bind_type"], "transceiver");
    assert_eq!(b["node"], "node-a");
    assert_eq!(b["tls"], false);
    assert_eq!(b["interface_version"], 0x34);
    assert_eq!(b["window"], 7);
    assert_eq!(b["window_in_use"], 0);
    assert_eq!(b["submits_ok"], 1);
    assert_eq!(b["unbinding"], false);
    assert!(b["peer"].as_str().unwrap().starts_with("127.0.0.1:"), "{b}");
    assert!(b["bound_since"].as_str().unwrap().ends_with('Z'), "{b}");

    // Stats carry the account's counters.
    let stats = get_json(a, "/api/stats", READ_TOKEN).await;
    let s = stats["accounts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["system_id"] == acct)
        .unwrap();
    assert_eq!(s["binds"], 1, "{stats}");
    assert_eq!(s["submits_ok"], 1, "{stats}");
    assert_eq!(s["receipts_delivered"], 1, "{stats}");
    assert_eq!(s["receipt_queue"], 0, "{stats}");
    assert!(stats["pending_messages"].is_i64(), "{stats}");

    // Unbind: the ESME is sent unbind, answers, and is closed; by then the bind is
    // out of the list.
    let id = b["id"].as_u64().unwrap();
    let (status, _, body) = http(
        a,
        "POST",
        &format!("/api/binds/{id}/unbind"),
        Some(ADMIN_TOKEN),
    )
    .await;
    assert_eq!(status, 202, "{body}");
    let r: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(r["system_id"], acct);
    answer_unbind(&esme).await;
    let reply = get_json(a, "/api/binds", READ_TOKEN).await;
    assert!(binds_of(&reply, acct).is_empty(), "{reply}");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_submitted_message_is_looked_up_by_its_id() {
    let redis = RedisServer::start(RedisKind::Redis7);
    let mongo = MongoServer::start();
    let acct = "amsg";
    let app = start_app(config(&redis, &mongo, acct, "node-a")).await;
    let a = app.admin;

    let esme = Esme::bound(app.smpp, BindAs::Tx, acct, "pw").await;
    let r = esme.submit(submit_sm("491701", b"hello")).await;
    assert_eq!(r.command_status, CommandStatus::ESME_ROK);
    let Body::SubmitSmResp(Some(resp)) = r.body else {
        panic!("{r:?}");
    };
    let id = resp.message_id.to_string_lossy().into_owned();

    // A single-part message finishes at once; its outcome reaches MongoDB soon after.
    let path = format!("/api/messages/{id}");
    let m = wait_for("the outcome in MongoDB", WAIT, || async {
        let m = get_json(a, &path, READ_TOKEN).await;
        m["outcome"].is_object().then_some(m)
    })
    .await;
    assert_eq!(m["message_id"], id.as_str());
    assert_eq!(m["state"], "DELIVERED");
    let o = &m["outcome"];
    assert_eq!(o["account"], acct);
    assert_eq!(o["group_id"], id.as_str());
    assert_eq!(o["dest"]["addr"], "491701");
    assert_eq!(o["total"], 1);
    assert_eq!(o["segments"][0]["message_id"], id.as_str());
    assert_eq!(o["node"], "node-a");
    assert!(!m.to_string().contains("hello"), "no message text: {m}");

    // A message still waiting for its second segment: ENROUTE, from Redis.
    let mut first = crate::support::messages::submit_sm("491702", &[5, 0, 3, 9, 2, 1, b'x']);
    first.esm_class = 0x40;
    let r = esme.request(Body::SubmitSm(first)).await;
    let Body::SubmitSmResp(Some(resp)) = r.body else {
        panic!("{r:?}");
    };
    let pending = resp.message_id.to_string_lossy().into_owned();
    let m = get_json(a, &format!("/api/messages/{pending}"), READ_TOKEN).await;
    assert_eq!(m["state"], "ENROUTE", "{m}");
    assert_eq!(m["final"], false);

    // An id nobody was given, and something that is not an id.
    let m = get_json(a, "/api/messages/FFFFFFFF000000000000", READ_TOKEN).await;
    assert_eq!(m["state"], "pending_or_unknown");
    assert_eq!(m["final"], false);
    assert_eq!(
        http(a, "GET", "/api/messages/a%20b", Some(READ_TOKEN))
            .await
            .0,
        400
    );
    drop(esme);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binds_of_every_node_on_the_redis_are_listed() {
    let redis = RedisServer::start(RedisKind::Redis7);
    let mongo = MongoServer::start();
    let acct = "anodes";
    let node_a = start_app(config(&redis, &mongo, acct, "node-a")).await;
    let node_b = start_app(config(&redis, &mongo, acct, "node-b")).await;

    let esme = Esme::bound(node_b.smpp, BindAs::Rx, acct, "pw").await;
    // Node b republishes on the bind; node a lists it as node b's.
    let reply = wait_for("node b's bind listed on node a", WAIT, || async {
        let r = get_json(node_a.admin, "/api/binds", READ_TOKEN).await;
        (binds_of(&r, acct).len() == 1).then_some(r)
    })
    .await;
    let b = binds_of(&reply, acct)[0];
    assert_eq!(b["node"], "node-b", "{reply}");
    assert_eq!(b["bind_type"], "receiver");
    let nodes: Vec<&str> = reply["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["node"].as_str().unwrap())
        .collect();
    assert_eq!(nodes, ["node-a", "node-b"], "{reply}");

    // Node a cannot unbind node b's bind; node b can.
    let id = b["id"].as_u64().unwrap();
    let unbind = format!("/api/binds/{id}/unbind");
    assert_eq!(
        http(node_a.admin, "POST", &unbind, Some(ADMIN_TOKEN))
            .await
            .0,
        404
    );
    assert_eq!(
        http(node_b.admin, "POST", &unbind, Some(ADMIN_TOKEN))
            .await
            .0,
        202
    );
    answer_unbind(&esme).await;
    wait_for("node b's bind gone from node a's list", WAIT, || async {
        let r = get_json(node_a.admin, "/api/binds", READ_TOKEN).await;
        binds_of(&r, acct).is_empty().then_some(())
    })
    .await;

    // A node that stops withdraws its list.
    node_b.stop().await;
    let r = get_json(node_a.admin, "/api/binds", READ_TOKEN).await;
    assert_eq!(r["nodes"].as_array().unwrap().len(), 1, "{r}");
    node_a.stop().await;
}

fn smppd() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_smppd"));
    c.env_remove("SMPPD_ADMIN_TOKEN")
        .env_remove("SMPPD_ADMIN_URL");
    c
}

#[test]
fn hash_password_reads_stdin_and_prints_a_phc_string_that_verifies() {
    use argon2::{PasswordHash, PasswordVerifier};
    let mut child = smppd()
        .arg("hash-password")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"s3cret-token-for-admin\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{out:?}");
    let phc = String::from_utf8(out.stdout).unwrap().trim().to_string();
    assert!(phc.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{phc}");
    let hash = PasswordHash::new(&phc).unwrap();
    assert!(argon2::Argon2::default()
        .verify_password(b"s3cret-token-for-admin", &hash)
        .is_ok());
    assert!(argon2::Argon2::default()
        .verify_password(b"s3cret-token-for-admin\n", &hash)
        .is_err());
    // The secret is not echoed anywhere.
    assert!(!String::from_utf8_lossy(&out.stderr).contains("s3cret"));
    // It is a valid token_hash (and would be a valid password_hash).
    let text = format!(
        "[admin]\nlisten = \"127.0.0.1:9776\"\ntokens = [ {{ token_hash = \"{phc}\", role = \"admin\" }} ]\n\
         [[esme]]\nsystem_id = \"x\"\npassword_hash = \"{phc}\"\n"
    );
    Config::from_toml(&text, &EnvOverrides::default(), None).unwrap();

    // Nothing on stdin: an error, no hash.
    let out = smppd()
        .arg("hash-password")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(out.stdout.is_empty());
}

/// Runs the built binary with the admin URL and token in its environment.
async fn cli(admin: SocketAddr, token: &str, args: &[&str]) -> std::process::Output {
    let mut c = smppd();
    c.args(args)
        .env("SMPPD_ADMIN_URL", format!("http://{admin}"))
        .env("SMPPD_ADMIN_TOKEN", token);
    tokio::task::spawn_blocking(move || c.output().unwrap())
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_lists_binds_looks_up_messages_and_unbinds() {
    let redis = RedisServer::start(RedisKind::Redis7);
    let mongo = MongoServer::start();
    let acct = "acli";
    let app = start_app(config(&redis, &mongo, acct, "node-cli")).await;
    let a = app.admin;
    let esme = Esme::bound(app.smpp, BindAs::Trx, acct, "pw").await;

    let out = cli(a, READ_TOKEN, &["binds"]).await;
    assert!(out.status.success(), "{out:?}");
    let table = String::from_utf8(out.stdout).unwrap();
    let row = table
        .lines()
        .find(|l| l.contains(acct))
        .unwrap_or_else(|| panic!("{table}"));
    assert!(
        row.contains("node-cli") && row.contains("transceiver") && row.contains("3.4"),
        "{row}"
    );

    let out = cli(a, READ_TOKEN, &["binds", "--json"]).await;
    let reply: smppd::admin::api::BindsReply = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(reply.binds.len(), 1);

    let out = cli(a, READ_TOKEN, &["message", "FFFFFFFF000000000000"]).await;
    assert!(out.status.success(), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("pending_or_unknown"));

    // A read token may not unbind; a wrong one is refused as such.
    let out = cli(a, READ_TOKEN, &["unbind", acct]).await;
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("403"),
        "{out:?}"
    );
    let out = cli(a, "wrong-token-0123456789", &["binds"]).await;
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("401"),
        "{out:?}"
    );

    // By bind id: a second bind of the account goes, the first stays.
    let second = Esme::bound(app.smpp, BindAs::Tx, acct, "pw").await;
    let reply: smppd::admin::api::BindsReply =
        serde_json::from_slice(&cli(a, READ_TOKEN, &["binds", "--json"]).await.stdout).unwrap();
    let id = reply
        .binds
        .iter()
        .find(|b| b.bind_type == "transmitter")
        .unwrap()
        .id;
    let out = cli(a, ADMIN_TOKEN, &["unbind", &id.to_string()]).await;
    assert!(out.status.success(), "{out:?}");
    answer_unbind(&second).await;
    let reply: smppd::admin::api::BindsReply =
        serde_json::from_slice(&cli(a, READ_TOKEN, &["binds", "--json"]).await.stdout).unwrap();
    assert_eq!(reply.binds.len(), 1, "{reply:?}");
    assert_eq!(reply.binds[0].bind_type, "transceiver");

    // By system_id, with the admin token.
    let out = cli(a, ADMIN_TOKEN, &["unbind", acct]).await;
    assert!(out.status.success(), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stdout).contains(acct));
    answer_unbind(&esme).await;
    let out = cli(a, ADMIN_TOKEN, &["unbind", acct]).await;
    assert!(!out.status.success(), "nothing left to unbind");
    app.stop().await;
}

/// No token — right, wrong, clear or hashed — reaches the log of the real binary,
/// even at RUST_LOG=trace (every crate, hyper's parsing included); an action is
/// logged with the name of the token that did it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_never_reach_the_log() {
    use std::io::{BufRead, BufReader};
    use std::os::unix::fs::PermissionsExt;
    const WRONG: &str = "wrong-token-canary-58213";
    let redis = RedisServer::start(RedisKind::Redis7);
    let mongo = MongoServer::start();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.toml");
    let text = config(&redis, &mongo, "alog", "node-log")
        .set("server.log_format", "json")
        .text();
    std::fs::write(&path, text).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    let mut child = smppd()
        .args(["serve", "--config"])
        .arg(&path)
        .env("RUST_LOG", "trace")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<String>();
    for pipe in [
        Box::new(child.stdout.take().unwrap()) as Box<dyn std::io::Read + Send>,
        Box::new(child.stderr.take().unwrap()),
    ] {
        let tx = tx.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
    }
    drop(tx);
    let mut log = Vec::new();
    let (mut smpp, mut admin) = (None, None);
    tokio::time::timeout(WAIT, async {
        while smpp.is_none() || admin.is_none() {
            let line = rx.recv().await.expect("smppd exited early");
            log.push(line.clone());
            let Ok(v) = serde_json::from_str::<serde_json::Value>(&line) else {
                continue;
            };
            let f = &v["fields"];
            if f["message"] == "smppd accepting" {
                smpp = f["listen"]
                    .as_str()
                    .map(|a| a.parse::<SocketAddr>().unwrap());
            }
            if f["message"] == "admin API listening" {
                admin = f["addr"].as_str().map(|a| a.parse::<SocketAddr>().unwrap());
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("smppd did not start:\n{}", log.join("\n")));
    let (smpp, admin) = (smpp.unwrap(), admin.unwrap());

    let esme = Esme::bound(smpp, BindAs::Tx, "alog", "pw").await;
    for token in [READ_TOKEN, ADMIN_TOKEN, WRONG] {
        http(admin, "GET", "/api/binds", Some(token)).await;
    }
    http(admin, "POST", "/api/binds/1/unbind", Some(READ_TOKEN)).await;
    let (status, _, body) = http(admin, "POST", "/api/binds/1/unbind", Some(ADMIN_TOKEN)).await;
    assert_eq!(status, 202, "{body}");
    answer_unbind(&esme).await;

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
    assert!(
        log.iter().any(|l| l.contains("\"level\":\"DEBUG\"")),
        "the log was captured at debug level or below"
    );
    let action = log
        .iter()
        .find(|l| l.contains("admin API: unbinding"))
        .unwrap_or_else(|| panic!("the unbind was not logged:\n{}", log.join("\n")));
    assert!(action.contains("admin.tokens[1]"), "{action}");
    for (what, secret) in [
        ("read token", READ_TOKEN),
        ("admin token", ADMIN_TOKEN),
        ("wrong token", WRONG),
        ("token fragment", "0123456789abcdef"),
    ] {
        let hits: Vec<&String> = log.iter().filter(|l| l.contains(secret)).collect();
        assert!(hits.is_empty(), "{what} logged:\n{hits:#?}");
    }
}

/// Tokens come from the config in force: a reload that replaces them applies to the
/// next request, and an argon2 success cached for the old hash does not outlive it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_replaces_the_tokens() {
    let redis = RedisServer::start(RedisKind::Redis7);
    let mongo = MongoServer::start();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.toml");
    let mut test_config = config(&redis, &mongo, "areload", "node-r");
    std::fs::write(&path, test_config.text()).unwrap();
    let config = Config::load(&path).unwrap().config;
    let app = App::start(ConfigSource::File(path.clone()), Arc::new(config))
        .await
        .unwrap();
    let admin = app.admin_addr().unwrap();
    let handle = app.handle();
    let task = tokio::spawn(app.run());

    get_json(admin, "/api/whoami", ADMIN_TOKEN).await;
    const NEW: &str = "new-read-token-0123456789";
    test_config.remove("admin.tokens").toml(&format!(
        "[admin]\ntokens = [ {{ token = \"{NEW}\", role = \"read\" }} ]\n"
    ));
    std::fs::write(&path, test_config.text()).unwrap();
    handle.reload().unwrap();

    for old in [READ_TOKEN, ADMIN_TOKEN] {
        assert_eq!(http(admin, "GET", "/api/binds", Some(old)).await.0, 401);
    }
    let me = get_json(admin, "/api/whoami", NEW).await;
    assert_eq!(me["role"], "read");
    assert_eq!(me["token"], "admin.tokens[0]");

    handle.shutdown();
    tokio::time::timeout(WAIT, task)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
}
