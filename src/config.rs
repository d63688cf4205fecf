//! `config.toml`: loading, environment overrides and validation.
//!
//! [`Config::load`] reads the file, applies `SMPPD_REDIS_URL` / `SMPPD_MONGODB_URI`,
//! and validates everything at once: a bad config yields a [`ConfigProblems`] listing
//! *every* problem with its key path (`esme[2].allowed_addresses[0]: invalid CIDR
//! "10.0.0/8"`), so an operator fixes the file in one round instead of one error per
//! restart. TLS material is loaded here too, so `check-config` catches an unreadable
//! key and `serve` never binds a port with a config it cannot use.

mod password;
mod raw;
mod routes;
mod validate;

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use ipnet::IpNet;

use crate::service::{AccountLimits, AccountPolicy, ExpiryMode, MessageIdFormat, ReceiptPdu};
use smpp_protocol::text::DefaultAlphabet;

/// The environment variable that replaces `redis.url`.
pub const ENV_REDIS_URL: &str = "SMPPD_REDIS_URL";
/// The environment variable that replaces `mongodb.uri`.
pub const ENV_MONGODB_URI: &str = "SMPPD_MONGODB_URI";

/// A validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub server: ServerConfig,
    pub redis: RedisConfig,
    pub mongodb: MongoConfig,
    pub receipts: ReceiptsConfig,
    pub metrics: MetricsConfig,
    pub admin: AdminConfig,
    /// The `[[esme]]` accounts, in file order.
    pub accounts: Vec<Account>,
    /// The `[[route]]` table and what happens to a message no route takes.
    pub routes: Arc<crate::routing::Routes>,
    /// `[delivery]`: what a receiving ESME's answers mean.
    pub delivery: crate::routing::DeliveryRules,
    /// What a bind with an unknown system_id is verified against, so that its refusal
    /// costs what a known account's does (argon2 at the accounts' highest cost).
    pub unknown_account_credential: Credential,
}

#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Sent as system_id in bind_*_resp.
    pub system_id: String,
    /// This node's name in outcome documents and logs (default: the host name).
    pub node_id: String,
    /// Plain TCP listener.
    pub listen: SocketAddr,
    /// TLS listener with its loaded certificate; `None` when `tls_listen` is unset.
    pub tls: Option<TlsListen>,
    /// Connections (plain + TLS) open at once; more are closed as soon as accepted.
    pub max_connections: usize,
    /// Connections open at once from one IPv4 address or IPv6 /64.
    pub max_connections_per_ip: usize,
    /// Connections not bound yet, at most; past it the oldest of them is closed to
    /// make room for a new connection (see `crate::admission`).
    pub max_unbound_connections: usize,
    /// A bind must arrive this long after connect.
    pub bind_timeout: Duration,
    /// enquire_link is sent after this much inactivity.
    pub enquire_link_interval: Duration,
    /// How long we wait for any response to our own requests.
    pub response_timeout: Duration,
    /// Unanswered deliver_sm per session.
    pub outbound_window: usize,
    /// How often a deliver_sm that timed out is sent again (on any RX/TRX bind).
    pub outbound_retries: u32,
    /// How long shutdown waits for unbind_resp and in-flight work.
    pub shutdown_grace: Duration,
    /// Largest command_length accepted; bigger frames are nacked and the connection closed.
    pub max_pdu_len: usize,
    pub log_format: LogFormat,
    /// Whether short_message text may appear in logs.
    pub log_message_text: bool,
    pub bind_failures: BindFailurePolicy,
}

/// The TLS listener: address plus the certificate files (already loaded and checked).
#[derive(Clone)]
pub struct TlsListen {
    pub listen: SocketAddr,
    pub cert_path: PathBuf,
    pub key_path: PathBuf,
    pub server_config: Arc<rustls::ServerConfig>,
}

impl fmt::Debug for TlsListen {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsListen")
            .field("listen", &self.listen)
            .field("cert_path", &self.cert_path)
            .field("key_path", &self.key_path)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Human,
    Json,
}

/// How repeated bind failures from one address (IPv4 address, IPv6 /64) are slowed
/// down and then refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BindFailurePolicy {
    /// Failures within `window` after which the address is refused for `block_for`.
    pub max_failures: u32,
    pub window: Duration,
    pub block_for: Duration,
    /// Every refused bind is answered this long after it arrived (slows password
    /// guessing, and hides how long the check took).
    pub delay: Duration,
    /// Addresses tracked at most; past this, stale ones are dropped, then the least
    /// recently seen unblocked one.
    pub max_tracked: usize,
}

#[derive(Debug, Clone)]
pub struct RedisConfig {
    /// One server's URL, or one seed node's of a cluster.
    pub url: String,
    /// A Redis/Valkey Cluster (`url` and `seeds` are seed nodes).
    pub cluster: bool,
    pub seeds: Vec<String>,
    /// PEM CA certificates a `rediss://` server's certificate must chain to (instead
    /// of the system's roots).
    pub tls_ca: Option<std::path::PathBuf>,
    /// Replicas a submit must reach before it is acknowledged (`WAIT`), and for how
    /// long it may wait for them.
    pub ack_replicas: u32,
    pub ack_timeout: std::time::Duration,
    /// Prepended to every key smppd writes; nodes of one installation share it.
    pub key_prefix: String,
    /// Whether smppd may run `CONFIG SET notify-keyspace-events` itself.
    pub configure_keyspace_events: bool,
    /// Messages in Redis (pending + finished but not yet in MongoDB) beyond which new
    /// messages are refused with ESME_RMSGQFUL: the bound on Redis memory while
    /// MongoDB is down or slow.
    pub max_pending: u64,
    /// Octets of user data (short_message / message_payload as received) those
    /// messages may hold together, beyond which new segments are refused the same way.
    pub max_pending_bytes: u64,
}

#[derive(Debug, Clone)]
pub struct MongoConfig {
    pub uri: String,
    pub database: String,
    /// Outcomes older than this are removed (TTL index); `None` keeps them forever.
    pub retention_days: Option<u32>,
}

#[derive(Debug, Clone)]
pub struct ReceiptsConfig {
    /// How long an undelivered receipt is kept waiting for a receiver bind.
    pub lifetime: Duration,
}

#[derive(Debug, Clone, Default)]
pub struct MetricsConfig {
    pub listen: Option<SocketAddr>,
}

/// `[admin]`: the operator API and console (`crate::admin`).
#[derive(Debug, Clone, Default)]
pub struct AdminConfig {
    /// `None`: no admin listener.
    pub listen: Option<SocketAddr>,
    /// Bearer tokens, in file order (`admin.tokens[i]` names one in logs).
    pub tokens: Vec<AdminToken>,
}

/// One bearer token of the admin API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdminToken {
    /// The token in clear, or its argon2 PHC string (`token_hash`). Never printed.
    pub secret: Credential,
    pub role: AdminRole,
}

/// What a token may do: `read` sees everything, `admin` also acts (unbind).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum AdminRole {
    Read,
    Admin,
}

impl AdminRole {
    pub fn as_str(self) -> &'static str {
        match self {
            AdminRole::Read => "read",
            AdminRole::Admin => "admin",
        }
    }

    /// Whether a token of this role may do what needs `needed`.
    pub fn allows(self, needed: AdminRole) -> bool {
        self >= needed
    }
}

/// One `[[esme]]` account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    pub system_id: String,
    pub credential: Credential,
    pub allowed_bind_types: BindTypes,
    /// Empty: any address.
    pub allowed_addresses: Vec<IpNet>,
    pub max_binds: usize,
    /// Rate limit over all of the account's sessions; `None`: unlimited.
    pub throughput: Option<Throughput>,
    /// Requests processed concurrently per session.
    pub window: usize,
    pub default_validity: Duration,
    pub max_validity: Duration,
    pub tls_required: bool,
    pub enabled: bool,
    pub expiry_mode: ExpiryMode,
    /// What data_coding 0 means in this account's messages and receipts: GSM 03.38
    /// (default), ASCII or Latin-1 (`default_alphabet`).
    pub default_alphabet: DefaultAlphabet,
    /// The PDU its receivers get receipts in: deliver_sm (default) or data_sm.
    pub receipt_pdu: ReceiptPdu,
    /// This account's share of the store: messages and octets of user data in Redis
    /// (pending + not yet in MongoDB), past which its new messages get ESME_RMSGQFUL
    /// while other accounts go on.
    pub max_pending: u64,
    pub max_pending_bytes: u64,
    /// Octets of short_message / message_payload (UDH included) one segment may
    /// carry; longer ones get ESME_RINVMSGLEN.
    pub max_segment_octets: usize,
    /// Receipts queued for this account (waiting for its receiver) past which its
    /// new messages get ESME_RMSGQFUL: the bound on receipts nobody takes.
    pub max_queued_receipts: u64,
    pub message_id_format: MessageIdFormat,
}

impl Account {
    /// The part of the account the store needs with each submit.
    pub fn policy(&self) -> AccountPolicy {
        AccountPolicy {
            system_id: self.system_id.clone(),
            default_validity: self.default_validity,
            max_validity: self.max_validity,
            expiry_mode: self.expiry_mode,
            limits: AccountLimits {
                max_pending: self.max_pending,
                max_pending_bytes: self.max_pending_bytes,
                max_segment_octets: self.max_segment_octets,
                max_queued_receipts: self.max_queued_receipts,
            },
            message_id_format: self.message_id_format,
        }
    }

    /// Whether `ip` is inside one of the allowed networks (or no list is set).
    pub fn address_allowed(&self, ip: IpAddr) -> bool {
        // A v4 peer may reach a dual-stack socket as ::ffff:a.b.c.d.
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
            v4 => v4,
        };
        self.allowed_addresses.is_empty() || self.allowed_addresses.iter().any(|n| n.contains(&ip))
    }
}

/// Requests per second plus how many may come at once above that rate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Throughput {
    pub per_second: u32,
    pub burst: u32,
}

/// A password, in clear or as an argon2 PHC string. Never printed.
#[derive(Clone, PartialEq, Eq)]
pub enum Credential {
    Plain(String),
    Argon2(String),
}

impl fmt::Debug for Credential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Credential::Plain(_) => f.write_str("Plain(<redacted>)"),
            Credential::Argon2(_) => f.write_str("Argon2(<redacted>)"),
        }
    }
}

/// Which bind types an account may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BindTypes {
    pub transmitter: bool,
    pub receiver: bool,
    pub transceiver: bool,
}

impl BindTypes {
    pub const ALL: BindTypes = BindTypes {
        transmitter: true,
        receiver: true,
        transceiver: true,
    };
}

/// One problem found in the config, with where it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Key path, e.g. `esme[2].allowed_addresses[0]`; the file name for whole-file faults.
    pub path: String,
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

/// Every problem of a config that could not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ConfigProblems(pub Vec<Problem>);

impl fmt::Display for ConfigProblems {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} problem(s) in config", self.0.len())?;
        for p in &self.0 {
            write!(f, "\n  {p}")?;
        }
        Ok(())
    }
}

/// A loaded config plus the non-fatal warnings (file permissions, weak password hashes).
#[derive(Debug, Clone)]
pub struct Loaded {
    pub config: Config,
    pub warnings: Vec<String>,
}

/// Where the config comes from; `serve` re-reads it on SIGHUP.
#[derive(Debug, Clone)]
pub enum ConfigSource {
    File(PathBuf),
    /// Inline TOML, for tests; reload reads the same text again.
    Inline(String),
}

impl ConfigSource {
    pub fn load(&self) -> Result<Loaded, ConfigProblems> {
        match self {
            ConfigSource::File(p) => Config::load(p),
            ConfigSource::Inline(text) => Config::parse(text, &EnvOverrides::from_env(), None),
        }
    }
}

/// Values from the environment that replace file values.
#[derive(Debug, Clone, Default)]
pub struct EnvOverrides {
    pub redis_url: Option<String>,
    pub mongodb_uri: Option<String>,
}

impl EnvOverrides {
    pub fn from_env() -> Self {
        let get = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        EnvOverrides {
            redis_url: get(ENV_REDIS_URL),
            mongodb_uri: get(ENV_MONGODB_URI),
        }
    }
}

impl Config {
    /// Reads, overrides from the environment, and validates `path`.
    pub fn load(path: &Path) -> Result<Loaded, ConfigProblems> {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| {
            ConfigProblems(vec![Problem {
                path: file.clone(),
                message: format!("cannot read: {e}"),
            }])
        })?;
        let base = path.parent().unwrap_or(Path::new("."));
        let mut loaded = Config::parse(&text, &EnvOverrides::from_env(), Some(base))?;
        loaded.warnings.extend(permission_warning(path));
        Ok(loaded)
    }

    /// Parses and validates config text. Relative TLS paths are resolved against
    /// `base` (the config file's directory) when given.
    pub fn from_toml(
        text: &str,
        env: &EnvOverrides,
        base: Option<&Path>,
    ) -> Result<Config, ConfigProblems> {
        Config::parse(text, env, base).map(|l| l.config)
    }

    /// [`Config::from_toml`] with the warnings (weak password hashes).
    pub fn parse(
        text: &str,
        env: &EnvOverrides,
        base: Option<&Path>,
    ) -> Result<Loaded, ConfigProblems> {
        let raw: raw::RawConfig = toml::from_str(text).map_err(|e| {
            let span = e.span().map(|s| line_of(text, s.start)).unwrap_or_default();
            ConfigProblems(vec![Problem {
                path: format!("toml{span}"),
                message: e.message().to_string(),
            }])
        })?;
        validate::validate(raw, env, base)
    }

    /// The account with this system_id.
    pub fn account(&self, system_id: &str) -> Option<&Account> {
        self.accounts.iter().find(|a| a.system_id == system_id)
    }

    /// One line for `check-config`.
    pub fn summary(&self) -> String {
        let enabled = self.accounts.iter().filter(|a| a.enabled).count();
        let tls = match &self.server.tls {
            Some(t) => format!("tls {}", t.listen),
            None => "no tls".to_string(),
        };
        let admin = match self.admin.listen {
            Some(a) => format!("admin {a} ({} token(s))", self.admin.tokens.len()),
            None => "no admin".to_string(),
        };
        format!(
            "listen {}, {tls}, {admin}, {} account(s) ({enabled} enabled), {} route(s), redis {}, mongodb {}/{}",
            self.server.listen,
            self.accounts.len(),
            self.routes.routes.len(),
            redact_url(&self.redis.url),
            redact_url(&self.mongodb.uri),
            self.mongodb.database
        )
    }
}

fn line_of(text: &str, offset: usize) -> String {
    let line = text[..offset.min(text.len())].matches('\n').count() + 1;
    format!(" (line {line})")
}

/// Hides a `user:password@` part of a URL for printing.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => format!("{}://***@{}", &url[..s], &url[at + 1..]),
        _ => url.to_string(),
    }
}

/// The file holds passwords: say so when others may read it.
#[cfg(unix)]
fn permission_warning(path: &Path) -> Option<String> {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(path).ok()?.permissions().mode();
    (mode & 0o077 != 0).then(|| {
        format!(
            "{} is readable by group or others (mode {:o}); it holds passwords, consider chmod 600",
            path.display(),
            mode & 0o777
        )
    })
}

#[cfg(not(unix))]
fn permission_warning(_path: &Path) -> Option<String> {
    None
}
