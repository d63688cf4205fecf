//! `smppd-bench`: load generator for smppd (or any SMPP v3.4 SMSC). See BENCHMARKS.md.

mod cli;
mod idle;
mod message;
mod mongo;
mod procwatch;
mod record;
mod redis_info;
mod report;
mod run;
mod session;
mod stats;
mod verify;

use std::path::Path;

use anyhow::Context;
use clap::Parser;

use crate::cli::{Cli, Command};

fn write_json<T: serde::Serialize>(path: Option<&Path>, value: &T) -> anyhow::Result<()> {
    if let Some(p) = path {
        let s = serde_json::to_string_pretty(value)?;
        std::fs::write(p, s + "\n").with_context(|| format!("write {}", p.display()))?;
    }
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Run(args) => {
            let json = args.target.json.clone();
            let r = run::run(*args).await?;
            print!("{}", r.to_table());
            write_json(json.as_deref(), &r)?;
        }
        Command::Idle(args) => {
            let json = args.target.json.clone();
            let r = idle::idle(args).await?;
            print!("{}", r.to_table());
            write_json(json.as_deref(), &r)?;
        }
        Command::MongoInsert(args) => {
            let json = args.json.clone();
            let r = mongo::insert(args).await?;
            print!("{}", r.to_table());
            write_json(json.as_deref(), &r)?;
        }
        Command::Verify(args) => {
            let json = args.json.clone();
            let r = verify::verify(args).await?;
            print!("{}", r.to_table());
            write_json(json.as_deref(), &r)?;
            if !r.ok {
                std::process::exit(1);
            }
        }
        Command::MongoDrain(args) => {
            let json = args.json.clone();
            let r = mongo::drain(args).await?;
            print!("{}", r.to_table());
            write_json(json.as_deref(), &r)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
