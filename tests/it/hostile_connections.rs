//! Connection floods: many sockets that never bind, connections past
//! `max_connections` (shared by the plain and TLS listeners), past
//! `max_connections_per_ip`, and past the share of connections not bound yet.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use smpp_protocol::{Body, CommandStatus, Pdu};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio::time::Instant;

use crate::support::config::TestConfig;
use crate::support::esme::{self, bind_body, BindAs, Esme};
use crate::support::hostile::still_serves;
use crate::support::messages::{encode, submit_sm};
use crate::support::own_process;
use crate::support::server_harness::{start, start_with, Options};

/// Idle connections opened at once (the 10k run is the soak script's job).
const IDLE: usize = 1000;

/// Reads until EOF or reset; returns how many octets arrived before.
async fn closed(mut s: TcpStream, limit: Duration) -> (usize, Instant) {
    let mut buf = [0u8; 512];
    let mut n = 0;
    tokio::time::timeout(limit, async {
        loop {
            match s.read(&mut buf).await {
                Ok(0) | Err(_) => return (n, Instant::now()),
                Ok(k) => n += k,
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("connection not closed within {limit:?}"))
}

/// A thousand connections that never send a byte are each closed at bind_timeout
/// (not before), silently; meanwhile, and afterwards, a real ESME binds and submits.
#[tokio::test]
async fn a_thousand_connections_that_never_bind_are_closed_at_bind_timeout() {
    let bind_timeout = Duration::from_secs(2);
    let s = start(
        TestConfig::new()
            .set("server.max_connections", 5000)
            .set("server.max_connections_per_ip", 5000)
            .set("server.bind_timeout", "2s")
            .esme("acme", ""),
    )
    .await;
    let started = Instant::now();
    let mut conns = Vec::with_capacity(IDLE);
    for _ in 0..IDLE {
        conns.push(TcpStream::connect(s.addr).await.unwrap());
    }
    let all_connected = Instant::now();
    assert!(
        all_connected - started < bind_timeout,
        "connecting took {:?}; the test needs them all open before bind_timeout",
        all_connected - started
    );
    let waits: Vec<_> = conns
        .into_iter()
        .map(|c| tokio::spawn(closed(c, bind_timeout * 10)))
        .collect();
    // While all of them are open, the server serves.
    still_serves(s.addr, "acme").await;

    let mut last = started;
    for w in waits {
        let (octets, at) = w.await.unwrap();
        assert_eq!(
            octets, 0,
            "nothing is sent to a connection that never bound"
        );
        assert!(
            at - started >= bind_timeout,
            "closed after {:?}",
            at - started
        );
        last = last.max(at);
    }
    assert!(
        last - all_connected < bind_timeout + Duration::from_secs(3),
        "the last idle connection closed only {:?} after the last connect",
        last - all_connected
    );
    // Nothing leaked into the registry, and the server goes on serving.
    s.wait_binds("acme", 0).await;
    still_serves(s.addr, "acme").await;
}

/// With max_connections sessions open (plain and TLS together), one more connection
/// is closed at once — its bind unanswered — on either port; once a session ends,
/// its slot is free again.
#[tokio::test]
async fn connections_past_max_connections_are_closed_at_once() {
    const MAX: usize = 5;
    let s = start_with(
        TestConfig::new()
            .set("server.max_connections", MAX as i64)
            .esme("acme", ""),
        Options {
            tls: true,
            service: None,
        },
    )
    .await;
    let tls_addr = s.tls_addr.unwrap();
    let ca = s.ca_der.clone().unwrap();
    let mut bound = Vec::new();
    for i in 0..MAX {
        let c = if i % 2 == 0 {
            Esme::bound(s.addr, BindAs::Trx, "acme", "pw").await
        } else {
            let c = Esme::connect_tls(tls_addr, &ca).await;
            let r = c.bind(BindAs::Trx, "acme", "pw").await;
            assert_eq!(r.command_status, CommandStatus::ESME_ROK);
            c
        };
        bound.push(c);
    }
    s.wait_binds("acme", MAX).await;

    // bind_timeout is 5 s: "at once" means well before any server timer.
    let at_once = Duration::from_secs(2);
    for _ in 0..3 {
        let mut extra = TcpStream::connect(s.addr).await.unwrap();
        let bind = encode(&Pdu::new(1, Body::BindTransceiver(bind_body("acme", "pw"))));
        // The server may already have closed it: a failed write is fine.
        let _ = extra.write_all(&bind).await;
        let (octets, _) = closed(extra, at_once).await;
        assert_eq!(octets, 0, "no bind_resp past max_connections");
    }
    let tcp = TcpStream::connect(tls_addr).await.unwrap();
    let (_, _) = closed(tcp, at_once).await;
    assert!(
        esme::tls_connect(tls_addr, &ca).await.is_err(),
        "TLS handshake past max_connections must fail"
    );
    // The sessions holding the slots never noticed.
    for c in &mut bound {
        assert_eq!(
            c.submit(submit_sm("4915112345", b"inside"))
                .await
                .command_status,
            CommandStatus::ESME_ROK
        );
    }

    // One unbinds: its slot frees once the session task has finished.
    let leaving = bound.pop().unwrap();
    let r = leaving.request(Body::Unbind).await;
    assert_eq!(r.command_status, CommandStatus::ESME_ROK);
    leaving.expect_closed().await;
    bind_once_a_place_frees("127.0.0.1", s.addr).await;
    s.wait_binds("acme", MAX).await;
}

/// "At once": far less than bind_timeout (5 s), long enough for a busy CI box.
const AT_ONCE: Duration = Duration::from_secs(2);

/// A TCP connection from `source` (any 127.0.0.0/8 address is loopback on Linux).
async fn connect_from(source: &str, addr: SocketAddr) -> TcpStream {
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind(format!("{source}:0").parse().unwrap()).unwrap();
    tokio::time::timeout(esme::WAIT, socket.connect(addr))
        .await
        .unwrap()
        .unwrap()
}

/// Whether the server closes `s` within `limit` (with nothing sent).
async fn closed_within(s: &mut TcpStream, limit: Duration) -> bool {
    let mut buf = [0u8; 64];
    match tokio::time::timeout(limit, s.read(&mut buf)).await {
        Ok(Ok(0)) | Ok(Err(_)) => true,
        Ok(Ok(n)) => panic!("server sent {n} octets to a connection that never bound"),
        Err(_) => false,
    }
}

/// Asserts that the server closed exactly the first `n` of `conns`: each of those
/// is waited for; the others are then looked at only briefly. A connection is pushed
/// out as a newer one is accepted, and the newer ones were accepted before those
/// closes were seen, so nothing else is due to close: a short look (50 ms) is the
/// only way to see that something does not happen, and it comes after the events.
async fn assert_closed(conns: &mut [TcpStream], n: usize) {
    for (i, c) in conns.iter_mut().enumerate().take(n) {
        assert!(closed_within(c, AT_ONCE).await, "connection {i} not closed");
    }
    for (i, c) in conns.iter_mut().enumerate().skip(n) {
        assert!(
            !closed_within(c, Duration::from_millis(50)).await,
            "connection {i} closed"
        );
    }
}

async fn bound_from(source: &str, addr: SocketAddr) -> Esme {
    let c = Esme::from_io(Box::new(connect_from(source, addr).await));
    let r = c.bind(BindAs::Trx, "acme", "pw").await;
    assert_eq!(r.command_status, CommandStatus::ESME_ROK, "{r:?}");
    c
}

/// One address holding max_connections_per_ip connections (bound or not) gets no more,
/// closed at once; another address still connects and binds; a freed place is free.
#[tokio::test]
async fn an_address_past_max_connections_per_ip_is_refused_others_are_not() {
    let s = start(
        TestConfig::new()
            .set("server.max_connections", 100)
            .set("server.max_connections_per_ip", 3)
            .esme("acme", ""),
    )
    .await;
    let bound = bound_from("127.0.0.1", s.addr).await;
    let idle = vec![
        connect_from("127.0.0.1", s.addr).await,
        connect_from("127.0.0.1", s.addr).await,
    ];
    for i in 0..3 {
        let mut extra = connect_from("127.0.0.1", s.addr).await;
        assert!(
            closed_within(&mut extra, AT_ONCE).await,
            "connection {} from 127.0.0.1 past max_connections_per_ip = 3",
            4 + i
        );
    }
    // The two unbound ones within the limit were kept: they bind now.
    let mut idle: Vec<Esme> = idle
        .into_iter()
        .map(|c| Esme::from_io(Box::new(c)))
        .collect();
    for c in &idle {
        let r = c.bind(BindAs::Trx, "acme", "pw").await;
        assert_eq!(r.command_status, CommandStatus::ESME_ROK, "{r:?}");
    }
    let other = bound_from("127.0.0.2", s.addr).await;
    assert_eq!(
        other
            .submit(submit_sm("4915112345", b"from .2"))
            .await
            .command_status,
        CommandStatus::ESME_ROK
    );
    assert_eq!(
        bound
            .submit(submit_sm("4915112345", b"from .1"))
            .await
            .command_status,
        CommandStatus::ESME_ROK
    );
    // One of 127.0.0.1's connections closes: its place is free again.
    drop(idle.pop());
    bind_once_a_place_frees("127.0.0.1", s.addr).await;
}

/// Connects from `source` and binds "acme", again until the server keeps the
/// connection: a session that has closed frees its place only once its task ends.
async fn bind_once_a_place_frees(source: &str, addr: SocketAddr) {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let c = Esme::from_io(Box::new(connect_from(source, addr).await));
        let seq = c.next_seq();
        c.send(Pdu::new(
            seq,
            Body::BindTransceiver(bind_body("acme", "pw")),
        ))
        .await;
        match c.recv_item().await {
            Some(Ok(Ok(p))) => {
                assert_eq!(p.command_status, CommandStatus::ESME_ROK, "{p:?}");
                return;
            }
            // Closed: the old session is still finishing; try again.
            _ => {
                assert!(Instant::now() < deadline, "place never freed");
                // Poll interval while the old session finishes, not a synchronisation.
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    }
}

/// Connections that never bind take at most max_unbound_connections places: past
/// that, and at max_connections, a new connection pushes out the oldest one not
/// bound yet (closed at once, nothing sent). So ESMEs still connect and bind while
/// idle connections fill their share, and even when they fill the server.
#[tokio::test]
async fn sessions_still_connect_and_bind_when_unbound_connections_fill_their_share() {
    let s = start(
        TestConfig::new()
            .set("server.max_connections", 8)
            .set("server.max_unbound_connections", 4)
            .set("server.max_connections_per_ip", 100)
            // The idle connections stay until the test closes them.
            .set("server.bind_timeout", "60s")
            .esme("acme", ""),
    )
    .await;
    let mut idle = Vec::new();
    for _ in 0..8 {
        idle.push(connect_from("127.0.0.1", s.addr).await);
    }
    // Each of the last four pushed out one of the first four.
    assert_closed(&mut idle, 4).await;
    // Four unbound open: the first ESME takes the oldest one's place, the next three
    // find room (4 idle + 3 bound < 8).
    let mut sessions = Vec::new();
    for _ in 0..4 {
        sessions.push(bound_from("127.0.0.2", s.addr).await);
    }
    s.wait_binds("acme", 4).await;
    // 4 bound + 4 idle: the server is full; a fifth ESME still gets in.
    idle.push(connect_from("127.0.0.1", s.addr).await);
    sessions.push(bound_from("127.0.0.2", s.addr).await);
    s.wait_binds("acme", 5).await;
    // The oldest unbound ones made room: idle 4 for the first ESME, idle 5 now.
    assert_closed(&mut idle, 6).await;
    // Bound sessions are never pushed out.
    for c in &mut sessions {
        assert_eq!(
            c.submit(submit_sm("4915112345", b"still bound"))
                .await
                .command_status,
            CommandStatus::ESME_ROK
        );
    }
}

/// Refused connections are counted and logged as one summary line per interval, not
/// a line per connection.
#[tokio::test]
async fn refused_connections_are_logged_as_one_summary_line() {
    // Its subscriber is this thread's only. tracing caches process-wide whether a log
    // line is wanted, decided on the thread that first logs it; with one scoped
    // subscriber alive that is the logging thread's own (none on other tests'
    // threads): another test's server logging the summary line first would silence it
    // here. So no other test may run in this process.
    if own_process::alone(
        module_path!(),
        "refused_connections_are_logged_as_one_summary_line",
    ) {
        return;
    }
    let log = Captured::default();
    let subscriber = tracing_subscriber::fmt()
        .with_ansi(false)
        .with_max_level(tracing::Level::INFO)
        .with_writer(log.clone())
        .finish();
    // The test runtime runs every task on this thread, so the server's logs land here.
    let _guard = tracing::subscriber::set_default(subscriber);
    let s = start(
        TestConfig::new()
            .set("server.max_connections_per_ip", 1)
            .esme("acme", ""),
    )
    .await;
    let _held = connect_from("127.0.0.1", s.addr).await;
    const REFUSED: u64 = 30;
    for _ in 0..REFUSED {
        let mut c = connect_from("127.0.0.1", s.addr).await;
        assert!(closed_within(&mut c, AT_ONCE).await);
    }
    // They took well under one interval, so their count is in one or two lines.
    let limit = smppd::admission::SUMMARY_INTERVAL * 2 + Duration::from_secs(2);
    let deadline = Instant::now() + limit;
    let lines = loop {
        let lines = log.lines_with("connections refused");
        let total: u64 = lines
            .iter()
            .map(|l| field(l, "refused_max_connections_per_ip"))
            .sum();
        if total == REFUSED {
            break lines;
        }
        assert!(
            total < REFUSED && Instant::now() < deadline,
            "{total} refusals summed up within {limit:?}:\n{}",
            log.text()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(lines.len() <= 2, "{lines:#?}");
    let warnings: Vec<String> = log
        .text()
        .lines()
        .filter(|l| l.contains("WARN") && !l.contains("connections refused"))
        .map(str::to_owned)
        .collect();
    assert!(warnings.is_empty(), "a line per refusal: {warnings:#?}");
    // 127.0.0.2 is not refused.
    bound_from("127.0.0.2", s.addr).await;
}

/// The value of `name=N` in a log line.
fn field(line: &str, name: &str) -> u64 {
    let at = line
        .find(&format!("{name}="))
        .unwrap_or_else(|| panic!("no {name} in {line}"));
    line[at + name.len() + 1..]
        .split(|c: char| !c.is_ascii_digit())
        .next()
        .unwrap()
        .parse()
        .unwrap()
}

/// Log output captured in memory.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Captured {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }

    fn lines_with(&self, what: &str) -> Vec<String> {
        self.text()
            .lines()
            .filter(|l| l.contains(what))
            .map(str::to_owned)
            .collect()
    }
}

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Captured {
    type Writer = Captured;

    fn make_writer(&'a self) -> Captured {
        self.clone()
    }
}
