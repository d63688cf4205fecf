//! Expiry on time when the node that stored a message is gone, over real SMPP on
//! Redis 7.0 and Valkey 9, with 200k other keys carrying a TTL.
//!
//! On Redis 7.0 (no hash-field expiration) an `expired` event comes when Redis'
//! sampling finds the key: with 200k keys with a TTL, a lone due key waits about
//! 200k / (20 × hz) s ≈ 1000 s. smppd touches timer keys at their deadlines; a node
//! arms the deadlines of its own submits *and*, after each (re)subscription, every
//! deadline of the index — so a message whose first node died still expires on time
//! through another one. Without that load this test waits minutes on Redis 7.0.
//! On Valkey 9 hash-field expiration does it; the test holds there too.
#![allow(clippy::unwrap_used)]

#[path = "support/e2e.rs"]
mod e2e;
mod support;

use e2e::*;
use support::servers::RedisKind;

/// 3 s validity.
const THREE_SECONDS: &str = "000000000003000R";

both!(
    a_message_stored_by_a_stopped_node_expires_on_time_through_another,
    |kind: RedisKind| async move {
        let env = Env::start(kind, "timers").await;
        // Keys with a (long) TTL that Redis' expiry sampling has to wade through, in
        // chunks that each answer well within the admin command's read timeout.
        for chunk in 0..20 {
            let from = (chunk * 10_000 + 1).to_string();
            let to = ((chunk + 1) * 10_000).to_string();
            env.redis_cmd(&[
                "EVAL",
                "for i = tonumber(ARGV[1]), tonumber(ARGV[2]) do redis.call('SET', 'noise:' .. i, 'x', 'EX', 3600) end return 1",
                "0",
                &from,
                &to,
            ]);
        }
        assert_eq!(env.redis_cmd(&["EXISTS", "noise:200000"]).trim(), ":1");
        let a = env.start_app("node-a").await;
        let tx = Esme::bind(a.addr, BindAs::Tx, "alice").await;
        let c = Some((Scheme::Udh8, 7, 2, 1));
        let id = tx
            .submit_ok(segment(
                "SENDER",
                "400",
                c,
                0,
                &gsm("half"),
                0,
                THREE_SECONDS,
            ))
            .await;
        drop(tx);
        // Node A goes away with its timer; node B starts after, while the message is
        // still pending.
        a.stop().await;
        let b = env.start_app("node-b").await;
        let docs = env.wait_docs(1, T).await;
        let d = &docs[0];
        assert_eq!(d.get_str("state").unwrap(), "PARTIAL", "{d}");
        assert_eq!(segment_ids(d), vec![id]);
        let late = lateness_ms(d);
        eprintln!("{kind:?}: expired {late} ms after its deadline via the other node");
        assert!(
            (0..=1500).contains(&late),
            "processed {late} ms after the deadline (must be 0..=1500)"
        );
        b.stop().await;
    }
);
