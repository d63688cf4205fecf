//! The Redis a test runs on: one server, or a 3-primary cluster of the same kind, and
//! [`both!`], the one macro that runs a scenario on Redis 7.0 and Valkey 9. The looks
//! into Redis the tests take (key counts, `TIME`, killing subscribers, an outage) work
//! on either.

use std::time::Duration;

use super::cluster::RedisCluster;
use super::servers::{RedisKind, RedisServer};
use super::wait_for;

/// Keys a test counts: on one server, on a [`Backend`], or those of an end-to-end
/// test's messages alone (`e2e::Env::wait_dbsize`).
pub trait Keys {
    /// How many keys there are.
    fn count(&self) -> u64;
    /// Every key (for failure messages).
    fn list(&self) -> String;
}

impl Keys for RedisServer {
    fn count(&self) -> u64 {
        self.dbsize()
    }
    fn list(&self) -> String {
        self.keys()
    }
}

impl Keys for Backend {
    fn count(&self) -> u64 {
        self.dbsize()
    }
    fn list(&self) -> String {
        self.keys()
    }
}

/// Waits until `redis` holds exactly `n` keys (e.g. back to what it held before a
/// scenario: smppd left nothing behind).
pub async fn wait_dbsize(redis: &impl Keys, n: u64, timeout: Duration) {
    wait_for(&format!("{n} keys in redis"), timeout, async || {
        let count = redis.count();
        if count == n {
            Ok(())
        } else {
            Err(format!("it holds {count}: {}", redis.list()))
        }
    })
    .await
}

pub enum Backend {
    Server(RedisServer),
    Cluster(RedisCluster),
}

tokio::task_local! {
    /// Set by `both!`'s cluster variants: [`Backend::start`] then starts a cluster.
    pub static ON_CLUSTER: bool;
}

impl Backend {
    /// One server of `kind`, or a cluster of 3 primaries when the test runs under
    /// [`ON_CLUSTER`].
    pub fn start(kind: RedisKind) -> Backend {
        if ON_CLUSTER.try_with(|c| *c).unwrap_or(false) {
            Backend::Cluster(RedisCluster::start(kind, 3, 0))
        } else {
            Backend::Server(RedisServer::start(kind))
        }
    }

    pub fn is_cluster(&self) -> bool {
        matches!(self, Backend::Cluster(_))
    }

    pub fn kind(&self) -> RedisKind {
        match self {
            Backend::Server(s) => s.kind,
            Backend::Cluster(c) => c.kind,
        }
    }

    /// The cluster (panics on one server): for tests that kill or reshard its nodes.
    pub fn cluster(&self) -> &RedisCluster {
        match self {
            Backend::Cluster(c) => c,
            Backend::Server(_) => panic!("this test needs a cluster backend"),
        }
    }

    pub fn cluster_mut(&mut self) -> &mut RedisCluster {
        match self {
            Backend::Cluster(c) => c,
            Backend::Server(_) => panic!("this test needs a cluster backend"),
        }
    }

    /// A URL smppd connects to (a seed node of a cluster).
    pub fn url(&self) -> String {
        match self {
            Backend::Server(s) => s.url(),
            Backend::Cluster(c) => c.url(),
        }
    }

    /// Keys held, summed over a cluster's primaries.
    pub fn dbsize(&self) -> u64 {
        match self {
            Backend::Server(s) => s.dbsize(),
            Backend::Cluster(c) => c.primaries().iter().map(|i| c.nodes[*i].dbsize()).sum(),
        }
    }

    /// Every key (for failure messages).
    pub fn keys(&self) -> String {
        match self {
            Backend::Server(s) => s.keys(),
            Backend::Cluster(c) => c.primaries().iter().map(|i| c.nodes[*i].keys()).collect(),
        }
    }

    /// One command. On a cluster, one naming a key (its first argument, as `GET`,
    /// `ZRANGE`, `EXISTS` do) goes to the key's primary; one without (`TIME`, `CONFIG`,
    /// `INFO`, `DBSIZE`) to the first primary.
    pub fn command(&self, args: &[&str]) -> Option<String> {
        match self {
            Backend::Server(s) => s.command(args),
            Backend::Cluster(c) => {
                let keyless = ["TIME", "CONFIG", "INFO", "DBSIZE", "PING", "CLIENT"]
                    .iter()
                    .any(|k| args[0].eq_ignore_ascii_case(k));
                match args.get(1) {
                    Some(key) if !keyless => c.command_for_key(key, args),
                    _ => c.command_on(*c.primaries().first()?, args),
                }
            }
        }
    }

    /// Runs `script` (0 keys) once on the server, or once on each primary of a
    /// cluster with `ARGV[1]` a key prefix that primary owns (`{tag}:`), so that the
    /// keys it writes are local to the node running it.
    pub fn eval_everywhere(&self, script: &str, args: &[&str]) {
        let run = |node: &RedisServer, prefix: &str| {
            let mut a = vec!["EVAL", script, "0", prefix];
            a.extend_from_slice(args);
            let reply = node.command(&a).expect("EVAL: server unreachable");
            assert!(!reply.starts_with('-'), "EVAL failed: {reply}");
        };
        match self {
            Backend::Server(s) => run(s, ""),
            Backend::Cluster(c) => {
                for i in c.primaries() {
                    let p = (0..smppd::store::redis::partition::COUNT)
                        .find(|p| {
                            c.owner_of_slot(smppd::store::redis::partition::home_slot(*p)) == i
                        })
                        .expect("a primary owns a partition");
                    run(
                        &c.nodes[i],
                        &format!("{{{}}}:", smppd::store::redis::partition::TAGS[p]),
                    );
                }
            }
        }
    }

    /// Kills every subscribed client, on every node of a cluster; returns how many.
    pub fn kill_pubsub_clients(&self) -> u64 {
        match self {
            Backend::Server(s) => s.kill_pubsub_clients(),
            Backend::Cluster(c) => c
                .nodes
                .iter()
                .filter(|n| n.is_running())
                .map(RedisServer::kill_pubsub_clients)
                .sum(),
        }
    }

    /// An outage: the server, or every node of the cluster, stopped gracefully.
    pub fn stop(&mut self) {
        match self {
            Backend::Server(s) => s.stop(),
            Backend::Cluster(c) => c.nodes.iter_mut().for_each(RedisServer::stop),
        }
    }

    /// Back after [`stop`](Self::stop) (a cluster's nodes keep their `nodes.conf`).
    pub fn restart(&mut self) {
        match self {
            Backend::Server(s) => s.restart(),
            Backend::Cluster(c) => {
                c.nodes.iter_mut().for_each(RedisServer::restart);
                c.wait_ready();
            }
        }
    }
}

/// Runs a scenario on Redis 7.0 and on Valkey 9. The body is a closure of the
/// [`RedisKind`] returning a future; the test names are `name::<variant>`:
///
/// * `both!(name, |kind| async { … })` — `redis7`, `valkey9`, `redis7_cluster` and
///   `valkey9_cluster`: each standalone and as a 3-primary cluster, for scenarios
///   that start their Redis with [`Backend::start`] (which reads [`ON_CLUSTER`]);
/// * `both!(standalone name, |kind| async { … })` — `redis7` and `valkey9` alone,
///   for scenarios of one server (the store driven directly, `support::harness`).
///
/// Each variant runs on a multi-threaded runtime of 2 workers and prints how long it
/// took (shown with `--nocapture` or on failure).
macro_rules! both {
    (standalone $name:ident, $body:expr) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;
            $crate::support::backend::both!(@variant redis7, Redis7, false, $body);
            $crate::support::backend::both!(@variant valkey9, Valkey9, false, $body);
        }
    };
    ($name:ident, $body:expr) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;
            $crate::support::backend::both!(@variant redis7, Redis7, false, $body);
            $crate::support::backend::both!(@variant valkey9, Valkey9, false, $body);
            $crate::support::backend::both!(@variant redis7_cluster, Redis7, true, $body);
            $crate::support::backend::both!(@variant valkey9_cluster, Valkey9, true, $body);
        }
    };
    (@variant $test:ident, $kind:ident, $cluster:expr, $body:expr) => {
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $test() {
            let t0 = std::time::Instant::now();
            $crate::support::backend::ON_CLUSTER
                .scope(
                    $cluster,
                    ($body)($crate::support::servers::RedisKind::$kind),
                )
                .await;
            eprintln!("{}::{}: {:?}", module_path!(), stringify!($test), t0.elapsed());
        }
    };
}
pub(crate) use both;
