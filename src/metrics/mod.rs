//! Prometheus metrics and the health check.
//!
//! # Layout
//! - this file: the recording side — what sessions and the store call on events
//!   (PDUs, submit latency, expiry lateness, outcome writes, throttling).
//! - `state`: values read at scrape time from the live App (binds, Redis counts, the
//!   store's counters), rendered next to the recorded ones.
//! - `health`: `/healthz` — Redis PING, MongoDB `ping`, the expiry subscription.
//! - `http`: the small HTTP/1 server for `/metrics` and `/healthz`.
//!
//! # Two kinds of metric
//! Events go through the `metrics` facade into a process-wide Prometheus recorder,
//! installed once when an App with `[metrics] listen` starts. Until then every
//! recording function returns after one atomic load, so a server without a metrics
//! endpoint pays nothing. State (how many binds, how many messages pending) is not
//! kept in gauges that could drift: it is read from its owner when scraped.
//!
//! Hot paths take no lock and allocate nothing: label values are `&'static str`
//! (command and status names come from the protocol crate) and the handle of each
//! (direction, command, status) series is created once and cached.

mod health;
pub(crate) mod http;
pub(crate) mod state;

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use ::metrics::{Counter, Histogram};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use smpp_protocol::{CommandId, CommandStatus, Pdu};

use crate::admission::Refused;

pub use health::{Health, HealthPart};
pub use http::Endpoint;

/// Metric names, shared by the recorder set-up, the docs and the tests.
pub mod names {
    pub const PDUS: &str = "smppd_pdus_total";
    pub const SUBMIT_LATENCY: &str = "smppd_submit_latency_seconds";
    pub const EXPIRY_LATENESS: &str = "smppd_expiry_lateness_seconds";
    pub const RECEIPT_WAIT: &str = "smppd_receipt_wait_seconds";
    pub const OUTCOME_WRITE: &str = "smppd_outcome_write_seconds";
    pub const THROTTLED: &str = "smppd_throttled_total";
    pub const REFUSED: &str = "smppd_submits_refused_total";
    pub const FORWARDED: &str = "smppd_forwarded_total";
    pub const CONNECTIONS_REFUSED: &str = "smppd_connections_refused_total";
    pub const UNBOUND_EVICTED: &str = "smppd_unbound_connections_closed_total";

    /// The metric families smppd exports besides the store's counters: the recorded
    /// ones above and those read at scrape time (`state`); histograms by their base
    /// name (`_bucket`, `_sum` and `_count` follow from it).
    pub const OWN: &[&str] = &[
        PDUS,
        SUBMIT_LATENCY,
        EXPIRY_LATENESS,
        RECEIPT_WAIT,
        OUTCOME_WRITE,
        THROTTLED,
        REFUSED,
        FORWARDED,
        CONNECTIONS_REFUSED,
        UNBOUND_EVICTED,
        "smppd_binds",
        "smppd_store_max_pending",
        "smppd_account_max_queued_receipts",
        "smppd_redis_scrape_ok",
        "smppd_pending_messages",
        "smppd_outcome_backlog",
        "smppd_receipt_queue",
    ];

    /// Every metric family a server on one Redis exports: [`OWN`] and the store's
    /// counters (`store::Counter`, the cluster-only ones aside). Dashboards and alerts
    /// in `deploy/` are checked against it, and a scrape of a live server against them
    /// (`tests/it/deploy_files.rs`).
    pub fn all() -> Vec<&'static str> {
        let store = crate::store::Counter::ALL
            .iter()
            .filter(|c| !c.cluster_only());
        OWN.iter().copied().chain(store.map(|c| c.name())).collect()
    }
}

/// Latency of answering a submit: 50 µs … 5 s.
const SUBMIT_BUCKETS: &[f64] = &[
    0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
    2.5, 5.0,
];
/// Expiry lateness: the goal is p99 ≤ 100 ms; a restart's recovery pass shows minutes.
const LATENESS_BUCKETS: &[f64] = &[
    0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0,
];
/// One MongoDB batch insert, retries of an outage included.
const OUTCOME_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
    60.0,
];

static RECORDER: OnceLock<PrometheusHandle> = OnceLock::new();

/// Installs the process-wide recorder (once; later calls return the same handle).
/// `None` if another recorder was installed first: the scrape-time metrics still work.
pub fn install() -> Option<&'static PrometheusHandle> {
    if let Some(h) = RECORDER.get() {
        return Some(h);
    }
    let builder = PrometheusBuilder::new();
    let builder = [
        (names::SUBMIT_LATENCY, SUBMIT_BUCKETS),
        (names::EXPIRY_LATENESS, LATENESS_BUCKETS),
        (names::RECEIPT_WAIT, LATENESS_BUCKETS),
        (names::OUTCOME_WRITE, OUTCOME_BUCKETS),
    ]
    .into_iter()
    .try_fold(builder, |b, (name, buckets)| {
        b.set_buckets_for_metric(Matcher::Full(name.into()), buckets)
    });
    let recorder = match builder {
        Ok(b) => b.build_recorder(),
        Err(e) => {
            tracing::error!(error = %e, "metrics recorder set-up failed");
            return None;
        }
    };
    let handle = recorder.handle();
    // Two Apps in one process (tests) race here; the loser's recorder is dropped.
    let handle = RECORDER.get_or_init(|| match ::metrics::set_global_recorder(recorder) {
        Ok(()) => handle,
        Err(e) => {
            tracing::warn!(error = %e, "another metrics recorder is installed; smppd's events are not recorded");
            handle
        }
    });
    describe();
    Some(handle)
}

fn describe() {
    use ::metrics::{describe_counter, describe_histogram, Unit};
    describe_counter!(
        names::PDUS,
        "PDUs read (direction=in) and written (direction=out) by command and command_status."
    );
    describe_histogram!(
        names::SUBMIT_LATENCY,
        Unit::Seconds,
        "From a submit request's dispatch to its response queued for writing."
    );
    describe_histogram!(
        names::EXPIRY_LATENESS,
        Unit::Seconds,
        "Claim time minus deadline of each message this node expired (Redis time)."
    );
    describe_histogram!(
        names::RECEIPT_WAIT,
        Unit::Seconds,
        "From a message's end to its receipt queued (stage=queued, multi-part only) and taken for its first send (stage=taken), Redis time."
    );
    describe_histogram!(
        names::OUTCOME_WRITE,
        Unit::Seconds,
        "One outcome batch insert into MongoDB until acknowledged, retries included."
    );
    describe_counter!(
        names::THROTTLED,
        "Requests answered ESME_RTHROTTLED by the account's rate limit."
    );
    describe_counter!(
        names::REFUSED,
        "Submits refused by a limit of the store: ESME_RMSGQFUL (limit=store, store_bytes, account, account_bytes, receipts) or ESME_RINVMSGLEN (limit=segment_size)."
    );
    describe_counter!(
        names::CONNECTIONS_REFUSED,
        "SMPP connections closed as soon as accepted, by the limit that refused them."
    );
    describe_counter!(
        names::UNBOUND_EVICTED,
        "SMPP connections not bound yet closed to make room for a new connection."
    );
}

fn enabled() -> bool {
    RECORDER.get().is_some()
}

// ---------------------------------------------------------------------------------
// PDUs

const COMMANDS: usize = CommandId::ALL.len() + 1;
const STATUSES: usize = CommandStatus::ALL.len() + 1;

type Row = [OnceLock<Counter>; STATUSES];
/// Handles by [direction][command][status]; the last index of each is "other".
static PDU_COUNTERS: [[Row; COMMANDS]; 2] =
    [const { [const { [const { OnceLock::new() }; STATUSES] }; COMMANDS] }; 2];

#[derive(Clone, Copy)]
enum Direction {
    In = 0,
    Out = 1,
}

fn command_index(id: CommandId) -> usize {
    CommandId::ALL
        .iter()
        .position(|c| *c == id)
        .unwrap_or(COMMANDS - 1)
}

fn status_index(s: CommandStatus) -> usize {
    // ESME_ROK first: the common case is one comparison.
    CommandStatus::ALL
        .iter()
        .position(|c| *c == s)
        .unwrap_or(STATUSES - 1)
}

fn count_pdu(dir: Direction, id: CommandId, status: CommandStatus) {
    if !enabled() {
        return;
    }
    let (c, s) = (command_index(id), status_index(status));
    PDU_COUNTERS[dir as usize][c][s]
        .get_or_init(|| {
            let direction = match dir {
                Direction::In => "in",
                Direction::Out => "out",
            };
            // Unknown values share one series each: a peer cannot grow the label set.
            let command = id.name().unwrap_or("unknown");
            let status = status.name().unwrap_or("other");
            ::metrics::counter!(names::PDUS, "direction" => direction, "command" => command, "status" => status)
        })
        .increment(1);
}

/// A PDU read from an ESME (well-formed or not, once its header was read).
pub fn pdu_in(id: CommandId, status: CommandStatus) {
    count_pdu(Direction::In, id, status);
}

/// A PDU handed to the socket writer.
pub fn pdu_out(pdu: &Pdu) {
    count_pdu(Direction::Out, pdu.command_id(), pdu.command_status);
}

// ---------------------------------------------------------------------------------
// Latencies

static SUBMIT_LATENCY: [OnceLock<Histogram>; 3] = [const { OnceLock::new() }; 3];

/// A request of the session's window finished at `started`..now; only submit_sm,
/// data_sm and submit_multi are recorded.
pub fn request_done(id: CommandId, started: Instant) {
    let (i, command) = match id {
        CommandId::SUBMIT_SM => (0, "submit_sm"),
        CommandId::DATA_SM => (1, "data_sm"),
        CommandId::SUBMIT_MULTI => (2, "submit_multi"),
        _ => return,
    };
    if !enabled() {
        return;
    }
    SUBMIT_LATENCY[i]
        .get_or_init(|| ::metrics::histogram!(names::SUBMIT_LATENCY, "command" => command))
        .record(started.elapsed());
}

static EXPIRY_LATENESS: OnceLock<Histogram> = OnceLock::new();

/// A message this node claimed on expiry, `lateness_ms` after its deadline.
pub fn expiry_lateness_ms(lateness_ms: i64) {
    if !enabled() {
        return;
    }
    EXPIRY_LATENESS
        .get_or_init(|| ::metrics::histogram!(names::EXPIRY_LATENESS))
        .record(lateness_ms.max(0) as f64 / 1000.0);
}

/// Where a receipt is when [`receipt_wait_ms`] records it.
#[derive(Clone, Copy)]
pub enum ReceiptStage {
    /// Its RELEASE (or FINALIZE) queued it.
    Queued = 0,
    /// Its account's worker took it for its first send.
    Taken = 1,
}

static RECEIPT_WAIT: [OnceLock<Histogram>; 2] = [const { OnceLock::new() }; 2];

/// A receipt reached `stage` `wait_ms` after its message ended (completed, expired,
/// cancelled): with the claim lateness this splits an expiry's lateness at the ESME
/// into claim, release and queue.
pub fn receipt_wait_ms(stage: ReceiptStage, wait_ms: i64) {
    if !enabled() {
        return;
    }
    RECEIPT_WAIT[stage as usize]
        .get_or_init(|| {
            let stage = match stage {
                ReceiptStage::Queued => "queued",
                ReceiptStage::Taken => "taken",
            };
            ::metrics::histogram!(names::RECEIPT_WAIT, "stage" => stage)
        })
        .record(wait_ms.max(0) as f64 / 1000.0);
}

static OUTCOME_WRITE: OnceLock<Histogram> = OnceLock::new();

/// An outcome batch acknowledged by MongoDB, `elapsed` after its first attempt.
pub fn outcome_written(elapsed: Duration) {
    if !enabled() {
        return;
    }
    OUTCOME_WRITE
        .get_or_init(|| ::metrics::histogram!(names::OUTCOME_WRITE))
        .record(elapsed);
}

/// A request of `account` refused by its rate limit. Allocates the label (rare path:
/// only while an ESME exceeds its rate).
pub fn throttled(account: &str) {
    if !enabled() {
        return;
    }
    ::metrics::counter!(names::THROTTLED, "account" => account.to_owned()).increment(1);
}

/// A submit of `account` refused by a limit of the store (`limit`: store,
/// store_bytes, account, account_bytes, receipts, segment_size). Allocates its labels
/// (rare path: only while a limit is reached).
pub fn refused(account: &str, limit: &'static str) {
    if !enabled() {
        return;
    }
    ::metrics::counter!(names::REFUSED, "account" => account.to_owned(), "limit" => limit)
        .increment(1);
}

/// `n` forwarded messages' deliveries to `account` ended (delivered or refused for
/// good). Allocates its label per call (once per batch of sends).
pub fn forwarded(account: &str, n: u64) {
    if !enabled() {
        return;
    }
    ::metrics::counter!(names::FORWARDED, "account" => account.to_owned()).increment(n);
}

// ---------------------------------------------------------------------------------
// Connections

static REFUSED: [OnceLock<Counter>; 2] = [const { OnceLock::new() }; 2];
static EVICTED: OnceLock<Counter> = OnceLock::new();

/// An SMPP connection refused at accept.
pub fn connection_refused(why: Refused) {
    if !enabled() {
        return;
    }
    REFUSED[why as usize]
        .get_or_init(|| ::metrics::counter!(names::CONNECTIONS_REFUSED, "reason" => why.as_str()))
        .increment(1);
}

/// An SMPP connection not bound yet closed to make room for a new one.
pub fn unbound_evicted() {
    if !enabled() {
        return;
    }
    EVICTED
        .get_or_init(|| ::metrics::counter!(names::UNBOUND_EVICTED))
        .increment(1);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_codes_fall_into_the_last_slot() {
        assert_eq!(command_index(CommandId(0x1234_5678)), COMMANDS - 1);
        assert_eq!(status_index(CommandStatus(0x0400)), STATUSES - 1);
        assert_eq!(status_index(CommandStatus::ESME_ROK), 0);
        assert!(command_index(CommandId::SUBMIT_SM) < COMMANDS - 1);
    }
}
