//! Nodes with skewed wall clocks agree on deadlines and claims, because every
//! comparison with "now" uses Redis `TIME` (ARCHITECTURE.md, "the clock"), on Redis
//! 7.0 and Valkey 9.
//!
//! Three real `smppd` processes share one Redis: `fast` runs with its wall clock one
//! hour ahead, `slow` one hour behind (libfaketime preloaded: `FAKETIME=+1h` / `-1h`),
//! `honest` with the real clock. libfaketime also fakes CLOCK_MONOTONIC (tokio's
//! `Instant`) unless `FAKETIME_DONT_FAKE_MONOTONIC=1`: `fast` runs with it faked, `slow`
//! with it real, so both ways are covered. The test first checks from each node's log
//! timestamps that the skew really is in effect (a preload that silently did nothing
//! would make the test prove nothing).
//!
//! Partial messages (2 of 3 segments) are submitted through the skewed nodes with a
//! relative validity (resolved by the node: local time would put the deadline an hour
//! early or late) and an absolute one (compared by the node: a clock an hour ahead
//! would refuse it as already past), and one message gets its segments through both
//! skewed nodes. Every message must expire once, at its deadline by Redis time: one
//! PARTIAL outcome each, deadline = submit + validity, processed within 2 s after it,
//! and one receipt per segment, not before the deadline.

use std::time::{Duration, Instant};

use smpp_protocol::receipt::ReceiptStat;

use crate::support::backend::both;
use crate::support::e2e::*;
use crate::support::esme::*;
use crate::support::messages::*;
use crate::support::servers::RedisKind;

/// libfaketime's multi-threaded preload library (`$SMPPD_LIBFAKETIME`, set by
/// scripts/env.sh; Debian package `faketime`).
fn libfaketime() -> String {
    let path = crate::support::servers::binary_from_env("SMPPD_LIBFAKETIME");
    path.to_string_lossy().into_owned()
}

/// Seconds the node's wall clock is ahead of ours, from the first RFC 3339 timestamp
/// of its log (tracing's default format).
fn log_skew_s(p: &Proc) -> i64 {
    let log = p.log();
    let ts = log
        .lines()
        .find_map(|l| {
            // The line may start with ANSI colour codes.
            (0..l.len()).find_map(|at| {
                let s = l.get(at..at + 19)?;
                chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S").ok()
            })
        })
        .unwrap_or_else(|| panic!("no timestamp in the log of {}:\n{log}", p.node));
    ts.and_utc().timestamp() - chrono::Utc::now().timestamp()
}

/// 2 of 3 segments of a UDH message.
struct Partial {
    dest: &'static str,
    reference: u16,
}

impl Partial {
    fn seg(&self, seq: u8, validity: &str) -> smpp_protocol::SubmitSm {
        segment(
            "SKEW",
            self.dest,
            Some((ConcatScheme::Udh8, self.reference, 3, seq)),
            0,
            &gsm(&format!("part {seq} ")),
            1,
            validity,
        )
    }
}

/// Waits until the receivers together got `n` deliver_sm; returns them all.
async fn wait_receipts(rxs: &[Esme], n: usize) -> Vec<Delivered> {
    let start = Instant::now();
    loop {
        let got: Vec<Delivered> = rxs.iter().flat_map(|r| r.delivered()).collect();
        if got.len() >= n {
            return got;
        }
        assert!(
            start.elapsed() < T,
            "{} of {n} receipts after {T:?}",
            got.len()
        );
        // Until any of them receives one more.
        let left = T.saturating_sub(start.elapsed());
        let next = rxs.iter().map(|r| {
            let have = r.delivered().len();
            Box::pin(r.wait_delivered(have + 1, T + T))
        });
        let _ = tokio::time::timeout(left, futures::future::select_all(next)).await;
    }
}

const VALIDITY_MS: i64 = 3000;
const RELATIVE: &str = "000000000003000R";

both!(
    skewed_nodes_expire_each_message_once_at_its_redis_time_deadline,
    |kind: RedisKind| async move {
        let env = Env::start(kind, "skew").await;
        let lib = libfaketime();
        let fast = env
            .spawn_smppd_with_env("fast", &[("LD_PRELOAD", lib.as_str()), ("FAKETIME", "+1h")])
            .await;
        let slow = env
            .spawn_smppd_with_env(
                "slow",
                &[
                    ("LD_PRELOAD", lib.as_str()),
                    ("FAKETIME", "-1h"),
                    ("FAKETIME_DONT_FAKE_MONOTONIC", "1"),
                ],
            )
            .await;
        let honest = env.spawn_smppd("honest").await;
        let (fs, ss, hs) = (log_skew_s(&fast), log_skew_s(&slow), log_skew_s(&honest));
        eprintln!(
            "{kind:?}: wall clock skew from the logs: fast {fs} s, slow {ss} s, honest {hs} s"
        );
        assert!(
            (3500..=3700).contains(&fs),
            "fast node is not 1 h ahead: {fs} s"
        );
        assert!(
            (-3700..=-3500).contains(&ss),
            "slow node is not 1 h behind: {ss} s"
        );
        assert!(hs.abs() <= 60, "honest node skewed: {hs} s");

        let base = env.redis.dbsize();
        // A receiver on every node, so every node's receipt path runs under its skewed
        // clock. (A receiver on one node only: `e2e_receipt_nodes`.)
        let rxs = [
            Esme::answering(honest.addr, BindAs::Rx, "alice").await,
            Esme::answering(fast.addr, BindAs::Rx, "alice").await,
            Esme::answering(slow.addr, BindAs::Rx, "alice").await,
        ];
        let via_fast = Esme::answering(fast.addr, BindAs::Tx, "alice").await;
        let via_slow = Esme::answering(slow.addr, BindAs::Tx, "alice").await;

        // Absolute validity the way a correct ESME computes it: from real (Redis) time.
        let absolute = |ms_ahead: i64| {
            let at = env.redis_time_ms() + ms_ahead;
            smpp_protocol::time::format_absolute(
                chrono::DateTime::from_timestamp_millis(at - at.rem_euclid(100)).unwrap(),
            )
        };
        let messages = [
            (
                "fast, relative",
                Partial {
                    dest: "801",
                    reference: 81,
                },
            ),
            (
                "fast, absolute",
                Partial {
                    dest: "802",
                    reference: 82,
                },
            ),
            (
                "slow, relative",
                Partial {
                    dest: "803",
                    reference: 83,
                },
            ),
            (
                "slow, absolute",
                Partial {
                    dest: "804",
                    reference: 84,
                },
            ),
            (
                "fast then slow",
                Partial {
                    dest: "805",
                    reference: 85,
                },
            ),
        ];
        let mut ids: Vec<Vec<String>> = Vec::new();
        let mut submitted: Vec<(i64, Instant)> = Vec::new();
        for (i, (name, m)) in messages.iter().enumerate() {
            let redis_now = env.redis_time_ms();
            let local_now = Instant::now();
            let validity = if name.ends_with("absolute") {
                absolute(VALIDITY_MS)
            } else {
                RELATIVE.to_string()
            };
            let (first, second) = match i {
                0 | 1 => (&via_fast, &via_fast),
                2 | 3 => (&via_slow, &via_slow),
                _ => (&via_fast, &via_slow),
            };
            let a = first.submit_ok(m.seg(1, &validity)).await;
            // The deadline is fixed by the first segment; the second carries none.
            let b = second.submit_ok(m.seg(2, "")).await;
            ids.push(vec![a, b]);
            submitted.push((redis_now, local_now));
        }

        let docs = env.wait_docs(messages.len() as u64, T).await;
        assert_eq!(docs.len(), messages.len(), "one outcome per message");
        for (i, (name, _)) in messages.iter().enumerate() {
            let d = env.doc_of(&ids[i][0]).await;
            assert_eq!(d.get_str("state").unwrap(), "PARTIAL", "{name}: {d:?}");
            assert_eq!(
                segment_ids(&d),
                ids[i],
                "{name}: both segments, one outcome"
            );
            assert_eq!(missing(&d), vec![3], "{name}");
            let deadline = d.get_datetime("deadline").unwrap().timestamp_millis();
            let submitted_at = d.get_datetime("submitted_at").unwrap().timestamp_millis();
            let completed = d.get_datetime("completed_at").unwrap().timestamp_millis();
            let (redis_submit, _) = submitted[i];
            // Absolute validity is truncated to tenths of a second.
            let span = deadline - redis_submit;
            eprintln!(
                "{kind:?} {name}: deadline {span} ms after the submit (Redis time), \
                 processed {} ms after it by {}",
                completed - deadline,
                d.get_str("node").unwrap()
            );
            assert!(
                (VALIDITY_MS - 200..=VALIDITY_MS + 500).contains(&span),
                "{name}: deadline {span} ms after the submit, not {VALIDITY_MS}"
            );
            assert!(
                (submitted_at - redis_submit).abs() < 1000,
                "{name}: submitted_at is not Redis time: {} ms off",
                submitted_at - redis_submit
            );
            assert!(
                (0..=2000).contains(&(completed - deadline)),
                "{name}: processed {} ms after its deadline",
                completed - deadline
            );
        }

        let all: Vec<String> = ids.iter().flatten().cloned().collect();
        let got = wait_receipts(&rxs, all.len()).await;
        assert_receipts(&got, &all, ReceiptStat::Delivrd);
        for (i, (name, _)) in messages.iter().enumerate() {
            let (_, local_submit) = submitted[i];
            for d in got
                .iter()
                .filter(|d| ids[i].contains(d.receipted_message_id.as_ref().unwrap()))
            {
                let after = d.at.duration_since(local_submit);
                assert!(
                    after >= Duration::from_millis(VALIDITY_MS as u64 - 200),
                    "{name}: receipt {after:?} after the submit, before the deadline"
                );
            }
        }
        // Exactly once: with nothing of these messages left in Redis no node can
        // write a second outcome or send a receipt again.
        env.wait_dbsize(base, T).await;
        assert_eq!(env.docs().await.len(), messages.len());
        let total: usize = rxs.iter().map(|r| r.delivered().len()).sum();
        assert_eq!(total, all.len(), "no receipt twice");
    }
);
