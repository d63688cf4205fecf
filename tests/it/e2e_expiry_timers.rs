//! Expiry on time when the node that stored a message is gone, over real SMPP on
//! Redis 7.0 and Valkey 9, with 200k other keys carrying a TTL.
//!
//! On Redis 7.0 (no hash-field expiration) an `expired` event comes when Redis'
//! sampling finds the key: with 200k keys with a TTL, a lone due key waits about
//! 200k / (20 × hz) s ≈ 1000 s. smppd touches timer keys at their deadlines; a node
//! arms the deadlines of its own submits *and*, after each (re)subscription, every
//! deadline of the index — so a message whose first node died still expires on time
//! through another one — and every node learns every new deadline from the `P:armed`
//! announcement of the script that set it, so a node already running watches the
//! deadlines of a node that dies later. Without the load / the announcement these
//! tests wait minutes on Redis 7.0, and seconds on Valkey 9 (whose `P:timers` fields
//! expire in time buckets of up to 8192 ms when deadlines are sparse).

use crate::support::backend::both;
use crate::support::e2e::*;
use crate::support::esme::*;
use crate::support::messages::*;
use crate::support::servers::RedisKind;

/// 3 s validity.
const THREE_SECONDS: &str = "000000000003000R";

/// 200k keys with a (long) TTL that Redis' expiry sampling has to wade through (on each primary of a cluster), in
/// chunks that each answer well within the admin command's read timeout.
fn add_noise(env: &Env) {
    for chunk in 0..20 {
        let from = (chunk * 10_000 + 1).to_string();
        let to = ((chunk + 1) * 10_000).to_string();
        env.redis.eval_everywhere(
            "for i = tonumber(ARGV[2]), tonumber(ARGV[3]) do redis.call('SET', 'noise:' .. ARGV[1] .. i, 'x', 'EX', 3600) end return 1",
            &[&from, &to],
        );
    }
    assert!(env.redis.dbsize() >= 200_000, "the noise keys are there");
}

/// Submits the first of two segments (3 s validity) through `addr`; its message_id.
async fn half_message(addr: std::net::SocketAddr) -> String {
    let tx = Esme::answering(addr, BindAs::Tx, "alice").await;
    let c = Some((ConcatScheme::Udh8, 7, 2, 1));
    tx.submit_ok(segment(
        "SENDER",
        "400",
        c,
        0,
        &gsm("half"),
        0,
        THREE_SECONDS,
    ))
    .await
}

/// Waits for the one outcome, checks it is the partial message `id` and that it was
/// claimed within 1.5 s of its deadline.
async fn expired_on_time(env: &Env, kind: RedisKind, id: &str) {
    let docs = env.wait_docs(1, T).await;
    let d = &docs[0];
    assert_eq!(d.get_str("state").unwrap(), "PARTIAL", "{d}");
    assert_eq!(segment_ids(d), vec![id.to_string()]);
    let late = lateness_ms(d);
    eprintln!("{kind:?}: expired {late} ms after its deadline via the other node");
    assert!(
        (0..=1500).contains(&late),
        "processed {late} ms after the deadline (must be 0..=1500)"
    );
}

both!(
    a_message_stored_by_a_stopped_node_expires_on_time_through_another,
    |kind: RedisKind| async move {
        let env = Env::start(kind, "timers").await;
        add_noise(&env);
        let a = env.start_app("node-a").await;
        let id = half_message(a.addr).await;
        // Node A goes away with its timer; node B starts after, while the message is
        // still pending: B's timers come from the deadline index it loads.
        a.stop().await;
        let b = env.start_app("node-b").await;
        expired_on_time(&env, kind, &id).await;
        b.stop().await;
    }
);

both!(
    a_message_stored_by_a_stopped_node_expires_on_time_through_one_already_running,
    |kind: RedisKind| async move {
        let env = Env::start(kind, "timersrun").await;
        add_noise(&env);
        // B runs (and loaded the then empty deadline index) before A stores the
        // message: B learns the deadline from the `P:armed` announcement.
        let b = env.start_app("node-b").await;
        let a = env.start_app("node-a").await;
        let id = half_message(a.addr).await;
        a.stop().await;
        expired_on_time(&env, kind, &id).await;
        b.stop().await;
    }
);
