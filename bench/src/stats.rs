//! Measurements: per-session counters merged at the end, the shared receipt tracker,
//! and the summary of a histogram.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use bytes::Bytes;
use hdrhistogram::Histogram;
use smpp_protocol::CommandStatus;

/// Microsecond histogram up to 10 minutes, 3 significant digits.
pub fn new_hist() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 600_000_000, 3).expect("constant histogram bounds are valid")
}

/// Records `d` in microseconds (at least 1, saturating at the top bound).
pub fn record(h: &mut Histogram<u64>, d: Duration) {
    h.saturating_record((d.as_micros() as u64).max(1));
}

/// Percentiles of one histogram, in milliseconds.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct Summary {
    pub count: u64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub p999_ms: f64,
    pub max_ms: f64,
    pub mean_ms: f64,
}

impl Summary {
    pub fn of(h: &Histogram<u64>) -> Summary {
        if h.is_empty() {
            return Summary::default();
        }
        let ms = |us: u64| us as f64 / 1000.0;
        Summary {
            count: h.len(),
            p50_ms: ms(h.value_at_quantile(0.50)),
            p99_ms: ms(h.value_at_quantile(0.99)),
            p999_ms: ms(h.value_at_quantile(0.999)),
            max_ms: ms(h.max()),
            mean_ms: h.mean() / 1000.0,
        }
    }
}

/// What one submitting session saw. Merged after the run, so the hot path takes no lock.
#[derive(Debug, Clone)]
pub struct SessionStats {
    pub latency: Histogram<u64>,
    pub segments_sent: u64,
    pub messages_sent: u64,
    pub ok: u64,
    /// Non-zero command_status of submit_sm_resp (and generic_nack) by status.
    pub errors: HashMap<u32, u64>,
    /// OK responses after the warm-up.
    pub ok_after_warmup: u64,
    pub first_send: Option<Instant>,
    pub last_resp: Option<Instant>,
    /// Segments given up without any response (connection gone, or the end came).
    pub no_response: u64,
    /// Segments sent again (`--retry`).
    pub resent: u64,
    /// Binds made again after a lost connection (`--reconnect`).
    pub reconnects: u64,
    /// deliver_sm left unanswered on purpose (`--silent-rx`).
    pub deliver_ignored: u64,
}

impl Default for SessionStats {
    fn default() -> Self {
        SessionStats {
            latency: new_hist(),
            segments_sent: 0,
            messages_sent: 0,
            ok: 0,
            errors: HashMap::new(),
            ok_after_warmup: 0,
            first_send: None,
            last_resp: None,
            no_response: 0,
            resent: 0,
            reconnects: 0,
            deliver_ignored: 0,
        }
    }
}

impl SessionStats {
    pub fn merge(&mut self, o: &SessionStats) {
        let _ = self.latency.add(&o.latency);
        self.segments_sent += o.segments_sent;
        self.messages_sent += o.messages_sent;
        self.ok += o.ok;
        self.ok_after_warmup += o.ok_after_warmup;
        self.no_response += o.no_response;
        self.resent += o.resent;
        self.reconnects += o.reconnects;
        self.deliver_ignored += o.deliver_ignored;
        for (k, v) in &o.errors {
            *self.errors.entry(*k).or_default() += v;
        }
        self.first_send = min_opt(self.first_send, o.first_send);
        self.last_resp = self.last_resp.max(o.last_resp);
    }
}

fn min_opt(a: Option<Instant>, b: Option<Instant>) -> Option<Instant> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// Errors by status name (`ESME_RTHROTTLED`, or hex for unknown codes).
pub fn errors_by_name(errors: &HashMap<u32, u64>) -> BTreeMap<String, u64> {
    errors
        .iter()
        .map(|(k, v)| {
            let name = match CommandStatus(*k).name() {
                Some(n) => n.to_string(),
                None => format!("0x{k:08x}"),
            };
            (name, *v)
        })
        .collect()
}

/// One message whose receipts are still expected.
#[derive(Debug)]
struct Tracked {
    /// Segments sent (parts − 1 for a partial message).
    sent: u8,
    acked: u8,
    /// When it was about to be sent (its first segment).
    started: Instant,
    last_ack: Option<Instant>,
    /// Only for partial messages: receipts measure lateness against it.
    deadline: Option<Instant>,
    receipts_left: u8,
    ids: Vec<Bytes>,
    /// Receipts that came before the message's last ack.
    early: u8,
}

/// Matches receipts to messages. Shared by all sessions (receipts of a message may
/// arrive on another bind than its submits).
#[derive(Debug)]
pub struct Tracker {
    inner: Mutex<TrackerInner>,
    /// Receipts expected and not yet received (for the end-of-run wait).
    pub outstanding: AtomicI64,
}

#[derive(Debug)]
struct TrackerInner {
    messages: HashMap<u64, Tracked>,
    ids: HashMap<Bytes, u64>,
    /// Receipts whose message_id was not (yet) known, with arrival time.
    orphans: HashMap<Bytes, Instant>,
    receipt_latency: Histogram<u64>,
    expiry_lateness: Histogram<u64>,
    expired_early: u64,
    received_before_ack: u64,
    received: u64,
    duplicates: u64,
    by_state: BTreeMap<u8, u64>,
    /// Forwarded deliver_sm received (A→B), and submit → their arrival.
    forwarded: u64,
    forward_latency: Histogram<u64>,
    /// Forwarded deliver_sm per message, to count those received more than once.
    forwarded_per_message: HashMap<u64, u8>,
    forwarded_twice: u64,
}

/// Receipt figures at the end.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct ReceiptReport {
    pub expected: u64,
    pub received: u64,
    pub missing: u64,
    /// Receipts whose receipted_message_id matched no acknowledged segment.
    pub unmatched: u64,
    /// Receipts of complete messages that arrived before the last segment's resp.
    pub before_last_ack: u64,
    /// Partial messages whose receipt came before their deadline.
    pub expired_early: u64,
    /// By message_state TLV (2 DELIVERED, 3 EXPIRED, ...).
    pub by_message_state: BTreeMap<u8, u64>,
    /// Receipt arrival − resp of the message's last segment (complete messages).
    pub latency: Summary,
    /// Receipt arrival − validity deadline (partial messages).
    pub expiry_lateness: Summary,
    /// Forwarded deliver_sm (segments) the `--forward-rx` receivers got.
    pub forwarded: u64,
    /// Their arrival − the moment their message's first segment was sent.
    pub forward_latency: Summary,
    /// Forwarded deliver_sm beyond their message's segments (sent again).
    pub forwarded_twice: u64,
}

impl Default for Tracker {
    fn default() -> Self {
        Tracker {
            inner: Mutex::new(TrackerInner {
                messages: HashMap::new(),
                ids: HashMap::new(),
                orphans: HashMap::new(),
                receipt_latency: new_hist(),
                expiry_lateness: new_hist(),
                expired_early: 0,
                received_before_ack: 0,
                received: 0,
                duplicates: 0,
                by_state: BTreeMap::new(),
                forwarded: 0,
                forward_latency: new_hist(),
                forwarded_per_message: HashMap::new(),
                forwarded_twice: 0,
            }),
            outstanding: AtomicI64::new(0),
        }
    }
}

impl Tracker {
    fn lock(&self) -> std::sync::MutexGuard<'_, TrackerInner> {
        // A panicking session must not hide the other sessions' figures.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A message is about to be sent: `sent` segments, a deadline if it stays partial.
    pub fn message(&self, number: u64, sent: u8, partial_deadline: Option<Instant>) {
        self.outstanding
            .fetch_add(i64::from(sent), Ordering::Relaxed);
        self.lock().messages.insert(
            number,
            Tracked {
                sent,
                acked: 0,
                started: Instant::now(),
                last_ack: None,
                deadline: partial_deadline,
                receipts_left: sent,
                ids: Vec::with_capacity(usize::from(sent)),
                early: 0,
            },
        );
    }

    /// A segment of message `number` was accepted with `message_id`.
    pub fn acked(&self, number: u64, message_id: Bytes, at: Instant) {
        let mut g = self.lock();
        let inner = &mut *g;
        let Some(m) = inner.messages.get_mut(&number) else {
            return;
        };
        m.acked += 1;
        m.last_ack = Some(at);
        m.ids.push(message_id.clone());
        inner.ids.insert(message_id.clone(), number);
        if let Some(arrived) = inner.orphans.remove(&message_id) {
            drop(g);
            self.receipt(&message_id, 0, arrived);
        }
    }

    /// A segment was refused or never answered: no receipt will come for it.
    pub fn failed(&self, number: u64) {
        self.outstanding.fetch_sub(1, Ordering::Relaxed);
        let mut g = self.lock();
        if let Some(m) = g.messages.get_mut(&number) {
            m.receipts_left = m.receipts_left.saturating_sub(1);
            m.sent = m.sent.saturating_sub(1);
        }
    }

    /// A receipt for `message_id` arrived at `at`.
    pub fn receipt(&self, message_id: &Bytes, message_state: u8, at: Instant) {
        let mut g = self.lock();
        let inner = &mut *g;
        let Some(&number) = inner.ids.get(message_id) else {
            if inner.orphans.insert(message_id.clone(), at).is_some() {
                inner.duplicates += 1;
            }
            return;
        };
        let Some(m) = inner.messages.get_mut(&number) else {
            inner.duplicates += 1;
            return;
        };
        inner.received += 1;
        if message_state != 0 {
            *inner.by_state.entry(message_state).or_default() += 1;
        }
        self.outstanding.fetch_sub(1, Ordering::Relaxed);
        match m.deadline {
            Some(deadline) => match at.checked_duration_since(deadline) {
                Some(late) => record(&mut inner.expiry_lateness, late),
                None => inner.expired_early += 1,
            },
            None => match m.last_ack {
                Some(last) if m.acked >= m.sent => record(
                    &mut inner.receipt_latency,
                    at.saturating_duration_since(last),
                ),
                _ => {
                    m.early += 1;
                    inner.received_before_ack += 1;
                }
            },
        }
        m.receipts_left = m.receipts_left.saturating_sub(1);
        if m.receipts_left == 0 {
            if let Some(m) = inner.messages.remove(&number) {
                for id in m.ids {
                    inner.ids.remove(&id);
                }
            }
        }
    }

    /// A forwarded segment of message `number` reached a `--forward-rx` receiver.
    pub fn forwarded(&self, number: u64, at: Instant) {
        let mut g = self.lock();
        let inner = &mut *g;
        inner.forwarded += 1;
        if let Some(m) = inner.messages.get(&number) {
            record(
                &mut inner.forward_latency,
                at.saturating_duration_since(m.started),
            );
            // More deliver_sm than the message sent segments: sent again (at least
            // once, after a node died mid-send).
            let seen = inner.forwarded_per_message.entry(number).or_default();
            *seen = seen.saturating_add(1);
            if *seen > m.sent {
                inner.forwarded_twice += 1;
            }
        }
    }

    pub fn report(&self, expected: u64) -> ReceiptReport {
        let g = self.lock();
        ReceiptReport {
            expected,
            received: g.received,
            missing: expected.saturating_sub(g.received),
            unmatched: g.orphans.len() as u64 + g.duplicates,
            before_last_ack: g.received_before_ack,
            expired_early: g.expired_early,
            by_message_state: g.by_state.clone(),
            latency: Summary::of(&g.receipt_latency),
            expiry_lateness: Summary::of(&g.expiry_lateness),
            forwarded: g.forwarded,
            forward_latency: Summary::of(&g.forward_latency),
            forwarded_twice: g.forwarded_twice,
        }
    }
}
