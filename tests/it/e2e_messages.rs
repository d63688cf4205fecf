//! End to end over real SMPP through the whole smppd (sessions + store), on Redis 7.0
//! and Valkey 9 with the Mongo-protocol server:
//! * complete UDH 8-bit, UDH 16-bit and SAR messages, in and out of order, GSM and
//!   UCS-2 (surrogate pairs split across segments), submitted on a TX bind while an
//!   RX bind of the same account takes the receipts;
//! * duplicates, invalid validity periods, query_sm, cancel_sm, replace_sm.
//!
//! Every scenario ends with Redis holding as many keys as before it started.

use std::collections::HashMap;

use smpp_protocol::receipt::ReceiptStat;
use smpp_protocol::{
    Body, CancelSm, CommandStatus, DataSm, DestAddress, QuerySm, ReplaceSm, SubmitMulti, Tlv,
};

use crate::support::backend::both;
use crate::support::e2e::*;
use crate::support::esme::*;
use crate::support::messages::*;
use crate::support::servers::RedisKind;

const LONG: &str = ""; // account default validity (1 h)

/// A message of the complete-delivery scenario.
struct Msg {
    scheme: Option<ConcatScheme>,
    reference: u16,
    dc: u8,
    /// User data of each segment, seq 1..=n.
    parts: Vec<Vec<u8>>,
    /// Submission order (seqs).
    order: Vec<u8>,
    expected: String,
    dest: String,
}

fn gsm_parts(parts: &[&str]) -> (Vec<Vec<u8>>, String) {
    (parts.iter().map(|p| gsm(p)).collect(), parts.concat())
}

/// UCS-2 text cut at byte offsets (which may fall between the two halves of a
/// surrogate pair).
fn ucs2_parts(text: &str, cuts: &[usize]) -> (Vec<Vec<u8>>, String) {
    (split_at(&ucs2(text), cuts), text.to_owned())
}

fn messages() -> Vec<Msg> {
    let mut out = Vec::new();
    let mut add =
        |scheme, reference, dc, (parts, expected): (Vec<Vec<u8>>, String), order: &[u8]| {
            let i = out.len();
            out.push(Msg {
                scheme,
                reference,
                dc,
                parts,
                order: order.to_vec(),
                expected,
                dest: format!("4477009000{i:02}"),
            })
        };
    // "Grüße " is 6 UTF-16 units = 12 bytes; 😀 is a surrogate pair at bytes 12..16:
    // a cut at 14 separates its halves.
    let emoji = "Grüße 😀 aus Köln";
    add(
        Some(ConcatScheme::Udh8),
        7,
        0,
        gsm_parts(&["Hello @£$¥ world, ", "this is part two € ", "and the end."]),
        &[1, 2, 3],
    );
    add(
        Some(ConcatScheme::Udh16),
        0x1234,
        8,
        ucs2_parts(emoji, &[14]),
        &[2, 1],
    );
    add(
        Some(ConcatScheme::Sar),
        0x0102,
        0,
        gsm_parts(&["SAR one, ", "SAR two, ", "SAR three {braces}"]),
        &[3, 1, 2],
    );
    add(
        Some(ConcatScheme::Udh8),
        200,
        8,
        ucs2_parts("Привет, μήνυμα σε τρία μέρη", &[10, 30]),
        &[2, 3, 1],
    );
    add(
        Some(ConcatScheme::Udh16),
        0xBEEF,
        0,
        gsm_parts(&["sixteen bit ", "reference"]),
        &[1, 2],
    );
    add(
        Some(ConcatScheme::Sar),
        9,
        8,
        ucs2_parts("SAR 🎉 party", &[10]),
        &[1, 2],
    );
    add(None, 0, 0, gsm_parts(&["single part message"]), &[1]);
    out
}

both!(
    complete_messages_are_assembled_and_receipted_to_another_bind,
    |kind: RedisKind| async move {
        let env = Env::start(kind, "complete").await;
        let app = env.start_app("node-a").await;
        let base = env.redis.dbsize();
        let rx = Esme::answering(app.addr, BindAs::Rx, "alice").await;
        let tx = Esme::answering(app.addr, BindAs::Tx, "alice").await;

        let msgs = messages();
        // Segments of all messages interleaved round-robin, each message in its own order.
        let mut queue: Vec<(usize, u8)> = Vec::new();
        let longest = msgs.iter().map(|m| m.order.len()).max().unwrap();
        for k in 0..longest {
            for (i, m) in msgs.iter().enumerate() {
                if let Some(&seq) = m.order.get(k) {
                    queue.push((i, seq));
                }
            }
        }
        // ids[i][seq-1] = message_id; first[i] = the id of the first-arriving segment.
        let mut ids: Vec<Vec<String>> = msgs
            .iter()
            .map(|m| vec![String::new(); m.parts.len()])
            .collect();
        let mut first: Vec<Option<String>> = vec![None; msgs.len()];
        for (i, seq) in queue {
            let m = &msgs[i];
            let total = m.parts.len() as u8;
            let concat = m.scheme.map(|s| (s, m.reference, total, seq));
            let sm = segment(
                "SENDER",
                &m.dest,
                concat,
                m.dc,
                &m.parts[seq as usize - 1],
                1,
                LONG,
            );
            let id = tx.submit_ok(sm).await;
            first[i].get_or_insert(id.clone());
            ids[i][seq as usize - 1] = id;
        }
        let all_ids: Vec<String> = ids.iter().flatten().cloned().collect();
        let unique: std::collections::HashSet<_> = all_ids.iter().collect();
        assert_eq!(unique.len(), all_ids.len(), "message_ids are unique");

        let docs = env.wait_docs(msgs.len() as u64, T).await;
        assert_eq!(docs.len(), msgs.len(), "one document per message");
        for (i, m) in msgs.iter().enumerate() {
            let d = env.doc_of(&ids[i][0]).await;
            let what = format!("message {i} ({:?})", m.scheme);
            assert_eq!(d.get_str("state").unwrap(), "DELIVERED", "{what}");
            assert_eq!(
                d.get_str("text").unwrap(),
                m.expected,
                "{what}: assembled text"
            );
            // A multi-part message's _id is its gid, which every segment's id names
            // (the gid and 2 hex digits of its seq); a single-part one's its id.
            let gid = d.get_str("_id").unwrap();
            if m.scheme.is_some() {
                for (k, id) in ids[i].iter().enumerate() {
                    assert_eq!(id, &format!("{gid}{:02X}", k + 1), "{what}: segment id");
                }
            } else {
                assert_eq!(gid, first[i].as_deref().unwrap(), "{what}: _id");
            }
            assert_eq!(d.get_str("account").unwrap(), "alice");
            assert_eq!(
                d.get_document("source").unwrap().get_str("addr").unwrap(),
                "SENDER"
            );
            assert_eq!(
                d.get_document("dest").unwrap().get_str("addr").unwrap(),
                m.dest
            );
            assert_eq!(d.get_i32("total").unwrap(), m.parts.len() as i32, "{what}");
            match m.scheme {
                Some(s) => {
                    assert_eq!(d.get_str("scheme").unwrap(), scheme_name(s), "{what}");
                    assert_eq!(
                        d.get_i32("reference").unwrap(),
                        i32::from(m.reference),
                        "{what}"
                    );
                }
                None => assert!(d.is_null("scheme"), "{what}: no scheme"),
            }
            let n = m.parts.len() as i32;
            assert_eq!(
                segment_seqs(&d),
                (1..=n).collect::<Vec<_>>(),
                "{what}: every segment once"
            );
            assert_eq!(segment_ids(&d), ids[i], "{what}: segment message_ids");
            assert!(missing(&d).is_empty(), "{what}: nothing missing");
            assert_eq!(d.get_str("node").unwrap(), "node-a");
            for s in d.get_array("segments").unwrap() {
                let s = s.as_document().unwrap();
                assert_eq!(s.get_i32("data_coding").unwrap(), i32::from(m.dc), "{what}");
            }
        }
        // The half surrogate pair: not decodable on its own, kept as bytes.
        let emoji_doc = env.doc_of(&ids[1][0]).await;
        assert_eq!(segment_texts(&emoji_doc), vec!["<bytes>", "<bytes>"]);

        // One DELIVRD receipt per segment, on the RX bind (the TX cannot take any).
        let got = rx.wait_delivered(all_ids.len(), T).await;
        assert_receipts(&got, &all_ids, ReceiptStat::Delivrd);
        for r in &got {
            // A receipt goes from the handset back to the originator.
            assert_eq!(r.dest, "SENDER");
            assert!(r.source.starts_with("4477009000"), "{r:?}");
        }
        env.wait_dbsize(base, T).await;
        assert_eq!(rx.delivered().len(), all_ids.len(), "no receipt twice");
        assert!(tx.delivered().is_empty());
        app.stop().await;
    }
);

fn data_sm(dest: &str, text: &str) -> DataSm {
    DataSm {
        source_addr_ton: 1,
        source_addr_npi: 1,
        source_addr: cs("SENDER"),
        dest_addr_ton: 1,
        dest_addr_npi: 1,
        destination_addr: cs(dest),
        registered_delivery: 1,
        tlvs: vec![Tlv::MessagePayload(gsm(text).into())],
        ..DataSm::default()
    }
}

fn submit_multi(dests: &[&str], text: &str) -> SubmitMulti {
    SubmitMulti {
        source_addr_ton: 1,
        source_addr_npi: 1,
        source_addr: cs("SENDER"),
        dest_address: dests
            .iter()
            .map(|d| DestAddress::SmeAddress {
                dest_addr_ton: 1,
                dest_addr_npi: 1,
                destination_addr: cs(d),
            })
            .collect(),
        registered_delivery: 1,
        short_message: gsm(text).into(),
        ..SubmitMulti::default()
    }
}

fn query(id: &str, source: &str) -> Body {
    Body::QuerySm(QuerySm {
        message_id: cs(id),
        source_addr_ton: 1,
        source_addr_npi: 1,
        source_addr: cs(source),
        tlvs: Vec::new(),
    })
}

fn query_state(r: &smpp_protocol::Pdu) -> (u8, String) {
    assert_eq!(r.command_status, CommandStatus::ESME_ROK, "query_sm: {r:?}");
    match &r.body {
        Body::QuerySmResp(Some(q)) => {
            (q.message_state, q.final_date.to_string_lossy().into_owned())
        }
        other => panic!("query_sm_resp expected, got {other:?}"),
    }
}

/// Receipts among `got` for these ids.
fn receipts_for(got: &[Delivered], ids: &[String]) -> Vec<Delivered> {
    got.iter()
        .filter(|d| {
            d.receipted_message_id
                .as_ref()
                .is_some_and(|r| ids.contains(r))
        })
        .cloned()
        .collect()
}

both!(
    duplicates_validity_query_cancel_replace,
    |kind: RedisKind| async move {
        let env = Env::start(kind, "ops").await;
        let app = env.start_app("node-a").await;
        let base = env.redis.dbsize();
        // Submits on a TRX; receipts may go to it or to the RX (any bind of alice).
        let trx = Esme::answering(app.addr, BindAs::Trx, "alice").await;
        let rx = Esme::answering(app.addr, BindAs::Rx, "alice").await;
        let src = "SENDER";

        // --- Duplicate segment: stored once; the second submit gets ESME_ROK with the
        //     first submit's message_id (ARCHITECTURE.md, "Accepting a segment").
        let c = |seq| Some((ConcatScheme::Udh8, 50u16, 2u8, seq));
        let d1 = trx
            .submit_ok(segment(src, "100", c(1), 0, &gsm("dup one "), 1, LONG))
            .await;
        let d1_again = trx
            .submit_ok(segment(src, "100", c(1), 0, &gsm("dup one "), 1, LONG))
            .await;
        assert_eq!(d1_again, d1, "a resent segment gets the first message_id");
        let d2 = trx
            .submit_ok(segment(src, "100", c(2), 0, &gsm("two"), 1, LONG))
            .await;
        let dup_doc = env.wait_docs(1, T).await.remove(0);
        assert_eq!(dup_doc.get_str("state").unwrap(), "DELIVERED");
        assert_eq!(
            segment_seqs(&dup_doc),
            vec![1, 2],
            "the duplicate is stored once"
        );
        assert_eq!(dup_doc.get_str("text").unwrap(), "dup one two");
        let dup_ids = vec![d1.clone(), d2.clone()];

        // --- Validity periods that are past or malformed: ESME_RINVEXPIRY; the bind
        //     stays up and the next submit works.
        for bad in [
            "200101000000000+", // absolute, in 2020
            "000000000000000R", // relative zero: not in the future
            "261399250000000+", // month 13
            "garbage",          // wrong length
        ] {
            let r = trx
                .submit(segment(src, "101", None, 0, &gsm("late"), 1, bad))
                .await;
            assert_eq!(
                r.command_status,
                CommandStatus::ESME_RINVEXPIRY,
                "validity {bad:?}: {r:?}"
            );
        }
        let ok_after = trx
            .submit_ok(segment(src, "101", None, 0, &gsm("fine"), 1, LONG))
            .await;
        assert_eq!(
            trx.enquire_link().await.command_status,
            CommandStatus::ESME_ROK
        );

        // --- query_sm: pending (ENROUTE, no final date), then delivered.
        let q = |seq| Some((ConcatScheme::Sar, 77u16, 2u8, seq));
        let q1 = trx
            .submit_ok(segment(src, "102", q(1), 0, &gsm("query "), 1, LONG))
            .await;
        let (state, final_date) = query_state(&trx.request(query(&q1, src)).await);
        assert_eq!(
            (state, final_date.as_str()),
            (1, ""),
            "pending message is ENROUTE"
        );
        let q2 = trx
            .submit_ok(segment(src, "102", q(2), 0, &gsm("me"), 1, LONG))
            .await;
        env.wait_docs(3, T).await;
        let q_doc = env.doc_of(&q1).await;
        assert_eq!(q_doc.get_str("text").unwrap(), "query me");
        let (state, final_date) = query_state(&trx.request(query(&q1, src)).await);
        assert_eq!(state, 2, "delivered message");
        assert_eq!(
            final_date.len(),
            16,
            "final_date is an absolute time: {final_date:?}"
        );
        let unknown = trx.request(query("FFFFFFFF000000000000", src)).await;
        assert_eq!(unknown.command_status, CommandStatus::ESME_RINVMSGID);

        // --- cancel_sm of a pending message: CANCELLED outcome; DELETED receipts for
        //     the segments that asked for one (seg 1: always; seg 2: none).
        let k = |seq| Some((ConcatScheme::Udh16, 0x4242u16, 3u8, seq));
        let k1 = trx
            .submit_ok(segment(src, "103", k(1), 0, &gsm("cancel "), 1, LONG))
            .await;
        let k2 = trx
            .submit_ok(segment(src, "103", k(2), 0, &gsm("me"), 0, LONG))
            .await;
        let cancel = |id: &str| {
            Body::CancelSm(CancelSm {
                message_id: cs(id),
                source_addr_ton: 1,
                source_addr_npi: 1,
                source_addr: cs(src),
                ..CancelSm::default()
            })
        };
        let r = trx.request(cancel(&k1)).await;
        assert_eq!(
            r.command_status,
            CommandStatus::ESME_ROK,
            "cancel_sm: {r:?}"
        );
        env.wait_docs(4, T).await;
        let k_doc = env.doc_of(&k1).await;
        assert_eq!(k_doc.get_str("state").unwrap(), "CANCELLED");
        assert_eq!(segment_ids(&k_doc), vec![k1.clone(), k2.clone()]);
        assert_eq!(missing(&k_doc), vec![3]);
        assert!(
            k_doc.get("text").is_none(),
            "no assembled text for a cancelled message"
        );
        let r = trx.request(cancel(&k1)).await;
        assert_eq!(
            r.command_status,
            CommandStatus::ESME_RCANCELFAIL,
            "second cancel: {r:?}"
        );
        let (state, _) = query_state(&trx.request(query(&k2, src)).await);
        assert_eq!(state, 4, "cancelled message is DELETED");

        // --- replace_sm of a pending segment: the new text is what gets delivered.
        let p = |seq| Some((ConcatScheme::Udh8, 88u16, 2u8, seq));
        let p1 = trx
            .submit_ok(segment(src, "104", p(1), 0, &gsm("old text "), 0, LONG))
            .await;
        let mut new_sm = vec![5, 0, 3, 88, 2, 1];
        new_sm.extend_from_slice(&gsm("new text "));
        let replace = |id: &str, sm: Vec<u8>| {
            Body::ReplaceSm(ReplaceSm {
                message_id: cs(id),
                source_addr_ton: 1,
                source_addr_npi: 1,
                source_addr: cs(src),
                registered_delivery: 1,
                short_message: sm.into(),
                ..ReplaceSm::default()
            })
        };
        // A replacement whose UDH names another segment — another reference, seq or
        // total, the 16-bit form, or no concatenation IE at all — is refused, and
        // the segment keeps its text.
        for (what, udh) in [
            ("reference", vec![5, 0, 3, 89, 2, 1]),
            ("seq", vec![5, 0, 3, 88, 2, 2]),
            ("total", vec![5, 0, 3, 88, 3, 1]),
            ("16-bit form", vec![6, 8, 4, 0, 88, 2, 1]),
            ("no concatenation IE", vec![3, 0x24, 1, 0]),
        ] {
            let mut sm = udh;
            sm.extend_from_slice(&gsm("moved "));
            let r = trx.request(replace(&p1, sm)).await;
            assert_eq!(
                r.command_status,
                CommandStatus::ESME_RREPLACEFAIL,
                "replace_sm with another {what}: {r:?}"
            );
        }
        let r = trx.request(replace(&p1, new_sm.clone())).await;
        assert_eq!(
            r.command_status,
            CommandStatus::ESME_ROK,
            "replace_sm: {r:?}"
        );
        let p2 = trx
            .submit_ok(segment(src, "104", p(2), 0, &gsm("end"), 1, LONG))
            .await;
        env.wait_docs(5, T).await;
        let p_doc = env.doc_of(&p1).await;
        assert_eq!(p_doc.get_str("state").unwrap(), "DELIVERED");
        assert_eq!(p_doc.get_str("text").unwrap(), "new text end");
        let r = trx.request(replace(&p1, new_sm)).await;
        assert_eq!(
            r.command_status,
            CommandStatus::ESME_RREPLACEFAIL,
            "replace after delivery: {r:?}"
        );

        // --- data_sm (text in message_payload) works like submit_sm; its lifetime is
        // qos_time_to_live (120 s here, not the account's default of 1 h).
        let mut ds_sm = data_sm("105", "data_sm payload");
        ds_sm.tlvs.push(Tlv::QosTimeToLive(120));
        let before = env.redis_time_ms();
        let r = trx.request(Body::DataSm(ds_sm)).await;
        let after = env.redis_time_ms();
        assert_eq!(r.command_status, CommandStatus::ESME_ROK, "data_sm: {r:?}");
        let ds = message_id_of(&r);
        env.wait_docs(6, T).await;
        let ds_doc = env.doc_of(&ds).await;
        assert_eq!(ds_doc.get_str("state").unwrap(), "DELIVERED");
        assert_eq!(ds_doc.get_str("text").unwrap(), "data_sm payload");
        let dl = ds_doc.get_datetime("deadline").unwrap().timestamp_millis();
        assert!(
            (before + 120_000 - 50..=after + 120_000 + 50).contains(&dl),
            "data_sm deadline {dl} is not qos_time_to_live after {before}..{after}"
        );

        // --- submit_multi: each destination its own message.
        let r = trx
            .request(Body::SubmitMulti(submit_multi(&["106", "107"], "to two")))
            .await;
        assert_eq!(
            r.command_status,
            CommandStatus::ESME_ROK,
            "submit_multi: {r:?}"
        );
        let Body::SubmitMultiResp(Some(m)) = &r.body else {
            panic!("submit_multi_resp expected: {r:?}")
        };
        assert!(m.unsuccess_sme.is_empty(), "{m:?}");
        let multi = m.message_id.to_string_lossy().into_owned();
        env.wait_docs(8, T).await;
        let mut multi_ids = Vec::new();
        for dest in ["106", "107"] {
            let d = env
                .outcomes()
                .find_one(mongodb::bson::doc! { "dest.addr": dest })
                .await
                .unwrap()
                .unwrap_or_else(|| panic!("no outcome for destination {dest}"));
            assert_eq!(d.get_str("state").unwrap(), "DELIVERED");
            assert_eq!(d.get_str("text").unwrap(), "to two");
            multi_ids.extend(segment_ids(&d));
        }
        assert_eq!(
            multi_ids[0], multi,
            "the first destination's id is the one answered"
        );

        // --- Receipts, over both receiving binds.
        // Both submit_multi destinations' receipts name the one id the ESME was given.
        let delivered_ids = [dup_ids, vec![ok_after, q1, q2], vec![p1, p2, ds]].concat();
        let want = delivered_ids.len() + multi_ids.len() + 1; // + the DELETED one of k1
        let mut got = Vec::new();
        env.wait_dbsize(base, T).await;
        for b in [&trx, &rx] {
            got.extend(b.delivered());
        }
        assert_eq!(got.len(), want, "receipts: {got:#?}");
        assert_receipts(
            &receipts_for(&got, &delivered_ids),
            &delivered_ids,
            ReceiptStat::Delivrd,
        );
        let multi_receipts = receipts_for(&got, std::slice::from_ref(&multi));
        assert_eq!(multi_receipts.len(), multi_ids.len(), "{multi_receipts:#?}");
        for r in &multi_receipts {
            assert_receipts(
                std::slice::from_ref(r),
                std::slice::from_ref(&multi),
                ReceiptStat::Delivrd,
            );
        }
        assert_receipts(
            &receipts_for(&got, std::slice::from_ref(&k1)),
            &[k1],
            ReceiptStat::Deleted,
        );
        let per_bind: HashMap<&str, usize> =
            [("trx", trx.delivered().len()), ("rx", rx.delivered().len())].into();
        eprintln!("receipts per bind: {per_bind:?}");
        assert_eq!(env.docs().await.len(), 8);
        app.stop().await;
    }
);

// SMPP has one message_id per submit_multi: the ESME can only match receipts to what
// it was given, so every destination's receipt names the submit_multi_resp's id.
both!(
    submit_multi_receipts_name_the_message_id_the_esme_was_given,
    |kind: RedisKind| async move {
        let env = Env::start(kind, "multiids").await;
        let app = env.start_app("node-a").await;
        let trx = Esme::answering(app.addr, BindAs::Trx, "alice").await;
        let r = trx
            .request(Body::SubmitMulti(submit_multi(&["106", "107"], "to two")))
            .await;
        let Body::SubmitMultiResp(Some(m)) = &r.body else {
            panic!("submit_multi_resp expected: {r:?}")
        };
        let id = m.message_id.to_string_lossy().into_owned();
        let got = trx.wait_delivered(2, T).await;
        assert_eq!(got.len(), 2, "{got:#?}");
        for d in &got {
            assert_eq!(
                d.receipted_message_id.as_deref(),
                Some(id.as_str()),
                "{d:?}"
            );
            let text_id = d.receipt.as_ref().map(|r| r.id.as_str());
            assert_eq!(text_id, Some(id.as_str()), "receipt text id: {d:?}");
        }
        app.stop().await;
    }
);
