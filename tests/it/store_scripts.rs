//! The contract of each Lua script, through its typed function
//! (`smppd::store::redis::scripts`) against real Redis 7.0 and Valkey 9: the reply
//! variant a call answers and the keys it leaves. No store runs: each test drives the
//! scripts alone on its own server, and where time must pass (a deadline, a hold) it
//! writes the score that time passing would leave, then calls the script.

use std::collections::BTreeSet;
use std::time::Duration;

use redis::AsyncCommands;
use smppd::service::{ConcatScheme, Rate, SubmitRequest};
use smppd::store::model::pending::{self, group_ids, PendingHead};
use smppd::store::model::{address_key, group_key, FinishKind, GroupMeta, StoredSegment};
use smppd::store::redis::connection::Conn;
use smppd::store::redis::partition;
use smppd::store::redis::scripts::delivery::DeliveryEnd;
use smppd::store::redis::scripts::ops::{
    CancelFilter, CancelReply, Owner, QueryReply, ReplaceReply, Replacement,
};
use smppd::store::redis::scripts::outbox::FinalizeRecord;
use smppd::store::redis::scripts::receipts::{HeldEntry, ReleaseRecord};
use smppd::store::redis::scripts::submit::{
    Limit, SubmitHeader, SubmitKind, SubmitRecord, SubmitReply,
};
use smppd::store::redis::scripts::{ReceiptEntry, Scripts};
use smppd::store::StoreSettings;

use crate::support::backend::both;
use crate::support::harness::{addr, partition_of, refs_in_one_partition, request};
use crate::support::servers::{RedisKind, RedisServer};

const NODE: &str = "node-a";
const HOUR_MS: i64 = 3_600_000;

/// One server, the scripts loaded on it, and a connection to read what they leave.
struct Fx {
    _redis: RedisServer,
    conn: Conn,
    s: Scripts,
    prefix: String,
}

impl Fx {
    async fn start(kind: RedisKind, name: &str) -> Fx {
        let redis = RedisServer::start(kind);
        let prefix = format!("{name}:");
        let settings = StoreSettings::new(redis.url(), "mongodb://unused");
        let mut conn = Conn::connect(&settings).await.unwrap();
        // As `Store::connect` detects it: Valkey 9 has hash-field expiration.
        let s = Scripts::new(&prefix, NODE, kind == RedisKind::Valkey9);
        s.load(&mut conn).await.unwrap();
        Fx {
            _redis: redis,
            conn,
            s,
            prefix,
        }
    }

    /// Partition `p`'s key `rest` (`P{tag}:rest`).
    fn key(&self, p: usize, rest: &str) -> String {
        format!("{}{rest}", partition::prefix(&self.prefix, p))
    }

    async fn now_ms(&mut self) -> i64 {
        let (s, us): (i64, i64) = redis::cmd("TIME")
            .query_async(&mut self.conn)
            .await
            .unwrap();
        s * 1000 + us / 1000
    }

    async fn submit(&mut self, header: SubmitHeader, records: &[SubmitRecord]) -> Vec<SubmitReply> {
        self.s
            .submit(&mut self.conn, header, records)
            .await
            .unwrap()
    }

    async fn exists(&mut self, key: &str) -> bool {
        self.conn.exists(key).await.unwrap()
    }

    async fn zscore(&mut self, key: &str, member: &str) -> Option<i64> {
        let s: Option<f64> = self.conn.zscore(key, member).await.unwrap();
        s.map(|s| s as i64)
    }

    async fn zcard(&mut self, key: &str) -> u64 {
        self.conn.zcard(key).await.unwrap()
    }

    async fn hget(&mut self, key: &str, field: &str) -> Option<String> {
        self.conn.hget(key, field).await.unwrap()
    }

    async fn is_member(&mut self, key: &str, member: &str) -> bool {
        self.conn.sismember(key, member).await.unwrap()
    }

    /// The key of `gk`'s pending group (at its first-choice id).
    fn pending_key(&self, p: usize, gk: &str) -> String {
        self.key(p, &format!("g:{}", group_ids(gk).0))
    }

    /// The head of `gk`'s pending group, if it is pending.
    async fn pending(&mut self, p: usize, gk: &str) -> Option<PendingHead> {
        let v: Option<Vec<u8>> = self.conn.get(self.pending_key(p, gk)).await.unwrap();
        v.map(|v| PendingHead::parse(&v).unwrap())
    }

    /// The index set of the second of deadline `dl` (`P:ix:<b>`).
    fn index_key(&self, p: usize, dl: i64) -> String {
        self.key(p, &format!("ix:{}", (dl + 999).div_euclid(1000) * 1000))
    }

    /// Whether `gk`'s group is in the deadline index at deadline `dl`.
    async fn indexed(&mut self, p: usize, gk: &str, dl: i64) -> bool {
        let id = u64::from_str_radix(&group_ids(gk).0, 16)
            .unwrap()
            .to_string();
        self.is_member(&self.index_key(p, dl), &id).await
    }

    /// What time passing leaves: `gk`'s pending group due at `at` (its deadline in
    /// its value, its index entry in that second).
    async fn make_due(&mut self, p: usize, gk: &str, at: i64) {
        let key = self.pending_key(p, gk);
        let mut v: Vec<u8> = self.conn.get(&key).await.unwrap();
        let old = PendingHead::parse(&v).unwrap().deadline_ms;
        v[1..7].copy_from_slice(&at.to_be_bytes()[2..8]);
        let _: () = self.conn.set(&key, v).await.unwrap();
        let id = u64::from_str_radix(&group_ids(gk).0, 16)
            .unwrap()
            .to_string();
        let _: () = self.conn.srem(self.index_key(p, old), &id).await.unwrap();
        if !self.exists(&self.index_key(p, old)).await {
            let b = (old + 999).div_euclid(1000) * 1000;
            let _: () = self
                .conn
                .zrem(self.key(p, "ixb"), b.to_string())
                .await
                .unwrap();
        }
        let _: () = self.conn.sadd(self.index_key(p, at), &id).await.unwrap();
        let b = (at + 999).div_euclid(1000) * 1000;
        let _: () = self
            .conn
            .zadd(self.key(p, "ixb"), b.to_string(), b)
            .await
            .unwrap();
    }

    /// Every key of this test's store.
    async fn keys(&mut self) -> BTreeSet<String> {
        let pattern = format!("{}*", self.prefix);
        self.conn.keys(pattern).await.unwrap()
    }
}

/// No store-wide limit in the way; receipts held for a minute.
const OPEN: SubmitHeader = SubmitHeader {
    max_pending: 1_000_000,
    hold_ms: 60_000,
    max_pending_bytes: 1 << 30,
};

/// Message id `n` of partition `p` (the hex form: 2 digits of partition).
fn id(p: usize, n: u64) -> String {
    format!("{p:02X}{n:020X}")
}

/// The gid of `gk`'s message whose first segment the node gave id `node_id` (hex).
fn gid(p: usize, gk: &str, node_id: &str) -> String {
    format!("{p:02X}{}{}", group_ids(gk).0, &node_id[2..])
}

/// Segment `seq`'s message_id in message `gid`.
fn seg_id(gid: &str, seq: u8) -> String {
    format!("{gid}{seq:02X}")
}

fn entry(account: &str, id: &str, payload: &str) -> ReceiptEntry {
    ReceiptEntry {
        account: account.into(),
        id: id.into(),
        payload: payload.into(),
    }
}

/// A segment of `req` as the store submits it; `part` its partition, `id` its new id.
fn record(
    req: &SubmitRequest,
    part: usize,
    id: &str,
    deadline_ms: i64,
    mut kind: SubmitKind,
) -> SubmitRecord {
    let seg = StoredSegment::from_request(req);
    // A multi-part segment goes packed, with its octets and flags beside it.
    let mut record_tail = seg.record_tail();
    if let SubmitKind::Part { octets, flags, .. } = &mut kind {
        let (f, packed) = pending::packed_segment(&seg, None);
        (*octets, *flags, record_tail) = (seg.record_len(), f, packed);
    }
    SubmitRecord {
        part,
        gk: group_key(&GroupMeta::of(req)),
        seq: req.concat.map_or(1, |c| c.seq),
        total: req.concat.map_or(1, |c| c.total),
        message_id: id.into(),
        deadline_ms,
        service_type: req.service_type.clone(),
        record_tail,
        account: req.policy.system_id.clone(),
        limits: req.policy.limits,
        forward_to: None,
        forward_reassembled: false,
        schedule_ms: None,
        sim: None,
        protocol_id: 0,
        priority: 0,
        kind,
    }
}

/// A segment of a multi-part message kept by the store (deliver_partial, no
/// notification).
fn part(req: &SubmitRequest, node_id: &str) -> SubmitKind {
    SubmitKind::Part {
        expiry_code: "p",
        group_ids: group_ids(&group_key(&GroupMeta::of(req))),
        unique: node_id.into(),
        octets: 0,
        flags: 0,
        notify: None,
    }
}

/// Segment `seq` of 2 of `account`'s message `reference`.
fn seg(account: &str, reference: u16, seq: u8) -> SubmitRequest {
    request(
        account,
        Some((ConcatScheme::Udh16, reference, 2, seq)),
        0,
        b"part",
        1,
        "",
    )
}

fn tail_len(req: &SubmitRequest) -> usize {
    StoredSegment::from_request(req).record_tail().len()
}

/// Submits both segments of `account`'s message `reference` (node ids 1 and 2 of its
/// partition, plus `n`); returns the partition, the gid and the two segments' ids.
/// The message is complete: finished, in the outbox and `P:fresh`.
async fn complete_message(
    fx: &mut Fx,
    account: &str,
    reference: u16,
    n: u64,
) -> (usize, String, [String; 2]) {
    let (s1, s2) = (seg(account, reference, 1), seg(account, reference, 2));
    let p = partition_of(&s1);
    let node_ids = [id(p, n + 1), id(p, n + 2)];
    let dl = fx.now_ms().await + HOUR_MS;
    let r = fx
        .submit(
            OPEN,
            &[record(&s1, p, &node_ids[0], dl, part(&s1, &node_ids[0]))],
        )
        .await;
    assert!(matches!(r[..], [SubmitReply::Stored { .. }]), "{r:?}");
    let r = fx
        .submit(
            OPEN,
            &[record(&s2, p, &node_ids[1], dl, part(&s2, &node_ids[1]))],
        )
        .await;
    assert!(matches!(r[..], [SubmitReply::Completed { .. }]), "{r:?}");
    let g = gid(p, &group_key(&GroupMeta::of(&s1)), &node_ids[0]);
    let ids = [seg_id(&g, 1), seg_id(&g, 2)];
    (p, g, ids)
}

// A message whose segments all come in one call is complete within it: it leaves no
// index entry and no timer of its deadline (nothing else is due in that second).
both!(
    standalone a_message_complete_within_one_call_leaves_no_timer,
    |kind| async move {
        let mut fx = Fx::start(kind, "one-call").await;
        let dl = fx.now_ms().await + HOUR_MS;
        let (s1, s2) = (seg("olga", 3, 1), seg("olga", 3, 2));
        let p = partition_of(&s1);
        let (n1, n2) = (id(p, 1), id(p, 2));
        let r = fx
            .submit(
                OPEN,
                &[
                    record(&s1, p, &n1, dl, part(&s1, &n1)),
                    record(&s2, p, &n2, dl, part(&s2, &n2)),
                ],
            )
            .await;
        assert!(
            matches!(r[..], [SubmitReply::Stored { .. }, SubmitReply::Completed { .. }]),
            "{r:?}"
        );
        let keys = fx.keys().await;
        assert!(!keys.iter().any(|k| k.contains(":t:#")), "{keys:?}");
        if fx.exists(&fx.key(p, "timers")).await {
            let n: u64 = fx.conn.hlen(fx.key(p, "timers")).await.unwrap();
            assert_eq!(n, 0, "a timer field is left");
        }
        assert!(!fx.exists(&fx.key(p, "ixb")).await, "{keys:?}");
    }
);

both!(
    standalone submit_answers_stored_duplicate_completed_and_single,
    |kind| async move {
        let mut fx = Fx::start(kind, "submit").await;
        let now = fx.now_ms().await;
        let dl = now + HOUR_MS;
        let (s1, s2) = (seg("alice", 7, 1), seg("alice", 7, 2));
        let p = partition_of(&s1);
        let gk = group_key(&GroupMeta::of(&s1));
        let (n1, n2) = (id(p, 1), id(p, 2));
        let g = gid(p, &gk, &n1);
        let (id1, id2) = (seg_id(&g, 1), seg_id(&g, 2));

        // Stored under the segment's id that names its group: one value, one index
        // entry.
        let r = fx.submit(OPEN, &[record(&s1, p, &n1, dl, part(&s1, &n1))]).await;
        match &r[..] {
            [SubmitReply::Stored {
                held_until: None,
                message_id,
            }] => assert_eq!(message_id, &id1),
            other => panic!("{other:?}"),
        }
        let head = fx.pending(p, &gk).await.expect("pending");
        assert_eq!((head.gk.as_str(), head.deadline_ms, head.gid(&group_ids(&gk).0)), (gk.as_str(), dl, g.clone()));
        assert!(fx.indexed(p, &gk, dl).await);
        assert_eq!(fx.hget(&fx.key(p, "usage"), "g").await.as_deref(), Some("1"));

        // The same segment again (a resend): the first one's id, nothing stored.
        let resent = id(p, 3);
        let r = fx.submit(OPEN, &[record(&s1, p, &resent, dl, part(&s1, &resent))]).await;
        match &r[..] {
            [SubmitReply::Duplicate { message_id }] => assert_eq!(message_id, &id1),
            other => panic!("{other:?}"),
        }

        // The last segment: the message finishes, its data comes back.
        let r = fx.submit(OPEN, &[record(&s2, p, &n2, dl, part(&s2, &n2))]).await;
        let [SubmitReply::Completed { group: raw, message_id }] = &r[..] else {
            panic!("{r:?}")
        };
        assert_eq!(message_id, &id2);
        assert_eq!(raw.gid, g);
        let done = raw.clone().parse().unwrap();
        assert_eq!(done.kind, FinishKind::Complete);
        let ids: Vec<&str> = done.segments.iter().map(|s| s.message_id.as_str()).collect();
        assert_eq!(ids, [id1.as_str(), id2.as_str()]);
        assert!(fx.pending(p, &gk).await.is_none());
        let d = fx.key(p, &format!("d:{g}"));
        assert_eq!(fx.hget(&d, "state").await.as_deref(), Some("complete"));
        assert!(fx.zscore(&fx.key(p, "outbox"), &g).await.is_some());
        assert!(fx.zscore(&fx.key(p, "fresh"), &g).await.is_some());
        assert!(!fx.indexed(p, &gk, dl).await);
        assert!(!fx.exists(&fx.key(p, "ixb")).await, "no index second left");
        assert_eq!(fx.hget(&fx.key(p, "usage"), "g").await, None);

        // A single-part message: finished on arrival, its receipt queued held, not
        // in P:fresh (nothing left to release).
        let single = request("alice", None, 0, b"hi", 1, "");
        let q = (p + 1) % partition::COUNT;
        let sid = id(q, 1);
        let kind = SubmitKind::Single {
            at_ms: now,
            receipt: Some(entry("alice", &sid, "receipt")),
        };
        let r = fx.submit(OPEN, &[record(&single, q, &sid, dl, kind)]).await;
        let [SubmitReply::Single {
            held_until: Some(held),
            message_id: None,
        }] = r[..]
        else {
            panic!("{r:?}")
        };
        assert!(held >= now + OPEN.hold_ms, "{held} vs {now}");
        assert_eq!(fx.zscore(&fx.key(q, "r:alice"), &sid).await, Some(held));
        let d = fx.key(q, &format!("d:{sid}"));
        assert_eq!(fx.hget(&d, "state").await.as_deref(), Some("complete"));
        assert!(fx.zscore(&fx.key(q, "outbox"), &sid).await.is_some());
        assert_eq!(fx.zscore(&fx.key(q, "fresh"), &sid).await, None);
        assert_eq!(
            fx.hget(&fx.key(q, "usage"), "n:alice").await.as_deref(),
            Some("1")
        );
    }
);

both!(
    standalone submit_refuses_at_each_limit_and_after_the_deadline,
    |kind| async move {
        let mut fx = Fx::start(kind, "limits").await;
        let now = fx.now_ms().await;
        let dl = now + HOUR_MS;
        let msg = request("bea", None, 0, b"hi", 0, "");
        let single = || SubmitKind::Single {
            at_ms: now,
            receipt: None,
        };
        let with = |p: usize, n: u64, f: &dyn Fn(&mut SubmitRecord)| {
            let mut r = record(&msg, p, &id(p, n), dl, single());
            f(&mut r);
            r
        };
        let refused = |r: &[SubmitReply]| match r {
            [SubmitReply::Full(l)] => Some(*l),
            [SubmitReply::Expired] => None,
            other => panic!("{other:?}"),
        };

        // The store's max_pending (a partition's share: 1), counted within one call:
        // each record is admitted as if it were alone, in order.
        let tight = SubmitHeader {
            max_pending: 1,
            ..OPEN
        };
        let r = fx
            .submit(tight, &[with(1, 1, &|_| {}), with(1, 2, &|_| {})])
            .await;
        assert!(
            matches!(r[..], [SubmitReply::Single { .. }, SubmitReply::Full(Limit::Store)]),
            "{r:?}"
        );
        assert!(!fx.exists(&fx.key(1, &format!("d:{}", id(1, 2)))).await);
        assert_eq!(
            fx.hget(&fx.key(1, "usage"), "n").await.as_deref(),
            Some("1")
        );

        // The store's octets, the account's messages and octets.
        let tiny = SubmitHeader {
            max_pending_bytes: 1,
            ..OPEN
        };
        let r = fx.submit(tiny, &[with(2, 1, &|_| {})]).await;
        assert_eq!(refused(&r), Some(Limit::StoreBytes));
        let r = fx
            .submit(
                OPEN,
                &[
                    with(3, 1, &|r| r.limits.max_pending = 1),
                    with(3, 2, &|r| r.limits.max_pending = 1),
                ],
            )
            .await;
        assert_eq!(refused(&r[1..]), Some(Limit::Account), "{r:?}");
        let r = fx
            .submit(OPEN, &[with(4, 1, &|r| r.limits.max_pending_bytes = 1)])
            .await;
        assert_eq!(refused(&r), Some(Limit::AccountBytes));

        // The account's queued receipts: one queued (held) fills its share of 1.
        let owed = |r: &mut SubmitRecord| {
            r.limits.max_queued_receipts = 1;
            r.kind = SubmitKind::Single {
                at_ms: now,
                receipt: Some(entry("bea", &r.message_id, "receipt")),
            };
        };
        let r = fx.submit(OPEN, &[with(5, 1, &owed)]).await;
        assert!(matches!(r[..], [SubmitReply::Single { .. }]), "{r:?}");
        let r = fx.submit(OPEN, &[with(5, 2, &owed)]).await;
        assert_eq!(refused(&r), Some(Limit::Receipts));
        assert_eq!(fx.zcard(&fx.key(5, "r:bea")).await, 1);
        // Within one call too: the first record's receipt fills the share.
        let r = fx
            .submit(OPEN, &[with(7, 1, &owed), with(7, 2, &owed), with(7, 3, &owed)])
            .await;
        assert!(matches!(r[0], SubmitReply::Single { .. }), "{r:?}");
        assert_eq!(refused(&r[1..2]), Some(Limit::Receipts), "{r:?}");
        assert_eq!(refused(&r[2..]), Some(Limit::Receipts), "{r:?}");
        assert_eq!(fx.zcard(&fx.key(7, "r:bea")).await, 1);

        // A deadline already passed by Redis time.
        let late = || {
            let mut r = with(6, 1, &|_| {});
            r.deadline_ms = now - 1;
            r
        };
        let r = fx.submit(OPEN, &[late()]).await;
        assert_eq!(refused(&r), None);
        // ... answered as such at a full store too: "full" would ask the ESME to retry
        // a message no retry can save.
        let full = SubmitHeader {
            max_pending: 0,
            max_pending_bytes: 0,
            ..OPEN
        };
        let r = fx.submit(full, &[late()]).await;
        assert_eq!(refused(&r), None, "{r:?}");

        // Nothing of a refused record is left: partitions 2, 4 and 6 hold no key.
        let keys = fx.keys().await;
        for p in [2, 4, 6] {
            let prefix = partition::prefix(&fx.prefix, p);
            assert!(!keys.iter().any(|k| k.starts_with(&prefix)), "{keys:?}");
        }
    }
);

// The deadline index keeps a second's ids in sets of at most 512 (beyond that Redis
// would leave the intset encoding: ~60 B per id instead of 8), a second set once the
// first is full; a claim empties them all.
both!(
    standalone a_crowded_second_of_the_index_takes_several_intsets,
    |kind| async move {
        let mut fx = Fx::start(kind, "crowd").await;
        let dl = fx.now_ms().await + HOUR_MS;
        let refs = refs_in_one_partition(700, |r| seg("dee", r, 1));
        let p = partition_of(&seg("dee", refs[0], 1));
        let records: Vec<SubmitRecord> = refs
            .iter()
            .enumerate()
            .map(|(n, r)| {
                let s = seg("dee", *r, 1);
                let node = id(p, n as u64 + 1);
                record(&s, p, &node, dl, part(&s, &node))
            })
            .collect();
        let r = fx.submit(OPEN, &records).await;
        assert!(r.iter().all(|r| matches!(r, SubmitReply::Stored { .. })));
        let sets: Vec<String> = fx.conn.zrange(fx.key(p, "ixb"), 0, -1).await.unwrap();
        assert_eq!(sets.len(), 2, "{sets:?}");
        let mut n = 0;
        for name in &sets {
            let ix = fx.key(p, &format!("ix:{name}"));
            let enc: String = redis::cmd("OBJECT")
                .arg("ENCODING")
                .arg(&ix)
                .query_async(&mut fx.conn)
                .await
                .unwrap();
            assert_eq!(enc, "intset", "{name}");
            let c: usize = fx.conn.scard(&ix).await.unwrap();
            assert!(c <= 512, "{name}: {c} ids");
            n += c;
        }
        assert_eq!(n, 700);
        // Time passes for all of them: every value's deadline and every set's second.
        let past = fx.now_ms().await - 1000;
        let keys: Vec<String> = fx.conn.keys(fx.key(p, "g:*")).await.unwrap();
        for k in &keys {
            let _: () = redis::cmd("SETRANGE")
                .arg(k)
                .arg(1)
                .arg(&past.to_be_bytes()[2..])
                .query_async(&mut fx.conn)
                .await
                .unwrap();
        }
        for name in &sets {
            let _: () = fx.conn.zadd(fx.key(p, "ixb"), name, past).await.unwrap();
        }
        let mut claimed = 0;
        for _ in 0..10 {
            let c = fx.s.claim_due(&mut fx.conn, &[p], &[vec![]], 256, 0).await.unwrap();
            claimed += c.groups.len();
            if c.done == [true] {
                break;
            }
        }
        assert_eq!(claimed, 700);
        assert!(!fx.exists(&fx.key(p, "ixb")).await);
    }
);

// Group ids are a hash of the group key: two pending groups may meet on one. The
// second goes to its second-choice id and is found there by its later segments, even
// once the first has left the id it took (P:usage `c2` says to look); a third whose
// ids are both held is refused, nothing stored.
both!(
    standalone a_group_whose_id_is_taken_goes_to_its_second_choice_and_is_found_there,
    |kind| async move {
        let mut fx = Fx::start(kind, "ids").await;
        let dl = fx.now_ms().await + HOUR_MS;
        let refs = refs_in_one_partition(3, |r| seg("col", r, 1));
        let p = partition_of(&seg("col", refs[0], 1));
        // All three hash to id X (forced); B and C share their second choice too.
        let (x, ya, yb) = ("0000000000AAA", "0000000000BBB", "0000000000CCC");
        let rec = |r: u16, seq: u8, n: u64, second: &str| {
            let s = seg("col", r, seq);
            let node = id(p, n);
            let mut kind = part(&s, &node);
            if let SubmitKind::Part { group_ids, .. } = &mut kind {
                *group_ids = (x.to_owned(), second.to_owned());
            }
            record(&s, p, &node, dl, kind)
        };
        let (a, b, c) = (refs[0], refs[1], refs[2]);
        let named = |r: &[SubmitReply]| match r {
            [SubmitReply::Stored { message_id, .. }]
            | [SubmitReply::Completed { message_id, .. }] => message_id[2..15].to_owned(),
            other => panic!("{other:?}"),
        };
        assert_eq!(named(&fx.submit(OPEN, &[rec(a, 1, 1, ya)]).await), x);
        assert_eq!(named(&fx.submit(OPEN, &[rec(b, 1, 2, yb)]).await), yb);
        let usage = fx.key(p, "usage");
        assert_eq!(fx.hget(&usage, "c2").await.as_deref(), Some("1"));
        let r = fx.submit(OPEN, &[rec(c, 1, 3, yb)]).await;
        assert!(matches!(r[..], [SubmitReply::Failed(_)]), "{r:?}");
        assert_eq!(fx.hget(&usage, "n:col").await.as_deref(), Some("2"));
        // A completes and leaves X; B's last segment still finds B.
        assert_eq!(named(&fx.submit(OPEN, &[rec(a, 2, 4, ya)]).await), x);
        let r = fx.submit(OPEN, &[rec(b, 2, 5, yb)]).await;
        let [SubmitReply::Completed { group, .. }] = &r[..] else {
            panic!("{r:?}")
        };
        assert_eq!(&group.gid[2..15], yb);
        assert_eq!(group.clone().parse().unwrap().segments.len(), 2);
        assert_eq!(fx.hget(&usage, "c2").await, None);
        let pending: Vec<String> = fx.conn.keys(fx.key(p, "g:*")).await.unwrap();
        assert!(pending.is_empty(), "{pending:?}");
    }
);

both!(
    standalone claim_due_claims_a_due_group_once_and_leaves_an_undue_one,
    |kind| async move {
        let mut fx = Fx::start(kind, "claim").await;
        let now = fx.now_ms().await;
        let refs = refs_in_one_partition(2, |r| seg("cat", r, 1));
        let (due, undue) = (seg("cat", refs[0], 1), seg("cat", refs[1], 1));
        let p = partition_of(&due);
        let (gk_due, gk_undue) = (
            group_key(&GroupMeta::of(&due)),
            group_key(&GroupMeta::of(&undue)),
        );
        let (id_due, id_undue) = (id(p, 1), id(p, 2));
        let r = fx
            .submit(
                OPEN,
                &[
                    record(&due, p, &id_due, now + HOUR_MS, part(&due, &id_due)),
                    record(&undue, p, &id_undue, now + HOUR_MS, part(&undue, &id_undue)),
                ],
            )
            .await;
        assert!(
            matches!(r[..], [SubmitReply::Stored { .. }, SubmitReply::Stored { .. }]),
            "{r:?}"
        );
        let gid_due = gid(p, &gk_due, &id_due);
        // An hour passes for the first: its deadline is a second ago.
        let past = now - 1000;
        fx.make_due(p, &gk_due, past).await;

        let c = fx.s.claim_due(&mut fx.conn, &[p], &[vec![]], 100, 0).await.unwrap();
        // Done: it listed fewer than it was asked for.
        assert_eq!(c.done, [true]);
        assert_eq!(c.groups.len(), 1);
        assert_eq!(c.groups[0].gid, gid_due);
        assert!(c.lateness_ms[0] >= 1000, "{:?}", c.lateness_ms);
        let g = c.groups[0].clone().parse().unwrap();
        assert_eq!(g.kind, FinishKind::Expired);
        assert_eq!(g.missing(), [2]);
        assert!(fx.pending(p, &gk_due).await.is_none());
        let d = fx.key(p, &format!("d:{gid_due}"));
        assert_eq!(fx.hget(&d, "state").await.as_deref(), Some("expired"));
        assert!(fx.zscore(&fx.key(p, "outbox"), &gid_due).await.is_some());
        assert!(fx.zscore(&fx.key(p, "fresh"), &gid_due).await.is_some());
        assert!(!fx.indexed(p, &gk_due, past).await);
        // The undue one is untouched.
        assert!(fx.pending(p, &gk_undue).await.is_some());
        assert!(fx.indexed(p, &gk_undue, now + HOUR_MS).await);

        // Claimed once: a second pass finds nothing due.
        let c = fx.s.claim_due(&mut fx.conn, &[p], &[vec![]], 100, 0).await.unwrap();
        assert_eq!((c.done, c.groups.len()), (vec![true], 0));

        // By id (a local timer fired): claimed if due, given back with its deadline
        // if not yet, nothing if gone.
        let undue_id = u64::from_str_radix(&group_ids(&gk_undue).0, 16).unwrap().to_string();
        let gone_id = u64::from_str_radix(&group_ids(&gk_due).0, 16).unwrap().to_string();
        let c = fx
            .s
            .claim_due(&mut fx.conn, &[p], &[vec![&undue_id, &gone_id]], 100, 0)
            .await
            .unwrap();
        assert_eq!(c.groups.len(), 0);
        assert_eq!(c.not_due, [(0, undue_id.clone(), now + HOUR_MS)]);
        fx.make_due(p, &gk_undue, now - 10).await;
        // Limit 0: the call claims the ids given and reads no index.
        let c = fx.s.claim_due(&mut fx.conn, &[p], &[vec![]], 0, 0).await.unwrap();
        assert_eq!(c.groups.len(), 0, "nothing given, nothing claimed");
        let c = fx
            .s
            .claim_due(&mut fx.conn, &[p], &[vec![&undue_id]], 0, 0)
            .await
            .unwrap();
        assert_eq!(c.groups.len(), 1);
        assert_eq!(c.groups[0].gid, gid(p, &gk_undue, &id_undue));
        assert!(c.not_due.is_empty());
        assert!(!fx.exists(&fx.key(p, "ixb")).await, "the index is empty");
    }
);

both!(
    standalone claim_due_goes_partition_after_partition_within_its_limit,
    |kind| async move {
        let mut fx = Fx::start(kind, "claim-many").await;
        let now = fx.now_ms().await;
        // Two pending groups in each of two partitions, their deadlines a second ago.
        let mut by_part: std::collections::BTreeMap<usize, Vec<SubmitRequest>> =
            Default::default();
        for r in 0u16.. {
            let s = seg("cat", r, 1);
            by_part.entry(partition_of(&s)).or_default().push(s);
            if by_part.values().filter(|v| v.len() >= 2).count() >= 2 {
                break;
            }
        }
        let parts: Vec<usize> = by_part
            .iter()
            .filter(|(_, v)| v.len() >= 2)
            .map(|(p, _)| *p)
            .collect();
        let mut n = 0;
        for &p in &parts {
            for s in &by_part[&p][..2] {
                n += 1;
                let r = fx
                    .submit(OPEN, &[record(s, p, &id(p, n), now + HOUR_MS, part(s, &id(p, n)))])
                    .await;
                assert!(matches!(r[..], [SubmitReply::Stored { .. }]), "{r:?}");
                let gk = group_key(&GroupMeta::of(s));
                fx.make_due(p, &gk, now - 1000).await;
            }
        }
        // A limit of 3: the first partition's two (done), one of the second's (not).
        let none = vec![vec![]; parts.len()];
        let c = fx.s.claim_due(&mut fx.conn, &parts, &none, 3, 0).await.unwrap();
        assert_eq!((c.done.clone(), c.groups.len()), (vec![true, false], 3));
        let first: BTreeSet<usize> = c.groups[..2]
            .iter()
            .map(|g| partition::of_message_id(&g.gid).unwrap())
            .collect();
        assert_eq!(first, BTreeSet::from([parts[0]]));
        // The rest in the next call; then nothing is due anywhere.
        let c = fx.s.claim_due(&mut fx.conn, &parts, &none, 3, 0).await.unwrap();
        assert_eq!((c.done.clone(), c.groups.len()), (vec![true, true], 1));
        for &p in &parts {
            assert_eq!(fx.zcard(&fx.key(p, "ixb")).await, 0);
            assert_eq!(fx.zcard(&fx.key(p, "outbox")).await, 2);
        }
    }
);

both!(
    standalone lease_read_groups_reclaim_and_finalize_a_single_part_message,
    |kind| async move {
        let mut fx = Fx::start(kind, "outbox").await;
        let now = fx.now_ms().await;
        let msg = request("dan", None, 0, b"hello", 0, "");
        let p = 9;
        let mid = id(p, 1);
        let kind = SubmitKind::Single {
            at_ms: now,
            receipt: None,
        };
        let r = fx
            .submit(OPEN, &[record(&msg, p, &mid, now + HOUR_MS, kind)])
            .await;
        assert!(matches!(r[..], [SubmitReply::Single { .. }]), "{r:?}");

        // Leased once, for 30 s, to this node and epoch 2.
        let l = fx.s.lease(&mut fx.conn, p, 10, 30_000, 2).await.unwrap();
        assert_eq!(l.gids, [mid.as_str()]);
        let till = l.next_due_ms.unwrap();
        assert!(till >= now + 30_000, "{till} vs {now}");
        let d = fx.key(p, &format!("d:{mid}"));
        assert_eq!(fx.hget(&d, "ln").await.as_deref(), Some(NODE));
        assert_eq!(fx.hget(&d, "le").await.as_deref(), Some("2"));
        let l = fx.s.lease(&mut fx.conn, p, 10, 30_000, 2).await.unwrap();
        assert!(l.gids.is_empty());
        assert_eq!(l.next_due_ms, Some(till));

        // Read back: the group, and None for one that is not there.
        let gone = id(p, 2);
        let read = fx
            .s
            .read_groups(&mut fx.conn, p, &[mid.clone(), gone])
            .await
            .unwrap();
        assert_eq!(read.len(), 2);
        assert!(read[1].is_none());
        let g = read[0].clone().unwrap().parse().unwrap();
        assert_eq!(g.kind, FinishKind::Complete);
        assert_eq!(g.segments.len(), 1);
        assert_eq!(g.segments[0].message_id, mid);

        // Its own epoch reclaims nothing; a later process of this node takes it back.
        assert_eq!(fx.s.reclaim(&mut fx.conn, p, 2).await.unwrap(), 0);
        assert_eq!(fx.s.reclaim(&mut fx.conn, p, 3).await.unwrap(), 1);
        let l = fx.s.lease(&mut fx.conn, p, 10, 30_000, 3).await.unwrap();
        assert_eq!(l.gids, [mid.as_str()]);

        // FINALIZE leaves nothing: no group, no outbox entry, no usage. A second call
        // (another node finalizing the same group) changes nothing: the usage does
        // not go below zero.
        let fin = || FinalizeRecord {
            part: p,
            gid: mid.clone(),
            account: "dan".into(),
            octets: tail_len(&msg),
            receipts: None,
            segment_ids: Vec::new(),
        };
        fx.s.finalize(&mut fx.conn, &[fin()]).await.unwrap();
        assert_eq!(fx.keys().await, BTreeSet::new());
        fx.s.finalize(&mut fx.conn, &[fin()]).await.unwrap();
        assert_eq!(fx.keys().await, BTreeSet::new());
    }
);

both!(
    standalone fresh_release_and_finalize_queue_a_groups_receipts_once,
    |kind| async move {
        let mut fx = Fx::start(kind, "release").await;
        let (p, gid, ids) = complete_message(&mut fx, "eve", 1, 0).await;
        let fresh_key = fx.key(p, "fresh");
        // A gid whose group is gone: FRESH drops it.
        let ghost = id(p, 99);
        let _: () = fx.conn.zadd(&fresh_key, &ghost, 0).await.unwrap();

        let groups = fx.s.fresh(&mut fx.conn, p, 10).await.unwrap();
        let gids: Vec<&str> = groups.iter().map(|g| g.gid.as_str()).collect();
        assert_eq!(gids, [gid.as_str()]);
        assert_eq!(fx.zscore(&fresh_key, &ghost).await, None);

        let receipts = |tag: &str| -> Vec<ReceiptEntry> {
            ids.iter()
                .map(|i| entry("eve", i, &format!("{tag}{i}")))
                .collect()
        };
        let rel = |receipts| ReleaseRecord {
            part: p,
            gid: gid.clone(),
            local: false,
            routed: false,
            receipts,
        };
        let r = fx
            .s
            .release(&mut fx.conn, 60_000, &[rel(receipts("a"))])
            .await
            .unwrap();
        assert_eq!(r.gids, [gid.as_str()]);
        let (q, qd) = (fx.key(p, "r:eve"), fx.key(p, "rd:eve"));
        for i in &ids {
            // Due now (not leased: no receiver here).
            assert_eq!(fx.zscore(&q, i).await, Some(r.now_ms));
        }
        assert!(fx.is_member(&fx.key(p, "racc"), "eve").await);
        assert_eq!(fx.zscore(&fresh_key, &gid).await, None);

        // Released once: a second release, and the finalize, queue nothing more.
        let r = fx
            .s
            .release(&mut fx.conn, 60_000, &[rel(receipts("b"))])
            .await
            .unwrap();
        assert!(r.gids.is_empty());
        assert_eq!(fx.hget(&qd, &ids[0]).await, Some(format!("a{}", ids[0])));
        let octets = tail_len(&seg("eve", 1, 1)) + tail_len(&seg("eve", 1, 2));
        let fin = FinalizeRecord {
            part: p,
            gid: gid.clone(),
            account: "eve".into(),
            octets,
            receipts: Some(receipts("c")),
            segment_ids: ids.to_vec(),
        };
        fx.s.finalize(&mut fx.conn, &[fin]).await.unwrap();
        assert_eq!(fx.zcard(&q).await, 2);
        assert_eq!(fx.hget(&qd, &ids[0]).await, Some(format!("a{}", ids[0])));
        // Nothing of the message is left (its timer went when it completed), only
        // its receipts.
        let left: BTreeSet<String> = ["r:eve", "rd:eve", "racc"]
            .iter()
            .map(|k| fx.key(p, k))
            .collect();
        assert_eq!(fx.keys().await, left);

        // A receiver on this node: the receipts are leased to it, not due now.
        let (p2, gid2, ids2) = complete_message(&mut fx, "eve", 2, 10).await;
        let r = fx
            .s
            .release(
                &mut fx.conn,
                60_000,
                &[ReleaseRecord {
                    part: p2,
                    gid: gid2.clone(),
                    local: true,
                    routed: false,
                    receipts: vec![entry("eve", &ids2[0], "local")],
                }],
            )
            .await
            .unwrap();
        assert_eq!(r.gids, [gid2.as_str()]);
        assert_eq!(
            fx.zscore(&fx.key(p2, "r:eve"), &ids2[0]).await,
            Some(r.now_ms + 60_000)
        );
    }
);

both!(
    standalone finalize_of_a_multi_part_message_deletes_its_keys_and_queues_its_receipts,
    |kind| async move {
        let mut fx = Fx::start(kind, "finalize").await;
        let (p, gid, ids) = complete_message(&mut fx, "fay", 3, 0).await;
        // The finished hash keeps the pending value whole (its segments); hex ids have
        // no key of their own.
        let d = fx.key(p, &format!("d:{gid}"));
        let v: Vec<u8> = fx.conn.hget(&d, "v").await.unwrap();
        let seqs: Vec<u8> = pending::segments(&v).unwrap().iter().map(|s| s.seq).collect();
        assert_eq!(seqs, [1, 2]);
        assert!(!fx.exists(&fx.key(p, &format!("m:{}", ids[1]))).await);
        let octets = tail_len(&seg("fay", 3, 1)) + tail_len(&seg("fay", 3, 2));
        let fin = || FinalizeRecord {
            part: p,
            gid: gid.clone(),
            account: "fay".into(),
            octets,
            receipts: Some(ids.iter().map(|i| entry("fay", i, "r")).collect()),
            segment_ids: ids.to_vec(),
        };
        // Still in P:fresh: the finalize queues its receipts (due now).
        fx.s.finalize(&mut fx.conn, &[fin()]).await.unwrap();
        let left: BTreeSet<String> = ["r:fay", "rd:fay", "racc"]
            .iter()
            .map(|k| fx.key(p, k))
            .collect();
        assert_eq!(fx.keys().await, left);
        assert_eq!(fx.zcard(&fx.key(p, "r:fay")).await, 2);
        // Only the first caller acts.
        fx.s.finalize(&mut fx.conn, &[fin()]).await.unwrap();
        assert_eq!(fx.keys().await, left);
        assert_eq!(fx.zcard(&fx.key(p, "r:fay")).await, 2);
    }
);

both!(
    standalone receipt_add_take_retry_and_done_on_an_accounts_queue,
    |kind| async move {
        let mut fx = Fx::start(kind, "queue").await;
        let p = 3;
        let rid = id(p, 1);
        let now = fx.now_ms().await;
        assert!(fx.s.receipt_add(&mut fx.conn, p, "gus", &rid, "n1").await.unwrap());
        // Once: the same id again is left as it is.
        assert!(!fx.s.receipt_add(&mut fx.conn, p, "gus", &rid, "n9").await.unwrap());
        assert_eq!(fx.hget(&fx.key(p, "rd:gus"), &rid).await.as_deref(), Some("n1"));
        assert!(fx.is_member(&fx.key(p, "racc"), "gus").await);

        // Taken: leased for a minute, so not taken again meanwhile.
        let t = fx.s.receipt_take(&mut fx.conn, p, "gus", 10, 60_000).await.unwrap();
        assert_eq!(t.receipts, [(rid.clone(), "n1".to_owned())]);
        assert!(t.next_due_ms.unwrap() >= now + 60_000);
        let t = fx.s.receipt_take(&mut fx.conn, p, "gus", 10, 60_000).await.unwrap();
        assert!(t.receipts.is_empty());

        // Put back due at once, with its new payload.
        assert!(fx.s.receipt_retry(&mut fx.conn, p, "gus", &rid, 0, "n2").await.unwrap());
        let t = fx.s.receipt_take(&mut fx.conn, p, "gus", 10, 60_000).await.unwrap();
        assert_eq!(t.receipts, [(rid.clone(), "n2".to_owned())]);
        // A receipt that is gone is not brought back.
        let other = id(p, 2);
        assert!(!fx.s.receipt_retry(&mut fx.conn, p, "gus", &other, 0, "x").await.unwrap());
        assert_eq!(fx.hget(&fx.key(p, "rd:gus"), &other).await, None);

        // Done: the queue is empty, and the account leaves `racc`.
        fx.s
            .receipt_done(&mut fx.conn, "gus", &[(p, vec![rid.clone()])])
            .await
            .unwrap();
        assert_eq!(fx.keys().await, BTreeSet::new());
    }
);

both!(
    standalone receipt_ready_makes_a_held_receipt_due_only_at_its_held_until,
    |kind| async move {
        let mut fx = Fx::start(kind, "ready").await;
        let now = fx.now_ms().await;
        let msg = request("hal", None, 0, b"hi", 1, "");
        let p = 4;
        let sid = id(p, 1);
        let kind = SubmitKind::Single {
            at_ms: now,
            receipt: Some(entry("hal", &sid, "receipt")),
        };
        let r = fx
            .submit(OPEN, &[record(&msg, p, &sid, now + HOUR_MS, kind)])
            .await;
        let [SubmitReply::Single {
            held_until: Some(held),
            ..
        }] = r[..]
        else {
            panic!("{r:?}")
        };
        // Held: not taken before its hold ends.
        let t = fx.s.receipt_take(&mut fx.conn, p, "hal", 10, 60_000).await.unwrap();
        assert!(t.receipts.is_empty());
        assert_eq!(t.next_due_ms, Some(held));
        // Another held_until (taken meanwhile, say): left alone.
        let other = [HeldEntry {
            account: "hal",
            id: &sid,
            held_until: held + 1,
        }];
        fx.s.receipt_ready(&mut fx.conn, p, &other).await.unwrap();
        assert_eq!(fx.zscore(&fx.key(p, "r:hal"), &sid).await, Some(held));
        let mine = [HeldEntry {
            account: "hal",
            id: &sid,
            held_until: held,
        }];
        fx.s.receipt_ready(&mut fx.conn, p, &mine).await.unwrap();
        let t = fx.s.receipt_take(&mut fx.conn, p, "hal", 10, 60_000).await.unwrap();
        assert_eq!(t.receipts, [(sid.clone(), "receipt".to_owned())]);
    }
);

both!(
    standalone query_cancel_and_replace_answer_only_the_owner,
    |kind| async move {
        let mut fx = Fx::start(kind, "ops").await;
        let now = fx.now_ms().await;
        let s1 = seg("ida", 5, 1);
        let p = partition_of(&s1);
        let gk = group_key(&GroupMeta::of(&s1));
        let g = gid(p, &gk, &id(p, 1));
        let id1 = seg_id(&g, 1);
        let r = fx
            .submit(OPEN, &[record(&s1, p, &id(p, 1), now + HOUR_MS, part(&s1, &id(p, 1)))])
            .await;
        assert!(matches!(r[..], [SubmitReply::Stored { .. }]), "{r:?}");
        let src = address_key(&addr("12345"));
        let any = Owner {
            account: "ida",
            source: "",
        };
        let exact = Owner {
            account: "ida",
            source: &src,
        };
        let stranger = Owner {
            account: "mallory",
            source: "",
        };
        let elsewhere = Owner {
            account: "ida",
            source: "1.1.999",
        };

        // QUERY: pending for its owner, unknown to anyone else.
        for (owner, pending) in [(&any, true), (&exact, true), (&stranger, false), (&elsewhere, false)] {
            let q = fx.s.query(&mut fx.conn, p, &id1, owner).await.unwrap();
            assert_eq!(matches!(q, QueryReply::Pending), pending);
            assert_eq!(matches!(q, QueryReply::Unknown), !pending);
        }
        let q = fx.s.query(&mut fx.conn, p, &id(p, 2), &any).await.unwrap();
        assert!(matches!(q, QueryReply::Unknown));

        // REPLACE: the segment's data and the account's octets follow; a new
        // deadline moves its index entry; one already past is refused.
        let usage = fx.key(p, "usage");
        let before: i64 = fx.hget(&usage, "b:ida").await.unwrap().parse().unwrap();
        let new = |deadline_ms| Replacement {
            user_data_offset: 0,
            short_message: b"new text",
            registered_delivery: 1,
            deadline_ms,
            max_pending_bytes: u64::MAX >> 12,
            account_max_pending_bytes: u64::MAX >> 12,
        };
        let r = fx.s.replace(&mut fx.conn, p, &id1, &stranger, &new(None)).await.unwrap();
        assert!(matches!(r, ReplaceReply::Unknown));
        let r = fx.s.replace(&mut fx.conn, p, &id1, &exact, &new(None)).await.unwrap();
        assert!(matches!(r, ReplaceReply::Replaced));
        let m: Vec<u8> = fx.conn.get(fx.pending_key(p, &gk)).await.unwrap();
        assert!(m.ends_with(b"new text"), "{:?}", String::from_utf8_lossy(&m));
        let after: i64 = fx.hget(&usage, "b:ida").await.unwrap().parse().unwrap();
        let grown = b"new text".len() as i64 - s1.raw_user_data.len() as i64;
        assert_eq!(after - before, grown);
        let r = fx.s.replace(&mut fx.conn, p, &id1, &any, &new(Some(now - 1))).await.unwrap();
        assert!(matches!(r, ReplaceReply::Expired));
        let later = now + 2 * HOUR_MS;
        let r = fx.s.replace(&mut fx.conn, p, &id1, &any, &new(Some(later))).await.unwrap();
        assert!(matches!(r, ReplaceReply::Replaced));
        assert!(fx.indexed(p, &gk, later).await);
        assert!(!fx.indexed(p, &gk, now + HOUR_MS).await);
        assert_eq!(fx.pending(p, &gk).await.unwrap().deadline_ms, later);
        // Growing past what the store or the account may hold is refused, and nothing
        // changes (a limit of 16 is a partition's share of 2 octets: less than held).
        let longer = Replacement {
            short_message: b"a much longer new text",
            ..new(None)
        };
        for (store, account, limit) in [
            (16, u64::MAX >> 12, Limit::StoreBytes),
            (u64::MAX >> 12, 16, Limit::AccountBytes),
        ] {
            let tight = Replacement {
                max_pending_bytes: store,
                account_max_pending_bytes: account,
                ..longer
            };
            let r = fx.s.replace(&mut fx.conn, p, &id1, &any, &tight).await.unwrap();
            assert!(matches!(r, ReplaceReply::Full(l) if l == limit), "{limit:?}");
            let m: Vec<u8> = fx.conn.get(fx.pending_key(p, &gk)).await.unwrap();
            assert!(m.ends_with(b"new text"), "unchanged");
            let now_b: i64 = fx.hget(&usage, "b:ida").await.unwrap().parse().unwrap();
            assert_eq!(now_b, after);
        }
        let r = fx.s.replace(&mut fx.conn, p, &id1, &any, &longer).await.unwrap();
        assert!(matches!(r, ReplaceReply::Replaced));
        let r = fx.s.replace(&mut fx.conn, p, &id1, &any, &new(None)).await.unwrap();
        assert!(matches!(r, ReplaceReply::Replaced), "shrinking back is never refused");

        // CANCEL: not for another owner, nor one its filter does not match.
        let c = fx.s.cancel(&mut fx.conn, p, &id1, &stranger, &CancelFilter::ANY).await.unwrap();
        assert!(matches!(c, CancelReply::Unknown));
        let other_dest = CancelFilter {
            group_key_prefix: "3:ida|9:1.1.12345|3:1.1.1|",
            service_type: None,
        };
        let c = fx.s.cancel(&mut fx.conn, p, &id1, &any, &other_dest).await.unwrap();
        assert!(matches!(c, CancelReply::Unknown));
        let other_type = CancelFilter {
            group_key_prefix: "",
            service_type: Some("WAP"),
        };
        let c = fx.s.cancel(&mut fx.conn, p, &id1, &any, &other_type).await.unwrap();
        assert!(matches!(c, CancelReply::Unknown));
        assert!(fx.pending(p, &gk).await.is_some());
        let c = fx.s.cancel(&mut fx.conn, p, &id1, &exact, &CancelFilter::ANY).await.unwrap();
        assert!(matches!(c, CancelReply::Cancelled));
        assert!(fx.pending(p, &gk).await.is_none());
        assert!(fx.zscore(&fx.key(p, "outbox"), &g).await.is_some());
        assert!(fx.zscore(&fx.key(p, "fresh"), &g).await.is_some());
        assert!(!fx.indexed(p, &gk, later).await);
        assert!(!fx.exists(&fx.key(p, "ixb")).await);

        // Finished: QUERY tells its state, CANCEL and REPLACE find it final.
        match fx.s.query(&mut fx.conn, p, &id1, &any).await.unwrap() {
            QueryReply::Final {
                state, expiry_code, ..
            } => assert_eq!((state.as_str(), expiry_code.as_str()), ("cancelled", "p")),
            _ => panic!("not final"),
        }
        let c = fx.s.cancel(&mut fx.conn, p, &id1, &any, &CancelFilter::ANY).await.unwrap();
        assert!(matches!(c, CancelReply::Final));
        let r = fx.s.replace(&mut fx.conn, p, &id1, &any, &new(None)).await.unwrap();
        assert!(matches!(r, ReplaceReply::Final));

        // A single-part message is final from its submit, at its submit time.
        let single = request("ida", None, 0, b"hi", 0, "");
        let q = (p + 1) % partition::COUNT;
        let sid = id(q, 1);
        let kind = SubmitKind::Single {
            at_ms: now,
            receipt: None,
        };
        fx.submit(OPEN, &[record(&single, q, &sid, now + HOUR_MS, kind)])
            .await;
        match fx.s.query(&mut fx.conn, q, &sid, &exact).await.unwrap() {
            QueryReply::Final {
                state,
                finished_ms,
                expiry_code,
                ..
            } => {
                assert_eq!((state.as_str(), expiry_code.as_str()), ("complete", ""));
                assert_eq!(finished_ms, now);
            }
            _ => panic!("not final"),
        }
    }
);

both!(
    standalone delivery_done_ends_a_forwarded_message_once,
    |kind| async move {
        let mut fx = Fx::start(kind, "forward").await;
        let now = fx.now_ms().await;
        let msg = request("joe", None, 0, b"hi", 1, "");
        let p = 7;
        let mid = id(p, 1);
        let dl = now + HOUR_MS;
        let mut rec = record(
            &msg,
            p,
            &mid,
            dl,
            SubmitKind::Single {
                at_ms: now,
                receipt: Some(entry("kim", &mid, "deliver")),
            },
        );
        rec.forward_to = Some("kim".into());
        let r = fx.submit(OPEN, &[rec]).await;
        assert!(
            matches!(r[..], [SubmitReply::Single { held_until: Some(_), .. }]),
            "{r:?}"
        );
        let d = fx.key(p, &format!("d:{mid}"));
        assert_eq!(fx.hget(&d, "state").await.as_deref(), Some("routed"));
        let until = format!("@{mid}");
        assert_eq!(fx.zscore(&fx.key(p, "deadlines"), &until).await, Some(dl));
        assert_eq!(fx.zscore(&fx.key(p, "outbox"), &mid).await, None);

        let result = format!("D 0 1 {now} node-b");
        let end = || DeliveryEnd {
            id: mid.clone(),
            gid: mid.clone(),
            seq: 1,
            result: result.clone(),
            receipts: vec![entry("joe", &mid, "receipt")],
            local: false,
        };
        let done = fx
            .s
            .delivery_done(&mut fx.conn, p, "kim", 60_000, &[end()])
            .await
            .unwrap();
        assert_eq!((done.done, done.ended), (vec![mid.clone()], vec![mid.clone()]));
        assert_eq!(fx.hget(&d, "state").await.as_deref(), Some("done"));
        assert_eq!(fx.hget(&d, "r:1").await, Some(result.clone()));
        assert!(fx.zscore(&fx.key(p, "outbox"), &mid).await.is_some());
        assert_eq!(fx.zscore(&fx.key(p, "deadlines"), &until).await, None);
        // The receiver's queue is empty and gone, the sender's receipt queued.
        assert!(!fx.exists(&fx.key(p, "r:kim")).await);
        assert!(!fx.is_member(&fx.key(p, "racc"), "kim").await);
        assert!(fx.is_member(&fx.key(p, "racc"), "joe").await);
        assert!(fx.zscore(&fx.key(p, "r:joe"), &mid).await.is_some());
        // Its delivery deadline's timer went with it: no timer key, no timer field.
        let keys = fx.keys().await;
        assert!(!keys.iter().any(|k| k.contains(":t:#")), "{keys:?}");
        if fx.exists(&fx.key(p, "timers")).await {
            let n: u64 = fx.conn.hlen(fx.key(p, "timers")).await.unwrap();
            assert_eq!(n, 0);
        }

        // Once: the same end again changes nothing.
        let again = fx
            .s
            .delivery_done(&mut fx.conn, p, "kim", 60_000, &[end()])
            .await
            .unwrap();
        assert!(again.done.is_empty() && again.ended.is_empty());
        assert_eq!(fx.zcard(&fx.key(p, "r:joe")).await, 1);
        let any = Owner {
            account: "joe",
            source: "",
        };
        match fx.s.query(&mut fx.conn, p, &mid, &any).await.unwrap() {
            QueryReply::Final {
                state, delivery, ..
            } => assert_eq!((state.as_str(), delivery.as_str()), ("done", result.as_str())),
            _ => panic!("not final"),
        }
    }
);

both!(
    standalone rate_take_grants_the_burst_then_says_how_long_to_wait,
    |kind| async move {
        let mut fx = Fx::start(kind, "rate").await;
        let rate = Rate {
            per_second: 1,
            burst: 3,
        };
        let g = fx.s.rate_take(&mut fx.conn, "liz", rate, 5).await.unwrap();
        assert_eq!((g.granted, g.retry_after), (3, Duration::ZERO));
        let g = fx.s.rate_take(&mut fx.conn, "liz", rate, 1).await.unwrap();
        assert_eq!(g.granted, 0);
        assert!(
            g.retry_after > Duration::ZERO && g.retry_after <= Duration::from_secs(1),
            "{g:?}"
        );
        // The bucket's key goes once it is full again.
        let key = format!("{}{{lim:liz}}:rate", fx.prefix);
        let ttl: i64 = fx.conn.pttl(&key).await.unwrap();
        assert!(ttl > 0 && ttl <= 3_100, "{ttl}");
    }
);

both!(
    standalone bind_admit_renew_and_release_count_leases_over_all_nodes,
    |kind| async move {
        let mut fx = Fx::start(kind, "binds").await;
        let lease = Duration::from_secs(30);
        let key = format!("{}{{lim:max}}:binds", fx.prefix);
        let admit = async |fx: &mut Fx, member: &str, max: usize| {
            fx.s.bind_admit(&mut fx.conn, "max", member, max, lease)
                .await
                .unwrap()
        };
        assert!(admit(&mut fx, "a:1:1", 2).await);
        assert!(admit(&mut fx, "b:1:1", 2).await);
        assert!(!admit(&mut fx, "c:1:1", 2).await);
        fx.s.bind_release(&mut fx.conn, "max", "b:1:1").await.unwrap();
        assert!(admit(&mut fx, "c:1:1", 2).await);

        // A lease that ran out (a node that crashed) gives its place back.
        let now = fx.now_ms().await;
        let _: () = fx.conn.zadd(&key, "dead:1:1", now - 1).await.unwrap();
        assert!(admit(&mut fx, "d:1:1", 3).await);
        assert_eq!(fx.zscore(&key, "dead:1:1").await, None);

        // Renewal counts every node's leases, and keeps a live bind whose lease ran
        // out even above max_binds.
        let n = fx
            .s
            .bind_renew(&mut fx.conn, "max", &["a:1:1".to_owned()], lease)
            .await
            .unwrap();
        assert_eq!(n, 3);
        let n = fx
            .s
            .bind_renew(&mut fx.conn, "max", &["e:1:1".to_owned()], lease)
            .await
            .unwrap();
        assert_eq!(n, 4);
        let ttl: i64 = fx.conn.pttl(&key).await.unwrap();
        assert!(ttl > 0 && ttl <= 30_000, "{ttl}");
    }
);

both!(
    standalone claim_due_ends_a_forwarded_message_at_its_delivery_deadline,
    |kind| async move {
        let mut fx = Fx::start(kind, "fwddl").await;
        let now = fx.now_ms().await;
        let msg = request("ann", None, 0, b"hi", 1, "");
        let p = 5;
        let mid = id(p, 1);
        let mut rec = record(
            &msg,
            p,
            &mid,
            now + HOUR_MS,
            SubmitKind::Single {
                at_ms: now,
                receipt: Some(entry("bob", &mid, "deliver")),
            },
        );
        rec.forward_to = Some("bob".into());
        let r = fx.submit(OPEN, &[rec]).await;
        assert!(matches!(r[..], [SubmitReply::Single { .. }]), "{r:?}");
        // Its delivery deadline passed 5 s ago, undelivered.
        let until = format!("@{mid}");
        let _: () = fx
            .conn
            .zadd(fx.key(p, "deadlines"), &until, now - 5000)
            .await
            .unwrap();
        let c = fx.s.claim_due(&mut fx.conn, &[p], &[vec![]], 100, 0).await.unwrap();
        assert_eq!((c.done.clone(), c.groups.len()), (vec![true], 1));
        assert!(c.lateness_ms[0] >= 5000, "late by its entry: {:?}", c.lateness_ms);
        let d = fx.key(p, &format!("d:{mid}"));
        assert_eq!(fx.hget(&d, "state").await.as_deref(), Some("done"));
        // Its delivery left the receiver's queue; the message is in the outbox.
        assert!(!fx.exists(&fx.key(p, "r:bob")).await);
        assert!(!fx.is_member(&fx.key(p, "racc"), "bob").await);
        assert!(fx.zscore(&fx.key(p, "outbox"), &mid).await.is_some());
        assert_eq!(fx.zcard(&fx.key(p, "deadlines")).await, 0);
    }
);

both!(
    standalone cancel_of_a_scheduled_or_forwarded_message_leaves_no_timer,
    |kind| async move {
        let mut fx = Fx::start(kind, "cancelt").await;
        let now = fx.now_ms().await;
        let msg = request("lea", None, 0, b"hi", 1, "");
        let owner = Owner {
            account: "lea",
            source: "",
        };
        let dl = now + HOUR_MS;
        // Partition 2: a message scheduled half an hour ahead; partition 3: one
        // forwarded to "max", waiting for its delivery.
        let sched = id(2, 1);
        let mut rec = record(
            &msg,
            2,
            &sched,
            dl,
            SubmitKind::Single {
                at_ms: now,
                receipt: None,
            },
        );
        rec.schedule_ms = Some(now + HOUR_MS / 2);
        let fwd = id(3, 1);
        let mut rec2 = record(
            &msg,
            3,
            &fwd,
            dl,
            SubmitKind::Single {
                at_ms: now,
                receipt: Some(entry("max", &fwd, "deliver")),
            },
        );
        rec2.forward_to = Some("max".into());
        let r = fx.submit(OPEN, &[rec, rec2]).await;
        assert_eq!(r.len(), 2, "{r:?}");
        let timers = |keys: &BTreeSet<String>| keys.iter().filter(|k| k.contains(":t:#")).count();
        let hfe_timers = async |fx: &mut Fx| {
            let mut n = 0u64;
            for p in [2, 3] {
                n += fx.conn.hlen::<_, u64>(fx.key(p, "timers")).await.unwrap();
            }
            n
        };
        let before = timers(&fx.keys().await) as u64 + hfe_timers(&mut fx).await;
        assert_eq!(before, 2, "one timer per deadline bucket: {:?}", fx.keys().await);

        for (p, mid) in [(2, &sched), (3, &fwd)] {
            let c = fx.s.cancel(&mut fx.conn, p, mid, &owner, &CancelFilter::ANY).await.unwrap();
            assert!(matches!(c, CancelReply::Cancelled), "{mid}");
            let d = fx.key(p, &format!("d:{mid}"));
            assert_eq!(fx.hget(&d, "state").await.as_deref(), Some("cancelled"));
            assert_eq!(fx.zcard(&fx.key(p, "deadlines")).await, 0);
        }
        // Nothing of either deadline is left to fire: no timer key, no timer field.
        let keys = fx.keys().await;
        assert_eq!(timers(&keys) as u64 + hfe_timers(&mut fx).await, 0, "{keys:?}");
        assert!(!fx.is_member(&fx.key(3, "racc"), "max").await);
    }
);
