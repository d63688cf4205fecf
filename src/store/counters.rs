//! The store's counters and gauges, each defined once, here: its metric name, kind and
//! help. `/metrics` renders every one of them (`metrics::state`), the admin API and
//! the tests read them ([`Store::counts`](super::Store::counts)). One set per store:
//! several stores may share a process (the tests), the metrics recorder may not.

use std::ops::Index;
use std::sync::atomic::{AtomicU64, Ordering};

macro_rules! counters {
    ($($(#[$doc:meta])* $v:ident: $kind:literal $name:literal $help:literal;)*) => {
        /// A counter or gauge of the store.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum Counter {
            $($(#[$doc])* $v,)*
        }

        impl Counter {
            /// Every one, in the order `/metrics` shows them.
            pub const ALL: &'static [Counter] = &[$(Counter::$v,)*];

            /// The metric's name.
            pub fn name(self) -> &'static str {
                match self { $(Counter::$v => $name,)* }
            }

            /// `counter` or `gauge` (Prometheus' TYPE).
            pub fn kind(self) -> &'static str {
                match self { $(Counter::$v => $kind,)* }
            }

            /// The metric's HELP text.
            pub fn help(self) -> &'static str {
                match self { $(Counter::$v => $help,)* }
            }
        }
    };
}

counters! {
    ExpiredClaimed: "counter" "smppd_expired_total"
        "Messages this node claimed on expiry.";
    OutcomesWritten: "counter" "smppd_outcomes_written_total"
        "Outcome documents this node wrote to MongoDB.";
    OutcomeWriteFailures: "counter" "smppd_outcome_write_failures_total"
        "Failed MongoDB outcome write attempts (each is retried).";
    ReceiptsDelivered: "counter" "smppd_receipts_delivered_total"
        "Receipts answered deliver_sm_resp OK.";
    ReceiptsSentLocal: "counter" "smppd_receipts_sent_local_total"
        "Of the receipts delivered, those sent from this node's memory rather than taken back from Redis.";
    ReceiptsDropped: "counter" "smppd_receipts_dropped_total"
        "Receipts dropped after their lifetime.";
    Subscriptions: "counter" "smppd_expiry_subscriptions_total"
        "Expiry subscriptions made (1 + resubscriptions).";
    RecoveryPasses: "counter" "smppd_expiry_recovery_passes_total"
        "Recovery passes over the deadline index.";
    OutcomeYields: "counter" "smppd_outcome_yields_total"
        "Outcome batches that waited for the claim/receipt backlog first.";
    ReleasedClaimed: "counter" "smppd_receipt_releases_claim_total"
        "Finished messages whose receipts were released with the data their expiry claim read.";
    ReleasedCompleted: "counter" "smppd_receipt_releases_completed_total"
        "Completed multi-part messages whose receipts were released with the data their last submit read.";
    ReleasedFresh: "counter" "smppd_receipt_releases_fresh_total"
        "Finished messages whose receipts were released after reading P:fresh.";
    FreshScans: "counter" "smppd_receipt_fresh_scans_total"
        "Reads of every partition's P:fresh the receipt releaser finished (one after each recovery pass).";
    LeasedKnown: "counter" "smppd_outcome_leases_known_total"
        "Leased finished messages the outcome writer took from this node's memory.";
    LeasedRead: "counter" "smppd_outcome_leases_read_total"
        "Leased finished messages the outcome writer read back from Redis.";
    /// 1 while the expiry subscriber holds its subscription (`/healthz`).
    ExpirySubscribed: "gauge" "smppd_expiry_subscribed"
        "1 while the expiry subscriber is subscribed to its channels.";
    /// On a cluster only (0 on one server: not shown).
    ClusterPrimaries: "gauge" "smppd_redis_cluster_primaries"
        "Primaries of the Redis/Valkey Cluster, as the expiry subscriber last saw them.";
    /// Kept in ms, shown in seconds; on a cluster only. A partition's deadlines are
    /// judged by its primary's clock inside the scripts, this node's wake-ups follow
    /// one offset: a spread shows up as that much lateness.
    ClockSkewMs: "gauge" "smppd_redis_clock_skew_seconds"
        "Largest minus smallest clock of the cluster's primaries (Redis TIME).";
}

impl Counter {
    /// Shown only when the store runs on a cluster.
    pub fn cluster_only(self) -> bool {
        matches!(self, Counter::ClusterPrimaries | Counter::ClockSkewMs)
    }

    /// The value as the metric states it (the clock skew in seconds).
    pub fn metric_value(self, v: u64) -> f64 {
        match self {
            Counter::ClockSkewMs => v as f64 / 1000.0,
            _ => v as f64,
        }
    }
}

const N: usize = Counter::ALL.len();

/// The live values, one atomic each.
#[derive(Debug)]
pub struct Counters([AtomicU64; N]);

impl Default for Counters {
    fn default() -> Self {
        Counters(std::array::from_fn(|_| AtomicU64::new(0)))
    }
}

impl Counters {
    pub fn add(&self, c: Counter, n: u64) {
        self.0[c as usize].fetch_add(n, Ordering::Relaxed);
    }

    pub fn set(&self, c: Counter, v: u64) {
        self.0[c as usize].store(v, Ordering::Relaxed);
    }

    pub fn get(&self, c: Counter) -> u64 {
        self.0[c as usize].load(Ordering::Relaxed)
    }

    /// Every value now.
    pub fn snapshot(&self) -> Counts {
        Counts(std::array::from_fn(|i| self.0[i].load(Ordering::Relaxed)))
    }
}

/// The values at one moment: `counts[Counter::ReceiptsDelivered]`.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Counts([u64; N]);

impl Index<Counter> for Counts {
    type Output = u64;
    fn index(&self, c: Counter) -> &u64 {
        &self.0[c as usize]
    }
}

impl std::fmt::Debug for Counts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut m = f.debug_map();
        for c in Counter::ALL {
            m.entry(c, &self[*c]);
        }
        m.finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_counter_has_its_own_slot_and_metric() {
        let counters = Counters::default();
        for (i, c) in Counter::ALL.iter().enumerate() {
            assert_eq!(*c as usize, i);
            counters.add(*c, i as u64 + 1);
        }
        let s = counters.snapshot();
        for (i, c) in Counter::ALL.iter().enumerate() {
            assert_eq!(s[*c], i as u64 + 1, "{c:?}");
            assert!(c.name().starts_with("smppd_"), "{c:?}");
            assert_eq!(c.kind() == "counter", c.name().ends_with("_total"), "{c:?}");
        }
        let names: std::collections::BTreeSet<_> = Counter::ALL.iter().map(|c| c.name()).collect();
        assert_eq!(names.len(), Counter::ALL.len());
    }
}
