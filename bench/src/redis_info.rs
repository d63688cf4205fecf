//! `used_memory` of a Redis/Valkey server via one inline `INFO memory` command (no
//! client library needed for one number).

use std::net::SocketAddr;

use anyhow::{bail, Context};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

pub async fn used_memory(addr: SocketAddr) -> anyhow::Result<u64> {
    let mut s = TcpStream::connect(addr)
        .await
        .with_context(|| format!("redis {addr}"))?;
    s.write_all(b"INFO memory\r\n").await?;
    let mut r = BufReader::new(s);
    let mut head = String::new();
    r.read_line(&mut head).await?;
    let len: usize = match head.trim_end().strip_prefix('$') {
        Some(n) => n.parse().context("INFO reply length")?,
        None => bail!("unexpected INFO reply: {head:?}"),
    };
    let mut body = vec![0u8; len];
    r.read_exact(&mut body).await?;
    parse_used_memory(&String::from_utf8_lossy(&body)).context("no used_memory in INFO memory")
}

pub fn parse_used_memory(info: &str) -> Option<u64> {
    info.lines()
        .find_map(|l| l.strip_prefix("used_memory:"))
        .and_then(|v| v.trim().parse().ok())
}

/// Sends one command (RESP array) and returns its integer reply: enough for ZCARD,
/// SCARD and DBSIZE, which is all `verify` asks.
pub async fn integer(addr: SocketAddr, args: &[&str]) -> anyhow::Result<i64> {
    let mut s = TcpStream::connect(addr)
        .await
        .with_context(|| format!("redis {addr}"))?;
    let mut req = format!("*{}\r\n", args.len());
    for a in args {
        req.push_str(&format!("${}\r\n{a}\r\n", a.len()));
    }
    s.write_all(req.as_bytes()).await?;
    let mut r = BufReader::new(s);
    let mut line = String::new();
    r.read_line(&mut line).await?;
    match line.trim_end().strip_prefix(':') {
        Some(n) => n.parse().context("integer reply"),
        None => bail!("{args:?}: unexpected reply {line:?}"),
    }
}
