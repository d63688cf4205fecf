//! What the store needs to know; the server maps `config.toml` onto it.

use std::time::Duration;

/// Settings of the Redis + MongoDB message store.
#[derive(Debug, Clone)]
pub struct StoreSettings {
    /// `redis://host:port/db` of a standalone Redis ≥ 7.0 or Valkey, or one seed node
    /// of a cluster.
    pub redis_url: String,
    /// A Redis/Valkey Cluster, not one server: calls go to each partition's primary,
    /// the expiry subscriber listens on every node. Implies `per_partition_calls`.
    pub cluster: bool,
    /// More seed nodes of the cluster (besides `redis_url`).
    pub redis_seeds: Vec<String>,
    /// PEM CA certificates for `rediss://` (the system's roots when `None`).
    pub redis_tls_ca: Option<std::path::PathBuf>,
    /// Replicas that must have a submit batch, a claim or a release (`WAIT`) before it
    /// counts as done: an acknowledged segment then survives the loss of its primary.
    /// 0: no wait (replication is asynchronous; see docs/deployment.md).
    pub ack_replicas: u32,
    /// How long that `WAIT` may take; fewer replicas in time is an error (the submit
    /// answers ESME_RSYSERR).
    pub ack_timeout: Duration,
    /// Script calls of one partition each (SUBMIT, FINALIZE, RELEASE, RECEIPT_DONE),
    /// as a cluster needs, instead of one per batch whatever its partitions (tests of
    /// the cluster's call path on a standalone server).
    pub per_partition_calls: bool,
    /// `mongodb://…` of the outcome database.
    pub mongodb_uri: String,
    /// MongoDB database holding the `outcomes` collection.
    pub database: String,
    /// Collection name of the outcome documents.
    pub collection: String,
    /// Prepended to every Redis key and to the receipt channel, e.g. `smppd:`. Several
    /// smppd nodes of one installation share it; separate installations (or tests) on
    /// one Redis use different prefixes.
    pub key_prefix: String,
    /// A stable label for this node, written into outcomes as `node`.
    pub node_id: String,
    /// Set `notify-keyspace-events` at start if it lacks the expiry events (CONFIG SET).
    /// When false and the events are off, the store refuses to start.
    pub configure_keyspace_events: bool,
    /// TTL index on `completed_at`; `None` (default) keeps outcomes for compliance.
    pub retention_days: Option<u32>,
    /// A receipt no ESME took within this time is dropped (logged, counted).
    pub receipt_lifetime: Duration,
    /// First and largest pause before resending a receipt the ESME refused or left
    /// unanswered.
    pub receipt_retry_min: Duration,
    pub receipt_retry_max: Duration,
    /// How long a node holds a receipt it is sending before another node may take it
    /// (longer than the deliver_sm response timeout).
    pub receipt_lease: Duration,
    /// Receipts of one account sent at the same time by one node.
    pub receipt_window: usize,
    /// Outcomes written to MongoDB in one batch at most.
    pub outcome_batch_size: usize,
    /// How long the outcome writer waits to fill a batch after being woken.
    pub outcome_flush_interval: Duration,
    /// How long a node holds a finished message it is writing before another node may
    /// take it over (it is written idempotently either way).
    pub outbox_lease: Duration,
    /// Pending messages (incomplete + finished but not yet in MongoDB) beyond which new
    /// messages are refused with ESME_RMSGQFUL.
    pub max_pending: u64,
    /// Octets of user data those messages may hold together, beyond which new
    /// segments are refused the same way.
    pub max_pending_bytes: u64,
    /// Answer timeout of a Redis command.
    pub redis_timeout: Duration,
    /// How a forwarded message's receiver's answers are read, its retry pauses, the
    /// grace of a partial message's segments.
    pub delivery: crate::routing::DeliveryRules,
}

impl StoreSettings {
    /// Defaults for everything but the two URLs.
    pub fn new(redis_url: impl Into<String>, mongodb_uri: impl Into<String>) -> StoreSettings {
        StoreSettings {
            redis_url: redis_url.into(),
            cluster: false,
            redis_seeds: Vec::new(),
            redis_tls_ca: None,
            ack_replicas: 0,
            ack_timeout: Duration::from_secs(1),
            mongodb_uri: mongodb_uri.into(),
            database: "smppd".into(),
            collection: "outcomes".into(),
            key_prefix: "smppd:".into(),
            node_id: "node".into(),
            configure_keyspace_events: true,
            retention_days: None,
            receipt_lifetime: Duration::from_secs(72 * 3600),
            receipt_retry_min: Duration::from_secs(1),
            receipt_retry_max: Duration::from_secs(300),
            receipt_lease: Duration::from_secs(60),
            receipt_window: 256,
            outcome_batch_size: 256,
            outcome_flush_interval: Duration::from_millis(5),
            outbox_lease: Duration::from_secs(30),
            max_pending: 1_000_000,
            max_pending_bytes: 1 << 30,
            redis_timeout: Duration::from_secs(2),
            per_partition_calls: false,
            delivery: Default::default(),
        }
    }
}
