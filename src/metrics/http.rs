//! The metrics endpoint: a plain HTTP/1.1 server with two routes, `GET /metrics`
//! (Prometheus text format) and `GET /healthz` (200 or 503 with a JSON body).
//!
//! hyper's connection driver is used directly, without a framework: two fixed routes
//! do not need a router, and it keeps the build small.
//!
//! Nobody waits for a slot: past [`MAX_CONNECTIONS`] connections, or [`MAX_PER_ADDRESS`]
//! of one address, a new connection is answered `503` at once, so idle sockets of one
//! host hold a few slots at most and for [`HEADER_TIMEOUT`] only.

use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{HeaderValue, CONTENT_TYPE};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use metrics_exporter_prometheus::PrometheusHandle;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::health::Health;
use crate::admission::SourceCounts;
use crate::server::ServerHandle;
use crate::store::Store;

/// Scrapers connected at once; more are answered 503.
const MAX_CONNECTIONS: usize = 16;
/// Connections of one address (IPv4, or IPv6 /64) at once; more are answered 503.
const MAX_PER_ADDRESS: usize = 4;
/// A request's headers must arrive within this time (a scraper sends them at once);
/// also how long a keep-alive connection may sit idle between requests.
const HEADER_TIMEOUT: Duration = Duration::from_secs(2);
/// 503 answers being written at once; past this a refused connection is just closed.
pub(crate) const MAX_REFUSING: usize = 64;
/// How long writing a 503 and reading the request away may take.
const REFUSE_TIMEOUT: Duration = Duration::from_secs(1);
/// The whole answer to a connection past the limits.
const TOO_MANY: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: text/plain\r\n\
content-length: 21\r\nretry-after: 1\r\nconnection: close\r\n\r\ntoo many connections\n";
/// Histogram samples are kept until a scrape or an upkeep folds them in; without
/// scrapes this bounds how long they pile up.
const UPKEEP_INTERVAL: Duration = Duration::from_secs(5);

struct Ctx {
    recorder: Option<&'static PrometheusHandle>,
    store: Store,
    server: ServerHandle,
}

/// A running metrics endpoint.
pub struct Endpoint {
    addr: SocketAddr,
    stop: CancellationToken,
    task: JoinHandle<()>,
}

impl Endpoint {
    /// Installs the recorder (once per process), binds `listen` and serves until
    /// [`Endpoint::stop`].
    pub async fn start(
        listen: SocketAddr,
        store: Store,
        server: ServerHandle,
    ) -> std::io::Result<Endpoint> {
        let listener = TcpListener::bind(listen).await?;
        let addr = listener.local_addr()?;
        if !addr.ip().is_loopback() {
            tracing::warn!(
                %addr,
                "the metrics endpoint listens beyond loopback and has no authentication: \
                 make sure only monitoring can reach it"
            );
        }
        let ctx = Arc::new(Ctx {
            recorder: super::install(),
            store,
            server,
        });
        let stop = CancellationToken::new();
        let task = tokio::spawn(serve(listener, ctx, stop.clone()));
        tracing::info!(%addr, "metrics endpoint listening");
        Ok(Endpoint { addr, stop, task })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops accepting and closes open connections.
    pub async fn stop(self) {
        self.stop.cancel();
        let _ = self.task.await;
    }
}

async fn serve(listener: TcpListener, ctx: Arc<Ctx>, stop: CancellationToken) {
    let slots = Slots::new(MAX_CONNECTIONS, MAX_PER_ADDRESS);
    let refusing = Arc::new(Semaphore::new(MAX_REFUSING));
    let mut upkeep = tokio::time::interval(UPKEEP_INTERVAL);
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = upkeep.tick() => {
                if let Some(r) = ctx.recorder {
                    r.run_upkeep();
                }
                continue;
            }
            _ = stop.cancelled() => return,
        };
        let (stream, peer) = match accepted {
            Ok(a) => a,
            Err(e) => {
                // Out of file descriptors and the like: do not spin.
                tracing::warn!(error = %e, "metrics endpoint: accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let Some(slot) = slots.try_take(peer.ip()) else {
            tracing::debug!(%peer, "metrics endpoint: no free slot, 503");
            if let Ok(permit) = refusing.clone().try_acquire_owned() {
                tokio::spawn(async move {
                    refuse(stream).await;
                    drop(permit);
                });
            }
            continue;
        };
        let ctx = ctx.clone();
        let stop = stop.clone();
        tokio::spawn(async move {
            let service = service_fn(move |req| {
                let ctx = ctx.clone();
                async move { Ok::<_, Infallible>(route(&ctx, req).await) }
            });
            let conn = http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_TIMEOUT)
                .serve_connection(TokioIo::new(stream), service);
            tokio::select! {
                r = conn => if let Err(e) = r {
                    tracing::debug!(error = %e, "metrics endpoint: connection error");
                },
                _ = stop.cancelled() => {}
            }
            drop(slot);
        });
    }
}

/// Connections open in total and per address, against their limits ([`MAX_CONNECTIONS`]
/// and [`MAX_PER_ADDRESS`] here; the admin listener has its own).
pub(crate) struct Slots {
    counts: Mutex<SourceCounts>,
    max: usize,
    per_address: usize,
}

/// One connection's place; dropping it frees the place.
pub(crate) struct Slot {
    slots: Arc<Slots>,
    source: IpAddr,
}

impl Slots {
    pub(crate) fn new(max: usize, per_address: usize) -> Arc<Slots> {
        Arc::new(Slots {
            counts: Mutex::default(),
            max,
            per_address,
        })
    }

    pub(crate) fn try_take(self: &Arc<Self>, source: IpAddr) -> Option<Slot> {
        let mut counts = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        if counts.open() >= self.max || !counts.try_add(source, self.per_address) {
            return None;
        }
        Some(Slot {
            slots: self.clone(),
            source,
        })
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut counts = self.slots.counts.lock().unwrap_or_else(|e| e.into_inner());
        counts.remove(self.source);
    }
}

/// Answers 503 and closes. The request is read away first: closing a socket with
/// unread data resets it, and a reset can discard the 503 before the client reads it.
pub(crate) async fn refuse(mut stream: TcpStream) {
    let _ = tokio::time::timeout(REFUSE_TIMEOUT, async {
        stream.write_all(TOO_MANY).await?;
        stream.shutdown().await?;
        let mut buf = [0u8; 512];
        while stream.read(&mut buf).await? > 0 {}
        Ok::<_, std::io::Error>(())
    })
    .await;
}

async fn route(ctx: &Ctx, req: Request<Incoming>) -> Response<Full<Bytes>> {
    if req.method() != Method::GET && req.method() != Method::HEAD {
        return reply(
            StatusCode::METHOD_NOT_ALLOWED,
            "text/plain",
            "GET only\n".into(),
        );
    }
    match req.uri().path() {
        "/metrics" => {
            let mut body = ctx.recorder.map(|r| r.render()).unwrap_or_default();
            super::state::render(&mut body, &ctx.store, &ctx.server).await;
            reply(
                StatusCode::OK,
                "text/plain; version=0.0.4; charset=utf-8",
                body,
            )
        }
        "/healthz" => {
            let health = Health::check(&ctx.store).await;
            let status = if health.is_ok() {
                StatusCode::OK
            } else {
                StatusCode::SERVICE_UNAVAILABLE
            };
            reply(status, "application/json", health.to_json())
        }
        _ => reply(StatusCode::NOT_FOUND, "text/plain", "not found\n".into()),
    }
}

fn reply(status: StatusCode, content_type: &'static str, body: String) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = status;
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    r
}
