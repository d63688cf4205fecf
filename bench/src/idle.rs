//! `smppd-bench idle`: many idle binds, the server's RSS per session.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::{SinkExt, StreamExt};
use smpp_protocol::{Body, Pdu};
use tokio::sync::Semaphore;

use crate::cli::IdleArgs;
use crate::procwatch::status_kib;
use crate::session::{bind, BindKind};

#[derive(Debug, Clone, serde::Serialize)]
pub struct IdleReport {
    pub label: String,
    pub sessions_requested: usize,
    pub sessions_bound: usize,
    pub bind_failures: usize,
    pub first_failure: Option<String>,
    pub ramp_s: f64,
    pub server_rss_before_kib: u64,
    pub server_rss_bound_kib: u64,
    pub server_rss_per_session_kib: f64,
}

impl IdleReport {
    pub fn to_table(&self) -> String {
        crate::report::format_rows(&[
            ("scenario".into(), self.label.clone()),
            (
                "binds".into(),
                format!(
                    "{} of {} in {:.2} s ({} failed{})",
                    self.sessions_bound,
                    self.sessions_requested,
                    self.ramp_s,
                    self.bind_failures,
                    self.first_failure
                        .as_ref()
                        .map(|f| format!(", first: {f}"))
                        .unwrap_or_default()
                ),
            ),
            (
                "server RSS".into(),
                format!(
                    "{} KiB before, {} KiB bound: {:.1} KiB per session",
                    self.server_rss_before_kib,
                    self.server_rss_bound_kib,
                    self.server_rss_per_session_kib
                ),
            ),
        ])
    }
}

pub async fn idle(args: IdleArgs) -> anyhow::Result<IdleReport> {
    let t = args.target.clone();
    let rss = || status_kib(args.server_pid, "VmRSS").unwrap_or(0);
    let before = rss();
    let gate = Arc::new(Semaphore::new(args.concurrency.max(1)));
    let started = Instant::now();
    let mut joins = Vec::with_capacity(args.sessions);
    for _ in 0..args.sessions {
        let gate = gate.clone();
        let t = t.clone();
        joins.push(tokio::spawn(async move {
            let _permit = gate.acquire_owned().await.ok();
            bind(t.addr, &t.system_id, &t.password, BindKind::Transmitter).await
        }));
    }
    let mut bound = Vec::new();
    let mut failures = 0;
    let mut first_failure = None;
    for j in joins {
        match j.await {
            Ok(Ok(f)) => bound.push(f),
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
    let n = bound.len();
    // Each idle session answers enquire_link so a long hold does not drop it.
    let (stop_tx, _) = tokio::sync::broadcast::channel::<()>(1);
    let mut tasks = Vec::with_capacity(n);
    for mut f in bound {
        let mut stop = stop_tx.subscribe();
        tasks.push(tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = stop.recv() => {
                        let _ = f.send(Pdu::new(2, Body::Unbind)).await;
                        let _ = tokio::time::timeout(Duration::from_secs(2), f.next()).await;
                        return;
                    }
                    item = f.next() => match item {
                        Some(Ok(Ok(p))) if matches!(p.body, Body::EnquireLink) => {
                            let _ = f.send(Pdu::new(p.sequence_number, Body::EnquireLinkResp)).await;
                        }
                        Some(Ok(_)) => {}
                        _ => return,
                    }
                }
            }
        }));
    }
    tokio::time::sleep(args.hold).await;
    let after = rss();
    let _ = stop_tx.send(());
    for t in tasks {
        let _ = t.await;
    }
    Ok(IdleReport {
        label: args.target.label.clone(),
        sessions_requested: args.sessions,
        sessions_bound: n,
        bind_failures: failures,
        first_failure,
        ramp_s: ramp.as_secs_f64(),
        server_rss_before_kib: before,
        server_rss_bound_kib: after,
        server_rss_per_session_kib: after.saturating_sub(before) as f64 / n.max(1) as f64,
    })
}
