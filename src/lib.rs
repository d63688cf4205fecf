//! smppd: an SMSC-side SMPP v3.4 server.
//!
//! # Layout
//! - `config`: `config.toml` → validated [`config::Config`] (every problem at once).
//! - `tls`: rustls server config from PEM files.
//! - `logging`: tracing subscriber (human / JSON).
//! - `service`: the port between sessions and the message store.

pub mod config;
pub mod logging;
pub mod service;
pub mod tls;
