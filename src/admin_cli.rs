//! `smppd binds`, `message`, `unbind` (clients of the admin API) and `hash-password`.

use std::io::{Read, Write};

use anyhow::{bail, Context};
use smppd::admin::api::BindsReply;
use smppd::admin::client::AdminClient;

use crate::cli::AdminArgs;

fn client(args: &AdminArgs) -> anyhow::Result<AdminClient> {
    AdminClient::new(&args.admin_url, args.token.as_deref().unwrap_or_default())
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?)
}

pub fn binds(args: &AdminArgs, json: bool) -> anyhow::Result<()> {
    let c = client(args)?;
    let reply = runtime()?.block_on(c.binds())?;
    let mut out = std::io::stdout().lock();
    if json {
        serde_json::to_writer_pretty(&mut out, &reply)?;
        writeln!(out)?;
    } else {
        write_table(&mut out, &reply)?;
    }
    Ok(())
}

fn write_table(out: &mut impl Write, r: &BindsReply) -> std::io::Result<()> {
    writeln!(
        out,
        "{:<16} {:>6} {:<15} {:<11} {:<22} {:<3} {:<4} {:<20} {:>9} {:>10} {:>8}",
        "NODE",
        "ID",
        "SYSTEM_ID",
        "TYPE",
        "PEER",
        "TLS",
        "VER",
        "BOUND_SINCE",
        "WINDOW",
        "SUBMITS",
        "RECEIPTS"
    )?;
    for b in &r.binds {
        writeln!(
            out,
            "{:<16} {:>6} {:<15} {:<11} {:<22} {:<3} {:<4} {:<20} {:>9} {:>10} {:>8}{}",
            b.node,
            b.id,
            b.system_id,
            b.bind_type,
            b.peer,
            if b.tls { "yes" } else { "no" },
            format!(
                "{:x}.{:x}",
                b.interface_version >> 4,
                b.interface_version & 0xF
            ),
            b.bound_since.format("%Y-%m-%dT%H:%M:%SZ"),
            format!("{}/{}", b.window_in_use, b.window),
            b.submits_ok,
            b.receipts_delivered,
            if b.unbinding { " unbinding" } else { "" }
        )?;
    }
    if let Some(e) = &r.cluster_error {
        writeln!(out, "(other nodes' binds unavailable: {e})")?;
    }
    Ok(())
}

pub fn message(args: &AdminArgs, id: &str) -> anyhow::Result<()> {
    let c = client(args)?;
    let m = runtime()?.block_on(c.message(id))?;
    let mut out = std::io::stdout().lock();
    serde_json::to_writer_pretty(&mut out, &m)?;
    writeln!(out)?;
    Ok(())
}

/// A bind id of the node the URL points at, else every bind of that system_id there.
pub fn unbind(args: &AdminArgs, target: &str) -> anyhow::Result<()> {
    let c = client(args)?;
    let rt = runtime()?;
    let reply = rt.block_on(c.binds())?;
    let here: Vec<_> = reply
        .binds
        .iter()
        .filter(|b| b.node == reply.node)
        .collect();
    let by_id: Vec<u64> = target
        .parse::<u64>()
        .ok()
        .filter(|n| here.iter().any(|b| b.id == *n))
        .into_iter()
        .collect();
    let ids = if by_id.is_empty() {
        here.iter()
            .filter(|b| b.system_id == target)
            .map(|b| b.id)
            .collect()
    } else {
        by_id
    };
    if ids.is_empty() {
        let elsewhere: Vec<&str> = reply
            .binds
            .iter()
            .filter(|b| {
                b.node != reply.node && (b.system_id == target || b.id.to_string() == target)
            })
            .map(|b| b.node.as_str())
            .collect();
        if elsewhere.is_empty() {
            bail!(
                "no live bind {target:?} (bind id or system_id) on node {}",
                reply.node
            );
        }
        bail!(
            "{target:?} is bound on node(s) {}, not on {}: run this against that node's admin URL",
            elsewhere.join(", "),
            reply.node
        );
    }
    for id in ids {
        let r = rt.block_on(c.unbind(id))?;
        println!(
            "unbinding bind {} ({}) on node {}",
            r.id, r.system_id, r.node
        );
    }
    Ok(())
}

/// Reads the secret from stdin, prints its argon2id PHC string (OWASP's m=19 MiB,
/// t=2, p=1, a random 16-octet salt).
pub fn hash_password() -> anyhow::Result<()> {
    use argon2::password_hash::rand_core::OsRng;
    use argon2::password_hash::{PasswordHasher, SaltString};
    let mut input = String::new();
    std::io::stdin()
        .read_to_string(&mut input)
        .context("reading the secret from stdin")?;
    let secret = input
        .strip_suffix('\n')
        .map(|s| s.strip_suffix('\r').unwrap_or(s))
        .unwrap_or(&input);
    if secret.is_empty() {
        bail!("no secret on stdin (e.g. `read -rs S && printf %s \"$S\" | smppd hash-password`)");
    }
    if secret.contains('\n') {
        bail!("the secret must be one line");
    }
    let salt = SaltString::generate(&mut OsRng);
    let phc = argon2::Argon2::default()
        .hash_password(secret.as_bytes(), &salt)
        .map_err(|e| anyhow::anyhow!("argon2: {e}"))?
        .to_string();
    if secret.len() > 8 {
        eprintln!(
            "note: longer than 8 characters: fine for token_hash, but an SMPP bind \
             carries at most 8, so it can never match as an account's password_hash"
        );
    }
    println!("{phc}");
    Ok(())
}
