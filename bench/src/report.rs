//! The report of a run: JSON (machine) and an aligned text table (human).

use std::collections::BTreeMap;
use std::fmt::Write as _;

use crate::procwatch::ProcReport;
use crate::stats::{ReceiptReport, Summary};

#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct RunReport {
    pub label: String,
    pub addr: String,
    pub sessions: SessionsCfg,
    pub mix: String,
    pub coding: String,
    pub registered_delivery: u8,
    /// Offered submit_sm/s (0 = as fast as possible).
    pub offered_rate: u64,
    pub partial_fraction: f64,
    /// First submit to last submit_sm_resp.
    pub elapsed_s: f64,
    pub messages_sent: u64,
    pub segments_sent: u64,
    pub segments_ok: u64,
    pub no_response: u64,
    /// Segments sent again after a lost connection or a temporary error.
    pub resent: u64,
    /// Binds made again after a lost connection.
    pub reconnects: u64,
    /// deliver_sm left unanswered on purpose (`--silent-rx`).
    pub deliver_ignored: u64,
    /// OK submit_sm_resp per second (after the warm-up).
    pub submit_per_s: f64,
    pub messages_per_s: f64,
    pub submit_latency: Summary,
    /// Non-OK command_status of responses by name.
    pub errors: BTreeMap<String, u64>,
    pub receipts: Option<ReceiptReport>,
    pub redis: Option<RedisMemory>,
    pub processes: Vec<ProcReport>,
}

#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct SessionsCfg {
    pub tx: usize,
    pub rx: usize,
    pub trx: usize,
    pub window: usize,
}

#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct RedisMemory {
    pub used_before: u64,
    pub used_after: u64,
    /// Segments acknowledged (all pending when the run leaves messages partial).
    pub segments: u64,
    pub bytes_per_segment: f64,
    /// User data octets of one segment as sent (UDH included).
    pub payload_octets: u64,
}

fn lat(s: &Summary) -> String {
    if s.count == 0 {
        return "-".into();
    }
    format!(
        "p50 {:.2} / p99 {:.2} / p99.9 {:.2} / max {:.2} ms (n={})",
        s.p50_ms, s.p99_ms, s.p999_ms, s.max_ms, s.count
    )
}

impl RunReport {
    /// The human table.
    pub fn to_table(&self) -> String {
        let mut rows: Vec<(String, String)> = vec![
            ("scenario".into(), self.label.clone()),
            ("target".into(), self.addr.clone()),
            (
                "sessions".into(),
                format!(
                    "tx {} rx {} trx {}, window {}",
                    self.sessions.tx, self.sessions.rx, self.sessions.trx, self.sessions.window
                ),
            ),
            (
                "load".into(),
                format!(
                    "mix {}, {}, registered_delivery {}, offered {}, partial {}",
                    self.mix,
                    self.coding,
                    self.registered_delivery,
                    if self.offered_rate == 0 {
                        "max".to_string()
                    } else {
                        format!("{}/s", self.offered_rate)
                    },
                    self.partial_fraction
                ),
            ),
            (
                "sent".into(),
                format!(
                    "{} messages, {} segments in {:.2} s",
                    self.messages_sent, self.segments_sent, self.elapsed_s
                ),
            ),
            (
                "submit_sm_resp OK".into(),
                format!(
                    "{} ({:.0} submit_sm/s, {:.0} messages/s)",
                    self.segments_ok, self.submit_per_s, self.messages_per_s
                ),
            ),
            ("submit latency".into(), lat(&self.submit_latency)),
        ];
        let errs = if self.errors.is_empty() && self.no_response == 0 {
            "none".to_string()
        } else {
            let mut e: Vec<String> = self
                .errors
                .iter()
                .map(|(k, v)| format!("{k} {v}"))
                .collect();
            if self.no_response > 0 {
                e.push(format!("no response {}", self.no_response));
            }
            e.join(", ")
        };
        rows.push(("errors".into(), errs));
        if self.resent + self.reconnects + self.deliver_ignored > 0 {
            rows.push((
                "faults seen".into(),
                format!(
                    "{} segments resent, {} rebinds, {} deliver_sm left unanswered",
                    self.resent, self.reconnects, self.deliver_ignored
                ),
            ));
        }
        if let Some(r) = &self.receipts {
            rows.push((
                "receipts".into(),
                format!(
                    "{} of {} (missing {}, unmatched {}, before last ack {}, expired early {})",
                    r.received,
                    r.expected,
                    r.missing,
                    r.unmatched,
                    r.before_last_ack,
                    r.expired_early
                ),
            ));
            rows.push(("receipt latency".into(), lat(&r.latency)));
            if r.forwarded > 0 {
                rows.push((
                    "forwarded".into(),
                    format!(
                        "{} deliver_sm to the target account ({} sent again)",
                        r.forwarded, r.forwarded_twice
                    ),
                ));
                rows.push(("submit → target deliver_sm".into(), lat(&r.forward_latency)));
            }
            rows.push(("expiry lateness".into(), lat(&r.expiry_lateness)));
        }
        if let Some(m) = &self.redis {
            rows.push((
                "redis memory".into(),
                format!(
                    "{:.0} B per pending segment ({} segments, payload {} B)",
                    m.bytes_per_segment, m.segments, m.payload_octets
                ),
            ));
        }
        for p in &self.processes {
            rows.push((
                format!("cpu {}", p.name),
                format!(
                    "{:.2} cores ({:.1} s), RSS {} KiB",
                    p.cores, p.cpu_seconds, p.rss_kib
                ),
            ));
        }
        format_rows(&rows)
    }
}

/// `key  value` lines with the keys padded to one width.
pub fn format_rows(rows: &[(String, String)]) -> String {
    let w = rows.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
    let mut out = String::new();
    for (k, v) in rows {
        let _ = writeln!(out, "{k:<w$}  {v}");
    }
    out
}
