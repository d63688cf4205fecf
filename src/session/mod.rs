//! SMPP sessions: one task per connection running the state machine of reference
//! §2 and §10.
//!
//! # Layout
//! - `state`: bind states and which requests each allows.
//! - `conn`: the connection task (reader loop, timers, bind, unbind, shutdown).
//! - `writer`: the task that owns the write half and batches PDUs into flushes.
//! - `inbound`: requests that go to the [`MessageService`], each in its own task.
//! - `submit`: decoded submits → [`crate::service::SubmitRequest`].
//! - `outbound`: our own requests (deliver_sm): sequence numbers, pending table, window.
//! - `registry`: bound sessions by account; implements [`crate::service::ReceiptSink`].
//! - `tokens`: an account's rate on this node, taken in chunks from the budget every
//!   node shares.
//!
//! # Windowing
//! Up to the account's `window` requests of a session are processed at once and
//! answered in completion order. When the window is full the reader simply stops
//! reading the socket until a slot frees: TCP flow control then holds the ESME back
//! (nothing is buffered without bound, nothing is refused for it). The inactivity
//! timer does not run while the reader is held back that way.

mod conn;
mod inbound;
mod outbound;
pub mod registry;
pub mod state;
mod submit;
pub mod tokens;
mod writer;

use std::sync::{Arc, RwLock};

pub use conn::run_session;
pub use outbound::{Outbound, OutboundError};
pub use registry::{
    AccountCountersSnapshot, AccountRuntime, BindSnapshot, Registration, SessionRegistry,
};
pub use state::{BindType, State};

use crate::auth::Authenticator;
use crate::config::Config;
use crate::service::MessageService;

/// What every session shares: the current config, the store, the registry.
pub struct SessionCtx {
    config: RwLock<Arc<Config>>,
    pub service: Arc<dyn MessageService>,
    pub registry: Arc<SessionRegistry>,
    pub auth: Authenticator,
}

impl SessionCtx {
    pub fn new(
        config: Arc<Config>,
        service: Arc<dyn MessageService>,
        registry: Arc<SessionRegistry>,
    ) -> Self {
        publish_text_policy(&config);
        SessionCtx {
            config: RwLock::new(config),
            service,
            registry,
            auth: Authenticator::new(),
        }
    }

    /// The config in force now (a reload swaps it).
    pub fn config(&self) -> Arc<Config> {
        self.config
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Makes `config` current and applies it to live sessions.
    pub fn replace_config(&self, config: Arc<Config>) -> usize {
        publish_text_policy(&config);
        *self.config.write().unwrap_or_else(|e| e.into_inner()) = config.clone();
        self.registry.apply_config(&config)
    }
}

/// Tells the store what data_coding 0 means for each account of `config`.
fn publish_text_policy(config: &Config) {
    crate::service::publish_default_alphabets(
        config
            .accounts
            .iter()
            .map(|a| (a.system_id.as_str(), a.default_alphabet)),
    );
}
