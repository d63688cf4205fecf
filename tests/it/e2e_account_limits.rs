//! An account's throughput/burst and max_binds over two smppd processes sharing one
//! Redis (or cluster): the limits hold for the sum over the nodes, not per node
//! (docs/design/account-limits.md).

use std::time::Instant;

use futures::StreamExt;
use smpp_protocol::CommandStatus;
use smppd::service::Rate;
use smppd::session::tokens::chunk_for;

use crate::support::backend::both;
use crate::support::e2e::*;
use crate::support::esme::*;
use crate::support::messages::*;
use crate::support::servers::RedisKind;

const RATE: u32 = 50;
const BURST: u32 = 50;
/// Submits each node sends: far more than the budget, so both nodes meet the limit.
const SUBMITS: usize = 1500;

/// Sends `n` submit_sm as fast as the account's window (10) lets; returns how many
/// were accepted. Every other one must be ESME_RTHROTTLED.
async fn flood(esme: &Esme, n: usize) -> u32 {
    let statuses: Vec<CommandStatus> = futures::stream::iter(0..n)
        .map(|_| async {
            let sm = segment("ALICE", "3360000", None, 0, &gsm("rate"), 0, "");
            esme.submit(sm).await.command_status
        })
        .buffer_unordered(10)
        .collect()
        .await;
    let count = |s: CommandStatus| statuses.iter().filter(|x| **x == s).count();
    let (ok, throttled) = (
        count(CommandStatus::ESME_ROK),
        count(CommandStatus::ESME_RTHROTTLED),
    );
    assert_eq!(
        ok + throttled,
        n,
        "ESME_ROK or ESME_RTHROTTLED only: {statuses:?}"
    );
    ok as u32
}

/// The integer in a RESP reply such as ":2\r\n".
fn int_reply(reply: &str) -> i64 {
    reply
        .trim()
        .trim_start_matches(':')
        .parse()
        .unwrap_or_else(|_| panic!("not an integer reply: {reply:?}"))
}

both!(
    throughput_and_burst_hold_for_the_sum_over_two_nodes,
    |kind: RedisKind| async move {
        let mut env = Env::start(kind, "lim-rate").await;
        env.config
            .esme("alice", &format!("throughput = {RATE}\nburst = {BURST}"));
        let a = env.spawn_smppd("node-a").await;
        let b = env.spawn_smppd("node-b").await;
        let on_a = Esme::answering(a.addr, BindAs::Tx, "alice").await;
        let on_b = Esme::answering(b.addr, BindAs::Tx, "alice").await;

        let t0 = Instant::now();
        let (ok_a, ok_b) = futures::join!(flood(&on_a, SUBMITS), flood(&on_b, SUBMITS));
        let elapsed = t0.elapsed().as_secs_f64();

        // What the account may send in that time, and what one node alone would let
        // through if each node counted its own (as before: twice that over two nodes).
        let allowed = f64::from(BURST) + f64::from(RATE) * elapsed;
        let slack = 2 * chunk_for(Rate {
            per_second: RATE,
            burst: BURST,
        });
        let sum = ok_a + ok_b;
        let seen = format!("node a {ok_a} + node b {ok_b} = {sum} accepted in {elapsed:.2} s");
        eprintln!("{seen}; allowed {allowed:.0} + slack {slack}");
        assert!(
            f64::from(sum) <= allowed + f64::from(slack),
            "over burst + rate x elapsed ({allowed:.0}) + a chunk per node ({slack}): {seen}"
        );
        assert!(
            f64::from(sum) < 1.5 * allowed,
            "not clearly below twice one node's allowance ({:.0}): {seen}",
            2.0 * allowed
        );
        // The budget was really used, from both nodes: at most a chunk per node is
        // left unused in a node's hands.
        assert!(sum + slack >= BURST, "{seen}");
        assert!(
            ok_a > 0 && ok_b > 0,
            "both nodes drew on the budget: {seen}"
        );
        // One bucket for the account, under its own hash tag.
        let key = format!("{}{{lim:alice}}:rate", env.prefix);
        assert_eq!(int_reply(&env.redis_cmd(&["EXISTS", &key])), 1, "{key}");
    }
);

both!(
    max_binds_holds_across_two_nodes_and_an_unbind_frees_a_place,
    |kind: RedisKind| async move {
        let mut env = Env::start(kind, "lim-binds").await;
        env.config.esme("alice", "max_binds = 2");
        let a = env.spawn_smppd("node-a").await;
        let b = env.spawn_smppd("node-b").await;
        let key = format!("{}{{lim:alice}}:binds", env.prefix);
        let places = || int_reply(&env.redis_cmd(&["ZCARD", &key]));

        let first = Esme::answering(a.addr, BindAs::Tx, "alice").await;
        let _second = Esme::answering(a.addr, BindAs::Trx, "alice").await;
        assert_eq!(places(), 2, "two leases, one per bind");

        // Node B has no bind of its own, yet the account is full.
        let (third, status) = Esme::try_answering(b.addr, BindAs::Tx, "alice").await;
        assert_eq!(
            status,
            CommandStatus::ESME_RBINDFAIL,
            "third bind, on node B"
        );
        drop(third);
        // Another account is not affected.
        let _bob = Esme::answering(b.addr, BindAs::Tx, "bob").await;
        assert_eq!(places(), 2);

        // unbind_resp comes once the place is given back: the next bind finds it.
        first.unbind().await;
        assert_eq!(places(), 1);
        let _fourth = Esme::answering(b.addr, BindAs::Rx, "alice").await;
        assert_eq!(places(), 2);
    }
);
