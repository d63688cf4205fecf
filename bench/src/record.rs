//! `run --record FILE`: every message planned, every segment acknowledged, resent or
//! given up, and every receipt received, one line each, so `smppd-bench verify` can
//! hold them against the outcome documents in MongoDB after a fault.
//!
//! Lines (space-separated, one event each):
//!
//! ```text
//! M <number> <dest> <parts> <sent> <registered_delivery> <partial 0|1>
//! A <number> <seq> <message_id>          submit_sm_resp ESME_ROK
//! R <number> <seq> <why>                 resent (why: lost = no response, or the status hex)
//! F <number> <seq> <why>                 given up: never acknowledged
//! D <message_id> <message_state>         receipt received (and answered)
//! ```
//!
//! A text file rather than JSON: a 10-minute soak writes millions of lines and the
//! writer must cost little next to the PDU encoding.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;
use std::sync::Mutex;

use anyhow::Context;

use crate::message::MessagePlan;

/// Why a segment is resent or was given up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Why {
    /// No submit_sm_resp: the connection ended or the response timed out. The
    /// segment may or may not be stored.
    Lost,
    /// A submit_sm_resp with this (non-OK) command_status.
    Status(u32),
}

impl Why {
    /// Whether the segment may have been stored although it was not acknowledged:
    /// no response at all, or ESME_RSYSERR (a Redis call that timed out may have run).
    pub fn uncertain(self) -> bool {
        matches!(self, Why::Lost | Why::Status(0x08))
    }

    pub fn token(self) -> String {
        match self {
            Why::Lost => "lost".into(),
            Why::Status(s) => format!("{s:08x}"),
        }
    }

    pub fn parse(s: &str) -> Option<Why> {
        if s == "lost" {
            return Some(Why::Lost);
        }
        u32::from_str_radix(s, 16).ok().map(Why::Status)
    }
}

/// The record file of one run. Lines are appended under a short, never-awaited lock.
pub struct Recorder {
    out: Mutex<BufWriter<File>>,
}

impl Recorder {
    pub fn create(path: &Path) -> anyhow::Result<Recorder> {
        let f = File::create(path).with_context(|| format!("create {}", path.display()))?;
        Ok(Recorder {
            out: Mutex::new(BufWriter::with_capacity(1 << 20, f)),
        })
    }

    fn line(&self, args: std::fmt::Arguments<'_>) {
        let mut g = self.out.lock().unwrap_or_else(|e| e.into_inner());
        // A write error shows at the final flush, which run() reports.
        let _ = g.write_fmt(args);
    }

    pub fn message(&self, plan: &MessagePlan, sent: u8, partial: bool) {
        self.line(format_args!(
            "M {} {} {} {} {} {}\n",
            plan.number,
            plan.dest,
            plan.entry.parts,
            sent,
            plan.registered_delivery,
            u8::from(partial)
        ));
    }

    pub fn ack(&self, number: u64, seq: u8, message_id: &[u8]) {
        self.line(format_args!(
            "A {number} {seq} {}\n",
            String::from_utf8_lossy(message_id)
        ));
    }

    pub fn resend(&self, number: u64, seq: u8, why: Why) {
        self.line(format_args!("R {number} {seq} {}\n", why.token()));
    }

    pub fn failed(&self, number: u64, seq: u8, why: Why) {
        self.line(format_args!("F {number} {seq} {}\n", why.token()));
    }

    pub fn receipt(&self, message_id: &[u8], message_state: u8) {
        self.line(format_args!(
            "D {} {message_state}\n",
            String::from_utf8_lossy(message_id)
        ));
    }

    pub fn flush(&self) -> anyhow::Result<()> {
        let mut g = self.out.lock().unwrap_or_else(|e| e.into_inner());
        g.flush().context("write the record file")
    }
}
