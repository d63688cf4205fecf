//! Smoke tests of argument parsing, message building and report formatting. The
//! load itself is exercised by scripts/bench.sh, not by the test suite.
#![allow(clippy::unwrap_used)]

use std::collections::HashMap;
use std::time::Duration;

use bytes::Bytes;
use clap::Parser;
use smpp_protocol::{Body, Pdu};

use crate::cli::{parse_mix, parse_validity, parse_watch, Cli, Coding, Command, Kind, MixEntry};
use crate::message::MessagePlan;
use crate::report::RunReport;
use crate::stats::{errors_by_name, new_hist, record, Summary, Tracker};

fn run_args(argv: &[&str]) -> crate::cli::RunArgs {
    let mut v = vec!["smppd-bench", "run"];
    v.extend_from_slice(argv);
    match Cli::try_parse_from(v).unwrap().command {
        Command::Run(a) => a,
        other => panic!("not run: {other:?}"),
    }
}

#[test]
fn run_arguments_parse() {
    let a = run_args(&[
        "--addr",
        "127.0.0.1:9999",
        "--tx",
        "2",
        "--rx",
        "1",
        "--trx",
        "0",
        "--window",
        "32",
        "--rate",
        "5000",
        "--duration",
        "10s",
        "--mix",
        "single=70,udh8x3=10,udh16x2=10,sarx4=10",
        "--coding",
        "ucs2",
        "--validity",
        "30s..90s",
        "--partial",
        "0.5",
        "--watch",
        "smppd=42",
        "--json",
        "/tmp/x.json",
    ]);
    assert_eq!(a.target.addr.port(), 9999);
    assert_eq!((a.tx, a.rx, a.trx, a.window, a.rate), (2, 1, 0, 32, 5000));
    assert_eq!(a.duration, Some(Duration::from_secs(10)));
    assert_eq!(a.coding, Coding::Ucs2);
    assert_eq!(a.mix.0.len(), 4);
    assert_eq!(
        a.mix.0[3],
        MixEntry {
            kind: Kind::Sar,
            parts: 4,
            weight: 10.0
        }
    );
    let v = a.validity.unwrap();
    assert_eq!(
        (v.min, v.max),
        (Duration::from_secs(30), Duration::from_secs(90))
    );
    assert_eq!(a.target.watch, vec![("smppd".to_string(), 42)]);
    assert!(a.validate().is_ok());
    assert!(a.expects_receipts());
}

#[test]
fn invalid_combinations_are_refused() {
    assert!(run_args(&["--duration", "1s", "--trx", "0"])
        .validate()
        .is_err());
    assert!(
        run_args(&["--trx", "1"]).validate().is_err(),
        "no duration nor count"
    );
    assert!(
        run_args(&["--count", "5", "--partial", "0.5", "--mix", "udh8"])
            .validate()
            .is_err()
    );
    assert!(run_args(&["--count", "5", "--tx", "1", "--trx", "0"])
        .validate()
        .is_err());
    assert!(
        run_args(&["--count", "5", "--tx", "1", "--trx", "0", "--no-receipts"])
            .validate()
            .is_ok()
    );
    assert!(parse_mix("udh8x1").is_err());
    assert!(parse_mix("singlex3").is_err());
    assert!(parse_mix("sms=3").is_err());
    assert!(parse_mix("single=0").is_err());
    assert!(parse_validity("90s..30s").is_err());
    assert!(parse_validity("500ms").is_err());
    assert!(parse_watch("smppd").is_err());
}

#[test]
fn mix_picks_by_weight_and_round_trips() {
    let m = parse_mix("single=3,udh16x2=1").unwrap();
    assert_eq!(m.pick(0.0).kind, Kind::Single);
    assert_eq!(m.pick(0.74).kind, Kind::Single);
    assert_eq!(m.pick(0.76).kind, Kind::Udh16);
    assert_eq!(m.pick(0.999_999).parts, 2);
    assert_eq!(parse_mix(&m.to_string()).unwrap(), m);
}

fn plan(kind: Kind, parts: u8, coding: Coding) -> MessagePlan {
    MessagePlan {
        entry: MixEntry {
            kind,
            parts,
            weight: 1.0,
        },
        coding,
        chars: 100,
        registered_delivery: 1,
        deadline: Some(chrono::DateTime::from_timestamp_millis(1_800_000_000_300).unwrap()),
        number: 0x1_2345,
        dest: 4917000000001,
    }
}

#[test]
fn segments_carry_concatenation_and_decode_back() {
    for (kind, scheme) in [
        (Kind::Udh8, smpp_protocol::udh::ConcatScheme::Udh8),
        (Kind::Udh16, smpp_protocol::udh::ConcatScheme::Udh16),
        (Kind::Sar, smpp_protocol::udh::ConcatScheme::Sar),
    ] {
        let p = plan(kind, 3, Coding::Gsm);
        let bytes = p.pdu(2, 7).to_bytes();
        let back = Pdu::decode(&bytes).unwrap();
        let Body::SubmitSm(sm) = back.body else {
            panic!()
        };
        let (info, _) = sm.concat().unwrap();
        let info = info.unwrap();
        assert_eq!(
            (info.scheme, info.total, info.seq),
            (scheme, 3, 2),
            "{kind:?}"
        );
        assert!(sm.short_message.len() <= 160);
        assert_eq!(sm.validity_period.as_bytes(), b"270115080000300+");
    }
    let single = plan(Kind::Single, 1, Coding::Ucs2).segment(1);
    assert_eq!(single.data_coding, 8);
    assert_eq!(single.short_message.len(), 140);
    assert!(single.tlvs.is_empty());
}

#[test]
fn tracker_measures_receipt_latency_and_expiry_lateness() {
    let t = Tracker::default();
    let t0 = std::time::Instant::now();
    t.message(1, 2, None);
    t.acked(1, Bytes::from_static(b"A"), t0);
    t.acked(1, Bytes::from_static(b"B"), t0 + Duration::from_millis(5));
    t.receipt(&Bytes::from_static(b"A"), 2, t0 + Duration::from_millis(25));
    // A partial message: lateness against its deadline; a receipt before the ack.
    let deadline = t0 + Duration::from_millis(100);
    t.message(2, 1, Some(deadline));
    t.receipt(
        &Bytes::from_static(b"C"),
        2,
        deadline + Duration::from_millis(40),
    );
    t.acked(2, Bytes::from_static(b"C"), t0);
    let r = t.report(3);
    assert_eq!((r.received, r.missing, r.unmatched), (2, 1, 0));
    assert_eq!(r.latency.count, 1);
    assert!((r.latency.p50_ms - 20.0).abs() < 0.1, "{r:?}");
    assert!((r.expiry_lateness.max_ms - 40.0).abs() < 0.1, "{r:?}");
    assert_eq!(t.outstanding.load(std::sync::atomic::Ordering::Relaxed), 1);
}

#[test]
fn report_formats_as_table_and_json() {
    let mut h = new_hist();
    for ms in 1..=100 {
        record(&mut h, Duration::from_millis(ms));
    }
    let mut errors = HashMap::new();
    errors.insert(0x58u32, 3u64);
    errors.insert(0x1234u32, 1u64);
    let r = RunReport {
        label: "single".into(),
        segments_ok: 1000,
        submit_per_s: 54321.4,
        submit_latency: Summary::of(&h),
        errors: errors_by_name(&errors),
        ..RunReport::default()
    };
    let table = r.to_table();
    assert!(table.contains("54321 submit_sm/s"), "{table}");
    assert!(
        table.contains("p99 99.") && table.contains("max 100.0"),
        "{table}"
    );
    assert!(
        table.contains("ESME_RTHROTTLED 3") && table.contains("0x00001234 1"),
        "{table}"
    );
    let json: serde_json::Value = serde_json::to_value(&r).unwrap();
    assert_eq!(json["submit_latency"]["count"], 100);
    assert_eq!(json["errors"]["ESME_RTHROTTLED"], 3);
    // Receipts are only reported when tracked.
    assert!(json["receipts"].is_null());
}
