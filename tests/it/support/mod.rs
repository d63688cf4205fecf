//! Shared helpers of the integration tests (one module tree, used by every test
//! module as `crate::support::…`). One of each: one SMPP client, one config builder,
//! one macro for "run on Redis 7.0 and Valkey 9", one wait.
//!
//! * [`esme`] — the SMPP client ([`esme::Esme`]): plain or TLS, read one PDU at a
//!   time (server, state, hostile tests) or answering in the background, deliveries
//!   collected (end-to-end tests);
//! * [`config`] — the config builder ([`config::TestConfig`]) of every config.toml a
//!   test writes;
//! * [`backend`] — the Redis of a test: one server or a 3-primary cluster; the macro
//!   [`both!`](backend::both) (`both!(name, …)`: Redis 7.0 and Valkey 9, standalone
//!   and clustered; `both!(standalone name, …)`: the two standalone) and
//!   [`backend::wait_dbsize`];
//! * [`wait_for`] — waits for a condition of state that tells no one when it
//!   changes (a PDU, a delivery or a notification is awaited instead);
//! * [`messages`] — submit_sm and segment builders, GSM / UCS-2 text, readers of the
//!   outcome documents;
//! * [`servers`] — real Redis / Valkey / Mongo-protocol servers on free ports;
//! * [`cluster`] — Redis / Valkey clusters of such servers: failover, slot moves;
//! * [`server_harness`] — smppd's SMPP server in-process with a recording service;
//! * [`local_limits`] — that service's account limits, one node's, in memory;
//! * [`harness`] — the store driven directly, with a receipt sink standing in for the
//!   sessions;
//! * [`e2e`] — the whole smppd (in-process or the spawned binary) on real servers;
//! * [`hostile`] — fixtures, raw sockets (bytes no client would send) and checks of
//!   the hostile/security tests;
//! * [`webdriver`] — headless Chromium for the console test;
//! * [`own_process`] — one test alone in a process of its own.
//!
//! Not every helper is used by some test, hence the `dead_code` allowance on this
//! module in `main.rs`.

pub mod backend;
pub mod cluster;
pub mod config;
pub mod e2e;
pub mod esme;
pub mod harness;
pub mod hostile;
pub mod local_limits;
pub mod messages;
pub mod own_process;
pub mod server_harness;
pub mod servers;
pub mod webdriver;

/// What a [`wait_for`] check answers: `bool` (ready or not), `Option<T>` (ready
/// with `T`), or `Result<T, String>` (ready with `T`, or why not yet: the last reason
/// is shown on timeout).
pub trait Ready {
    type Output;
    /// The value once ready; else why not, if the check says.
    fn ready(self) -> Result<Self::Output, Option<String>>;
}

impl Ready for bool {
    type Output = ();
    fn ready(self) -> Result<(), Option<String>> {
        self.then_some(()).ok_or(None)
    }
}

impl<T> Ready for Option<T> {
    type Output = T;
    fn ready(self) -> Result<T, Option<String>> {
        self.ok_or(None)
    }
}

impl<T> Ready for Result<T, String> {
    type Output = T;
    fn ready(self) -> Result<T, Option<String>> {
        self.map_err(Some)
    }
}

/// Waits until `check` is ready and returns what it gave: re-checked after short
/// pauses (5 ms, doubling up to 50 ms); panics naming `what` after `timeout`. For
/// state that tells no one when it changes (a registry, Redis keys, a scrape); where
/// an event can be awaited (a PDU, a notification), a test awaits that instead.
pub async fn wait_for<R: Ready>(
    what: &str,
    timeout: std::time::Duration,
    mut check: impl AsyncFnMut() -> R,
) -> R::Output {
    let start = std::time::Instant::now();
    let mut pause = std::time::Duration::from_millis(5);
    loop {
        let why = match check().await.ready() {
            Ok(v) => return v,
            Err(why) => why,
        };
        assert!(
            start.elapsed() < timeout,
            "timed out after {timeout:?} waiting for {what}{}",
            why.map(|w| format!(": {w}")).unwrap_or_default()
        );
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(std::time::Duration::from_millis(50));
    }
}
