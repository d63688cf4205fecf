//! The message store: segments in Redis, event-driven expiry, outcomes in MongoDB,
//! delivery receipts.
//!
//! # Layout
//! * [`submit`] — where a segment is accepted: deadline, message_id, the group commit
//!   of SUBMIT calls ([`MessageService`]).
//! * [`expiry`] — where a deadline fires: the keyspace-event subscriber, local timers,
//!   claim-due and recovery passes.
//! * [`outcomes`] — where a finished message becomes its MongoDB document.
//! * [`receipts`] — where a receipt is queued, held, leased and sent through the
//!   [`ReceiptSink`].
//! * [`ops`] — query_sm, cancel_sm (one message or all of a source), replace_sm.
//! * [`limits`] — an account's throughput and max_binds over every node.
//! * [`redis`] — connection (one server or a cluster), partitions, the Lua scripts as
//!   typed functions, the server's clock, the layout version.
//! * [`model`], [`settings`], [`error`], [`counters`] — stored formats, what the store is
//!   told, its errors, its counters and gauges (each defined once, with its metric).
//!
//! Start: [`Store::connect`], then [`Store::spawn`] with the session side's
//! [`ReceiptSink`] and a shutdown token. Sessions use it as a [`MessageService`].

mod counters;
pub mod error;
mod expiry;
mod limits;
pub mod model;
mod ops;
mod outcomes;
pub use outcomes::mongo::outcome_indexes;
mod receipts;
pub mod redis;
pub mod settings;
mod submit;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use self::redis::connection::{self, Conn};
use self::redis::{clock, layout, partition, scripts, topology, value};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// How long shutdown waits for the tasks the background tasks spawned.
const TASKS_STOP: std::time::Duration = std::time::Duration::from_secs(2);

use counters::Counters;
pub use counters::{Counter, Counts};
pub use error::StoreError;
pub use settings::StoreSettings;

use crate::service::{MessageService, ReceiptSink};

/// How deadlines turn into events on this server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExpiryBackend {
    /// Valkey ≥ 9 / Redis ≥ 7.4: a hash field with HPEXPIREAT, `hexpired` events.
    HashFieldExpiry,
    /// Redis 7.0: a key with PEXPIREAT, `expired` events (the backstop of the local
    /// timers, which claim on time on either backend).
    KeyExpiry,
}

pub(crate) struct Inner {
    settings: StoreSettings,
    conn: connection::Shared,
    db: i64,
    /// Replicas a submit batch, claim or release must reach (`WAIT`).
    ack: connection::Ack,
    /// With `ack_replicas`, the connection those writes and their WAITs go over: the
    /// server blocks a client in WAIT, and on the shared connection every other
    /// command would queue behind it (up to `ack_timeout` when a replica is missing).
    acked: Option<connection::Shared>,
    scripts: Arc<scripts::Scripts>,
    /// Group commit of submits (one SUBMIT call per batch).
    submits: submit::batch::Batcher,
    outcomes: outcomes::mongo::Outcomes,
    clock: clock::Clock,
    backend: ExpiryBackend,
    /// Node epoch (from `INCR P:node_seq`) and counter: message ids unique across
    /// nodes and restarts.
    epoch: u64,
    counter: AtomicU64,
    /// This node's block of `P:short_seq`, for short message_ids (`short_id`).
    short_ids: partition::short_id::Blocks,
    /// Cancelled when the store shuts down; one-shot timers watch it.
    shutdown: CancellationToken,
    /// Every background task of the store (the submit batcher aside: it ends with the
    /// `Batcher` that owns it), so that shutdown waits for all of them.
    tasks: TaskTracker,
    /// Wakes the outcome writer for the outboxes of these partitions.
    finisher_wake: partition::Wake,
    /// Wakes the receipt releaser to read the `P:fresh` of these partitions.
    release_wake: partition::Wake,
    /// Batches of groups the claim-due pass claimed, with their data, for the
    /// releaser (`release`); a batch that finds no room within `HAND_OVER_WAIT` is left
    /// to `P:fresh`.
    claimed: tokio::sync::mpsc::Sender<receipts::release::Claimed>,
    /// The receiving end, taken by the releaser when the tasks start.
    claimed_rx: std::sync::Mutex<Option<tokio::sync::mpsc::Receiver<receipts::release::Claimed>>>,
    /// Multi-part messages just completed, with their data, for the releaser.
    completed: Arc<receipts::release::Completed>,
    /// Held receipts whose submit_sm_resp is queued (`ready`).
    ready: Arc<receipts::ready::ReadyQueue>,
    /// Deadlines this node watches locally, so they fire on time whatever the
    /// server's expiry sampling does (see `timers`).
    timers: expiry::timers::Timers,
    /// Wakes the claim-due pass for these partitions (a local timer at a deadline,
    /// or an expiry event of a partition's timers).
    due_pass: partition::Wake,
    /// Whether the claim-due pass or the receipt releaser has a backlog in hand: the
    /// outcome writer waits for them (receipts first, see `backlog`).
    backlog: outcomes::backlog::Backlog,
    /// Finished groups this node parsed or built, for the outcome writer's lease.
    known: outcomes::known::Known,
    /// Receipts leased to this node, for its receipt workers to send from memory.
    handoff: receipts::handoff::Handoff,
    /// The max_binds leases of this node's live binds, renewed by `limits::renew`.
    leases: limits::Leases,
    counters: Counters,
}

/// Where a message is in Redis ([`Store::redis_state`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RedisState {
    /// Pending: segments still to come.
    Pending,
    /// Finished, its outcome not in MongoDB yet: `complete`, `expired` or `cancelled`.
    Finished(String),
}

/// The Redis + MongoDB message store. Cheap to clone.
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

impl Store {
    /// Connects to Redis, checks the server's capabilities and keyspace-event
    /// configuration, and takes a node epoch. MongoDB is not contacted yet (outcomes
    /// wait in Redis while it is down). Starts the submit batcher's task, so that
    /// `submit` works before [`Store::spawn`]; it ends when the store is dropped.
    pub async fn connect(mut settings: StoreSettings) -> Result<Store, StoreError> {
        connection::check_mode(&settings).await?;
        // A cluster refuses a script over keys of several slots: one call per
        // partition.
        settings.per_partition_calls |= settings.cluster;
        let db = ::redis::IntoConnectionInfo::into_connection_info(settings.redis_url.as_str())?
            .redis_settings()
            .db();
        let mut conn = Conn::connect(&settings).await?;
        let backend = detect_backend(&mut conn).await?;
        if settings.cluster {
            let topology = topology::Topology::read(&mut conn).await?;
            for node in topology.nodes.iter().filter(|n| n.healthy) {
                let info = topology::node_info(&settings.redis_url, node)?;
                let mut c = connection::client(&settings, info)?
                    .get_multiplexed_async_connection()
                    .await?;
                check_keyspace_events(&mut c, backend, settings.configure_keyspace_events).await?;
            }
            tracing::info!(
                primaries = topology.primaries(),
                nodes = topology.nodes.len(),
                "redis: a cluster"
            );
        } else {
            check_keyspace_events(&mut conn, backend, settings.configure_keyspace_events).await?;
            tracing::info!("redis: one server");
        }
        layout::check(&mut conn, &settings.key_prefix).await?;
        let epoch: u64 = ::redis::cmd("INCR")
            .arg(format!("{}node_seq", settings.key_prefix))
            .query_async(&mut conn)
            .await?;
        let clock = clock::Clock::default();
        clock.sync(&mut conn).await?;
        let outcomes = outcomes::mongo::Outcomes::new(
            &settings.mongodb_uri,
            &settings.database,
            &settings.collection,
            settings.retention_days,
        )
        .await?;
        tracing::info!(?backend, epoch, node = %settings.node_id, "store connected");
        let scripts = Arc::new(scripts::Scripts::new(
            &settings.key_prefix,
            &settings.node_id,
            backend == ExpiryBackend::HashFieldExpiry,
        ));
        scripts.load(&mut conn).await?;
        tracing::debug!(target: "smppd::scripts", "script hashes: {}", scripts.hashes());
        let ack = connection::Ack::of(&settings);
        let conn = connection::Shared::new(vec![conn]);
        let acked = if ack.replicas > 0 {
            let mut pool = Vec::with_capacity(connection::ACKED_POOL);
            for _ in 0..connection::ACKED_POOL {
                pool.push(Conn::connect(&settings).await?);
            }
            Some(connection::Shared::new(pool))
        } else {
            None
        };
        let submits = submit::batch::Batcher::start(
            acked.clone().unwrap_or_else(|| conn.clone()),
            ack,
            scripts.clone(),
            scripts::submit::SubmitHeader {
                max_pending: settings.max_pending,
                max_pending_bytes: settings.max_pending_bytes,
                hold_ms: receipts::lease::hold_ms(settings.receipt_lease),
            },
            if settings.per_partition_calls {
                submit::batch::Calls::PerPartition
            } else {
                submit::batch::Calls::One
            },
        );
        let (claimed, claimed_rx) = tokio::sync::mpsc::channel(receipts::release::CLAIMED_QUEUE);
        Ok(Store {
            inner: Arc::new(Inner {
                settings,
                conn,
                db,
                ack,
                acked,
                scripts,
                submits,
                outcomes,
                clock,
                backend,
                epoch,
                counter: AtomicU64::new(0),
                short_ids: partition::short_id::Blocks::default(),
                shutdown: CancellationToken::new(),
                tasks: TaskTracker::new(),
                finisher_wake: partition::Wake::default(),
                release_wake: partition::Wake::default(),
                claimed,
                claimed_rx: std::sync::Mutex::new(Some(claimed_rx)),
                completed: Arc::default(),
                ready: Arc::default(),
                timers: expiry::timers::Timers::default(),
                due_pass: partition::Wake::default(),
                backlog: outcomes::backlog::Backlog::default(),
                known: outcomes::known::Known::default(),
                handoff: receipts::handoff::Handoff::default(),
                leases: limits::Leases::default(),
                counters: Counters::default(),
            }),
        })
    }

    /// Starts the background tasks — expiry subscriber (with its recovery passes),
    /// outcome writer, receipt dispatcher — and returns a handle that completes once
    /// all of them stopped after `shutdown` was cancelled.
    pub fn spawn(
        &self,
        sink: Arc<dyn ReceiptSink>,
        shutdown: CancellationToken,
    ) -> tokio::task::JoinHandle<()> {
        let inner = self.inner.clone();
        tokio::spawn(async move {
            let (dispatch_tx, dispatch_rx) = tokio::sync::mpsc::channel(1024);
            let ready_dispatch = dispatch_tx.clone();
            let t = &inner.tasks;
            let tasks = vec![
                t.spawn({
                    let (i, dispatch) = (inner.clone(), dispatch_tx.clone());
                    async move { i.subscriber(dispatch).run().await }
                }),
                t.spawn({
                    let i = inner.clone();
                    async move { i.claimer().run().await }
                }),
                t.spawn({
                    let i = inner.clone();
                    async move { i.finisher().run().await }
                }),
                t.spawn({
                    let (i, sink, dispatch) = (inner.clone(), sink.clone(), dispatch_tx.clone());
                    async move { i.releaser(sink, dispatch).run().await }
                }),
                t.spawn({
                    let (i, sink, dispatch) = (inner.clone(), sink.clone(), dispatch_tx.clone());
                    async move {
                        i.receipt_dispatcher(sink, dispatch_rx, dispatch)
                            .run()
                            .await
                    }
                }),
                t.spawn({
                    let i = inner.clone();
                    async move {
                        expiry::timers::run(&i.timers, &i.clock, &i.due_pass, &i.shutdown).await
                    }
                }),
                t.spawn({
                    let i = inner.clone();
                    async move {
                        let h = i.hand_over();
                        receipts::ready::run(&i.ready, h, sink, ready_dispatch, &i.shutdown).await
                    }
                }),
                t.spawn({
                    let i = inner.clone();
                    async move { i.renewal().run(&i.shutdown).await }
                }),
            ];
            shutdown.cancelled().await;
            inner.shutdown.cancel();
            for t in tasks {
                if let Err(e) = t.await {
                    tracing::error!(error = %e, "store task failed");
                }
            }
            // What those spawned (the claim-due passes, a receipt worker per account)
            // stops at its next wait; a send in flight may hold a worker up to its
            // response timeout, so the wait is bounded.
            inner.tasks.close();
            if tokio::time::timeout(TASKS_STOP, inner.tasks.wait())
                .await
                .is_err()
            {
                tracing::warn!(
                    left = inner.tasks.len(),
                    "store tasks still running at shutdown (receipts in flight)"
                );
            }
            // Receipts leased to this node and not sent: due now for whichever node
            // (or this one's next start) has a receiver, not when their hold ends.
            let mut left: Vec<receipts::lease::Held> = inner
                .handoff
                .take_all()
                .into_iter()
                .map(receipts::lease::Local::into_held)
                .collect();
            left.extend(inner.ready.take());
            receipts::ready::make_due(inner.hand_over(), &left).await;
        })
    }

    /// Closes the MongoDB client once the background tasks stopped (process exit):
    /// the driver's own tasks would otherwise outlive the runtime and panic.
    pub async fn close(&self) {
        self.inner.outcomes.close().await;
    }

    pub fn backend(&self) -> ExpiryBackend {
        self.inner.backend
    }

    /// The MongoDB collection of outcome documents (for tools and tests).
    pub fn outcomes(&self) -> &mongodb::Collection<mongodb::bson::Document> {
        self.inner.outcomes.collection()
    }

    /// The store's counters and gauges now ([`Counter`]).
    pub fn counts(&self) -> Counts {
        self.inner.counters.snapshot()
    }

    /// Deadlines this node's timer set watches now (pending multi-part messages).
    pub fn timers_armed(&self) -> usize {
        self.inner.timers.len()
    }

    /// Whether the expiry subscriber is subscribed right now (`/healthz`).
    pub fn expiry_subscribed(&self) -> bool {
        self.inner.counters.get(Counter::ExpirySubscribed) == 1
    }

    /// A Redis connection, for read-only gauges and health checks (`metrics`).
    pub fn redis(&self) -> Conn {
        self.inner.conn()
    }

    /// Where message `message_id` is in Redis, for operators (read-only, any
    /// account): `Pending`, or finished and waiting for MongoDB in this state
    /// (`complete`, `expired`, `cancelled`); `None` when Redis does not hold it (its
    /// outcome is in MongoDB, or smppd never gave the id).
    pub async fn redis_state(&self, message_id: &str) -> Result<Option<RedisState>, StoreError> {
        self.inner.redis_state(message_id).await
    }

    /// The prefix of every key this store writes.
    pub fn key_prefix(&self) -> &str {
        self.inner.prefix()
    }
}

impl Inner {
    fn conn(&self) -> Conn {
        self.conn.get()
    }

    fn acked(&self) -> &connection::Shared {
        self.acked.as_ref().unwrap_or(&self.conn)
    }

    fn prefix(&self) -> &str {
        &self.settings.key_prefix
    }

    fn node(&self) -> &str {
        &self.settings.node_id
    }

    /// What handing receipts to this node's workers uses of the store.
    fn hand_over(&self) -> receipts::ready::HandOver<'_> {
        receipts::ready::HandOver {
            handoff: &self.handoff,
            scripts: &self.scripts,
            conn: &self.conn,
        }
    }

    /// The receipt releaser, with what it uses of the store. The claimed batches'
    /// receiver is taken once: the store starts its tasks once (a second releaser
    /// would read P:fresh only, which is complete on its own).
    fn releaser(
        &self,
        sink: Arc<dyn ReceiptSink>,
        dispatch: tokio::sync::mpsc::Sender<receipts::announce::DispatchEvent>,
    ) -> receipts::release::Releaser<'_> {
        let claimed = match self.claimed_rx.lock() {
            Ok(mut rx) => rx.take(),
            Err(poisoned) => poisoned.into_inner().take(),
        };
        receipts::release::Releaser {
            settings: &self.settings,
            scripts: &self.scripts,
            conn: &self.conn,
            acked: self.acked(),
            ack: &self.ack,
            clock: &self.clock,
            wake: &self.release_wake,
            claimed,
            completed: &self.completed,
            known: &self.known,
            backlog: &self.backlog,
            hand_over: self.hand_over(),
            counters: &self.counters,
            shutdown: &self.shutdown,
            sink,
            dispatch,
        }
    }

    /// What the receipt workers use of the store.
    fn receipts_env(&self) -> receipts::worker::Env<'_> {
        receipts::worker::Env {
            settings: &self.settings,
            scripts: &self.scripts,
            conn: &self.conn,
            clock: &self.clock,
            handoff: &self.handoff,
            counters: &self.counters,
            finisher_wake: &self.finisher_wake,
            shutdown: &self.shutdown,
        }
    }

    /// The receipt dispatcher, which starts a worker per account on the store's
    /// tasks, each with [`Inner::receipts_env`].
    fn receipt_dispatcher(
        self: &Arc<Self>,
        sink: Arc<dyn ReceiptSink>,
        events: tokio::sync::mpsc::Receiver<receipts::announce::DispatchEvent>,
        dispatch: tokio::sync::mpsc::Sender<receipts::announce::DispatchEvent>,
    ) -> receipts::worker::Dispatcher<'_> {
        let inner = self.clone();
        receipts::worker::Dispatcher::new(
            self.prefix(),
            &self.conn,
            &self.shutdown,
            Box::new(move |start| {
                let i = inner.clone();
                inner.tasks.spawn(async move {
                    receipts::worker::Worker::new(i.receipts_env(), start)
                        .run()
                        .await
                });
            }),
            sink,
            events,
            dispatch,
        )
    }

    /// Renewing and giving back this node's bind leases.
    fn renewal(&self) -> limits::Renewal<'_> {
        limits::Renewal {
            leases: &self.leases,
            scripts: &self.scripts,
            conn: &self.conn,
        }
    }

    /// The claim-due passes, with what they use of the store.
    fn claimer(&self) -> expiry::Claimer<'_> {
        expiry::Claimer {
            settings: &self.settings,
            scripts: &self.scripts,
            acked: self.acked(),
            ack: &self.ack,
            timers: &self.timers,
            due_pass: &self.due_pass,
            claimed: &self.claimed,
            finisher_wake: &self.finisher_wake,
            release_wake: &self.release_wake,
            backlog: &self.backlog,
            counters: &self.counters,
            shutdown: &self.shutdown,
        }
    }

    /// The expiry subscriber, with what it uses of the store.
    fn subscriber(
        &self,
        dispatch: tokio::sync::mpsc::Sender<receipts::announce::DispatchEvent>,
    ) -> expiry::Subscriber<'_> {
        expiry::Subscriber {
            settings: &self.settings,
            db: self.db,
            backend: self.backend,
            conn: &self.conn,
            acked: self.acked.as_ref(),
            clock: &self.clock,
            counters: &self.counters,
            tasks: &self.tasks,
            shutdown: &self.shutdown,
            claim: self.claimer(),
            dispatch,
        }
    }

    /// The outcome writer, with what it uses of the store.
    fn finisher(&self) -> outcomes::writer::Finisher<'_> {
        outcomes::writer::Finisher {
            settings: &self.settings,
            conn: &self.conn,
            scripts: &self.scripts,
            outcomes: &self.outcomes,
            epoch: self.epoch,
            clock: &self.clock,
            wake: &self.finisher_wake,
            known: &self.known,
            backlog: &self.backlog,
            counters: &self.counters,
            shutdown: &self.shutdown,
        }
    }

    /// A message of partition `p` finished (completed, claimed, cancelled): its
    /// receipts can go out and its outcome can be written.
    fn finished(&self, p: usize) {
        self.release_wake.wake(p);
        self.finisher_wake.wake(p);
    }

    /// A new message_id: `<2 hex partition><8 hex node epoch><12 hex counter>`
    /// (unique across nodes and restarts; the partition lets query/cancel/replace go
    /// straight to it). `part`: the message's partition (a multi-part message's,
    /// from its group key); `None` for a single-part message, which may go anywhere:
    /// each run of 256 ids of this node shares a partition, so that a submit batch
    /// is one script call or two, and the runs rotate over all partitions. The
    /// account's format may write it otherwise (`MessageIdFormat`); a short id's
    /// number comes from the store-wide `P:short_seq` (a Redis call per block).
    async fn next_message_id(
        &self,
        part: Option<usize>,
        format: crate::service::MessageIdFormat,
    ) -> Result<(usize, String, String), StoreError> {
        let n = self.counter.fetch_add(1, Ordering::Relaxed);
        let p = part.unwrap_or(((n >> 8) as usize + self.epoch as usize) % partition::COUNT);
        // The hex form names a multi-part message's gid whatever the account's format.
        let hex = format!("{p:02X}{:08X}{:012X}", self.epoch, n);
        let id = match format {
            crate::service::MessageIdFormat::Hex => hex.clone(),
            crate::service::MessageIdFormat::Decimal => {
                partition::decimal_id(p, self.epoch, n).to_string()
            }
            crate::service::MessageIdFormat::Short => {
                let key = format!("{}short_seq", self.prefix());
                partition::short_id::encode(p, self.short_ids.next(&mut self.conn(), &key).await?)
            }
        };
        Ok((p, id, hex))
    }
}

/// Hash-field expiration exists iff the server knows HPEXPIRE.
async fn detect_backend(conn: &mut Conn) -> Result<ExpiryBackend, StoreError> {
    let info = conn
        .on_any(::redis::cmd("COMMAND").arg("INFO").arg("HPEXPIRE").clone())
        .await?;
    let known = value::items(info)
        .iter()
        .any(|v| !matches!(v, ::redis::Value::Nil));
    Ok(if known {
        ExpiryBackend::HashFieldExpiry
    } else {
        ExpiryBackend::KeyExpiry
    })
}

/// The flags the store needs in `notify-keyspace-events`: keyevent channel (E) and
/// expiry events (x; on Valkey `hexpired` is in x too, on Redis 7.4 in h).
fn needed_flags(backend: ExpiryBackend) -> &'static str {
    match backend {
        ExpiryBackend::HashFieldExpiry => "Exh",
        ExpiryBackend::KeyExpiry => "Ex",
    }
}

fn has_flag(flags: &str, f: char) -> bool {
    // 'A' is the alias for every class ("g$lshzxetd"), not for K/E.
    flags.contains(f) || (f != 'E' && f != 'K' && flags.contains('A'))
}

async fn check_keyspace_events<C: ::redis::aio::ConnectionLike + Send>(
    conn: &mut C,
    backend: ExpiryBackend,
    may_configure: bool,
) -> Result<(), StoreError> {
    // A map on RESP3 (the cluster subscriber's node connections), pairs on RESP2.
    let reply: std::collections::HashMap<String, String> = ::redis::cmd("CONFIG")
        .arg("GET")
        .arg("notify-keyspace-events")
        .query_async(conn)
        .await?;
    let current = reply.into_values().next().unwrap_or_default();
    let missing: String = needed_flags(backend)
        .chars()
        .filter(|f| !has_flag(&current, *f))
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    if !may_configure {
        return Err(StoreError::KeyspaceEvents(format!(
            "the server's notify-keyspace-events is {current:?} and lacks {missing:?}; \
             set it (e.g. `CONFIG SET notify-keyspace-events {}`) or enable the \
             configure_keyspace_events setting",
            needed_flags(backend)
        )));
    }
    let wanted = format!("{current}{missing}");
    ::redis::cmd("CONFIG")
        .arg("SET")
        .arg("notify-keyspace-events")
        .arg(&wanted)
        .query_async::<()>(conn)
        .await?;
    tracing::info!(flags = %wanted, "set notify-keyspace-events");
    Ok(())
}

impl MessageService for Store {
    fn submit(
        &self,
        req: crate::service::SubmitRequest,
    ) -> futures::future::BoxFuture<
        '_,
        Result<crate::service::SubmitAccepted, crate::service::ServiceError>,
    > {
        Box::pin(self.inner.submit(req))
    }

    fn query(
        &self,
        system_id: &str,
        message_id: &str,
        source: &crate::service::Address,
    ) -> futures::future::BoxFuture<
        '_,
        Result<crate::service::QueryAnswer, crate::service::ServiceError>,
    > {
        let (system_id, message_id, source) =
            (system_id.to_owned(), message_id.to_owned(), source.clone());
        Box::pin(async move { self.inner.query(&system_id, &message_id, &source).await })
    }

    fn cancel(
        &self,
        system_id: &str,
        message_id: &str,
        source: &crate::service::Address,
        dest: Option<&crate::service::Address>,
        service_type: &str,
    ) -> futures::future::BoxFuture<'_, Result<(), crate::service::ServiceError>> {
        let (system_id, message_id, source, dest, service_type) = (
            system_id.to_owned(),
            message_id.to_owned(),
            source.clone(),
            dest.cloned(),
            service_type.to_owned(),
        );
        Box::pin(async move {
            self.inner
                .cancel(
                    &system_id,
                    &message_id,
                    &source,
                    dest.as_ref(),
                    &service_type,
                )
                .await
        })
    }

    fn replace(
        &self,
        account: &crate::service::AccountPolicy,
        message_id: &str,
        source: &crate::service::Address,
        registered_delivery: u8,
        validity_period: bytes::Bytes,
        short_message: bytes::Bytes,
    ) -> futures::future::BoxFuture<'_, Result<(), crate::service::ServiceError>> {
        let (account, message_id, source) =
            (account.clone(), message_id.to_owned(), source.clone());
        Box::pin(async move {
            self.inner
                .replace(
                    &account,
                    &message_id,
                    &source,
                    registered_delivery,
                    validity_period,
                    short_message,
                )
                .await
        })
    }

    fn take_tokens(
        &self,
        system_id: &str,
        rate: crate::service::Rate,
        n: u32,
    ) -> futures::future::BoxFuture<
        '_,
        Result<crate::service::TokenGrant, crate::service::ServiceError>,
    > {
        let system_id = system_id.to_owned();
        Box::pin(async move { Ok(Store::take_tokens(self, &system_id, rate, n).await?) })
    }

    fn acquire_bind(
        &self,
        system_id: &str,
        max_binds: usize,
    ) -> futures::future::BoxFuture<
        '_,
        Result<Option<crate::service::BindLease>, crate::service::ServiceError>,
    > {
        let system_id = system_id.to_owned();
        Box::pin(async move { Ok(Store::acquire_bind(self, &system_id, max_binds).await?) })
    }
}
