//! Expiry without polling, on Redis 7.0 (key expiry + one-shot timer) and Valkey 9
//! (hash-field expiration): partial delivery, whole expiry, several nodes, lost
//! subscriptions and stopped nodes.

use std::collections::HashSet;
use std::time::Duration;

use service::{ConcatScheme, ExpiryMode, MessageService};
use smppd::store::Counter;
use smppd::{service, store};
use store::{ExpiryBackend, Store};

use crate::support::backend::both;
use crate::support::backend::wait_dbsize;
use crate::support::harness::*;
use crate::support::messages::{gid_of, segment_texts};
use crate::support::servers::RedisKind;
use crate::support::wait_for;

const T: Duration = Duration::from_secs(30);
const TWO_SECONDS: &str = "000000000002000R";

/// Lateness of an outcome: completed_at − deadline (both Redis time), in ms.
fn lateness_ms(d: &mongodb::bson::Document) -> i64 {
    d.get_datetime("completed_at").unwrap().timestamp_millis()
        - d.get_datetime("deadline").unwrap().timestamp_millis()
}

/// Submits segments 1 and 2 of a 3-part message `reference` (2 s validity).
async fn two_of_three(store: &Store, reference: u16, account: &str) -> Vec<String> {
    let mut ids = Vec::new();
    for (seq, text) in [(1u8, b"first ".as_slice()), (2, b"second ")] {
        let mut req = request(
            account,
            Some((ConcatScheme::Udh8, reference, 3, seq)),
            0,
            text,
            1,
            TWO_SECONDS,
        );
        req.source = addr(&format!("src{reference}"));
        ids.push(store.submit(req).await.unwrap().message_id);
    }
    ids
}

both!(
    standalone expired_partial_message_is_delivered_segment_by_segment,
    |kind: RedisKind| async move {
        let env = Env::start(kind);
        let sink = TestSink::new(true);
        let run = Running::start(env.settings("partial"), sink.clone()).await;
        let expected = match kind {
            RedisKind::Redis7 => ExpiryBackend::KeyExpiry,
            RedisKind::Valkey9 => ExpiryBackend::HashFieldExpiry,
        };
        assert_eq!(run.store.backend(), expected);
        let base = env.redis.dbsize();
        let ids = two_of_three(&run.store, 42, "alice").await;
        let docs = wait_outcomes(&run.store, 1, T).await;
        let d = &docs[0];
        assert_eq!(d.get_str("_id").unwrap(), gid_of(&ids[0]));
        assert_eq!(d.get_str("state").unwrap(), "PARTIAL");
        assert_eq!(
            segment_texts(d),
            ["first ", "second "],
            "each decoded on its own"
        );
        let missing: Vec<i32> = d
            .get_array("missing")
            .unwrap()
            .iter()
            .map(|m| m.as_i32().unwrap())
            .collect();
        assert_eq!(missing, [3]);
        assert!(
            d.get("text").is_none(),
            "no assembled text for a partial message"
        );
        let late = lateness_ms(d);
        eprintln!("{kind:?}: partial message processed {late} ms after its deadline");
        assert!((0..2000).contains(&late), "{kind:?}: lateness {late} ms");
        // A DELIVRD receipt for each received segment.
        let s = sink.clone();
        wait_for("2 receipts", T, || {
            let s = s.clone();
            async move { s.count() >= 2 }
        })
        .await;
        let mut got: Vec<String> = sink
            .receipts()
            .iter()
            .map(|r| r.receipted_message_id.clone())
            .collect();
        got.sort();
        assert_eq!(got, ids);
        assert!(sink.receipts().iter().all(|r| r.message_state == 2));
        wait_dbsize(&env.redis, base, T).await;
        run.stop().await;
    }
);

both!(
    standalone account_expiring_whole_messages_gets_expired_outcome_and_receipts,
    |kind: RedisKind| async move {
        let env = Env::start(kind);
        let sink = TestSink::new(true);
        let run = Running::start(env.settings("whole"), sink.clone()).await;
        let base = env.redis.dbsize();
        let mut ids = Vec::new();
        for seq in [1u8, 3] {
            let mut req = request(
                "bob",
                Some((ConcatScheme::Sar, 5, 3, seq)),
                0,
                b"part",
                2, // failure only
                TWO_SECONDS,
            );
            req.policy.expiry_mode = ExpiryMode::ExpireWhole;
            ids.push(run.store.submit(req).await.unwrap().message_id);
        }
        let docs = wait_outcomes(&run.store, 1, T).await;
        assert_eq!(docs[0].get_str("state").unwrap(), "EXPIRED");
        let missing: Vec<i32> = docs[0]
            .get_array("missing")
            .unwrap()
            .iter()
            .map(|m| m.as_i32().unwrap())
            .collect();
        assert_eq!(missing, [2]);
        let s = sink.clone();
        wait_for("2 EXPIRED receipts", T, || {
            let s = s.clone();
            async move { s.count() >= 2 }
        })
        .await;
        for r in sink.receipts() {
            assert_eq!(r.message_state, 3);
            assert!(String::from_utf8(r.short_message)
                .unwrap()
                .contains("stat:EXPIRED"));
        }
        wait_dbsize(&env.redis, base, T).await;
        run.stop().await;
    }
);

both!(
    standalone two_nodes_sharing_redis_process_every_expired_message_exactly_once,
    |kind: RedisKind| async move {
        let env = Env::start(kind);
        let (sink_a, sink_b) = (TestSink::new(true), TestSink::new(true));
        let a = Running::start(env.settings("twonodes"), sink_a.clone()).await;
        let mut settings_b = env.settings("twonodes");
        settings_b.node_id = "node-b".into();
        let b = Running::start(settings_b, sink_b.clone()).await;
        let base = env.redis.dbsize();
        let mut all = Vec::new();
        for r in 0..20u16 {
            // Segments of one message arrive on both nodes.
            let mut req1 = request(
                "carol",
                Some((ConcatScheme::Udh8, r, 3, 1)),
                0,
                b"x",
                1,
                TWO_SECONDS,
            );
            let mut req2 = request(
                "carol",
                Some((ConcatScheme::Udh8, r, 3, 2)),
                0,
                b"y",
                1,
                TWO_SECONDS,
            );
            req1.source = addr(&format!("s{r}"));
            req2.source = addr(&format!("s{r}"));
            let (first, second) = if r % 2 == 0 { (&a, &b) } else { (&b, &a) };
            all.push(first.store.submit(req1).await.unwrap().message_id);
            all.push(second.store.submit(req2).await.unwrap().message_id);
        }
        let docs = wait_outcomes(&a.store, 20, T).await;
        let (sa, sb) = (sink_a.clone(), sink_b.clone());
        wait_for("40 receipts", T, || {
            let (sa, sb) = (sa.clone(), sb.clone());
            async move { sa.count() + sb.count() >= 40 }
        })
        .await;
        wait_dbsize(&env.redis, base, T).await;
        assert_eq!(
            outcome_count(&a.store).await,
            20,
            "one document per message"
        );
        assert!(docs
            .iter()
            .all(|d| d.get_str("state").unwrap() == "PARTIAL"));
        let claimed = a.store.counts()[Counter::ExpiredClaimed] + b.store.counts()[Counter::ExpiredClaimed];
        assert_eq!(claimed, 20, "each message claimed by exactly one node");
        let nodes: HashSet<&str> = docs.iter().map(|d| d.get_str("node").unwrap()).collect();
        eprintln!(
            "{kind:?}: claims by node: a={} b={} ({nodes:?})",
            a.store.counts()[Counter::ExpiredClaimed],
            b.store.counts()[Counter::ExpiredClaimed]
        );
        let receipts: Vec<String> = sink_a
            .receipts()
            .into_iter()
            .chain(sink_b.receipts())
            .map(|r| r.receipted_message_id)
            .collect();
        assert_eq!(receipts.len(), 40, "no receipt twice");
        let unique: HashSet<&String> = receipts.iter().collect();
        assert_eq!(unique.len(), 40);
        let max_late = docs.iter().map(lateness_ms).max().unwrap();
        eprintln!("{kind:?}: two nodes, 20 messages, max lateness {max_late} ms");
        assert!(max_late < 2000, "{max_late}");
        a.stop().await;
        b.stop().await;
    }
);

both!(
    standalone messages_expiring_while_nobody_listens_are_processed_by_the_recovery_pass,
    |kind: RedisKind| async move {
        let env = Env::start(kind);
        let sink = TestSink::new(true);
        let settings = env.settings("recovery");
        let a = Running::start(settings.clone(), sink.clone()).await;
        let base = env.redis.dbsize();

        // 1. The subscriber's connection is killed: it resubscribes, runs a recovery
        //    pass, and the messages pending across the kill are still processed.
        for r in 0..5u16 {
            two_of_three(&a.store, r, "dave").await;
        }
        assert!(env.redis.kill_pubsub_clients() >= 1);
        let st = a.store.clone();
        wait_for("a resubscription", T, || {
            let st = st.clone();
            async move { st.counts()[Counter::Subscriptions] >= 2 && st.counts()[Counter::RecoveryPasses] >= 2 }
        })
        .await;
        wait_outcomes(&a.store, 5, T).await;

        // 2. The node stops with messages pending; their deadline passes with no
        //    subscriber at all; a new node started afterwards processes them.
        for r in 100..105u16 {
            two_of_three(&a.store, r, "dave").await;
        }
        a.stop().await;
        let deadline = std::time::Instant::now() + Duration::from_millis(2500);
        wait_for(
            "the deadline to pass with no node running",
            T,
            || async move { std::time::Instant::now() >= deadline },
        )
        .await;
        let b = Running::start(settings, sink.clone()).await;
        let docs = wait_outcomes(&b.store, 10, T).await;
        assert_eq!(docs.len(), 10);
        assert!(docs
            .iter()
            .all(|d| d.get_str("state").unwrap() == "PARTIAL"));
        let s = sink.clone();
        wait_for("20 receipts", T, || {
            let s = s.clone();
            async move { s.count() >= 20 }
        })
        .await;
        // The node label is the same; the node_seq counter is the only key added.
        wait_dbsize(&env.redis, base, T).await;
        b.stop().await;
    }
);

both!(
    standalone keyspace_events_are_set_when_allowed_and_start_is_refused_otherwise,
    |kind: RedisKind| async move {
        let env = Env::start(kind);
        env.redis
            .command(&["CONFIG", "SET", "notify-keyspace-events", ""])
            .unwrap();
        let mut s = env.settings("events");
        s.configure_keyspace_events = false;
        let err = Store::connect(s.clone())
            .await
            .err()
            .expect("start refused");
        let msg = err.to_string();
        assert!(msg.contains("notify-keyspace-events"), "{msg}");
        assert!(msg.contains("configure_keyspace_events"), "{msg}");
        s.configure_keyspace_events = true;
        Store::connect(s).await.unwrap();
        let flags = env
            .redis
            .command(&["CONFIG", "GET", "notify-keyspace-events"])
            .unwrap();
        assert!(flags.contains('E') && flags.contains('x'), "{flags}");
    }
);

/// Messages pending beside the one that expires in
/// [`a_deadline_among_many_pending_messages_fires_on_time_on_valkey`].
const PENDING: u32 = 50_000;
/// 1 h validity.
const ONE_HOUR: &str = "000000010000000R";

/// Valkey finds keys with volatile hash fields by sampling, as it does keys with a TTL:
/// with one timer hash per pending message, a lone due one among 50k waits about
/// 50k / (20 × hz) ≈ 250 s for its `hexpired` event. With every timer a field of the
/// one hash `P:timers` the server's event comes at the latest when the field's time
/// bucket ends (up to 8192 ms for a deadline with few neighbours: measured 3.9–6.3 s
/// here); the node's local timer heap (`src/store/expiry/timers.rs`) claims it at the
/// deadline. Fails with per-message timer hashes (no claim in 40 s) and without the
/// local timer on this backend (seconds late).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deadline_among_many_pending_messages_fires_on_time_on_valkey() {
    use futures::StreamExt;
    let env = Env::start(RedisKind::Valkey9);
    let sink = TestSink::new(true);
    let run = Running::start(env.settings("many"), sink.clone()).await;
    assert_eq!(run.store.backend(), ExpiryBackend::HashFieldExpiry);
    let started = std::time::Instant::now();
    let store = &run.store;
    let stored = futures::stream::iter(0..PENDING)
        .map(|i| async move {
            // Segment 1 of 2: pending, with a deadline an hour away.
            let mut req = request(
                "erin",
                Some((ConcatScheme::Udh8, (i % 256) as u16, 2, 1)),
                0,
                b"far",
                0,
                ONE_HOUR,
            );
            req.source = addr(&format!("far{i}"));
            store.submit(req).await.unwrap();
        })
        .buffer_unordered(128)
        .count()
        .await;
    assert_eq!(stored, PENDING as usize);
    eprintln!(
        "{PENDING} pending messages stored in {:?}",
        started.elapsed()
    );
    let ids = two_of_three(&run.store, 1, "erin").await;
    let submitted = std::time::Instant::now();
    // The deadline is 2 s away; allow far more before giving up, to print how late.
    let give_up = submitted + Duration::from_secs(40);
    loop {
        if outcome_count(&run.store).await >= 1 {
            break;
        }
        assert!(
            std::time::Instant::now() < give_up,
            "the message due 2 s after its submit was not claimed {:?} after it \
             (expired_claimed = {})",
            submitted.elapsed(),
            run.store.counts()[Counter::ExpiredClaimed]
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let docs = outcomes(&run.store).await;
    assert_eq!(docs.len(), 1);
    let d = &docs[0];
    assert_eq!(d.get_str("_id").unwrap(), gid_of(&ids[0]));
    assert_eq!(d.get_str("state").unwrap(), "PARTIAL");
    let late = lateness_ms(d);
    eprintln!("among {PENDING} pending messages: claimed {late} ms after its deadline");
    assert!(
        (0..=1500).contains(&late),
        "lateness {late} ms (the local timer claims at the deadline)"
    );
    assert_eq!(run.store.counts()[Counter::ExpiredClaimed], 1);
    run.stop().await;
}

both!(
    standalone a_message_that_completes_leaves_the_timer_set_at_once,
    |kind: RedisKind| async move {
        // The local timer set must hold the pending messages only: a message that
        // completes long before its deadline (here an hour away) leaves it when it
        // finishes, or every node would keep every multi-part message of the last
        // validity period (48 h by default) in memory.
        let env = Env::start(kind);
        let sink = TestSink::new(true);
        let run = Running::start(env.settings("disarm"), sink.clone()).await;
        let first = request(
            "alice",
            Some((ConcatScheme::Udh8, 9, 2, 1)),
            0,
            b"one ",
            0,
            ONE_HOUR,
        );
        run.store.submit(first).await.unwrap();
        // The deadline reaches the timer set through the P:armed announcement.
        wait_stats(&run.store, |s| s.timers_armed() == 1, "the deadline armed").await;
        let last = request(
            "alice",
            Some((ConcatScheme::Udh8, 9, 2, 2)),
            0,
            b"two",
            0,
            ONE_HOUR,
        );
        run.store.submit(last).await.unwrap();
        wait_stats(&run.store, |s| s.timers_armed() == 0, "the timer disarmed").await;
        let docs = wait_outcomes(&run.store, 1, T).await;
        assert_eq!(docs[0].get_str("state").unwrap(), "DELIVERED");
    }
);

/// Polls the store's counters until `ok` holds (fails after [`T`]).
async fn wait_stats(store: &Store, ok: impl Fn(&Store) -> bool, what: &str) {
    wait_for(what, T, async || {
        if ok(store) {
            Ok(())
        } else {
            Err(format!(
                "{:?}, {} timers armed",
                store.counts(),
                store.timers_armed()
            ))
        }
    })
    .await
}

both!(
    standalone expired_messages_receipts_are_released_with_the_data_the_claim_read,
    |kind: RedisKind| async move {
        let env = Env::start(kind);
        let sink = TestSink::new(true);
        let run = Running::start(env.settings("handoff"), sink.clone()).await;
        // The start's own release pass (P:fresh, empty) is behind us.
        wait_stats(&run.store, |s| s.counts()[Counter::RecoveryPasses] >= 1, "recovery pass").await;
        let ids = two_of_three(&run.store, 77, "carol").await;
        let s = sink.clone();
        wait_for("2 receipts", T, || {
            let s = s.clone();
            async move { s.count() >= 2 }
        })
        .await;
        let st = run.store.counts();
        // Released from the claim's reply, not from a second read of the group.
        assert_eq!((st[Counter::ReleasedClaimed], st[Counter::ReleasedFresh]), (1, 0), "{st:?}");
        // And sent from this node's memory, not taken back from Redis.
        wait_stats(&run.store, |s| s.counts()[Counter::ReceiptsDelivered] >= 2, "2 delivered").await;
        let st = run.store.counts();
        assert_eq!(st[Counter::ReceiptsSentLocal], 2, "{st:?}");
        let mut got: Vec<String> = sink
            .receipts()
            .iter()
            .map(|r| r.receipted_message_id.clone())
            .collect();
        got.sort();
        assert_eq!(got, ids);
        run.stop().await;
    }
);

both!(
    standalone a_burst_of_expiries_larger_than_the_release_queue_gets_every_receipt_once,
    |kind: RedisKind| async move {
        use futures::StreamExt;
        // 16 batches of 256 fit the claimed-batch queue; more than that may go
        // through P:fresh instead (when the releaser is behind its claims). Either
        // way each message is released once, by one path.
        const N: u16 = 5000;
        let env = Env::start(kind);
        let sink = TestSink::new(true);
        let run = Running::start(env.settings("burst"), sink.clone()).await;
        let base = env.redis.dbsize();
        let store = run.store.clone();
        let ids: Vec<String> = futures::stream::iter(0..N)
            .map(|i| {
                let store = store.clone();
                async move {
                    let mut req = request(
                        "dave",
                        Some((ConcatScheme::Udh16, i, 2, 1)),
                        0,
                        b"half",
                        1,
                        TWO_SECONDS,
                    );
                    req.source = addr("burst");
                    store.submit(req).await.unwrap().message_id
                }
            })
            .buffer_unordered(256)
            .collect()
            .await;
        let s = sink.clone();
        wait_for("a receipt per message", T, || {
            let s = s.clone();
            async move { s.count() >= N as usize }
        })
        .await;
        wait_dbsize(&env.redis, base, T).await;
        let st = run.store.counts();
        assert_eq!(st[Counter::ExpiredClaimed], N as u64);
        // The releaser takes most (from the claims' data or from P:fresh); the
        // outcome writer's finalize releases the rest when it gets there first, which
        // a loaded machine decides, not the code: the counts only bound each other.
        assert!(st[Counter::ReleasedClaimed] > 0, "{st:?}");
        assert!(
            st[Counter::ReleasedClaimed] + st[Counter::ReleasedFresh] <= N as u64,
            "{st:?}"
        );
        assert!(st[Counter::ReceiptsSentLocal] <= N as u64, "{st:?}");
        let got: HashSet<String> = sink
            .receipts()
            .iter()
            .map(|r| r.receipted_message_id.clone())
            .collect();
        assert_eq!(sink.count(), N as usize, "a receipt sent twice");
        assert_eq!(got, ids.into_iter().collect::<HashSet<_>>());
        run.stop().await;
    }
);
