//! Outages of the servers smppd depends on, end to end over real SMPP, on Redis 7.0
//! and Valkey 9:
//! * Redis stopped: submit_sm answered ESME_RSYSERR, the bind stays up (enquire_link
//!   answered); after Redis restarts (AOF reloaded) submits succeed again, the
//!   message begun before the outage completes, and expiry works again;
//! * MongoDB stopped while messages complete and expire: acknowledged as usual, kept
//!   in Redis, their receipts sent meanwhile (the outcome is durable in Redis), every
//!   outcome written exactly once after MongoDB returns.

use smppd::store::Counter;
use std::time::{Duration, Instant};

use mongodb::bson::doc;
use smpp_protocol::receipt::ReceiptStat;
use smpp_protocol::CommandStatus;

use crate::support::backend::both;
use crate::support::e2e::*;
use crate::support::esme::*;
use crate::support::messages::*;
use crate::support::servers::RedisKind;
use crate::support::wait_for;

both!(
    redis_outage_answers_syserr_keeps_the_bind_and_recovers,
    |kind: RedisKind| async move {
        let mut env = Env::start(kind, "redisdown").await;
        let app = env.start_app("node-a").await;
        let base = env.redis.dbsize();
        let trx = Esme::answering(app.addr, BindAs::Trx, "alice").await;

        let c = |seq| Some((ConcatScheme::Udh8, 60u16, 2u8, seq));
        let id1 = trx
            .submit_ok(segment("SENDER", "600", c(1), 0, &gsm("before "), 1, ""))
            .await;

        // A message whose deadline passes while Redis is down.
        let e = |seq| Some((ConcatScheme::Udh8, 62u16, 3u8, seq));
        let e1 = trx
            .submit_ok(segment(
                "SENDER",
                "603",
                e(1),
                0,
                &gsm("gone"),
                1,
                TWO_SECONDS,
            ))
            .await;
        // Its deadline is 2 s after smppd took it, by Redis' clock (this machine's):
        // at the latest 2 s after the answer.
        let e1_deadline = Instant::now() + Duration::from_secs(2);

        env.redis.stop();
        for i in 0..2 {
            let r = trx
                .submit(segment("SENDER", "601", None, 0, &gsm("during"), 1, ""))
                .await;
            assert_eq!(
                r.command_status,
                CommandStatus::ESME_RSYSERR,
                "submit {i} while Redis is down: {r:?}"
            );
        }
        let e = trx.enquire_link().await;
        assert_eq!(
            e.command_status,
            CommandStatus::ESME_ROK,
            "bind still serves"
        );
        assert!(!trx.is_closed());

        // Redis stays down until that deadline passed (the local clock: Redis, down,
        // cannot be asked; the deadline is an instant, not a guess).
        tokio::time::sleep_until((e1_deadline + Duration::from_millis(200)).into()).await;
        env.redis.restart();
        // The store reconnects on its own; the first submits may still meet the old
        // connection's failure, but submits succeed again within a few seconds.
        let start = Instant::now();
        let mut refused = 0;
        let id2 = loop {
            let r = trx
                .submit(segment("SENDER", "600", c(2), 0, &gsm("after"), 1, ""))
                .await;
            if r.command_status == CommandStatus::ESME_ROK {
                break message_id_of(&r);
            }
            assert_eq!(r.command_status, CommandStatus::ESME_RSYSERR, "{r:?}");
            refused += 1;
            assert!(
                start.elapsed() < T,
                "submits still refused {T:?} after the restart"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        eprintln!(
            "{kind:?}: first successful submit {:?} after the Redis restart ({refused} refused)",
            start.elapsed()
        );
        // Segment 1 was in the AOF: the message completes across the outage.
        env.wait_docs(2, T).await;
        let d = env.doc_of(&id1).await;
        assert_eq!(d.get_str("state").unwrap(), "DELIVERED");
        assert_eq!(d.get_str("text").unwrap(), "before after");
        assert_eq!(segment_ids(&d), vec![id1.clone(), id2.clone()]);
        // Expired during the outage: found by the recovery pass after resubscribing.
        let ed = env.doc_of(&e1).await;
        assert_eq!(ed.get_str("state").unwrap(), "PARTIAL");
        assert_eq!(missing(&ed), vec![2, 3]);
        eprintln!(
            "{kind:?}: expired during the Redis outage, processed {} ms after its deadline",
            lateness_ms(&ed)
        );

        // Expiry works on the restarted server too (resubscribed, events enabled).
        let x = |seq| Some((ConcatScheme::Udh8, 61u16, 3u8, seq));
        let x1 = trx
            .submit_ok(segment(
                "SENDER",
                "602",
                x(1),
                0,
                &gsm("x1"),
                1,
                TWO_SECONDS,
            ))
            .await;
        let docs = env.wait_docs(3, T).await;
        let xd = env.doc_of(&x1).await;
        assert_eq!(xd.get_str("state").unwrap(), "PARTIAL");
        let late = lateness_ms(&xd);
        eprintln!("{kind:?}: partial after the Redis restart: {late} ms after its deadline");
        assert!((0..=2000).contains(&late), "late by {late} ms");
        assert_eq!(docs.len(), 3);

        let ids = vec![id1, id2, e1, x1];
        let got = trx.wait_delivered(ids.len(), T).await;
        assert_receipts(&got, &ids, ReceiptStat::Delivrd);
        env.wait_dbsize(base, T).await;
        app.stop().await;
    }
);

both!(
    mongodb_outage_writes_every_outcome_exactly_once_after_it_returns,
    |kind: RedisKind| async move {
        let mut env = Env::start(kind, "mongodown").await;
        let app = env.start_app("node-a").await;
        let base = env.redis.dbsize();
        let rx = Esme::answering(app.addr, BindAs::Rx, "alice").await;
        let tx = Esme::answering(app.addr, BindAs::Tx, "alice").await;

        // One message before the outage: MongoDB reachable, its receipt delivered.
        let warm = tx
            .submit_ok(segment("SENDER", "700", None, 0, &gsm("warm"), 1, ""))
            .await;
        env.wait_docs(1, T).await;
        rx.wait_delivered(1, T).await;

        env.mongo.stop();
        let failures = app.store.counts()[Counter::OutcomeWriteFailures];
        let mut ids: Vec<String> = Vec::new();
        // Complete multi-part messages, single-part ones, and one that expires.
        for r in 0..3u16 {
            let c = |seq| Some((ConcatScheme::Udh16, 700 + r, 2u8, seq));
            for (seq, t) in [(1, "part one "), (2, "part two")] {
                ids.push(
                    tx.submit_ok(segment(
                        "SENDER",
                        &format!("71{r}"),
                        c(seq),
                        0,
                        &gsm(t),
                        1,
                        "",
                    ))
                    .await,
                );
            }
        }
        for i in 0..2 {
            ids.push(
                tx.submit_ok(segment(
                    "SENDER",
                    &format!("72{i}"),
                    None,
                    0,
                    &gsm("single"),
                    1,
                    "",
                ))
                .await,
            );
        }
        let p = |seq| Some((ConcatScheme::Sar, 730u16, 3u8, seq));
        let p1 = tx
            .submit_ok(segment(
                "SENDER",
                "730",
                p(1),
                0,
                &gsm("expires"),
                1,
                TWO_SECONDS,
            ))
            .await;
        ids.push(p1.clone());
        let submitted = env.redis_time_ms();
        let messages: usize = 3 + 2 + 1;

        // The writer keeps failing; the expired one is claimed meanwhile.
        env.wait_redis_time_past(submitted + 2000).await;
        wait_for("the outcome writer to fail", T, async || {
            let s = app.store.counts();
            if s[Counter::OutcomeWriteFailures] >= failures + 2 && s[Counter::ExpiredClaimed] >= 1 {
                Ok(())
            } else {
                Err(format!("{s:?}"))
            }
        })
        .await;
        assert!(env.redis.dbsize() > base, "finished messages wait in Redis");
        // query_sm answers from Redis while the outcome waits for MongoDB.
        let q = tx
            .request(smpp_protocol::Body::QuerySm(smpp_protocol::QuerySm {
                message_id: cs(&ids[0]),
                source_addr_ton: 1,
                source_addr_npi: 1,
                source_addr: cs("SENDER"),
                tlvs: Vec::new(),
            }))
            .await;
        match &q.body {
            smpp_protocol::Body::QuerySmResp(Some(a)) => {
                assert_eq!(a.message_state, 2, "finished, not yet written: {q:?}");
                assert!(!a.final_date.is_empty());
            }
            _ => panic!("query_sm during the MongoDB outage: {q:?}"),
        }
        // Receipts do not wait for MongoDB.
        let all: Vec<String> = ids.iter().chain([&warm]).cloned().collect();
        let got = rx.wait_delivered(all.len(), T).await;
        assert_receipts(&got, &all, ReceiptStat::Delivrd);
        assert_eq!(
            app.store.counts()[Counter::OutcomesWritten],
            1,
            "only the document written before the outage"
        );

        env.mongo.restart();
        let docs = env.wait_docs(1 + messages as u64, T).await;
        // Exactly once: one document per message, each segment in exactly one.
        assert_eq!(docs.len(), 1 + messages, "{docs:#?}");
        for id in ids.iter().chain([&warm]) {
            let n = env
                .outcomes()
                .count_documents(doc! { "segments.message_id": id })
                .await
                .unwrap();
            assert_eq!(n, 1, "segment {id} in {n} outcomes");
        }
        assert_eq!(env.doc_of(&p1).await.get_str("state").unwrap(), "PARTIAL");
        let delivered = docs
            .iter()
            .filter(|d| d.get_str("state").unwrap() == "DELIVERED")
            .count();
        assert_eq!(delivered, 1 + 5);

        env.wait_dbsize(base, T).await;
        assert_eq!(env.docs().await.len(), 1 + messages);
        assert_eq!(rx.delivered().len(), all.len());
        eprintln!("{kind:?}: mongodb outage: {:?}", app.store.counts());
        app.stop().await;
    }
);

both!(
    a_receipt_left_unanswered_is_sent_again,
    |kind: RedisKind| async move {
        let env = Env::start(kind, "unanswered").await;
        let app = env.start_app("node-a").await;
        let base = env.redis.dbsize();
        let rx = Esme::answering(app.addr, BindAs::Rx, "alice").await;
        let tx = Esme::answering(app.addr, BindAs::Tx, "alice").await;
        rx.answer_deliveries(false);
        let id = tx
            .submit_ok(segment("SENDER", "900", None, 0, &gsm("answer me"), 1, ""))
            .await;
        let first = rx.wait_delivered(1, T).await;
        assert_eq!(first[0].receipted_message_id.as_deref(), Some(id.as_str()));
        // Unanswered: the receipt stays in Redis and comes again; answered now.
        assert!(env.redis.dbsize() > base, "the receipt is still queued");
        rx.answer_deliveries(true);
        let again = rx.wait_delivered(2, T).await;
        assert_eq!(again[1].receipted_message_id.as_deref(), Some(id.as_str()));
        eprintln!(
            "{kind:?}: receipt resent {:?} after the unanswered one",
            again[1].at - again[0].at
        );
        env.wait_dbsize(base, T).await;
        assert_eq!(rx.delivered().len(), 2, "sent again only while unanswered");
        app.stop().await;
    }
);
