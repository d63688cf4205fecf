//! Outcomes survive a MongoDB outage; receipts wait for a receiver, are retried and
//! expire; query_sm / cancel_sm / replace_sm. On Redis 7.0 and Valkey 9.

use std::collections::HashSet;
use std::time::Duration;

use bytes::Bytes;
use service::{ConcatScheme, MessageService, ServiceError};
use smppd::service;
use smppd::store::Counter;

use crate::support::backend::both;
use crate::support::backend::wait_dbsize;
use crate::support::harness::*;
use crate::support::messages::gid_of;
use crate::support::servers::RedisKind;
use crate::support::wait_for;

const T: Duration = Duration::from_secs(30);

// The outcome writer does not read back what this node holds: a single-part message
// it accepted, a multi-part one whose receipts it released. What another process of
// the node left in the outbox it reads from Redis; both kinds end in one document each.
both!(
    standalone the_outcome_writer_reads_back_only_what_this_node_does_not_hold,
    |kind: RedisKind| async move {
        let env = Env::start(kind);
        let sink = TestSink::new(true);
        // Node A's MongoDB is a closed port: its messages wait in the outbox, leased.
        let mut a_settings = env.settings("known");
        a_settings.mongodb_uri = format!(
            "mongodb://127.0.0.1:{}/?serverSelectionTimeoutMS=300",
            crate::support::servers::free_port()
        );
        let a = Running::start(a_settings, sink.clone()).await;
        let base_ids: Vec<String> = {
            let mut ids = Vec::new();
            for i in 0..3u16 {
                let text = format!("left {i}");
                let seg = request("kit", None, 0, text.as_bytes(), 1, "");
                ids.push(a.store.submit(seg).await.unwrap().message_id);
            }
            ids
        };
        let st = a.store.clone();
        wait_for("node A's failed outcome write", T, || {
            let st = st.clone();
            async move { st.counts()[Counter::OutcomeWriteFailures] >= 1 }
        })
        .await;
        a.stop().await;

        // Node B, the same node_id, the real MongoDB: takes A's leases back and reads
        // those three; what it accepts itself it writes from memory.
        let b = Running::start(env.settings("known"), sink.clone()).await;
        let mut ids = base_ids.clone();
        for i in 0..4u16 {
            let text = format!("held {i}");
            let seg = request("kit", None, 0, text.as_bytes(), 1, "");
            ids.push(b.store.submit(seg).await.unwrap().message_id);
        }
        for seq in 1..=2u8 {
            let seg = request(
                "kit",
                Some((ConcatScheme::Udh8, 5, 2, seq)),
                0,
                b"two ",
                1,
                "",
            );
            let id = b.store.submit(seg).await.unwrap().message_id;
            if seq == 1 {
                ids.push(id);
            }
        }
        let docs = wait_outcomes(&b.store, 8, T).await;
        let got: HashSet<&str> = docs.iter().map(|d| d.get_str("_id").unwrap()).collect();
        assert_eq!(got, ids.iter().map(|i| gid_of(i)).collect::<HashSet<_>>());
        for d in &docs {
            assert_eq!(d.get_str("state").unwrap(), "DELIVERED");
            let id = d.get_str("_id").unwrap();
            let text = d.get_str("text").unwrap();
            assert!(
                text.starts_with("left") || text.starts_with("held") || text == "two two ",
                "{id}: {text}"
            );
        }
        let s = b.store.counts();
        // A's three are read; B's four single-part messages come from memory, and
        // so does its 2-part one when the releaser parsed it before the lease came
        // (both run when it completes: either order is right).
        assert_eq!(s[Counter::LeasedKnown] + s[Counter::LeasedRead], 8, "{s:?}");
        assert!(s[Counter::LeasedRead] >= 3, "node A's three, read from Redis: {s:?}");
        assert!(s[Counter::LeasedKnown] >= 4, "B's own, from memory: {s:?}");
        assert_eq!(outcome_count(&b.store).await, 8, "one document each");
        b.stop().await;
    }
);

// Receipts do not wait for MongoDB: the outcome is durable in Redis when the message
// finishes, so its receipts go out while MongoDB is down, and the documents follow
// once it is back — each once.
both!(
    standalone mongodb_stopped_receipts_still_flow_and_every_outcome_is_written_once,
    |kind: RedisKind| async move {
        let mut env = Env::start(kind);
        let sink = TestSink::new(true);
        let run = Running::start(env.settings("mongo"), sink.clone()).await;
        let base = env.redis.dbsize();
        let mut ids = Vec::new();
        for i in 0..10u16 {
            ids.push(
                run.store
                    .submit(request(
                        "erin",
                        None,
                        0,
                        format!("before {i}").as_bytes(),
                        1,
                        "",
                    ))
                    .await
                    .unwrap()
                    .message_id,
            );
        }
        wait_outcomes(&run.store, 10, T).await;
        env.mongo.stop();
        for i in 0..20u16 {
            ids.push(
                run.store
                    .submit(request(
                        "erin",
                        None,
                        0,
                        format!("during {i}").as_bytes(),
                        1,
                        "",
                    ))
                    .await
                    .unwrap()
                    .message_id,
            );
        }
        let st = run.store.clone();
        wait_for("a failed outcome write", T, || {
            let st = st.clone();
            async move { st.counts()[Counter::OutcomeWriteFailures] >= 1 }
        })
        .await;
        assert!(env.redis.dbsize() > base, "finished messages wait in Redis");
        let s = sink.clone();
        wait_for("30 receipts while MongoDB is down", T, || {
            let s = s.clone();
            async move { s.count() >= 30 }
        })
        .await;
        assert_eq!(
            run.store.counts()[Counter::OutcomesWritten],
            10,
            "the 20 outcomes are not written yet"
        );
        env.mongo.restart();
        let docs = wait_outcomes(&run.store, 30, Duration::from_secs(60)).await;
        assert_eq!(docs.len(), 30);
        let got: HashSet<&str> = docs.iter().map(|d| d.get_str("_id").unwrap()).collect();
        assert_eq!(got, ids.iter().map(|i| gid_of(i)).collect::<HashSet<_>>());
        wait_dbsize(&env.redis, base, T).await;
        assert_eq!(sink.count(), 30);
        assert_eq!(outcome_count(&run.store).await, 30, "still once each");
        run.stop().await;
    }
);

both!(
    standalone receipts_wait_for_a_receiver_and_go_out_when_it_binds,
    |kind: RedisKind| async move {
        let env = Env::start(kind);
        let sink = TestSink::new(false);
        let run = Running::start(env.settings("rx"), sink.clone()).await;
        let base = env.redis.dbsize();
        for i in 0..3u8 {
            run.store
                .submit(request("frank", None, 0, &[b'a' + i], 1, ""))
                .await
                .unwrap();
        }
        wait_outcomes(&run.store, 3, T).await;
        let s = sink.clone();
        wait_for("delivery attempts answered NoReceiver", T, || {
            let s = s.clone();
            async move { s.attempts.load(std::sync::atomic::Ordering::SeqCst) >= 3 }
        })
        .await;
        assert_eq!(sink.count(), 0);
        assert!(env.redis.dbsize() > base, "receipts wait in Redis");
        sink.refuse(2); // the first two sends get ESME_RX_T_APPN and are retried
        sink.bind("frank");
        let s = sink.clone();
        wait_for("3 receipts after the bind", T, || {
            let s = s.clone();
            async move { s.count() >= 3 }
        })
        .await;
        wait_dbsize(&env.redis, base, T).await;
        assert_eq!(sink.count(), 3);
        assert_eq!(run.store.counts()[Counter::ReceiptsDelivered], 3);
        run.stop().await;
    }
);

// A receipt whose send the node never recorded as done (it stopped with the send in
// flight; after a SIGKILL the ESME may well have it) stays leased to that node until
// its hold ends, then waits — its account in P:racc — for a receiver, which the next
// node does not have: no send, no drop before its lifetime. Once a receiver binds it
// goes out and the account leaves P:racc with it. (scripts/chaos.sh counted such a
// receipt as "not drained" when the load had unbound before the hold ended.)
both!(
    standalone a_receipt_left_in_flight_waits_in_racc_until_a_receiver_binds,
    |kind: RedisKind| async move {
        let env = Env::start(kind);
        let mut settings = env.settings("inflight");
        // A hold of 6 s (lease + HOLD_MARGIN_MS), not 65.
        settings.receipt_lease = Duration::from_secs(1);
        let stuck = TestSink::telling(true);
        stuck.stall();
        let a = Running::start(settings.clone(), stuck.clone()).await;
        let id = a
            .store
            .submit(request("hana", None, 0, b"in flight", 1, ""))
            .await
            .unwrap()
            .message_id;
        let s = stuck.clone();
        wait_for("the send in flight", T, || {
            let s = s.clone();
            async move { s.attempts.load(std::sync::atomic::Ordering::SeqCst) >= 1 }
        })
        .await;
        a.stop().await;

        let p = smppd::store::redis::partition::of_message_id(&id).unwrap();
        let pre = smppd::store::redis::partition::prefix("inflight:", p);
        let (racc, queue) = (format!("{pre}racc"), format!("{pre}r:hana"));
        let score = |r: &crate::support::servers::RedisServer| {
            r.command_resp(&["ZSCORE", &queue, &id])
                .and_then(|v| v.as_str())
                .and_then(|v| v.parse::<f64>().ok())
        };
        let held_until = score(&env.redis).expect("the receipt is queued, leased") as i64;
        let now_ms = |r: &crate::support::servers::RedisServer| {
            let t = r.command_resp(&["TIME"]).unwrap();
            let t: Vec<i64> = t.items().iter().map(|v| v.as_str().unwrap().parse().unwrap()).collect();
            t[0] * 1000 + t[1] / 1000
        };
        assert!(held_until > now_ms(&env.redis), "still leased to the stopped node");

        // The next node has no receiver of hana.
        let sink = TestSink::telling(false);
        let b = Running::start(settings, sink.clone()).await;
        let r = &env.redis;
        // The hold has ended (a second more for a worker that would take it): nothing
        // takes it without a receiver.
        wait_for("the stopped node's hold to end", T, async || {
            now_ms(r) > held_until + 1000
        })
        .await;
        assert_eq!(sink.attempts.load(std::sync::atomic::Ordering::SeqCst), 0);
        assert_eq!(score(r), Some(held_until as f64), "not taken");
        assert_eq!(
            r.command_resp(&["SISMEMBER", &racc, "hana"]).and_then(|v| v.as_int()),
            Some(1)
        );

        sink.bind("hana");
        let s = sink.clone();
        wait_for("the receipt after the bind", T, || {
            let s = s.clone();
            async move { s.count() >= 1 }
        })
        .await;
        assert_eq!(sink.receipts()[0].receipted_message_id, id);
        wait_for("the queue and its P:racc entry gone", T, async || {
            let left = (
                r.command_resp(&["SCARD", &racc]).and_then(|v| v.as_int()),
                r.command_resp(&["EXISTS", &queue]).and_then(|v| v.as_int()),
            );
            if left == (Some(0), Some(0)) {
                Ok(())
            } else {
                Err(format!("racc, queue: {left:?}"))
            }
        })
        .await;
        b.stop().await;
    }
);

both!(
    standalone receipts_survive_a_restart_and_are_dropped_after_their_lifetime,
    |kind: RedisKind| async move {
        let env = Env::start(kind);
        let sink = TestSink::new(false);
        let settings = env.settings("lifetime");
        let a = Running::start(settings.clone(), sink.clone()).await;
        let base = env.redis.dbsize();
        a.store
            .submit(request("gina", None, 0, b"kept", 1, ""))
            .await
            .unwrap();
        wait_outcomes(&a.store, 1, T).await;
        a.stop().await;
        // Restarted with a receiver bound: the queued receipt goes out.
        let sink2 = TestSink::new(true);
        let b = Running::start(settings.clone(), sink2.clone()).await;
        let s = sink2.clone();
        wait_for("the receipt queued before the restart", T, || {
            let s = s.clone();
            async move { s.count() >= 1 }
        })
        .await;
        wait_dbsize(&env.redis, base, T).await;
        b.stop().await;
        // With a 1 s lifetime and no receiver, it is dropped and counted.
        let mut short = settings;
        short.receipt_lifetime = Duration::from_secs(1);
        let sink3 = TestSink::new(false);
        let c = Running::start(short, sink3.clone()).await;
        c.store
            .submit(request("gina", None, 0, b"lost", 1, ""))
            .await
            .unwrap();
        let st = c.store.clone();
        wait_for("the receipt dropped", T, || {
            let st = st.clone();
            async move { st.counts()[Counter::ReceiptsDropped] >= 1 }
        })
        .await;
        wait_dbsize(&env.redis, base, T).await;
        assert_eq!(sink3.count(), 0);
        c.stop().await;
    }
);

both!(
    standalone query_cancel_and_replace_follow_the_message_state,
    |kind: RedisKind| async move {
        let env = Env::start(kind);
        let sink = TestSink::new(true);
        let run = Running::start(env.settings("ops"), sink.clone()).await;
        let base = env.redis.dbsize();
        let src = addr("12345");
        let seg = |r: u16, seq: u8, text: &[u8], rd: u8| {
            request(
                "hank",
                Some((ConcatScheme::Udh8, r, 2, seq)),
                0,
                text,
                rd,
                "",
            )
        };

        // Pending → ENROUTE; another account or source does not see it.
        let m1 = run
            .store
            .submit(seg(1, 1, b"old", 1))
            .await
            .unwrap()
            .message_id;
        let q = run.store.query("hank", &m1, &src).await.unwrap();
        assert_eq!((q.message_state, q.final_date), (1, None));
        assert!(matches!(
            run.store.query("other", &m1, &src).await,
            Err(ServiceError::Rejected { status: 0x0C, .. })
        ));
        assert!(run.store.query("hank", &m1, &addr("999")).await.is_err());

        // A replacement longer than the account's max_segment_octets is refused, as a
        // submit would be (ESME_RINVMSGLEN).
        let mut small = policy("hank");
        small.limits.max_segment_octets = 4;
        assert!(matches!(
            run.store
                .replace(&small, &m1, &src, 1, Bytes::new(), Bytes::from_static(b"12345"))
                .await,
            Err(ServiceError::Rejected { status: 0x01, .. })
        ));
        // Replace the pending segment (the new short_message carries its UDH).
        run.store
            .replace(
                &policy("hank"),
                &m1,
                &src,
                1,
                Bytes::new(),
                Bytes::from_static(&[5, 0, 3, 1, 2, 1, b'n', b'e', b'w', b' ']),
            )
            .await
            .unwrap();
        run.store.submit(seg(1, 2, b"text", 1)).await.unwrap();
        let docs = wait_outcomes(&run.store, 1, T).await;
        assert_eq!(docs[0].get_str("text").unwrap(), "new text");
        // Finished → from MongoDB: DELIVERED with its final date.
        let q = run.store.query("hank", &m1, &src).await.unwrap();
        assert_eq!(q.message_state, 2);
        assert!(q.final_date.is_some());
        assert!(matches!(
            run.store
                .replace(&policy("hank"), &m1, &src, 0, Bytes::new(), Bytes::from_static(b"x"))
                .await,
            Err(ServiceError::Rejected { status: 0x13, .. })
        ));

        // Cancel a pending message: CANCELLED, DELETED receipts as asked (failure only).
        let m2 = run
            .store
            .submit(seg(2, 1, b"cancel me", 2))
            .await
            .unwrap()
            .message_id;
        run.store.cancel("hank", &m2, &src, None, "").await.unwrap();
        let docs = wait_outcomes(&run.store, 2, T).await;
        let d = docs
            .iter()
            .find(|d| d.get_str("_id").unwrap() == gid_of(&m2))
            .unwrap();
        assert_eq!(d.get_str("state").unwrap(), "CANCELLED");
        let q = run.store.query("hank", &m2, &src).await.unwrap();
        assert_eq!(q.message_state, 4);
        assert!(matches!(
            run.store.cancel("hank", &m2, &src, None, "").await,
            Err(ServiceError::Rejected { status: 0x11, .. })
        ));
        let s = sink.clone();
        wait_for("3 receipts", T, || {
            let s = s.clone();
            async move { s.count() >= 3 }
        })
        .await;
        let deleted: Vec<_> = sink
            .receipts()
            .into_iter()
            .filter(|r| r.message_state == 4)
            .collect();
        assert_eq!(deleted.len(), 1);
        assert_eq!(deleted[0].receipted_message_id, m2);
        wait_dbsize(&env.redis, base, T).await;
        run.stop().await;
    }
);

// The batch scripts write an index once per batch, in slices (Lua's unpack() takes
// ~8,000 values at most): a lease of 4,500 outbox entries (9,000 ZADD values), their
// finalize and a receipt take of 4,500 must each go through whole, with every
// message written and its receipt sent once, and nothing left in Redis.
both!(
    standalone batches_larger_than_one_call_slice_finish_every_message_once,
    |kind: RedisKind| async move {
        const N: usize = 4500;
        let mut env = Env::start(kind);
        // No receiver yet, and the sink says so: the receipts wait untouched.
        let sink = TestSink::telling(false);
        let mut settings = env.settings("big");
        settings.outcome_batch_size = N + 100;
        settings.receipt_window = N + 100;
        let run = Running::start(settings, sink.clone()).await;
        let base = env.redis.dbsize();
        // MongoDB down while they arrive: the whole outbox is due at once when it is back.
        env.mongo.stop();
        let mut ids = HashSet::new();
        for i in 0..N {
            let id = run
                .store
                .submit(request("gina", None, 0, format!("m{i}").as_bytes(), 1, ""))
                .await
                .unwrap()
                .message_id;
            ids.insert(id);
        }
        assert_eq!(ids.len(), N);
        env.mongo.restart();
        let docs = wait_outcomes(&run.store, N as u64, Duration::from_secs(120)).await;
        let written: HashSet<String> = docs
            .iter()
            .map(|d| d.get_str("_id").unwrap().to_owned())
            .collect();
        let ids: HashSet<String> = ids.iter().map(|i| gid_of(i).to_owned()).collect();
        assert_eq!(written, ids, "one document per message");
        assert_eq!(docs.len(), N);
        // Receipts waited for a receiver; it binds, and one take gets them all.
        sink.bind("gina");
        let s = sink.clone();
        wait_for("every receipt", Duration::from_secs(120), || {
            let s = s.clone();
            async move { s.count() >= N }
        })
        .await;
        wait_dbsize(&env.redis, base, T).await;
        let receipts = sink.receipts();
        assert_eq!(receipts.len(), N, "each receipt once");
        let receipted: HashSet<String> = receipts
            .iter()
            .map(|r| r.receipted_message_id.clone())
            .collect();
        assert_eq!(receipted, ids, "a receipt for every message");
        assert_eq!(outcome_count(&run.store).await, N as u64);
        run.stop().await;
    }
);
