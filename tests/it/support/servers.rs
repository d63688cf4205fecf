//! Real Redis / Valkey / MongoDB-protocol servers for integration tests.
//!
//! Every server gets a free port on 127.0.0.1 and its own temporary directory, is
//! waited for by polling with a deadline (never a fixed sleep), and is killed when its
//! handle is dropped. The binaries come from environment variables (see
//! `scripts/env.sh`); a missing variable or binary panics with the variable's name so
//! the test fails loudly instead of being skipped.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long a server may take to start answering.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// Which key-value server to start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RedisKind {
    /// Debian's Redis 7.0 (`$SMPPD_REDIS_SERVER`): no hash-field expiration.
    Redis7,
    /// Valkey 9 (`$SMPPD_VALKEY_SERVER`): hash-field expiration.
    Valkey9,
}

impl RedisKind {
    pub const ALL: [RedisKind; 2] = [RedisKind::Redis7, RedisKind::Valkey9];

    pub fn env_var(self) -> &'static str {
        match self {
            RedisKind::Redis7 => "SMPPD_REDIS_SERVER",
            RedisKind::Valkey9 => "SMPPD_VALKEY_SERVER",
        }
    }
}

/// The path in `var`, which must be set and name an existing file.
pub fn binary_from_env(var: &str) -> PathBuf {
    let value = std::env::var(var).unwrap_or_else(|_| {
        panic!("environment variable {var} is not set; source scripts/env.sh (it names the server binary the tests need)")
    });
    let path = PathBuf::from(&value);
    assert!(
        path.is_file(),
        "{var}={value} does not name an existing file (the server binary the tests need)"
    );
    path
}

/// A port nobody listens on right now.
pub fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

/// A fresh temporary directory, removed on drop.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("smppd-test-{tag}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Polls `ready` until it returns true or `timeout` passes.
pub fn wait_until(what: &str, timeout: Duration, mut ready: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    let mut pause = Duration::from_millis(5);
    loop {
        if ready() {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(100));
    }
}

fn stop_child(child: &mut Child) {
    let _ = child.kill();
    let _ = child.wait();
}

/// Sends SIGTERM (a graceful stop: Redis writes its AOF, the Mongo server closes its
/// store) and waits up to 20 s before falling back to SIGKILL.
fn terminate_child(child: &mut Child) {
    let _ = Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status();
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    stop_child(child);
}

// ---------------------------------------------------------------------------------
// Redis / Valkey

/// A `redis-server` or `valkey-server` child process with AOF on.
pub struct RedisServer {
    pub kind: RedisKind,
    pub port: u16,
    binary: PathBuf,
    dir: TempDir,
    child: Option<Child>,
    /// Arguments beyond the defaults (`start_with`).
    extra: Vec<String>,
}

impl RedisServer {
    /// Starts the server of `kind` on a free port and waits until it answers PING.
    pub fn start(kind: RedisKind) -> RedisServer {
        Self::start_with(kind, &[])
    }

    /// The same with more server arguments (e.g. `--cluster-enabled yes`).
    pub fn start_with(kind: RedisKind, extra: &[&str]) -> RedisServer {
        // A free port can be taken between the probe and the bind: try a few.
        for _ in 0..5 {
            if let Some(server) = Self::try_start_on(kind, free_port(), extra) {
                return server;
            }
        }
        panic!(
            "could not start {} on a free port",
            binary_from_env(kind.env_var()).display()
        );
    }

    /// Starts the server on `port` and waits until it answers PING; `None` if it
    /// exited instead (the port, or a cluster node's bus port, was taken).
    pub fn try_start_on(kind: RedisKind, port: u16, extra: &[&str]) -> Option<RedisServer> {
        let mut server = RedisServer {
            kind,
            port,
            binary: binary_from_env(kind.env_var()),
            dir: TempDir::new("redis"),
            child: None,
            extra: extra.iter().map(|s| s.to_string()).collect(),
        };
        server.spawn().then_some(server)
    }

    fn spawn(&mut self) -> bool {
        let child = Command::new(&self.binary)
            .arg("--port")
            .arg(self.port.to_string())
            .args(["--bind", "127.0.0.1"])
            .arg("--dir")
            .arg(self.dir.path())
            .args(["--appendonly", "yes", "--appendfsync", "everysec"])
            .args(["--save", ""])
            .args(["--daemonize", "no"])
            .args(&self.extra)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("spawning {}: {e}", self.binary.display()));
        self.child = Some(child);
        let deadline = Instant::now() + START_TIMEOUT;
        while Instant::now() < deadline {
            if let Some(child) = self.child.as_mut() {
                if let Ok(Some(_)) = child.try_wait() {
                    self.child = None;
                    return false; // exited: port taken or bad args
                }
            }
            if self
                .command(&["PING"])
                .is_some_and(|r| r.starts_with("+PONG"))
            {
                return true;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        panic!(
            "{} did not answer PING within {START_TIMEOUT:?}",
            self.binary.display()
        );
    }

    /// `redis://127.0.0.1:PORT/`
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    /// Sends one command in RESP and returns the raw reply, or `None` if the server is
    /// not reachable. Enough for the few admin commands the tests need (RESP2: each
    /// call is a new connection).
    pub fn command(&self, args: &[&str]) -> Option<String> {
        let raw = self.request(args)?;
        Some(String::from_utf8_lossy(&raw).into_owned())
    }

    /// The same, parsed; `None` if the server is not reachable or the reply is cut.
    pub fn command_resp(&self, args: &[&str]) -> Option<Resp> {
        let raw = self.request(args)?;
        parse_resp(&raw).map(|(value, _)| value)
    }

    /// Sends `cmds` on one connection, in one write, and returns their replies: for
    /// what holds per connection, such as `WAIT` after a write (on a connection of its
    /// own, `WAIT` has no write to wait for and returns at once).
    pub fn pipeline(&self, cmds: &[&[&str]]) -> Option<Vec<Resp>> {
        let req: String = cmds.iter().map(|args| encode_command(args)).collect();
        let raw = self.exchange(req.as_bytes(), |buf| parse_many(buf, cmds.len()).is_some())?;
        parse_many(&raw, cmds.len())
    }

    fn request(&self, args: &[&str]) -> Option<Vec<u8>> {
        self.exchange(encode_command(args).as_bytes(), resp_complete)
    }

    fn exchange(&self, req: &[u8], complete: impl Fn(&[u8]) -> bool) -> Option<Vec<u8>> {
        let mut stream = TcpStream::connect_timeout(&self.addr(), Duration::from_secs(1)).ok()?;
        stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
        stream.write_all(req).ok()?;
        let mut buf = vec![0u8; 64 * 1024];
        let mut out = Vec::new();
        loop {
            let n = stream.read(&mut buf).ok()?;
            if n == 0 {
                break;
            }
            out.extend_from_slice(&buf[..n]);
            if complete(&out) {
                break;
            }
        }
        Some(out)
    }

    /// The number of keys in db 0 (`DBSIZE`).
    pub fn dbsize(&self) -> u64 {
        let reply = self
            .command(&["DBSIZE"])
            .expect("DBSIZE: server unreachable");
        reply
            .trim()
            .strip_prefix(':')
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("unexpected DBSIZE reply {reply:?}"))
    }

    /// Every key (for failure messages).
    pub fn keys(&self) -> String {
        self.command(&["KEYS", "*"]).unwrap_or_default()
    }

    /// Kills every client subscribed to a channel or a shard channel; returns how
    /// many. Not `CLIENT
    /// KILL TYPE pubsub`: a RESP3 client (smppd's subscriber is one, for sharded
    /// channels) is of type normal even while subscribed.
    pub fn kill_pubsub_clients(&self) -> u64 {
        let list = self
            .command(&["CLIENT", "LIST"])
            .expect("CLIENT LIST: server unreachable");
        let subscribed = |line: &str, field: &str| {
            line.split(' ')
                .find_map(|kv| kv.strip_prefix(field))
                .is_some_and(|n| n != "0")
        };
        let mut killed = 0;
        for line in list.lines() {
            if !(subscribed(line, "sub=") || subscribed(line, "ssub=")) {
                continue;
            }
            let Some(id) = line.split(' ').find_map(|kv| kv.strip_prefix("id=")) else {
                continue;
            };
            let reply = self
                .command(&["CLIENT", "KILL", "ID", id])
                .unwrap_or_default();
            killed += reply
                .trim()
                .trim_start_matches(':')
                .parse::<u64>()
                .unwrap_or(0);
        }
        killed
    }

    /// Stops the server gracefully (SIGTERM: the AOF is flushed).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            terminate_child(&mut child);
        }
    }

    /// Kills it with SIGKILL (no AOF flush, no goodbye to a cluster), without restart.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            stop_child(&mut child);
        }
    }

    /// Whether its process was started and not stopped or killed since.
    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }

    /// Starts it again on the same port and directory (AOF reloaded).
    pub fn restart(&mut self) {
        self.stop();
        assert!(
            self.spawn(),
            "restarting {} on port {} failed",
            self.binary.display(),
            self.port
        );
    }
}

/// A reply in RESP2.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resp {
    Simple(String),
    Error(String),
    Int(i64),
    /// `None`: the null bulk string.
    Bulk(Option<Vec<u8>>),
    /// `None`: the null array.
    Array(Option<Vec<Resp>>),
}

impl Resp {
    /// A simple or bulk string as text.
    pub fn as_str(&self) -> Option<String> {
        match self {
            Resp::Simple(s) => Some(s.clone()),
            Resp::Bulk(Some(b)) => Some(String::from_utf8_lossy(b).into_owned()),
            _ => None,
        }
    }

    pub fn as_int(&self) -> Option<i64> {
        match self {
            Resp::Int(n) => Some(*n),
            _ => None,
        }
    }

    /// The elements of an array (none for anything else).
    pub fn items(&self) -> &[Resp] {
        match self {
            Resp::Array(Some(items)) => items,
            _ => &[],
        }
    }
}

/// The first whole RESP2 value in `buf` and the bytes it took, or `None` if `buf`
/// holds less (or is no RESP2).
pub fn parse_resp(buf: &[u8]) -> Option<(Resp, usize)> {
    let line_end = buf.windows(2).position(|w| w == b"\r\n")?;
    let line = std::str::from_utf8(&buf[1..line_end]).ok()?;
    let after = line_end + 2;
    match buf.first()? {
        b'+' => Some((Resp::Simple(line.to_string()), after)),
        b'-' => Some((Resp::Error(line.to_string()), after)),
        b':' => Some((Resp::Int(line.parse().ok()?), after)),
        b'$' => {
            let len: i64 = line.parse().ok()?;
            if len < 0 {
                return Some((Resp::Bulk(None), after));
            }
            let end = after + len as usize;
            (buf.len() >= end + 2).then(|| (Resp::Bulk(Some(buf[after..end].to_vec())), end + 2))
        }
        b'*' => {
            let len: i64 = line.parse().ok()?;
            if len < 0 {
                return Some((Resp::Array(None), after));
            }
            let mut items = Vec::with_capacity(len as usize);
            let mut at = after;
            for _ in 0..len {
                let (item, used) = parse_resp(&buf[at..])?;
                items.push(item);
                at += used;
            }
            Some((Resp::Array(Some(items)), at))
        }
        _ => None,
    }
}

/// The first `n` whole values in `buf`.
fn parse_many(buf: &[u8], n: usize) -> Option<Vec<Resp>> {
    let mut values = Vec::with_capacity(n);
    let mut at = 0;
    for _ in 0..n {
        let (value, used) = parse_resp(&buf[at..])?;
        values.push(value);
        at += used;
    }
    Some(values)
}

fn encode_command(args: &[&str]) -> String {
    let mut req = format!("*{}\r\n", args.len());
    for a in args {
        req.push_str(&format!("${}\r\n{a}\r\n", a.len()));
    }
    req
}

fn resp_complete(buf: &[u8]) -> bool {
    match buf.first() {
        Some(b'+' | b'-' | b':' | b'$' | b'*') => parse_resp(buf).is_some(),
        // Not RESP2: good enough for diagnostics.
        Some(_) => buf.ends_with(b"\r\n"),
        None => false,
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            stop_child(&mut child);
        }
    }
}

// ---------------------------------------------------------------------------------
// MongoDB-protocol server

/// A `secantusd-py` child process (`$SMPPD_SECANTUSD`) with on-disk storage, so it can
/// be stopped and restarted with its data.
pub struct MongoServer {
    pub port: u16,
    binary: PathBuf,
    dir: TempDir,
    child: Option<Child>,
}

impl MongoServer {
    pub fn start() -> MongoServer {
        let binary = binary_from_env("SMPPD_SECANTUSD");
        let dir = TempDir::new("mongo");
        let mut server = MongoServer {
            port: 0,
            binary,
            dir,
            child: None,
        };
        for _ in 0..5 {
            server.port = free_port();
            if server.spawn() {
                return server;
            }
        }
        panic!("could not start {} on a free port", server.binary.display());
    }

    fn spawn(&mut self) -> bool {
        let data = self.dir.path().join("data");
        let child = Command::new(&self.binary)
            .args(["--host", "127.0.0.1", "--port"])
            .arg(self.port.to_string())
            .arg("--storage-path")
            .arg(&data)
            .args(["--log-level", "WARNING"])
            .current_dir(self.dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("spawning {}: {e}", self.binary.display()));
        self.child = Some(child);
        let addr = SocketAddr::from(([127, 0, 0, 1], self.port));
        let deadline = Instant::now() + START_TIMEOUT;
        while Instant::now() < deadline {
            if let Some(child) = self.child.as_mut() {
                if let Ok(Some(_)) = child.try_wait() {
                    self.child = None;
                    return false;
                }
            }
            if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!(
            "{} did not listen within {START_TIMEOUT:?}",
            self.binary.display()
        );
    }

    /// `mongodb://127.0.0.1:PORT/` with a short server-selection timeout, so a stopped
    /// server shows up as an error quickly.
    pub fn uri(&self) -> String {
        format!(
            "mongodb://127.0.0.1:{}/?directConnection=true&serverSelectionTimeoutMS=2000&connectTimeoutMS=1000",
            self.port
        )
    }

    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }

    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            terminate_child(&mut child);
        }
    }

    /// Starts it again on the same port and storage directory.
    pub fn restart(&mut self) {
        self.stop();
        let mut ok = false;
        // The old process may hold the port for a moment after exiting.
        for _ in 0..50 {
            if self.spawn() {
                ok = true;
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        assert!(
            ok,
            "restarting {} on port {} failed",
            self.binary.display(),
            self.port
        );
    }
}

impl Drop for MongoServer {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            stop_child(&mut child);
        }
    }
}
