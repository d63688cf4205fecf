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
        Command::Run(a) => *a,
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
    assert_eq!(a.target.addr[0].port(), 9999);
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

fn records(lines: &[&str]) -> crate::verify::Records {
    let mut r = crate::verify::Records::default();
    for l in lines {
        r.line(l).unwrap();
    }
    r
}

fn outcome(id: &str, state: &str, dest: &str, segs: &[(u8, &str)]) -> crate::verify::Outcome {
    crate::verify::Outcome {
        id: id.into(),
        state: state.into(),
        dest: dest.into(),
        segments: segs.iter().map(|(s, m)| (*s, m.to_string())).collect(),
    }
}

#[test]
fn verify_accepts_every_acked_segment_in_one_outcome_with_its_receipt() {
    let rec = records(&[
        "M 0 100 1 1 1 0",
        "M 1 101 3 2 1 1",
        "A 0 1 a0",
        "A 1 1 b1",
        "A 1 2 b2",
        "D a0 2",
        "D b1 2",
        "D b2 2",
        "D b2 2",
    ]);
    let docs = [
        outcome("a0", "DELIVERED", "100", &[(1, "a0")]),
        outcome("b1", "PARTIAL", "101", &[(1, "b1"), (2, "b2")]),
        // Stored, but its response was lost: allowed.
        outcome("c1", "DELIVERED", "102", &[(1, "c1")]),
    ];
    let r = crate::verify::compare("t", &rec, &docs, false);
    assert!(r.ok, "{r:?}");
    assert_eq!(
        (r.acked_segments, r.in_outcomes, r.missing, r.duplicates),
        (3, 3, 0, 0)
    );
    assert_eq!(
        (r.receipts_expected, r.receipts_received, r.receipts_twice),
        (3, 3, 1)
    );
    assert_eq!(r.stored_not_acked, 1);
    // Expired whole: the same segments, listed in an EXPIRED outcome, EXPIRED receipts.
    let rec = records(&[
        "M 1 101 3 2 1 1",
        "A 1 1 b1",
        "A 1 2 b2",
        "D b1 3",
        "D b2 3",
    ]);
    let docs = [outcome("b1", "EXPIRED", "101", &[(1, "b1"), (2, "b2")])];
    assert!(crate::verify::compare("t", &rec, &docs, true).ok);
    let r = crate::verify::compare("t", &rec, &docs, false);
    assert_eq!(r.wrong_state, 1, "PARTIAL expected without expire_whole");
}

#[test]
fn verify_finds_missing_duplicated_and_misstated_segments() {
    let rec = records(&[
        "M 0 100 1 1 1 0",
        "M 1 101 2 2 1 0",
        "M 2 102 1 1 1 0",
        "M 3 103 2 2 0 0",
        "A 0 1 a0",
        "A 1 1 b1",
        "A 1 2 b2",
        "A 2 1 c1",
        "A 3 1 d1",
        "A 3 2 d2",
        "D a0 2",
        "D b1 3",
        "D b2 2",
    ]);
    let docs = [
        outcome("a0", "DELIVERED", "100", &[(1, "a0")]),
        // b2 is listed twice: in its message and in a second outcome.
        outcome("b1", "DELIVERED", "101", &[(1, "b1"), (2, "b2")]),
        outcome("b2", "PARTIAL", "101", &[(2, "b2")]),
        // c1 acked but in no outcome; d's parts in two outcomes.
        outcome("d1", "PARTIAL", "103", &[(1, "d1")]),
        outcome("d2", "PARTIAL", "103", &[(2, "d2")]),
    ];
    let r = crate::verify::compare("t", &rec, &docs, false);
    assert!(!r.ok);
    assert_eq!(r.missing, 1, "{r:?}");
    // message_id b2 twice, and segment 2 of 101 stored twice without a resend.
    assert_eq!(r.duplicates, 2, "{r:?}");
    // d's parts are split over two outcomes (b's extra copy counts as a duplicate).
    assert_eq!(r.wrong_state, 1, "{r:?}");
    assert_eq!(r.receipts_wrong_state, 1, "b1 said EXPIRED: {r:?}");
    // c1 has no outcome, so no receipt is expected for it; d asked for none.
    assert_eq!((r.receipts_expected, r.receipts_missing), (3, 0), "{r:?}");
}

#[test]
fn verify_allows_a_segment_stored_twice_only_after_an_uncertain_resend() {
    let docs = [
        outcome("x1", "DELIVERED", "100", &[(1, "x1")]),
        outcome("x2", "DELIVERED", "100", &[(1, "x2")]),
    ];
    let lost = records(&["M 0 100 1 1 0 0", "R 0 1 lost", "A 0 1 x2"]);
    let r = crate::verify::compare("t", &lost, &docs, false);
    assert!(r.ok, "{r:?}");
    assert_eq!((r.resent_stored_twice, r.stored_not_acked), (1, 1));
    let syserr = records(&["M 0 100 1 1 0 0", "R 0 1 00000008", "A 0 1 x2"]);
    assert!(crate::verify::compare("t", &syserr, &docs, false).ok);
    // ESME_RMSGQFUL means "not stored": a second copy is a real duplicate.
    let full = records(&["M 0 100 1 1 0 0", "R 0 1 00000014", "A 0 1 x2"]);
    let r = crate::verify::compare("t", &full, &docs, false);
    assert_eq!(r.duplicates, 1, "{r:?}");
}

#[test]
fn record_lines_round_trip_through_verify() {
    let dir = std::env::temp_dir().join(format!("smppd-bench-rec-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("r.txt");
    let rec = crate::record::Recorder::create(&path).unwrap();
    let p = plan(Kind::Udh8, 3, Coding::Gsm);
    rec.message(&p, 2, true);
    rec.ack(p.number, 1, b"0000000100000000000A");
    rec.resend(p.number, 2, crate::record::Why::Lost);
    rec.failed(p.number, 2, crate::record::Why::Status(0x14));
    rec.receipt(b"0000000100000000000A", 2);
    rec.flush().unwrap();
    let mut r = crate::verify::Records::default();
    r.read(&path).unwrap();
    let m = &r.messages[&p.number];
    assert_eq!(
        (m.dest.as_str(), m.parts, m.sent, m.registered_delivery),
        ("4917000000001", 3, 2, 1)
    );
    assert_eq!(r.acked["0000000100000000000A"], (p.number, 1));
    assert!(r.resent_uncertain.contains(&(p.number, 2)));
    assert!(r.failed.contains(&(p.number, 2)));
    assert_eq!(r.receipts["0000000100000000000A"], vec![2]);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn verify_takes_drain_receivers() {
    let v = vec![
        "smppd-bench",
        "verify",
        "--record",
        "x.rec",
        "--smpp",
        "127.0.0.1:1,127.0.0.1:2",
        "--drain-bind",
        "chaos:chaos",
        "--drain-bind",
        "b:pass:word",
    ];
    let Command::Verify(a) = Cli::try_parse_from(v).unwrap().command else {
        panic!("not verify");
    };
    assert_eq!(a.smpp.len(), 2);
    assert_eq!(
        a.drain_binds,
        vec![
            ("chaos".into(), "chaos".into()),
            ("b".into(), "pass:word".into())
        ]
    );
    assert!(crate::cli::parse_credentials("chaos").is_err());
    assert!(crate::cli::parse_credentials(":pw").is_err());
}

// What smppd kept for an ESME that unbound goes to the drain receiver, which answers
// it and unbinds when the drain is over.
#[tokio::test]
async fn a_drain_receiver_answers_deliver_sm_and_unbinds_when_stopped() {
    use futures::{SinkExt, StreamExt};
    use smpp_protocol::codec::SmppCodec;
    use smpp_protocol::{BindResp, DeliverSm};
    use tokio_util::codec::Framed;

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let smsc = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        let mut f = Framed::new(tcp, SmppCodec::new());
        let bind = f.next().await.unwrap().unwrap().unwrap();
        let Body::BindReceiver(b) = &bind.body else {
            panic!("not a bind_receiver: {bind:?}");
        };
        assert_eq!(
            (b.system_id.to_string(), b.password.to_string()),
            ("acme".into(), "pw".into())
        );
        let resp = Body::BindReceiverResp(Some(BindResp::default()));
        f.send(Pdu::new(bind.sequence_number, resp)).await.unwrap();
        f.send(Pdu::new(7, Body::DeliverSm(DeliverSm::default())))
            .await
            .unwrap();
        let r = f.next().await.unwrap().unwrap().unwrap();
        assert!(
            matches!(r.body, Body::DeliverSmResp(_)) && r.command_status.is_ok(),
            "{r:?}"
        );
        assert_eq!(r.sequence_number, 7);
        let unbind = f.next().await.unwrap().unwrap().unwrap();
        assert!(matches!(unbind.body, Body::Unbind), "{unbind:?}");
        f.send(Pdu::new(unbind.sequence_number, Body::UnbindResp))
            .await
            .unwrap();
    });
    let rx = crate::verify::DrainReceivers::start(&[addr], &[("acme".into(), "pw".into())]);
    let until = std::time::Instant::now() + Duration::from_secs(10);
    while rx.delivered() < 1 {
        assert!(
            std::time::Instant::now() < until,
            "no deliver_sm answered within 10 s"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let (delivered, errors) = rx.stop().await;
    assert_eq!(delivered, 1);
    assert!(errors.is_empty(), "{errors:?}");
    smsc.await.unwrap();
}
