//! The integration tests of smppd, in one binary (`cargo test --test it`): one module
//! per area, the shared helpers under `support/`. Tests run in parallel threads of
//! this one process, so none may rely on process-wide state being its own: see
//! `support::hostile::server_panics`, and the two tests that run alone in a child
//! process (`support::own_process`): one in `metrics_endpoint`, one in
//! `hostile_connections`.
#![allow(clippy::unwrap_used)]

// A few helpers are used by no test (or kept for RAII only, like a TempDir).
#[allow(dead_code)]
mod support;

mod admin_api;
mod admin_console;
mod architecture;
mod deploy_files;
mod e2e_account_limits;
mod e2e_cluster;
mod e2e_delivery;
mod e2e_expiry;
mod e2e_expiry_timers;
mod e2e_faults;
mod e2e_interop_text;
mod e2e_messages;
mod e2e_receipt_interop;
mod e2e_receipt_nodes;
mod e2e_short_ids;
mod e2e_simulate;
mod e2e_skewed_clocks;
mod hostile_binds;
mod hostile_connections;
mod hostile_fixtures;
mod hostile_frames;
mod hostile_tls;
mod metrics_endpoint;
mod security_accounts;
mod security_logs;
mod security_tls;
mod server_bind;
mod server_config;
mod server_flow;
mod server_lifecycle;
mod server_receipts;
mod server_smpp34;
mod server_states;
mod server_tls;
mod store_accept;
mod store_cluster_slots;
mod store_expiry;
mod store_layout;
mod store_outcomes;
mod store_redis_tls;
mod store_scripts;
mod store_servers;
