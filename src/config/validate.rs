//! Raw config → [`Config`], collecting every problem instead of stopping at the first.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use ipnet::IpNet;

use super::raw::{RawAdmin, RawConfig, RawEsme};
use super::{
    password, Account, AdminConfig, AdminRole, AdminToken, BindFailurePolicy, BindTypes, Config,
    ConfigProblems, Credential, EnvOverrides, Loaded, LogFormat, MetricsConfig, MongoConfig,
    Problem, ReceiptsConfig, RedisConfig, ServerConfig, Throughput, TlsListen,
};
use crate::service::{ExpiryMode, MessageIdFormat, ReceiptPdu};
use smpp_protocol::text::DefaultAlphabet;

/// C-Octet String maximum of the bind PDU's system_id, counting characters (NUL excluded).
const MAX_SYSTEM_ID_LEN: usize = 15;
/// A submit_sm with every field at its maximum plus TLVs fits well within this.
const MIN_PDU_LEN: i64 = 512;
const MAX_PDU_LEN: i64 = 16 * 1024 * 1024;
const MAX_WINDOW: i64 = 10_000;

#[derive(Default)]
pub(super) struct Collector {
    problems: Vec<Problem>,
    /// Accepted, but worth telling the operator.
    warnings: Vec<String>,
}

impl Collector {
    pub(super) fn push(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.problems.push(Problem {
            path: path.into(),
            message: message.into(),
        });
    }

    pub(super) fn duration(
        &mut self,
        path: &str,
        value: Option<&str>,
        default: Duration,
    ) -> Duration {
        self.duration_min(path, value, default, false)
    }

    pub(super) fn duration_min(
        &mut self,
        path: &str,
        value: Option<&str>,
        default: Duration,
        allow_zero: bool,
    ) -> Duration {
        let Some(v) = value else { return default };
        if allow_zero && v.trim() == "0" {
            return Duration::ZERO;
        }
        match humantime::parse_duration(v) {
            Ok(d) if d.is_zero() && !allow_zero => {
                self.push(path, format!("must be greater than zero, got \"{v}\""));
                default
            }
            Ok(d) => d,
            Err(e) => {
                self.push(
                    path,
                    format!("invalid duration \"{v}\" ({e}); use e.g. \"30s\", \"48h\""),
                );
                default
            }
        }
    }

    fn int(&mut self, path: &str, value: Option<i64>, default: i64, min: i64, max: i64) -> i64 {
        match value {
            None => default,
            Some(v) if v < min || v > max => {
                self.push(path, format!("must be between {min} and {max}, got {v}"));
                default
            }
            Some(v) => v,
        }
    }

    fn socket(&mut self, path: &str, value: &str) -> Option<SocketAddr> {
        match value.parse() {
            Ok(a) => Some(a),
            Err(_) => {
                self.push(
                    path,
                    format!("invalid socket address \"{value}\"; use e.g. \"0.0.0.0:2775\""),
                );
                None
            }
        }
    }

    fn smpp_id(&mut self, path: &str, value: &str) {
        if value.is_empty() {
            self.push(path, "must not be empty");
        } else if value.len() > MAX_SYSTEM_ID_LEN || !value.is_ascii() {
            self.push(
                path,
                format!("must be at most {MAX_SYSTEM_ID_LEN} ASCII characters"),
            );
        }
    }
}

pub(super) fn validate(
    raw: RawConfig,
    env: &EnvOverrides,
    base: Option<&Path>,
) -> Result<Loaded, ConfigProblems> {
    let mut c = Collector::default();
    let s = &raw.server;

    let system_id = s.system_id.clone().unwrap_or_else(|| "smppd".to_string());
    c.smpp_id("server.system_id", &system_id);
    let listen = s.listen.as_deref().unwrap_or("0.0.0.0:2775");
    let listen = c.socket("server.listen", listen);
    let tls = validate_tls(
        &mut c,
        s.tls_listen.as_deref(),
        &s.tls_cert,
        &s.tls_key,
        base,
    );
    let max_connections = c.int(
        "server.max_connections",
        s.max_connections,
        10_000,
        1,
        1_000_000,
    );
    let max_connections_per_ip = c.int(
        "server.max_connections_per_ip",
        s.max_connections_per_ip,
        64,
        1,
        1_000_000,
    );
    // Half of the slots by default: the other half stays for connections that bound.
    let max_unbound_connections = c.int(
        "server.max_unbound_connections",
        s.max_unbound_connections,
        (max_connections / 2).max(1),
        1,
        max_connections,
    );
    let bind_timeout = c.duration(
        "server.bind_timeout",
        s.bind_timeout.as_deref(),
        Duration::from_secs(10),
    );
    let enquire_link_interval = c.duration(
        "server.enquire_link_interval",
        s.enquire_link_interval.as_deref(),
        Duration::from_secs(30),
    );
    let response_timeout = c.duration(
        "server.response_timeout",
        s.response_timeout.as_deref(),
        Duration::from_secs(10),
    );
    let outbound_window = c.int(
        "server.outbound_window",
        s.outbound_window,
        10,
        1,
        MAX_WINDOW,
    );
    let outbound_retries = c.int("server.outbound_retries", s.outbound_retries, 2, 0, 100);
    let shutdown_grace = c.duration(
        "server.shutdown_grace",
        s.shutdown_grace.as_deref(),
        Duration::from_secs(10),
    );
    let max_pending = c.int(
        "redis.max_pending",
        raw.redis.max_pending,
        1_000_000,
        1,
        1_000_000_000,
    );
    let max_pending_bytes = c.int(
        "redis.max_pending_bytes",
        raw.redis.max_pending_bytes,
        DEFAULT_STORE_BYTES,
        1,
        1_i64 << 52, // exact in a Lua number
    );
    let max_pdu_len = c.int(
        "server.max_pdu_len",
        s.max_pdu_len,
        65_536,
        MIN_PDU_LEN,
        MAX_PDU_LEN,
    );
    let log_format = match s.log_format.as_deref() {
        None | Some("human") => LogFormat::Human,
        Some("json") => LogFormat::Json,
        Some(other) => {
            c.push(
                "server.log_format",
                format!("must be \"human\" or \"json\", got \"{other}\""),
            );
            LogFormat::Human
        }
    };
    let bf = &s.bind_failures;
    let bind_failures = BindFailurePolicy {
        max_failures: c.int(
            "server.bind_failures.max_failures",
            bf.max_failures,
            5,
            1,
            1_000_000,
        ) as u32,
        window: c.duration(
            "server.bind_failures.window",
            bf.window.as_deref(),
            Duration::from_secs(60),
        ),
        block_for: c.duration(
            "server.bind_failures.block_for",
            bf.block_for.as_deref(),
            Duration::from_secs(300),
        ),
        // Zero is a legal choice here: no slowing, only blocking.
        delay: c.duration_min(
            "server.bind_failures.delay",
            bf.delay.as_deref(),
            Duration::from_millis(500),
            true,
        ),
        max_tracked: c.int(
            "server.bind_failures.max_tracked",
            bf.max_tracked,
            10_000,
            1,
            10_000_000,
        ) as usize,
    };

    let redis_url = env
        .redis_url
        .clone()
        .or_else(|| raw.redis.url.clone())
        .unwrap_or_else(|| "redis://127.0.0.1:6379".to_string());
    if !["redis://", "rediss://", "unix://", "redis+unix://"]
        .iter()
        .any(|p| redis_url.starts_with(p))
    {
        c.push(
            "redis.url",
            format!(
                "must start with redis://, rediss:// or unix://, got \"{}\"",
                super::redact_url(&redis_url)
            ),
        );
    }
    let seeds = raw.redis.seeds.clone().unwrap_or_default();
    let cluster = raw.redis.cluster.unwrap_or(false);
    for (i, seed) in seeds.iter().enumerate() {
        if !seed.starts_with("redis://") && !seed.starts_with("rediss://") {
            c.push(
                format!("redis.seeds[{i}]"),
                format!(
                    "must start with redis:// or rediss://, got \"{}\"",
                    super::redact_url(seed)
                ),
            );
        }
    }
    if !seeds.is_empty() && !cluster {
        c.push(
            "redis.seeds",
            "seed nodes are for a cluster: set cluster = true, or remove seeds".to_string(),
        );
    }
    if cluster && (redis_url.starts_with("unix://") || redis_url.starts_with("redis+unix://")) {
        c.push(
            "redis.url",
            "a cluster is reached over TCP: give a node's redis:// or rediss:// URL".to_string(),
        );
    }
    // A private CA for rediss:// (the system's roots otherwise), relative to the file.
    let tls_ca = raw.redis.tls_ca.as_deref().and_then(|p| {
        let p = match base {
            Some(b) if Path::new(p).is_relative() => b.join(p),
            _ => PathBuf::from(p),
        };
        match std::fs::read(&p) {
            Ok(pem) if pem.windows(27).any(|w| w == b"-----BEGIN CERTIFICATE-----") => Some(p),
            Ok(_) => {
                c.push(
                    "redis.tls_ca",
                    format!("{} holds no PEM certificate", p.display()),
                );
                None
            }
            Err(e) => {
                c.push("redis.tls_ca", format!("cannot read {}: {e}", p.display()));
                None
            }
        }
    });
    let ack_replicas = c.int("redis.ack_replicas", raw.redis.ack_replicas, 0, 0, 16);
    let ack_timeout = c.duration(
        "redis.ack_timeout",
        raw.redis.ack_timeout.as_deref(),
        Duration::from_secs(1),
    );
    let mongo_uri = env
        .mongodb_uri
        .clone()
        .or_else(|| raw.mongodb.uri.clone())
        .unwrap_or_else(|| "mongodb://127.0.0.1:27017".to_string());
    if !mongo_uri.starts_with("mongodb://") && !mongo_uri.starts_with("mongodb+srv://") {
        c.push(
            "mongodb.uri",
            format!(
                "must start with mongodb:// or mongodb+srv://, got \"{}\"",
                super::redact_url(&mongo_uri)
            ),
        );
    }
    let database = raw
        .mongodb
        .database
        .clone()
        .unwrap_or_else(|| "smppd".to_string());
    if database.is_empty() || database.contains(['/', '\\', '.', ' ', '"', '$']) {
        c.push(
            "mongodb.database",
            format!("invalid database name \"{database}\""),
        );
    }
    let retention_days = raw
        .mongodb
        .retention_days
        .map(|d| c.int("mongodb.retention_days", Some(d), 1, 1, 36_500) as u32);
    let lifetime = c.duration(
        "receipts.lifetime",
        raw.receipts.lifetime.as_deref(),
        Duration::from_secs(72 * 3600),
    );
    let metrics_listen = raw
        .metrics
        .listen
        .as_deref()
        .and_then(|l| c.socket("metrics.listen", l));

    let admin = validate_admin(&mut c, &raw.admin);

    let mut seen = HashSet::new();
    let accounts: Vec<Account> = raw
        .esme
        .iter()
        .enumerate()
        .filter_map(|(i, e)| validate_esme(&mut c, i, e, &mut seen))
        .collect();
    let names: HashSet<String> = accounts.iter().map(|a| a.system_id.clone()).collect();
    let profiles = super::routes::validate_simulate(&mut c, &raw.simulate);
    let routes =
        super::routes::validate_routes(&mut c, &raw.route, &raw.delivery, &names, &profiles);
    let delivery = super::routes::validate_delivery(&mut c, &raw.delivery);

    if !c.problems.is_empty() {
        return Err(ConfigProblems(c.problems));
    }
    let (Some(listen), Some(tls)) = (listen, tls) else {
        // Unreachable in practice: a None above always pushed a problem.
        return Err(ConfigProblems(vec![Problem {
            path: "server".into(),
            message: "invalid listener".into(),
        }]));
    };
    let unknown_account_credential =
        password::unknown_account_credential(accounts.iter().filter_map(|a| match &a.credential {
            Credential::Argon2(phc) => password::check_hash(phc).ok(),
            Credential::Plain(_) => None,
        }));
    let config = Config {
        server: ServerConfig {
            system_id,
            node_id: s.node_id.clone().unwrap_or_else(default_node_id),
            listen,
            tls,
            max_connections: max_connections as usize,
            max_connections_per_ip: max_connections_per_ip as usize,
            max_unbound_connections: max_unbound_connections as usize,
            bind_timeout,
            enquire_link_interval,
            response_timeout,
            outbound_window: outbound_window as usize,
            outbound_retries: outbound_retries as u32,
            shutdown_grace,
            max_pdu_len: max_pdu_len as usize,
            log_format,
            log_message_text: s.log_message_text.unwrap_or(false),
            bind_failures,
        },
        redis: RedisConfig {
            url: redis_url,
            key_prefix: raw
                .redis
                .key_prefix
                .clone()
                .unwrap_or_else(|| "smppd:".to_string()),
            configure_keyspace_events: raw.redis.configure_keyspace_events.unwrap_or(true),
            cluster,
            seeds,
            tls_ca,
            ack_replicas: ack_replicas as u32,
            ack_timeout,
            max_pending: max_pending as u64,
            max_pending_bytes: max_pending_bytes as u64,
        },
        mongodb: MongoConfig {
            uri: mongo_uri,
            database,
            retention_days,
        },
        receipts: ReceiptsConfig { lifetime },
        metrics: MetricsConfig {
            listen: metrics_listen,
        },
        admin,
        accounts,
        routes: Arc::new(routes),
        delivery,
        unknown_account_credential,
    };
    Ok(Loaded {
        config,
        warnings: c.warnings,
    })
}

/// `Some(None)`: no TLS listener; `Some(Some(_))`: a loaded one; `None`: a problem was pushed.
fn validate_tls(
    c: &mut Collector,
    listen: Option<&str>,
    cert: &Option<String>,
    key: &Option<String>,
    base: Option<&Path>,
) -> Option<Option<TlsListen>> {
    let Some(listen) = listen else {
        if cert.is_some() || key.is_some() {
            c.push(
                "server.tls_listen",
                "tls_cert/tls_key are set but tls_listen is not",
            );
            return None;
        }
        return Some(None);
    };
    let addr = c.socket("server.tls_listen", listen);
    let resolve = |p: &str| -> PathBuf {
        let p = PathBuf::from(p);
        match base {
            Some(b) if p.is_relative() => b.join(p),
            _ => p,
        }
    };
    let cert_path = match cert {
        Some(p) => Some(resolve(p)),
        None => {
            c.push(
                "server.tls_cert",
                "required when tls_listen is set (PEM certificate chain)",
            );
            None
        }
    };
    let key_path = match key {
        Some(p) => Some(resolve(p)),
        None => {
            c.push(
                "server.tls_key",
                "required when tls_listen is set (PEM private key)",
            );
            None
        }
    };
    let (addr, cert_path, key_path) = (addr?, cert_path?, key_path?);
    match crate::tls::load_server_config(&cert_path, &key_path) {
        Ok(server_config) => Some(Some(TlsListen {
            listen: addr,
            cert_path,
            key_path,
            server_config,
        })),
        Err(e) => {
            c.push(e.key(), e.to_string());
            None
        }
    }
}

/// Shortest clear admin token: 16 characters (at least 96 bits from a random
/// generator as the docs suggest: `openssl rand -base64 24`).
const MIN_ADMIN_TOKEN_LEN: usize = 16;
/// Longest token accepted (an Authorization header, not a document).
const MAX_ADMIN_TOKEN_LEN: usize = 512;

fn validate_admin(c: &mut Collector, a: &RawAdmin) -> AdminConfig {
    let listen = a
        .listen
        .as_deref()
        .and_then(|l| c.socket("admin.listen", l));
    if a.listen.is_some() && a.tokens.is_empty() {
        c.push(
            "admin.tokens",
            "at least one token is required when admin.listen is set \
             (e.g. tokens = [{ token_hash = \"$argon2id$...\", role = \"admin\" }])",
        );
    }
    let mut tokens = Vec::new();
    let mut clear = HashSet::new();
    for (i, t) in a.tokens.iter().enumerate() {
        let p = |k: &str| format!("admin.tokens[{i}].{k}");
        let secret = match (&t.token, &t.token_hash) {
            (Some(_), Some(_)) => {
                c.push(p("token"), "set either token or token_hash, not both");
                None
            }
            (None, None) => {
                c.push(p("token"), "one of token or token_hash is required");
                None
            }
            (Some(tok), None) => {
                let n = tok.chars().count();
                if !(MIN_ADMIN_TOKEN_LEN..=MAX_ADMIN_TOKEN_LEN).contains(&n)
                    || !tok.chars().all(|ch| ch.is_ascii_graphic())
                {
                    c.push(
                        p("token"),
                        format!(
                            "must be {MIN_ADMIN_TOKEN_LEN} to {MAX_ADMIN_TOKEN_LEN} printable \
                             ASCII characters without spaces (e.g. `openssl rand -base64 24`)"
                        ),
                    );
                    None
                } else if !clear.insert(tok.clone()) {
                    c.push(p("token"), "the same token is listed twice");
                    None
                } else {
                    Some(Credential::Plain(tok.clone()))
                }
            }
            (None, Some(h)) => match password::check_hash(h) {
                Ok(_) => Some(Credential::Argon2(h.clone())),
                Err(problem) => {
                    c.push(p("token_hash"), problem);
                    None
                }
            },
        };
        let role = match t.role.as_deref() {
            Some("read") => Some(AdminRole::Read),
            Some("admin") => Some(AdminRole::Admin),
            Some(other) => {
                c.push(
                    p("role"),
                    format!("must be \"read\" or \"admin\", got \"{other}\""),
                );
                None
            }
            None => {
                c.push(p("role"), "required: \"read\" or \"admin\"");
                None
            }
        };
        if let (Some(secret), Some(role)) = (secret, role) {
            tokens.push(AdminToken { secret, role });
        }
    }
    AdminConfig { listen, tokens }
}

fn validate_esme(
    c: &mut Collector,
    i: usize,
    e: &RawEsme,
    seen: &mut HashSet<String>,
) -> Option<Account> {
    let p = |k: &str| format!("esme[{i}].{k}");
    let before = c.problems.len();

    let system_id = e.system_id.clone().unwrap_or_default();
    c.smpp_id(&p("system_id"), &system_id);
    if !system_id.is_empty() && !seen.insert(system_id.clone()) {
        c.push(p("system_id"), format!("duplicate account \"{system_id}\""));
    }

    let credential = match (&e.password, &e.password_hash) {
        (Some(_), Some(_)) => {
            c.push(
                p("password"),
                "set either password or password_hash, not both",
            );
            None
        }
        (None, None) => {
            c.push(
                p("password"),
                "one of password or password_hash is required",
            );
            None
        }
        (Some(pw), None) => match password::check_password(pw) {
            Ok(()) => Some(Credential::Plain(pw.clone())),
            Err(problem) => {
                c.push(p("password"), problem);
                None
            }
        },
        (None, Some(h)) => match password::check_hash(h) {
            Ok(cost) => {
                if cost.below_owasp() {
                    c.warnings.push(format!(
                        "{}: argon2 m={} KiB, t={} is below OWASP's minimum (m=19456 KiB, \
                         t=2, or an equivalent); consider a new hash",
                        p("password_hash"),
                        cost.m,
                        cost.t
                    ));
                }
                Some(Credential::Argon2(h.clone()))
            }
            Err(problem) => {
                c.push(p("password_hash"), problem);
                None
            }
        },
    };

    let allowed_bind_types = match &e.allowed_bind_types {
        None => BindTypes::ALL,
        Some(list) => {
            if list.is_empty() {
                c.push(
                    p("allowed_bind_types"),
                    "must not be empty (omit it to allow all)",
                );
            }
            let mut t = BindTypes {
                transmitter: false,
                receiver: false,
                transceiver: false,
            };
            for (j, name) in list.iter().enumerate() {
                match name.as_str() {
                    "transmitter" | "tx" => t.transmitter = true,
                    "receiver" | "rx" => t.receiver = true,
                    "transceiver" | "trx" => t.transceiver = true,
                    other => c.push(
                        format!("esme[{i}].allowed_bind_types[{j}]"),
                        format!("unknown bind type \"{other}\"; use transmitter, receiver or transceiver"),
                    ),
                }
            }
            t
        }
    };

    let mut allowed_addresses = Vec::new();
    for (j, a) in e.allowed_addresses.iter().flatten().enumerate() {
        let parsed = a
            .parse::<IpNet>()
            .or_else(|_| a.parse::<std::net::IpAddr>().map(IpNet::from));
        match parsed {
            Ok(net) => allowed_addresses.push(net.trunc()),
            Err(_) => c.push(
                format!("esme[{i}].allowed_addresses[{j}]"),
                format!("invalid CIDR \"{a}\""),
            ),
        }
    }

    let max_binds = c.int(&p("max_binds"), e.max_binds, 10, 1, 100_000) as usize;
    let window = c.int(&p("window"), e.window, 10, 1, MAX_WINDOW) as usize;
    let throughput = match (e.throughput, e.burst) {
        (None, None) => None,
        (None, Some(_)) => {
            c.push(p("burst"), "needs throughput");
            None
        }
        (Some(t), burst) => {
            let per_second = c.int(&p("throughput"), Some(t), 1, 1, 1_000_000) as u32;
            let burst = c.int(&p("burst"), burst, per_second as i64, 1, 10_000_000) as u32;
            Some(Throughput { per_second, burst })
        }
    };
    let default_validity = c.duration(
        &p("default_validity"),
        e.default_validity.as_deref(),
        Duration::from_secs(48 * 3600),
    );
    let max_validity = c.duration(
        &p("max_validity"),
        e.max_validity.as_deref(),
        Duration::from_secs(7 * 24 * 3600).max(default_validity),
    );
    if default_validity > max_validity {
        c.push(
            p("default_validity"),
            "must not be longer than max_validity",
        );
    }
    let expiry_mode = match e.expiry_mode.as_deref() {
        None | Some("deliver_partial") => ExpiryMode::DeliverPartial,
        Some("expire_whole") => ExpiryMode::ExpireWhole,
        Some(other) => {
            c.push(
                p("expiry_mode"),
                format!("must be \"deliver_partial\" or \"expire_whole\", got \"{other}\""),
            );
            ExpiryMode::DeliverPartial
        }
    };
    let default_alphabet = match e.default_alphabet.as_deref() {
        None => DefaultAlphabet::Gsm7,
        Some(name) => DefaultAlphabet::parse(name).unwrap_or_else(|| {
            c.push(
                p("default_alphabet"),
                format!("must be \"gsm7\", \"ascii\" or \"latin1\", got \"{name}\""),
            );
            DefaultAlphabet::Gsm7
        }),
    };
    let message_id_format = match e.message_id_format.as_deref() {
        None | Some("hex") => MessageIdFormat::Hex,
        Some("decimal") => MessageIdFormat::Decimal,
        Some("short") => MessageIdFormat::Short,
        Some(other) => {
            c.push(
                p("message_id_format"),
                format!("must be \"hex\", \"decimal\" or \"short\", got \"{other}\""),
            );
            MessageIdFormat::Hex
        }
    };
    let receipt_pdu = match e.receipt_pdu.as_deref() {
        None | Some("deliver_sm") => ReceiptPdu::DeliverSm,
        Some("data_sm") => ReceiptPdu::DataSm,
        Some(other) => {
            c.push(
                p("receipt_pdu"),
                format!("must be \"deliver_sm\" or \"data_sm\", got \"{other}\""),
            );
            ReceiptPdu::DeliverSm
        }
    };

    let max_pending = c.int(&p("max_pending"), e.max_pending, 100_000, 1, 1_000_000_000) as u64;
    let max_pending_bytes = c.int(
        &p("max_pending_bytes"),
        e.max_pending_bytes,
        64 * 1024 * 1024,
        1,
        1_i64 << 52, // exact in a Lua number
    ) as u64;
    // 254: the most a short_message holds; message_payload may carry up to 64 KB.
    let max_segment_octets = c.int(
        &p("max_segment_octets"),
        e.max_segment_octets,
        254,
        1,
        65_535,
    ) as usize;
    let max_queued_receipts = c.int(
        &p("max_queued_receipts"),
        e.max_queued_receipts,
        100_000,
        1,
        1_000_000_000,
    ) as u64;

    if c.problems.len() != before {
        return None;
    }
    Some(Account {
        system_id,
        credential: credential?,
        allowed_bind_types,
        allowed_addresses,
        max_binds,
        throughput,
        window,
        default_validity,
        max_validity,
        tls_required: e.tls_required.unwrap_or(false),
        enabled: e.enabled.unwrap_or(true),
        expiry_mode,
        default_alphabet,
        receipt_pdu,
        message_id_format,
        max_pending,
        max_pending_bytes,
        max_segment_octets,
        max_queued_receipts,
    })
}

/// `[redis] max_pending_bytes` when not set: 1 GiB of user data.
const DEFAULT_STORE_BYTES: i64 = 1024 * 1024 * 1024;

/// The host name, so outcome documents say which machine processed them.
fn default_node_id() -> String {
    std::fs::read_to_string("/etc/hostname")
        .ok()
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "smppd".to_string())
}
