//! The metrics endpoint of a full App (real Redis, real Mongo-protocol server, real
//! SMPP and HTTP over sockets): counters and gauges move with real traffic, and
//! `/healthz` names the dependency that fails and recovers with it.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use smpp_protocol::{Body, CommandId, CommandStatus, Pdu};
use smppd::app::App;
use smppd::config::{Config, ConfigSource, EnvOverrides};
use smppd::server::ServerHandle;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::support::config::TestConfig;
use crate::support::esme::{BindAs, Esme};
use crate::support::messages::{cs, submit_sm};
use crate::support::own_process;
use crate::support::servers::{MongoServer, RedisKind, RedisServer};
use crate::support::wait_for;

/// How long any condition may take to come true.
const WAIT: Duration = Duration::from_secs(20);

/// smppd on the test's servers, its keys and database called `name`, the metrics
/// endpoint on, accounts `name` and `name-slow` (1 submit/s, burst 1).
fn config(redis: &RedisServer, mongo: &MongoServer, name: &str) -> TestConfig {
    let mut c = TestConfig::new();
    c.set("server.shutdown_grace", "2s")
        .stores(&redis.url(), &mongo.uri(), name)
        .set("metrics.listen", "127.0.0.1:0")
        .esme(name, "")
        .esme(&format!("{name}-slow"), "throughput = 1\nburst = 1");
    c
}

/// A running App: its SMPP and metrics addresses, and how to stop it.
struct Running {
    smpp: SocketAddr,
    metrics: SocketAddr,
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
    // No SMPPD_REDIS_URL / SMPPD_MONGODB_URI from the environment: the test's own
    // servers are in the text.
    let text = config.text();
    let config = Config::from_toml(&text, &EnvOverrides::default(), None).unwrap();
    let app = App::start(ConfigSource::Inline(text), Arc::new(config))
        .await
        .unwrap();
    let metrics = app
        .metrics_addr()
        .expect("metrics.listen is set, so the endpoint must be up");
    Running {
        smpp: app.local_addr().unwrap(),
        metrics,
        handle: app.handle(),
        task: tokio::spawn(app.run()),
    }
}

/// One HTTP/1.1 GET over a fresh connection: (status code, body).
async fn get(addr: SocketAddr, path: &str) -> (u16, String) {
    let exchange = async {
        let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
        let req = format!("GET {path} HTTP/1.1\r\nHost: smppd\r\nConnection: close\r\n\r\n");
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
    (status, body.to_string())
}

/// A parsed scrape: every sample as (name, labels) → value.
struct Scrape {
    samples: Vec<(String, BTreeMap<String, String>, f64)>,
    text: String,
}

impl Scrape {
    fn parse(text: String) -> Scrape {
        let mut samples = Vec::new();
        for line in text
            .lines()
            .filter(|l| !l.starts_with('#') && !l.is_empty())
        {
            let (series, value) = line.rsplit_once(' ').unwrap();
            let value: f64 = value.parse().unwrap();
            let (name, labels) = match series.split_once('{') {
                None => (series.to_string(), BTreeMap::new()),
                Some((name, rest)) => {
                    let inner = rest.strip_suffix('}').unwrap();
                    let labels = inner
                        .split("\",")
                        .filter(|p| !p.is_empty())
                        .map(|p| {
                            let (k, v) = p.split_once("=\"").unwrap();
                            (k.to_string(), v.trim_end_matches('"').to_string())
                        })
                        .collect();
                    (name.to_string(), labels)
                }
            };
            samples.push((name, labels, value));
        }
        Scrape { samples, text }
    }

    /// The value of the one sample of `name` carrying all of `labels`; 0 if absent.
    fn value(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        let matching: Vec<f64> = self
            .samples
            .iter()
            .filter(|(n, l, _)| {
                n == name
                    && labels
                        .iter()
                        .all(|(k, v)| l.get(*k).map(String::as_str) == Some(*v))
            })
            .map(|(_, _, v)| *v)
            .collect();
        assert!(
            matching.len() <= 1,
            "{name} {labels:?} matches several samples:\n{}",
            self.text
        );
        matching.first().copied().unwrap_or(0.0)
    }

    fn has(&self, name: &str) -> bool {
        self.samples.iter().any(|(n, _, _)| n == name)
    }
}

async fn scrape(addr: SocketAddr) -> Scrape {
    let (status, body) = get(addr, "/metrics").await;
    assert_eq!(status, 200, "{body}");
    Scrape::parse(body)
}

async fn wait_metric(addr: SocketAddr, what: &str, ok: impl Fn(&Scrape) -> bool) -> Scrape {
    wait_for(what, WAIT, || async {
        let s = scrape(addr).await;
        ok(&s).then_some(s)
    })
    .await
}

const IN_SUBMIT_OK: [(&str, &str); 3] = [
    ("direction", "in"),
    ("command", "submit_sm"),
    ("status", "ESME_ROK"),
];
const OUT_SUBMIT_RESP_OK: [(&str, &str); 3] = [
    ("direction", "out"),
    ("command", "submit_sm_resp"),
    ("status", "ESME_ROK"),
];
const OUT_SUBMIT_RESP_THROTTLED: [(&str, &str); 3] = [
    ("direction", "out"),
    ("command", "submit_sm_resp"),
    ("status", "ESME_RTHROTTLED"),
];
const PDUS: &str = "smppd_pdus_total";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_follow_binds_submits_expiry_outcomes_and_throttling() {
    // It counts PDUs, expiries and receipt waits by differences of process-wide
    // counters: no other test's server may add to them meanwhile.
    if own_process::alone(
        module_path!(),
        "metrics_follow_binds_submits_expiry_outcomes_and_throttling",
    ) {
        return;
    }
    let redis = RedisServer::start(RedisKind::Redis7);
    let mongo = MongoServer::start();
    let acct = "mtraffic";
    let slow = "mtraffic-slow";
    let app = start_app(config(&redis, &mongo, acct)).await;
    let (smpp, m) = (app.smpp, app.metrics);

    let before = scrape(m).await;
    // Configured accounts show with zero binds before anyone binds.
    assert!(
        before.text.contains(&format!(
            "smppd_binds{{account=\"{acct}\",bind_type=\"transmitter\"}} 0"
        )),
        "{}",
        before.text
    );
    assert_eq!(before.value("smppd_pending_messages", &[]), 0.0);

    // Binds per account and bind type.
    let tx = Esme::bound(smpp, BindAs::Tx, acct, "pw").await;
    let rx = Esme::bound(smpp, BindAs::Rx, slow, "pw").await;
    let s = scrape(m).await;
    let binds =
        |s: &Scrape, a: &str, t: &str| s.value("smppd_binds", &[("account", a), ("bind_type", t)]);
    assert_eq!(binds(&s, acct, "transmitter"), 1.0, "{}", s.text);
    assert_eq!(binds(&s, acct, "receiver"), 0.0);
    assert_eq!(binds(&s, slow, "receiver"), 1.0);

    // A single-part submit: PDU counters in and out, the latency histogram, and (no
    // receiver bound for this account) its receipt waits in the queue; its outcome
    // is written to MongoDB.
    let r = tx.submit(submit_sm("491701", b"hello")).await;
    assert_eq!(r.command_status, CommandStatus::ESME_ROK);
    let s = wait_metric(m, "submit counted, outcome written, receipt queued", |s| {
        s.value("smppd_receipt_queue", &[("account", acct)]) == 1.0
            && s.value("smppd_outcomes_written_total", &[]) == 1.0
            && s.value("smppd_outcome_write_seconds_count", &[]) >= 1.0
            // Written is counted when MongoDB acknowledged; the outbox entry goes
            // with the finalize after it (pipelined with the next insert).
            && s.value("smppd_outcome_backlog", &[]) == 0.0
            && s.value(PDUS, &OUT_SUBMIT_RESP_OK) > before.value(PDUS, &OUT_SUBMIT_RESP_OK)
    })
    .await;
    assert_eq!(
        s.value(PDUS, &IN_SUBMIT_OK) - before.value(PDUS, &IN_SUBMIT_OK),
        1.0
    );
    assert_eq!(
        s.value(PDUS, &OUT_SUBMIT_RESP_OK) - before.value(PDUS, &OUT_SUBMIT_RESP_OK),
        1.0
    );
    let latency = |s: &Scrape| {
        s.value(
            "smppd_submit_latency_seconds_count",
            &[("command", "submit_sm")],
        )
    };
    assert_eq!(latency(&s) - latency(&before), 1.0);
    assert!(
        s.value(
            "smppd_submit_latency_seconds_bucket",
            &[("command", "submit_sm"), ("le", "+Inf")]
        ) >= 1.0,
        "latency is a histogram with buckets:\n{}",
        s.text
    );
    assert!(s.value("smppd_outcome_write_seconds_count", &[]) >= 1.0);
    assert_eq!(s.value("smppd_outcomes_written_total", &[]), 1.0);
    assert_eq!(s.value("smppd_outcome_backlog", &[]), 0.0);
    // The node built that message: its outcome came from memory, not Redis.
    assert_eq!(s.value("smppd_outcome_leases_known_total", &[]), 1.0);
    assert_eq!(s.value("smppd_outcome_leases_read_total", &[]), 0.0);

    // Half of a two-part message with a 1 s validity: pending until its deadline,
    // then claimed on expiry with its lateness observed.
    let mut seg = submit_sm("491702", b"");
    seg.esm_class = 0x40;
    seg.short_message = Bytes::from_static(&[0x05, 0x00, 0x03, 0x2A, 0x02, 0x01, b'h', b'i']);
    seg.validity_period = cs("000000000001000R");
    let r = tx.request(Body::SubmitSm(seg)).await;
    assert_eq!(r.command_status, CommandStatus::ESME_ROK);
    let s = scrape(m).await;
    assert_eq!(s.value("smppd_pending_messages", &[]), 1.0, "{}", s.text);
    let lateness = |s: &Scrape| s.value("smppd_expiry_lateness_seconds_count", &[]);
    let s = wait_metric(m, "the partial message expired", |s| {
        lateness(s) - lateness(&before) == 1.0 && s.value("smppd_pending_messages", &[]) == 0.0
    })
    .await;
    assert_eq!(s.value("smppd_expired_total", &[]), 1.0);
    assert!(s.value("smppd_expiry_lateness_seconds_sum", &[]) < 60.0);

    // Receipt wait: the expired message's receipt was released (stage queued; the
    // single-part one was queued by its submit, which is not a release). Neither was
    // taken: no receiver of the account is bound. Once one binds, both are taken for
    // their first send.
    const WAIT: &str = "smppd_receipt_wait_seconds_count";
    let queued = |s: &Scrape| s.value(WAIT, &[("stage", "queued")]);
    let taken = |s: &Scrape| s.value(WAIT, &[("stage", "taken")]);
    let s = wait_metric(m, "the expired message's receipt released", |s| {
        queued(s) - queued(&before) == 1.0
    })
    .await;
    assert_eq!(taken(&s) - taken(&before), 0.0, "{}", s.text);
    let rx_own = Esme::bound(smpp, BindAs::Rx, acct, "pw").await;
    for _ in 0..2 {
        let p = rx_own.recv().await;
        assert_eq!(p.command_id(), CommandId::DELIVER_SM);
        rx_own
            .send(Pdu::new(p.sequence_number, Body::DeliverSmResp(None)))
            .await;
    }
    let s = wait_metric(m, "both receipts taken and delivered", |s| {
        taken(s) - taken(&before) == 2.0
            && s.value("smppd_receipt_queue", &[("account", acct)]) == 0.0
    })
    .await;
    assert!(s.value("smppd_receipt_wait_seconds_sum", &[("stage", "taken")]) > 0.0);

    // Throttling: rate 1/s with a burst of 1, three submits at once.
    let slow_tx = Esme::bound(smpp, BindAs::Tx, slow, "pw").await;
    let mut throttled = 0.0;
    for i in 0..3 {
        let r = slow_tx.submit(submit_sm(&format!("49170{i}"), b"x")).await;
        if r.command_status == CommandStatus::ESME_RTHROTTLED {
            throttled += 1.0;
        }
    }
    assert!(throttled >= 1.0, "the rate limit let three through at once");
    let s = scrape(m).await;
    assert_eq!(
        s.value("smppd_throttled_total", &[("account", slow)]),
        throttled
    );
    assert_eq!(
        s.value(PDUS, &OUT_SUBMIT_RESP_THROTTLED) - before.value(PDUS, &OUT_SUBMIT_RESP_THROTTLED),
        throttled
    );

    // The gauge follows unbinds.
    drop(tx);
    drop(rx);
    wait_metric(m, "binds back to 0", |s| {
        binds(s, acct, "transmitter") == 0.0 && binds(s, slow, "receiver") == 0.0
    })
    .await;
    drop(slow_tx);
    app.stop().await;
}

async fn health(addr: SocketAddr) -> (u16, serde_json::Value) {
    let (status, body) = get(addr, "/healthz").await;
    let json = serde_json::from_str(&body).unwrap_or_else(|e| panic!("{e}: {body}"));
    (status, json)
}

async fn wait_health(
    addr: SocketAddr,
    what: &str,
    ok: impl Fn(u16, &serde_json::Value) -> bool,
) -> serde_json::Value {
    wait_for(what, WAIT, || async {
        let (status, json) = health(addr).await;
        ok(status, &json).then_some(json)
    })
    .await
}

fn all_ok(status: u16, j: &serde_json::Value) -> bool {
    status == 200
        && j == &serde_json::json!({"redis": "ok", "mongodb": "ok", "expiry_subscriber": "ok"})
}

fn fails(j: &serde_json::Value, part: &str) -> bool {
    j[part].as_str().is_some_and(|s| s.starts_with("fail"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn healthz_names_the_failing_dependency_and_recovers() {
    let mut redis = RedisServer::start(RedisKind::Redis7);
    let mut mongo = MongoServer::start();
    let app = start_app(config(&redis, &mongo, "mhealth")).await;
    let m = app.metrics;

    wait_health(m, "healthy at start", all_ok).await;

    // MongoDB down: 503 naming mongodb only.
    tokio::task::block_in_place(|| mongo.stop());
    let j = wait_health(m, "mongodb reported down", |st, j| {
        st == 503 && fails(j, "mongodb")
    })
    .await;
    assert_eq!(j["redis"], "ok", "{j}");
    assert_eq!(j["expiry_subscriber"], "ok", "{j}");
    tokio::task::block_in_place(|| mongo.restart());
    wait_health(m, "healthy after mongodb is back", all_ok).await;

    // The subscription is killed: the subscriber resubscribes on its own.
    let subscriptions = |s: &Scrape| s.value("smppd_expiry_subscriptions_total", &[]);
    let before = subscriptions(&scrape(m).await);
    assert!(redis.kill_pubsub_clients() >= 1);
    wait_metric(m, "a resubscription", |s| {
        subscriptions(s) > before && s.value("smppd_expiry_subscribed", &[]) == 1.0
    })
    .await;
    wait_health(m, "healthy after the resubscription", all_ok).await;

    // Redis down: no PING and no subscription; both named.
    tokio::task::block_in_place(|| redis.stop());
    let j = wait_health(m, "redis and the subscriber reported down", |st, j| {
        st == 503 && fails(j, "redis") && fails(j, "expiry_subscriber")
    })
    .await;
    assert_eq!(j["mongodb"], "ok", "{j}");
    let s = scrape(m).await;
    assert_eq!(s.value("smppd_redis_scrape_ok", &[]), 0.0, "{}", s.text);
    assert!(!s.has("smppd_pending_messages"), "{}", s.text);
    tokio::task::block_in_place(|| redis.restart());
    wait_health(m, "healthy after redis is back", all_ok).await;

    // Unknown paths are 404.
    assert_eq!(get(m, "/nope").await.0, 404);
    app.stop().await;
}

/// The endpoint's limits (src/metrics/http.rs): 16 connections, 4 per address, the
/// headers within 2 s. The idle sockets below hold their slots that long at most,
/// so each check runs right after they are opened.
const SLOTS: usize = 16;
const PER_ADDRESS: usize = 4;

/// A connection from `source` (any 127.0.0.0/8 address is loopback on Linux).
async fn connect_from(source: &str, addr: SocketAddr) -> tokio::net::TcpStream {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind(format!("{source}:0").parse().unwrap()).unwrap();
    socket.connect(addr).await.unwrap()
}

/// One GET from `source`, answered within `limit`: (status code, body).
async fn get_from(source: &str, addr: SocketAddr, path: &str, limit: Duration) -> (u16, String) {
    let exchange = async {
        let mut s = connect_from(source, addr).await;
        let req = format!("GET {path} HTTP/1.1\r\nHost: smppd\r\nConnection: close\r\n\r\n");
        s.write_all(req.as_bytes()).await.unwrap();
        let mut raw = Vec::new();
        s.read_to_end(&mut raw).await.unwrap();
        String::from_utf8(raw).unwrap()
    };
    let text = tokio::time::timeout(limit, exchange)
        .await
        .unwrap_or_else(|_| panic!("{source}: no answer to GET {path} within {limit:?}"));
    let (head, body) = text.split_once("\r\n\r\n").expect("no header end");
    let status = head.split_whitespace().nth(1).unwrap().parse().unwrap();
    (status, body.to_string())
}

/// Opens `n` connections from `source` that send nothing. The endpoint takes (or
/// refuses) a slot as it accepts a connection, in the order of the listen queue: a
/// connection made after these is accepted after them.
async fn idle_from(source: &str, addr: SocketAddr, n: usize) -> Vec<tokio::net::TcpStream> {
    let mut out = Vec::new();
    for _ in 0..n {
        out.push(connect_from(source, addr).await);
    }
    out
}

/// Waits until `n` of `conns` were answered 503 (written as each was accepted), then
/// returns how many were: the others hold a slot. A 503 for one of those would have
/// been written when it was accepted, before these: it would be there by then.
async fn answered_503s(conns: &[tokio::net::TcpStream], n: usize) -> usize {
    let mut answered = vec![false; conns.len()];
    let mut look = || {
        for (s, a) in conns.iter().zip(answered.iter_mut()) {
            *a = *a || answered_503(s);
        }
        answered.iter().filter(|a| **a).count()
    };
    wait_for(&format!("{n} answers 503"), WAIT, async || {
        let k = look();
        if k >= n {
            Ok(())
        } else {
            Err(format!("{k} so far"))
        }
    })
    .await;
    look()
}

/// Whether `s` was answered 503 (else it holds a slot, waiting for its request).
fn answered_503(s: &tokio::net::TcpStream) -> bool {
    let mut buf = [0u8; 64];
    match s.try_read(&mut buf) {
        Ok(0) => panic!("closed without an answer"),
        Ok(k) => {
            assert!(buf[..k].starts_with(b"HTTP/1.1 503"), "{:?}", &buf[..k]);
            true
        }
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => false,
        Err(e) => panic!("{e}"),
    }
}

/// Idle sockets of one address take at most its share of the slots (the others are
/// answered 503 at once): a scrape from another address is answered at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_sockets_of_one_address_leave_room_for_a_scrape_from_another() {
    let redis = RedisServer::start(RedisKind::Redis7);
    let mongo = MongoServer::start();
    let app = start_app(config(&redis, &mongo, "mperaddr")).await;
    let idle = idle_from("127.0.0.1", app.metrics, SLOTS + 4).await;
    let (status, body) =
        get_from("127.0.0.2", app.metrics, "/metrics", Duration::from_secs(1)).await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("smppd_binds"), "{body}");
    let refused = answered_503s(&idle, idle.len() - PER_ADDRESS).await;
    assert_eq!(idle.len() - refused, PER_ADDRESS, "slots held by 127.0.0.1");
    drop(idle);
    app.stop().await;
}

/// With every slot taken, a new client is answered 503 at once instead of waiting in
/// the accept queue.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_every_slot_taken_a_client_gets_503_at_once() {
    let redis = RedisServer::start(RedisKind::Redis7);
    let mongo = MongoServer::start();
    let app = start_app(config(&redis, &mongo, "mfull")).await;
    let mut idle = Vec::new();
    for source in 1..=SLOTS / PER_ADDRESS {
        idle.extend(idle_from(&format!("127.0.0.{source}"), app.metrics, PER_ADDRESS).await);
    }
    // Accepted after the idle ones, which took every slot as they were accepted.
    let (status, body) = get_from(
        "127.0.0.99",
        app.metrics,
        "/metrics",
        Duration::from_secs(1),
    )
    .await;
    assert_eq!(status, 503, "{body}");
    // A 503 to one of them would have been written before that one.
    assert!(!idle.iter().any(answered_503), "16 slots, 16 held");
    drop(idle);
    // Once the slots are free again, scrapes are served.
    let m = app.metrics;
    wait_for("a free slot", WAIT, || async {
        let (status, _) = get_from("127.0.0.99", m, "/healthz", Duration::from_secs(5)).await;
        (status != 503).then_some(())
    })
    .await;
    app.stop().await;
}

/// SMPP connections refused by a limit are counted by the limit's name.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_smpp_connections_are_counted() {
    let redis = RedisServer::start(RedisKind::Redis7);
    let mongo = MongoServer::start();
    let mut config = config(&redis, &mongo, "mrefused");
    config.set("server.max_connections_per_ip", 1);
    let app = start_app(config).await;
    let refused = |s: &Scrape| {
        s.value(
            "smppd_connections_refused_total",
            &[("reason", "max_connections_per_ip")],
        )
    };
    let before = refused(&scrape(app.metrics).await);
    let _held = connect_from("127.0.0.1", app.smpp).await;
    for _ in 0..3 {
        let mut s = connect_from("127.0.0.1", app.smpp).await;
        let mut buf = [0u8; 16];
        let n = tokio::time::timeout(Duration::from_secs(2), s.read(&mut buf))
            .await
            .expect("refused at once")
            .unwrap_or(0);
        assert_eq!(n, 0);
    }
    wait_metric(app.metrics, "3 refusals counted", |s| {
        refused(s) >= before + 3.0
    })
    .await;
    app.stop().await;
}
