//! `[[simulate]]` profiles with `intermediate = true` over real SMPP: a segment that
//! asks for intermediate notifications (registered_delivery bit 4) gets an ENROUTE
//! one (esm_class 0x20) when it is accepted, then its simulated final receipt; one
//! that does not, or whose profile sends none, gets the final receipt only.

use std::collections::HashMap;

use smpp_protocol::receipt::ReceiptStat;

use crate::support::backend::both;
use crate::support::e2e::*;
use crate::support::esme::*;
use crate::support::messages::*;
use crate::support::servers::RedisKind;

/// esm_class of an intermediate delivery notification (reference §5.2.12).
const INTERMEDIATE: u8 = 0x20;

both!(
    an_intermediate_profile_sends_enroute_before_the_final_receipt_when_asked,
    |kind: RedisKind| async move {
        let mut env = Env::start(kind, "sim-intermediate").await;
        env.config.toml(
            "[[simulate]]\nname = \"notify\"\ndelay = \"1s\"\nintermediate = true\n\
             outcomes = [ { stat = \"DELIVRD\" } ]\n\n\
             [[simulate]]\nname = \"quiet\"\ndelay = \"1s\"\n\
             outcomes = [ { stat = \"DELIVRD\" } ]\n\n\
             [[route]]\ndestination = \"^4477003\"\ntarget = \"simulate:notify\"\n\n\
             [[route]]\ndestination = \"^4477004\"\ntarget = \"simulate:quiet\"\n",
        );
        let a = env.start_app("node-a").await;
        let b = env.start_app("node-b").await;
        let alice = Esme::answering(a.addr, BindAs::Trx, "alice").await;
        // No receiver of alice's on node B: what it holds is made due in Redis for
        // node A, where what A holds is sent from its memory.
        let alice_b = Esme::answering(b.addr, BindAs::Tx, "alice").await;
        let sm = |dest: &str, rd: u8| segment("ALICE", dest, None, 0, &gsm("sim"), rd, "");
        let asked = alice.submit_ok(sm("447700300001", 0x11)).await;
        let final_only = alice.submit_ok(sm("447700300002", 0x01)).await;
        let not_sent = alice.submit_ok(sm("447700400001", 0x11)).await;
        // Each segment of a multi-part message gets its own (through node B).
        let mut parts = Vec::new();
        for seq in 1..=2u8 {
            let sm = segment(
                "ALICE",
                "447700300003",
                Some((ConcatScheme::Udh8, 9, 2, seq)),
                0,
                &gsm("p"),
                0x11,
                "",
            );
            parts.push(alice_b.submit_ok(sm).await);
        }
        let mut notified = vec![asked.clone()];
        notified.extend(parts.iter().cloned());
        let mut finals = vec![asked.clone(), final_only, not_sent];
        finals.extend(parts);

        let got = alice.wait_delivered(notified.len() + finals.len(), T).await;
        let (notes, receipts): (Vec<_>, Vec<_>) =
            got.into_iter().partition(|d| d.esm_class == INTERMEDIATE);
        assert_receipts(&receipts, &finals, ReceiptStat::Delivrd);
        let mut first_note = HashMap::new();
        for n in &notes {
            let id = n.receipted_message_id.clone().unwrap();
            let r = n.receipt.as_ref().unwrap();
            assert_eq!((r.stat, r.id.as_str()), (ReceiptStat::Enroute, id.as_str()));
            assert_eq!(n.message_state, Some(ReceiptStat::Enroute.message_state()));
            assert!(first_note.insert(id, n.at).is_none(), "twice: {n:?}");
        }
        let mut have: Vec<&String> = first_note.keys().collect();
        have.sort();
        notified.sort();
        assert_eq!(have, notified.iter().collect::<Vec<_>>());
        // The notification first, then the final receipt (a second later).
        for r in &receipts {
            let id = r.receipted_message_id.as_ref().unwrap();
            if let Some(at) = first_note.get(id) {
                assert!(*at < r.at, "{id}: the final receipt came first");
            }
        }
        env.wait_docs(4, T).await;
        assert_eq!(alice.delivered().len(), notified.len() + finals.len());
    }
);
