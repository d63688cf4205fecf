//! smppd: an SMSC-side SMPP v3.4 server.
//!
//! # Layout
//! - `app`: the store behind the listeners, started as one value.
//! - `config`: `config.toml` → validated [`config::Config`] (every problem at once).
//! - `tls`: rustls server config from PEM files.
//! - `logging`: tracing subscriber (human / JSON).
//! - `metrics`: Prometheus `/metrics` and `/healthz` endpoint.
//! - `admin`: the operator API and web console (bearer tokens), and its CLI client.
//! - `auth`: bind checks (uniform refusals), password verification, the per-address
//!   bind failure tracker.
//! - `session`: the SMPP state machine per connection, and the session registry.
//! - `admission`: which accepted connections may stay (total, per source, unbound share).
//! - `server`: listeners, shutdown, reload.
//! - `service`: the port between sessions and the message store.
//! - `store`: segments in Redis, event-driven expiry, outcomes in MongoDB, receipts.

pub mod admin;
pub mod admission;
pub mod app;
pub mod auth;
pub mod config;
pub mod logging;
pub mod metrics;
pub mod routing;
pub mod server;
pub mod service;
pub mod session;
pub mod simulate;
pub mod store;
pub mod tls;
