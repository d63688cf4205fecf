//! The metrics endpoint: a plain HTTP/1.1 server with two routes, `GET /metrics`
//! (Prometheus text format) and `GET /healthz` (200 or 503 with a JSON body).
//!
//! hyper's connection driver is used directly, without a framework: two fixed routes
//! do not need a router, and it keeps the build small.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
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
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::health::Health;
use crate::server::ServerHandle;
use crate::store::Store;

/// Scrapers connected at once; more wait in the accept queue.
const MAX_CONNECTIONS: usize = 16;
/// A request's headers must arrive within this time.
const HEADER_TIMEOUT: Duration = Duration::from_secs(5);
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
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let mut upkeep = tokio::time::interval(UPKEEP_INTERVAL);
    loop {
        let permit = tokio::select! {
            p = slots.clone().acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => return,
            },
            _ = stop.cancelled() => return,
        };
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
        let stream = match accepted {
            Ok((s, _)) => s,
            Err(e) => {
                // Out of file descriptors and the like: do not spin.
                tracing::warn!(error = %e, "metrics endpoint: accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
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
            drop(permit);
        });
    }
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
