//! Listeners, graceful shutdown and hot reload; connection limits in
//! [`crate::admission`].
//!
//! [`Server::bind`] binds the plain and TLS listeners of an already validated config;
//! [`Server::run`] accepts until [`ServerHandle::shutdown`], then every bound session
//! is sent an unbind and given `shutdown_grace` to answer and finish in-flight work.
//! [`ServerHandle::reload`] re-reads the config source: on success the new accounts
//! and limits apply to live sessions at once; on failure the old config stays.
//! [`serve`] wires SIGTERM/SIGINT (shutdown) and SIGHUP (reload) around that.

use std::net::SocketAddr;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use anyhow::Context;
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::Instrument;

use crate::admission::{Admission, Limits};
use crate::config::{Config, ConfigProblems, ConfigSource};
use crate::service::MessageService;
use crate::session::{run_session, SessionCtx, SessionRegistry};

/// Extra time after `shutdown_grace` for sessions to flush and close their sockets.
const CLOSE_MARGIN: Duration = Duration::from_secs(2);
/// Pause after a failed accept (e.g. out of file descriptors) before trying again.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// A server with its listeners bound, not yet accepting.
pub struct Server {
    handle: ServerHandle,
    plain: TcpListener,
    tls: Option<TcpListener>,
}

/// Controls a running server: shutdown and reload. Cheap to clone.
#[derive(Clone)]
pub struct ServerHandle {
    ctx: Arc<SessionCtx>,
    source: ConfigSource,
    shutdown: CancellationToken,
    /// Swapped on reload so renewed certificates apply to new connections.
    acceptor: Arc<RwLock<Option<TlsAcceptor>>>,
}

impl Server {
    /// Binds the listeners of `config` (already loaded from `source` and validated).
    pub async fn bind(
        source: ConfigSource,
        config: Arc<Config>,
        service: Arc<dyn MessageService>,
        registry: Arc<SessionRegistry>,
    ) -> anyhow::Result<Server> {
        let plain = TcpListener::bind(config.server.listen)
            .await
            .with_context(|| format!("cannot listen on {}", config.server.listen))?;
        let tls = match &config.server.tls {
            Some(t) => Some(
                TcpListener::bind(t.listen)
                    .await
                    .with_context(|| format!("cannot listen on {} (TLS)", t.listen))?,
            ),
            None => None,
        };
        let acceptor = config
            .server
            .tls
            .as_ref()
            .map(|t| TlsAcceptor::from(t.server_config.clone()));
        let ctx = Arc::new(SessionCtx::new(config, service, registry));
        Ok(Server {
            handle: ServerHandle {
                ctx,
                source,
                shutdown: CancellationToken::new(),
                acceptor: Arc::new(RwLock::new(acceptor)),
            },
            plain,
            tls,
        })
    }

    /// Address of the plain TCP listener (useful with port 0).
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.plain.local_addr()
    }

    /// Address of the TLS listener, if configured.
    pub fn tls_local_addr(&self) -> Option<SocketAddr> {
        self.tls.as_ref().and_then(|l| l.local_addr().ok())
    }

    pub fn handle(&self) -> ServerHandle {
        self.handle.clone()
    }

    /// Accepts until shutdown, then unbinds every session and waits for them (at most
    /// `shutdown_grace` plus a short margin to flush).
    pub async fn run(self) -> anyhow::Result<()> {
        let h = self.handle;
        let admission = Arc::new(Admission::default());
        let refusals = tokio::spawn(admission.clone().log_refusals(h.shutdown.clone()));
        let conns = TaskTracker::new();
        // The bound addresses (not the configured ones): port 0 resolves here.
        let listen = self
            .plain
            .local_addr()
            .map(|a| a.to_string())
            .unwrap_or_default();
        let tls = self
            .tls
            .as_ref()
            .and_then(|l| l.local_addr().ok())
            .map(|a| a.to_string());
        tracing::info!(listen, tls, "smppd accepting");
        let mut loops = Vec::new();
        loops.push(tokio::spawn(accept_loop(
            self.plain,
            false,
            h.clone(),
            admission.clone(),
            conns.clone(),
        )));
        if let Some(tls) = self.tls {
            loops.push(tokio::spawn(accept_loop(
                tls,
                true,
                h.clone(),
                admission,
                conns.clone(),
            )));
        }
        h.shutdown.cancelled().await;
        for l in loops {
            // The loops end on the same token; their listeners close with them.
            let _ = l.await;
        }
        let _ = refusals.await;
        let grace = h.ctx.config().server.shutdown_grace;
        tracing::info!(sessions = conns.len(), "shutting down: unbinding sessions");
        conns.close();
        if tokio::time::timeout(grace + CLOSE_MARGIN, conns.wait())
            .await
            .is_err()
        {
            tracing::warn!(
                left = conns.len(),
                "sessions still open after shutdown_grace; exiting anyway"
            );
        }
        tracing::info!("smppd stopped");
        Ok(())
    }
}

impl ServerHandle {
    /// Starts the graceful shutdown.
    pub fn shutdown(&self) {
        self.shutdown.cancel();
    }

    /// Re-reads and validates the config source and applies it; on error the old
    /// config stays in force. Returns how many sessions were told to unbind.
    pub fn reload(&self) -> Result<usize, ConfigProblems> {
        let loaded = match self.source.load() {
            Ok(l) => l,
            Err(problems) => {
                tracing::error!("config reload failed, keeping the old config: {problems}");
                return Err(problems);
            }
        };
        for w in &loaded.warnings {
            tracing::warn!("{w}");
        }
        let new = loaded.config;
        let old = self.ctx.config();
        if new.server.listen != old.server.listen
            || new.server.tls.as_ref().map(|t| t.listen)
                != old.server.tls.as_ref().map(|t| t.listen)
        {
            tracing::warn!("listen addresses changed: they apply after a restart");
        }
        // The store and the metrics endpoint are connected once at start; their
        // sections are compared by value (Debug) and never logged (they hold secrets).
        for (section, changed) in [
            (
                "[redis]",
                format!("{:?}", new.redis) != format!("{:?}", old.redis),
            ),
            (
                "[mongodb]",
                format!("{:?}", new.mongodb) != format!("{:?}", old.mongodb),
            ),
            (
                "[metrics]",
                format!("{:?}", new.metrics) != format!("{:?}", old.metrics),
            ),
        ] {
            if changed {
                tracing::warn!(section, "settings changed: they apply after a restart");
            }
        }
        if let (Some(t), Some(_)) = (&new.server.tls, &old.server.tls) {
            *self.acceptor.write().unwrap_or_else(|e| e.into_inner()) =
                Some(TlsAcceptor::from(t.server_config.clone()));
        }
        let kicked = self.ctx.replace_config(Arc::new(new));
        tracing::info!(unbinding = kicked, "config reloaded");
        Ok(kicked)
    }

    /// The registry of bound sessions.
    pub fn registry(&self) -> &Arc<SessionRegistry> {
        &self.ctx.registry
    }

    /// The config in force.
    pub fn config(&self) -> Arc<Config> {
        self.ctx.config()
    }
}

async fn accept_loop(
    listener: TcpListener,
    tls: bool,
    h: ServerHandle,
    admission: Arc<Admission>,
    conns: TaskTracker,
) {
    loop {
        let accepted = tokio::select! {
            _ = h.shutdown.cancelled() => return,
            a = listener.accept() => a,
        };
        let (stream, peer) = match accepted {
            Ok(a) => a,
            Err(e) => {
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(ACCEPT_BACKOFF).await;
                continue;
            }
        };
        // A refused connection is closed at once: left in the kernel backlog, its
        // bind would go unanswered until the ESME timed out, with no sign of why (and
        // the backlog itself would fill with idle sockets). The limits in force now:
        // a reload applies to the next accept (connections already open stay).
        // Refusals are logged as a summary per interval (Admission::log_refusals).
        let limits = Limits::of(&h.ctx.config().server);
        // Cancelled by shutdown, or by admission to make room while still unbound.
        let kick = h.shutdown.child_token();
        let slot = match admission.admit(peer.ip(), limits, kick.clone()) {
            Ok(slot) => slot,
            Err(why) => {
                tracing::debug!(%peer, reason = why.as_str(), "connection refused");
                drop(stream);
                continue;
            }
        };
        // Responses are small and latency matters more than packet count.
        let _ = stream.set_nodelay(true);
        let ctx = h.ctx.clone();
        if tls {
            let acceptor = h.acceptor.read().unwrap_or_else(|e| e.into_inner()).clone();
            let span = tracing::info_span!("tls", %peer);
            conns.spawn(
                async move {
                    let Some(acceptor) = acceptor else { return };
                    if let Some(stream) = handshake(acceptor, stream, &ctx, &kick).await {
                        run_session(stream, peer, true, ctx, kick, slot).await;
                    }
                }
                .instrument(span),
            );
        } else {
            conns.spawn(run_session(stream, peer, false, ctx, kick, slot));
        }
    }
}

/// A failed or slow handshake closes only this connection; so does `kick` (shutdown,
/// or admission making room).
async fn handshake(
    acceptor: TlsAcceptor,
    stream: TcpStream,
    ctx: &SessionCtx,
    kick: &CancellationToken,
) -> Option<tokio_rustls::server::TlsStream<TcpStream>> {
    let timeout = ctx.config().server.bind_timeout;
    let accepted = tokio::select! {
        a = tokio::time::timeout(timeout, acceptor.accept(stream)) => a,
        _ = kick.cancelled() => {
            tracing::debug!("closed during the TLS handshake");
            return None;
        }
    };
    match accepted {
        Ok(Ok(s)) => Some(s),
        Ok(Err(e)) => {
            tracing::info!(error = %e, "TLS handshake failed");
            None
        }
        Err(_) => {
            tracing::info!("TLS handshake timed out");
            None
        }
    }
}

/// Runs a server until SIGTERM or SIGINT; SIGHUP reloads the config.
pub async fn serve(
    source: ConfigSource,
    config: Arc<Config>,
    service: Arc<dyn MessageService>,
    registry: Arc<SessionRegistry>,
) -> anyhow::Result<()> {
    let server = Server::bind(source, config, service, registry).await?;
    let handle = server.handle();
    spawn_signal_handlers(handle)?;
    server.run().await
}

/// SIGTERM/SIGINT → graceful shutdown; SIGHUP → reload.
#[cfg(unix)]
pub fn spawn_signal_handlers(handle: ServerHandle) -> anyhow::Result<()> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).context("SIGTERM handler")?;
    let mut int = signal(SignalKind::interrupt()).context("SIGINT handler")?;
    let mut hup = signal(SignalKind::hangup()).context("SIGHUP handler")?;
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = term.recv() => { tracing::info!("SIGTERM"); handle.shutdown(); return; }
                _ = int.recv() => { tracing::info!("SIGINT"); handle.shutdown(); return; }
                _ = hup.recv() => {
                    tracing::info!("SIGHUP: reloading config");
                    let _ = handle.reload();
                }
            }
        }
    });
    Ok(())
}

#[cfg(not(unix))]
pub fn spawn_signal_handlers(handle: ServerHandle) -> anyhow::Result<()> {
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            handle.shutdown();
        }
    });
    Ok(())
}
