//! The `smppd` binary: command line dispatch only; everything else is in the library.

mod cli;
mod pdu_cli;

use std::process::ExitCode;

use clap::Parser;

use cli::{Cli, Command};
use std::sync::Arc;

use bytes::Bytes;
use futures::future::BoxFuture;
use smppd::config::{Config, ConfigSource};
use smppd::service::{
    Address, MessageService, QueryAnswer, ServiceError, SubmitAccepted, SubmitRequest,
};
use smppd::session::SessionRegistry;

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::CheckConfig { config } => check_config(&config),
        Command::Serve { config } => match serve(config) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("smppd: {e:#}");
                ExitCode::FAILURE
            }
        },
        Command::Pdu(args) => match pdu_cli::run(args) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("smppd pdu: {e:#}");
                ExitCode::FAILURE
            }
        },
    }
}

fn check_config(path: &std::path::Path) -> ExitCode {
    match Config::load(path) {
        Ok(loaded) => {
            for w in &loaded.warnings {
                println!("warning: {w}");
            }
            println!("config OK");
            println!("{}", loaded.config.summary());
            ExitCode::SUCCESS
        }
        Err(problems) => {
            eprintln!("{}: {} problem(s)", path.display(), problems.0.len());
            for p in &problems.0 {
                eprintln!("  {p}");
            }
            ExitCode::FAILURE
        }
    }
}

fn serve(path: std::path::PathBuf) -> anyhow::Result<()> {
    // Config (and TLS material) is loaded and validated before any port is bound.
    let loaded = Config::load(&path)?;
    smppd::logging::init(loaded.config.server.log_format);
    for w in &loaded.warnings {
        tracing::warn!("{w}");
    }
    let config = Arc::new(loaded.config);
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async move {
        let registry = SessionRegistry::new(&config);
        // LEAD: replace with the real store (it also takes `registry` as its ReceiptSink).
        let service: Arc<dyn MessageService> = Arc::new(StoreNotWired);
        smppd::server::serve(ConfigSource::File(path), config, service, registry).await
    })
}

/// Placeholder message service until the store is wired: every request is answered
/// ESME_RSYSERR.
struct StoreNotWired;

impl StoreNotWired {
    fn err() -> ServiceError {
        ServiceError::Internal("store not wired".into())
    }
}

impl MessageService for StoreNotWired {
    fn submit(&self, _req: SubmitRequest) -> BoxFuture<'_, Result<SubmitAccepted, ServiceError>> {
        Box::pin(async { Err(Self::err()) })
    }

    fn query(
        &self,
        _system_id: &str,
        _message_id: &str,
        _source: &Address,
    ) -> BoxFuture<'_, Result<QueryAnswer, ServiceError>> {
        Box::pin(async { Err(Self::err()) })
    }

    fn cancel(
        &self,
        _system_id: &str,
        _message_id: &str,
        _source: &Address,
        _dest: Option<&Address>,
        _service_type: &str,
    ) -> BoxFuture<'_, Result<(), ServiceError>> {
        Box::pin(async { Err(Self::err()) })
    }

    fn replace(
        &self,
        _system_id: &str,
        _message_id: &str,
        _source: &Address,
        _registered_delivery: u8,
        _validity_period: Bytes,
        _short_message: Bytes,
    ) -> BoxFuture<'_, Result<(), ServiceError>> {
        Box::pin(async { Err(Self::err()) })
    }
}
