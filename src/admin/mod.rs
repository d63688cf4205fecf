//! The operator surface: a JSON API and a web console on their own listener
//! (`[admin] listen`), behind bearer tokens with a role (`read` or `admin`).
//!
//! # Layout
//! - this file: the listener and the routes.
//! - `auth`: which configured token a request presents (constant-time compare,
//!   argon2 with a cache of successes).
//! - `api`: the JSON documents, shared with the CLI (`client`).
//! - `message`: a message's state by message_id.
//! - `cluster`: every node's bind list, published in Redis.
//! - `client`: the HTTP client of `smppd binds|message|unbind`.
//! - `console.html`, `console.js`: the web console, served as they are.
//!
//! Like the metrics endpoint it is plain HTTP/1.1 on hyper without a framework: a
//! handful of fixed routes. No token is ever logged; actions are, with the name of
//! the token that did them (`admin.tokens[1]`). Tokens are read from the config in
//! force at each request, so a reload (SIGHUP) changes them; the listen address
//! needs a restart.

pub mod api;
mod auth;
pub mod client;
mod cluster;
pub mod message;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{HeaderName, HeaderValue, AUTHORIZATION, CACHE_CONTROL, CONTENT_TYPE};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use serde::Serialize;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::config::{AdminRole, Config, Credential};
use crate::metrics::http::{refuse, Slots, MAX_REFUSING};
use crate::server::ServerHandle;
use crate::store::Counter;
use crate::store::Store;

pub use auth::bearer;
pub use cluster::{BIND_LIST_TTL, HEARTBEAT};

/// Clients connected at once; more are answered 503.
const MAX_CONNECTIONS: usize = 32;
/// Connections of one address (IPv4, or IPv6 /64) at once.
const MAX_PER_ADDRESS: usize = 8;
/// A request's headers must arrive within this time; also the keep-alive idle limit.
const HEADER_TIMEOUT: Duration = Duration::from_secs(5);

const CONSOLE_HTML: &str = include_str!("console.html");
const CONSOLE_JS: &str = include_str!("console.js");
/// The console loads nothing from elsewhere and talks only to this listener.
const CONSOLE_CSP: &str = "default-src 'none'; script-src 'self'; style-src 'unsafe-inline'; \
                           connect-src 'self'; img-src 'self' data:; frame-ancestors 'none'";

struct Ctx {
    store: Store,
    server: ServerHandle,
    node: String,
    tokens: auth::TokenCheck,
}

/// A running admin listener (and this node's bind-list publisher).
pub struct Endpoint {
    addr: SocketAddr,
    stop: CancellationToken,
    tasks: Vec<JoinHandle<()>>,
}

impl Endpoint {
    /// Binds `listen` and serves until [`Endpoint::stop`].
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
                "the admin API listens beyond loopback over plain HTTP: bearer tokens \
                 travel in clear; put it behind a TLS proxy or a management network"
            );
        }
        let node = server.config().server.node_id.clone();
        let registry = server.registry().clone();
        let ctx = Arc::new(Ctx {
            store: store.clone(),
            server,
            node: node.clone(),
            tokens: auth::TokenCheck::default(),
        });
        let stop = CancellationToken::new();
        let tasks = vec![
            tokio::spawn(serve(listener, ctx, stop.clone())),
            tokio::spawn(cluster::publish(store, registry, node, stop.clone())),
        ];
        tracing::info!(%addr, "admin API listening");
        Ok(Endpoint { addr, stop, tasks })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops accepting, closes open connections and withdraws this node's bind list.
    pub async fn stop(self) {
        self.stop.cancel();
        for t in self.tasks {
            let _ = t.await;
        }
    }
}

async fn serve(listener: TcpListener, ctx: Arc<Ctx>, stop: CancellationToken) {
    let slots = Slots::new(MAX_CONNECTIONS, MAX_PER_ADDRESS);
    let refusing = Arc::new(Semaphore::new(MAX_REFUSING));
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = stop.cancelled() => return,
        };
        let (stream, peer) = match accepted {
            Ok(a) => a,
            Err(e) => {
                tracing::warn!(error = %e, "admin API: accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let Some(slot) = slots.try_take(peer.ip()) else {
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
                    tracing::debug!(error = %e, "admin API: connection error");
                },
                _ = stop.cancelled() => {}
            }
            drop(slot);
        });
    }
}

/// What a request asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Route {
    Console,
    ConsoleJs,
    WhoAmI,
    Binds,
    Unbind(String),
    Message(String),
    Accounts,
    Stats,
    Routes,
}

impl Route {
    /// The route of `method` `path`, or the status to answer (404, 405).
    fn parse(method: &Method, path: &str) -> Result<Route, StatusCode> {
        let segments: Vec<&str> = path.trim_end_matches('/').split('/').skip(1).collect();
        let route = match segments.as_slice() {
            [] | [""] | ["console"] => Route::Console,
            ["console.js"] => Route::ConsoleJs,
            ["api", "whoami"] => Route::WhoAmI,
            ["api", "binds"] => Route::Binds,
            ["api", "binds", id, "unbind"] => Route::Unbind((*id).to_owned()),
            ["api", "messages", id] => Route::Message((*id).to_owned()),
            ["api", "accounts"] => Route::Accounts,
            ["api", "stats"] => Route::Stats,
            ["api", "routes"] => Route::Routes,
            _ => return Err(StatusCode::NOT_FOUND),
        };
        let wanted = match route {
            Route::Unbind(_) => Method::POST,
            _ => Method::GET,
        };
        if *method == wanted || (wanted == Method::GET && *method == Method::HEAD) {
            Ok(route)
        } else {
            Err(StatusCode::METHOD_NOT_ALLOWED)
        }
    }

    /// The role a token needs; `None`: no token (the console's static files, which
    /// hold nothing and ask for a token themselves).
    fn needs(&self) -> Option<AdminRole> {
        match self {
            Route::Console | Route::ConsoleJs => None,
            Route::Unbind(_) => Some(AdminRole::Admin),
            _ => Some(AdminRole::Read),
        }
    }
}

async fn route(ctx: &Ctx, req: Request<Incoming>) -> Response<Full<Bytes>> {
    let route = match Route::parse(req.method(), req.uri().path()) {
        Ok(r) => r,
        Err(status) => return error(status, status.canonical_reason().unwrap_or("error")),
    };
    let granted = match route.needs() {
        None => None,
        Some(needed) => {
            let header = req
                .headers()
                .get(AUTHORIZATION)
                .and_then(|v| v.to_str().ok());
            let config = ctx.server.config();
            let Some(granted) = ctx.tokens.check(bearer(header), &config.admin.tokens).await else {
                let mut r = error(StatusCode::UNAUTHORIZED, "a valid bearer token is required");
                r.headers_mut().insert(
                    hyper::header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Bearer realm=\"smppd\""),
                );
                return r;
            };
            if !granted.role.allows(needed) {
                tracing::info!(token = %granted.name(), path = %req.uri().path(), "admin API: refused, role too low");
                return error(
                    StatusCode::FORBIDDEN,
                    &format!("this needs a token with role \"{}\"", needed.as_str()),
                );
            }
            Some(granted)
        }
    };
    match route {
        Route::Console => console(CONSOLE_HTML, "text/html; charset=utf-8"),
        Route::ConsoleJs => console(CONSOLE_JS, "text/javascript; charset=utf-8"),
        Route::WhoAmI => match granted {
            Some(g) => json(
                StatusCode::OK,
                &api::WhoAmI {
                    node: ctx.node.clone(),
                    role: g.role.as_str().to_owned(),
                    token: g.name(),
                },
            ),
            None => error(StatusCode::UNAUTHORIZED, "no token"),
        },
        Route::Binds => json(StatusCode::OK, &binds(ctx).await),
        Route::Unbind(id) => unbind(ctx, &id, granted),
        Route::Message(id) => {
            if !message::valid_id(&id) {
                return error(StatusCode::BAD_REQUEST, "not a message_id");
            }
            match message::lookup(&ctx.store, &id).await {
                Ok(m) => json(StatusCode::OK, &m),
                Err(e) => {
                    tracing::warn!(error = %e, "admin API: message lookup failed");
                    error(StatusCode::SERVICE_UNAVAILABLE, &e)
                }
            }
        }
        Route::Accounts => json(StatusCode::OK, &accounts(ctx)),
        Route::Stats => json(StatusCode::OK, &stats(ctx).await),
        // Routes (which SMSC or operator a message goes to) come with the delivery
        // step; until then there are none.
        Route::Routes => json(StatusCode::OK, &Vec::<()>::new()),
    }
}

async fn binds(ctx: &Ctx) -> api::BindsReply {
    let mut binds = cluster::local_binds(&ctx.node, ctx.server.registry());
    let mut nodes = vec![api::NodeBinds {
        node: ctx.node.clone(),
        published_at: chrono::Utc::now(),
        binds: Vec::new(),
    }];
    let cluster_error = match cluster::others(&ctx.store, &ctx.node).await {
        Ok(others) => {
            for mut n in others {
                binds.append(&mut n.binds);
                nodes.push(n);
            }
            None
        }
        Err(e) => Some(e),
    };
    api::BindsReply {
        node: ctx.node.clone(),
        binds,
        nodes,
        cluster_error,
    }
}

fn unbind(ctx: &Ctx, id: &str, granted: Option<auth::Granted>) -> Response<Full<Bytes>> {
    let Ok(n) = id.parse::<u64>() else {
        return error(StatusCode::BAD_REQUEST, "a bind id is a number");
    };
    let token = granted.map(|g| g.name()).unwrap_or_default();
    match ctx.server.registry().unbind(n) {
        Some(system_id) => {
            tracing::info!(token, bind = n, system_id, "admin API: unbinding");
            json(
                StatusCode::ACCEPTED,
                &api::UnbindReply {
                    id: n,
                    node: ctx.node.clone(),
                    system_id,
                    unbinding: true,
                },
            )
        }
        None => error(
            StatusCode::NOT_FOUND,
            &format!(
                "no live bind {n} on node {} (a bind of another node is unbound there)",
                ctx.node
            ),
        ),
    }
}

fn accounts(ctx: &Ctx) -> Vec<api::Account> {
    let config: Arc<Config> = ctx.server.config();
    let registry = ctx.server.registry();
    config
        .accounts
        .iter()
        .map(|a| {
            let t = a.allowed_bind_types;
            let bind_types = [
                (t.transmitter, "transmitter"),
                (t.receiver, "receiver"),
                (t.transceiver, "transceiver"),
            ]
            .iter()
            .filter(|(on, _)| *on)
            .map(|(_, n)| (*n).to_owned())
            .collect();
            api::Account {
                system_id: a.system_id.clone(),
                enabled: a.enabled,
                credential: match a.credential {
                    Credential::Plain(_) => "plain",
                    Credential::Argon2(_) => "argon2",
                }
                .to_owned(),
                bind_types,
                allowed_addresses: a.allowed_addresses.iter().map(|n| n.to_string()).collect(),
                tls_required: a.tls_required,
                max_binds: a.max_binds,
                binds: registry.bind_count(&a.system_id),
                throughput: a.throughput.map(|t| t.per_second),
                burst: a.throughput.map(|t| t.burst),
                window: a.window,
                default_validity_seconds: a.default_validity.as_secs(),
                max_validity_seconds: a.max_validity.as_secs(),
                expiry_mode: match a.expiry_mode {
                    crate::service::ExpiryMode::DeliverPartial => "deliver_partial",
                    crate::service::ExpiryMode::ExpireWhole => "expire_whole",
                }
                .to_owned(),
                default_alphabet: a.default_alphabet.as_str().to_owned(),
                receipt_pdu: a.receipt_pdu.as_str().to_owned(),
                max_pending: a.max_pending,
                max_pending_bytes: a.max_pending_bytes,
                max_segment_octets: a.max_segment_octets,
                max_queued_receipts: a.max_queued_receipts,
            }
        })
        .collect()
}

async fn stats(ctx: &Ctx) -> api::Stats {
    let registry = ctx.server.registry();
    let redis = crate::metrics::state::redis_counts(&ctx.store).await;
    let s = ctx.store.counts();
    // Every configured account, plus any that had binds here since start.
    let mut ids: Vec<String> = ctx
        .server
        .config()
        .accounts
        .iter()
        .map(|a| a.system_id.clone())
        .collect();
    let counters = registry.account_counters();
    for (id, _) in &counters {
        if !ids.contains(id) {
            ids.push(id.clone());
        }
    }
    let accounts = ids
        .into_iter()
        .map(|id| {
            let c = counters
                .iter()
                .find(|(a, _)| *a == id)
                .map(|(_, c)| *c)
                .unwrap_or_default();
            let receipt_queue = redis.as_ref().ok().map(|r| {
                r.receipts
                    .iter()
                    .find(|(a, _)| *a == id)
                    .map_or(0, |(_, n)| *n)
            });
            api::AccountStats {
                binds: registry.bind_count(&id),
                system_id: id,
                submits_ok: c.submits_ok,
                submits_failed: c.submits_failed,
                throttled: c.throttled,
                receipts_delivered: c.receipts_delivered,
                receipt_queue,
            }
        })
        .collect();
    api::Stats {
        node: ctx.node.clone(),
        at: chrono::Utc::now(),
        pending_messages: redis.as_ref().ok().map(|r| r.pending),
        outcome_backlog: redis.as_ref().ok().map(|r| r.outbox),
        redis_error: redis.as_ref().err().cloned(),
        expiry_subscribed: ctx.store.expiry_subscribed(),
        store: api::StoreCounters {
            expired_claimed: s[Counter::ExpiredClaimed],
            outcomes_written: s[Counter::OutcomesWritten],
            outcome_write_failures: s[Counter::OutcomeWriteFailures],
            receipts_delivered: s[Counter::ReceiptsDelivered],
            receipts_dropped: s[Counter::ReceiptsDropped],
            timers_armed: ctx.store.timers_armed(),
        },
        accounts,
    }
}

fn json<T: Serialize>(status: StatusCode, value: &T) -> Response<Full<Bytes>> {
    match serde_json::to_vec(value) {
        Ok(body) => reply(status, "application/json", Bytes::from(body)),
        Err(e) => reply(
            StatusCode::INTERNAL_SERVER_ERROR,
            "text/plain",
            Bytes::from(e.to_string()),
        ),
    }
}

fn error(status: StatusCode, message: &str) -> Response<Full<Bytes>> {
    json(
        status,
        &api::Error {
            error: message.to_owned(),
        },
    )
}

fn console(body: &'static str, content_type: &'static str) -> Response<Full<Bytes>> {
    let mut r = reply(
        StatusCode::OK,
        content_type,
        Bytes::from_static(body.as_bytes()),
    );
    r.headers_mut().insert(
        HeaderName::from_static("content-security-policy"),
        HeaderValue::from_static(CONSOLE_CSP),
    );
    r
}

fn reply(status: StatusCode, content_type: &'static str, body: Bytes) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(body));
    *r.status_mut() = status;
    let h = r.headers_mut();
    h.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        HeaderName::from_static("x-content-type-options"),
        HeaderValue::from_static("nosniff"),
    );
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_and_their_roles() {
        let get = |p: &str| Route::parse(&Method::GET, p);
        assert_eq!(get("/"), Ok(Route::Console));
        assert_eq!(get("/api/binds"), Ok(Route::Binds));
        assert_eq!(get("/api/binds/"), Ok(Route::Binds));
        assert_eq!(get("/api/messages/ABC"), Ok(Route::Message("ABC".into())));
        assert_eq!(get("/api/nope"), Err(StatusCode::NOT_FOUND));
        assert_eq!(
            get("/api/binds/7/unbind"),
            Err(StatusCode::METHOD_NOT_ALLOWED)
        );
        assert_eq!(
            Route::parse(&Method::POST, "/api/binds/7/unbind"),
            Ok(Route::Unbind("7".into()))
        );
        assert_eq!(
            Route::parse(&Method::POST, "/api/binds"),
            Err(StatusCode::METHOD_NOT_ALLOWED)
        );
        assert_eq!(Route::Unbind("7".into()).needs(), Some(AdminRole::Admin));
        assert_eq!(Route::Stats.needs(), Some(AdminRole::Read));
        assert_eq!(Route::Console.needs(), None);
    }
}
