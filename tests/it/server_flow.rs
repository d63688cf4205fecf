//! Requests to the message service: windowing, throttling with burst, how service
//! errors map to command_status, submit_multi, query/cancel/replace.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use smpp_protocol::{
    Body, CancelSm, CommandId, CommandStatus, DestAddress, Pdu, QuerySm, ReplaceSm, SubmitMulti,
};
use tokio::sync::Semaphore;

use crate::support::config::TestConfig;
use crate::support::esme::{BindAs, Esme};
use crate::support::messages::{cs, submit_sm};
use crate::support::server_harness::{count_by_status, start, start_with, Options, Recorder};

#[tokio::test]
async fn submit_reaches_the_service_with_account_policy_and_fields() {
    let s = start(TestConfig::new().esme(
        "acme",
        "default_validity = \"2h\"\nmax_validity = \"1day\"\nexpiry_mode = \"expire_whole\"",
    ))
    .await;
    let c = Esme::bound(s.addr, BindAs::Tx, "acme", "pw").await;
    let r = c.submit(submit_sm("4912345", b"hello")).await;
    assert_eq!(r.command_status, CommandStatus::ESME_ROK);
    match r.body {
        Body::SubmitSmResp(Some(b)) => assert_eq!(b.message_id, "msg-1"),
        other => panic!("{other:?}"),
    }
    let req = s.service.submits.lock().unwrap()[0].clone();
    assert_eq!(req.policy.system_id, "acme");
    assert_eq!(req.policy.default_validity, Duration::from_secs(7200));
    assert_eq!(req.policy.max_validity, Duration::from_secs(86400));
    assert_eq!(
        req.policy.expiry_mode,
        smppd::service::ExpiryMode::ExpireWhole
    );
    assert_eq!((req.source.ton, req.source.addr.as_str()), (5, "SENDER"));
    assert_eq!(
        (req.dest.ton, req.dest.npi, req.dest.addr.as_str()),
        (1, 1, "4912345")
    );
    assert_eq!(req.registered_delivery, 1);
    assert_eq!(&req.raw_user_data[..], b"hello");
    assert!(req.validity_period.is_empty());
}

#[tokio::test]
async fn service_errors_map_to_command_status_and_the_bind_stays_up() {
    let s = start(TestConfig::new().esme("acme", "")).await;
    let c = Esme::bound(s.addr, BindAs::Trx, "acme", "pw").await;
    for (dest, status) in [
        ("queuefull", CommandStatus::ESME_RMSGQFUL),
        ("internal", CommandStatus::ESME_RSYSERR),
        ("reject", CommandStatus::ESME_RINVDSTADR),
    ] {
        let r = c.submit(submit_sm(dest, b"x")).await;
        assert_eq!(
            (r.body, r.command_status),
            (Body::SubmitSmResp(None), status)
        );
    }
    let r = c.submit(submit_sm("4912345", b"fine")).await;
    assert_eq!(r.command_status, CommandStatus::ESME_ROK);
}

#[tokio::test]
async fn window_limits_concurrent_requests_and_responses_come_in_completion_order() {
    let gate = Arc::new(Semaphore::new(0));
    let service = Arc::new(Recorder::gated(gate.clone()));
    let s = start_with(
        TestConfig::new().esme("acme", "window = 3"),
        Options {
            tls: false,
            service: Some(service.clone()),
        },
    )
    .await;
    let c = Esme::bound(s.addr, BindAs::Tx, "acme", "pw").await;
    for seq in 1..=5u32 {
        c.send(Pdu::new(
            100 + seq,
            Body::SubmitSm(submit_sm(&format!("49{seq}"), b"w")),
        ))
        .await;
    }
    service
        .wait_until("3 submits in flight", |r| {
            r.in_flight.load(Ordering::SeqCst) == 3
        })
        .await;
    // The other two are not read while the window is full; an enquire_link behind
    // them is not answered either: the first answer after one submit is let through
    // is that submit's, not the enquire_link's sent before it.
    c.send(Pdu::new(200, Body::EnquireLink)).await;
    assert_eq!(service.submit_count(), 3);
    gate.add_permits(1);
    let first = c.recv().await;
    assert_eq!(
        (first.command_id(), first.command_status),
        (CommandId::SUBMIT_SM_RESP, CommandStatus::ESME_ROK),
        "nothing may be answered while the window is full: {first:?}"
    );
    assert!((101..=103).contains(&first.sequence_number), "{first:?}");
    gate.add_permits(10);
    let mut seqs = vec![first.sequence_number];
    for _ in 0..5 {
        seqs.push(c.recv().await.sequence_number);
    }
    seqs.sort();
    assert_eq!(seqs, vec![101, 102, 103, 104, 105, 200]);
    assert_eq!(service.max_in_flight.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn rate_above_throughput_and_burst_is_throttled() {
    let s = start(TestConfig::new().esme("acme", "throughput = 1\nburst = 3")).await;
    let c = Esme::bound(s.addr, BindAs::Tx, "acme", "pw").await;
    let t = Instant::now();
    for seq in 1..=6u32 {
        c.send(Pdu::new(seq, Body::SubmitSm(submit_sm("4912345", b"t"))))
            .await;
    }
    let mut got = Vec::new();
    for _ in 0..6 {
        got.push(c.recv().await);
    }
    // The bucket holds 3 and gains one a second: within `took` (all of it, from
    // before the first submit to after the last answer) at most 3 + whole seconds
    // of it can be accepted, however slow this machine is — exactly the burst of 3
    // within the first second.
    let took = t.elapsed();
    let most = 3 + took.as_secs() as usize;
    let by = count_by_status(&got);
    let ok = by.get(&0).copied().unwrap_or(0);
    let throttled = by
        .get(&CommandStatus::ESME_RTHROTTLED.0)
        .copied()
        .unwrap_or(0);
    assert_eq!(ok + throttled, 6, "{got:?}");
    assert!(
        (3..=most).contains(&ok),
        "burst of 3, then one a second: {ok} accepted, {throttled} throttled in {took:?}"
    );
    // Throttled answers carry no body.
    assert!(got
        .iter()
        .filter(|p| p.command_status == CommandStatus::ESME_RTHROTTLED)
        .all(|p| p.body == Body::SubmitSmResp(None)));
}

#[tokio::test]
async fn submit_multi_submits_each_sme_and_refuses_distribution_lists() {
    let s = start(TestConfig::new().esme("acme", "")).await;
    let c = Esme::bound(s.addr, BindAs::Tx, "acme", "pw").await;
    let sme = |a: &str| DestAddress::SmeAddress {
        dest_addr_ton: 1,
        dest_addr_npi: 1,
        destination_addr: cs(a),
    };
    let m = SubmitMulti {
        source_addr: cs("SENDER"),
        dest_address: vec![
            sme("491"),
            DestAddress::DistributionList {
                dl_name: cs("friends"),
            },
            sme("queuefull"),
            sme("492"),
        ],
        short_message: Bytes::from_static(b"multi"),
        ..SubmitMulti::default()
    };
    let r = c.request(Body::SubmitMulti(m)).await;
    assert_eq!(r.command_status, CommandStatus::ESME_ROK);
    let Body::SubmitMultiResp(Some(resp)) = r.body else {
        panic!("{r:?}")
    };
    assert_eq!(resp.message_id, "msg-1");
    let failed: Vec<(String, CommandStatus)> = resp
        .unsuccess_sme
        .iter()
        .map(|u| (u.destination_addr.to_string(), u.error_status_code))
        .collect();
    assert_eq!(
        failed,
        vec![
            ("friends".to_string(), CommandStatus::ESME_RINVDLNAME),
            ("queuefull".to_string(), CommandStatus::ESME_RMSGQFUL)
        ]
    );
    let dests: Vec<String> = s
        .service
        .submits
        .lock()
        .unwrap()
        .iter()
        .map(|r| r.dest.addr.clone())
        .collect();
    assert_eq!(dests, vec!["491", "queuefull", "492"]);
}

#[tokio::test]
async fn query_cancel_and_replace_go_to_the_service() {
    let s = start(TestConfig::new().esme("acme", "")).await;
    let c = Esme::bound(s.addr, BindAs::Trx, "acme", "pw").await;
    let r = c
        .request(Body::QuerySm(QuerySm {
            message_id: cs("msg-9"),
            ..QuerySm::default()
        }))
        .await;
    let Body::QuerySmResp(Some(q)) = r.body else {
        panic!("{r:?}")
    };
    assert_eq!(
        (q.message_id.to_string(), q.message_state),
        ("msg-9".to_string(), 2)
    );
    assert_eq!(q.final_date, "231114221320000+");
    let r = c
        .request(Body::QuerySm(QuerySm {
            message_id: cs("unknown"),
            ..QuerySm::default()
        }))
        .await;
    assert_eq!(
        (r.body, r.command_status),
        (Body::QuerySmResp(None), CommandStatus::ESME_RINVMSGID)
    );
    let r = c
        .request(Body::CancelSm(CancelSm {
            message_id: cs("msg-9"),
            ..CancelSm::default()
        }))
        .await;
    assert_eq!(
        (r.body, r.command_status),
        (Body::CancelSmResp, CommandStatus::ESME_ROK)
    );
    let r = c
        .request(Body::ReplaceSm(ReplaceSm {
            message_id: cs("msg-9"),
            short_message: Bytes::from_static(b"new"),
            ..ReplaceSm::default()
        }))
        .await;
    assert_eq!(
        (r.body, r.command_status),
        (Body::ReplaceSmResp, CommandStatus::ESME_ROK)
    );
    let calls = s.service.calls.lock().unwrap().clone();
    assert_eq!(
        calls,
        vec![
            "query acme msg-9",
            "query acme unknown",
            "cancel acme msg-9 -",
            "replace acme msg-9 new"
        ]
    );
}

#[tokio::test]
async fn data_sm_is_submitted_and_answered_with_data_sm_resp() {
    let s = start(TestConfig::new().esme("acme", "")).await;
    let c = Esme::bound(s.addr, BindAs::Tx, "acme", "pw").await;
    let d = smpp_protocol::DataSm {
        destination_addr: cs("4977"),
        tlvs: vec![smpp_protocol::Tlv::MessagePayload(Bytes::from_static(
            b"payload",
        ))],
        ..Default::default()
    };
    let r = c.request(Body::DataSm(d)).await;
    let Body::DataSmResp(Some(resp)) = r.body else {
        panic!("{r:?}")
    };
    assert_eq!(resp.message_id, "msg-1");
    assert_eq!(
        &s.service.submits.lock().unwrap()[0].raw_user_data[..],
        b"payload"
    );
}
