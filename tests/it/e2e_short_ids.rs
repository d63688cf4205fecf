//! `message_id_format = "short"` over real SMPP, on two nodes: ids of 8 characters
//! (an SMPP 3.3 client's limit), unique across the nodes, that query_sm, cancel_sm
//! and the receipts name (the id alone finds the message's partition).

use std::collections::HashSet;

use smpp_protocol::receipt::ReceiptStat;
use smpp_protocol::CommandStatus;

use crate::support::backend::both;
use crate::support::e2e::*;
use crate::support::esme::*;
use crate::support::messages::*;
use crate::support::servers::RedisKind;

/// A destination routed to bob, who is never bound here: its messages wait.
const HELD: &str = "447700900123";

/// ENROUTE, DELIVERED, DELETED (message_state, reference §5.2.28).
const ENROUTE: u8 = 1;
const DELIVERED: u8 = 2;
const DELETED: u8 = 4;

fn is_short(id: &str) -> bool {
    id.len() == 8
        && id.as_bytes()[0].is_ascii_uppercase()
        && id
            .bytes()
            .all(|b| b.is_ascii_digit() || b.is_ascii_uppercase())
}

both!(
    short_message_ids_have_8_characters_and_name_their_message_everywhere,
    |kind: RedisKind| async move {
        let mut env = Env::start(kind, "ids-short").await;
        env.config
            .esme("alice", "message_id_format = \"short\"")
            .toml("[[route]]\ndestination = \"^4477009\"\ntarget = \"esme:bob\"\n");
        let a = env.start_app("node-a").await;
        let b = env.start_app("node-b").await;
        let base = env.redis.dbsize();
        let alice = Esme::answering(a.addr, BindAs::Trx, "alice").await;
        let alice_b = Esme::answering(b.addr, BindAs::Tx, "alice").await;
        // Kept by the store, waiting for bob (to cancel), and a multi-part one whose
        // segments arrive through the other node.
        let kept = alice
            .submit_ok(segment("ALICE", "3360000", None, 0, &gsm("kept"), 1, ""))
            .await;
        let held = alice
            .submit_ok(segment("ALICE", HELD, None, 0, &gsm("cancel me"), 1, ""))
            .await;
        let mut parts = Vec::new();
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
            parts.push(alice_b.submit_ok(sm).await);
            if seq == 1 {
                // Pending: its short id points to its message (`P{t}:m:<id>`).
                assert_eq!(alice_b.query(&parts[0], "ALICE").await, (ENROUTE, 0));
            }
        }
        // Many more from both nodes at once (no receipts): never the same id twice.
        let more = futures::future::join_all((0..40).map(|i| {
            let esme = if i % 2 == 0 { &alice } else { &alice_b };
            esme.submit_ok(segment("ALICE", "3360002", None, 0, &gsm("m"), 0, ""))
        }))
        .await;
        let mut all: Vec<String> = vec![kept.clone(), held.clone()];
        all.extend(parts.iter().cloned());
        all.extend(more);
        for id in &all {
            assert!(is_short(id), "not a short id: {id}");
        }
        assert_eq!(
            all.iter().collect::<HashSet<_>>().len(),
            all.len(),
            "{all:?}"
        );

        assert_eq!(alice.query(&held, "ALICE").await, (ENROUTE, 0));
        let r = alice
            .request(smpp_protocol::Body::CancelSm(smpp_protocol::CancelSm {
                message_id: cs(&held),
                source_addr_ton: 1,
                source_addr_npi: 1,
                source_addr: cs("ALICE"),
                ..smpp_protocol::CancelSm::default()
            }))
            .await;
        assert_eq!(
            r.command_status,
            CommandStatus::ESME_ROK,
            "cancel_sm: {r:?}"
        );
        assert_eq!(alice.query(&held, "ALICE").await.0, DELETED);

        // One receipt per id that asked, each naming the id alice was given, in its
        // text and in receipted_message_id.
        let got = alice.wait_delivered(4, T).await;
        let (deleted, delivered): (Vec<_>, Vec<_>) = got
            .into_iter()
            .partition(|d| d.receipt.as_ref().map(|r| r.stat) == Some(ReceiptStat::Deleted));
        assert_receipts(&deleted, std::slice::from_ref(&held), ReceiptStat::Deleted);
        let mut ids = vec![kept.clone()];
        ids.extend(parts);
        assert_receipts(&delivered, &ids, ReceiptStat::Delivrd);
        env.wait_docs(43, T).await;
        // Nothing of them left in Redis (the pointer keys included) but the store-wide
        // `short_seq` the first short id made: answered from their outcome documents.
        env.wait_dbsize(base + 1, T).await;
        assert_eq!(alice.query(&kept, "ALICE").await.0, DELIVERED);
        // A segment with no delivery of its own is as cancelled as its message.
        assert_eq!(alice.query(&held, "ALICE").await.0, DELETED);
        assert_eq!(
            env.doc_of(&held).await.get_str("state").unwrap(),
            "CANCELLED"
        );
        // Only the upper-case form names the message.
        let q = alice
            .request(smpp_protocol::Body::QuerySm(smpp_protocol::QuerySm {
                message_id: cs(&kept.to_lowercase()),
                source_addr_ton: 1,
                source_addr_npi: 1,
                source_addr: cs("ALICE"),
                tlvs: Vec::new(),
            }))
            .await;
        assert_eq!(q.command_status, CommandStatus::ESME_RINVMSGID, "{q:?}");
    }
);
