//! The state machine of reference §2/§10 over real sockets: wrong-state requests,
//! unknown commands, malformed bodies (bind stays up), broken frames, enquire_link
//! both ways, inactivity close, unbind.

use bytes::Bytes;
use smpp_protocol::{
    AlertNotification, Body, CancelSm, CommandId, CommandStatus, DataSm, DestAddress, Outbind, Pdu,
    QuerySm, ReplaceSm, SubmitMulti,
};

use crate::support::config::TestConfig;
use crate::support::esme::{BindAs, Esme};
use crate::support::messages::{cs, encode, submit_sm};
use crate::support::server_harness::start;

fn cfg() -> TestConfig {
    let mut c = TestConfig::new();
    c.esme("acme", "");
    c
}

fn submit_multi() -> SubmitMulti {
    SubmitMulti {
        source_addr: cs("SENDER"),
        dest_address: vec![DestAddress::SmeAddress {
            dest_addr_ton: 1,
            dest_addr_npi: 1,
            destination_addr: cs("4912345"),
        }],
        short_message: Bytes::from_static(b"hi"),
        ..SubmitMulti::default()
    }
}

fn query() -> QuerySm {
    QuerySm {
        message_id: cs("msg-1"),
        source_addr: cs("SENDER"),
        ..QuerySm::default()
    }
}

/// (request, expected response command_id) for everything an ESME may submit.
fn submit_family() -> Vec<(Body, CommandId)> {
    vec![
        (
            Body::SubmitSm(submit_sm("4912345", b"hi")),
            CommandId::SUBMIT_SM_RESP,
        ),
        (
            Body::DataSm(DataSm {
                destination_addr: cs("4912345"),
                ..DataSm::default()
            }),
            CommandId::DATA_SM_RESP,
        ),
        (
            Body::SubmitMulti(submit_multi()),
            CommandId::SUBMIT_MULTI_RESP,
        ),
        (Body::QuerySm(query()), CommandId::QUERY_SM_RESP),
        (
            Body::CancelSm(CancelSm {
                message_id: cs("msg-1"),
                ..CancelSm::default()
            }),
            CommandId::CANCEL_SM_RESP,
        ),
        (
            Body::ReplaceSm(ReplaceSm {
                message_id: cs("msg-1"),
                ..ReplaceSm::default()
            }),
            CommandId::REPLACE_SM_RESP,
        ),
    ]
}

#[tokio::test]
async fn requests_before_bind_get_rinvbndsts_and_enquire_link_is_answered() {
    let s = start(&cfg()).await;
    let c = Esme::connect(s.addr).await;
    for (body, resp_id) in submit_family() {
        let r = c.request(body).await;
        assert_eq!(r.command_id(), resp_id);
        assert_eq!(r.command_status, CommandStatus::ESME_RINVBNDSTS);
    }
    let r = c.request(Body::Unbind).await;
    assert_eq!(
        (r.body, r.command_status),
        (Body::UnbindResp, CommandStatus::ESME_RINVBNDSTS)
    );
    let r = c.request(Body::EnquireLink).await;
    assert_eq!(
        (r.body, r.command_status),
        (Body::EnquireLinkResp, CommandStatus::ESME_ROK)
    );
    // Still open: a bind works on the same connection.
    let r = c.bind(BindAs::Tx, "acme", "pw").await;
    assert_eq!(r.command_status, CommandStatus::ESME_ROK);
}

#[tokio::test]
async fn receiver_may_not_submit_query_cancel_or_replace() {
    let s = start(&cfg()).await;
    let c = Esme::bound(s.addr, BindAs::Rx, "acme", "pw").await;
    for (body, resp_id) in submit_family() {
        let r = c.request(body).await;
        assert_eq!(r.command_id(), resp_id);
        assert_eq!(r.command_status, CommandStatus::ESME_RINVBNDSTS);
    }
    assert_eq!(s.service.submit_count(), 0);
    let r = c.request(Body::EnquireLink).await;
    assert_eq!(r.command_status, CommandStatus::ESME_ROK);
}

#[tokio::test]
async fn transmitter_may_not_send_smsc_side_requests() {
    let s = start(&cfg()).await;
    let c = Esme::bound(s.addr, BindAs::Trx, "acme", "pw").await;
    let r = c.request(Body::DeliverSm(submit_sm("1", b"x"))).await;
    assert_eq!(
        (r.command_id(), r.command_status),
        (CommandId::DELIVER_SM_RESP, CommandStatus::ESME_RINVBNDSTS)
    );
    for body in [
        Body::AlertNotification(AlertNotification::default()),
        Body::Outbind(Outbind::default()),
    ] {
        let r = c.request(body).await;
        assert_eq!(
            (r.body, r.command_status),
            (Body::GenericNack, CommandStatus::ESME_RINVBNDSTS)
        );
    }
    // The bind is still up.
    let r = c.submit(submit_sm("4912345", b"after")).await;
    assert_eq!(r.command_status, CommandStatus::ESME_ROK);
}

#[tokio::test]
async fn second_bind_gets_ralybnd_and_the_first_stays_up() {
    let s = start(&cfg()).await;
    let c = Esme::bound(s.addr, BindAs::Tx, "acme", "pw").await;
    let r = c.bind(BindAs::Trx, "acme", "pw").await;
    assert_eq!(
        (r.body, r.command_status),
        (Body::BindTransceiverResp(None), CommandStatus::ESME_RALYBND)
    );
    let r = c.submit(submit_sm("4912345", b"still bound")).await;
    assert_eq!(r.command_status, CommandStatus::ESME_ROK);
}

fn header(len: u32, id: u32, seq: u32) -> Vec<u8> {
    [len, id, 0, seq]
        .iter()
        .flat_map(|w| w.to_be_bytes())
        .collect()
}

#[tokio::test]
async fn unknown_command_gets_generic_nack_rinvcmdid_and_unknown_response_is_dropped() {
    let s = start(&cfg()).await;
    let c = Esme::bound(s.addr, BindAs::Trx, "acme", "pw").await;
    // broadcast_sm (5.0 only) with some body.
    let mut raw = header(20, 0x0000_0111, 77);
    raw.extend_from_slice(&[1, 2, 3, 4]);
    c.send_raw(&raw).await;
    let r = c.recv().await;
    assert_eq!(
        (r.body, r.command_status, r.sequence_number),
        (Body::GenericNack, CommandStatus::ESME_RINVCMDID, 77)
    );
    // An unknown *response* is not nacked: the next thing we get answers our enquire_link.
    c.send_raw(&header(16, 0x8000_0111, 78)).await;
    c.send(Pdu::new(79, Body::EnquireLink)).await;
    let r = c.recv().await;
    assert_eq!((r.body, r.sequence_number), (Body::EnquireLinkResp, 79));
    let r = c.submit(submit_sm("4912345", b"ok")).await;
    assert_eq!(r.command_status, CommandStatus::ESME_ROK);
}

#[tokio::test]
async fn malformed_bodies_are_answered_with_the_codec_status_and_the_bind_stays_up() {
    let s = start(&cfg()).await;
    let c = Esme::bound(s.addr, BindAs::Tx, "acme", "pw").await;

    // destination_addr longer than C(21).
    let long = Pdu::new(
        10,
        Body::SubmitSm(submit_sm("1234567890123456789012345", b"x")),
    );
    // sm_length says 2 but only 1 octet follows: cut the last octet, fix command_length.
    let mut cut = encode(&Pdu::new(11, Body::SubmitSm(submit_sm("4912345", b"hi"))));
    cut.pop();
    let n = cut.len() as u32;
    cut[..4].copy_from_slice(&n.to_be_bytes());
    // enquire_link with a body.
    let mut el = header(18, 0x15, 12);
    el.extend_from_slice(&[0, 0]);

    for (bytes, seq, resp) in [
        (encode(&long), 10, CommandId::SUBMIT_SM_RESP),
        (cut, 11, CommandId::SUBMIT_SM_RESP),
        (el, 12, CommandId::ENQUIRE_LINK_RESP),
    ] {
        let expected = Pdu::decode_slice(&bytes).unwrap_err().command_status();
        assert_ne!(expected, CommandStatus::ESME_ROK);
        c.send_raw(&bytes).await;
        let r = c.recv().await;
        assert_eq!(
            (r.command_id(), r.sequence_number, r.command_status),
            (resp, seq, expected)
        );
    }
    assert_eq!(
        Pdu::decode_slice(&encode(&long))
            .unwrap_err()
            .command_status(),
        CommandStatus::ESME_RINVDSTADR
    );
    assert_eq!(s.service.submit_count(), 0);
    let r = c.submit(submit_sm("4912345", b"good one")).await;
    assert_eq!(r.command_status, CommandStatus::ESME_ROK);
    assert_eq!(s.service.submit_count(), 1);
}

#[tokio::test]
async fn malformed_request_in_the_wrong_state_gets_rinvbndsts() {
    let s = start(&cfg()).await;
    let c = Esme::bound(s.addr, BindAs::Rx, "acme", "pw").await;
    let long = Pdu::new(
        5,
        Body::SubmitSm(submit_sm("1234567890123456789012345", b"x")),
    );
    c.send_raw(&encode(&long)).await;
    let r = c.recv().await;
    assert_eq!(
        (r.command_id(), r.command_status),
        (CommandId::SUBMIT_SM_RESP, CommandStatus::ESME_RINVBNDSTS)
    );
}

#[tokio::test]
async fn broken_frame_gets_generic_nack_rinvcmdlen_seq_0_then_close() {
    let s = start(&cfg()).await;
    for len in [8u32, 0x1000_0000] {
        let c = Esme::bound(s.addr, BindAs::Trx, "acme", "pw").await;
        c.send_raw(&header(len, 0x15, 9)).await;
        let got = c.expect_closed().await;
        assert_eq!(got.len(), 1, "{got:?}");
        assert_eq!(
            (&got[0].body, got[0].command_status, got[0].sequence_number),
            (&Body::GenericNack, CommandStatus::ESME_RINVCMDLEN, 0)
        );
    }
}

#[tokio::test]
async fn enquire_link_from_the_esme_is_answered_while_bound() {
    let s = start(&cfg()).await;
    let c = Esme::bound(s.addr, BindAs::Rx, "acme", "pw").await;
    let r = c.request(Body::EnquireLink).await;
    assert_eq!(
        (r.body, r.command_status),
        (Body::EnquireLinkResp, CommandStatus::ESME_ROK)
    );
}

fn fast_keepalive() -> TestConfig {
    let mut c = cfg();
    c.set("server.enquire_link_interval", "150ms")
        .set("server.response_timeout", "300ms");
    c
}

#[tokio::test]
async fn smsc_sends_enquire_link_after_inactivity_and_keeps_an_answering_session() {
    let s = start(&fast_keepalive()).await;
    let c = Esme::bound(s.addr, BindAs::Trx, "acme", "pw").await;
    let mut last_seq = 0;
    for _ in 0..3 {
        let p = c.recv().await;
        assert_eq!(p.body, Body::EnquireLink);
        assert!(
            p.sequence_number > last_seq,
            "own increasing sequence numbers"
        );
        last_seq = p.sequence_number;
        c.send(Pdu::new(p.sequence_number, Body::EnquireLinkResp))
            .await;
    }
    let r = c.submit(submit_sm("4912345", b"alive")).await;
    assert_eq!(r.command_status, CommandStatus::ESME_ROK);
}

#[tokio::test]
async fn session_is_closed_when_enquire_link_goes_unanswered() {
    let s = start(&fast_keepalive()).await;
    let c = Esme::bound(s.addr, BindAs::Trx, "acme", "pw").await;
    s.wait_binds("acme", 1).await;
    let got = c.expect_closed().await;
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0].body, Body::EnquireLink);
    s.wait_binds("acme", 0).await;
}

#[tokio::test]
async fn unbind_from_the_esme_is_answered_and_the_connection_closed() {
    let s = start(&cfg()).await;
    let c = Esme::bound(s.addr, BindAs::Tx, "acme", "pw").await;
    let r = c.request(Body::Unbind).await;
    assert_eq!(
        (r.body, r.command_status),
        (Body::UnbindResp, CommandStatus::ESME_ROK)
    );
    assert!(c.expect_closed().await.is_empty());
    s.wait_binds("acme", 0).await;
}
