//! The delivery step over real SMPP: alice submits through node A, her route
//! forwards the messages to bob, whose receiver is bound to node B (two smppd nodes on
//! one Redis 7.0 / Valkey 9 and the Mongo-protocol server). Decided by events: the
//! deliver_sm bob receives, the receipts alice receives, query_sm answers.

use std::time::Duration;

use smpp_protocol::receipt::ReceiptStat;
use smpp_protocol::{CommandStatus, Tlv};

use crate::support::backend::both;
use crate::support::config::PW;
use crate::support::e2e::*;
use crate::support::esme::*;
use crate::support::messages::*;
use crate::support::servers::RedisKind;

/// Destinations starting 4477009 go to bob; the rest stay in the store.
const ROUTES: &str =
    "[[route]]\ndestination = \"^4477009\"\nfrom = [\"alice\"]\ntarget = \"esme:bob\"\n\n\
    [delivery]\nretry_min = \"100ms\"\nretry_max = \"200ms\"\npartial_grace = \"1h\"\n";

const BOB: &str = "447700900123";

async fn env(kind: RedisKind, name: &str) -> Env {
    let mut env = Env::start(kind, name).await;
    env.config.toml(ROUTES);
    env
}

/// ENROUTE, DELIVERED, EXPIRED, UNDELIVERABLE (message_state, reference §5.2.28).
const ENROUTE: u8 = 1;
const DELIVERED: u8 = 2;
const EXPIRED: u8 = 3;
const UNDELIVERABLE: u8 = 5;

both!(
    a_routed_message_reaches_the_receiver_unchanged_and_delivrd_follows_its_ok,
    |kind: RedisKind| async move {
        let env = env(kind, "dlv-single").await;
        let a = env.start_app("node-a").await;
        let b = env.start_app("node-b").await;
        let alice = Esme::answering(a.addr, BindAs::Trx, "alice").await;
        // Submitted before bob binds: held for him, ENROUTE, no receipt yet.
        let id = alice
            .submit_ok(segment("ALICE", BOB, None, 8, &ucs2("héllo"), 1, ""))
            .await;
        assert_eq!(alice.query(&id, "ALICE").await, (ENROUTE, 0));
        let bob = Esme::answering(b.addr, BindAs::Rx, "bob").await;
        let got = bob.wait_delivered(1, T).await;
        let d = &got[0];
        assert_eq!((d.source.as_str(), d.dest.as_str()), ("ALICE", BOB));
        assert_eq!((d.esm_class, d.data_coding), (0, 8));
        assert_eq!(d.raw.as_ref(), ucs2("héllo").as_slice());
        assert!(
            d.receipted_message_id.is_none(),
            "a message, not a receipt: {d:?}"
        );
        let receipts = alice.wait_delivered(1, T).await;
        assert_receipts(&receipts, std::slice::from_ref(&id), ReceiptStat::Delivrd);
        // DELIVRD only once bob answered: his deliver_sm came first.
        assert!(receipts[0].at >= d.at);
        let doc = env.wait_docs(1, T).await.remove(0);
        assert_eq!(doc.get_str("state").unwrap(), "DELIVERED");
        assert_eq!(
            doc.get_document("route")
                .unwrap()
                .get_str("target")
                .unwrap(),
            "esme:bob"
        );
        let seg = doc.get_array("segments").unwrap()[0]
            .as_document()
            .unwrap()
            .clone();
        let dl = seg.get_document("delivery").unwrap();
        assert_eq!(dl.get_str("state").unwrap(), "DELIVERED");
        assert_eq!(dl.get_i64("attempts").unwrap(), 1);
        assert_eq!(dl.get_str("node").unwrap(), "node-b");
        assert_eq!(alice.query(&id, "ALICE").await, (DELIVERED, 0));
        // An unrouted destination stays in the store: delivered at once, bob sees nothing.
        let other = alice
            .submit_ok(segment("ALICE", "3360000", None, 0, &gsm("x"), 1, ""))
            .await;
        let receipts = alice.wait_delivered(2, T).await;
        assert_eq!(
            receipts[1].receipted_message_id.as_deref(),
            Some(other.as_str())
        );
        assert_eq!(bob.delivered().len(), 1);
    }
);

both!(
    segments_go_through_as_received_in_order_udh_and_sar,
    |kind: RedisKind| async move {
        let env = env(kind, "dlv-multi").await;
        let a = env.start_app("node-a").await;
        let b = env.start_app("node-b").await;
        let bob = Esme::answering(b.addr, BindAs::Rx, "bob").await;
        let alice = Esme::answering(a.addr, BindAs::Trx, "alice").await;
        let parts = ["one ", "two ", "three"];
        let mut sent = Vec::new();
        for (scheme, r) in [
            (ConcatScheme::Udh8, 7u16),
            (ConcatScheme::Udh16, 700),
            (ConcatScheme::Sar, 70),
        ] {
            for (i, p) in parts.iter().enumerate() {
                let sm = segment(
                    "ALICE",
                    BOB,
                    Some((scheme, r, 3, i as u8 + 1)),
                    0,
                    &gsm(p),
                    1,
                    "",
                );
                sent.push(sm.clone());
                alice.submit_ok(sm).await;
            }
        }
        let got = bob.wait_delivered(9, T).await;
        // Each message's segments in order, each as it was submitted.
        for (k, scheme) in [ConcatScheme::Udh8, ConcatScheme::Udh16, ConcatScheme::Sar]
            .into_iter()
            .enumerate()
        {
            let mine: Vec<_> = got
                .iter()
                .filter(|d| match scheme {
                    ConcatScheme::Sar => d.esm_class & 0x40 == 0,
                    ConcatScheme::Udh8 => d.esm_class & 0x40 != 0 && d.raw[1] == 0,
                    ConcatScheme::Udh16 => d.esm_class & 0x40 != 0 && d.raw[1] == 8,
                })
                .collect();
            assert_eq!(mine.len(), 3, "{scheme:?}: {got:?}");
            for (i, d) in mine.iter().enumerate() {
                let want = &sent[k * 3 + i];
                assert_eq!(d.raw, want.short_message, "{scheme:?} segment {}", i + 1);
                assert_eq!(d.esm_class, want.esm_class);
                if scheme == ConcatScheme::Sar {
                    assert!(d.tlvs.contains(&Tlv::SarMsgRefNum(70)), "{d:?}");
                    assert!(d.tlvs.contains(&Tlv::SarTotalSegments(3)));
                    assert!(d.tlvs.contains(&Tlv::SarSegmentSeqnum(i as u8 + 1)));
                }
            }
        }
        alice.wait_delivered(9, T).await;
        let docs = env.wait_docs(3, T).await;
        assert!(
            docs.iter()
                .all(|d| d.get_str("state").unwrap() == "DELIVERED"),
            "{docs:?}"
        );
    }
);

both!(
    a_permanent_refusal_is_undeliv_and_temporary_ones_are_retried,
    |kind: RedisKind| async move {
        let env = env(kind, "dlv-refusals").await;
        let a = env.start_app("node-a").await;
        let b = env.start_app("node-b").await;
        let bob = Esme::answering(b.addr, BindAs::Rx, "bob").await;
        let alice = Esme::answering(a.addr, BindAs::Trx, "alice").await;
        bob.answer_with(&[CommandStatus::ESME_RX_P_APPN]);
        let refused = alice
            .submit_ok(segment("ALICE", BOB, None, 0, &gsm("no"), 1, ""))
            .await;
        let r = alice.wait_delivered(1, T).await;
        let receipt = r[0].receipt.clone().unwrap();
        assert_eq!(receipt.stat, ReceiptStat::Undeliv);
        assert_eq!(receipt.err, 0x65);
        assert_eq!(alice.query(&refused, "ALICE").await, (UNDELIVERABLE, 0x65));
        assert_eq!(
            bob.delivered().len(),
            1,
            "a permanent refusal is not retried"
        );

        bob.answer_with(&[
            CommandStatus::ESME_RX_T_APPN,
            CommandStatus::ESME_RTHROTTLED,
        ]);
        let retried = alice
            .submit_ok(segment("ALICE", BOB, None, 0, &gsm("again"), 1, ""))
            .await;
        let r = alice.wait_delivered(2, T).await;
        assert_eq!(r[1].receipted_message_id.as_deref(), Some(retried.as_str()));
        assert_eq!(r[1].receipt.as_ref().unwrap().stat, ReceiptStat::Delivrd);
        assert_eq!(bob.delivered().len(), 4, "refused twice, then accepted");
        env.wait_docs(2, T).await;
        let doc = env.doc_of(&retried).await;
        let seg = doc.get_array("segments").unwrap()[0]
            .as_document()
            .unwrap()
            .clone();
        assert_eq!(
            seg.get_document("delivery")
                .unwrap()
                .get_i64("attempts")
                .unwrap(),
            3
        );
        let doc = env.doc_of(&refused).await;
        assert_eq!(doc.get_str("state").unwrap(), "UNDELIVERABLE");
    }
);

both!(
    a_message_nobody_takes_before_its_validity_ends_expires_and_is_never_delivered,
    |kind: RedisKind| async move {
        let env = env(kind, "dlv-expiry").await;
        let a = env.start_app("node-a").await;
        let b = env.start_app("node-b").await;
        let alice = Esme::answering(a.addr, BindAs::Trx, "alice").await;
        let late = alice
            .submit_ok(segment("ALICE", BOB, None, 0, &gsm("late"), 1, TWO_SECONDS))
            .await;
        let r = alice.wait_delivered(1, T).await;
        assert_receipts(&r, std::slice::from_ref(&late), ReceiptStat::Expired);
        assert_eq!(alice.query(&late, "ALICE").await.0, EXPIRED);
        env.wait_docs(1, T).await;
        // Bound after the validity: only a later message reaches bob.
        let bob = Esme::answering(b.addr, BindAs::Rx, "bob").await;
        alice
            .submit_ok(segment("ALICE", BOB, None, 0, &gsm("on time"), 0, ""))
            .await;
        let got = bob.wait_delivered(1, T).await;
        assert_eq!(got[0].text, "on time");
        let doc = env.doc_of(&late).await;
        assert_eq!(doc.get_str("state").unwrap(), "EXPIRED");
        // What alice's second message left: bob's OK ended it (outcome written).
        env.wait_docs(2, T).await;
        assert_eq!(bob.delivered().len(), 1, "{:?}", bob.delivered());
    }
);

both!(
    an_incomplete_message_delivers_its_received_segments_standalone_at_its_deadline,
    |kind: RedisKind| async move {
        let env = env(kind, "dlv-partial").await;
        let a = env.start_app("node-a").await;
        let b = env.start_app("node-b").await;
        let bob = Esme::answering(b.addr, BindAs::Rx, "bob").await;
        let alice = Esme::answering(a.addr, BindAs::Trx, "alice").await;
        let mut ids = Vec::new();
        for seq in [1u8, 3] {
            let sm = segment(
                "ALICE",
                BOB,
                Some((ConcatScheme::Udh8, 9, 3, seq)),
                0,
                &gsm(&format!("part{seq}")),
                1,
                TWO_SECONDS,
            );
            ids.push(alice.submit_ok(sm).await);
        }
        let got = bob.wait_delivered(2, T).await;
        assert_eq!(got[0].text, "part1");
        assert_eq!(got[1].text, "part3");
        assert!(
            got.iter().all(|d| d.esm_class & 0x40 == 0),
            "no UDH: {got:?}"
        );
        let r = alice.wait_delivered(2, T).await;
        assert_receipts(&r, &ids, ReceiptStat::Delivrd);
        let doc = env.wait_docs(1, T).await.remove(0);
        assert_eq!(doc.get_str("state").unwrap(), "PARTIAL");
        assert_eq!(missing(&doc), vec![2]);
    }
);

both!(
    an_unrouted_destination_is_refused_when_the_default_says_so,
    |kind: RedisKind| async move {
        let mut env = Env::start(kind, "dlv-refuse").await;
        env.config.toml(
            "[[route]]\ndestination = \"^4477009\"\ntarget = \"esme:bob\"\n\n[delivery]\ndefault = \"refuse\"\n",
        );
        let a = env.start_app("node-a").await;
        let alice = Esme::answering(a.addr, BindAs::Tx, "alice").await;
        let r = alice
            .submit(segment("ALICE", "3360000", None, 0, &gsm("x"), 0, ""))
            .await;
        assert_eq!(r.command_status, CommandStatus::ESME_RINVDSTADR);
        alice
            .submit_ok(segment("ALICE", BOB, None, 0, &gsm("x"), 0, ""))
            .await;
    }
);

both!(
    a_scheduled_message_is_neither_delivered_nor_finished_before_its_time,
    |kind: RedisKind| async move {
        let env = env(kind, "dlv-schedule").await;
        let a = env.start_app("node-a").await;
        let b = env.start_app("node-b").await;
        let bob = Esme::answering(b.addr, BindAs::Rx, "bob").await;
        let alice = Esme::answering(a.addr, BindAs::Trx, "alice").await;
        let t0 = std::time::Instant::now();
        let mut to_bob = segment("ALICE", BOB, None, 0, &gsm("later"), 1, "");
        to_bob.schedule_delivery_time = cs(TWO_SECONDS);
        let mut kept = segment("ALICE", "3360000", None, 0, &gsm("kept"), 1, "");
        kept.schedule_delivery_time = cs(TWO_SECONDS);
        // A multi-part one: its time is its first segment's.
        let mut parts = Vec::new();
        for seq in 1..=2u8 {
            let mut sm = segment(
                "ALICE",
                BOB,
                Some((ConcatScheme::Udh8, 5, 2, seq)),
                0,
                &gsm("p"),
                1,
                "",
            );
            sm.schedule_delivery_time = cs(if seq == 1 { TWO_SECONDS } else { "" });
            parts.push(sm);
        }
        let ids = [
            alice.submit_ok(to_bob).await,
            alice.submit_ok(kept).await,
            alice.submit_ok(parts[0].clone()).await,
            alice.submit_ok(parts[1].clone()).await,
        ];
        for id in &ids {
            assert_eq!(alice.query(id, "ALICE").await, (ENROUTE, 0), "{id}");
        }
        let got = bob.wait_delivered(3, T).await;
        let r = alice.wait_delivered(4, T).await;
        // Lower bounds only: nothing may happen before the schedule, whenever after.
        for d in got.iter().chain(r.iter()) {
            assert!(
                d.at.duration_since(t0) >= Duration::from_millis(1900),
                "{d:?}"
            );
        }
        assert_receipts(&r, &ids, ReceiptStat::Delivrd);
        env.wait_docs(3, T).await;
    }
);

both!(
    store_and_forward_fields_out_of_range_get_their_status,
    |kind: RedisKind| async move {
        let env = env(kind, "dlv-fields").await;
        let a = env.start_app("node-a").await;
        let alice = Esme::answering(a.addr, BindAs::Tx, "alice").await;
        let mut late = segment("ALICE", BOB, None, 0, &gsm("x"), 0, TWO_SECONDS);
        late.schedule_delivery_time = cs("000000000010000R");
        assert_eq!(
            alice.submit(late).await.command_status,
            CommandStatus::ESME_RINVSCHED
        );
        let mut prio = segment("ALICE", BOB, None, 0, &gsm("x"), 0, "");
        prio.priority_flag = 4;
        assert_eq!(
            alice.submit(prio).await.command_status,
            CommandStatus::ESME_RINVPRTFLG
        );
        let mut rep = segment("ALICE", BOB, None, 0, &gsm("x"), 0, "");
        rep.replace_if_present_flag = 2;
        assert_eq!(
            alice.submit(rep).await.command_status,
            CommandStatus::ESME_RINVREPFLAG
        );
        let mut ok = segment("ALICE", BOB, None, 0, &gsm("x"), 0, "");
        ok.priority_flag = 3;
        alice.submit_ok(ok).await;
    }
);

both!(
    a_temporary_refusal_sends_one_intermediate_notification_when_asked,
    |kind: RedisKind| async move {
        let env = env(kind, "dlv-notify").await;
        let a = env.start_app("node-a").await;
        let b = env.start_app("node-b").await;
        let bob = Esme::answering(b.addr, BindAs::Rx, "bob").await;
        let alice = Esme::answering(a.addr, BindAs::Trx, "alice").await;
        bob.answer_with(&[CommandStatus::ESME_RX_T_APPN, CommandStatus::ESME_RMSGQFUL]);
        // registered_delivery 0x11: the final receipt and intermediate notifications.
        let id = alice
            .submit_ok(segment("ALICE", BOB, None, 0, &gsm("hold on"), 0x11, ""))
            .await;
        let got = alice.wait_delivered(2, T).await;
        let (first, last) = (&got[0], &got[1]);
        assert_eq!(
            first.esm_class, 0x20,
            "an intermediate notification first: {got:?}"
        );
        assert_eq!(first.receipted_message_id.as_deref(), Some(id.as_str()));
        assert_eq!(first.receipt.as_ref().unwrap().stat, ReceiptStat::Enroute);
        assert_eq!(last.esm_class, 0x04);
        assert_eq!(last.receipt.as_ref().unwrap().stat, ReceiptStat::Delivrd);
        assert_eq!(bob.delivered().len(), 3);
        // Two temporary refusals, one notification.
        env.wait_docs(1, T).await;
        assert_eq!(alice.delivered().len(), 2, "{:?}", alice.delivered());
    }
);

both!(
    a_node_killed_mid_delivery_leaves_the_message_to_another_node_at_least_once,
    |kind: RedisKind| async move {
        let mut env = env(kind, "dlv-crash").await;
        // A short lease: a taken delivery is another node's again ~10 s after its
        // node died (response_timeout × 3 × tries, at least 5 s, + 5 s).
        env.config
            .set("server.response_timeout", "1s")
            .set("server.outbound_retries", 0);
        let a = env.start_app("node-a").await;
        let mut b = env.spawn_smppd("node-b").await;
        let alice = Esme::answering(a.addr, BindAs::Trx, "alice").await;
        let bob = Esme::answering(b.addr, BindAs::Rx, "bob").await;
        bob.answer_deliveries(false);
        let id = alice
            .submit_ok(segment("ALICE", BOB, None, 0, &gsm("once or twice"), 1, ""))
            .await;
        // Node B sent it to bob, who never answers; then node B dies.
        bob.wait_delivered(1, T).await;
        b.kill();
        assert_eq!(alice.query(&id, "ALICE").await, (ENROUTE, 0));
        let bob_again = Esme::answering(a.addr, BindAs::Rx, "bob").await;
        let got = bob_again.wait_delivered(1, Duration::from_secs(60)).await;
        assert_eq!(got[0].text, "once or twice");
        let r = alice.wait_delivered(1, T).await;
        assert_receipts(&r, std::slice::from_ref(&id), ReceiptStat::Delivrd);
        // Sent twice in all: at least once, never lost.
        assert_eq!(bob.delivered().len() + bob_again.delivered().len(), 2);
    }
);

both!(
    a_forwarded_message_cancelled_before_its_receiver_took_it_is_deleted,
    |kind: RedisKind| async move {
        let env = env(kind, "dlv-cancel").await;
        let a = env.start_app("node-a").await;
        let alice = Esme::answering(a.addr, BindAs::Trx, "alice").await;
        let id = alice
            .submit_ok(segment("ALICE", BOB, None, 0, &gsm("never mind"), 1, ""))
            .await;
        assert_eq!(alice.query(&id, "ALICE").await, (ENROUTE, 0));
        let r = alice
            .request(smpp_protocol::Body::CancelSm(smpp_protocol::CancelSm {
                message_id: cs(&id),
                source_addr_ton: 1,
                source_addr_npi: 1,
                source_addr: cs("ALICE"),
                ..smpp_protocol::CancelSm::default()
            }))
            .await;
        assert_eq!(r.command_status, CommandStatus::ESME_ROK);
        let got = alice.wait_delivered(1, T).await;
        assert_receipts(&got, std::slice::from_ref(&id), ReceiptStat::Deleted);
        let doc = env.wait_docs(1, T).await.remove(0);
        assert_eq!(doc.get_str("state").unwrap(), "CANCELLED");
        // bob, bound now, gets only what is sent after.
        let bob = Esme::answering(a.addr, BindAs::Rx, "bob").await;
        alice
            .submit_ok(segment("ALICE", BOB, None, 0, &gsm("this one"), 0, ""))
            .await;
        let d = bob.wait_delivered(1, T).await;
        assert_eq!(d[0].text, "this one");
        env.wait_docs(2, T).await;
        assert_eq!(bob.delivered().len(), 1);
    }
);

/// bob as an smpp34 receiver (an independent SMPP implementation): it answers every
/// deliver_sm with `accept()` (ESME_ROK).
struct Smpp34Receiver {
    bound: tokio::sync::Mutex<Option<tokio::sync::oneshot::Sender<()>>>,
    delivered: tokio::sync::mpsc::UnboundedSender<smpp34::deliver_sm>,
}

#[async_trait::async_trait]
impl smpp34::client::SmppClientListener for Smpp34Receiver {
    async fn on_smsc_bound(&self, _smsc: smpp34::client::SMSC, _s: &String) {
        if let Some(tx) = self.bound.lock().await.take() {
            let _ = tx.send(());
        }
    }

    async fn on_deliver_sm(
        &self,
        req: smpp34::deliver_sm,
        _c: &smpp34::SmppConnectionInformation,
        _s: &String,
    ) -> smpp34::deliver_sm_resp {
        let _ = self.delivered.send(req.clone());
        req.accept()
    }
}

both!(
    an_smpp34_receiver_gets_the_forwarded_message_and_its_ok_makes_it_delivrd,
    |kind: RedisKind| async move {
        let env = env(kind, "dlv-smpp34").await;
        let a = env.start_app("node-a").await;
        let b = env.start_app("node-b").await;
        let (bound_tx, bound_rx) = tokio::sync::oneshot::channel();
        let (dlv_tx, mut dlv_rx) = tokio::sync::mpsc::unbounded_channel();
        let listener = std::sync::Arc::new(Smpp34Receiver {
            bound: tokio::sync::Mutex::new(Some(bound_tx)),
            delivered: dlv_tx,
        });
        let mut client = smpp34::client::SmppClient::new(
            "127.0.0.1".to_string(),
            b.addr.port(),
            false,
            smpp34::client::BIND_TYPE::RX,
            "bob".to_string(),
            PW.to_string(),
            String::new(),
            0,
            0,
            String::new(),
            listener,
            10,
        );
        client.start().await;
        tokio::time::timeout(T, bound_rx).await.unwrap().unwrap();
        let alice = Esme::answering(a.addr, BindAs::Trx, "alice").await;
        let id = alice
            .submit_ok(segment("ALICE", BOB, None, 0, &gsm("to smpp34"), 1, ""))
            .await;
        let d = tokio::time::timeout(T, dlv_rx.recv())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            (d.source_addr.as_str(), d.destination_addr.as_str()),
            ("ALICE", BOB)
        );
        assert_eq!(d.short_message, gsm("to smpp34"));
        assert_eq!(d.esm_class, 0);
        let r = alice.wait_delivered(1, T).await;
        assert_receipts(&r, std::slice::from_ref(&id), ReceiptStat::Delivrd);
    }
);

both!(
    a_simulate_route_ends_messages_as_its_profile_picks_after_its_delay,
    |kind: RedisKind| async move {
        let mut env = Env::start(kind, "dlv-simulate").await;
        env.config.toml(
            "[[simulate]]\nname = \"reject\"\nseed = 7\ndelay = \"1s\"\n\
             outcomes = [ { stat = \"REJECTD\", weight = 1, err = 11 } ]\n\n\
             [[simulate]]\nname = \"busy\"\noutcomes = [ { stat = \"DELIVRD\" } ]\n\
             submit_errors = [ { status = \"ESME_RTHROTTLED\", percent = 100 } ]\n\n\
             [[route]]\ndestination = \"^4477003\"\ntarget = \"simulate:reject\"\n\n\
             [[route]]\ndestination = \"^4477004\"\ntarget = \"simulate:busy\"\n",
        );
        let a = env.start_app("node-a").await;
        let alice = Esme::answering(a.addr, BindAs::Trx, "alice").await;
        let t0 = std::time::Instant::now();
        let single = alice
            .submit_ok(segment(
                "ALICE",
                "447700300001",
                None,
                0,
                &gsm("sim"),
                1,
                "",
            ))
            .await;
        assert_eq!(alice.query(&single, "ALICE").await, (ENROUTE, 0));
        let mut ids = vec![single.clone()];
        for seq in 1..=2u8 {
            let sm = segment(
                "ALICE",
                "447700300002",
                Some((ConcatScheme::Udh8, 3, 2, seq)),
                0,
                &gsm("p"),
                1,
                "",
            );
            ids.push(alice.submit_ok(sm).await);
        }
        let r = alice.wait_delivered(3, T).await;
        for d in &r {
            assert!(
                d.at.duration_since(t0) >= Duration::from_millis(900),
                "{d:?}"
            );
            let receipt = d.receipt.as_ref().unwrap();
            assert_eq!(
                (receipt.stat, receipt.err),
                (ReceiptStat::Rejectd, 11),
                "{d:?}"
            );
            assert!(
                d.tlvs.contains(&Tlv::NetworkErrorCode {
                    network_type: 3,
                    error_code: 11
                }),
                "{d:?}"
            );
        }
        assert_receipts(&r, &ids, ReceiptStat::Rejectd);
        // REJECTED (8), error 11, in Redis and in the outcome document alike.
        assert_eq!(alice.query(&single, "ALICE").await, (8, 11));
        env.wait_docs(2, T).await;
        let doc = env.doc_of(&single).await;
        assert_eq!(doc.get_str("state").unwrap(), "REJECTED");
        // The profile's delay holds within half a second, by Redis time (the claim at
        // the `^` timer, not this test's view of it).
        let held = doc.get_datetime("completed_at").unwrap().timestamp_millis()
            - doc.get_datetime("submitted_at").unwrap().timestamp_millis();
        assert!(
            (500..=1500).contains(&held),
            "delay 1 s, ended after {held} ms"
        );
        assert_eq!(
            doc.get_document("route")
                .unwrap()
                .get_str("target")
                .unwrap(),
            "simulate"
        );
        assert_eq!(alice.query(&single, "ALICE").await, (8, 11));
        let busy = alice
            .submit(segment("ALICE", "447700400001", None, 0, &gsm("x"), 0, ""))
            .await;
        assert_eq!(busy.command_status, CommandStatus::ESME_RTHROTTLED);
    }
);

both!(
    a_reassembling_route_sends_one_deliver_sm_with_the_whole_text_in_message_payload,
    |kind: RedisKind| async move {
        let mut env = Env::start(kind, "dlv-reassembled").await;
        env.config.toml(
            "[[route]]\ndestination = \"^4477008\"\ntarget = \"esme:bob\"\nsegments = \"reassembled\"\n",
        );
        let a = env.start_app("node-a").await;
        let b = env.start_app("node-b").await;
        let bob = Esme::answering(b.addr, BindAs::Rx, "bob").await;
        let alice = Esme::answering(a.addr, BindAs::Trx, "alice").await;
        let mut ids = Vec::new();
        // Sent out of order: reassembled by seq.
        for (seq, part) in [(2u8, "two "), (1, "one "), (3, "three")] {
            let sm = segment(
                "ALICE",
                "447700800001",
                Some((ConcatScheme::Udh16, 77, 3, seq)),
                0,
                &gsm(part),
                1,
                "",
            );
            ids.push(alice.submit_ok(sm).await);
        }
        let got = bob.wait_delivered(1, T).await;
        let d = &got[0];
        assert_eq!(d.esm_class, 0, "no UDHI: {d:?}");
        assert_eq!(d.text, "one two three");
        assert!(
            d.tlvs.iter().any(|t| matches!(t, Tlv::MessagePayload(_))),
            "the text in message_payload: {d:?}"
        );
        // One receipt per segment the sender submitted, each DELIVRD.
        let r = alice.wait_delivered(3, T).await;
        assert_receipts(&r, &ids, ReceiptStat::Delivrd);
        let doc = env.wait_docs(1, T).await.remove(0);
        assert_eq!(doc.get_str("state").unwrap(), "DELIVERED");
        env.wait_docs(1, T).await;
        assert_eq!(bob.delivered().len(), 1);
    }
);

both!(
    decimal_message_ids_fit_a_u64_and_name_their_message_everywhere,
    |kind: RedisKind| async move {
        let mut env = env(kind, "dlv-decimal").await;
        env.config.esme("alice", "message_id_format = \"decimal\"");
        let a = env.start_app("node-a").await;
        let alice = Esme::answering(a.addr, BindAs::Trx, "alice").await;
        let bob = Esme::answering(a.addr, BindAs::Rx, "bob").await;
        // Kept by the store, forwarded, and a multi-part one.
        let kept = alice
            .submit_ok(segment("ALICE", "3360000", None, 0, &gsm("kept"), 1, ""))
            .await;
        let fwd = alice
            .submit_ok(segment("ALICE", BOB, None, 0, &gsm("fwd"), 1, ""))
            .await;
        let mut ids = vec![kept.clone(), fwd.clone()];
        for seq in 1..=2u8 {
            let sm = segment(
                "ALICE",
                "3360001",
                Some((ConcatScheme::Sar, 4, 2, seq)),
                0,
                &gsm("p"),
                1,
                "",
            );
            ids.push(alice.submit_ok(sm).await);
        }
        for id in &ids {
            assert!(id.parse::<u64>().is_ok(), "not a u64: {id}");
        }
        let r = alice.wait_delivered(4, T).await;
        assert_receipts(&r, &ids, ReceiptStat::Delivrd);
        for d in &r {
            assert_eq!(
                d.receipt.as_ref().unwrap().id,
                d.receipted_message_id.clone().unwrap()
            );
        }
        bob.wait_delivered(1, T).await;
        assert_eq!(alice.query(&fwd, "ALICE").await.0, DELIVERED);
        env.wait_docs(3, T).await;
        assert_eq!(alice.query(&kept, "ALICE").await.0, DELIVERED);
    }
);

both!(
    cancel_sm_without_a_message_id_cancels_what_a_source_has_pending,
    |kind: RedisKind| async move {
        let env = env(kind, "dlv-cancel-all").await;
        let a = env.start_app("node-a").await;
        let alice = Esme::answering(a.addr, BindAs::Trx, "alice").await;
        let cancel = |dest: &str| {
            smpp_protocol::Body::CancelSm(smpp_protocol::CancelSm {
                source_addr_ton: 1,
                source_addr_npi: 1,
                source_addr: cs("ALICE"),
                dest_addr_ton: 1,
                dest_addr_npi: 1,
                destination_addr: cs(dest),
                ..smpp_protocol::CancelSm::default()
            })
        };
        // Waiting for bob (not bound): two to BOB, one to another of his numbers; a
        // partial message in the store; and one from another source.
        let to_bob: Vec<String> = futures::future::join_all((0..2).map(|i| {
            alice.submit_ok(segment(
                "ALICE",
                BOB,
                None,
                0,
                &gsm(&format!("m{i}")),
                1,
                "",
            ))
        }))
        .await;
        let other_dest = alice
            .submit_ok(segment("ALICE", "447700900999", None, 0, &gsm("x"), 1, ""))
            .await;
        let partial = alice
            .submit_ok(segment(
                "ALICE",
                BOB,
                Some((ConcatScheme::Udh8, 1, 2, 1)),
                0,
                &gsm("half"),
                1,
                "",
            ))
            .await;
        let other_source = alice
            .submit_ok(segment("OTHER", BOB, None, 0, &gsm("y"), 1, ""))
            .await;
        // By source and destination: the three to BOB.
        let r = alice.request(cancel(BOB)).await;
        assert_eq!(r.command_status, CommandStatus::ESME_ROK);
        let mut ids = to_bob.clone();
        ids.push(partial.clone());
        let got = alice.wait_delivered(3, T).await;
        assert_receipts(&got, &ids, ReceiptStat::Deleted);
        assert_eq!(alice.query(&other_dest, "ALICE").await.0, ENROUTE);
        assert_eq!(alice.query(&other_source, "OTHER").await.0, ENROUTE);
        // Nothing of that pair is left: refused.
        let r = alice.request(cancel(BOB)).await;
        assert_eq!(r.command_status, CommandStatus::ESME_RCANCELFAIL);
        // By source alone: the rest of ALICE's.
        let r = alice.request(cancel("")).await;
        assert_eq!(r.command_status, CommandStatus::ESME_ROK);
        let got = alice.wait_delivered(4, T).await;
        assert_eq!(
            got[3].receipted_message_id.as_deref(),
            Some(other_dest.as_str())
        );
        assert_eq!(alice.query(&other_source, "OTHER").await.0, ENROUTE);
    }
);

both!(
    replace_if_present_replaces_the_pairs_message_not_yet_delivered,
    |kind: RedisKind| async move {
        let env = env(kind, "dlv-replace").await;
        let a = env.start_app("node-a").await;
        let alice = Esme::answering(a.addr, BindAs::Trx, "alice").await;
        let first = alice
            .submit_ok(segment("ALICE", BOB, None, 0, &gsm("old"), 1, ""))
            .await;
        let mut wap = segment("ALICE", BOB, None, 0, &gsm("other service"), 1, "");
        wap.service_type = cs("WAP");
        let other_service = alice.submit_ok(wap).await;
        let mut newer = segment("ALICE", BOB, None, 0, &gsm("new"), 1, "");
        newer.replace_if_present_flag = 1;
        let second = alice.submit_ok(newer).await;
        // The first ends DELETED; the one of another service_type stays.
        let got = alice.wait_delivered(1, T).await;
        assert_receipts(&got, std::slice::from_ref(&first), ReceiptStat::Deleted);
        assert_eq!(alice.query(&other_service, "ALICE").await.0, ENROUTE);
        let bob = Esme::answering(a.addr, BindAs::Rx, "bob").await;
        let d = bob.wait_delivered(2, T).await;
        let mut texts: Vec<&str> = d.iter().map(|d| d.text.as_str()).collect();
        texts.sort_unstable();
        assert_eq!(texts, ["new", "other service"]);
        let r = alice.wait_delivered(3, T).await;
        assert!(r
            .iter()
            .any(|d| d.receipted_message_id.as_deref() == Some(second.as_str())));
    }
);

both!(
    higher_priority_goes_first_when_a_receiver_takes_its_queue,
    |kind: RedisKind| async move {
        let env = env(kind, "dlv-priority").await;
        let a = env.start_app("node-a").await;
        let alice = Esme::answering(a.addr, BindAs::Trx, "alice").await;
        for (text, priority) in [("low", 0u8), ("top", 3), ("mid", 1)] {
            let mut sm = segment("ALICE", BOB, None, 0, &gsm(text), 0, "");
            sm.priority_flag = priority;
            sm.protocol_id = 0x41;
            alice.submit_ok(sm).await;
        }
        // bob binds once all three wait: his node takes them as one batch.
        let bob = Esme::answering(a.addr, BindAs::Rx, "bob").await;
        let got = bob.wait_delivered(3, T).await;
        let order: Vec<&str> = got.iter().map(|d| d.text.as_str()).collect();
        assert_eq!(order, ["top", "mid", "low"]);
    }
);

both!(
    a_reload_applies_new_routes_to_the_next_submit,
    |kind: RedisKind| async move {
        let mut env = Env::start(kind, "dlv-reload").await;
        let a = env.start_app("node-a").await;
        let bob = Esme::answering(a.addr, BindAs::Rx, "bob").await;
        let alice = Esme::answering(a.addr, BindAs::Trx, "alice").await;
        // No route: the store keeps it, DELIVRD at once, bob gets nothing.
        let kept = alice
            .submit_ok(segment("ALICE", BOB, None, 0, &gsm("kept"), 1, ""))
            .await;
        let r = alice.wait_delivered(1, T).await;
        assert_eq!(r[0].receipted_message_id.as_deref(), Some(kept.as_str()));
        env.config.toml(ROUTES);
        env.rewrite_app_config("node-a");
        a.handle.reload().unwrap();
        alice
            .submit_ok(segment("ALICE", BOB, None, 0, &gsm("routed"), 0, ""))
            .await;
        let got = bob.wait_delivered(1, T).await;
        assert_eq!(got[0].text, "routed");
        assert_eq!(got.len(), 1);
    }
);
