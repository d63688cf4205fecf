//! The files in `deploy/` against the server: the Grafana dashboard and the alerting
//! rules name only metrics smppd exports (checked against `metrics::names::all()`, which
//! a live scrape is checked against in turn), the rules pass `promtool test rules`,
//! and the systemd unit passes `systemd-analyze verify`.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use smppd::app::App;
use smppd::config::{Config, ConfigSource, EnvOverrides};
use smppd::metrics::names;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::support::config::TestConfig;
use crate::support::servers::{binary_from_env, MongoServer, RedisKind, RedisServer};

fn deploy(file: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("deploy")
        .join(file)
}

/// The metric family a series name belongs to (a histogram's `_bucket`, `_sum` and
/// `_count` are its own family's).
fn family(series: &str) -> &str {
    ["_bucket", "_sum", "_count"]
        .iter()
        .find_map(|s| {
            series
                .strip_suffix(s)
                .filter(|base| names::all().contains(base))
        })
        .unwrap_or(series)
}

/// Every `smppd_…` name in `text`.
fn metric_names(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(i) = rest.find("smppd_") {
        let tail = &rest[i..];
        let end = tail
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(tail.len());
        // Not part of a longer word (a label value such as "my_smppd_x").
        let before = rest[..i].chars().last();
        if !before.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_') {
            out.push(tail[..end].to_string());
        }
        rest = &tail[end..];
    }
    out
}

fn unknown(found: &[String]) -> Vec<String> {
    found
        .iter()
        .filter(|n| !names::all().contains(&family(n)))
        .cloned()
        .collect()
}

#[test]
fn the_dashboard_queries_only_exported_metrics() {
    let text = std::fs::read_to_string(deploy("grafana/smppd.json")).unwrap();
    let dash: serde_json::Value = serde_json::from_str(&text).expect("valid JSON");
    assert_eq!(dash["uid"], "smppd");
    let panels = dash["panels"].as_array().unwrap();
    assert!(panels.len() >= 10, "{} panels", panels.len());
    let mut used = BTreeSet::new();
    for p in panels {
        let targets = p["targets"].as_array().unwrap();
        assert!(!targets.is_empty(), "panel {} has no query", p["title"]);
        for t in targets {
            let expr = t["expr"].as_str().unwrap();
            let found = metric_names(expr);
            assert!(
                !found.is_empty(),
                "{}: {expr} names no smppd metric",
                p["title"]
            );
            assert_eq!(
                unknown(&found),
                Vec::<String>::new(),
                "{}: {expr}",
                p["title"]
            );
            used.extend(found.iter().map(|n| family(n).to_string()));
        }
    }
    for v in dash["templating"]["list"].as_array().unwrap() {
        if let Some(q) = v["definition"].as_str() {
            assert_eq!(unknown(&metric_names(q)), Vec::<String>::new(), "{q}");
        }
    }
    // The headline metrics are on it.
    for m in [
        names::PDUS,
        names::SUBMIT_LATENCY,
        names::EXPIRY_LATENESS,
        "smppd_binds",
        "smppd_pending_messages",
        "smppd_receipt_queue",
    ] {
        assert!(used.contains(m), "{m} is not on the dashboard");
    }
}

#[test]
fn the_alert_rules_use_only_exported_metrics() {
    let text = std::fs::read_to_string(deploy("prometheus/alerts.yml")).unwrap();
    let found = metric_names(&text);
    assert!(found.len() > 10);
    assert_eq!(unknown(&found), Vec::<String>::new());
    // Every exported metric is documented.
    let docs =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/metrics.md"))
            .unwrap();
    for m in names::all() {
        assert!(
            docs.contains(&format!("`{m}`")),
            "{m} is not in docs/metrics.md"
        );
    }
}

#[test]
fn the_alert_rules_pass_their_promtool_tests() {
    let promtool = binary_from_env("SMPPD_PROMTOOL");
    for args in [
        vec!["check", "rules", "alerts.yml"],
        vec!["test", "rules", "alerts_test.yml"],
    ] {
        let out = Command::new(&promtool)
            .args(&args)
            .current_dir(deploy("prometheus"))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "promtool {args:?}:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn the_systemd_unit_verifies() {
    let analyze = binary_from_env("SMPPD_SYSTEMD_ANALYZE");
    // verify wants ExecStart's binary to exist: point it at the one just built, in a
    // copy of the unit.
    let unit = std::fs::read_to_string(deploy("systemd/smppd.service")).unwrap();
    assert!(unit.contains("ExecStart=/usr/bin/smppd serve"), "{unit}");
    assert!(
        unit.contains("ExecReload=/bin/kill -HUP $MAINPID"),
        "{unit}"
    );
    let dir = crate::support::servers::TempDir::new("unit");
    let copy = dir.path().join("smppd.service");
    std::fs::write(
        &copy,
        unit.replace("/usr/bin/smppd", env!("CARGO_BIN_EXE_smppd")),
    )
    .unwrap();
    let out = Command::new(analyze)
        .args(["verify", "--man=no"])
        .arg(&copy)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    // Outside a booted systemd (containers, CI) verify also reports that it cannot
    // talk to the system manager; only lines about the unit itself count.
    let about_unit: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains("smppd.service") || l.contains("smppd"))
        .collect();
    assert!(about_unit.is_empty(), "systemd-analyze verify:\n{stderr}");
}

/// One GET over a fresh connection: the body of a 200.
async fn get(addr: SocketAddr, path: &str) -> String {
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let req = format!("GET {path} HTTP/1.1\r\nHost: smppd\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes()).await.unwrap();
    let mut raw = String::new();
    tokio::time::timeout(Duration::from_secs(10), s.read_to_string(&mut raw))
        .await
        .expect("no answer within 10 s")
        .unwrap();
    let (head, body) = raw.split_once("\r\n\r\n").unwrap();
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    body.to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_live_scrape_exports_exactly_the_known_families() {
    let redis = RedisServer::start(RedisKind::Redis7);
    let mongo = MongoServer::start();
    let text = TestConfig::new()
        .set("server.shutdown_grace", "1s")
        .stores(&redis.url(), &mongo.uri(), "dfiles")
        .set("metrics.listen", "127.0.0.1:0")
        .esme("dfiles", "")
        .text();
    let config = Config::from_toml(&text, &EnvOverrides::default(), None).unwrap();
    let app = App::start(ConfigSource::Inline(text), Arc::new(config))
        .await
        .unwrap();
    let addr = app.metrics_addr().unwrap();
    let handle = app.handle();
    let task = tokio::spawn(app.run());

    let body = get(addr, "/metrics").await;
    let families: BTreeSet<&str> = body
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    for f in &families {
        assert!(
            names::all().contains(f),
            "{f} is exported but not in names::all()"
        );
    }
    // Recorded families appear with their first event; everything read at scrape
    // time is there on every scrape.
    let recorded = [
        names::PDUS,
        names::SUBMIT_LATENCY,
        names::EXPIRY_LATENESS,
        names::RECEIPT_WAIT,
        names::OUTCOME_WRITE,
        names::THROTTLED,
        names::REFUSED,
        names::FORWARDED,
        names::CONNECTIONS_REFUSED,
        names::UNBOUND_EVICTED,
    ];
    for f in names::all().into_iter().filter(|f| !recorded.contains(f)) {
        assert!(families.contains(f), "{f} missing from a scrape:\n{body}");
    }
    assert!(body.contains("smppd_account_max_queued_receipts{account=\"dfiles\"} 100000"));
    assert!(body.contains("smppd_store_max_pending 1000000"));
    handle.shutdown();
    tokio::time::timeout(Duration::from_secs(20), task)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
}
