//! The store's Redis connection: one server, or a Redis/Valkey Cluster.
//!
//! Both are multiplexed (one socket per server, requests pipelined by the crate) and
//! cheap to clone. On a cluster, a command or script call goes to the primary that
//! owns its first key's slot (the crate follows MOVED/ASK and reloads its slot map);
//! everything the store sends names one partition's keys, or global keys alone, so
//! no call crosses slots. The few commands that name no key but must reach a
//! partition's owner (SCAN) go through [`Conn::on_partition`].

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};

use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::cluster_async::ClusterConnection;
use redis::cluster_routing::{Route, RoutingInfo, SingleNodeRoutingInfo, SlotAddr};
use redis::{Cmd, IntoConnectionInfo, Pipeline, RedisFuture, RedisResult, Value};

use crate::store::error::StoreError;
use crate::store::redis::partition;
use crate::store::settings::StoreSettings;

/// A client for one server (`info`: a URL or connection facts), with the configured
/// CA for `rediss://`.
pub fn client(
    settings: &StoreSettings,
    info: impl IntoConnectionInfo,
) -> RedisResult<redis::Client> {
    match certificates(settings)? {
        Some(certs) => redis::Client::build_with_tls(info, certs),
        None => redis::Client::open(info),
    }
}

/// The configured CA, if any. Also installs rustls' process-wide crypto provider, which
/// every `rediss://` connection needs (ring, as smppd's own TLS).
fn certificates(settings: &StoreSettings) -> RedisResult<Option<redis::TlsCertificates>> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let Some(path) = &settings.redis_tls_ca else {
        return Ok(None);
    };
    let pem = std::fs::read(path).map_err(|e| {
        redis::RedisError::from(std::io::Error::new(
            e.kind(),
            format!("redis tls_ca {}: {e}", path.display()),
        ))
    })?;
    Ok(Some(redis::TlsCertificates {
        client_tls: None,
        root_cert: Some(pem),
    }))
}

/// Replicas a write must reach before it counts (`[redis] ack_replicas`).
#[derive(Debug, Clone, Copy)]
pub struct Ack {
    pub replicas: u32,
    pub timeout: std::time::Duration,
}

impl Ack {
    pub fn of(settings: &StoreSettings) -> Ack {
        Ack {
            replicas: settings.ack_replicas,
            timeout: settings.ack_timeout,
        }
    }

    /// After a write to partition `p` on `conn`: `WAIT` on the same connection to the
    /// partition's primary (WAIT counts replicas that have this client's writes so
    /// far, so it covers the one just made). Nothing to do with 0 replicas.
    pub async fn wait(&self, conn: &mut Conn, p: usize) -> Result<(), StoreError> {
        if self.replicas == 0 {
            return Ok(());
        }
        let timeout_ms = self.timeout.as_millis() as u64;
        let got: i64 = redis::from_redis_value(
            conn.on_partition(
                redis::cmd("WAIT")
                    .arg(self.replicas)
                    .arg(timeout_ms)
                    .clone(),
                p,
            )
            .await?,
        )
        .map_err(redis::RedisError::from)?;
        if got < i64::from(self.replicas) {
            return Err(StoreError::NotReplicated {
                wanted: self.replicas,
                got,
                timeout_ms,
            });
        }
        Ok(())
    }
}

impl Ack {
    /// [`Ack::wait`] after a claim or a release: bounds what a failover can take back
    /// (the claim or release is then made again, at least once), but a shortfall stops
    /// nothing — the message is acknowledged already, and holding its outcome or
    /// receipts back would not make it safer.
    pub async fn settle(&self, conn: &mut Conn, p: usize) {
        if let Err(e) = self.wait(conn, p).await {
            tracing::warn!(partition = p, error = %e, "claim/release not confirmed by the replicas");
        }
    }
}

/// Refuses a server of the other mode with a message that says what to set: a cluster
/// node answers single-server commands only for its own slots, and a single server
/// cannot take cluster routing.
pub async fn check_mode(settings: &StoreSettings) -> Result<(), StoreError> {
    let client = client(settings, settings.redis_url.as_str())?;
    let mut conn = tokio::time::timeout(
        settings.redis_timeout,
        client.get_multiplexed_async_connection(),
    )
    .await
    .map_err(|_| {
        StoreError::Redis(redis::RedisError::from(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            "connecting to redis timed out",
        )))
    })??;
    let info: String = redis::cmd("INFO")
        .arg("cluster")
        .query_async(&mut conn)
        .await?;
    let enabled = info.lines().any(|l| l.trim() == "cluster_enabled:1");
    // The address alone: the URL may hold a password.
    let url = client.get_connection_info().addr().to_string();
    match (enabled, settings.cluster) {
        (true, false) => Err(StoreError::Mode(format!(
            "{url} is a Redis/Valkey Cluster node (cluster_enabled:1): set [redis] cluster = true"
        ))),
        (false, true) => Err(StoreError::Mode(format!(
            "{url} is not a cluster node (cluster_enabled:0): set [redis] cluster = false, \
             or point url at a node of the cluster"
        ))),
        (true, true) => {
            warn_full_coverage(&mut conn, &url).await;
            Ok(())
        }
        (false, false) => Ok(()),
    }
}

/// Warns when the cluster stops every write while one primary is down: with
/// `cluster-require-full-coverage yes` (the servers' default) every node answers
/// CLUSTERDOWN from the moment a failed primary is marked FAIL until its replica is
/// promoted, so the partitions of healthy primaries are refused too (measured: about
/// a second with `cluster-node-timeout` 1500; the cluster client's retries bridge
/// some of it). Read from the seed node only; CONFIG may be off (managed services):
/// then nothing is said.
async fn warn_full_coverage(conn: &mut redis::aio::MultiplexedConnection, url: &str) {
    let got: RedisResult<Vec<String>> = redis::cmd("CONFIG")
        .arg("GET")
        .arg("cluster-require-full-coverage")
        .query_async(conn)
        .await;
    if let Ok(pair) = got {
        if pair.get(1).is_some_and(|v| v.eq_ignore_ascii_case("yes")) {
            tracing::warn!(
                node = url,
                "cluster-require-full-coverage is yes: while a failed primary has no \
                 replica promoted yet, every partition's submits are refused \
                 (CLUSTERDOWN), not only its own; set cluster-require-full-coverage no \
                 on every node"
            );
        }
    }
}

/// The store's connection, replaceable: on a cluster the supervisor of the expiry
/// subscriber (`expiry::cluster`) puts a new one in when a partition changes owner —
/// the crate's client learns a new primary only from a MOVED, which a dead primary
/// never sends, and was seen to stall every call after a primary was killed.
///
/// It may hold several connections, handed out in turn: writes followed by `WAIT`
/// (`ack_replicas`) block their connection until the replicas answer, so a few
/// connections let several such writes wait at once.
#[derive(Clone)]
pub struct Shared {
    conns: Arc<RwLock<Vec<Conn>>>,
    next: Arc<AtomicUsize>,
}

impl Shared {
    /// `conns` must not be empty.
    pub fn new(conns: Vec<Conn>) -> Shared {
        assert!(!conns.is_empty(), "a connection to share");
        Shared {
            conns: Arc::new(RwLock::new(conns)),
            next: Arc::default(),
        }
    }

    /// One of the current connections (a cheap clone; never held across an await).
    pub fn get(&self) -> Conn {
        let conns = self.conns.read().unwrap_or_else(|e| e.into_inner());
        let i = self.next.fetch_add(1, Ordering::Relaxed) % conns.len();
        conns[i].clone()
    }

    /// How many connections it holds (never none).
    pub fn len(&self) -> usize {
        self.conns.read().unwrap_or_else(|e| e.into_inner()).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn replace(&self, conns: Vec<Conn>) {
        if !conns.is_empty() {
            *self.conns.write().unwrap_or_else(|e| e.into_inner()) = conns;
        }
    }
}

/// New cluster connections in place of the current ones of `conn` and `acked` (a
/// partition changed owner), `nodes` tried first as seeds.
pub async fn reconnect(
    settings: &StoreSettings,
    conn: &Shared,
    acked: Option<&Shared>,
    nodes: &[redis::ConnectionInfo],
) -> RedisResult<()> {
    conn.replace(vec![Conn::connect_via(settings, nodes).await?]);
    if let Some(acked) = acked {
        let mut pool = Vec::with_capacity(acked.len());
        for _ in 0..acked.len() {
            pool.push(Conn::connect_via(settings, nodes).await?);
        }
        acked.replace(pool);
    }
    Ok(())
}

/// Connections of the pool that writes waiting for replicas go over.
pub const ACKED_POOL: usize = 4;

#[derive(Clone)]
pub enum Conn {
    Single(ConnectionManager),
    Cluster(ClusterConnection),
}

impl Conn {
    /// Connects as `settings` say: `redis_url` alone, or with `cluster` the URL and
    /// `redis_seeds` as the cluster's seed nodes (credentials and TLS from each URL).
    pub async fn connect(settings: &StoreSettings) -> RedisResult<Conn> {
        Conn::connect_via(settings, &[]).await
    }

    /// The same, with `nodes` (reachable cluster nodes, as connection facts) tried
    /// before the configured seeds.
    pub async fn connect_via(
        settings: &StoreSettings,
        nodes: &[redis::ConnectionInfo],
    ) -> RedisResult<Conn> {
        if settings.cluster {
            let mut seeds = nodes.to_vec();
            seeds.push(settings.redis_url.as_str().into_connection_info()?);
            for s in &settings.redis_seeds {
                seeds.push(s.as_str().into_connection_info()?);
            }
            let mut builder = redis::cluster::ClusterClientBuilder::new(seeds);
            if let Some(certs) = certificates(settings)? {
                builder = builder.certs(certs);
            }
            let client = builder
                .connection_timeout(settings.redis_timeout)
                .response_timeout(settings.redis_timeout)
                // A partition without a primary (failover in progress) answers an
                // error within the timeout, not after minutes of retries: its submits
                // get ESME_RSYSERR, the other partitions go on.
                .retries(2)
                .build()?;
            Ok(Conn::Cluster(client.get_async_connection().await?))
        } else {
            let client = client(settings, settings.redis_url.as_str())?;
            let config = ConnectionManagerConfig::new()
                .set_response_timeout(Some(settings.redis_timeout))
                .set_connection_timeout(Some(settings.redis_timeout))
                .set_number_of_retries(2);
            Ok(Conn::Single(
                ConnectionManager::new_with_config(client, config).await?,
            ))
        }
    }

    /// `cmd` on the primary that owns partition `p` (on one server: that server).
    pub async fn on_partition(&mut self, cmd: Cmd, p: usize) -> RedisResult<Value> {
        match self {
            Conn::Single(c) => cmd.query_async(c).await,
            Conn::Cluster(c) => {
                let route = Route::new(partition::home_slot(p), SlotAddr::Master);
                c.route_command(
                    cmd,
                    RoutingInfo::SingleNode(SingleNodeRoutingInfo::SpecificNode(route)),
                )
                .await
            }
        }
    }

    /// `cmd` on any one server (read-only facts every node shares: `COMMAND INFO`).
    pub async fn on_any(&mut self, cmd: Cmd) -> RedisResult<Value> {
        match self {
            Conn::Single(c) => cmd.query_async(c).await,
            Conn::Cluster(c) => {
                c.route_command(cmd, RoutingInfo::SingleNode(SingleNodeRoutingInfo::Random))
                    .await
            }
        }
    }
}

impl ConnectionLike for Conn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Conn::Single(c) => c.req_packed_command(cmd),
            Conn::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Conn::Single(c) => c.req_packed_commands(pipeline, offset, count),
            Conn::Cluster(c) => c.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Conn::Single(c) => c.get_db(),
            Conn::Cluster(c) => c.get_db(),
        }
    }
}
