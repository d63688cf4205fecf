//! The connection task: reads PDUs, applies the state machine (reference §10.8 check
//! order), runs the timers, binds and unbinds, and drains in-flight work on close.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use smpp_protocol::codec::{FrameError, InvalidPdu, SmppCodec};
use smpp_protocol::{Bind, BindResp, Body, CommandId, CommandStatus, Header, Pdu, PduError, Tlv};
use tokio::io::{AsyncRead, AsyncWrite, ReadHalf};
use tokio::sync::{mpsc, watch, OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;
use tokio_util::codec::FramedRead;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::Instrument;

use super::inbound::Inbound;
use super::outbound::Outbound;
use super::registry::{bind_type_allowed, cstr, AccountRuntime, Registration};
use super::state::{self, BindType, State, Verdict};
use super::tokens::{AccountTokens, Take};
use super::writer::{self, Outgoing};
use super::SessionCtx;
use crate::admission::ConnectionSlot;
use crate::auth;
use crate::service::BindLease;

/// sc_interface_version we announce in bind_*_resp.
const SC_INTERFACE_VERSION: u8 = 0x34;
/// How long the writer may take to flush its last PDUs on close.
const FLUSH_TIMEOUT: Duration = Duration::from_secs(5);
/// Largest frame read before a bind: a bind is at most [`Bind::MAX_LEN`] (98 octets);
/// this leaves room for TLVs on it, and for any submit_sm without TLVs (at most 364
/// octets) sent too early, which still gets its ESME_RINVBNDSTS. A longer
/// command_length is a broken frame (generic_nack ESME_RINVCMDLEN, close), so a
/// connection that has not bound never makes us buffer more than this.
const UNBOUND_MAX_LEN: usize = 512;
const _: () = assert!(Bind::MAX_LEN <= UNBOUND_MAX_LEN);
/// Read buffer of a bound session (tokio-util's default), instead of the unbound one's
/// [`UNBOUND_MAX_LEN`].
const BOUND_READ_BUFFER: usize = 8 * 1024;

/// Runs one connection until it closes. `kick` asks the session to unbind (reload
/// removed its account, or the server shuts down) or, before a bind, to close (also
/// when admission makes room). `slot` is the connection's place, freed on return.
pub async fn run_session<S>(
    stream: S,
    peer: SocketAddr,
    tls: bool,
    ctx: Arc<SessionCtx>,
    kick: CancellationToken,
    slot: ConnectionSlot,
) where
    S: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    let span = tracing::info_span!("session", %peer, tls, system_id = tracing::field::Empty);
    async move {
        let cfg = ctx.config();
        let max_len = cfg.server.max_pdu_len;
        let (read, write) = tokio::io::split(stream);
        let (tx, rx) = mpsc::channel(writer::QUEUE);
        let stop = CancellationToken::new();
        let writer = tokio::spawn(
            writer::write_loop(write, max_len, rx, stop.clone())
                .instrument(tracing::Span::current()),
        );
        let reader = FramedRead::with_capacity(
            read,
            SmppCodec::with_max_length(UNBOUND_MAX_LEN.min(max_len)),
            UNBOUND_MAX_LEN,
        );
        tracing::debug!("connected");
        let now = Instant::now();
        let mut session = Session {
            outbound: Arc::new(Outbound::new(cfg.server.outbound_window, tx.clone())),
            writer: tx,
            ctx,
            peer,
            tls,
            state: State::Open,
            registration: None,
            lease: None,
            runtime: None,
            window: Arc::new(Semaphore::new(0)),
            window_size: 0,
            spare: None,
            tasks: TaskTracker::new(),
            last_rx: now,
            bind_deadline: now + cfg.server.bind_timeout,
            enquire: None,
            unbind_sent: None,
            drain_deadline: None,
            kick,
            slot,
        };
        let reason = session.run(reader).await;
        tracing::info!(reason, "session closed");
        session.finish().await;
        stop.cancel();
        match tokio::time::timeout(FLUSH_TIMEOUT, writer).await {
            Ok(Ok(Err(e))) => tracing::debug!(error = %e, "write side closed with error"),
            Err(_) => tracing::debug!("writer did not finish flushing in time"),
            _ => {}
        }
    }
    .instrument(span)
    .await
}

enum Flow {
    Continue,
    Close(&'static str),
}

struct Session {
    ctx: Arc<SessionCtx>,
    peer: SocketAddr,
    tls: bool,
    state: State,
    writer: mpsc::Sender<Outgoing>,
    outbound: Arc<Outbound>,
    registration: Option<Registration>,
    /// The bind's place among its account's max_binds over all nodes.
    lease: Option<BindLease>,
    runtime: Option<Arc<AccountRuntime>>,
    /// Inbound window: one permit per request in progress.
    window: Arc<Semaphore>,
    window_size: usize,
    /// A window slot taken *before* reading, so the reader stops when none is free.
    spare: Option<OwnedSemaphorePermit>,
    /// In-flight request tasks.
    tasks: TaskTracker,
    last_rx: Instant,
    bind_deadline: Instant,
    /// Our enquire_link waiting for its response: (sequence_number, deadline).
    enquire: Option<(u32, Instant)>,
    /// Our unbind waiting for unbind_resp: (sequence_number, deadline).
    unbind_sent: Option<(u32, Instant)>,
    /// Until when in-flight work may still finish on close.
    drain_deadline: Option<Instant>,
    /// Cancelled when the session must unbind (shutdown, account removed) or, not
    /// bound yet, close (also to make room for a new connection).
    kick: CancellationToken,
    slot: ConnectionSlot,
}

/// Waits for an account change; never resolves without a registration.
async fn account_changed(
    rx: &mut Option<watch::Receiver<Arc<AccountRuntime>>>,
) -> Option<Arc<AccountRuntime>> {
    match rx {
        Some(r) => match r.changed().await {
            Ok(()) => Some(r.borrow_and_update().clone()),
            Err(_) => std::future::pending().await,
        },
        None => std::future::pending().await,
    }
}

impl Session {
    async fn run<R: AsyncRead>(
        &mut self,
        mut reader: FramedRead<ReadHalf<R>, SmppCodec>,
    ) -> &'static str {
        let kick = self.kick.clone();
        let mut kicked = false;
        let mut account_rx: Option<watch::Receiver<Arc<AccountRuntime>>> = None;
        loop {
            if account_rx.is_none() {
                account_rx = self.registration.as_ref().map(|r| r.runtime.clone());
            }
            let deadline = self.next_deadline();
            let need_slot = self.spare.is_none() && matches!(self.state, State::Bound(_));
            let was_open = self.state == State::Open;
            let window = self.window.clone();
            let flow = tokio::select! {
                biased;
                _ = kick.cancelled(), if !kicked => {
                    kicked = true;
                    self.on_kick().await
                }
                rt = account_changed(&mut account_rx) => {
                    if let Some(rt) = rt {
                        self.apply_account(rt);
                    }
                    Flow::Continue
                }
                _ = tokio::time::sleep_until(deadline) => self.on_timer().await,
                permit = window.acquire_owned(), if need_slot => {
                    self.spare = permit.ok();
                    // Time spent held back by a full window is not peer inactivity.
                    self.last_rx = Instant::now();
                    Flow::Continue
                }
                item = reader.next(), if !need_slot => {
                    self.last_rx = Instant::now();
                    match item {
                        None => Flow::Close("peer closed the connection"),
                        Some(Err(FrameError::InvalidLength { command_length, max, .. })) => {
                            tracing::warn!(command_length, max, "invalid command_length: generic_nack and close");
                            self.send(Pdu::generic_nack(0, CommandStatus::ESME_RINVCMDLEN)).await;
                            Flow::Close("broken frame")
                        }
                        Some(Err(FrameError::Io(e))) => {
                            tracing::debug!(error = %e, "read failed");
                            Flow::Close("read error")
                        }
                        Some(Ok(Err(InvalidPdu { header, error }))) => self.on_invalid(header, error).await,
                        Some(Ok(Ok(pdu))) => self.on_pdu(pdu).await,
                    }
                }
            };
            if was_open && self.state != State::Open {
                self.after_bind(&mut reader);
            }
            if let Flow::Close(reason) = flow {
                return reason;
            }
        }
    }

    /// Once bound: frames up to `max_pdu_len` and a full-size read buffer; and the
    /// connection is no longer one admission may close to make room.
    fn after_bind<R>(&self, reader: &mut FramedRead<ReadHalf<R>, SmppCodec>) {
        reader
            .decoder_mut()
            .set_max_length(self.ctx.config().server.max_pdu_len);
        // A new buffer, not a reserve on the small one: a BytesMut that must grow
        // while frames still share it allocates at its *original* capacity, so the
        // 512-octet start would make every later read that small (more reads and
        // allocations per PDU under load).
        let buf = reader.read_buffer_mut();
        let mut bigger = bytes::BytesMut::with_capacity(BOUND_READ_BUFFER.max(buf.len()));
        bigger.extend_from_slice(buf);
        *buf = bigger;
        self.slot.bound();
    }

    fn next_deadline(&self) -> Instant {
        let far = Instant::now() + Duration::from_secs(3600);
        let mut d = far;
        match self.state {
            State::Open => d = d.min(self.bind_deadline),
            State::Bound(_) => {
                let cfg = self.ctx.config();
                match self.enquire {
                    Some((_, until)) => d = d.min(until),
                    None if self.spare.is_some() => {
                        d = d.min(self.last_rx + cfg.server.enquire_link_interval)
                    }
                    None => {}
                }
            }
        }
        if let Some((_, until)) = self.unbind_sent {
            d = d.min(until);
        }
        d
    }

    async fn on_timer(&mut self) -> Flow {
        let now = Instant::now();
        if let Some((_, until)) = self.unbind_sent {
            if now >= until {
                return Flow::Close("no unbind_resp in time");
            }
        }
        match self.state {
            State::Open if now >= self.bind_deadline => Flow::Close("no bind within bind_timeout"),
            State::Open => Flow::Continue,
            State::Bound(_) => {
                if let Some((_, until)) = self.enquire {
                    if now >= until {
                        return Flow::Close("enquire_link unanswered");
                    }
                    return Flow::Continue;
                }
                let cfg = self.ctx.config();
                if self.spare.is_some() && now >= self.last_rx + cfg.server.enquire_link_interval {
                    let seq = self.outbound.next_sequence();
                    tracing::debug!(seq, "inactive: sending enquire_link");
                    self.enquire = Some((seq, now + cfg.server.response_timeout));
                    self.send(Pdu::new(seq, Body::EnquireLink)).await;
                }
                Flow::Continue
            }
        }
    }

    async fn on_kick(&mut self) -> Flow {
        match self.state {
            State::Open => {
                Flow::Close("closed by the server (shutdown, or room for a new connection)")
            }
            State::Bound(_) => {
                let cfg = self.ctx.config();
                let seq = self.outbound.next_sequence();
                let until = Instant::now() + cfg.server.shutdown_grace;
                tracing::info!("unbinding (shutdown or config change)");
                self.unbind_sent = Some((seq, until));
                self.drain_deadline = Some(until);
                self.send(Pdu::new(seq, Body::Unbind)).await;
                Flow::Continue
            }
        }
    }

    fn apply_account(&mut self, rt: Arc<AccountRuntime>) {
        let new = rt.account.window;
        if new > self.window_size {
            self.window.add_permits(new - self.window_size);
        } else if new < self.window_size {
            // Slots in use come back later: retire them as they do.
            let shrink = (self.window_size - new) as u32;
            let window = self.window.clone();
            self.tasks.spawn(async move {
                if let Ok(p) = window.acquire_many_owned(shrink).await {
                    p.forget();
                }
            });
        }
        tracing::debug!(window = new, "account settings changed");
        self.window_size = new;
        self.runtime = Some(rt);
    }

    /// Queues `pdu` for the writer. Boxed before the wait, so that waiting holds 8
    /// octets rather than a whole PDU in the state of every session's task.
    fn send(&self, pdu: Pdu) -> impl std::future::Future<Output = ()> + '_ {
        let pdu = Box::new(pdu);
        async move {
            // A closed writer means the connection is gone; the reader will see it too.
            let _ = self.writer.send(pdu).await;
        }
    }

    async fn on_invalid(&mut self, header: Header, error: PduError) -> Flow {
        let id = header.command_id;
        let seq = header.sequence_number;
        crate::metrics::pdu_in(id, header.command_status);
        if id.is_response() {
            // §10.8 step 3: the body of a response is ignored; its status counts.
            tracing::debug!(%error, "response with undecodable body");
            self.on_response_status(id, seq, header.command_status)
        } else if !id.is_known() {
            tracing::info!(command_id = id.0, seq, "unknown command_id: generic_nack");
            self.send(Pdu::generic_nack(seq, CommandStatus::ESME_RINVCMDID))
                .await;
            Flow::Continue
        } else {
            let status = match state::check(self.state, id) {
                Verdict::AlreadyBound => CommandStatus::ESME_RALYBND,
                Verdict::WrongState => CommandStatus::ESME_RINVBNDSTS,
                Verdict::Allowed => error.command_status(),
            };
            tracing::info!(command = ?id, seq, %error, ?status, "malformed request answered");
            let resp = Pdu::error_response(&header, status)
                .unwrap_or_else(|| Pdu::generic_nack(seq, status));
            self.send(resp).await;
            if self.state == State::Open && BindType::of_request(id).is_some() {
                return Flow::Close("bind refused");
            }
            Flow::Continue
        }
    }

    async fn on_pdu(&mut self, pdu: Pdu) -> Flow {
        let id = pdu.command_id();
        let seq = pdu.sequence_number;
        crate::metrics::pdu_in(id, pdu.command_status);
        if id.is_response() {
            return self.on_response_status(id, seq, pdu.command_status);
        }
        match state::check(self.state, id) {
            Verdict::AlreadyBound => {
                self.send(error_resp(id, seq, CommandStatus::ESME_RALYBND))
                    .await;
                return Flow::Continue;
            }
            Verdict::WrongState => {
                tracing::info!(command = ?id, seq, state = ?self.state, "not allowed in this state");
                self.send(error_resp(id, seq, CommandStatus::ESME_RINVBNDSTS))
                    .await;
                return Flow::Continue;
            }
            Verdict::Allowed => {}
        }
        match pdu.body {
            Body::BindTransmitter(b) | Body::BindReceiver(b) | Body::BindTransceiver(b) => {
                self.on_bind(id, seq, b).await
            }
            Body::EnquireLink => {
                self.send(Pdu::new(seq, Body::EnquireLinkResp)).await;
                Flow::Continue
            }
            Body::Unbind => {
                tracing::info!("ESME unbinds");
                let cfg = self.ctx.config();
                self.drain(Instant::now() + cfg.server.shutdown_grace).await;
                // Out of the counts before the answer: a bind that follows it, on
                // any node, finds the place free.
                self.leave().await;
                self.send(Pdu::new(seq, Body::UnbindResp)).await;
                Flow::Close("unbound by ESME")
            }
            body => {
                self.dispatch(Pdu { body, ..pdu }).await;
                Flow::Continue
            }
        }
    }

    /// A response from the ESME (bit 31 set), decoded or not.
    fn on_response_status(&mut self, id: CommandId, seq: u32, status: CommandStatus) -> Flow {
        if let Some((s, _)) = self.enquire {
            if s == seq && (id == CommandId::ENQUIRE_LINK_RESP || id == CommandId::GENERIC_NACK) {
                self.enquire = None;
                return Flow::Continue;
            }
        }
        if let Some((s, _)) = self.unbind_sent {
            if s == seq && (id == CommandId::UNBIND_RESP || id == CommandId::GENERIC_NACK) {
                return Flow::Close("unbound by SMSC");
            }
        }
        if !self.outbound.resolve(seq, id, status) {
            tracing::debug!(command = ?id, seq, "response matches no outstanding request: dropped");
        }
        Flow::Continue
    }

    /// A request for the message service: rate check, then a window slot, then a task.
    async fn dispatch(&mut self, pdu: Pdu) {
        let seq = pdu.sequence_number;
        let id = pdu.command_id();
        let Some(rt) = self.runtime.clone() else {
            // Unreachable: state::check only allows these while bound.
            self.send(error_resp(id, seq, CommandStatus::ESME_RINVBNDSTS))
                .await;
            return;
        };
        let counts_for_rate = matches!(
            id,
            CommandId::SUBMIT_SM | CommandId::DATA_SM | CommandId::SUBMIT_MULTI
        );
        let counters = self.registration.as_ref().map(|r| r.counters.clone());
        let take = if counts_for_rate {
            rt.take()
        } else {
            Take::Admit
        };
        if take == Take::Throttle {
            tracing::debug!(command = ?id, seq, "throttled");
            crate::metrics::throttled(&rt.account.system_id);
            if let Some(c) = &counters {
                c.throttled();
            }
            self.send(error_resp(id, seq, CommandStatus::ESME_RTHROTTLED))
                .await;
            return;
        }
        let Some(permit) = self.spare.take() else {
            // Unreachable: the reader only reads while holding a spare slot.
            self.send(error_resp(id, seq, CommandStatus::ESME_RTHROTTLED))
                .await;
            return;
        };
        // No token here: the task asks the shared budget for a chunk first, so this
        // loop never waits on the store.
        let refill = match take {
            Take::Refill => rt.tokens.clone(),
            _ => None,
        };
        if let (Take::AdmitAndTopUp, Some(tokens)) = (take, rt.tokens.clone()) {
            // Not a task of this session: the pocket is the account's, and its top-up
            // must end (and clear its flag) even if this session closes first.
            let service = self.ctx.service.clone();
            let system_id = rt.account.system_id.clone();
            tokio::spawn(async move { tokens.top_up(&*service, &system_id).await });
        }
        let config = self.ctx.config();
        let inbound = Inbound {
            service: self.ctx.service.clone(),
            runtime: rt,
            routes: config.routes.clone(),
            log_message_text: config.server.log_message_text,
            after_response: Default::default(),
        };
        let writer = self.writer.clone();
        let started = std::time::Instant::now();
        if let Some(c) = &counters {
            c.request_started();
        }
        self.tasks.spawn(
            async move {
                let refused = match &refill {
                    Some(tokens) => token_refused(&inbound, tokens).await,
                    None => None,
                };
                let resp = match refused {
                    Some(status) => error_resp(id, seq, status),
                    None => inbound.handle(pdu).await,
                };
                if let (Some(c), true) = (&counters, counts_for_rate) {
                    if refused == Some(CommandStatus::ESME_RTHROTTLED) {
                        c.throttled_in_window();
                    } else {
                        c.submit_answered(resp.command_status == CommandStatus::ESME_ROK);
                    }
                }
                let _ = writer.send(Box::new(resp)).await;
                // The response is queued: what it held back (a receipt) may follow it
                // on this session's write queue now, never ahead of it.
                drop(inbound);
                crate::metrics::request_done(id, started);
                drop(permit);
                if let Some(c) = &counters {
                    c.request_done();
                }
            }
            .instrument(tracing::Span::current()),
        );
    }

    async fn on_bind(&mut self, id: CommandId, seq: u32, bind: Bind) -> Flow {
        let received = Instant::now();
        let Some(bind_type) = BindType::of_request(id) else {
            return Flow::Continue;
        };
        let cfg = self.ctx.config();
        let ctx = self.ctx.clone();
        let system_id = bind.system_id.to_string_lossy().into_owned();
        let request = auth::BindRequest {
            peer: self.peer.ip(),
            tls: self.tls,
            system_id: &system_id,
            password: bind.password.as_bytes(),
        };
        let decision = ctx
            .auth
            .check(&cfg, request, |account| {
                if !bind_type_allowed(account, bind_type) {
                    Some("bind type not allowed")
                } else if ctx.registry.bind_count(&account.system_id) >= account.max_binds {
                    Some("account at max_binds")
                } else {
                    None
                }
            })
            .await;
        let registered = match decision {
            auth::Decision::Refuse(why) => Err(why),
            auth::Decision::Accept(account, attempt) => {
                // Counted over every node, once the password is known right (so that
                // wrong passwords take no place, even for a moment). Refusals here
                // are policy, not guessing: not counted as failures.
                let place = ctx
                    .service
                    .acquire_bind(&account.system_id, account.max_binds)
                    .await;
                match place {
                    Ok(Some(lease)) => {
                        let r = ctx.registry.register(
                            account,
                            bind_type,
                            self.peer,
                            self.tls,
                            bind.interface_version,
                            self.outbound.clone(),
                            self.kick.clone(),
                        );
                        match r {
                            Ok(r) => {
                                attempt.succeeded();
                                Ok((r, lease))
                            }
                            // Another bind of this node took the last slot since the check.
                            Err(_) => {
                                attempt.not_counted();
                                lease.release().await;
                                Err("account at max_binds")
                            }
                        }
                    }
                    Ok(None) => {
                        attempt.not_counted();
                        Err("account at max_binds over all nodes")
                    }
                    Err(e) => {
                        tracing::error!(error = %e, "bind count not checked: store unreachable");
                        attempt.not_counted();
                        Err("max_binds could not be checked")
                    }
                }
            }
        };
        let (registration, lease) = match registered {
            Ok(r) => r,
            Err(why) => {
                tracing::warn!(
                    system_id,
                    bind_type = bind_type.as_str(),
                    "bind refused: {why}"
                );
                // Every refusal looks the same to the peer, whatever decided it.
                tokio::time::sleep_until(received + cfg.server.bind_failures.delay).await;
                self.send(error_resp(id, seq, CommandStatus::ESME_RBINDFAIL))
                    .await;
                return Flow::Close("bind refused");
            }
        };
        let rt = registration.runtime.borrow().clone();
        self.window_size = rt.account.window;
        self.window.add_permits(self.window_size);
        self.runtime = Some(rt);
        self.registration = Some(registration);
        self.lease = Some(lease);
        self.state = State::Bound(bind_type);
        tracing::Span::current().record("system_id", system_id.as_str());
        tracing::info!(bind_type = bind_type.as_str(), "bound");
        // An ESME that bound as SMPP 3.3 or older must never be sent TLVs (§3.2).
        let tlvs = if bind.interface_version >= SC_INTERFACE_VERSION {
            vec![Tlv::ScInterfaceVersion(SC_INTERFACE_VERSION)]
        } else {
            Vec::new()
        };
        let resp = BindResp {
            system_id: cstr(&cfg.server.system_id),
            tlvs,
        };
        let body = match bind_type {
            BindType::Transmitter => Body::BindTransmitterResp(Some(resp)),
            BindType::Receiver => Body::BindReceiverResp(Some(resp)),
            BindType::Transceiver => Body::BindTransceiverResp(Some(resp)),
        };
        self.send(Pdu::new(seq, body)).await;
        Flow::Continue
    }

    /// Waits for in-flight requests until `until`.
    async fn drain(&mut self, until: Instant) {
        self.tasks.close();
        if tokio::time::timeout_at(until, self.tasks.wait())
            .await
            .is_err()
        {
            tracing::warn!(
                in_flight = self.tasks.len(),
                "in-flight requests did not finish in time"
            );
        }
    }

    /// Leaves the registry (no new receipt is routed here) and gives the bind's place
    /// among the account's max_binds back.
    async fn leave(&mut self) {
        self.registration = None;
        if let Some(lease) = self.lease.take() {
            lease.release().await;
        }
    }

    async fn finish(&mut self) {
        self.leave().await;
        self.outbound.close();
        // Ends any pending window shrink so it does not hold up the drain.
        self.window.close();
        let cfg = self.ctx.config();
        let until = self
            .drain_deadline
            .unwrap_or_else(|| Instant::now() + cfg.server.shutdown_grace);
        self.drain(until).await;
    }
}

/// After [`Take::Refill`]: the status to refuse the submit with, if its token is not
/// granted — ESME_RTHROTTLED, or ESME_RSYSERR when the budget cannot be asked (the
/// store is unreachable: the submit would fail the same way, and throttling would
/// blame the ESME's rate for the store's fault).
async fn token_refused(inbound: &Inbound, tokens: &AccountTokens) -> Option<CommandStatus> {
    let system_id = &inbound.runtime.account.system_id;
    match tokens.refill(&*inbound.service, system_id).await {
        Ok(true) => None,
        Ok(false) => {
            tracing::debug!("throttled");
            crate::metrics::throttled(system_id);
            Some(CommandStatus::ESME_RTHROTTLED)
        }
        Err(e) => {
            tracing::error!(error = %e, "rate budget not reachable");
            Some(CommandStatus::ESME_RSYSERR)
        }
    }
}

/// The `_resp` of request `id` with `status` and no body (generic_nack when `id` has
/// no response of its own).
fn error_resp(id: CommandId, seq: u32, status: CommandStatus) -> Pdu {
    let body = Body::empty_response(id).unwrap_or(Body::GenericNack);
    Pdu {
        command_status: status,
        sequence_number: seq,
        body,
    }
}
