//! End-to-end helpers: the whole smppd (sessions + store) against real Redis/Valkey
//! and Mongo-protocol servers, spoken to over real SMPP sockets.
//!
//! * [`Env`] — one test's servers, its own Redis `key_prefix` and MongoDB database,
//!   the config file it writes, and direct looks into Redis (DBSIZE, TIME) and the
//!   outcome collection.
//! * [`InProc`] — smppd started in this process with `App::start` on 127.0.0.1:0.
//! * [`Proc`] — the real `smppd` binary spawned with `SMPPD_REDIS_URL` /
//!   `SMPPD_MONGODB_URI`, for crash (SIGKILL) and multi-node scenarios.
//!
//! Every wait is on a condition with a timeout; a timeout fails the test with what
//! was seen.
//!
//! Used by the `e2e_*` test modules (`use crate::support::e2e::*;`), whose scenarios
//! run on Redis 7.0 and Valkey 9, each standalone and as a 3-primary cluster, through
//! [`both!`](crate::support::backend::both).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::TryStreamExt;
use mongodb::bson::{doc, Document};
use smppd::app::App;
use smppd::config::{Config, ConfigSource, EnvOverrides};
use smppd::server::ServerHandle;
use smppd::store::Store;
use tokio::net::TcpStream;

use crate::support::backend::{wait_dbsize, Backend, Keys};
use crate::support::config::TestConfig;
use crate::support::servers::{free_port, MongoServer, RedisKind, TempDir};
use crate::support::wait_for;

/// Upper bound of any single wait in these tests (they normally take far less).
pub const T: Duration = Duration::from_secs(30);
/// How long one SMPP request may wait for its response. Generous: during a Redis
/// outage the store answers only after its own timeouts and retries.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(20);
/// Relative validity of 2 seconds.
pub const TWO_SECONDS: &str = "000000000002000R";

// ---------------------------------------------------------------------------------
// Servers, config, and looks into Redis / MongoDB

/// The servers of one test and the names that keep it apart from any other test.
pub struct Env {
    pub kind: RedisKind,
    pub redis: Backend,
    pub mongo: MongoServer,
    pub prefix: String,
    pub database: String,
    /// The config every node of this env is started with (its node_id, listen
    /// address, Redis URL and MongoDB URI set per node): [`TestConfig::new`] with
    /// response_timeout 5 s, outbound_window 10, shutdown_grace 2 s, message texts
    /// logged; `[redis]` with this env's key prefix, keyspace events configured by
    /// smppd and `cluster` the backend's mode; `[mongodb]` with this env's
    /// database; receipts kept 1 h; accounts `alice` and `bob` (password
    /// [`PW`], every bind type, max_binds 10, window 10, 1 h default validity).
    /// A test changes it before it starts nodes (or before a reload).
    pub config: TestConfig,
    dir: TempDir,
    mongo_client: mongodb::Client,
}

impl Env {
    /// Starts Redis/Valkey of `kind` and the Mongo-protocol server; `name` makes the
    /// key prefix and database unique.
    pub async fn start(kind: RedisKind, name: &str) -> Env {
        Env::start_on(Backend::start(kind), name).await
    }

    /// The same on a backend of the test's choosing (e.g. a cluster with replicas:
    /// `Backend::Cluster(RedisCluster::start(kind, 3, 1))`).
    pub async fn start_on(redis: Backend, name: &str) -> Env {
        let kind = redis.kind();
        let mongo = MongoServer::start();
        let tag = format!("{name}_{}", std::process::id());
        let mongo_client = mongodb::Client::with_uri_str(mongo.uri()).await.unwrap();
        let prefix = format!("e2e:{tag}:");
        let database = format!("e2e_{tag}");
        let mut config = TestConfig::new();
        config
            .set("server.system_id", "smppd-e2e")
            .set("server.response_timeout", "5s")
            .set("server.outbound_window", 10)
            .set("server.shutdown_grace", "2s")
            .set("server.log_message_text", true)
            .set("redis.key_prefix", prefix.as_str())
            .set("redis.configure_keyspace_events", true)
            .set("redis.cluster", redis.is_cluster())
            .set("mongodb.database", database.as_str())
            .set("receipts.lifetime", "1h");
        for account in ["alice", "bob"] {
            config.esme(
                account,
                "max_binds = 10\nwindow = 10\ndefault_validity = \"1h\"\nmax_validity = \"1day\"",
            );
        }
        Env {
            kind,
            mongo,
            prefix,
            database,
            config,
            redis,
            dir: TempDir::new("e2e"),
            mongo_client,
        }
    }

    /// The config.toml of node `node` listening on `listen`: [`Env::config`] with
    /// the given Redis URL and MongoDB URI (a spawned binary gets the real ones from
    /// the environment instead).
    pub fn config_text(
        &self,
        node: &str,
        listen: &str,
        redis_url: &str,
        mongo_uri: &str,
    ) -> String {
        let mut c = self.config.clone();
        c.set("server.node_id", node)
            .set("server.listen", listen)
            .set("redis.url", redis_url)
            .set("mongodb.uri", mongo_uri);
        c.text()
    }

    fn write_config(&self, file: &str, text: &str) -> PathBuf {
        let path = self.dir.path().join(file);
        std::fs::write(&path, text).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        }
        path
    }

    /// Writes `node`'s config file of [`Env::start_app`] again from the env as it is
    /// now (for a SIGHUP-style `reload`).
    pub fn rewrite_app_config(&self, node: &str) {
        let text = self.config_text(node, "127.0.0.1:0", &self.redis.url(), &self.mongo.uri());
        self.write_config(&format!("{node}.toml"), &text);
    }

    /// smppd in this process (`App::start` + `App::run`) on 127.0.0.1:0.
    pub async fn start_app(&self, node: &str) -> InProc {
        let text = self.config_text(node, "127.0.0.1:0", &self.redis.url(), &self.mongo.uri());
        let path = self.write_config(&format!("{node}.toml"), &text);
        // No environment overrides in-process: parallel tests share the environment.
        let config = Config::from_toml(&text, &EnvOverrides::default(), Some(self.dir.path()))
            .unwrap_or_else(|p| panic!("e2e config invalid: {p}"));
        let app = App::start(ConfigSource::File(path), Arc::new(config))
            .await
            .unwrap_or_else(|e| panic!("App::start: {e:#}"));
        let addr = app.local_addr().unwrap();
        let handle = app.handle();
        let store = app.store().clone();
        let join = tokio::spawn(app.run());
        InProc {
            addr,
            handle,
            store,
            join,
        }
    }

    /// The real binary, configured through a file whose Redis/MongoDB addresses are
    /// wrong on purpose: the right ones come from `SMPPD_REDIS_URL` /
    /// `SMPPD_MONGODB_URI`, as an operator would set them.
    pub async fn spawn_smppd(&self, node: &str) -> Proc {
        self.spawn_smppd_with_mongo(node, &self.mongo.uri()).await
    }

    /// [`Env::spawn_smppd`] with `SMPPD_MONGODB_URI` = `mongo_uri` (e.g. a dead one).
    pub async fn spawn_smppd_with_mongo(&self, node: &str, mongo_uri: &str) -> Proc {
        self.spawn_smppd_full(node, mongo_uri, &[]).await
    }

    /// [`Env::spawn_smppd`] with more environment variables (e.g. libfaketime's).
    pub async fn spawn_smppd_with_env(&self, node: &str, env: &[(&str, &str)]) -> Proc {
        self.spawn_smppd_full(node, &self.mongo.uri(), env).await
    }

    /// `smppd serve` with `node`'s config file (written here, listening on `port`) and
    /// the servers' addresses from the environment, as a deployment passes them.
    fn smppd_command(&self, node: &str, port: u16, mongo_uri: &str) -> Command {
        let text = self.config_text(
            node,
            &format!("127.0.0.1:{port}"),
            "redis://127.0.0.1:1/",
            "mongodb://127.0.0.1:1/",
        );
        let path = self.write_config(&format!("{node}.toml"), &text);
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_smppd"));
        cmd.arg("serve")
            .arg("--config")
            .arg(&path)
            .env("SMPPD_REDIS_URL", self.redis.url())
            .env("SMPPD_MONGODB_URI", mongo_uri)
            .env_remove("SMPPD_CONFIG")
            .stdin(Stdio::null());
        cmd
    }

    async fn spawn_smppd_full(&self, node: &str, mongo_uri: &str, env: &[(&str, &str)]) -> Proc {
        let log = self.dir.path().join(format!("{node}.log"));
        let mut last_log = String::new();
        // A free port can be taken between the probe and smppd's bind: try a few.
        for _ in 0..5 {
            let port = free_port();
            let out = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&log)
                .unwrap();
            let child = self
                .smppd_command(node, port, mongo_uri)
                .env("RUST_LOG", "info,smppd=debug")
                .envs(env.iter().copied())
                .stdout(out.try_clone().unwrap())
                .stderr(out)
                .spawn()
                .unwrap();
            let mut proc = Proc {
                node: node.to_owned(),
                addr: SocketAddr::from(([127, 0, 0, 1], port)),
                child: Some(child),
                log: log.clone(),
            };
            let deadline = Instant::now() + T;
            loop {
                if let Ok(Some(status)) = proc.child.as_mut().unwrap().try_wait() {
                    proc.child = None;
                    last_log = proc.log();
                    assert!(
                        last_log.contains("in use"),
                        "smppd {node} exited with {status} at start:\n{last_log}"
                    );
                    break; // port taken: next port
                }
                if TcpStream::connect(proc.addr).await.is_ok() {
                    return proc;
                }
                assert!(
                    Instant::now() < deadline,
                    "smppd {node} did not listen within {T:?}:\n{}",
                    proc.log()
                );
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
        panic!("could not start smppd {node} on a free port:\n{last_log}");
    }

    /// The real binary started as [`Env::spawn_smppd`] starts it, expected to refuse
    /// to start: waits for it to exit (panics if it listens or runs past [`T`]) and
    /// returns its exit status and everything it wrote (stdout and stderr).
    pub async fn smppd_start_failure(&self, node: &str) -> (std::process::ExitStatus, String) {
        let child = self
            .smppd_command(node, free_port(), &self.mongo.uri())
            .env("RUST_LOG", "info")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let pid = child.id();
        let wait = tokio::task::spawn_blocking(move || child.wait_with_output());
        let out = match tokio::time::timeout(T, wait).await {
            Ok(out) => out.unwrap().unwrap(),
            Err(_) => {
                let _ = Command::new("kill")
                    .args(["-KILL", &pid.to_string()])
                    .status();
                panic!(
                    "smppd {node} still running after {T:?}: it was expected to refuse to start"
                );
            }
        };
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status, text)
    }

    pub fn outcomes(&self) -> mongodb::Collection<Document> {
        self.mongo_client
            .database(&self.database)
            .collection("outcomes")
    }

    /// Every outcome document, sorted by `_id`.
    pub async fn docs(&self) -> Vec<Document> {
        let mut docs: Vec<Document> = self
            .outcomes()
            .find(doc! {})
            .await
            .unwrap()
            .try_collect()
            .await
            .unwrap();
        docs.sort_by(|a, b| a.get_str("_id").unwrap().cmp(b.get_str("_id").unwrap()));
        docs
    }

    /// Number of outcome documents; `None` while MongoDB does not answer.
    pub async fn doc_count(&self) -> Option<u64> {
        self.outcomes().count_documents(doc! {}).await.ok()
    }

    /// Waits until at least `n` outcome documents exist, then returns all of them.
    pub async fn wait_docs(&self, n: u64, timeout: Duration) -> Vec<Document> {
        wait_for(&format!("{n} outcome documents"), timeout, async || {
            let c = self.doc_count().await.unwrap_or(0);
            if c >= n {
                Ok(())
            } else {
                Err(format!("have {c}; redis keys: {}", self.redis.keys()))
            }
        })
        .await;
        self.docs().await
    }

    /// The outcome document holding the segment with this message_id.
    pub async fn doc_of(&self, message_id: &str) -> Document {
        self.outcomes()
            .find_one(doc! { "segments.message_id": message_id })
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("no outcome document holds segment {message_id}"))
    }

    /// Keys of the accounts' limits (`P{lim:<acct>}:binds` / `:rate`): they live
    /// while an account is bound or just submitted, whatever its messages do.
    pub fn limit_keys(&self) -> u64 {
        self.config
            .esme_ids()
            .iter()
            .map(|a| {
                let key = |what| format!("{}{{lim:{a}}}:{what}", self.prefix);
                let (binds, rate) = (key("binds"), key("rate"));
                let reply = self.redis_cmd(&["EXISTS", &binds, &rate]);
                reply
                    .trim()
                    .trim_start_matches(':')
                    .parse::<u64>()
                    .unwrap_or(0)
            })
            .sum()
    }

    /// Waits until Redis holds exactly `n` keys besides [`Env::limit_keys`] (so `n`
    /// taken before the ESMEs bound still counts the messages' keys alone).
    pub async fn wait_dbsize(&self, n: u64, timeout: Duration) {
        wait_dbsize(&MessageKeys(self), n, timeout).await
    }

    /// Redis `TIME` in ms (the clock smppd's deadlines are in).
    pub fn redis_time_ms(&self) -> i64 {
        let reply = self
            .redis
            .command(&["TIME"])
            .expect("TIME: server unreachable");
        let nums: Vec<i64> = reply
            .split("\r\n")
            .filter(|l| !l.is_empty() && !l.starts_with('*') && !l.starts_with('$'))
            .map(|l| l.parse().unwrap())
            .collect();
        nums[0] * 1000 + nums[1] / 1000
    }

    /// Waits until Redis time is past `ms`.
    pub async fn wait_redis_time_past(&self, ms: i64) {
        let start = Instant::now();
        loop {
            let now = self.redis_time_ms();
            if now > ms {
                return;
            }
            assert!(start.elapsed() < T, "redis time stuck before {ms}");
            let left = (ms - now + 1).clamp(1, 50) as u64;
            tokio::time::sleep(Duration::from_millis(left)).await;
        }
    }

    /// Sends one admin command and returns the raw reply (panics if unreachable).
    pub fn redis_cmd(&self, args: &[&str]) -> String {
        self.redis
            .command(args)
            .unwrap_or_else(|| panic!("{args:?}: redis unreachable"))
    }
}

/// The keys of an [`Env`]'s messages: Redis' keys but [`Env::limit_keys`].
struct MessageKeys<'a>(&'a Env);

impl Keys for MessageKeys<'_> {
    fn count(&self) -> u64 {
        // Read around DBSIZE: a limit key that came or went meanwhile is not
        // miscounted as a message's.
        loop {
            let before = self.0.limit_keys();
            let size = self.0.redis.dbsize().saturating_sub(before);
            if self.0.limit_keys() == before {
                return size;
            }
        }
    }

    fn list(&self) -> String {
        self.0.redis.keys()
    }
}

/// smppd running inside the test process.
pub struct InProc {
    pub addr: SocketAddr,
    pub handle: ServerHandle,
    pub store: Store,
    join: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl InProc {
    /// Graceful shutdown: sessions unbound, store tasks stopped.
    pub async fn stop(self) {
        self.handle.shutdown();
        tokio::time::timeout(T, self.join)
            .await
            .expect("smppd stops within the timeout")
            .unwrap()
            .unwrap();
    }
}

/// A spawned `smppd serve` process; SIGKILLed when dropped.
pub struct Proc {
    pub node: String,
    pub addr: SocketAddr,
    child: Option<Child>,
    log: PathBuf,
}

impl Proc {
    /// SIGKILL: no shutdown code runs, as in a crash.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// What it logged so far (for failure messages).
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn is_running(&mut self) -> bool {
        matches!(self.child.as_mut().map(|c| c.try_wait()), Some(Ok(None)))
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let log = self.log();
            let tail: Vec<&str> = log.lines().rev().take(40).collect();
            eprintln!("--- last lines of smppd {} ---", self.node);
            for l in tail.into_iter().rev() {
                eprintln!("{l}");
            }
        }
        self.kill();
    }
}
