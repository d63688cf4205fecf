//! How a pending message sits in Redis: each segment's data once, in binary, in its
//! message's value `P{tag}:g:<id>` (its size and the index sets' encoding are budgets
//! of `scripts/mem-layout.sh`, not tests); the layout version (a store of another one is
//! refused at start). On Redis 7.0 and Valkey 9.

use std::time::Duration;

use redis::AsyncCommands;
use service::{ConcatScheme, MessageService};
use smppd::store::Counter;
use smppd::{service, store};
use store::model::pending::{self, group_ids, PendingHead};
use store::model::{group_key, GroupMeta, StoredSegment};

use crate::support::backend::both;
use crate::support::backend::wait_dbsize;
use crate::support::harness::*;
use crate::support::messages::{gid_of, segment_texts, ucs2};
use crate::support::servers::RedisKind;
use crate::support::wait_for;

const T: Duration = Duration::from_secs(30);

/// Every receipt came and Redis holds what it held before the scenario: nothing of
/// the message is left.
async fn receipts_and_nothing_left(
    env: &Env,
    sink: &std::sync::Arc<TestSink>,
    n: usize,
    base: u64,
) {
    let s = sink.clone();
    wait_for(&format!("{n} receipts"), T, || {
        let s = s.clone();
        async move { s.count() >= n }
    })
    .await;
    wait_dbsize(&env.redis, base, T).await;
}

async fn redis_conn(env: &Env) -> redis::aio::MultiplexedConnection {
    redis::Client::open(env.redis.url())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap()
}

/// Redis' clock in ms.
async fn redis_time_ms(r: &mut redis::aio::MultiplexedConnection) -> i64 {
    let time: (String, String) = redis::cmd("TIME").query_async(r).await.unwrap();
    time.0.parse::<i64>().unwrap() * 1000
}

/// Writes `first` as the first segment of a pending message straight into Redis, in
/// this layout (the pending value, the deadline index entry, the account's usage), as
/// another node's submit would leave it — but with no timer and no `P:armed`
/// announcement. `prefix`: the store's key prefix (the group's partition is added).
/// Returns the group key.
async fn write_pending(
    r: &mut redis::aio::MultiplexedConnection,
    prefix: &str,
    first: &service::SubmitRequest,
    id: &str,
    now_ms: i64,
    deadline: i64,
) -> String {
    let p = partition_of(first);
    let prefix = &partition_prefix_of(prefix, first);
    let gk = group_key(&GroupMeta::of(first));
    let (gid_hex, _) = group_ids(&gk);
    let seq = first.concat.as_ref().map_or(1, |c| c.seq);
    let seg = StoredSegment::from_request(first);
    // The value SUBMIT writes (`pg_encode` in lib.lua): flags (partition, a hex
    // uniq, expiry mode 'p'), deadline and submit time in 6 octets, the node id's
    // epoch and counter packed, the group key; one segment received at the submit
    // time (no rid, no own id).
    let mut v = vec![((p as u8) << 4) | 8];
    v.extend_from_slice(&deadline.to_be_bytes()[2..]);
    v.extend_from_slice(&now_ms.to_be_bytes()[2..]);
    v.extend(hex::decode(&id[2..]).unwrap());
    v.push(gk.len() as u8);
    v.extend_from_slice(gk.as_bytes());
    v.extend_from_slice(&[seq, 1, seg.dc, seg.esm, seg.rd, seg.uo as u8]);
    v.extend_from_slice(&(seg.raw.len() as u16).to_be_bytes());
    v.extend_from_slice(&seg.raw);
    let _: () = r.set(format!("{prefix}g:{gid_hex}"), v).await.unwrap();
    let member = u64::from_str_radix(&gid_hex, 16).unwrap();
    let bucket = (deadline + 999) / 1000 * 1000;
    let _: () = r
        .sadd(format!("{prefix}ix:{bucket}"), member)
        .await
        .unwrap();
    let _: () = r
        .zadd(format!("{prefix}ixb"), bucket, bucket)
        .await
        .unwrap();
    // The account's usage, as SUBMIT counts it.
    let octets = seg.record_len() as i64;
    let usage = format!("{prefix}usage");
    let account = &first.policy.system_id;
    let _: () = r.hincr(&usage, format!("n:{account}"), 1).await.unwrap();
    let _: () = r
        .hincr(&usage, format!("b:{account}"), octets)
        .await
        .unwrap();
    let _: () = r.hincr(&usage, "b", octets).await.unwrap();
    let _: () = r.hincr(&usage, "n", 1).await.unwrap();
    let _: () = r.hincr(&usage, "g", 1).await.unwrap();
    format!("{p:02X}{gid_hex}{}", &id[2..])
}

both!(
    standalone a_pending_segment_keeps_its_octets_as_received_until_its_outcome,
    |kind: RedisKind| async move {
        let env = Env::start(kind);
        let sink = TestSink::new(true);
        let run = Running::start(env.settings("layout"), sink.clone()).await;
        let base = env.redis.dbsize();
        let mut r = redis_conn(&env).await;
        // UCS-2 with octets that are neither text nor JSON-safe (LF, NUL, 0xFF).
        let text = ucs2("é\n\u{ff00}part one ");
        let first = request("ivy", Some((ConcatScheme::Udh8, 9, 2, 1)), 8, &text, 1, "");
        let raw = first.raw_user_data.to_vec();
        let gk = group_key(&GroupMeta::of(&first));
        let first_req = first.clone();
        let id1 = run.store.submit(first).await.unwrap().message_id;

        // One value for the message, its segment inside as received, in binary;
        // the segment's id names the group (its gid and its seq).
        let value: Vec<u8> = r
            .get(pending_group_key("layout:", &first_req))
            .await
            .unwrap();
        let head = PendingHead::parse(&value).unwrap();
        assert_eq!(head.gk, gk);
        assert_eq!(format!("{}01", head.gid(&group_ids(&gk).0)), id1);
        let segs = pending::segments(&value).unwrap();
        assert_eq!(segs.len(), 1);
        assert_eq!((segs[0].seq, &segs[0].data.raw), (1, &raw));
        assert!(value.ends_with(&raw), "the short_message as received, in binary");
        let in_hex = hex::encode(&raw);
        assert!(
            !value.windows(in_hex.len()).any(|w| w == in_hex.as_bytes()),
            "the data is stored once, not also in hex"
        );

        let second = request(
            "ivy",
            Some((ConcatScheme::Udh8, 9, 2, 2)),
            8,
            &ucs2("part two"),
            1,
            "",
        );
        let id2 = run.store.submit(second).await.unwrap().message_id;
        let docs = wait_outcomes(&run.store, 1, T).await;
        let d = &docs[0];
        assert_eq!(d.get_str("_id").unwrap(), gid_of(&id1));
        assert_eq!(d.get_str("state").unwrap(), "DELIVERED");
        assert_eq!(d.get_str("text").unwrap(), "é\n\u{ff00}part one part two");
        assert_eq!(d.get_str("scheme").unwrap(), "udh8");
        assert_eq!(d.get_i32("reference").unwrap(), 9);
        let seg = d.get_array("segments").unwrap();
        assert_eq!(
            seg[1].as_document().unwrap().get_str("message_id").unwrap(),
            id2
        );
        receipts_and_nothing_left(&env, &sink, 2, base).await;
        run.stop().await;
    }
);

// Addresses are C-Octet strings: any octet but NUL, LF and spaces included. The
// group key holds them, so a segment key's value carries its length: such a message
// is still found by query/replace and completes.
both!(
    standalone a_source_address_with_lf_and_spaces_still_completes,
    |kind: RedisKind| async move {
        let env = Env::start(kind);
        let sink = TestSink::new(true);
        let run = Running::start(env.settings("odd"), sink.clone()).await;
        let base = env.redis.dbsize();
        // '|' and ':' as well: the scripts read the owner back from the group key.
        let odd = addr("12\n3 4|5:x");
        let mut first = request(
            "kim",
            Some((ConcatScheme::Sar, 77, 2, 1)),
            0,
            b"one ",
            1,
            "",
        );
        first.source = odd.clone();
        let id1 = run.store.submit(first).await.unwrap().message_id;
        let q = run.store.query("kim", &id1, &odd).await.unwrap();
        assert_eq!(q.message_state, 1, "ENROUTE");
        // Another account, or a source that differs only after the separators, does
        // not see it.
        assert!(run.store.query("kimo", &id1, &odd).await.is_err());
        assert!(run
            .store
            .query("kim", &id1, &addr("12\n3 4|5:y"))
            .await
            .is_err());
        assert!(run
            .store
            .query("kim", &id1, &addr("12\n3 4"))
            .await
            .is_err());
        run.store
            .replace(
                &policy("kim"),
                &id1,
                &odd,
                1,
                bytes::Bytes::new(),
                // Longer than the original: the account's usage follows it.
                bytes::Bytes::from_static(b"the first "),
            )
            .await
            .unwrap();
        let mut second = request("kim", Some((ConcatScheme::Sar, 77, 2, 2)), 0, b"two", 1, "");
        second.source = odd.clone();
        run.store.submit(second).await.unwrap();
        let docs = wait_outcomes(&run.store, 1, T).await;
        let d = &docs[0];
        assert_eq!(d.get_str("state").unwrap(), "DELIVERED");
        assert_eq!(d.get_str("text").unwrap(), "the first two");
        assert_eq!(
            d.get_document("source").unwrap().get_str("addr").unwrap(),
            "12\n3 4|5:x"
        );
        receipts_and_nothing_left(&env, &sink, 2, base).await;
        run.stop().await;
    }
);

// A single-part message is complete on arrival: one hash of the fields nothing else
// gives (its receipt time, id and finish time are its submit time and its own id),
// read back whole for query_sm and its outcome document.
both!(
    standalone a_single_part_message_is_one_hash_of_what_cannot_be_derived,
    |kind: RedisKind| async move {
        let mut env = Env::start(kind);
        let sink = TestSink::new(true);
        let run = Running::start(env.settings("single"), sink.clone()).await;
        let mut r = redis_conn(&env).await;
        // Outcomes wait in Redis while MongoDB is down, so the hash can be looked at.
        env.mongo.stop();
        let src = addr("12345");
        let mut req = request("ned", None, 0, b"just one", 1, "");
        req.service_type = "WAP".into();
        let id = run.store.submit(req).await.unwrap().message_id;
        let st = run.store.clone();
        wait_for("a failed outcome write", T, || {
            let st = st.clone();
            async move { st.counts()[Counter::OutcomeWriteFailures] >= 1 }
        })
        .await;
        let mut fields: Vec<String> = r.hkeys(id_key("single:", "d", &id)).await.unwrap();
        // ln/le: the outcome writer's lease.
        fields.retain(|f| f != "ln" && f != "le");
        fields.sort();
        assert_eq!(
            fields,
            ["dl", "gid", "gk", "m:1", "node", "st", "state", "sub"]
        );
        // The segment is a binary record, no JSON and no hex.
        let m1: Vec<u8> = r.hget(id_key("single:", "d", &id), "m:1").await.unwrap();
        assert!(
            m1.starts_with(b"= 0 \n") && m1.ends_with(b"\njust one"),
            "{m1:?}"
        );
        let q = run.store.query("ned", &id, &src).await.unwrap();
        assert_eq!(q.message_state, 2, "DELIVERED");
        assert!(q.final_date.is_some(), "final at its submit time");
        assert!(run.store.query("nedx", &id, &src).await.is_err());

        env.mongo.restart();
        let docs = wait_outcomes(&run.store, 1, Duration::from_secs(60)).await;
        let d = &docs[0];
        assert_eq!(d.get_str("_id").unwrap(), id);
        assert_eq!(d.get_str("state").unwrap(), "DELIVERED");
        assert_eq!(d.get_str("text").unwrap(), "just one");
        assert_eq!(d.get_str("service_type").unwrap(), "WAP");
        assert_eq!(d.get_str("account").unwrap(), "ned");
        assert_eq!(
            d.get_datetime("completed_at").unwrap(),
            d.get_datetime("submitted_at").unwrap()
        );
        let seg = d.get_array("segments").unwrap()[0].as_document().unwrap();
        assert_eq!(seg.get_str("message_id").unwrap(), id);
        assert_eq!(seg.get_i32("seq").unwrap(), 1);
        assert_eq!(
            seg.get_datetime("received_at").unwrap(),
            d.get_datetime("submitted_at").unwrap()
        );
        run.stop().await;
    }
);

// A group is named after the segment that arrived first, whichever its seq (its
// node id makes the gid unique); every segment's id names that gid and its own seq,
// and leads query_sm, replace_sm and cancel_sm to the message.
both!(
    standalone a_later_segments_record_names_the_group_of_the_first_arrival,
    |kind: RedisKind| async move {
        let env = Env::start(kind);
        let sink = TestSink::new(true);
        let run = Running::start(env.settings("named"), sink.clone()).await;
        let base = env.redis.dbsize();
        let mut r = redis_conn(&env).await;
        let part = |seq: u8, text: &'static [u8]| {
            request(
                "max",
                Some((ConcatScheme::Udh8, 42, 3, seq)),
                0,
                text,
                1,
                "",
            )
        };
        let first_in = run.store.submit(part(2, b"two ")).await.unwrap().message_id;
        let later = run.store.submit(part(1, b"one ")).await.unwrap().message_id;
        assert_eq!((&first_in[35..], &later[35..]), ("02", "01"));
        assert_eq!(gid_of(&first_in), gid_of(&later));
        // One value holds both, in arrival order; no key per segment.
        let v: Vec<u8> = r.get(pending_group_key("named:", &part(1, b""))).await.unwrap();
        let head = PendingHead::parse(&v).unwrap();
        let gk = group_key(&GroupMeta::of(&part(1, b"")));
        assert_eq!(head.gid(&group_ids(&gk).0), gid_of(&first_in));
        let seqs: Vec<u8> = pending::segments(&v).unwrap().iter().map(|s| s.seq).collect();
        assert_eq!(seqs, [2, 1]);
        let keys: Vec<String> = r.keys("named:*:m:*").await.unwrap();
        assert!(keys.is_empty(), "{keys:?}");

        let src = addr("12345");
        for id in [&first_in, &later] {
            let q = run.store.query("max", id, &src).await.unwrap();
            assert_eq!(q.message_state, 1, "ENROUTE by {id}");
            assert!(run.store.query("maxi", id, &src).await.is_err());
        }
        run.store
            .replace(
                &policy("max"),
                &later,
                &src,
                3,
                bytes::Bytes::new(),
                bytes::Bytes::from_static(&[5, 0, 3, 42, 3, 1, b'u', b'n', b'o', b' ']),
            )
            .await
            .unwrap();
        run.store
            .cancel("max", &later, &src, None, "")
            .await
            .unwrap();
        let docs = wait_outcomes(&run.store, 1, T).await;
        let d = &docs[0];
        assert_eq!(
            d.get_str("_id").unwrap(),
            gid_of(&first_in),
            "the group is its first arrival's"
        );
        assert_eq!(d.get_str("state").unwrap(), "CANCELLED");
        let texts = segment_texts(d);
        assert!(texts.contains(&"uno ".to_owned()), "{texts:?}");
        // Both were final by then: query finds them so, by either id.
        for id in [&first_in, &later] {
            let q = run.store.query("max", id, &src).await.unwrap();
            assert_eq!(q.message_state, 4, "CANCELLED by {id}");
        }
        wait_dbsize(&env.redis, base, T).await;
        run.stop().await;
    }
);

// The server's own expiry event is the backstop for a deadline no node's timer set
// watches: a pending message written straight into Redis after this node loaded its
// timers (never announced on P:armed), with the timer of the server's kind. Only the
// `expired` (Redis 7.0) or `hexpired` (Valkey 9) event can get it claimed.
both!(
    standalone a_deadline_no_node_watches_is_claimed_on_the_servers_expiry_event,
    |kind: RedisKind| async move {
        let env = Env::start(kind);
        let sink = TestSink::new(true);
        let mut r = redis_conn(&env).await;
        // Deadline-index entries far ahead that the node loads when it subscribes:
        // once it watches both, its load is done.
        let now_ms = redis_time_ms(&mut r).await;
        // In the last partition: the node loads them in order, so once it watches the
        // sentinel its load is over.
        let last = store::redis::partition::COUNT - 1;
        let sentinel = format!("{}deadlines", store::redis::partition::prefix("unwatched:", last));
        let _: () = r
            .zadd(&sentinel, "sentinel", now_ms + 3_600_000)
            .await
            .unwrap();
        // And a pending group's id in its second of the index (sets by second).
        let last_pre = store::redis::partition::prefix("unwatched:", last);
        let far = (now_ms + 3_600_000 + 999) / 1000 * 1000;
        let _: () = r.sadd(format!("{last_pre}ix:{far}"), 123).await.unwrap();
        let _: () = r.zadd(format!("{last_pre}ixb"), far, far).await.unwrap();
        // A store of this layout (its deadline index is not empty).
        let _: () = r
            .set(store::redis::layout::key("unwatched:"), store::redis::layout::VERSION)
            .await
            .unwrap();
        let run = Running::start(env.settings("unwatched"), sink.clone()).await;
        let st = run.store.clone();
        wait_for("the timers loaded from the deadline index", T, || {
            let st = st.clone();
            async move { st.timers_armed() == 2 }
        })
        .await;
        // What Redis holds before the message (the node's epoch counter, the sentinels).
        let base = env.redis.dbsize();

        let first = request(
            "lee",
            Some((ConcatScheme::Udh16, 301, 2, 1)),
            0,
            b"nobody watched me",
            1,
            "",
        );
        // An id of the group's partition, as a node gives it.
        let pre = partition_prefix_of("unwatched:", &first);
        let id = &format!("{:02X}0000000000000000CAFE", partition_of(&first));
        let now_ms = redis_time_ms(&mut r).await;
        let deadline = now_ms + 1_500;
        let gid = write_pending(&mut r, "unwatched:", &first, id, now_ms, deadline).await;
        // The timer of its deadline's 1-s bucket, in the server's form.
        let bucket = (deadline + 999) / 1000 * 1000;
        match kind {
            RedisKind::Redis7 => {
                let _: () = redis::cmd("SET")
                    .arg(format!("{pre}t:#{bucket}"))
                    .arg("1")
                    .arg("PXAT")
                    .arg(bucket)
                    .query_async(&mut r)
                    .await
                    .unwrap();
            }
            RedisKind::Valkey9 => {
                let field = format!("#{bucket}");
                let _: () = r.hset(format!("{pre}timers"), &field, "1").await.unwrap();
                let _: () = redis::cmd("HPEXPIREAT")
                    .arg(format!("{pre}timers"))
                    .arg(bucket)
                    .arg("FIELDS")
                    .arg(1)
                    .arg(&field)
                    .query_async(&mut r)
                    .await
                    .unwrap();
            }
        }

        let docs = wait_outcomes(&run.store, 1, T).await;
        assert_eq!(docs[0].get_str("_id").unwrap(), gid);
        assert_eq!(docs[0].get_str("state").unwrap(), "PARTIAL");
        assert_eq!(
            run.store.timers_armed(),
            2,
            "the message never entered this node's timer set (the sentinels only): {:?}",
            run.store.counts()
        );
        receipts_and_nothing_left(&env, &sink, 1, base).await;
        run.stop().await;
    }
);

// The server's timers are per partition and deadline bucket (1 s), not per message:
// pending messages of a partition whose deadlines fall in the same second share one
// timer (Redis 7.0: a key `P{t}:t:#<bucket end>`, Valkey 9: a field `#<bucket end>`
// of `P{t}:timers`), and when they complete early it goes with the last of them. Fails with a timer per message (50
// timers) and when an emptied bucket's timer is left to its deadline (an hour).
both!(
    standalone pending_messages_share_a_timer_per_deadline_bucket_and_it_goes_with_the_last,
    |kind: RedisKind| async move {
        use futures::StreamExt;
        const N: u16 = 50;
        let env = Env::start(kind);
        let sink = TestSink::new(true);
        let run = Running::start(env.settings("bucket"), sink.clone()).await;
        let base = env.redis.dbsize();
        let mut r = redis_conn(&env).await;
        // An absolute validity: every message has the same deadline, an hour ahead.
        let now_ms = redis_time_ms(&mut r).await;
        let deadline = now_ms + 3_600_000;
        let at = chrono::DateTime::from_timestamp_millis(deadline).unwrap();
        let validity = format!("{}000+", at.format("%y%m%d%H%M%S"));
        let part = |i: u16, seq: u8| {
            let mut req = request(
                "mia",
                Some((ConcatScheme::Udh16, i, 2, seq)),
                0,
                b"half",
                1,
                &validity,
            );
            req.source = addr("bucket");
            req
        };
        // Messages of one partition.
        let refs = refs_in_one_partition(N as usize, |i| part(i, 1));
        let pre = partition_prefix_of("bucket:", &part(refs[0], 1));
        let part = |i: u16, seq: u8| part(refs[i as usize], seq);
        let store = run.store.clone();
        futures::stream::iter(0..N)
            .map(|i| {
                let store = store.clone();
                let req = part(i, 1);
                async move { store.submit(req).await.unwrap() }
            })
            .buffer_unordered(16)
            .collect::<Vec<_>>()
            .await;
        // An absolute validity has whole seconds (tenths 0): the deadline is its own
        // bucket's end.
        let bucket = deadline / 1000 * 1000;
        match kind {
            RedisKind::Redis7 => {
                let keys: Vec<String> = r.keys(format!("{pre}t:*")).await.unwrap();
                assert_eq!(keys, [format!("{pre}t:#{bucket}")]);
                let pexpiretime: i64 = redis::cmd("PEXPIRETIME")
                    .arg(&keys[0])
                    .query_async(&mut r)
                    .await
                    .unwrap();
                assert_eq!(pexpiretime, bucket);
            }
            RedisKind::Valkey9 => {
                let fields: Vec<String> = r.hkeys(format!("{pre}timers")).await.unwrap();
                assert_eq!(fields, [format!("#{bucket}")]);
            }
        }
        for i in 0..N {
            run.store.submit(part(i, 2)).await.unwrap();
        }
        assert_eq!(
            wait_outcomes(&run.store, N as u64, T).await.len(),
            N as usize
        );
        receipts_and_nothing_left(&env, &sink, 2 * N as usize, base).await;
        run.stop().await;
    }
);

// One layout at a time: a store written by another layout version (or by a version
// before layout versions, which left a deadline index without `P:layout`) is refused
// at start with an error naming the key; an empty store is claimed for this one.
both!(
    standalone a_store_of_another_layout_version_is_refused_at_start,
    |kind: RedisKind| async move {
        let env = Env::start(kind);
        let mut r = redis_conn(&env).await;

        let fresh = store::Store::connect(env.settings("fresh")).await.unwrap();
        let v: u32 = r.get(store::redis::layout::key("fresh:")).await.unwrap();
        assert_eq!(v, store::redis::layout::VERSION, "an empty store is claimed");
        drop(fresh);
        // And a second node on it starts.
        store::Store::connect(env.settings("fresh")).await.unwrap();

        let _: () = r
            .set(store::redis::layout::key("other:"), store::redis::layout::VERSION + 1)
            .await
            .unwrap();
        let err = store::Store::connect(env.settings("other"))
            .await
            .err()
            .unwrap();
        let msg = err.to_string();
        assert!(matches!(err, store::StoreError::Layout { .. }), "{msg}");
        assert!(
            msg.contains("other:layout") && msg.contains("drain"),
            "{msg}"
        );

        let _: () = r.zadd("unversioned:outbox", "G", 1).await.unwrap();
        let err = store::Store::connect(env.settings("unversioned"))
            .await
            .err()
            .unwrap();
        let msg = err.to_string();
        assert!(
            msg.contains("unversioned:layout") && msg.contains("none"),
            "{msg}"
        );
        let v: Option<u32> = r.get(store::redis::layout::key("unversioned:")).await.unwrap();
        assert_eq!(v, None, "a refused store is left as it was");
    }
);

// Every key a mixed load leaves — pending and completed multi-part messages,
// single-part ones, their timers, outboxes and queued receipts — carries a partition's
// tag, besides the store's two global keys: the layout runs on a cluster unchanged.
// Fails if any key is built without its partition's prefix.
both!(
    standalone every_key_of_a_mixed_load_carries_a_partition_tag_but_the_global_ones,
    |kind: RedisKind| async move {
        let mut env = Env::start(kind);
        // No receiver: receipts stay queued; no MongoDB: outcomes stay in the outboxes.
        let sink = TestSink::telling(false);
        let run = Running::start(env.settings("tags"), sink.clone()).await;
        env.mongo.stop();
        for i in 0..20u16 {
            let part = |seq: u8| {
                request(
                    "tia",
                    Some((ConcatScheme::Udh16, i, 2, seq)),
                    0,
                    b"half",
                    1,
                    "",
                )
            };
            run.store
                .submit(request("tia", None, 0, b"one", 1, ""))
                .await
                .unwrap();
            run.store.submit(part(1)).await.unwrap();
            if i % 2 == 0 {
                run.store.submit(part(2)).await.unwrap();
            }
        }
        let mut r = redis_conn(&env).await;
        let keys: Vec<String> = r.keys("tags:*").await.unwrap();
        let mut partitions = std::collections::BTreeSet::new();
        for k in &keys {
            if k == "tags:layout" || k == "tags:node_seq" {
                continue;
            }
            let p = store::redis::partition::of_key("tags:", k);
            assert!(p.is_some(), "{k} has no partition tag");
            partitions.extend(p);
        }
        for kind in [
            "}:g:",
            "}:d:",
            "}:ix:",
            "}:ixb",
            "}:outbox",
            "}:usage",
            "}:r:",
        ] {
            assert!(
                keys.iter().any(|k| k.contains(kind)),
                "no {kind} key in {keys:?}"
            );
        }
        assert!(
            partitions.len() > 1,
            "the load went to one partition: {partitions:?}"
        );
        env.mongo.restart();
        run.stop().await;
    }
);
