//! A tiny SMPP test client over real sockets (plain or TLS), built on the
//! smpp-protocol codec. Every wait has a timeout; a timeout fails the test.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use smpp_protocol::codec::{FrameError, InvalidPdu, SmppCodec};
use smpp_protocol::{Bind, Body, CommandId, CommandStatus, Pdu};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_util::codec::Framed;

use crate::support::messages::{cs, submit_sm};

/// How long any single wait of a test may take.
pub const WAIT: Duration = Duration::from_secs(5);

pub trait Io: AsyncRead + AsyncWrite + Send + Unpin {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin> Io for T {}

pub struct Client {
    framed: Framed<Box<dyn Io>, SmppCodec>,
    seq: u32,
}

pub type Item = Result<Result<Pdu, InvalidPdu>, FrameError>;

impl Client {
    pub async fn connect(addr: SocketAddr) -> Client {
        let s = tokio::time::timeout(WAIT, TcpStream::connect(addr))
            .await
            .unwrap()
            .unwrap();
        Client::from_io(Box::new(s))
    }

    /// TLS client trusting exactly `ca` (DER).
    pub async fn connect_tls(addr: SocketAddr, ca: &[u8]) -> Client {
        let s = tls_connect(addr, ca).await.unwrap();
        Client::from_io(Box::new(s))
    }

    pub fn from_io(io: Box<dyn Io>) -> Client {
        Client {
            framed: Framed::new(io, SmppCodec::new()),
            seq: 0,
        }
    }

    pub fn next_seq(&mut self) -> u32 {
        self.seq += 1;
        self.seq
    }

    pub async fn send(&mut self, pdu: Pdu) {
        self.framed.send(pdu).await.unwrap();
    }

    pub async fn send_raw(&mut self, bytes: &[u8]) {
        let io = self.framed.get_mut();
        io.write_all(bytes).await.unwrap();
        io.flush().await.unwrap();
    }

    /// The next item, or None at end of stream.
    pub async fn recv_item(&mut self) -> Option<Item> {
        tokio::time::timeout(WAIT, self.framed.next())
            .await
            .expect("no PDU within timeout")
    }

    /// The next well-formed PDU.
    pub async fn recv(&mut self) -> Pdu {
        match self.recv_item().await {
            Some(Ok(Ok(p))) => p,
            other => panic!("expected a PDU, got {other:?}"),
        }
    }

    /// Sends `body` as a request and returns the response with its sequence number,
    /// answering enquire_link from the server meanwhile.
    pub async fn request(&mut self, body: Body) -> Pdu {
        let seq = self.next_seq();
        self.send(Pdu::new(seq, body)).await;
        self.response_to(seq).await
    }

    pub async fn response_to(&mut self, seq: u32) -> Pdu {
        loop {
            let p = self.recv().await;
            if p.body == Body::EnquireLink {
                self.send(Pdu::new(p.sequence_number, Body::EnquireLinkResp))
                    .await;
                continue;
            }
            assert_eq!(p.sequence_number, seq, "unexpected PDU {p:?}");
            return p;
        }
    }

    pub async fn bind(&mut self, id: CommandId, system_id: &str, password: &str) -> Pdu {
        let b = bind_body(system_id, password);
        let body = match id {
            CommandId::BIND_TRANSMITTER => Body::BindTransmitter(b),
            CommandId::BIND_RECEIVER => Body::BindReceiver(b),
            _ => Body::BindTransceiver(b),
        };
        self.request(body).await
    }

    /// Binds and asserts success.
    pub async fn bound(addr: SocketAddr, id: CommandId, system_id: &str, password: &str) -> Client {
        let mut c = Client::connect(addr).await;
        let r = c.bind(id, system_id, password).await;
        assert_eq!(
            r.command_status,
            CommandStatus::ESME_ROK,
            "bind failed: {r:?}"
        );
        c
    }

    pub async fn submit(&mut self, dest: &str, text: &[u8]) -> Pdu {
        self.request(Body::SubmitSm(submit_sm(dest, text))).await
    }

    /// Reads until the server closes the connection (EOF or reset), failing on timeout.
    /// Returns what arrived before.
    pub async fn expect_closed(&mut self) -> Vec<Pdu> {
        let mut got = Vec::new();
        loop {
            match self.recv_item().await {
                None | Some(Err(_)) => return got,
                Some(Ok(Ok(p))) => got.push(p),
                Some(Ok(Err(e))) => panic!("undecodable PDU from server: {e}"),
            }
        }
    }
}

pub fn bind_body(system_id: &str, password: &str) -> Bind {
    Bind {
        system_id: cs(system_id),
        password: cs(password),
        system_type: cs(""),
        interface_version: 0x34,
        ..Bind::default()
    }
}

pub async fn tls_connect(
    addr: SocketAddr,
    ca: &[u8],
) -> std::io::Result<tokio_rustls::client::TlsStream<TcpStream>> {
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
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = TcpStream::connect(addr).await?;
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    tokio::time::timeout(WAIT, connector.connect(name, tcp))
        .await
        .unwrap()
}
