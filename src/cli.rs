//! Command line: `serve`, `check-config`, `pdu`.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(name = "smppd", version, about = "SMSC-side SMPP v3.4 server")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the server (SIGHUP reloads the config, SIGTERM/SIGINT shut down gracefully).
    Serve {
        #[arg(long, short, default_value = "config.toml", env = "SMPPD_CONFIG")]
        config: PathBuf,
    },
    /// Validate a config file: prints every problem with its key and exits non-zero,
    /// or prints "config OK" and a summary.
    CheckConfig {
        #[arg(long, short, default_value = "config.toml", env = "SMPPD_CONFIG")]
        config: PathBuf,
    },
    /// PDU tools for testers holding a capture.
    Pdu(crate::pdu_cli::PduArgs),
}
