//! The `smppd` binary: command line dispatch only; everything else is in the library.

mod admin_cli;
mod cli;
mod pdu_cli;

use std::process::ExitCode;

use clap::Parser;

use cli::{Cli, Command};
use std::sync::Arc;

use smppd::app::App;
use smppd::config::{Config, ConfigSource};

// jemalloc instead of glibc's malloc: at ~17k submit_sm/s glibc's malloc/free/
// consolidate were ~30 % of smppd's CPU (perf). Measured side by side (BENCHMARKS.md):
// jemalloc 0.76 x the CPU per message, 23 KiB per idle bind (glibc 19); mimalloc was
// 0.8 x but 33 KiB per idle bind, over the 32 KiB budget.
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

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
        Command::Binds { admin, json } => exit("binds", admin_cli::binds(&admin, json)),
        Command::Message { message_id, admin } => {
            exit("message", admin_cli::message(&admin, &message_id))
        }
        Command::Unbind { target, admin } => exit("unbind", admin_cli::unbind(&admin, &target)),
        Command::HashPassword => exit("hash-password", admin_cli::hash_password()),
    }
}

fn exit(command: &str, result: anyhow::Result<()>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("smppd {command}: {e:#}");
            ExitCode::FAILURE
        }
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
        let app = App::start(ConfigSource::File(path), config).await?;
        smppd::server::spawn_signal_handlers(app.handle())?;
        app.run().await
    })
}
