//! One session of the load generator (a *slot*): bind, then per connection a writer
//! task (owns the socket's write half, batches PDUs into one flush) and a reader (the
//! slot's supervisor task: responses, receipts, enquire_link); on TX/TRX binds a
//! generator submits within the window.
//!
//! Faults (`scripts/chaos.sh`): with `--reconnect` the supervisor binds again when the
//! connection ends, trying the next `--addr` each time, until the run closes. With
//! `--retry N` a segment left without a response (connection gone) or refused with a
//! temporary error (ESME_RSYSERR, ESME_RMSGQFUL, ESME_RTHROTTLED) is sent again, up
//! to N times, as an ESME would; smppd answers a resent segment of a pending
//! concatenated message with the first submit's message_id.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use bytes::Bytes;
use futures::{SinkExt, StreamExt};
use smpp_protocol::codec::SmppCodec;
use smpp_protocol::{Bind, Body, COctetString, CommandStatus, MessageIdResp, Pdu, Tlv};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, watch, Notify, Semaphore};
use tokio::task::JoinHandle;
use tokio_util::codec::{Framed, FramedRead, FramedWrite};
use tokio_util::sync::CancellationToken;

use crate::cli::{RunArgs, Validity};
use crate::message::{MessagePlan, Rng};
use crate::record::{Recorder, Why};
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
    pub recorder: Option<Arc<Recorder>>,
    /// Messages left when `--count` is set.
    pub remaining: Option<AtomicU64>,
    pub next_number: AtomicU64,
    pub start: Instant,
    pub submit_until: Option<Instant>,
    pub warmup_end: Instant,
    /// Receivers leave deliver_sm unanswered until then (`--silent-rx`).
    pub silent_until: Option<Instant>,
    /// Time between two segments of one session at the offered rate.
    pub interval: Option<Duration>,
    /// Latest deadline of a partial message (µs after `start`).
    pub latest_deadline_us: AtomicU64,
    /// OK submit_sm_resp over all sessions so far.
    pub ok_total: AtomicU64,
    /// Cancelled when the run unbinds: no more reconnects.
    pub closing: CancellationToken,
}

impl RunCtx {
    pub fn new(
        args: RunArgs,
        tracker: Option<Arc<Tracker>>,
        recorder: Option<Arc<Recorder>>,
    ) -> RunCtx {
        let start = Instant::now();
        let submitters = (args.tx + args.trx) as u64;
        let interval =
            (args.rate > 0).then(|| Duration::from_secs_f64(submitters as f64 / args.rate as f64));
        RunCtx {
            remaining: args.count.map(AtomicU64::new),
            next_number: AtomicU64::new(0),
            submit_until: args.duration.map(|d| start + d),
            warmup_end: start + args.warmup,
            silent_until: args.silent_rx.map(|d| start + d),
            start,
            interval,
            latest_deadline_us: AtomicU64::new(0),
            ok_total: AtomicU64::new(0),
            closing: CancellationToken::new(),
            tracker,
            recorder,
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

/// One segment to send (again).
#[derive(Clone)]
struct Seg {
    plan: Arc<MessagePlan>,
    part: u8,
    /// Sends so far that ended without an acknowledgement.
    attempts: u32,
    not_before: Option<Instant>,
}

struct Inflight {
    sent: Instant,
    seg: Seg,
}

/// In-flight requests of one connection. `closed` is set (under the same lock) when
/// its reader ends and hands the requests back, so none is added afterwards.
#[derive(Default)]
struct ConnState {
    inflight: HashMap<u32, Inflight>,
    closed: bool,
}

/// One TCP connection of a slot.
struct Conn {
    tx: mpsc::Sender<Pdu>,
    state: Mutex<ConnState>,
    window: Semaphore,
    next_seq: AtomicU32,
    /// Woken when the reader ends.
    ended: Notify,
}

impl Conn {
    fn state(&self) -> MutexGuard<'_, ConnState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// What outlives a connection: the retry queue and the reader figures.
struct Slot {
    index: usize,
    kind: BindKind,
    /// Binds again as this account (`--forward-to`'s receivers), else as the run's.
    account: Option<(String, String)>,
    ctx: Arc<RunCtx>,
    conn: watch::Sender<Option<Arc<Conn>>>,
    retry: Mutex<VecDeque<Seg>>,
    /// Bumped and woken on every answer, give-up, resend and connection change.
    progress: Notify,
    progress_count: AtomicU64,
    stats: Mutex<SessionStats>,
    /// The supervisor ended: no connection will come any more.
    done: AtomicBool,
}

/// The command_status values after which an ESME sends the same PDU again.
fn temporary(status: u32) -> bool {
    matches!(
        CommandStatus(status),
        CommandStatus::ESME_RSYSERR | CommandStatus::ESME_RMSGQFUL | CommandStatus::ESME_RTHROTTLED
    )
}

impl Slot {
    fn retry(&self) -> MutexGuard<'_, VecDeque<Seg>> {
        self.retry.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn stats(&self) -> MutexGuard<'_, SessionStats> {
        self.stats.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn progressed(&self) {
        self.progress_count.fetch_add(1, Ordering::Relaxed);
        self.progress.notify_waiters();
    }

    /// A segment was not acknowledged: queue it again, or give it up.
    fn unacked(&self, mut seg: Seg, why: Why) {
        let retryable = match why {
            Why::Lost => true,
            Why::Status(s) => temporary(s),
        };
        if retryable && seg.attempts < self.ctx.args.retry {
            seg.attempts += 1;
            seg.not_before = Some(Instant::now() + self.ctx.args.retry_pause);
            if let Some(r) = &self.ctx.recorder {
                r.resend(seg.plan.number, seg.part, why);
            }
            self.stats().resent += 1;
            self.retry().push_back(seg);
        } else {
            self.give_up(&seg, why);
        }
        self.progressed();
    }

    fn give_up(&self, seg: &Seg, why: Why) {
        if let Some(r) = &self.ctx.recorder {
            r.failed(seg.plan.number, seg.part, why);
        }
        if let Some(t) = &self.ctx.tracker {
            t.failed(seg.plan.number);
        }
        if why == Why::Lost {
            self.stats().no_response += 1;
        }
    }

    /// The first queued segment whose pause is over.
    fn due_retry(&self, now: Instant) -> Option<Seg> {
        let mut q = self.retry();
        match q.front() {
            Some(s) if s.not_before.is_none_or(|t| t <= now) => q.pop_front(),
            _ => None,
        }
    }

    fn next_retry_at(&self) -> Option<Instant> {
        self.retry()
            .front()
            .map(|s| s.not_before.unwrap_or_else(Instant::now))
    }

    fn in_flight(&self) -> usize {
        self.conn
            .borrow()
            .as_ref()
            .map_or(0, |c| c.state().inflight.len())
    }
}

/// A running session.
pub struct Session {
    slot: Arc<Slot>,
    supervisor: JoinHandle<()>,
    generator: Option<JoinHandle<SessionStats>>,
}

impl Session {
    /// Starts a bound session; the generator (TX/TRX) starts submitting at once.
    pub fn start(
        framed: Framed<TcpStream, SmppCodec>,
        kind: BindKind,
        index: usize,
        ctx: Arc<RunCtx>,
        account: Option<(String, String)>,
    ) -> Session {
        let slot = Arc::new(Slot {
            index,
            kind,
            account,
            ctx,
            conn: watch::Sender::new(None),
            retry: Mutex::new(VecDeque::new()),
            progress: Notify::new(),
            progress_count: AtomicU64::new(0),
            stats: Mutex::new(SessionStats::default()),
            done: AtomicBool::new(false),
        });
        let supervisor = tokio::spawn(supervise(slot.clone(), framed));
        let generator = kind.submits().then(|| tokio::spawn(generate(slot.clone())));
        Session {
            slot,
            supervisor,
            generator,
        }
    }

    /// Waits for the generator (submission and its responses) to finish.
    pub async fn submitted(&mut self) -> SessionStats {
        match self.generator.take() {
            Some(g) => g.await.unwrap_or_default(),
            None => SessionStats::default(),
        }
    }

    /// Unbinds (the run's `closing` token must be cancelled first, so the supervisor
    /// does not bind again), waits briefly for unbind_resp, returns the readers' figures.
    pub async fn close(self) -> SessionStats {
        let conn = self.slot.conn.borrow().clone();
        if let Some(c) = conn {
            let seq = c.next_seq.fetch_add(1, Ordering::Relaxed);
            let ended = c.ended.notified();
            if c.tx.send(Pdu::new(seq, Body::Unbind)).await.is_ok() {
                let _ = tokio::time::timeout(Duration::from_secs(2), ended).await;
            }
        }
        let mut sup = self.supervisor;
        if tokio::time::timeout(Duration::from_secs(2), &mut sup)
            .await
            .is_err()
        {
            sup.abort();
            let _ = sup.await;
        }
        let st = self.slot.stats().clone();
        st
    }
}

/// Binds again after a lost connection, trying the next address each time with a
/// growing pause, until it succeeds or the run closes (`None`).
async fn rebind(slot: &Slot, attempt: &mut usize) -> Option<Framed<TcpStream, SmppCodec>> {
    let ctx = &slot.ctx;
    let t = &ctx.args.target;
    let mut pause = Duration::from_millis(50);
    while !ctx.closing.is_cancelled() {
        *attempt += 1;
        let addr = t.addr[(slot.index + *attempt) % t.addr.len()];
        let (id, pw) = match &slot.account {
            Some((id, pw)) => (id.as_str(), pw.as_str()),
            None => (t.system_id.as_str(), t.password.as_str()),
        };
        let bound =
            tokio::time::timeout(Duration::from_secs(5), bind(addr, id, pw, slot.kind)).await;
        if let Ok(Ok(f)) = bound {
            slot.stats().reconnects += 1;
            return Some(f);
        }
        tokio::select! {
            _ = ctx.closing.cancelled() => {}
            _ = tokio::time::sleep(pause) => {}
        }
        pause = (pause * 2).min(Duration::from_secs(1));
    }
    None
}

/// Runs the slot's connections one after the other: the reader of each, and with
/// `--reconnect` a new bind whenever one ends, until the run closes.
async fn supervise(slot: Arc<Slot>, first: Framed<TcpStream, SmppCodec>) {
    let mut next = Some(first);
    let mut attempt = 0usize;
    while let Some(framed) = next.take() {
        let parts = framed.into_parts();
        let (r, w) = parts.io.into_split();
        let mut fr = FramedRead::new(r, parts.codec);
        fr.read_buffer_mut().extend_from_slice(&parts.read_buf);
        let fw = FramedWrite::new(w, parts.codec);
        let (tx, rx) = mpsc::channel::<Pdu>(slot.ctx.args.window.max(16) * 2);
        let conn = Arc::new(Conn {
            tx,
            state: Mutex::new(ConnState::default()),
            window: Semaphore::new(slot.ctx.args.window),
            next_seq: AtomicU32::new(2),
            ended: Notify::new(),
        });
        let writer = tokio::spawn(write_loop(fw, rx));
        slot.conn.send_replace(Some(conn.clone()));
        slot.progressed();
        let st = read_loop(fr, &conn, &slot).await;
        slot.conn.send_replace(None);
        slot.stats().merge(&st);
        drop(conn);
        let _ = tokio::time::timeout(Duration::from_secs(1), writer).await;
        if slot.ctx.args.reconnect && !slot.ctx.closing.is_cancelled() {
            next = rebind(&slot, &mut attempt).await;
        }
    }
    slot.done.store(true, Ordering::Relaxed);
    slot.progressed();
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

/// Reads one connection until it ends; then hands its unanswered requests back to
/// the slot (resent or given up).
async fn read_loop(
    mut fr: FramedRead<tokio::net::tcp::OwnedReadHalf, SmppCodec>,
    conn: &Conn,
    slot: &Slot,
) -> SessionStats {
    let ctx = &slot.ctx;
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
                let Some(inf) = conn.state().inflight.remove(&seq) else {
                    continue;
                };
                conn.window.add_permits(1);
                record(&mut st.latency, now - inf.sent);
                st.last_resp = Some(now);
                let (number, part) = (inf.seg.plan.number, inf.seg.part);
                if pdu.command_status.is_ok() {
                    st.ok += 1;
                    ctx.ok_total.fetch_add(1, Ordering::Relaxed);
                    if now >= ctx.warmup_end {
                        st.ok_after_warmup += 1;
                    }
                    let id = resp.map(|r| r.message_id.to_bytes()).unwrap_or_default();
                    if let Some(r) = &ctx.recorder {
                        r.ack(number, part, &id);
                    }
                    if let Some(t) = &ctx.tracker {
                        t.acked(number, id, now);
                    }
                    slot.progressed();
                } else {
                    *st.errors.entry(pdu.command_status.0).or_default() += 1;
                    slot.unacked(inf.seg, Why::Status(pdu.command_status.0));
                }
            }
            Body::GenericNack => {
                *st.errors.entry(pdu.command_status.0).or_default() += 1;
                let inf = conn.state().inflight.remove(&seq);
                if let Some(inf) = inf {
                    conn.window.add_permits(1);
                    slot.unacked(inf.seg, Why::Status(pdu.command_status.0));
                }
            }
            Body::DeliverSm(sm) => {
                if ctx.silent_until.is_some_and(|u| now < u) {
                    // Playing an ESME that does not answer: smppd must keep the
                    // receipt and send it again later.
                    st.deliver_ignored += 1;
                    continue;
                }
                if sm.esm_class & 0x3C == 0 {
                    // A forwarded message (A→B): its destination names its number.
                    let number = std::str::from_utf8(sm.destination_addr.as_bytes())
                        .ok()
                        .and_then(|d| d.parse::<u64>().ok())
                        .and_then(|d| d.checked_sub(ctx.args.first_dest));
                    if let (Some(n), Some(t)) = (number, &ctx.tracker) {
                        t.forwarded(n, now);
                    }
                } else if sm.esm_class & 0x3C == 0x04 {
                    if let Some((id, state)) = receipt_id(&sm) {
                        if let Some(r) = &ctx.recorder {
                            r.receipt(&id, state);
                        }
                        if let Some(t) = &ctx.tracker {
                            t.receipt(&id, state, now);
                        }
                    }
                }
                let resp = Pdu::new(seq, Body::DeliverSmResp(Some(MessageIdResp::default())));
                if conn.tx.send(resp).await.is_err() {
                    break;
                }
            }
            Body::EnquireLink
                if conn
                    .tx
                    .send(Pdu::new(seq, Body::EnquireLinkResp))
                    .await
                    .is_err() =>
            {
                break;
            }
            Body::Unbind => {
                let _ = conn.tx.send(Pdu::new(seq, Body::UnbindResp)).await;
                break;
            }
            Body::UnbindResp => break,
            _ => {}
        }
    }
    {
        // Handed back under the lock, so the generator never sees them neither in
        // flight nor queued (it would think the session is done).
        let mut g = conn.state();
        g.closed = true;
        for (_, inf) in g.inflight.drain() {
            slot.unacked(inf.seg, Why::Lost);
        }
    }
    // Nothing more will be answered here: let a waiting generator move on.
    conn.window.close();
    conn.ended.notify_waiters();
    slot.progressed();
    st
}

/// The message being sent by a generator: its plan and the next part.
struct Current {
    plan: Arc<MessagePlan>,
    next: u8,
    sent: u8,
}

/// Builds the next message (`None` when the run is over), registering it with the
/// tracker and the record.
fn next_message(ctx: &RunCtx, rng: &mut Rng) -> Option<Current> {
    let args = &ctx.args;
    let number = ctx.claim()?;
    let entry = args.mix.pick(rng.unit());
    let partial = entry.parts > 1 && args.partial > 0.0 && rng.unit() < args.partial;
    let (deadline, deadline_at) = match args.validity {
        Some(v) => {
            let (utc, at) = deadline(v, rng);
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
        t.message(number, sent, if partial { deadline_at } else { None });
    }
    if let Some(r) = &ctx.recorder {
        r.message(&plan, sent, partial);
    }
    if partial {
        if let Some(at) = deadline_at {
            let us = at.saturating_duration_since(ctx.start).as_micros() as u64;
            ctx.latest_deadline_us.fetch_max(us, Ordering::Relaxed);
        }
    }
    Some(Current {
        plan: Arc::new(plan),
        next: 1,
        sent,
    })
}

/// What the generator does next.
enum Step {
    Send(Seg),
    Wait,
    Done,
}

/// Submits messages (and resends) until the run is over and every segment is
/// answered or given up.
async fn generate(slot: Arc<Slot>) -> SessionStats {
    let ctx = slot.ctx.clone();
    let args = &ctx.args;
    let mut st = SessionStats::default();
    let mut rng = Rng::new(0x5EED ^ ((slot.index as u64 + 1) * 0x1000_0001));
    let mut next_at = Instant::now();
    let mut current: Option<Current> = None;
    let mut exhausted = false;
    let mut conn_rx = slot.conn.subscribe();
    // The end: once nothing new is sent, at most the response timeout without any
    // progress, then whatever is left is given up.
    let mut quiet_since: Option<(Instant, u64)> = None;
    loop {
        let now = Instant::now();
        let step = if let Some(seg) = slot.due_retry(now) {
            Step::Send(seg)
        } else if let Some(c) = current.as_mut().filter(|c| c.next <= c.sent) {
            c.next += 1;
            Step::Send(Seg {
                plan: c.plan.clone(),
                part: c.next - 1,
                attempts: 0,
                not_before: None,
            })
        } else if !exhausted {
            current = next_message(&ctx, &mut rng);
            match &current {
                Some(_) => {
                    st.messages_sent += 1;
                    continue;
                }
                None => {
                    exhausted = true;
                    continue;
                }
            }
        } else if slot.retry().is_empty() && slot.in_flight() == 0 {
            Step::Done
        } else {
            Step::Wait
        };
        let seg = match step {
            Step::Done => break,
            Step::Wait => {
                let count = slot.progress_count.load(Ordering::Relaxed);
                let (since, seen) = *quiet_since.get_or_insert((now, count));
                if seen != count {
                    quiet_since = Some((now, count));
                    continue;
                }
                let give_up_at = since + args.response_timeout;
                if now >= give_up_at || slot.done.load(Ordering::Relaxed) && slot.in_flight() == 0 {
                    abandon(&slot);
                    break;
                }
                let wake = slot
                    .next_retry_at()
                    .map_or(give_up_at, |t| t.min(give_up_at));
                let progressed = slot.progress.notified();
                tokio::select! {
                    _ = progressed => {}
                    _ = tokio::time::sleep_until(wake.into()) => {}
                }
                continue;
            }
            Step::Send(seg) => seg,
        };
        quiet_since = None;
        // A live connection; without --reconnect a lost one ends the session, and with
        // it a server gone for longer than the response timeout does.
        let no_conn_until = Instant::now() + args.response_timeout;
        let conn = loop {
            let c = conn_rx.borrow_and_update().clone();
            if let Some(c) = c.filter(|c| !c.state().closed) {
                break Some(c);
            }
            if slot.done.load(Ordering::Relaxed) || Instant::now() >= no_conn_until {
                break None;
            }
            let _ = tokio::time::timeout(Duration::from_millis(200), conn_rx.changed()).await;
        };
        let Some(conn) = conn else {
            slot.give_up(&seg, Why::Lost);
            abandon(&slot);
            // Whatever this message still had to send cannot be sent either.
            if let Some(c) = current.take() {
                for part in c.next..=c.sent {
                    let s = Seg {
                        plan: c.plan.clone(),
                        part,
                        attempts: 0,
                        not_before: None,
                    };
                    slot.give_up(&s, Why::Lost);
                }
            }
            exhausted = true;
            continue;
        };
        match conn.window.acquire().await {
            Ok(p) => p.forget(),
            Err(_) => {
                // That connection ended meanwhile: this segment was never sent.
                slot.retry().push_front(seg);
                continue;
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
        let seq = conn.next_seq.fetch_add(1, Ordering::Relaxed);
        let pdu = seg.plan.pdu(seg.part, seq);
        let sent_at = Instant::now();
        {
            let mut g = conn.state();
            if g.closed {
                drop(g);
                slot.retry().push_front(seg);
                continue;
            }
            g.inflight.insert(seq, Inflight { sent: sent_at, seg });
        }
        st.first_send.get_or_insert(sent_at);
        st.segments_sent += 1;
        // If the writer is gone the reader ends too and hands this request back.
        let _ = conn.tx.send(pdu).await;
    }
    st
}

/// Gives up every segment still queued or in flight (the end of the run came first).
fn abandon(slot: &Slot) {
    let queued: Vec<Seg> = slot.retry().drain(..).collect();
    for s in queued {
        slot.give_up(&s, Why::Lost);
    }
    let conn = slot.conn.borrow().clone();
    if let Some(c) = conn {
        let left: Vec<Inflight> = c.state().inflight.drain().map(|(_, i)| i).collect();
        for inf in left {
            c.window.add_permits(1);
            slot.give_up(&inf.seg, Why::Lost);
        }
    }
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
