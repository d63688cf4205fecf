//! Expiry end to end over real SMPP, on Redis 7.0 and Valkey 9:
//! * 2 of 3 segments with a 2 s validity → one PARTIAL outcome with individually
//!   decoded segments, processed within 2 s after the deadline, receipts for both;
//! * two smppd processes on one Redis: every expired message processed exactly once;
//! * smppd SIGKILLed with pending messages and restarted after their deadline;
//! * smppd SIGKILLed holding outbox leases: its restart takes them back at once;
//! * the subscriber's connection killed and kept out while the expiries fire.

use smppd::store::Counter;
use std::collections::{HashMap, HashSet};
use std::time::Duration;

use smpp_protocol::receipt::ReceiptStat;

use crate::support::backend::both;
use crate::support::e2e::*;
use crate::support::esme::*;
use crate::support::messages::*;
use crate::support::servers::RedisKind;
use crate::support::wait_for;

/// Submits segments 1 and 2 (GSM) of a 3-part UDH8 message with a 2 s validity.
async fn two_of_three(esme: &Esme, reference: u16, dest: &str) -> Vec<String> {
    let mut ids = Vec::new();
    for (seq, text) in [(1u8, "first "), (2, "second ")] {
        let c = Some((ConcatScheme::Udh8, reference, 3, seq));
        ids.push(
            esme.submit_ok(segment("SENDER", dest, c, 0, &gsm(text), 1, TWO_SECONDS))
                .await,
        );
    }
    ids
}

fn assert_partial(
    d: &mongodb::bson::Document,
    ids: &[String],
    texts: &[&str],
    missing_seqs: &[i32],
) {
    assert_eq!(d.get_str("state").unwrap(), "PARTIAL", "{d}");
    assert_eq!(segment_ids(d), ids, "{d}");
    assert_eq!(segment_texts(d), texts, "{d}");
    assert_eq!(missing(d), missing_seqs, "{d}");
    assert!(
        d.get("text").is_none(),
        "no assembled text for a partial message: {d}"
    );
}

both!(
    two_of_three_segments_expire_into_one_partial_outcome,
    |kind: RedisKind| async move {
        let env = Env::start(kind, "partial").await;
        let app = env.start_app("node-a").await;
        let base = env.redis.dbsize();
        let rx = Esme::answering(app.addr, BindAs::Rx, "alice").await;
        let tx = Esme::answering(app.addr, BindAs::Tx, "alice").await;

        let before = env.redis_time_ms();
        let gsm_ids = two_of_three(&tx, 42, "200").await;
        // SAR, UCS-2, seqs 1 and 3: each decoded on its own.
        let sar = |seq| Some((ConcatScheme::Sar, 43u16, 3u8, seq));
        let u1 = tx
            .submit_ok(segment(
                "SENDER",
                "201",
                sar(1),
                8,
                &ucs2("Ωmega "),
                1,
                TWO_SECONDS,
            ))
            .await;
        let u3 = tx
            .submit_ok(segment(
                "SENDER",
                "201",
                sar(3),
                8,
                &ucs2("Ende 😀"),
                1,
                TWO_SECONDS,
            ))
            .await;
        let after = env.redis_time_ms();

        let docs = env.wait_docs(2, T).await;
        assert_eq!(docs.len(), 2);
        let d = env.doc_of(&gsm_ids[0]).await;
        assert_partial(&d, &gsm_ids, &["first ", "second "], &[3]);
        assert_eq!(d.get_str("scheme").unwrap(), "udh8");
        let e = env.doc_of(&u1).await;
        assert_partial(&e, &[u1.clone(), u3.clone()], &["Ωmega ", "Ende 😀"], &[2]);
        assert_eq!(e.get_str("scheme").unwrap(), "sar");
        for doc in [&d, &e] {
            // The first segment fixed the deadline: 2 s after it arrived (Redis time,
            // as smppd estimates it: ± half a TIME round trip, hence the margin).
            let deadline = doc.get_datetime("deadline").unwrap().timestamp_millis();
            assert!(
                (before + 2000 - 50..=after + 2000 + 50).contains(&deadline),
                "deadline {deadline} not 2 s after the submits ({before}..{after})"
            );
            let late = lateness_ms(doc);
            eprintln!("{kind:?}: partial outcome {late} ms after its deadline");
            assert!(
                (0..=2000).contains(&late),
                "processed {late} ms after the deadline (must be 0..=2000)"
            );
        }

        let ids = [gsm_ids, vec![u1, u3]].concat();
        let got = rx.wait_delivered(ids.len(), T).await;
        assert_receipts(&got, &ids, ReceiptStat::Delivrd);
        env.wait_dbsize(base, T).await;
        assert_eq!(rx.delivered().len(), ids.len());
        app.stop().await;
    }
);

both!(
    two_processes_process_every_expired_message_exactly_once,
    |kind: RedisKind| async move {
        let env = Env::start(kind, "twonodes").await;
        let a = env.spawn_smppd("node-a").await;
        let b = env.spawn_smppd("node-b").await;
        let base = env.redis.dbsize();
        let tx_a = Esme::answering(a.addr, BindAs::Tx, "alice").await;
        let tx_b = Esme::answering(b.addr, BindAs::Tx, "alice").await;
        let rx_a = Esme::answering(a.addr, BindAs::Rx, "alice").await;
        let rx_b = Esme::answering(b.addr, BindAs::Rx, "alice").await;

        // 12 messages: on A only, on B only, and split (segment 1 on A, 2 on B).
        const N: u16 = 12;
        let mut all_ids = Vec::new();
        for r in 0..N {
            let dest = format!("3000{r:02}");
            let c = |seq| Some((ConcatScheme::Udh8, r, 3u8, seq));
            let (first, second) = match r % 3 {
                0 => (&tx_a, &tx_a),
                1 => (&tx_b, &tx_b),
                _ => (&tx_a, &tx_b),
            };
            all_ids.push(
                first
                    .submit_ok(segment(
                        "SENDER",
                        &dest,
                        c(1),
                        0,
                        &gsm("one "),
                        1,
                        TWO_SECONDS,
                    ))
                    .await,
            );
            all_ids.push(
                second
                    .submit_ok(segment(
                        "SENDER",
                        &dest,
                        c(2),
                        0,
                        &gsm("two "),
                        1,
                        TWO_SECONDS,
                    ))
                    .await,
            );
        }

        let docs = env.wait_docs(u64::from(N), T).await;
        let total = all_ids.len();
        let receipts = || [rx_a.delivered(), rx_b.delivered()].concat();
        // Wait for every receipt, then for Redis to be empty again (every receipt
        // acknowledged, nothing left to claim or write): a second processing would
        // have had to happen by then.
        wait_for(&format!("{total} receipts"), T, async || {
            let n = receipts().len();
            if n >= total {
                Ok(())
            } else {
                Err(format!("{n} of {total}"))
            }
        })
        .await;
        env.wait_dbsize(base, T).await;
        let docs_after = env.docs().await;
        assert_eq!(docs_after.len(), docs.len());
        assert_eq!(docs.len(), usize::from(N), "one outcome per message");
        let mut by_node: HashMap<String, usize> = HashMap::new();
        let mut seen = HashSet::new();
        for d in &docs {
            assert_eq!(d.get_str("state").unwrap(), "PARTIAL");
            assert_eq!(segment_seqs(d), vec![1, 2], "{d}");
            assert_eq!(missing(d), vec![3]);
            for id in segment_ids(d) {
                assert!(seen.insert(id.clone()), "segment {id} in two outcomes");
            }
            *by_node
                .entry(d.get_str("node").unwrap().to_owned())
                .or_default() += 1;
            assert!(
                (0..=2000).contains(&lateness_ms(d)),
                "late: {}",
                lateness_ms(d)
            );
        }
        assert_eq!(
            seen.len(),
            total,
            "every acknowledged segment in an outcome"
        );
        let got = receipts();
        assert_receipts(&got, &all_ids, ReceiptStat::Delivrd);
        let max_late = docs.iter().map(lateness_ms).max().unwrap();
        eprintln!(
            "{kind:?}: two nodes: outcomes by node {by_node:?}; receipts on A {} / B {}; max lateness {max_late} ms",
            rx_a.delivered().len(),
            rx_b.delivered().len()
        );
        drop((a, b));
    }
);

both!(
    killed_node_restarted_after_the_deadlines_processes_everything,
    |kind: RedisKind| async move {
        let env = Env::start(kind, "sigkill").await;
        let mut a = env.spawn_smppd("node-a").await;
        let base = env.redis.dbsize();
        let tx = Esme::answering(a.addr, BindAs::Tx, "alice").await;
        let mut partial_ids = Vec::new();
        for r in 0..6u16 {
            partial_ids.push(two_of_three(&tx, r, &format!("4000{r:02}")).await);
        }
        // Complete single-part messages acknowledged just before the crash: their
        // outcome may or may not be written yet; either way it must be there once.
        let mut single_ids = Vec::new();
        for i in 0..3 {
            single_ids.push(
                tx.submit_ok(segment(
                    "SENDER",
                    &format!("4100{i:02}"),
                    None,
                    0,
                    &gsm("now"),
                    1,
                    "",
                ))
                .await,
            );
        }
        let last_submit = env.redis_time_ms();
        a.kill();

        // Nobody runs while every deadline passes.
        env.wait_redis_time_past(last_submit + 2000 + 200).await;
        let partial_before = env
            .outcomes()
            .count_documents(mongodb::bson::doc! { "state": "PARTIAL" })
            .await
            .unwrap();
        assert_eq!(
            partial_before, 0,
            "no node ran: nothing expired was processed"
        );

        // Finished messages the killed process had leased for writing (it died between
        // the lease and the finalize) are taken back by the restarted node at once, not
        // after the 30 s `outbox_lease`: no allowance in the wait below.
        let now = env.redis_time_ms().to_string();
        let leased: u64 = (0..smppd::store::redis::partition::COUNT)
            .map(|p| {
                let outbox = format!(
                    "{}outbox",
                    smppd::store::redis::partition::prefix(&env.prefix, p)
                );
                env.redis_cmd(&["ZCOUNT", &outbox, &format!("({now}"), "+inf"])
                    .trim()
                    .trim_start_matches(':')
                    .parse::<u64>()
                    .unwrap()
            })
            .sum();
        eprintln!("{kind:?}: {leased} finished message(s) leased by the killed process");
        let wait = T;

        let a = env.spawn_smppd("node-a").await;
        let n = partial_ids.len() + single_ids.len();
        let docs = env.wait_docs(n as u64, wait).await;
        assert_eq!(docs.len(), n);
        for ids in &partial_ids {
            let d = env.doc_of(&ids[0]).await;
            assert_partial(&d, ids, &["first ", "second "], &[3]);
            eprintln!(
                "{kind:?}: after SIGKILL + restart: processed {} ms after its deadline",
                lateness_ms(&d)
            );
        }
        for id in &single_ids {
            assert_eq!(env.doc_of(id).await.get_str("state").unwrap(), "DELIVERED");
        }

        // No receiver bound yet: the receipts wait in Redis, then go to the RX that
        // binds to the new process.
        let rx = Esme::answering(a.addr, BindAs::Rx, "alice").await;
        let all: Vec<String> = partial_ids
            .iter()
            .flatten()
            .chain(&single_ids)
            .cloned()
            .collect();
        // A single-part message's receipt is held until its submit_sm_resp is queued;
        // when the SIGKILL came first (a loaded machine), it goes out when its hold
        // ends: receipt lease (5 s x 3 x 3 tries + 5 s) + 5 s after its submit.
        let hold = smppd::app::receipt_lease(Duration::from_secs(5), 2) + Duration::from_secs(5);
        let got = rx.wait_delivered(all.len(), hold + T).await;
        assert_receipts(&got, &all, ReceiptStat::Delivrd);
        env.wait_dbsize(base, T).await;
        assert_eq!(rx.delivered().len(), all.len());
        assert_eq!(env.docs().await.len(), n);
    }
);

/// Scores of every partition's outbox ZSET ("leased until" ms, or when the entry
/// became due).
fn outbox_scores(env: &Env) -> Vec<i64> {
    (0..smppd::store::redis::partition::COUNT)
        .flat_map(|p| partition_outbox_scores(env, p))
        .collect()
}

fn partition_outbox_scores(env: &Env, p: usize) -> Vec<i64> {
    let outbox = format!(
        "{}outbox",
        smppd::store::redis::partition::prefix(&env.prefix, p)
    );
    let reply = env.redis_cmd(&["ZRANGE", &outbox, "0", "-1", "WITHSCORES"]);
    let items: Vec<&str> = reply
        .split("\r\n")
        .filter(|l| !l.is_empty() && !l.starts_with('*') && !l.starts_with('$'))
        .collect();
    items
        .chunks(2)
        .map(|p| p[1].trim_start_matches(',').parse::<f64>().unwrap() as i64)
        .collect()
}

both!(
    a_restarted_node_takes_back_its_own_outbox_leases_at_once,
    |kind: RedisKind| async move {
        let env = Env::start(kind, "ownleases").await;
        // MongoDB unreachable for the first run: its writer leases the finished
        // messages and keeps retrying the insert, so the leases run when it dies.
        let mut a = env
            .spawn_smppd_with_mongo("node-a", "mongodb://127.0.0.1:1/")
            .await;
        let tx = Esme::answering(a.addr, BindAs::Tx, "alice").await;
        let mut ids = Vec::new();
        for i in 0..3 {
            let sm = segment("SENDER", &format!("4200{i:02}"), None, 0, &gsm("x"), 1, "");
            ids.push(tx.submit_ok(sm).await);
        }
        let lease_end = wait_for("a leased outbox entry", T, async || {
            let now = env.redis_time_ms();
            let scores = outbox_scores(&env);
            // The writer retries its first batch forever: later ones stay unleased.
            let leased: Vec<i64> = scores.iter().copied().filter(|s| *s > now).collect();
            match leased.iter().min() {
                Some(first) if scores.len() == ids.len() => Ok(*first),
                _ => Err(format!("outbox {scores:?} at {now}")),
            }
        })
        .await;
        a.kill();

        // Same node_id, new epoch: it takes those leases back at start instead of
        // waiting ~30 s (`outbox_lease`) for them to run out.
        let _a = env.spawn_smppd("node-a").await;
        let docs = env.wait_docs(ids.len() as u64, T).await;
        let written = env.redis_time_ms();
        assert_eq!(docs.len(), ids.len());
        assert!(
            written < lease_end,
            "{kind:?}: outcomes written only {} ms after the old lease ran out",
            written - lease_end
        );
        eprintln!(
            "{kind:?}: outcomes written {} ms before the old leases would have run out",
            lease_end - written
        );
        for id in &ids {
            assert_eq!(env.doc_of(id).await.get_str("state").unwrap(), "DELIVERED");
        }
    }
);

both!(
    expiries_due_while_the_subscriber_is_disconnected_are_still_processed,
    |kind: RedisKind| async move {
        let env = Env::start(kind, "pubsubkill").await;
        let app = env.start_app("node-a").await;
        let base = env.redis.dbsize();
        let rx = Esme::answering(app.addr, BindAs::Rx, "alice").await;
        let tx = Esme::answering(app.addr, BindAs::Tx, "alice").await;
        let subscriptions = app.store.counts()[Counter::Subscriptions];

        let mut ids = Vec::new();
        for r in 0..4u16 {
            ids.push(two_of_three(&tx, r, &format!("5000{r:02}")).await);
        }
        let last_submit = env.redis_time_ms();
        // Kill the subscriber and keep it out (SUBSCRIBE refused by ACL) until every
        // deadline passed and Redis fired the expiry events to nobody.
        assert!(env
            .redis_cmd(&[
                "ACL",
                "SETUSER",
                "default",
                "-subscribe",
                "-psubscribe",
                "-ssubscribe"
            ])
            .starts_with("+OK"));
        assert!(
            env.redis.kill_pubsub_clients() >= 1,
            "a subscriber was connected"
        );
        env.wait_redis_time_past(last_submit + 2000).await;
        // Timers: keys `P{t}:t:#<bucket>` (Redis 7.0) or fields of a partition's hash
        // `P{t}:timers`, which goes away with its last field.
        let timer_keys = format!("{}{{*}}:t:*", env.prefix);
        let timer_hashes = format!("{}{{*}}:timers", env.prefix);
        wait_for("the timers to expire", T, async || {
            env.redis_cmd(&["KEYS", &timer_keys]).starts_with("*0")
                && env.redis_cmd(&["KEYS", &timer_hashes]).starts_with("*0")
        })
        .await;
        // The node's own timer heap runs the claim-due pass at the deadlines on both
        // backends (the heap knew them from `P:armed`), no event needed: the events
        // that went to nobody are only the backstop, and the recovery pass after the
        // resubscription finds nothing left.
        assert_eq!(env.wait_docs(ids.len() as u64, T).await.len(), ids.len());

        // Let it back in: it resubscribes and runs its recovery pass, which finds
        // nothing left to claim (each group is claimed once).
        assert!(env
            .redis_cmd(&[
                "ACL",
                "SETUSER",
                "default",
                "+subscribe",
                "+psubscribe",
                "+ssubscribe"
            ])
            .starts_with("+OK"));
        let docs = env.wait_docs(ids.len() as u64, T).await;
        assert_eq!(docs.len(), ids.len());
        for group in &ids {
            let d = env.doc_of(&group[0]).await;
            assert_partial(&d, group, &["first ", "second "], &[3]);
        }
        // (The documents were there before it could resubscribe.)
        wait_for("it to resubscribe", T, async || {
            app.store.counts()[Counter::Subscriptions] > subscriptions
        })
        .await;
        let all: Vec<String> = ids.concat();
        let got = rx.wait_delivered(all.len(), T).await;
        assert_receipts(&got, &all, ReceiptStat::Delivrd);
        env.wait_dbsize(base, T).await;
        assert_eq!(rx.delivered().len(), all.len());
        app.stop().await;
    }
);

both!(
    one_of_two_nodes_killed_the_other_processes_its_messages,
    |kind: RedisKind| async move {
        let env = Env::start(kind, "onekilled").await;
        let a = env.spawn_smppd("node-a").await;
        let mut b = env.spawn_smppd("node-b").await;
        let base = env.redis.dbsize();
        let tx_a = Esme::answering(a.addr, BindAs::Tx, "alice").await;
        let tx_b = Esme::answering(b.addr, BindAs::Tx, "alice").await;
        let rx_a = Esme::answering(a.addr, BindAs::Rx, "alice").await;

        // Every message starts on B (on Redis 7.0, B armed the one-shot timers);
        // some continue on A.
        let mut ids = Vec::new();
        for r in 0..6u16 {
            let dest = format!("8000{r:02}");
            let c = |seq| Some((ConcatScheme::Udh8, r, 3u8, seq));
            let second = if r % 2 == 0 { &tx_a } else { &tx_b };
            let one = tx_b
                .submit_ok(segment(
                    "SENDER",
                    &dest,
                    c(1),
                    0,
                    &gsm("one "),
                    1,
                    TWO_SECONDS,
                ))
                .await;
            let two = second
                .submit_ok(segment(
                    "SENDER",
                    &dest,
                    c(2),
                    0,
                    &gsm("two "),
                    1,
                    TWO_SECONDS,
                ))
                .await;
            ids.push(vec![one, two]);
        }
        b.kill();

        let docs = env.wait_docs(ids.len() as u64, T).await;
        assert_eq!(docs.len(), ids.len());
        let mut late = Vec::new();
        for group in &ids {
            let d = env.doc_of(&group[0]).await;
            assert_partial(&d, group, &["one ", "two "], &[3]);
            assert_eq!(
                d.get_str("node").unwrap(),
                "node-a",
                "the survivor processed it"
            );
            late.push(lateness_ms(&d));
        }
        eprintln!("{kind:?}: node B killed, node A processed its messages; lateness ms {late:?}");
        assert!(
            late.iter().all(|l| (0..=2000).contains(l)),
            "lateness {late:?} ms"
        );
        let all: Vec<String> = ids.concat();
        let got = rx_a.wait_delivered(all.len(), T).await;
        assert_receipts(&got, &all, ReceiptStat::Delivrd);
        env.wait_dbsize(base, T).await;
        assert_eq!(rx_a.delivered().len(), all.len());
        drop(a);
    }
);
