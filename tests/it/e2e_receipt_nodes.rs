//! Receipts on a multi-node installation, over real SMPP through two smppd nodes on
//! one Redis (Redis 7.0 and Valkey 9): the ESME submits through node A and has its
//! receiver bound to node B only. Node A's receipt worker must leave the account's
//! receipts alone — were it to take them it would lease them away from B, which would
//! then wait out the whole receipt lease (found by the skewed-clock test).

use std::time::Duration;

use crate::support::backend::both;
use crate::support::e2e::*;
use crate::support::esme::*;
use crate::support::messages::*;
use crate::support::servers::RedisKind;

/// Far below the receipt lease of the test config (response_timeout × tries ≥ 15 s):
/// a receipt taken by the node without the receiver could not arrive this soon.
const SOON: Duration = Duration::from_secs(4);

both!(
    receipts_go_to_the_node_with_the_receiver_without_waiting_for_a_lease,
    |kind: RedisKind| async move {
        let env = Env::start(kind, "receipt-nodes").await;
        let a = env.start_app("node-a").await;
        let b = env.start_app("node-b").await;
        let rx = Esme::answering(b.addr, BindAs::Rx, "alice").await;
        let tx = Esme::answering(a.addr, BindAs::Tx, "alice").await;
        // Each receipt is its own race between the two nodes' workers. Node A taking
        // one (no receiver there, so it waits for its lease to end) shows only as
        // lateness: no event, counter or log line of a node tells it apart, so the
        // test gives each receipt SOON, far below a lease, and ten in a row give the
        // wrong node many chances. A failure is a real one (a receipt late by a
        // lease); a pass is not a proof.
        for i in 0..10usize {
            let id = tx
                .submit_ok(segment("SENDER", "300", None, 0, &gsm("hi"), 1, ""))
                .await;
            let got = rx.wait_delivered(i + 1, SOON).await;
            assert_eq!(
                got[i].receipted_message_id.as_deref(),
                Some(id.as_str()),
                "receipt {i}"
            );
        }
        a.stop().await;
        b.stop().await;
    }
);
