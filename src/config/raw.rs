//! The config file exactly as written, before validation.
//!
//! Values whose validity we want to report *together* (durations, CIDRs, enum names,
//! addresses) are kept as strings here: serde stops at the first bad value, while
//! `validate` walks everything and collects every problem with its key path.

use serde::Deserialize;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    #[serde(default)]
    pub server: RawServer,
    #[serde(default)]
    pub redis: RawRedis,
    #[serde(default)]
    pub mongodb: RawMongo,
    #[serde(default)]
    pub receipts: RawReceipts,
    #[serde(default)]
    pub metrics: RawMetrics,
    #[serde(default)]
    pub admin: RawAdmin,
    #[serde(default)]
    pub esme: Vec<RawEsme>,
    #[serde(default)]
    pub route: Vec<RawRoute>,
    #[serde(default)]
    pub delivery: RawDelivery,
    #[serde(default)]
    pub simulate: Vec<RawSimulate>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSimulate {
    pub name: Option<String>,
    pub seed: Option<i64>,
    #[serde(default)]
    pub outcomes: Vec<RawSimOutcome>,
    pub delay: Option<String>,
    #[serde(default)]
    pub submit_errors: Vec<RawSimError>,
    /// Any TOML value, so that a wrong one is reported with its key.
    pub intermediate: Option<toml::Value>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSimOutcome {
    pub stat: Option<String>,
    pub weight: Option<i64>,
    pub err: Option<i64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSimError {
    pub status: Option<String>,
    pub percent: Option<f64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRoute {
    pub destination: Option<String>,
    pub source: Option<String>,
    pub from: Option<Vec<String>>,
    pub target: Option<String>,
    pub segments: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawDelivery {
    pub default: Option<String>,
    pub permanent: Option<Vec<String>>,
    pub retry_min: Option<String>,
    pub retry_max: Option<String>,
    pub partial_grace: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawServer {
    pub system_id: Option<String>,
    pub node_id: Option<String>,
    pub listen: Option<String>,
    pub tls_listen: Option<String>,
    pub tls_cert: Option<String>,
    pub tls_key: Option<String>,
    pub max_connections: Option<i64>,
    pub max_connections_per_ip: Option<i64>,
    pub max_unbound_connections: Option<i64>,
    pub bind_timeout: Option<String>,
    pub enquire_link_interval: Option<String>,
    pub response_timeout: Option<String>,
    pub outbound_window: Option<i64>,
    pub outbound_retries: Option<i64>,
    pub shutdown_grace: Option<String>,
    pub max_pdu_len: Option<i64>,
    pub log_format: Option<String>,
    pub log_message_text: Option<bool>,
    #[serde(default)]
    pub bind_failures: RawBindFailures,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawBindFailures {
    pub max_failures: Option<i64>,
    pub window: Option<String>,
    pub block_for: Option<String>,
    pub delay: Option<String>,
    pub max_tracked: Option<i64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRedis {
    pub url: Option<String>,
    pub cluster: Option<bool>,
    pub tls_ca: Option<String>,
    pub seeds: Option<Vec<String>>,
    pub ack_replicas: Option<i64>,
    pub ack_timeout: Option<String>,
    pub key_prefix: Option<String>,
    pub configure_keyspace_events: Option<bool>,
    pub max_pending: Option<i64>,
    pub max_pending_bytes: Option<i64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawMongo {
    pub uri: Option<String>,
    pub database: Option<String>,
    pub retention_days: Option<i64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawReceipts {
    pub lifetime: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawMetrics {
    pub listen: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAdmin {
    pub listen: Option<String>,
    #[serde(default)]
    pub tokens: Vec<RawAdminToken>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAdminToken {
    pub token: Option<String>,
    pub token_hash: Option<String>,
    pub role: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawEsme {
    pub system_id: Option<String>,
    pub password: Option<String>,
    pub password_hash: Option<String>,
    pub allowed_bind_types: Option<Vec<String>>,
    pub allowed_addresses: Option<Vec<String>>,
    pub max_binds: Option<i64>,
    pub throughput: Option<i64>,
    pub burst: Option<i64>,
    pub window: Option<i64>,
    pub default_validity: Option<String>,
    pub max_validity: Option<String>,
    pub tls_required: Option<bool>,
    pub enabled: Option<bool>,
    pub expiry_mode: Option<String>,
    pub default_alphabet: Option<String>,
    pub receipt_pdu: Option<String>,
    pub max_pending: Option<i64>,
    pub max_pending_bytes: Option<i64>,
    pub max_segment_octets: Option<i64>,
    pub max_queued_receipts: Option<i64>,
    pub message_id_format: Option<String>,
}
