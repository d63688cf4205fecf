//! The test SMPP client: one ESME connection to smppd over a real socket, plain or
//! TLS, on the smpp-protocol codec. Every wait has a timeout; a timeout fails the
//! test with what was seen.
//!
//! One way in — [`Esme::connect`], [`Esme::connect_tls`], or [`Esme::from_io`] for a
//! socket a test made itself (another source address, say) — and one way out:
//! [`Esme::send`] writes a PDU, [`Esme::send_raw`] any octets, [`Esme::request`] sends
//! a request and returns its response. Two ways to read what smppd sends:
//!
//! * **one by one** (a connection starts so, [`Esme::bound`] too): the test reads
//!   every PDU itself — [`Esme::recv`], [`Esme::recv_item`] (frame errors, end of
//!   stream), [`Esme::next_pdu`], [`Esme::expect_closed`]; a request's response must
//!   be the next PDU but for smppd's enquire_links, which are answered meanwhile.
//!   For the server, state and hostile-input tests, which check each PDU.
//! * **answering** ([`Esme::answering`], or [`Esme::into_answering`] of a bound
//!   one): a reader task matches responses to requests by sequence number (requests
//!   may overlap), answers enquire_link and unbind, answers every deliver_sm and
//!   data_sm (statuses chosen with [`Esme::answer_with`], or none after
//!   [`Esme::answer_deliveries`]`(false)`) and collects them: [`Esme::delivered`],
//!   [`Esme::wait_delivered`]. For the end-to-end tests, where receipts and routed
//!   messages come whenever smppd sends them.
//!
//! Dropping a client closes its connection.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::StreamExt;
use smpp_protocol::codec::{FrameError, InvalidPdu, SmppCodec};
use smpp_protocol::receipt::{DeliveryReceipt, ReceiptStat};
use smpp_protocol::{
    Bind, Body, COctetString, CommandId, CommandStatus, MessageIdResp, Pdu, SubmitSm, Tlv,
};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadHalf, WriteHalf};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::AbortHandle;
use tokio_util::codec::FramedRead;

use crate::support::config::PW;
use crate::support::messages::{cs, message_id_of};

/// How long reading one PDU (one by one), a connect or a TLS handshake may take.
pub const WAIT: Duration = Duration::from_secs(5);
/// How long a request may wait for its response when answering. Generous: during a
/// Redis outage the store answers only after its own timeouts and retries.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(20);

/// What the client runs over: a TCP stream, a TLS stream, a test's own socket.
pub trait Io: AsyncRead + AsyncWrite + Send + Unpin {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin> Io for T {}

/// One item read: a PDU, a PDU smppd sent that does not decode, or a frame error.
pub type Item = Result<Result<Pdu, InvalidPdu>, FrameError>;

type Reader = FramedRead<ReadHalf<Box<dyn Io>>, SmppCodec>;
type Writer = Arc<tokio::sync::Mutex<WriteHalf<Box<dyn Io>>>>;

/// The bind types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BindAs {
    Tx,
    Rx,
    Trx,
}

impl BindAs {
    pub const ALL: [BindAs; 3] = [BindAs::Tx, BindAs::Rx, BindAs::Trx];

    /// bind_transmitter, bind_receiver or bind_transceiver.
    pub fn command_id(self) -> CommandId {
        match self {
            BindAs::Tx => CommandId::BIND_TRANSMITTER,
            BindAs::Rx => CommandId::BIND_RECEIVER,
            BindAs::Trx => CommandId::BIND_TRANSCEIVER,
        }
    }

    /// The bind request carrying `bind`.
    pub fn body(self, bind: Bind) -> Body {
        match self {
            BindAs::Tx => Body::BindTransmitter(bind),
            BindAs::Rx => Body::BindReceiver(bind),
            BindAs::Trx => Body::BindTransceiver(bind),
        }
    }
}

/// A bind of SMPP 3.4 with this system_id and password, no system_type.
pub fn bind_body(system_id: &str, password: &str) -> Bind {
    Bind {
        system_id: cs(system_id),
        password: cs(password),
        system_type: cs(""),
        interface_version: 0x34,
        ..Bind::default()
    }
}

/// A deliver_sm (or data_sm) an answering client received.
#[derive(Debug, Clone)]
pub struct Delivered {
    /// `DELIVER_SM`, or `DATA_SM` for an account with `receipt_pdu = "data_sm"`.
    pub command: CommandId,
    pub esm_class: u8,
    pub data_coding: u8,
    pub source: String,
    pub dest: String,
    /// Every TLV as received.
    pub tlvs: Vec<Tlv>,
    pub receipted_message_id: Option<String>,
    pub message_state: Option<u8>,
    /// short_message, or message_payload when present, as received.
    pub raw: Bytes,
    pub text: String,
    /// The Appendix B receipt text parsed, when it is one.
    pub receipt: Option<DeliveryReceipt>,
    pub at: Instant,
}

/// An ESME's connection to smppd.
pub struct Esme {
    system_id: OnceLock<String>,
    seq: AtomicU32,
    writer: Writer,
    reading: Reading,
}

enum Reading {
    /// The test reads every PDU.
    OneByOne(tokio::sync::Mutex<Reader>),
    /// A reader task does, and answers smppd's requests.
    Answering {
        shared: Arc<Shared>,
        /// The reader task holds the read half (and the answers' sender, whose end
        /// ends the writer task): stopping it when the client goes closes the
        /// connection.
        _reader: AbortOnDrop,
    },
}

struct AbortOnDrop(AbortHandle);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// What an answering client's reader task shares with it.
struct Shared {
    pending: Mutex<HashMap<u32, oneshot::Sender<Pdu>>>,
    delivered: Mutex<Vec<Delivered>>,
    /// Bumped on every delivery and when the connection ends.
    version: watch::Sender<u64>,
    closed: AtomicBool,
    /// Answer deliver_sm / data_sm (default) — off: stay silent.
    answer: AtomicBool,
    /// The command_status of the next deliver_sm_resps, in order; then ESME_ROK.
    statuses: Mutex<VecDeque<CommandStatus>>,
}

impl Esme {
    /// A TCP connection, read one PDU at a time.
    pub async fn connect(addr: SocketAddr) -> Esme {
        let s = tokio::time::timeout(WAIT, TcpStream::connect(addr))
            .await
            .unwrap_or_else(|_| panic!("no connection to {addr} within {WAIT:?}"))
            .unwrap();
        Esme::from_io(Box::new(s))
    }

    /// A TLS connection trusting exactly `ca` (DER) for "localhost".
    pub async fn connect_tls(addr: SocketAddr, ca: &[u8]) -> Esme {
        let s = tls_connect(addr, ca).await.unwrap();
        Esme::from_io(Box::new(s))
    }

    /// A connection over `io`, read one PDU at a time.
    pub fn from_io(io: Box<dyn Io>) -> Esme {
        let (r, w) = tokio::io::split(io);
        Esme {
            system_id: OnceLock::new(),
            seq: AtomicU32::new(0),
            writer: Arc::new(tokio::sync::Mutex::new(w)),
            reading: Reading::OneByOne(tokio::sync::Mutex::new(FramedRead::new(
                r,
                SmppCodec::new(),
            ))),
        }
    }

    /// Connects and binds; panics unless the bind is answered ESME_ROK. Read one PDU
    /// at a time.
    pub async fn bound(addr: SocketAddr, bind_as: BindAs, system_id: &str, pw: &str) -> Esme {
        let c = Esme::connect(addr).await;
        let r = c.bind(bind_as, system_id, pw).await;
        assert_eq!(
            r.command_status,
            CommandStatus::ESME_ROK,
            "bind {bind_as:?} {system_id} failed: {r:?}"
        );
        c
    }

    /// Connects and binds with password [`PW`], then answers (see the module
    /// documentation); panics unless the bind is answered ESME_ROK.
    pub async fn answering(addr: SocketAddr, bind_as: BindAs, system_id: &str) -> Esme {
        let (esme, status) = Esme::try_answering(addr, bind_as, system_id).await;
        assert_eq!(
            status,
            CommandStatus::ESME_ROK,
            "bind {bind_as:?} {system_id}"
        );
        esme
    }

    /// [`Esme::answering`] that returns the bind's command_status instead of
    /// checking it (smppd closes the connection after a refusal).
    pub async fn try_answering(
        addr: SocketAddr,
        bind_as: BindAs,
        system_id: &str,
    ) -> (Esme, CommandStatus) {
        let c = Esme::connect(addr).await;
        let r = c.bind(bind_as, system_id, PW).await;
        (c.into_answering(), r.command_status)
    }

    /// From now on a reader task reads (see the module documentation); what smppd
    /// sent that the test has not read yet is its first.
    pub fn into_answering(self) -> Esme {
        let Esme {
            system_id,
            seq,
            writer,
            reading,
        } = self;
        let reader = match reading {
            Reading::OneByOne(r) => r.into_inner(),
            Reading::Answering { .. } => panic!("already answering"),
        };
        let shared = Arc::new(Shared {
            pending: Mutex::new(HashMap::new()),
            delivered: Mutex::new(Vec::new()),
            version: watch::Sender::new(0),
            closed: AtomicBool::new(false),
            answer: AtomicBool::new(true),
            statuses: Mutex::new(VecDeque::new()),
        });
        // Answers go through a writer task, so that the reader never waits for the
        // socket: smppd may be waiting for us to read.
        let (replies, mut to_write) = mpsc::unbounded_channel::<Pdu>();
        let w = writer.clone();
        tokio::spawn(async move {
            while let Some(p) = to_write.recv().await {
                let mut w = w.lock().await;
                if w.write_all(&p.to_bytes()).await.is_err() || w.flush().await.is_err() {
                    return;
                }
            }
        });
        let task = tokio::spawn(read_and_answer(reader, shared.clone(), replies));
        Esme {
            system_id,
            seq,
            writer,
            reading: Reading::Answering {
                shared,
                _reader: AbortOnDrop(task.abort_handle()),
            },
        }
    }

    /// The system_id of its successful bind ("" before one).
    pub fn system_id(&self) -> &str {
        self.system_id.get().map(String::as_str).unwrap_or("")
    }

    /// A fresh sequence number for a request.
    pub fn next_seq(&self) -> u32 {
        self.seq.fetch_add(1, Ordering::SeqCst) + 1
    }

    pub async fn send(&self, pdu: Pdu) {
        self.send_raw(&pdu.to_bytes()).await;
    }

    /// Writes `bytes` as they are, whatever they are.
    pub async fn send_raw(&self, bytes: &[u8]) {
        let mut w = self.writer.lock().await;
        w.write_all(bytes).await.unwrap();
        w.flush().await.unwrap();
    }

    /// Sends `body` as a request with a fresh sequence number and returns the
    /// response to it.
    pub async fn request(&self, body: Body) -> Pdu {
        let seq = self.next_seq();
        match &self.reading {
            Reading::OneByOne(_) => {
                self.send(Pdu::new(seq, body)).await;
                self.response_to(seq).await
            }
            Reading::Answering { shared, .. } => {
                let (tx, rx) = oneshot::channel();
                shared.pending.lock().unwrap().insert(seq, tx);
                let what = format!("{:?}", body.command_id());
                self.send(Pdu::new(seq, body)).await;
                match tokio::time::timeout(REQUEST_TIMEOUT, rx).await {
                    Ok(Ok(p)) => p,
                    Ok(Err(_)) => panic!(
                        "{}: connection closed before the response to {what}",
                        self.system_id()
                    ),
                    Err(_) => panic!(
                        "{}: no response to {what} within {REQUEST_TIMEOUT:?}",
                        self.system_id()
                    ),
                }
            }
        }
    }

    /// A bind request; its response (the system_id is remembered if it is OK).
    pub async fn bind(&self, bind_as: BindAs, system_id: &str, pw: &str) -> Pdu {
        let r = self.request(bind_as.body(bind_body(system_id, pw))).await;
        if r.command_status == CommandStatus::ESME_ROK {
            let _ = self.system_id.set(system_id.to_owned());
        }
        r
    }

    /// submit_sm; returns the response as is.
    pub async fn submit(&self, sm: SubmitSm) -> Pdu {
        self.request(Body::SubmitSm(sm)).await
    }

    /// submit_sm that must be answered ESME_ROK; returns its message_id.
    pub async fn submit_ok(&self, sm: SubmitSm) -> String {
        let r = self.submit(sm).await;
        assert_eq!(
            r.command_status,
            CommandStatus::ESME_ROK,
            "submit_sm: {r:?}"
        );
        message_id_of(&r)
    }

    /// query_sm of `message_id` from `source` (ton 1, npi 1): (message_state,
    /// error_code); panics unless answered ESME_ROK.
    pub async fn query(&self, message_id: &str, source: &str) -> (u8, u8) {
        let q = self
            .request(Body::QuerySm(smpp_protocol::QuerySm {
                message_id: cs(message_id),
                source_addr_ton: 1,
                source_addr_npi: 1,
                source_addr: cs(source),
                tlvs: Vec::new(),
            }))
            .await;
        match q.body {
            Body::QuerySmResp(Some(a)) if q.command_status == CommandStatus::ESME_ROK => {
                (a.message_state, a.error_code)
            }
            _ => panic!("query_sm {message_id}: {q:?}"),
        }
    }

    pub async fn enquire_link(&self) -> Pdu {
        self.request(Body::EnquireLink).await
    }

    /// unbind, answered ESME_ROK.
    pub async fn unbind(&self) {
        let r = self.request(Body::Unbind).await;
        assert_eq!(r.command_status, CommandStatus::ESME_ROK, "unbind: {r:?}");
    }

    // -----------------------------------------------------------------------------
    // Reading one PDU at a time

    fn reader(&self) -> &tokio::sync::Mutex<Reader> {
        match &self.reading {
            Reading::OneByOne(r) => r,
            Reading::Answering { .. } => {
                panic!("an answering client's PDUs are read by its reader task")
            }
        }
    }

    /// The next item within `within`, or None at end of stream.
    async fn recv_item_within(&self, within: Duration) -> Option<Item> {
        let mut r = self.reader().lock().await;
        tokio::time::timeout(within, r.next())
            .await
            .unwrap_or_else(|_| panic!("no PDU within {within:?}"))
    }

    /// The next item (within [`WAIT`]), or None at end of stream.
    pub async fn recv_item(&self) -> Option<Item> {
        self.recv_item_within(WAIT).await
    }

    /// The next PDU, which must be a well-formed one (within [`WAIT`]).
    pub async fn recv(&self) -> Pdu {
        match self.recv_item().await {
            Some(Ok(Ok(p))) => p,
            other => panic!("expected a PDU, got {other:?}"),
        }
    }

    /// The next PDU but smppd's enquire_links, which are answered, within `within`.
    pub async fn next_pdu(&self, within: Duration) -> Pdu {
        let deadline = Instant::now() + within;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let p = match self.recv_item_within(left).await {
                Some(Ok(Ok(p))) => p,
                other => panic!("expected a PDU, got {other:?}"),
            };
            if p.body != Body::EnquireLink {
                return p;
            }
            self.send(Pdu::new(p.sequence_number, Body::EnquireLinkResp))
                .await;
        }
    }

    /// The response to request `seq`: the next PDU but enquire_links (answered).
    pub async fn response_to(&self, seq: u32) -> Pdu {
        let p = self.next_pdu(REQUEST_TIMEOUT).await;
        assert_eq!(p.sequence_number, seq, "unexpected PDU {p:?}");
        p
    }

    /// Reads until the server closes the connection (EOF or reset), failing on
    /// timeout or on an undecodable PDU. Returns what arrived before.
    pub async fn expect_closed(&self) -> Vec<Pdu> {
        let mut got = Vec::new();
        loop {
            match self.recv_item().await {
                None | Some(Err(_)) => return got,
                Some(Ok(Ok(p))) => got.push(p),
                Some(Ok(Err(e))) => panic!("undecodable PDU from server: {e}"),
            }
        }
    }

    // -----------------------------------------------------------------------------
    // Answering

    fn shared(&self) -> &Shared {
        match &self.reading {
            Reading::Answering { shared, .. } => shared,
            Reading::OneByOne(_) => panic!("a client read one by one collects nothing"),
        }
    }

    /// Answers the next deliver_sm with these statuses, in order (then ESME_ROK).
    pub fn answer_with(&self, statuses: &[CommandStatus]) {
        self.shared().statuses.lock().unwrap().extend(statuses);
    }

    /// Stop (or resume) answering deliver_sm and data_sm.
    pub fn answer_deliveries(&self, yes: bool) {
        self.shared().answer.store(yes, Ordering::SeqCst);
    }

    /// Whether smppd closed the connection.
    pub fn is_closed(&self) -> bool {
        self.shared().closed.load(Ordering::SeqCst)
    }

    /// Every deliver_sm (and data_sm) received so far.
    pub fn delivered(&self) -> Vec<Delivered> {
        self.shared().delivered.lock().unwrap().clone()
    }

    /// Waits until at least `n` deliveries arrived; returns them all.
    pub async fn wait_delivered(&self, n: usize, timeout: Duration) -> Vec<Delivered> {
        let mut rx = self.shared().version.subscribe();
        let start = Instant::now();
        loop {
            let got = self.delivered();
            if got.len() >= n {
                return got;
            }
            let left = timeout.saturating_sub(start.elapsed());
            assert!(
                !left.is_zero() && !self.is_closed(),
                "{}: {} of {n} deliver_sm after {:?} (closed: {})",
                self.system_id(),
                got.len(),
                start.elapsed(),
                self.is_closed()
            );
            let _ = tokio::time::timeout(left, rx.changed()).await;
        }
    }
}

/// An answering client's reader task.
async fn read_and_answer(mut reader: Reader, sh: Arc<Shared>, replies: mpsc::UnboundedSender<Pdu>) {
    while let Some(item) = reader.next().await {
        let pdu = match item {
            Ok(Ok(p)) => p,
            Ok(Err(e)) => panic!("undecodable PDU from smppd: {e:?}"),
            Err(_) => break,
        };
        let id = pdu.command_id();
        if id.is_response() || id == CommandId::GENERIC_NACK {
            let waiter = sh.pending.lock().unwrap().remove(&pdu.sequence_number);
            if let Some(w) = waiter {
                let _ = w.send(pdu);
            }
            continue;
        }
        let seq = pdu.sequence_number;
        match pdu.body {
            Body::EnquireLink => {
                let _ = replies.send(Pdu::new(seq, Body::EnquireLinkResp));
            }
            Body::Unbind => {
                let _ = replies.send(Pdu::new(seq, Body::UnbindResp));
            }
            Body::DeliverSm(d) => {
                sh.delivered.lock().unwrap().push(delivered(&d));
                if sh.answer.load(Ordering::SeqCst) {
                    let status = sh
                        .statuses
                        .lock()
                        .unwrap()
                        .pop_front()
                        .unwrap_or(CommandStatus::ESME_ROK);
                    let _ = replies.send(Pdu {
                        command_status: status,
                        sequence_number: seq,
                        body: Body::DeliverSmResp(Some(MessageIdResp::default())),
                    });
                }
                sh.version.send_modify(|v| *v += 1);
            }
            Body::DataSm(d) => {
                sh.delivered.lock().unwrap().push(delivered_data_sm(&d));
                if sh.answer.load(Ordering::SeqCst) {
                    let _ = replies.send(Pdu::new(
                        seq,
                        Body::DataSmResp(Some(MessageIdResp::default())),
                    ));
                }
                sh.version.send_modify(|v| *v += 1);
            }
            other => panic!("unexpected request from smppd: {other:?}"),
        }
    }
    sh.closed.store(true, Ordering::SeqCst);
    sh.pending.lock().unwrap().clear();
    sh.version.send_modify(|v| *v += 1);
}

fn delivered(d: &SubmitSm) -> Delivered {
    let raw = match smpp_protocol::tlv::message_payload(&d.tlvs) {
        Some(p) => p.clone(),
        None => d.short_message.clone(),
    };
    delivered_parts(
        CommandId::DELIVER_SM,
        d.esm_class,
        d.data_coding,
        &d.source_addr,
        &d.destination_addr,
        &d.tlvs,
        raw,
    )
}

fn delivered_data_sm(d: &smpp_protocol::DataSm) -> Delivered {
    delivered_parts(
        CommandId::DATA_SM,
        d.esm_class,
        d.data_coding,
        &d.source_addr,
        &d.destination_addr,
        &d.tlvs,
        Bytes::copy_from_slice(d.user_data()),
    )
}

fn delivered_parts(
    command: CommandId,
    esm_class: u8,
    data_coding: u8,
    source: &COctetString,
    dest: &COctetString,
    tlvs: &[Tlv],
    raw: Bytes,
) -> Delivered {
    let mut receipted = None;
    let mut state = None;
    for t in tlvs {
        match t {
            Tlv::ReceiptedMessageId(id) => receipted = Some(id.to_string_lossy().into_owned()),
            Tlv::MessageState(s) => state = Some(*s),
            _ => {}
        }
    }
    // Read by data_coding, as an ESME does (a receipt's is 0: GSM 03.38 septets).
    let text = match smpp_protocol::text::decode_user_data_lossy(data_coding, &raw) {
        smpp_protocol::text::DecodedText::Text(t) => t,
        smpp_protocol::text::DecodedText::Binary => String::from_utf8_lossy(&raw).into_owned(),
    };
    Delivered {
        command,
        esm_class,
        data_coding,
        source: source.to_string_lossy().into_owned(),
        dest: dest.to_string_lossy().into_owned(),
        tlvs: tlvs.to_vec(),
        receipted_message_id: receipted,
        message_state: state,
        raw,
        receipt: DeliveryReceipt::parse(&text).ok(),
        text,
        at: Instant::now(),
    }
}

/// Asserts the receipts are exactly one per id in `ids` (no id twice, none missing),
/// each a well-formed receipt with `stat` and the matching message_state TLV.
pub fn assert_receipts(got: &[Delivered], ids: &[String], stat: ReceiptStat) {
    let mut seen: HashMap<&str, usize> = HashMap::new();
    for d in got {
        assert_eq!(d.esm_class, 0x04, "receipt esm_class: {d:?}");
        let id = d
            .receipted_message_id
            .as_deref()
            .unwrap_or_else(|| panic!("receipt without receipted_message_id: {d:?}"));
        *seen.entry(id).or_default() += 1;
        assert_eq!(
            d.message_state,
            Some(stat.message_state()),
            "message_state TLV: {d:?}"
        );
        let r = d
            .receipt
            .as_ref()
            .unwrap_or_else(|| panic!("unparsable receipt text {:?}", d.text));
        assert_eq!(r.id, id, "receipt text id vs TLV: {d:?}");
        assert_eq!(r.stat, stat, "receipt stat: {d:?}");
    }
    let dup: Vec<_> = seen.iter().filter(|(_, n)| **n > 1).collect();
    assert!(dup.is_empty(), "receipts delivered more than once: {dup:?}");
    let mut want: Vec<&str> = ids.iter().map(String::as_str).collect();
    want.sort_unstable();
    let mut have: Vec<&str> = seen.keys().copied().collect();
    have.sort_unstable();
    assert_eq!(
        have, want,
        "receipted_message_ids vs submit_sm_resp message_ids"
    );
}

/// A TLS client configuration trusting exactly `ca` (DER).
pub fn tls_client_config(ca: &[u8]) -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(rustls::pki_types::CertificateDer::from(ca.to_vec()))
        .unwrap();
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    Arc::new(config)
}

/// A TLS connection trusting exactly `ca` (DER) for "localhost"; Err when the
/// handshake fails (within [`WAIT`]).
pub async fn tls_connect(
    addr: SocketAddr,
    ca: &[u8],
) -> std::io::Result<tokio_rustls::client::TlsStream<TcpStream>> {
    let connector = tokio_rustls::TlsConnector::from(tls_client_config(ca));
    let tcp = TcpStream::connect(addr).await?;
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    tokio::time::timeout(WAIT, connector.connect(name, tcp))
        .await
        .unwrap()
}
