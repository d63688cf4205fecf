//! Shared helpers of the integration tests (one module tree, used by every test
//! module as `crate::support::…`):
//!
//! * [`servers`] — real Redis / Valkey / Mongo-protocol servers on free ports;
//! * [`cluster`] — Redis / Valkey clusters of such servers: failover, slot moves;
//! * [`backend`] — the Redis of a test: one server or a cluster, and [`both!`](backend::both);
//! * [`smpp_client`] — a small SMPP client over plain or TLS sockets;
//! * [`server_harness`] — smppd's SMPP server in-process with a recording service;
//! * [`local_limits`] — that service's account limits, one node's, in memory;
//! * [`hostile`] — fixtures, raw sockets and checks of the hostile/security tests;
//! * [`harness`] — the store driven directly;
//! * [`e2e`] — the whole smppd over real sockets;
//! * [`webdriver`] — headless Chromium for the console test;
//! * [`own_process`] — one test alone in a process of its own.
//!
//! Not every helper is used by some test, hence the `dead_code` allowance on this
//! module in `main.rs`.

pub mod backend;
pub mod cluster;
pub mod e2e;
pub mod harness;
pub mod hostile;
pub mod local_limits;
pub mod own_process;
pub mod server_harness;
pub mod servers;
pub mod smpp_client;
pub mod webdriver;
