//! `smppd-bench idle`: many idle binds (or, with `--no-bind`, connections that never
//! bind, optionally each holding a partial frame), the server's RSS per connection,
//! and whether a normal client is still served meanwhile (`--probe`).

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use futures::{SinkExt, StreamExt};
use smpp_protocol::{Body, COctetString, Pdu, SubmitSm};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::Semaphore;

use crate::cli::IdleArgs;
use crate::procwatch::status_kib;
use crate::session::{bind, BindKind};

#[derive(Debug, Clone, serde::Serialize)]
pub struct IdleReport {
    pub label: String,
    /// "bind" or "no-bind".
    pub mode: String,
    /// command_length of the frame each no-bind connection sent all but one octet of.
    pub partial_frame: Option<u32>,
    pub sessions_requested: usize,
    pub sessions_bound: usize,
    pub bind_failures: usize,
    pub first_failure: Option<String>,
    pub ramp_s: f64,
    /// Connections the server closed during the hold.
    pub closed_by_server: usize,
    pub server_rss_before_kib: u64,
    pub server_rss_bound_kib: u64,
    pub server_rss_per_session_kib: f64,
    pub probe: Option<Probe>,
}

/// One normal client during the hold.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Probe {
    pub bind_ms: f64,
    pub submit_status: String,
    pub submit_ms: f64,
    pub error: Option<String>,
}

impl IdleReport {
    pub fn to_table(&self) -> String {
        let what = match (self.mode.as_str(), self.partial_frame) {
            ("no-bind", Some(len)) => {
                format!("connections (never bound; {len}-octet frame less its last octet)")
            }
            ("no-bind", None) => "connections (never bound)".to_string(),
            _ => "binds".to_string(),
        };
        let mut rows = vec![
            ("scenario".into(), self.label.clone()),
            (
                what,
                format!(
                    "{} of {} in {:.2} s ({} failed{}); closed by the server during the hold: {}",
                    self.sessions_bound,
                    self.sessions_requested,
                    self.ramp_s,
                    self.bind_failures,
                    self.first_failure
                        .as_ref()
                        .map(|f| format!(", first: {f}"))
                        .unwrap_or_default(),
                    self.closed_by_server
                ),
            ),
            (
                "server RSS".into(),
                format!(
                    "{} KiB before, {} KiB held: {:.1} KiB per connection",
                    self.server_rss_before_kib,
                    self.server_rss_bound_kib,
                    self.server_rss_per_session_kib
                ),
            ),
        ];
        if let Some(p) = &self.probe {
            rows.push((
                "probe client".into(),
                match &p.error {
                    Some(e) => format!("FAILED: {e}"),
                    None => format!(
                        "bound in {:.1} ms, submit_sm_resp {} in {:.1} ms",
                        p.bind_ms, p.submit_status, p.submit_ms
                    ),
                },
            ));
        }
        crate::report::format_rows(&rows)
    }
}

/// A held connection: bound (answers enquire_link) or raw TCP that never binds.
enum Held {
    Bound(tokio_util::codec::Framed<TcpStream, smpp_protocol::codec::SmppCodec>),
    Raw(TcpStream),
}

/// A connection from `source` that never binds; with `partial`, it sends all but the
/// last octet of a frame of that command_length.
async fn connect_raw(
    addr: std::net::SocketAddr,
    source: std::net::Ipv4Addr,
    partial: Option<u32>,
) -> anyhow::Result<TcpStream> {
    let socket = TcpSocket::new_v4()?;
    socket
        .bind((source, 0).into())
        .with_context(|| format!("bind {source}"))?;
    let mut s = socket
        .connect(addr)
        .await
        .with_context(|| format!("connect {addr} from {source}"))?;
    if let Some(len) = partial {
        let mut frame = vec![0u8; len as usize - 1];
        frame[0..4].copy_from_slice(&len.to_be_bytes());
        frame[4..8].copy_from_slice(&smpp_protocol::CommandId::BIND_TRANSMITTER.0.to_be_bytes());
        frame[12..16].copy_from_slice(&1u32.to_be_bytes());
        s.write_all(&frame).await.context("partial frame")?;
    }
    Ok(s)
}

/// Binds a TRX and submits one single-part message without a receipt.
async fn probe(args: &IdleArgs) -> Probe {
    let t = &args.target;
    let started = Instant::now();
    let r = async {
        let mut f = bind(t.addr[0], &t.system_id, &t.password, BindKind::Transceiver).await?;
        let bind_ms = started.elapsed().as_secs_f64() * 1000.0;
        let sm = SubmitSm {
            source_addr: COctetString::from_static("probe").unwrap_or_default(),
            destination_addr: COctetString::from_static("4917999999999").unwrap_or_default(),
            short_message: bytes::Bytes::from_static(b"probe while idle connections are held"),
            ..SubmitSm::default()
        };
        let sent = Instant::now();
        f.send(Pdu::new(2, Body::SubmitSm(sm))).await?;
        loop {
            match tokio::time::timeout(Duration::from_secs(10), f.next()).await {
                Ok(Some(Ok(Ok(p)))) if matches!(p.body, Body::SubmitSmResp(_)) => {
                    let ms = sent.elapsed().as_secs_f64() * 1000.0;
                    let _ = f.send(Pdu::new(3, Body::Unbind)).await;
                    return Ok::<_, anyhow::Error>((bind_ms, p.command_status.to_string(), ms));
                }
                Ok(Some(Ok(Ok(p)))) if matches!(p.body, Body::EnquireLink) => {
                    f.send(Pdu::new(p.sequence_number, Body::EnquireLinkResp))
                        .await?;
                }
                Ok(Some(Ok(_))) => {}
                Ok(Some(Err(e))) => anyhow::bail!("read: {e}"),
                Ok(None) => anyhow::bail!("closed by the server"),
                Err(_) => anyhow::bail!("no submit_sm_resp within 10 s"),
            }
        }
    }
    .await;
    match r {
        Ok((bind_ms, status, ms)) => Probe {
            bind_ms,
            submit_status: status,
            submit_ms: ms,
            error: None,
        },
        Err(e) => Probe {
            bind_ms: 0.0,
            submit_status: String::new(),
            submit_ms: 0.0,
            error: Some(format!("{e:#}")),
        },
    }
}

pub async fn idle(args: IdleArgs) -> anyhow::Result<IdleReport> {
    let t = args.target.clone();
    let rss = || status_kib(args.server_pid, "VmRSS").unwrap_or(0);
    let before = rss();
    let gate = Arc::new(Semaphore::new(args.concurrency.max(1)));
    let started = Instant::now();
    let mut joins = Vec::with_capacity(args.sessions);
    for i in 0..args.sessions {
        let gate = gate.clone();
        let t = t.clone();
        let no_bind = args.no_bind;
        let partial = args.partial_frame;
        let source = std::net::Ipv4Addr::new(127, 0, 0, 1 + (i % usize::from(args.sources)) as u8);
        joins.push(tokio::spawn(async move {
            let _permit = gate.acquire_owned().await.ok();
            let addr = t.addr[i % t.addr.len()];
            if no_bind {
                connect_raw(addr, source, partial).await.map(Held::Raw)
            } else {
                bind(addr, &t.system_id, &t.password, BindKind::Transmitter)
                    .await
                    .map(Held::Bound)
            }
        }));
    }
    let mut held = Vec::new();
    let mut failures = 0;
    let mut first_failure = None;
    for j in joins {
        match j.await {
            Ok(Ok(h)) => held.push(h),
            Ok(Err(e)) => {
                failures += 1;
                first_failure.get_or_insert_with(|| format!("{e:#}"));
            }
            Err(e) => {
                failures += 1;
                first_failure.get_or_insert_with(|| e.to_string());
            }
        }
    }
    let ramp = started.elapsed();
    let n = held.len();
    // Bound sessions answer enquire_link so a long hold does not drop them; raw ones
    // only notice being closed.
    let (stop_tx, _) = tokio::sync::broadcast::channel::<()>(1);
    let mut tasks = Vec::with_capacity(n);
    for h in held {
        let mut stop = stop_tx.subscribe();
        tasks.push(tokio::spawn(async move {
            match h {
                Held::Bound(mut f) => loop {
                    tokio::select! {
                        _ = stop.recv() => {
                            let _ = f.send(Pdu::new(2, Body::Unbind)).await;
                            let _ = tokio::time::timeout(Duration::from_secs(2), f.next()).await;
                            return false;
                        }
                        item = f.next() => match item {
                            Some(Ok(Ok(p))) if matches!(p.body, Body::EnquireLink) => {
                                let _ = f.send(Pdu::new(p.sequence_number, Body::EnquireLinkResp)).await;
                            }
                            Some(Ok(_)) => {}
                            _ => return true,
                        }
                    }
                },
                Held::Raw(mut s) => {
                    let mut buf = [0u8; 256];
                    loop {
                        tokio::select! {
                            _ = stop.recv() => return false,
                            r = s.read(&mut buf) => match r {
                                Ok(0) | Err(_) => return true,
                                Ok(_) => {}
                            }
                        }
                    }
                }
            }
        }));
    }
    // Half the hold to settle, then the probe, then the rest.
    tokio::time::sleep(args.hold / 2).await;
    let probe = if args.probe {
        Some(probe(&args).await)
    } else {
        None
    };
    tokio::time::sleep(args.hold / 2).await;
    let after = rss();
    let _ = stop_tx.send(());
    let mut closed = 0;
    for t in tasks {
        if t.await.unwrap_or(false) {
            closed += 1;
        }
    }
    Ok(IdleReport {
        label: args.target.label.clone(),
        mode: if args.no_bind { "no-bind" } else { "bind" }.into(),
        partial_frame: args.partial_frame,
        sessions_requested: args.sessions,
        sessions_bound: n,
        bind_failures: failures,
        first_failure,
        ramp_s: ramp.as_secs_f64(),
        closed_by_server: closed,
        server_rss_before_kib: before,
        server_rss_bound_kib: after,
        server_rss_per_session_kib: after.saturating_sub(before) as f64 / n.max(1) as f64,
        probe,
    })
}
