//! Accepting segments and completing messages, against real Redis 7.0 and Valkey 9
//! plus a real MongoDB-protocol server.

use std::time::Duration;

use service::{ConcatScheme, MessageService, ServiceError};
use smppd::store::Counter;
use smppd::{service, store};

use crate::support::backend::both;
use crate::support::backend::wait_dbsize;
use crate::support::harness::*;
use crate::support::messages::{gid_of, segment_texts, ucs2};
use crate::support::wait_for;

const T: Duration = Duration::from_secs(20);

both!(
    standalone complete_udh8_udh16_and_sar_messages_in_and_out_of_order_are_delivered_whole,
    |kind| async move {
        let env = Env::start(kind);
        let sink = TestSink::new(true);
        let run = Running::start(env.settings("complete"), sink.clone()).await;
        let base = env.redis.dbsize();
        // The start's own release pass (P:fresh, empty) is behind us.
        let store = run.store.clone();
        wait_for("the recovery pass", T, || {
            let store = store.clone();
            async move { store.counts()[Counter::RecoveryPasses] >= 1 }
        })
        .await;

        // GSM, UDH 8-bit, in order.
        let gsm = [b"Hello ".as_slice(), b"long ", b"world"];
        // UCS-2, UDH 16-bit, out of order, a surrogate pair split between 1 and 2.
        let u = ucs2("ab\u{1F600}cd");
        let ucs = [&u[0..6], &u[6..10], &u[10..12]];
        // GSM, SAR, reversed.
        let sar = [b"one ".as_slice(), b"two ", b"three"];

        let mut first_ids = Vec::new();
        let mut all_ids = Vec::new();
        for (scheme, reference, dc, parts, order) in [
            (ConcatScheme::Udh8, 7u16, 0u8, gsm, [1u8, 2, 3]),
            (ConcatScheme::Udh16, 0x1234, 8, ucs, [2, 3, 1]),
            (ConcatScheme::Sar, 99, 0, sar, [3, 2, 1]),
        ] {
            let mut first = None;
            for seq in order {
                let req = request(
                    "alice",
                    Some((scheme, reference, 3, seq)),
                    dc,
                    parts[usize::from(seq) - 1],
                    1,
                    "",
                );
                let id = run.store.submit(req).await.unwrap().message_id;
                assert!(id.len() <= 64);
                first.get_or_insert(id.clone());
                all_ids.push(id);
            }
            first_ids.push(first.unwrap());
        }
        let docs = wait_outcomes(&run.store, 3, T).await;
        assert_eq!(docs.len(), 3);
        let by_id = |id: &str| {
            docs.iter()
                .find(|d| d.get_str("_id").unwrap() == gid_of(id))
                .unwrap()
        };
        let d = by_id(&first_ids[0]);
        assert_eq!(d.get_str("state").unwrap(), "DELIVERED");
        assert_eq!(d.get_str("text").unwrap(), "Hello long world");
        assert_eq!(d.get_str("scheme").unwrap(), "udh8");
        assert_eq!(d.get_i32("reference").unwrap(), 7);
        assert_eq!(d.get_array("missing").unwrap().len(), 0);
        assert_eq!(segment_texts(d), ["Hello ", "long ", "world"]);
        let d = by_id(&first_ids[1]);
        assert_eq!(d.get_str("state").unwrap(), "DELIVERED");
        assert_eq!(
            d.get_str("text").unwrap(),
            "ab\u{1F600}cd",
            "joined before decoding"
        );
        assert_eq!(d.get_str("scheme").unwrap(), "udh16");
        let d = by_id(&first_ids[2]);
        assert_eq!(d.get_str("text").unwrap(), "one two three");
        assert_eq!(d.get_str("scheme").unwrap(), "sar");
        assert_eq!(d.get_str("account").unwrap(), "alice");
        assert_eq!(d.get_str("node").unwrap(), "node-a");

        // One DELIVRD receipt per segment, to the originator, with its message_id.
        let s = sink.clone();
        wait_for("9 receipts", T, || {
            let s = s.clone();
            async move { s.count() >= 9 }
        })
        .await;
        let receipts = sink.receipts();
        assert_eq!(receipts.len(), 9);
        let mut got: Vec<String> = receipts
            .iter()
            .map(|r| r.receipted_message_id.clone())
            .collect();
        got.sort();
        all_ids.sort();
        assert_eq!(got, all_ids);
        for r in &receipts {
            assert_eq!(r.message_state, 2);
            assert_eq!(r.dest.addr, "12345");
            assert_eq!(r.source.addr, "447700900001");
            let text = String::from_utf8(r.short_message.clone()).unwrap();
            assert!(text.contains("stat:DELIVRD"), "{text}");
            assert!(
                text.starts_with(&format!("id:{} ", r.receipted_message_id)),
                "{text}"
            );
        }
        wait_dbsize(&env.redis, base, T).await;
        // The completing node has the receiver: every receipt went from its memory,
        // and each message's data came back with its last submit (no P:fresh read).
        let st = run.store.counts();
        assert_eq!(st[Counter::ReceiptsSentLocal], 9, "{st:?}");
        assert_eq!((st[Counter::ReleasedCompleted], st[Counter::ReleasedFresh]), (3, 0), "{st:?}");
        run.stop().await;
    }
);

both!(
    standalone a_single_part_receipt_waits_until_its_response_is_queued,
    |kind| async move {
        // The session drops `after_response` once the submit_sm_resp is queued; until
        // then the receipt must not go out, or the ESME gets a receipt for a
        // message_id it has not been told yet.
        let env = Env::start(kind);
        let sink = TestSink::new(true);
        let run = Running::start(env.settings("held"), sink.clone()).await;
        let held = run
            .store
            .submit(request("alice", None, 0, b"first", 1, ""))
            .await
            .unwrap();
        assert!(
            held.after_response.is_some(),
            "a receipt is owed, so it is held"
        );
        let second = run
            .store
            .submit(request("alice", None, 0, b"second", 1, ""))
            .await
            .unwrap();
        let second_id = second.message_id.clone();
        drop(second);
        let s = sink.clone();
        wait_for("the second message's receipt", T, || {
            let s = s.clone();
            async move { s.count() >= 1 }
        })
        .await;
        // Queued earlier, due as early: without the hold it would have gone out first.
        let ids = |sink: &TestSink| -> Vec<String> {
            sink.receipts()
                .into_iter()
                .map(|r| r.receipted_message_id)
                .collect()
        };
        assert_eq!(
            ids(&sink),
            std::slice::from_ref(&second_id),
            "the held receipt went out before its response"
        );
        let queue = format!(
            "{}r:alice",
            store::redis::partition::prefix(
                "held:",
                store::redis::partition::of_message_id(&held.message_id).unwrap()
            )
        );
        let score = env
            .redis
            .command(&["ZSCORE", &queue, &held.message_id])
            .unwrap_or_default();
        assert!(
            score.starts_with('$') && !score.starts_with("$-1"),
            "the held receipt is still queued in Redis: {score:?}"
        );

        // The response is queued: it follows within well under its 10 s hold.
        let first_id = held.message_id.clone();
        drop(held);
        let s = sink.clone();
        wait_for("the released receipt", Duration::from_secs(5), || {
            let s = s.clone();
            async move { s.count() >= 2 }
        })
        .await;
        assert_eq!(ids(&sink), [second_id, first_id]);
        run.stop().await;
    }
);

both!(
    standalone a_multi_part_message_is_released_once_its_last_response_is_queued,
    |kind| async move {
        // The completing submit answers with the group's data, and the releaser gets
        // it once that submit_sm_resp is queued: a receipt of the message must not
        // reach the ESME before the response that tells it the last message_id.
        let mut env = Env::start(kind);
        let sink = TestSink::new(true);
        let run = Running::start(env.settings("lastresp"), sink.clone()).await;
        // The outcome writer's finalize releases what is still in P:fresh once MongoDB
        // has the document — the path for a node that died before releasing; in
        // service it comes a MongoDB write after the response. Here the response
        // waits as long as the test likes, so MongoDB is stopped to leave the
        // releaser alone.
        env.mongo.stop();
        // The start's recovery pass reads P:fresh, which every finished message is in
        // too; let it be behind us.
        let store = run.store.clone();
        wait_for("the recovery pass", T, || {
            let store = store.clone();
            async move { store.counts()[Counter::RecoveryPasses] >= 1 }
        })
        .await;
        let submit = |reference: u16, seq: u8| {
            request(
                "alice",
                Some((ConcatScheme::Udh8, reference, 2, seq)),
                0,
                b"part",
                1,
                "",
            )
        };
        let first_a = run.store.submit(submit(1, 1)).await.unwrap().message_id;
        let last_a = run.store.submit(submit(1, 2)).await.unwrap();
        assert!(
            last_a.after_response.is_some(),
            "its release waits for the response"
        );
        // Message B completes behind it, its response queued at once.
        let b1 = run.store.submit(submit(2, 1)).await.unwrap().message_id;
        let b2 = run.store.submit(submit(2, 2)).await.unwrap().message_id;
        let s = sink.clone();
        wait_for("B's receipts", T, || {
            let s = s.clone();
            async move { s.count() >= 2 }
        })
        .await;
        let ids = |sink: &TestSink| -> Vec<String> {
            let mut v: Vec<String> = sink
                .receipts()
                .into_iter()
                .map(|r| r.receipted_message_id)
                .collect();
            v.sort();
            v
        };
        let mut b = vec![b1, b2];
        b.sort();
        assert_eq!(
            ids(&sink),
            b,
            "A's receipts went out before its last response"
        );

        let last_a_id = last_a.message_id.clone();
        drop(last_a);
        let s = sink.clone();
        wait_for("A's receipts", T, || {
            let s = s.clone();
            async move { s.count() >= 4 }
        })
        .await;
        let mut all = b;
        all.extend([first_a, last_a_id]);
        all.sort();
        assert_eq!(ids(&sink), all);
        run.stop().await;
    }
);

both!(
    standalone single_part_receipts_are_sent_from_memory_when_their_receiver_is_bound_here,
    |kind| async move {
        // The node that stored a single-part message holds its receipt (the hold is
        // its lease) and has its receiver: it sends the receipt it built, with no
        // RECEIPT_READY/RECEIPT_TAKE round through Redis, and only the done call
        // removes it there. Each receipt exactly once.
        let env = Env::start(kind);
        let sink = TestSink::telling(true);
        let run = Running::start(env.settings("local"), sink.clone()).await;
        let base = env.redis.dbsize();
        let mut ids = Vec::new();
        for i in 0..20 {
            let text = format!("m{i}");
            let accepted = run
                .store
                .submit(request("alice", None, 0, text.as_bytes(), 1, ""))
                .await
                .unwrap();
            ids.push(accepted.message_id.clone());
            // The response is queued.
            drop(accepted);
        }
        let s = sink.clone();
        wait_for("20 receipts", T, || {
            let s = s.clone();
            async move { s.count() >= 20 }
        })
        .await;
        wait_outcomes(&run.store, 20, T).await;
        // Their keys (receipt queue and payload included) are gone: done ran.
        wait_dbsize(&env.redis, base, T).await;
        let mut got: Vec<String> = sink
            .receipts()
            .into_iter()
            .map(|r| r.receipted_message_id)
            .collect();
        got.sort();
        ids.sort();
        assert_eq!(got, ids, "each receipt exactly once");
        let stats = run.store.counts();
        assert_eq!(stats[Counter::ReceiptsDelivered], 20);
        assert_eq!(stats[Counter::ReceiptsSentLocal], 20, "sent from memory");
        run.stop().await;
    }
);

both!(
    standalone a_refused_receipt_sent_from_memory_is_retried_on_time,
    |kind| async move {
        // Sent from memory, refused once: RECEIPT_RETRY makes it due after the retry
        // pause (50 ms here). Nothing announces it, so the worker itself must come
        // back for it then, not when its hold (70 s) would have ended.
        let env = Env::start(kind);
        let sink = TestSink::new(true);
        let run = Running::start(env.settings("refused"), sink.clone()).await;
        let base = env.redis.dbsize();
        // A first receipt goes out and is done: the worker is idle, nothing due.
        run.store
            .submit(request("alice", None, 0, b"first", 1, ""))
            .await
            .unwrap();
        wait_outcomes(&run.store, 1, T).await;
        wait_dbsize(&env.redis, base, T).await;
        assert_eq!(sink.count(), 1);
        sink.refuse(1);
        let id = run
            .store
            .submit(request("alice", None, 0, b"refused once", 1, ""))
            .await
            .unwrap()
            .message_id;
        let s = sink.clone();
        wait_for("the retried receipt", T, || {
            let s = s.clone();
            async move { s.count() >= 2 }
        })
        .await;
        assert_eq!(sink.receipts()[1].receipted_message_id, id);
        assert_eq!(sink.attempts.load(std::sync::atomic::Ordering::SeqCst), 3);
        run.stop().await;
    }
);

both!(
    standalone receipts_a_stopping_node_holds_in_memory_are_made_due_for_the_others,
    |kind| async move {
        // A receipt handed to a node's worker is leased to that node in Redis (65 s
        // with these settings). If the node stops before sending it, it must not wait
        // out that lease: the stop makes it due for any node.
        let env = Env::start(kind);
        let stuck = TestSink::new(true);
        let a = Running::start(env.settings("stop"), stuck.clone()).await;
        // No send ends, so once the worker has its most batches in flight (one receipt
        // each here: each is taken as soon as it is handed over), the next two wait in
        // memory.
        stuck.stall();
        for (n, text) in (0u32..).zip([b"first".as_slice(), b"1b", b"1c", b"1d"]) {
            a.store
                .submit(request("alice", None, 0, text, 1, ""))
                .await
                .unwrap();
            let s = stuck.clone();
            wait_for("the send in flight", T, || {
                let s = s.clone();
                async move { s.attempts.load(std::sync::atomic::Ordering::SeqCst) > n }
            })
            .await;
        }
        let mut waiting = Vec::new();
        for text in [b"second".as_slice(), b"third"] {
            let accepted = a
                .store
                .submit(request("alice", None, 0, text, 1, ""))
                .await
                .unwrap();
            waiting.push(accepted.message_id.clone());
        }
        let there = TestSink::new(true);
        let mut other = env.settings("stop");
        other.node_id = "node-b".into();
        let b = Running::start(other, there.clone()).await;
        a.stop().await;
        let s = there.clone();
        wait_for("the two receipts on the other node", T, || {
            let s = s.clone();
            async move { s.count() >= 2 }
        })
        .await;
        let mut got: Vec<String> = there
            .receipts()
            .into_iter()
            .map(|r| r.receipted_message_id)
            .collect();
        got.sort();
        waiting.sort();
        assert_eq!(got, waiting);
        b.stop().await;
    }
);

both!(
    standalone a_held_receipt_whose_receiver_is_not_here_is_made_due_for_any_node,
    |kind| async move {
        // No receiver of the account on this node: the receipt goes back to Redis,
        // due now and announced, and a node that has one sends it.
        let env = Env::start(kind);
        let here = TestSink::telling(false);
        let there = TestSink::telling(true);
        let a = Running::start(env.settings("away"), here.clone()).await;
        let mut other = env.settings("away");
        other.node_id = "node-b".into();
        let b = Running::start(other, there.clone()).await;
        let accepted = a
            .store
            .submit(request("alice", None, 0, b"hi", 1, ""))
            .await
            .unwrap();
        let id = accepted.message_id.clone();
        drop(accepted);
        let s = there.clone();
        wait_for("the receipt on the other node", T, || {
            let s = s.clone();
            async move { s.count() >= 1 }
        })
        .await;
        assert_eq!(there.receipts()[0].receipted_message_id, id);
        assert_eq!(here.count(), 0);
        assert_eq!(a.store.counts()[Counter::ReceiptsSentLocal], 0);
        assert_eq!(b.store.counts()[Counter::ReceiptsSentLocal], 0, "taken from Redis");
        a.stop().await;
        b.stop().await;
    }
);

// Receipts sent from memory do not starve those due in Redis: while this node's
// receiver takes its time over a steady stream of this node's own receipts (sent as
// they are handed over, batches in flight all along), a receipt another node made due
// in Redis for the same account goes out before the stream ends. Fails if the worker
// looks at Redis only when its receiver has nothing of this node's left to send.
both!(
    standalone receipts_due_in_redis_go_out_while_receipts_from_memory_stream,
    |kind| async move {
        const CAP: usize = 20_000;
        let env = Env::start(kind);
        let here = TestSink::telling(true);
        here.slow(20);
        let away = TestSink::telling(false);
        let a = Running::start(env.settings("stream"), here.clone()).await;
        let mut other = env.settings("stream");
        other.node_id = "node-b".into();
        let b = Running::start(other, away.clone()).await;
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let sent = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        // Four submitters without pause, so that batches are in flight all along.
        let streams: Vec<_> = (0..4)
            .map(|_| {
                let (store, stop, sent) = (a.store.clone(), stop.clone(), sent.clone());
                tokio::spawn(async move {
                    while !stop.load(std::sync::atomic::Ordering::SeqCst)
                        && sent.fetch_add(1, std::sync::atomic::Ordering::SeqCst) < CAP
                    {
                        let accepted = store
                            .submit(request("alice", None, 0, b"here", 1, ""))
                            .await
                            .unwrap();
                        drop(accepted);
                    }
                })
            })
            .collect();
        let h = here.clone();
        wait_for("the stream's receipts flowing", T, || {
            let h = h.clone();
            async move { h.count() >= 20 }
        })
        .await;
        let theirs = b
            .store
            .submit(request("alice", None, 0, b"there", 1, ""))
            .await
            .unwrap();
        let id = theirs.message_id.clone();
        drop(theirs);
        let h = here.clone();
        wait_for("the other node's receipt", T, || {
            let (h, id) = (h.clone(), id.clone());
            async move { h.receipts().iter().any(|r| r.receipted_message_id == id) }
        })
        .await;
        let streamed = sent.load(std::sync::atomic::Ordering::SeqCst);
        stop.store(true, std::sync::atomic::Ordering::SeqCst);
        for s in streams {
            s.await.unwrap();
        }
        assert!(
            streamed < CAP,
            "the receipt due in Redis waited for the end of the stream ({streamed} sent)"
        );
        a.stop().await;
        b.stop().await;
    }
);

both!(
    standalone single_part_message_is_delivered_at_once,
    |kind| async move {
        let env = Env::start(kind);
        let sink = TestSink::new(true);
        let run = Running::start(env.settings("single"), sink.clone()).await;
        let base = env.redis.dbsize();
        let id = run
            .store
            .submit(request("alice", None, 0, b"hi there", 0, ""))
            .await
            .unwrap()
            .message_id;
        let docs = wait_outcomes(&run.store, 1, T).await;
        assert_eq!(docs[0].get_str("_id").unwrap(), id);
        assert_eq!(docs[0].get_str("state").unwrap(), "DELIVERED");
        assert_eq!(docs[0].get_str("text").unwrap(), "hi there");
        wait_dbsize(&env.redis, base, T).await;
        assert_eq!(sink.count(), 0, "registered_delivery 0 asks for no receipt");
        run.stop().await;
    }
);

both!(
    standalone duplicate_segment_is_stored_once_and_answered_with_the_first_message_id,
    |kind| async move {
        let env = Env::start(kind);
        let sink = TestSink::new(true);
        let run = Running::start(env.settings("dup"), sink.clone()).await;
        let base = env.redis.dbsize();
        let seg = |seq, text: &[u8]| {
            request(
                "alice",
                Some((ConcatScheme::Udh8, 1, 2, seq)),
                0,
                text,
                1,
                "",
            )
        };
        let first = run.store.submit(seg(1, b"AAA")).await.unwrap().message_id;
        let again = run.store.submit(seg(1, b"XXX")).await.unwrap().message_id;
        assert_eq!(first, again);
        run.store.submit(seg(2, b"BBB")).await.unwrap();
        let docs = wait_outcomes(&run.store, 1, T).await;
        assert_eq!(docs[0].get_str("text").unwrap(), "AAABBB");
        assert_eq!(docs[0].get_array("segments").unwrap().len(), 2);
        let s = sink.clone();
        wait_for("2 receipts", T, || {
            let s = s.clone();
            async move { s.count() >= 2 }
        })
        .await;
        wait_dbsize(&env.redis, base, T).await;
        assert_eq!(sink.count(), 2);
        run.stop().await;
    }
);

both!(
    standalone expired_or_malformed_validity_is_refused_with_rinvexpiry,
    |kind| async move {
        let env = Env::start(kind);
        let sink = TestSink::new(true);
        let run = Running::start(env.settings("validity"), sink).await;
        let base = env.redis.dbsize();
        for v in [
            "200101000000000+", // absolute, in the past
            "000000000000000R", // relative zero
            "2401011200",       // wrong length
            "24130112000000+0", // bad month / suffix
            "24010112000000X+", // not a digit
        ] {
            let err = run
                .store
                .submit(request(
                    "alice",
                    Some((ConcatScheme::Udh8, 3, 2, 1)),
                    0,
                    b"x",
                    1,
                    v,
                ))
                .await
                .unwrap_err();
            assert!(
                matches!(err, ServiceError::Rejected { status: 0x62, .. }),
                "{v}: {err:?}"
            );
        }
        assert_eq!(env.redis.dbsize(), base, "nothing stored");
        // A far relative validity is accepted (and capped at the account's maximum).
        run.store
            .submit(request("alice", None, 0, b"x", 0, "990000000000000R"))
            .await
            .unwrap();
        let docs = wait_outcomes(&run.store, 1, T).await;
        let d = &docs[0];
        let capped = d.get_datetime("deadline").unwrap().timestamp_millis()
            - d.get_datetime("submitted_at").unwrap().timestamp_millis();
        assert!(
            (86_399_000..=86_401_000).contains(&capped),
            "capped to 1 day: {capped} ms"
        );
        wait_dbsize(&env.redis, base, T).await;
        run.stop().await;
    }
);

both!(
    standalone redis_down_gives_a_temporary_error_and_service_resumes_after_restart,
    |kind| async move {
        let mut env = Env::start(kind);
        let sink = TestSink::new(true);
        let run = Running::start(env.settings("outage"), sink).await;
        env.redis.stop();
        let err = run
            .store
            .submit(request("alice", None, 0, b"x", 0, ""))
            .await
            .unwrap_err();
        assert!(matches!(err, ServiceError::Internal(_)), "{err:?}");
        env.redis.restart();
        let store = run.store.clone();
        wait_for("a submit succeeding after the restart", T, || {
            let store = store.clone();
            async move {
                store
                    .submit(request("alice", None, 0, b"back", 0, ""))
                    .await
                    .is_ok()
            }
        })
        .await;
        let docs = wait_outcomes(&run.store, 1, T).await;
        assert_eq!(docs[0].get_str("text").unwrap(), "back");
        run.stop().await;
    }
);

// Limits are counted per partition, each admitting its share (`partition::share`):
// 25 pending messages store-wide are 2 per partition. Fails when the limit is not
// enforced (the third is stored) or enforced across partitions (the other
// partition's message is refused).
both!(
    standalone queue_full_refuses_new_messages_with_qfull,
    |kind| async move {
        let env = Env::start(kind);
        let sink = TestSink::new(true);
        let mut settings = env.settings("full");
        settings.max_pending = 25;
        assert_eq!(store::redis::partition::share(25), 2);
        let run = Running::start(settings, sink).await;
        let first = |r: u16| {
            request(
                "alice",
                Some((ConcatScheme::Udh16, r, 2, 1)),
                0,
                b"a",
                0,
                "",
            )
        };
        let refs = refs_in_one_partition(3, first);
        for r in &refs[..2] {
            run.store.submit(first(*r)).await.unwrap();
        }
        let err = run.store.submit(first(refs[2])).await.unwrap_err();
        assert!(matches!(err, ServiceError::QueueFull(_)), "{err:?}");
        // Segments of pending messages are still taken.
        run.store
            .submit(request(
                "alice",
                Some((ConcatScheme::Udh16, refs[0], 2, 2)),
                0,
                b"b",
                0,
                "",
            ))
            .await
            .unwrap();
        // Another partition has its own share.
        let elsewhere = (0..=u16::MAX)
            .find(|r| partition_of(&first(*r)) != partition_of(&first(refs[0])))
            .unwrap();
        run.store.submit(first(elsewhere)).await.unwrap();
        run.stop().await;
    }
);

/// A field of `cmdstat_evalsha` (0 before the first call).
fn evalsha_stat(redis: &crate::support::servers::RedisServer, field: &str) -> u64 {
    let info = redis.command(&["INFO", "commandstats"]).unwrap();
    info.lines()
        .find_map(|l| l.strip_prefix("cmdstat_evalsha:"))
        .and_then(|rest| {
            rest.split(',')
                .find_map(|kv| kv.strip_prefix(field)?.strip_prefix('='))
        })
        .map_or(0, |n| n.parse().unwrap())
}

fn cached_scripts(redis: &crate::support::servers::RedisServer) -> u64 {
    let info = redis.command(&["INFO", "memory"]).unwrap();
    info.lines()
        .find_map(|l| l.strip_prefix("number_of_cached_scripts:"))
        .map_or(0, |n| n.trim().parse().unwrap())
}

both!(
    standalone concurrent_submits_each_get_their_own_answer,
    |kind| async move {
        let env = Env::start(kind);
        let sink = TestSink::new(true);
        let run = Running::start(env.settings("batch"), sink.clone()).await;
        // All in one partition, so that they share SUBMIT calls (a call's records are
        // each answered as if alone: tests/it/store_scripts.rs; how few calls a load
        // takes is a budget of scripts/mem-layout.sh).
        let first = |r: u16| {
            request(
                "alice",
                Some((ConcatScheme::Udh16, r, 2, 1)),
                0,
                b"x",
                0,
                "",
            )
        };
        let refs = refs_in_one_partition(201, first);
        // A group whose pending value is a hash: its segment's commands fail
        // (WRONGTYPE) inside the batch that carries it.
        let poisoned = first(refs[200]);
        env.redis
            .command(&["HSET", &pending_group_key("batch:", &poisoned), "not", "a string"])
            .unwrap();
        let mut reqs = Vec::new();
        for r in refs[..200].iter().copied() {
            for seq in 1..=2u8 {
                let text = format!("{r}-{seq} ");
                reqs.push(request(
                    "alice",
                    Some((ConcatScheme::Udh16, r, 2, seq)),
                    0,
                    text.as_bytes(),
                    0,
                    "",
                ));
            }
        }
        // The first segment of message 0 once more, right behind the original.
        reqs.insert(
            1,
            request(
                "alice",
                Some((ConcatScheme::Udh16, refs[0], 2, 1)),
                0,
                b"0-1 ",
                0,
                "",
            ),
        );
        reqs.push(poisoned);
        // The node loaded its scripts when it connected: no call of this burst meets
        // NOSCRIPT, whose reload-and-retry would let a later batch run first (the
        // duplicate below would then find message 0 completed: a new message).
        assert!(cached_scripts(&env.redis) >= 15, "scripts loaded at start");
        let results =
            futures::future::join_all(reqs.into_iter().map(|r| run.store.submit(r))).await;
        assert_eq!(evalsha_stat(&env.redis, "failed_calls"), 0, "no NOSCRIPT");

        // The poisoned record failed alone; its neighbours in the batch were stored.
        let (last, rest) = results.split_last().unwrap();
        match last {
            Err(ServiceError::Internal(e)) => {
                assert!(e.to_string().contains("WRONGTYPE"), "{e}")
            }
            other => panic!("the poisoned segment: {other:?}"),
        }
        let ids: Vec<String> = rest
            .iter()
            .map(|r| r.as_ref().unwrap().message_id.clone())
            .collect();
        assert_eq!(
            ids[0], ids[1],
            "the resent segment gets the first one's message_id"
        );
        // Every message completed exactly once, with both its segments.
        let docs = wait_outcomes(&run.store, 200, T).await;
        assert_eq!(docs.len(), 200);
        for d in &docs {
            assert_eq!(d.get_str("state").unwrap(), "DELIVERED");
            let texts = segment_texts(d);
            assert_eq!(texts.len(), 2, "{d}");
            assert!(
                texts[0].ends_with("-1 ") && texts[1].ends_with("-2 "),
                "{d}"
            );
        }
        run.stop().await;
    }
);

both!(
    standalone the_pending_limit_holds_within_one_batch,
    |kind| async move {
        let env = Env::start(kind);
        let sink = TestSink::new(true);
        let mut settings = env.settings("batchfull");
        // 50 per partition.
        settings.max_pending = 640;
        assert_eq!(store::redis::partition::share(640), 50);
        let run = Running::start(settings, sink).await;
        // 120 new messages of one partition at once, each its first segment only:
        // they stay pending.
        let first = |r: u16| {
            request(
                "alice",
                Some((ConcatScheme::Udh16, r, 2, 1)),
                0,
                b"a",
                0,
                "",
            )
        };
        let reqs = refs_in_one_partition(120, first).into_iter().map(first);
        let results = futures::future::join_all(reqs.map(|r| run.store.submit(r))).await;
        let ok = results.iter().filter(|r| r.is_ok()).count();
        let full = results
            .iter()
            .filter(|r| matches!(r, Err(ServiceError::QueueFull(_))))
            .count();
        assert_eq!((ok, full), (50, 70), "{results:?}");
        run.stop().await;
    }
);

/// A submit refused by a limit: ESME_RMSGQFUL naming the limit.
fn refused_by(r: Result<service::SubmitAccepted, ServiceError>, limit: &str) {
    match r {
        Err(ServiceError::QueueFull(why)) => assert!(why.starts_with(limit), "{why}"),
        other => panic!("expected ESME_RMSGQFUL for {limit}, got {other:?}"),
    }
}

// Tenant isolation: an account at its own limit — messages, octets of user data, or
// receipts nobody takes — gets ESME_RMSGQFUL while other accounts go on; what its
// messages held is given back once their outcomes are in MongoDB, and nothing of the
// accounting is left in Redis afterwards. A segment longer than the account allows is
// refused with ESME_RINVMSGLEN. Fails without per-account limits (the flood is
// accepted) and when finalize does not give the usage back (the last submits stay
// refused, and DBSIZE does not come back).
both!(
    standalone an_account_at_its_limits_is_refused_while_others_go_on,
    |kind| async move {
        let env = Env::start(kind);
        // No receiver bound: receipts stay queued.
        let sink = TestSink::telling(false);
        let run = Running::start(env.settings("quota"), sink.clone()).await;
        let base = env.redis.dbsize();
        let with = |account: &str, f: &dyn Fn(&mut service::AccountLimits)| {
            let mut p = policy(account);
            f(&mut p.limits);
            p
        };
        // Limits count per partition, each admitting its share (`partition::share`):
        // the flood's messages share one partition.
        let udh16 = |account: &str, reference: u16, seq: u8, text: &[u8]| {
            request(
                account,
                Some((ConcatScheme::Udh16, reference, 2, seq)),
                0,
                text,
                0,
                "",
            )
        };
        let refs = refs_in_one_partition(4, |r| udh16("flood", r, 1, b"x"));
        let part = |account: &str, i: u16, seq: u8, text: &[u8]| {
            let r = if account == "flood" {
                refs[i as usize]
            } else {
                i
            };
            udh16(account, r, seq, text)
        };

        // Messages: two pending (25 are 2 per partition), the third is refused; a
        // later segment of a pending message still goes in, and so does another
        // account's message.
        let two = with("flood", &|l| l.max_pending = 25);
        for r in 0..2 {
            let mut s = part("flood", r, 1, b"x");
            s.policy = two.clone();
            run.store.submit(s).await.unwrap();
        }
        let mut third = part("flood", 2, 1, b"x");
        third.policy = two.clone();
        refused_by(run.store.submit(third).await, "account ");
        run.store.submit(part("calm", 7, 1, b"x")).await.unwrap();

        // Octets: 100 for the account (1280 are 100 per partition), a 60-octet
        // message in, the next (a single-part message of the same run of ids, so the
        // same partition) refused.
        let small = with("bulky", &|l| l.max_pending_bytes = 1280);
        let mut big = request("bulky", None, 0, &[b'a'; 60], 0, "");
        big.policy = small.clone();
        run.store.submit(big.clone()).await.unwrap();
        refused_by(run.store.submit(big).await, "account_bytes");

        // Receipts nobody takes: one queued, the next message is refused.
        let one = with("deaf", &|l| l.max_queued_receipts = 1);
        let mut asks = request("deaf", None, 0, b"r", 1, "");
        asks.policy = one.clone();
        run.store.submit(asks.clone()).await.unwrap();
        let store = run.store.clone();
        refused_by(store.submit(asks.clone()).await, "receipts");

        // One segment over the account's size: ESME_RINVMSGLEN.
        let mut long = request("calm", None, 0, &[b'b'; 255], 0, "");
        long.policy.limits.max_segment_octets = 254;
        match run.store.submit(long.clone()).await {
            Err(ServiceError::Rejected { status, .. }) => assert_eq!(status, 0x01),
            other => panic!("255 octets with max_segment_octets 254: {other:?}"),
        }
        long.policy.limits.max_segment_octets = 255;
        run.store.submit(long).await.unwrap();

        // The flood's messages complete and reach MongoDB: its share comes back.
        for r in 0..2 {
            let mut s = part("flood", r, 2, b"y");
            s.policy = two.clone();
            run.store.submit(s).await.unwrap();
        }
        // 3 single-part messages and the flood's two.
        wait_outcomes(&run.store, 5, T).await;
        let s = run.store.clone();
        let two2 = two.clone();
        wait_for("the flood's usage given back", T, || {
            let (s, two) = (s.clone(), two2.clone());
            async move {
                let mut m = part("flood", 3, 1, b"x");
                m.policy = two;
                s.submit(m).await.is_ok()
            }
        })
        .await;
        let mut last = part("flood", 3, 2, b"y");
        last.policy = two;
        run.store.submit(last).await.unwrap();
        let mut other = part("calm", 7, 2, b"y");
        other.policy = policy("calm");
        run.store.submit(other).await.unwrap();

        // The deaf account's receipt is taken: its queue empties.
        sink.bind("deaf");
        wait_for("the deaf account's receipt", T, || {
            let sink = sink.clone();
            async move { sink.count() >= 1 }
        })
        .await;
        wait_outcomes(&run.store, 7, T).await;
        wait_dbsize(&env.redis, base, T).await;
        run.stop().await;
    }
);

// A batch of segments of many partitions is stored whole either way a node sends it:
// one SUBMIT call for the batch (a standalone server) or one per partition (as on a
// cluster). Fails if a record's keys, counts or indexes land in another record's
// partition (a message would not complete, or Redis would keep something).
both!(
    standalone a_batch_over_many_partitions_is_stored_in_one_call_or_one_per_partition,
    |kind| async move {
        for per_partition in [false, true] {
            let env = Env::start(kind);
            let sink = TestSink::new(true);
            let mut settings = env.settings("spread");
            settings.per_partition_calls = per_partition;
            let run = Running::start(settings, sink.clone()).await;
            let base = env.redis.dbsize();
            let part = |r: u16, seq: u8| {
                request(
                    "ada",
                    Some((ConcatScheme::Udh16, r, 2, seq)),
                    0,
                    b"x",
                    1,
                    "",
                )
            };
            let partitions: std::collections::BTreeSet<usize> =
                (0..60).map(|r| partition_of(&part(r, 1))).collect();
            assert!(partitions.len() > 8, "{partitions:?}");
            let firsts = (0..60).map(|r| run.store.submit(part(r, 1)));
            for r in futures::future::join_all(firsts).await {
                r.unwrap();
            }
            let seconds = (0..60).map(|r| run.store.submit(part(r, 2)));
            for r in futures::future::join_all(seconds).await {
                r.unwrap();
            }
            let docs = wait_outcomes(&run.store, 60, T).await;
            assert!(
                docs.iter().all(|d| d.get_str("state") == Ok("DELIVERED")),
                "per partition {per_partition}"
            );
            wait_for("120 receipts", T, || {
                let s = sink.clone();
                async move { s.count() >= 120 }
            })
            .await;
            wait_dbsize(&env.redis, base, T).await;
            run.stop().await;
        }
    }
);

// A segment cut inside a GSM escape (an ESME that splits after encoding) cannot be
// decoded alone; its receipt still says what it held. Fails with a strict decode of
// the segment (an empty `text:`; found by scripts/interop.sh with every client).
both!(
    standalone a_segment_cut_inside_an_escape_still_has_receipt_text,
    |kind| async move {
        let env = Env::start(kind);
        let sink = TestSink::new(true);
        let run = Running::start(env.settings("cut"), sink.clone()).await;
        let part = |seq: u8, data: &[u8]| {
            request("cal", Some((ConcatScheme::Udh8, 7, 2, seq)), 0, data, 1, "")
        };
        // "ab€cd" with the escape 0x1B ending the first segment.
        run.store.submit(part(1, b"ab\x1b")).await.unwrap();
        run.store.submit(part(2, b"\x65cd")).await.unwrap();
        wait_for("two receipts", T, || {
            let s = sink.clone();
            async move { s.count() >= 2 }
        })
        .await;
        for r in sink.receipts() {
            let text = String::from_utf8(r.short_message.clone()).unwrap();
            let field = text.rsplit("text:").next().unwrap();
            assert!(!field.is_empty(), "{text}");
        }
        let docs = wait_outcomes(&run.store, 1, T).await;
        assert_eq!(docs[0].get_str("text").unwrap(), "ab€cd");
        run.stop().await;
    }
);

// A segment resent after its message completed starts a new message — also when the
// completing segment and the resend are in one SUBMIT batch: the new message keeps its
// deadline and expires into an outcome. Fails when the batch's end removes the group
// key's deadline entry for the finished message after the new one wrote it (the new
// message then never expires and its acked segment reaches no outcome: chaos.sh,
// smppd-kill, 2026-12-06). The batch is a burst; the pair sits in its middle.
both!(
    standalone a_segment_resent_after_its_message_completed_in_the_same_batch_is_not_lost,
    |kind| async move {
        let env = Env::start(kind);
        let sink = TestSink::new(true);
        let run = Running::start(env.settings("reopen"), sink.clone()).await;
        let base = env.redis.dbsize();
        let part = |seq: u8| {
            request(
                "rea",
                Some((ConcatScheme::Udh16, 4242, 2, seq)),
                0,
                b"p",
                0,
                "000000000002000R",
            )
        };
        let first = run.store.submit(part(1)).await.unwrap().message_id;
        let filler = |i: u16| request("fil", Some((ConcatScheme::Udh16, i, 1, 1)), 0, b"f", 0, "");
        let mut burst: Vec<_> = (0..100).map(filler).collect();
        burst.push(part(2));
        burst.push(part(1));
        burst.extend((100..200).map(filler));
        let results =
            futures::future::join_all(burst.into_iter().map(|r| run.store.submit(r))).await;
        let resent = results[101].as_ref().unwrap().message_id.clone();
        assert_ne!(
            resent, first,
            "the message completed: the resend is a new message"
        );
        // The completed message, 200 fillers, and the resend's own message once its
        // 2 s validity ends.
        let docs = wait_outcomes(&run.store, 202, T).await;
        let doc = |id: &str| docs.iter().find(|d| d.get_str("_id") == Ok(gid_of(id))).cloned();
        assert_eq!(doc(&first).unwrap().get_str("state").unwrap(), "DELIVERED");
        let again = doc(&resent).expect("the resent segment's message has an outcome");
        assert_eq!(again.get_str("state").unwrap(), "PARTIAL");
        wait_dbsize(&env.redis, base, T).await;
        run.stop().await;
    }
);
