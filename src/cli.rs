//! Command line: `serve`, `check-config`, `pdu`, the admin API clients (`binds`,
//! `message`, `unbind`) and `hash-password`.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

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
    /// List the live binds of every node (admin API, any token).
    Binds {
        #[command(flatten)]
        admin: AdminArgs,
        /// Print the API's JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Show a message's state by any of its segments' message_ids (admin API).
    Message {
        message_id: String,
        #[command(flatten)]
        admin: AdminArgs,
    },
    /// Unbind a bind by its id, or every bind of a system_id, on the node the admin
    /// URL points at (admin API, a token with role "admin"). The ESME is sent unbind,
    /// then the connection is closed.
    Unbind {
        /// A bind id (from `smppd binds`) or a system_id.
        target: String,
        #[command(flatten)]
        admin: AdminArgs,
    },
    /// Print an argon2id PHC string (for `password_hash` or `token_hash`) of the
    /// secret read from stdin (one line; its line end is not part of it).
    HashPassword,
}

/// Where the admin API is.
#[derive(Debug, Args)]
pub struct AdminArgs {
    /// The admin listener (`[admin] listen`) as http://host:port.
    #[arg(long, default_value = "http://127.0.0.1:9776", env = "SMPPD_ADMIN_URL")]
    pub admin_url: String,
    /// Bearer token; prefer the environment variable (argv is visible to `ps`).
    #[arg(long, env = "SMPPD_ADMIN_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
}
