//! Outbound receipts through the session registry (ReceiptSink): deliver_sm with
//! esm_class 0x04 and the receipt TLVs, answered by the client; refusal, generic_nack,
//! timeout, no receiver, and the receiver_bound notification.

use std::time::Duration;

use smpp_protocol::{Body, CommandStatus, Pdu, Tlv};
use smppd::service::{Address, DeliverError, ReceiptDelivery, ReceiptSink};

use crate::support::config::TestConfig;
use crate::support::esme::{self, BindAs, Esme};
use crate::support::server_harness::start;

fn receipt(id: &str) -> ReceiptDelivery {
    ReceiptDelivery {
        system_id: "acme".into(),
        source: Address { ton: 1, npi: 1, addr: "4912345".into() },
        dest: Address { ton: 5, npi: 0, addr: "SENDER".into() },
        short_message: format!("id:{id} sub:001 dlvrd:001 submit date:2401011200 done date:2401011201 stat:DELIVRD err:000 text:").into_bytes(),
        receipted_message_id: id.into(),
        message_state: 2,
        forward: None,
        intermediate: false,
        network_error: None,
    }
}

/// Answers deliver_sm `p` with ESME_ROK and checks that the delivery resolved Ok.
async fn answer_ok(c: &Esme, p: &Pdu, sent: tokio::task::JoinHandle<Result<(), DeliverError>>) {
    c.send(Pdu::new(p.sequence_number, Body::DeliverSmResp(None)))
        .await;
    let r = tokio::time::timeout(Duration::from_secs(5), sent).await;
    assert_eq!(r.unwrap().unwrap(), Ok(()));
}

fn cfg() -> TestConfig {
    let mut c = TestConfig::new();
    c.esme("acme", "");
    c
}

#[tokio::test]
async fn receipt_is_delivered_as_deliver_sm_and_resolves_on_deliver_sm_resp() {
    let s = start(&cfg()).await;
    let rx = Esme::bound(s.addr, BindAs::Rx, "acme", "pw").await;
    let registry = s.registry.clone();
    let sent = tokio::spawn(async move { registry.deliver(receipt("msg-7")).await });
    let p = rx.recv().await;
    let Body::DeliverSm(d) = &p.body else {
        panic!("{p:?}")
    };
    assert_eq!(d.esm_class, 0x04);
    assert_eq!(
        (d.source_addr.to_string(), d.source_addr_ton),
        ("4912345".to_string(), 1)
    );
    assert_eq!(
        (d.destination_addr.to_string(), d.dest_addr_ton),
        ("SENDER".to_string(), 5)
    );
    assert!(d.short_message.starts_with(b"id:msg-7 "));
    // The text is GSM 03.38 septets (DeliveryReceipt::to_short_message): data_coding 0.
    assert_eq!(d.data_coding, 0);
    assert!(d.tlvs.contains(&Tlv::MessageState(2)));
    assert!(d
        .tlvs
        .contains(&Tlv::ReceiptedMessageId(crate::support::messages::cs(
            "msg-7"
        ))));
    assert!(!sent.is_finished());
    answer_ok(&rx, &p, sent).await;
}

/// An ESME bound as SMPP 3.3 must never be sent TLVs (reference §3.2): its receipt
/// carries the text only, which names the id and state itself.
#[tokio::test]
async fn receipt_to_an_smpp_33_receiver_carries_no_tlv() {
    let s = start(&cfg()).await;
    let rx = Esme::connect(s.addr).await;
    let mut b = esme::bind_body("acme", "pw");
    b.interface_version = 0x33;
    let r = rx.request(Body::BindReceiver(b)).await;
    assert_eq!(r.command_status, CommandStatus::ESME_ROK);
    let registry = s.registry.clone();
    let sent = tokio::spawn(async move { registry.deliver(receipt("msg-33")).await });
    let p = rx.recv().await;
    let Body::DeliverSm(d) = &p.body else {
        panic!("{p:?}")
    };
    assert_eq!(d.esm_class, 0x04);
    assert!(d.tlvs.is_empty(), "{:?}", d.tlvs);
    assert!(d.short_message.starts_with(b"id:msg-33 "));
    answer_ok(&rx, &p, sent).await;
}

/// `receipt_pdu = "data_sm"`: the same receipt as a data_sm (reference §3.9, §9.1),
/// its text in message_payload, resolved by the receiver's data_sm_resp.
#[tokio::test]
async fn an_account_that_asked_for_data_sm_gets_its_receipt_as_data_sm() {
    let s = start(
        TestConfig::new()
            .esme("acme", "receipt_pdu = \"data_sm\"")
            .esme("acme33", "receipt_pdu = \"data_sm\""),
    )
    .await;
    let rx = Esme::bound(s.addr, BindAs::Rx, "acme", "pw").await;
    let registry = s.registry.clone();
    let sent = tokio::spawn(async move { registry.deliver(receipt("msg-8")).await });
    let p = rx.recv().await;
    let Body::DataSm(d) = &p.body else {
        panic!("{p:?}")
    };
    assert_eq!(
        (d.esm_class, d.data_coding, d.registered_delivery),
        (0x04, 0, 0)
    );
    assert_eq!(
        (d.source_addr.to_string(), d.destination_addr.to_string()),
        ("4912345".to_string(), "SENDER".to_string())
    );
    assert!(d.tlvs.contains(&Tlv::MessageState(2)));
    assert!(d
        .tlvs
        .contains(&Tlv::ReceiptedMessageId(crate::support::messages::cs(
            "msg-8"
        ))));
    assert!(d.user_data().starts_with(b"id:msg-8 "), "{:?}", d.tlvs);
    assert!(!sent.is_finished());
    rx.send(Pdu::new(p.sequence_number, Body::DataSmResp(None)))
        .await;
    let r = tokio::time::timeout(Duration::from_secs(5), sent).await;
    assert_eq!(r.unwrap().unwrap(), Ok(()));

    // An SMPP 3.3 receiver of the same account has no data_sm: it gets deliver_sm.
    let old = Esme::connect(s.addr).await;
    let mut b = esme::bind_body("acme33", "pw");
    b.interface_version = 0x33;
    assert_eq!(
        old.request(Body::BindReceiver(b)).await.command_status,
        CommandStatus::ESME_ROK
    );
    let registry = s.registry.clone();
    let r33 = ReceiptDelivery {
        system_id: "acme33".into(),
        ..receipt("msg-9")
    };
    let sent = tokio::spawn(async move { registry.deliver(r33).await });
    let p = old.recv().await;
    assert!(matches!(p.body, Body::DeliverSm(_)), "{p:?}");
    answer_ok(&old, &p, sent).await;
}

#[tokio::test]
async fn non_zero_deliver_sm_resp_is_a_refusal() {
    let s = start(&cfg()).await;
    let trx = Esme::bound(s.addr, BindAs::Trx, "acme", "pw").await;
    let registry = s.registry.clone();
    let sent = tokio::spawn(async move { registry.deliver(receipt("m")).await });
    let p = trx.recv().await;
    trx.send(Pdu {
        command_status: CommandStatus::ESME_RX_T_APPN,
        sequence_number: p.sequence_number,
        body: Body::DeliverSmResp(None),
    })
    .await;
    assert_eq!(
        sent.await.unwrap(),
        Err(DeliverError::Refused(CommandStatus::ESME_RX_T_APPN.0))
    );
}

/// A generic_nack matching the deliver_sm means it failed (reference §10.4), even with
/// command_status 0: not a delivery, so the store keeps the receipt and retries it.
#[tokio::test]
async fn generic_nack_with_status_0_is_a_failure_not_a_delivery() {
    let s = start(&cfg()).await;
    let rx = Esme::bound(s.addr, BindAs::Rx, "acme", "pw").await;
    let registry = s.registry.clone();
    let sent = tokio::spawn(async move { registry.deliver(receipt("m")).await });
    let p = rx.recv().await;
    assert!(matches!(p.body, Body::DeliverSm(_)), "{p:?}");
    rx.send(Pdu::generic_nack(
        p.sequence_number,
        CommandStatus::ESME_ROK,
    ))
    .await;
    let r = tokio::time::timeout(Duration::from_secs(5), sent).await;
    assert_eq!(r.unwrap().unwrap(), Err(DeliverError::Nacked(0)));
    // The session stays up and the next receipt goes through as usual.
    let registry = s.registry.clone();
    let sent = tokio::spawn(async move { registry.deliver(receipt("m2")).await });
    let p = rx.recv().await;
    answer_ok(&rx, &p, sent).await;
}

#[tokio::test]
async fn unanswered_deliver_sm_times_out_after_retries() {
    let s = start(
        cfg()
            .set("server.response_timeout", "200ms")
            .set("server.outbound_retries", 1),
    )
    .await;
    let rx = Esme::bound(s.addr, BindAs::Rx, "acme", "pw").await;
    let registry = s.registry.clone();
    let sent = tokio::spawn(async move { registry.deliver(receipt("m")).await });
    let first = rx.recv().await;
    let second = rx.recv().await;
    assert!(matches!(first.body, Body::DeliverSm(_)) && matches!(second.body, Body::DeliverSm(_)));
    assert_ne!(
        first.sequence_number, second.sequence_number,
        "a retry is a new request"
    );
    assert_eq!(sent.await.unwrap(), Err(DeliverError::Timeout));
    // A late answer is dropped quietly; the session stays up.
    rx.send(Pdu::new(first.sequence_number, Body::DeliverSmResp(None)))
        .await;
    assert_eq!(
        rx.request(Body::EnquireLink).await.body,
        Body::EnquireLinkResp
    );
}

#[tokio::test]
async fn no_receiver_bound_means_no_receiver() {
    let s = start(&cfg()).await;
    assert_eq!(
        s.registry.deliver(receipt("m")).await,
        Err(DeliverError::NoReceiver)
    );
    let _tx = Esme::bound(s.addr, BindAs::Tx, "acme", "pw").await;
    assert_eq!(
        s.registry.deliver(receipt("m")).await,
        Err(DeliverError::NoReceiver)
    );
}

#[tokio::test]
async fn receiver_bound_fires_for_receiver_and_transceiver_binds_only() {
    let s = start(&cfg()).await;
    let mut bound = s.registry.receiver_bound();
    let _tx = Esme::bound(s.addr, BindAs::Tx, "acme", "pw").await;
    let _rx = Esme::bound(s.addr, BindAs::Rx, "acme", "pw").await;
    let _trx = Esme::bound(s.addr, BindAs::Trx, "acme", "pw").await;
    let wait = Duration::from_secs(5);
    assert_eq!(
        tokio::time::timeout(wait, bound.recv())
            .await
            .unwrap()
            .unwrap(),
        "acme"
    );
    assert_eq!(
        tokio::time::timeout(wait, bound.recv())
            .await
            .unwrap()
            .unwrap(),
        "acme"
    );
    assert!(
        bound.try_recv().is_err(),
        "the transmitter bind did not fire"
    );
}

#[tokio::test]
async fn outbound_window_bounds_unanswered_deliver_sm_per_session() {
    let s = start(cfg().set("server.outbound_window", 2)).await;
    let rx = Esme::bound(s.addr, BindAs::Rx, "acme", "pw").await;
    let mut sends = Vec::new();
    for i in 0..3 {
        let registry = s.registry.clone();
        sends.push(tokio::spawn(async move {
            registry.deliver(receipt(&format!("m{i}"))).await
        }));
    }
    let a = rx.recv().await;
    let b = rx.recv().await;
    let in_flight: usize = s
        .registry
        .binds()
        .iter()
        .map(|b| b.outbound_in_flight)
        .sum();
    assert_eq!(in_flight, 2, "the window's worth unanswered");
    // The third waits for a free slot. Nothing tells that smppd holds a deliver_sm
    // back but its absence: a short look, after the first two arrived, is the only
    // way to see it.
    assert!(tokio::time::timeout(Duration::from_millis(200), rx.recv())
        .await
        .is_err());
    rx.send(Pdu::new(a.sequence_number, Body::DeliverSmResp(None)))
        .await;
    let c = rx.recv().await;
    rx.send(Pdu::new(b.sequence_number, Body::DeliverSmResp(None)))
        .await;
    rx.send(Pdu::new(c.sequence_number, Body::DeliverSmResp(None)))
        .await;
    for h in sends {
        assert_eq!(h.await.unwrap(), Ok(()));
    }
}
