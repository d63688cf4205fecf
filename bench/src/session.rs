//! One SMPP session of the load generator: bind, then a writer task (owns the socket's
//! write half, batches PDUs into one flush), a reader task (responses, receipts,
//! enquire_link) and, on TX/TRX binds, a generator that submits within the window.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use bytes::Bytes;
use futures::{SinkExt, StreamExt};
use smpp_protocol::codec::SmppCodec;
use smpp_protocol::{Bind, Body, COctetString, MessageIdResp, Pdu, Tlv};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, Notify, Semaphore};
use tokio::task::JoinHandle;
use tokio_util::codec::{Framed, FramedRead, FramedWrite};

use crate::cli::{RunArgs, Validity};
use crate::message::{MessagePlan, Rng};
use crate::stats::{record, SessionStats, Tracker};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BindKind {
    Transmitter,
    Receiver,
    Transceiver,
}

impl BindKind {
    pub fn submits(self) -> bool {
        self != BindKind::Receiver
    }
}

/// Connects and binds; returns the framed stream after a successful bind_*_resp.
pub async fn bind(
    addr: SocketAddr,
    system_id: &str,
    password: &str,
    kind: BindKind,
) -> anyhow::Result<Framed<TcpStream, SmppCodec>> {
    let tcp = TcpStream::connect(addr)
        .await
        .with_context(|| format!("connect {addr}"))?;
    tcp.set_nodelay(true)?;
    let mut framed = Framed::new(tcp, SmppCodec::new());
    let b = Bind {
        system_id: COctetString::try_from(system_id).context("system_id")?,
        password: COctetString::try_from(password).context("password")?,
        interface_version: 0x34,
        ..Bind::default()
    };
    let body = match kind {
        BindKind::Transmitter => Body::BindTransmitter(b),
        BindKind::Receiver => Body::BindReceiver(b),
        BindKind::Transceiver => Body::BindTransceiver(b),
    };
    framed.send(Pdu::new(1, body)).await?;
    loop {
        let pdu = match framed.next().await {
            Some(Ok(Ok(p))) => p,
            Some(Ok(Err(e))) => bail!("bind: undecodable answer: {e}"),
            Some(Err(e)) => bail!("bind: {e}"),
            None => bail!("bind: connection closed by {addr}"),
        };
        match pdu.body {
            Body::BindTransmitterResp(_)
            | Body::BindReceiverResp(_)
            | Body::BindTransceiverResp(_) => {
                if !pdu.command_status.is_ok() {
                    bail!("bind refused: {}", pdu.command_status);
                }
                return Ok(framed);
            }
            Body::GenericNack => bail!("bind: generic_nack {}", pdu.command_status),
            _ => continue,
        }
    }
}

/// Settings and shared state of one run.
pub struct RunCtx {
    pub args: RunArgs,
    pub tracker: Option<Arc<Tracker>>,
    /// Messages left when `--count` is set.
    pub remaining: Option<AtomicU64>,
    pub next_number: AtomicU64,
    pub start: Instant,
    pub submit_until: Option<Instant>,
    pub warmup_end: Instant,
    /// Time between two segments of one session at the offered rate.
    pub interval: Option<Duration>,
    /// Latest deadline of a partial message (µs after `start`).
    pub latest_deadline_us: AtomicU64,
    /// OK submit_sm_resp over all sessions so far.
    pub ok_total: AtomicU64,
}

impl RunCtx {
    pub fn new(args: RunArgs, tracker: Option<Arc<Tracker>>) -> RunCtx {
        let start = Instant::now();
        let submitters = (args.tx + args.trx) as u64;
        let interval =
            (args.rate > 0).then(|| Duration::from_secs_f64(submitters as f64 / args.rate as f64));
        RunCtx {
            remaining: args.count.map(AtomicU64::new),
            next_number: AtomicU64::new(0),
            submit_until: args.duration.map(|d| start + d),
            warmup_end: start + args.warmup,
            start,
            interval,
            latest_deadline_us: AtomicU64::new(0),
            ok_total: AtomicU64::new(0),
            tracker,
            args,
        }
    }

    /// Claims the next message, or `None` when the run is over.
    fn claim(&self) -> Option<u64> {
        if let Some(until) = self.submit_until {
            if Instant::now() >= until {
                return None;
            }
        }
        if let Some(rem) = &self.remaining {
            rem.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |x| x.checked_sub(1))
                .ok()?;
        }
        Some(self.next_number.fetch_add(1, Ordering::Relaxed))
    }
}

struct Inflight {
    sent: Instant,
    number: u64,
}

/// State shared by the three tasks of a session.
struct Shared {
    inflight: Mutex<HashMap<u32, Inflight>>,
    window: Semaphore,
    /// Woken when the last in-flight request is answered.
    drained: Notify,
    closed: Notify,
}

impl Shared {
    fn inflight(&self) -> std::sync::MutexGuard<'_, HashMap<u32, Inflight>> {
        self.inflight.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A running session.
pub struct Session {
    tx: mpsc::Sender<Pdu>,
    reader: JoinHandle<SessionStats>,
    generator: Option<JoinHandle<SessionStats>>,
    writer: JoinHandle<()>,
    shared: Arc<Shared>,
    next_seq: Arc<AtomicU64>,
}

impl Session {
    /// Starts the tasks of a bound session; the generator (TX/TRX) starts submitting at once.
    pub fn start(
        framed: Framed<TcpStream, SmppCodec>,
        kind: BindKind,
        index: usize,
        ctx: Arc<RunCtx>,
    ) -> Session {
        let parts = framed.into_parts();
        let (r, w) = parts.io.into_split();
        let mut fr = FramedRead::new(r, parts.codec);
        fr.read_buffer_mut().extend_from_slice(&parts.read_buf);
        let fw = FramedWrite::new(w, parts.codec);
        let (tx, rx) = mpsc::channel::<Pdu>(ctx.args.window.max(16) * 2);
        let shared = Arc::new(Shared {
            inflight: Mutex::new(HashMap::new()),
            window: Semaphore::new(ctx.args.window),
            drained: Notify::new(),
            closed: Notify::new(),
        });
        let next_seq = Arc::new(AtomicU64::new(2));
        let writer = tokio::spawn(write_loop(fw, rx));
        let reader = tokio::spawn(read_loop(fr, tx.clone(), shared.clone(), ctx.clone()));
        let generator = kind.submits().then(|| {
            tokio::spawn(generate(
                tx.clone(),
                shared.clone(),
                ctx,
                index,
                next_seq.clone(),
            ))
        });
        Session {
            tx,
            reader,
            generator,
            writer,
            shared,
            next_seq,
        }
    }

    /// Waits for the generator (submission and its responses) to finish.
    pub async fn submitted(&mut self) -> SessionStats {
        match self.generator.take() {
            Some(g) => g.await.unwrap_or_default(),
            None => SessionStats::default(),
        }
    }

    /// Unbinds, waits briefly for unbind_resp, and returns the reader's figures.
    pub async fn close(self) -> SessionStats {
        let seq = self.next_seq.fetch_add(1, Ordering::Relaxed) as u32;
        let _ = self.tx.send(Pdu::new(seq, Body::Unbind)).await;
        let _ = tokio::time::timeout(Duration::from_secs(2), self.shared.closed.notified()).await;
        drop(self.tx);
        self.reader.abort();
        let stats = self.reader.await.unwrap_or_default();
        let _ = tokio::time::timeout(Duration::from_secs(1), self.writer).await;
        stats
    }
}

async fn write_loop(
    mut w: FramedWrite<tokio::net::tcp::OwnedWriteHalf, SmppCodec>,
    mut rx: mpsc::Receiver<Pdu>,
) {
    while let Some(p) = rx.recv().await {
        if w.feed(p).await.is_err() {
            return;
        }
        // Everything already queued goes out in the same write.
        while let Ok(p) = rx.try_recv() {
            if w.feed(p).await.is_err() {
                return;
            }
        }
        if SinkExt::<Pdu>::flush(&mut w).await.is_err() {
            return;
        }
    }
}

/// The receipt's message id: the receipted_message_id TLV, else `id:` of the text.
fn receipt_id(sm: &smpp_protocol::DeliverSm) -> Option<(Bytes, u8)> {
    let mut id = None;
    let mut state = 0;
    for t in &sm.tlvs {
        match t {
            Tlv::ReceiptedMessageId(s) => id = Some(s.to_bytes()),
            Tlv::MessageState(s) => state = *s,
            _ => {}
        }
    }
    if id.is_none() {
        let text = String::from_utf8_lossy(sm.user_data()).into_owned();
        let parsed = smpp_protocol::receipt::DeliveryReceipt::parse(&text).ok()?;
        id = Some(Bytes::from(parsed.id));
    }
    id.map(|i| (i, state))
}

async fn read_loop(
    mut fr: FramedRead<tokio::net::tcp::OwnedReadHalf, SmppCodec>,
    tx: mpsc::Sender<Pdu>,
    shared: Arc<Shared>,
    ctx: Arc<RunCtx>,
) -> SessionStats {
    let mut st = SessionStats::default();
    while let Some(item) = fr.next().await {
        let pdu = match item {
            Ok(Ok(p)) => p,
            Ok(Err(bad)) => {
                *st.errors.entry(bad.error.command_status().0).or_default() += 1;
                continue;
            }
            Err(_) => break,
        };
        let now = Instant::now();
        let seq = pdu.sequence_number;
        match pdu.body {
            Body::SubmitSmResp(resp) => {
                let Some(inf) = shared.inflight().remove(&seq) else {
                    continue;
                };
                shared.window.add_permits(1);
                record(&mut st.latency, now - inf.sent);
                st.last_resp = Some(now);
                if pdu.command_status.is_ok() {
                    st.ok += 1;
                    ctx.ok_total.fetch_add(1, Ordering::Relaxed);
                    if now >= ctx.warmup_end {
                        st.ok_after_warmup += 1;
                    }
                    if let Some(t) = &ctx.tracker {
                        let id = resp.map(|r| r.message_id.to_bytes()).unwrap_or_default();
                        t.acked(inf.number, id, now);
                    }
                } else {
                    *st.errors.entry(pdu.command_status.0).or_default() += 1;
                    if let Some(t) = &ctx.tracker {
                        t.failed(inf.number);
                    }
                }
                if shared.inflight().is_empty() {
                    shared.drained.notify_waiters();
                }
            }
            Body::GenericNack => {
                *st.errors.entry(pdu.command_status.0).or_default() += 1;
                if let Some(inf) = shared.inflight().remove(&seq) {
                    shared.window.add_permits(1);
                    if let Some(t) = &ctx.tracker {
                        t.failed(inf.number);
                    }
                }
            }
            Body::DeliverSm(sm) => {
                if sm.esm_class & 0x3C == 0x04 {
                    if let (Some(t), Some((id, state))) = (&ctx.tracker, receipt_id(&sm)) {
                        t.receipt(&id, state, now);
                    }
                }
                let resp = Pdu::new(seq, Body::DeliverSmResp(Some(MessageIdResp::default())));
                if tx.send(resp).await.is_err() {
                    break;
                }
            }
            Body::EnquireLink if tx.send(Pdu::new(seq, Body::EnquireLinkResp)).await.is_err() => {
                break;
            }
            Body::Unbind => {
                let _ = tx.send(Pdu::new(seq, Body::UnbindResp)).await;
                break;
            }
            Body::UnbindResp => break,
            _ => {}
        }
    }
    shared.closed.notify_waiters();
    // Nothing more will be answered: let a waiting generator finish.
    shared.window.close();
    shared.drained.notify_waiters();
    st
}

/// Submits messages until the run is over, then waits for the outstanding responses.
async fn generate(
    tx: mpsc::Sender<Pdu>,
    shared: Arc<Shared>,
    ctx: Arc<RunCtx>,
    index: usize,
    next_seq: Arc<AtomicU64>,
) -> SessionStats {
    let mut st = SessionStats::default();
    let args = &ctx.args;
    let mut rng = Rng::new(0x5EED ^ ((index as u64 + 1) * 0x1000_0001));
    let mut next_at = Instant::now();
    'messages: while let Some(number) = ctx.claim() {
        let entry = args.mix.pick(rng.unit());
        let partial = entry.parts > 1 && args.partial > 0.0 && rng.unit() < args.partial;
        let (deadline, deadline_at) = match args.validity {
            Some(v) => {
                let (utc, at) = deadline(v, &mut rng);
                (Some(utc), Some(at))
            }
            None => (None, None),
        };
        let plan = MessagePlan {
            entry,
            coding: args.coding,
            chars: args.chars,
            registered_delivery: args.registered_delivery,
            deadline,
            number,
            dest: args.first_dest + number,
        };
        let sent = if partial {
            entry.parts - 1
        } else {
            entry.parts
        };
        if let Some(t) = &ctx.tracker {
            let d = if partial { deadline_at } else { None };
            t.message(number, sent, d);
        }
        if partial {
            if let Some(at) = deadline_at {
                let us = at.saturating_duration_since(ctx.start).as_micros() as u64;
                ctx.latest_deadline_us.fetch_max(us, Ordering::Relaxed);
            }
        }
        st.messages_sent += 1;
        for part in 1..=sent {
            match shared.window.acquire().await {
                Ok(p) => p.forget(),
                Err(_) => {
                    // Connection gone: the rest of this message is never sent.
                    if let Some(t) = &ctx.tracker {
                        for _ in part..=sent {
                            t.failed(number);
                        }
                    }
                    break 'messages;
                }
            }
            if let Some(iv) = ctx.interval {
                let now = Instant::now();
                if next_at > now {
                    tokio::time::sleep_until(next_at.into()).await;
                }
                // Fall behind at most one second: a stall is not made up by a burst.
                next_at = (next_at + iv).max(now - Duration::from_secs(1));
            }
            let seq = next_seq.fetch_add(1, Ordering::Relaxed) as u32;
            let pdu = plan.pdu(part, seq);
            let sent_at = Instant::now();
            st.first_send.get_or_insert(sent_at);
            shared.inflight().insert(
                seq,
                Inflight {
                    sent: sent_at,
                    number,
                },
            );
            st.segments_sent += 1;
            if tx.send(pdu).await.is_err() {
                break 'messages;
            }
        }
    }
    // Wait for the responses still outstanding, at most the response timeout.
    let until = Instant::now() + args.response_timeout;
    loop {
        let notified = shared.drained.notified();
        if shared.inflight().is_empty() || shared.window.is_closed() {
            break;
        }
        if tokio::time::timeout_at(until.into(), notified)
            .await
            .is_err()
        {
            break;
        }
    }
    let left: Vec<u64> = shared.inflight().drain().map(|(_, i)| i.number).collect();
    st.no_response = left.len() as u64;
    if let Some(t) = &ctx.tracker {
        for n in left {
            t.failed(n);
        }
    }
    st
}

/// A deadline uniform in the validity range, truncated to tenths of a second (the
/// precision of the absolute time format), as UTC and as an `Instant`.
fn deadline(v: Validity, rng: &mut Rng) -> (chrono::DateTime<chrono::Utc>, Instant) {
    let span = v.max.saturating_sub(v.min);
    let d = v.min + span.mul_f64(rng.unit());
    let now_utc = chrono::Utc::now();
    let now = Instant::now();
    let utc = now_utc + chrono::TimeDelta::from_std(d).unwrap_or_default();
    let ms = utc.timestamp_millis();
    let truncated = ms - ms.rem_euclid(100);
    let utc = chrono::DateTime::from_timestamp_millis(truncated).unwrap_or(utc);
    let ahead = (utc - now_utc).to_std().unwrap_or_default();
    (utc, now + ahead)
}
