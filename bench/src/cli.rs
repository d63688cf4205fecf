//! Command line: subcommands and the small value parsers (message mix, validity range,
//! `NAME=PID` watches). Parsers are plain functions so the unit tests can reach them.

use std::net::SocketAddr;
use std::str::FromStr;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

#[derive(Debug, Parser)]
#[command(
    name = "smppd-bench",
    version,
    about = "SMPP v3.4 load generator: throughput, submit_sm_resp latency, receipt latency, expiry lateness"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Bind sessions and submit messages; measure responses and receipts.
    Run(Box<RunArgs>),
    /// Bind N sessions, keep them idle for a while, report the server's RSS per session.
    Idle(IdleArgs),
    /// The Mongo-protocol server's own bulk-insert rate (insert_many of outcome-like documents).
    MongoInsert(MongoInsertArgs),
    /// Wait until a collection holds N more documents; report the rate they arrived at.
    MongoDrain(MongoDrainArgs),
    /// Hold `run --record` files against the outcome documents in MongoDB: every
    /// acknowledged segment in exactly one outcome, every requested receipt received.
    Verify(VerifyArgs),
}

#[derive(Debug, Clone, Args)]
pub struct VerifyArgs {
    /// Record files written by `run --record` (repeatable: several runs against the
    /// same key prefix and database).
    #[arg(long = "record", required = true)]
    pub records: Vec<std::path::PathBuf>,
    #[arg(long, default_value = "mongodb://127.0.0.1:27017")]
    pub uri: String,
    #[arg(long, default_value = "smppd")]
    pub database: String,
    #[arg(long, default_value = "outcomes")]
    pub collection: String,
    /// Only the outcomes of this account (when other runs share the database).
    #[arg(long)]
    pub account: Option<String>,
    /// Before comparing, wait until smppd has nothing left to do in this Redis: no
    /// pending deadline, nothing in the outbox, no queued receipt (`host:port`).
    #[arg(long)]
    pub redis: Option<SocketAddr>,
    /// smppd's `key_prefix` in that Redis.
    #[arg(long, default_value = "smppd:")]
    pub prefix: String,
    #[arg(long, default_value = "180s", value_parser = humantime::parse_duration)]
    pub drain_timeout: Duration,
    /// During the drain, a receiver bound as `SYSTEM_ID:PASSWORD` (repeatable) on each
    /// `--smpp` address, answering every deliver_sm/data_sm ESME_ROK. The load's
    /// ESMEs unbind once they have every receipt, but smppd keeps a receipt it cannot
    /// know was delivered (its process was killed between the deliver_sm_resp and
    /// recording it) queued until a receiver of the account binds or the receipt's
    /// lifetime ends: an ESME that binds again gets it again. Without one, such a
    /// receipt held the drain for its whole lifetime.
    #[arg(long = "drain-bind", value_parser = parse_credentials)]
    pub drain_binds: Vec<(String, String)>,
    /// smppd's SMPP addresses for the `--drain-bind` receivers (repeat or
    /// comma-separate: the live nodes).
    #[arg(long = "smpp", value_delimiter = ',')]
    pub smpp: Vec<SocketAddr>,
    /// The account expires incomplete messages whole (`expiry_mode = "expire_whole"`):
    /// partial messages end EXPIRED with EXPIRED receipts, not PARTIAL.
    #[arg(long)]
    pub expire_whole: bool,
    #[arg(long, default_value = "verify")]
    pub label: String,
    #[arg(long)]
    pub json: Option<std::path::PathBuf>,
}

/// Where to connect and as whom.
#[derive(Debug, Clone, Args)]
pub struct Target {
    /// SMSC address; repeat (or comma-separate) for several nodes: session i binds
    /// to address i mod n, and a rebinding session tries the next one.
    #[arg(
        long,
        default_value = "127.0.0.1:2775",
        value_delimiter = ',',
        required = false
    )]
    pub addr: Vec<SocketAddr>,
    #[arg(long, default_value = "bench")]
    pub system_id: String,
    #[arg(long, default_value = "bench")]
    pub password: String,
    /// Scenario name used in the report.
    #[arg(long, default_value = "run")]
    pub label: String,
    /// Report CPU seconds and RSS of these processes over the measured phase
    /// (`NAME=PID`, repeatable), e.g. `--watch smppd=1234 --watch redis=1240`.
    #[arg(long = "watch", value_parser = parse_watch)]
    pub watch: Vec<(String, u32)>,
    /// Write the report as JSON here.
    #[arg(long)]
    pub json: Option<std::path::PathBuf>,
}

#[derive(Debug, Clone, Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub target: Target,
    /// Transmitter sessions (submit only).
    #[arg(long, default_value_t = 0)]
    pub tx: usize,
    /// Receiver sessions (receipts only).
    #[arg(long, default_value_t = 0)]
    pub rx: usize,
    /// Transceiver sessions (submit and receipts).
    #[arg(long, default_value_t = 4)]
    pub trx: usize,
    /// Unanswered submit_sm per submitting session.
    #[arg(long, default_value_t = 64)]
    pub window: usize,
    /// Offered submit_sm (segments) per second over all sessions; 0 = as fast as possible.
    #[arg(long, default_value_t = 0)]
    pub rate: u64,
    /// Stop submitting after this long (e.g. `10s`).
    #[arg(long, value_parser = humantime::parse_duration)]
    pub duration: Option<Duration>,
    /// Stop after this many messages (all sessions together).
    #[arg(long)]
    pub count: Option<u64>,
    /// Message mix: `KIND[xK][=WEIGHT],...`, KIND = single|udh8|udh16|sar, K parts
    /// (default 3), e.g. `single=70,udh8x3=10,udh16x2=10,sarx3=10`.
    #[arg(long, default_value = "single", value_parser = parse_mix)]
    pub mix: Mix,
    /// Alphabet of the text.
    #[arg(long, value_enum, default_value_t = Coding::Gsm)]
    pub coding: Coding,
    /// Characters of a single-part message (capped at 160 GSM / 70 UCS-2); parts of
    /// concatenated messages are always full.
    #[arg(long, default_value_t = 100)]
    pub chars: usize,
    /// registered_delivery of every segment (1 = receipt always, 0 = none).
    #[arg(long, default_value_t = 1)]
    pub registered_delivery: u8,
    /// validity_period: `DUR` or `MIN..MAX` (uniform per message), sent as an absolute
    /// time with tenths of a second; omitted = NULL (account default).
    #[arg(long, value_parser = parse_validity)]
    pub validity: Option<Validity>,
    /// Fraction (0..=1) of concatenated messages sent without their last segment, so
    /// they stay partial until their deadline.
    #[arg(long, default_value_t = 0.0)]
    pub partial: f64,
    /// Do not expect receipts (ack-only SMSC such as smpp34's perf_smsc).
    #[arg(long)]
    pub no_receipts: bool,
    /// After the last submit_sm_resp, wait this long for missing receipts (measured
    /// from the later of that moment and the latest partial deadline).
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
    pub receipt_wait: Duration,
    /// A submit_sm_resp not received within this time counts as a timeout.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    pub response_timeout: Duration,
    /// Measure Redis `used_memory` (INFO memory) at start and when submission ends,
    /// before any deadline: gives bytes per pending segment (`host:port`).
    #[arg(long)]
    pub redis_info: Option<SocketAddr>,
    /// Seconds of warm-up excluded from the throughput figure (latencies keep all).
    #[arg(long, default_value = "0s", value_parser = humantime::parse_duration)]
    pub warmup: Duration,
    /// First destination number; each message gets its own (unique concatenation keys).
    #[arg(long, default_value_t = 4_917_000_000_000)]
    pub first_dest: u64,
    /// Bind again when a connection ends (next `--addr`), until the run is over.
    #[arg(long)]
    pub reconnect: bool,
    /// Send a segment again, up to this many times, when its connection ended before
    /// the response or it was refused with ESME_RSYSERR, ESME_RMSGQFUL or ESME_RTHROTTLED.
    #[arg(long, default_value_t = 0)]
    pub retry: u32,
    /// Pause before such a resend.
    #[arg(long, default_value = "200ms", value_parser = humantime::parse_duration)]
    pub retry_pause: Duration,
    /// Write every message, acknowledged segment, resend, give-up and receipt here
    /// (input of `smppd-bench verify`).
    #[arg(long)]
    pub record: Option<std::path::PathBuf>,
    /// Receiver and transceiver sessions leave deliver_sm unanswered for this long
    /// after the start (an ESME that stopped answering), then answer again.
    #[arg(long, value_parser = humantime::parse_duration)]
    pub silent_rx: Option<Duration>,
    /// Receiver sessions of the account smppd's routes forward the messages to (A→B):
    /// bound first, they answer every forwarded deliver_sm ESME_ROK and measure
    /// submit → deliver_sm (their message is found by its destination number).
    #[arg(long, default_value_t = 0)]
    pub forward_rx: usize,
    /// The receiving account of `--forward-rx`, as `system_id:password`.
    #[arg(long, default_value = "bench2:bench2")]
    pub forward_to: String,
}

#[derive(Debug, Clone, Args)]
pub struct IdleArgs {
    #[command(flatten)]
    pub target: Target,
    /// Sessions to bind (transmitter binds).
    #[arg(long, default_value_t = 1000)]
    pub sessions: usize,
    /// Concurrent connects during ramp-up.
    #[arg(long, default_value_t = 200)]
    pub concurrency: usize,
    /// How long to hold the binds after all are up.
    #[arg(long, default_value = "5s", value_parser = humantime::parse_duration)]
    pub hold: Duration,
    /// PID of the server whose RSS is reported per session.
    #[arg(long)]
    pub server_pid: u32,
    /// Open TCP connections that never bind (hostile clients) instead of binding.
    #[arg(long)]
    pub no_bind: bool,
    /// With `--no-bind`: each connection sends all but the last octet of a frame whose
    /// command_length is this (a bind header, zero-padded), then waits.
    #[arg(long, requires = "no_bind", value_parser = clap::value_parser!(u32).range(17..))]
    pub partial_frame: Option<u32>,
    /// Spread the connections over this many source addresses, 127.0.0.1 upwards
    /// (for a server's per-address limit; every 127.0.0.0/8 address is loopback).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=254))]
    pub sources: u16,
    /// While the sessions are held, bind one more TRX and submit one message: does
    /// the server still serve a normal client, and how fast.
    #[arg(long)]
    pub probe: bool,
}

#[derive(Debug, Clone, Args)]
pub struct MongoInsertArgs {
    #[arg(long, default_value = "mongodb://127.0.0.1:27017")]
    pub uri: String,
    #[arg(long, default_value = "bench")]
    pub database: String,
    #[arg(long, default_value = "insert_rate")]
    pub collection: String,
    /// Documents to insert.
    #[arg(long, default_value_t = 50_000)]
    pub docs: u64,
    /// Documents per insert_many (smppd's outcome_batch_size is 256).
    #[arg(long, default_value_t = 256)]
    pub batch: usize,
    /// Concurrent insert_many calls.
    #[arg(long, default_value_t = 1)]
    pub concurrency: usize,
    #[arg(long, default_value = "mongo-insert")]
    pub label: String,
    #[arg(long)]
    pub json: Option<std::path::PathBuf>,
}

#[derive(Debug, Clone, Args)]
pub struct MongoDrainArgs {
    #[arg(long, default_value = "mongodb://127.0.0.1:27017")]
    pub uri: String,
    #[arg(long, default_value = "smppd")]
    pub database: String,
    #[arg(long, default_value = "outcomes")]
    pub collection: String,
    /// Count present before the backlog was created.
    #[arg(long)]
    pub base: u64,
    /// Documents expected on top of `base`.
    #[arg(long)]
    pub expect: u64,
    /// smppd's Redis (`host:port`): the drain is timed by its outbox (`ZCARD
    /// <prefix>outbox`, which the writer shrinks only after MongoDB acknowledged), and
    /// MongoDB is asked once at the end. Polling the document count instead costs the
    /// Mongo-protocol server a scan every 20 ms, which slowed the writer it measures
    /// (inserts took 95 → 325 ms per batch of 256 as the collection grew to 20k).
    #[arg(long)]
    pub redis: Option<std::net::SocketAddr>,
    /// smppd's `key_prefix` in that Redis.
    #[arg(long, default_value = "smppd:")]
    pub prefix: String,
    #[arg(long, default_value = "120s", value_parser = humantime::parse_duration)]
    pub timeout: Duration,
    #[arg(long, default_value = "mongo-drain")]
    pub label: String,
    #[arg(long)]
    pub json: Option<std::path::PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Coding {
    Gsm,
    Ucs2,
}

/// How the parts of a message are tied together.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Single,
    Udh8,
    Udh16,
    Sar,
}

/// One entry of the mix.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct MixEntry {
    pub kind: Kind,
    /// Parts (1 for single).
    pub parts: u8,
    pub weight: f64,
}

/// Weighted message kinds; picked per message.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Mix(pub Vec<MixEntry>);

impl Mix {
    /// The entry for a uniform `u` in [0, 1).
    pub fn pick(&self, u: f64) -> MixEntry {
        let total: f64 = self.0.iter().map(|e| e.weight).sum();
        let mut x = u * total;
        for e in &self.0 {
            if x < e.weight {
                return *e;
            }
            x -= e.weight;
        }
        // Rounding at the top end: the last entry.
        self.0[self.0.len() - 1]
    }
}

impl std::fmt::Display for Mix {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let parts: Vec<String> = self
            .0
            .iter()
            .map(|e| {
                let k = match e.kind {
                    Kind::Single => "single".to_string(),
                    Kind::Udh8 => format!("udh8x{}", e.parts),
                    Kind::Udh16 => format!("udh16x{}", e.parts),
                    Kind::Sar => format!("sarx{}", e.parts),
                };
                format!("{k}={}", e.weight)
            })
            .collect();
        f.write_str(&parts.join(","))
    }
}

pub fn parse_mix(s: &str) -> Result<Mix, String> {
    let mut out = Vec::new();
    for item in s.split(',').map(str::trim).filter(|i| !i.is_empty()) {
        let (spec, weight) = match item.split_once('=') {
            Some((a, w)) => (
                a,
                w.parse::<f64>()
                    .map_err(|_| format!("mix entry {item:?}: weight {w:?} is not a number"))?,
            ),
            None => (item, 1.0),
        };
        if !(weight.is_finite() && weight >= 0.0) {
            return Err(format!("mix entry {item:?}: weight must be >= 0"));
        }
        let (name, parts) = match spec.split_once('x') {
            Some((n, k)) => (
                n,
                Some(
                    k.parse::<u8>()
                        .map_err(|_| format!("mix entry {item:?}: parts {k:?} is not 2..=255"))?,
                ),
            ),
            None => (spec, None),
        };
        let kind = match name {
            "single" => Kind::Single,
            "udh8" => Kind::Udh8,
            "udh16" => Kind::Udh16,
            "sar" => Kind::Sar,
            other => {
                return Err(format!(
                    "mix entry {item:?}: unknown kind {other:?} (single, udh8, udh16, sar)"
                ))
            }
        };
        let parts = match (kind, parts) {
            (Kind::Single, None | Some(1)) => 1,
            (Kind::Single, Some(_)) => {
                return Err(format!("mix entry {item:?}: single has 1 part"))
            }
            (_, None) => 3,
            (_, Some(k)) if k >= 2 => k,
            (_, Some(_)) => return Err(format!("mix entry {item:?}: parts must be 2..=255")),
        };
        out.push(MixEntry {
            kind,
            parts,
            weight,
        });
    }
    if out.is_empty() || out.iter().all(|e| e.weight == 0.0) {
        return Err("mix is empty".into());
    }
    Ok(Mix(out))
}

/// A validity period: fixed or uniform in `[min, max]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Validity {
    #[serde(with = "millis")]
    pub min: Duration,
    #[serde(with = "millis")]
    pub max: Duration,
}

mod millis {
    use std::time::Duration;
    pub fn serialize<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(d.as_millis() as u64)
    }
}

pub fn parse_validity(s: &str) -> Result<Validity, String> {
    let d = |x: &str| humantime::parse_duration(x.trim()).map_err(|e| format!("{x:?}: {e}"));
    let (min, max) = match s.split_once("..") {
        Some((a, b)) => (d(a)?, d(b)?),
        None => (d(s)?, d(s)?),
    };
    if max < min {
        return Err(format!("validity {s:?}: MAX below MIN"));
    }
    if min < Duration::from_secs(1) {
        return Err(format!("validity {s:?}: at least 1s"));
    }
    Ok(Validity { min, max })
}

pub fn parse_watch(s: &str) -> Result<(String, u32), String> {
    let (name, pid) = s
        .split_once('=')
        .ok_or_else(|| format!("watch {s:?}: expected NAME=PID"))?;
    let pid = u32::from_str(pid.trim()).map_err(|_| format!("watch {s:?}: PID not a number"))?;
    Ok((name.trim().to_string(), pid))
}

/// `SYSTEM_ID:PASSWORD` (the password may hold ':').
pub fn parse_credentials(s: &str) -> Result<(String, String), String> {
    match s.split_once(':') {
        Some((id, pw)) if !id.is_empty() => Ok((id.to_string(), pw.to_string())),
        _ => Err(format!("{s:?}: expected SYSTEM_ID:PASSWORD")),
    }
}

impl RunArgs {
    /// Checks combinations clap cannot express.
    pub fn validate(&self) -> Result<(), String> {
        if self.tx + self.trx == 0 {
            return Err("need at least one submitting session (--tx or --trx)".into());
        }
        if self.window == 0 {
            return Err("--window must be at least 1".into());
        }
        if self.forward_rx > 0 && !self.expects_receipts() {
            return Err("--forward-rx measures with receipts: keep --registered-delivery 1".into());
        }
        if self.duration.is_none() && self.count.is_none() {
            return Err("give --duration or --count".into());
        }
        if !(0.0..=1.0).contains(&self.partial) {
            return Err("--partial must be within 0..=1".into());
        }
        if self.partial > 0.0 && self.validity.is_none() {
            return Err(
                "--partial needs --validity (the deadline the lateness is measured against)".into(),
            );
        }
        if !self.no_receipts && self.registered_delivery & 0x03 != 0 && self.rx + self.trx == 0 {
            return Err("receipts requested but no --rx/--trx session to receive them (or pass --no-receipts)".into());
        }
        Ok(())
    }

    /// Whether receipts are tracked at all.
    pub fn expects_receipts(&self) -> bool {
        !self.no_receipts && self.registered_delivery & 0x03 == 1
    }

    /// The `--forward-to` account's system_id and password.
    pub fn forward_account(&self) -> (&str, &str) {
        self.forward_to
            .split_once(':')
            .unwrap_or((self.forward_to.as_str(), ""))
    }
}
