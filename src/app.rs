//! The whole of smppd in one value: the store (Redis + MongoDB, with its expiry,
//! outcome and receipt tasks) behind the SMPP listeners. `smppd serve` and the
//! end-to-end tests start it the same way.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::config::{Config, ConfigSource};
use crate::server::{Server, ServerHandle};
use crate::service::MessageService;
use crate::session::SessionRegistry;
use crate::store::{Store, StoreSettings};

/// Maps `config.toml` onto the store's settings.
pub fn store_settings(config: &Config) -> StoreSettings {
    let mut s = StoreSettings::new(config.redis.url.clone(), config.mongodb.uri.clone());
    s.database = config.mongodb.database.clone();
    s.key_prefix = config.redis.key_prefix.clone();
    s.node_id = config.server.node_id.clone();
    s.configure_keyspace_events = config.redis.configure_keyspace_events;
    s.cluster = config.redis.cluster;
    s.redis_seeds = config.redis.seeds.clone();
    s.redis_tls_ca = config.redis.tls_ca.clone();
    s.ack_replicas = config.redis.ack_replicas;
    s.ack_timeout = config.redis.ack_timeout;
    s.max_pending = config.redis.max_pending;
    s.max_pending_bytes = config.redis.max_pending_bytes;
    s.retention_days = config.mongodb.retention_days;
    s.receipt_lifetime = config.receipts.lifetime;
    s.delivery = config.delivery.clone();
    // A node must hold a receipt it is sending for longer than sending it may take,
    // or a second node — or this one's next take — could send it too. Each try waits
    // up to response_timeout for a window slot, as long to hand the PDU to the
    // session's writer and as long for the deliver_sm_resp (registry.rs
    // deliver_receipt, outbound.rs request), and a batch is marked done once its
    // slowest receipt is.
    s.receipt_lease = receipt_lease(
        config.server.response_timeout,
        config.server.outbound_retries,
    );
    s
}

/// How long a taken receipt stays leased: every try of `deliver_receipt` (slot wait
/// plus response wait) and a margin for the done call.
pub fn receipt_lease(response_timeout: Duration, retries: u32) -> Duration {
    (response_timeout * 3 * (retries + 1)).max(Duration::from_secs(5)) + Duration::from_secs(5)
}

/// A started smppd: ports bound, store connected and its background tasks running.
pub struct App {
    server: Server,
    store: Store,
    store_stop: CancellationToken,
    store_task: JoinHandle<()>,
    metrics: Option<crate::metrics::Endpoint>,
    admin: Option<crate::admin::Endpoint>,
}

impl App {
    /// Connects the store first (a wrong Redis URL or missing keyspace-event rights
    /// stop start-up before any port is bound), then binds the listeners.
    pub async fn start(source: ConfigSource, config: Arc<Config>) -> anyhow::Result<App> {
        let settings = store_settings(&config);
        let store = Store::connect(settings).await.with_context(|| {
            format!(
                "store start-up failed (redis.url = {})",
                crate::config::redact_url(&config.redis.url)
            )
        })?;
        let registry = SessionRegistry::new(&config);
        let store_stop = CancellationToken::new();
        let store_task = store.spawn(registry.clone(), store_stop.clone());
        let service: Arc<dyn MessageService> = Arc::new(store.clone());
        let metrics_listen = config.metrics.listen;
        let admin_listen = config.admin.listen;
        let server = match Server::bind(source, config, service, registry).await {
            Ok(s) => s,
            Err(e) => {
                store_stop.cancel();
                let _ = store_task.await;
                return Err(e);
            }
        };
        let metrics = match metrics_listen {
            None => None,
            Some(listen) => {
                let started =
                    crate::metrics::Endpoint::start(listen, store.clone(), server.handle()).await;
                match started.with_context(|| format!("metrics.listen {listen}")) {
                    Ok(m) => Some(m),
                    Err(e) => {
                        store_stop.cancel();
                        let _ = store_task.await;
                        return Err(e);
                    }
                }
            }
        };
        let admin = match admin_listen {
            None => None,
            Some(listen) => {
                let started =
                    crate::admin::Endpoint::start(listen, store.clone(), server.handle()).await;
                match started.with_context(|| format!("admin.listen {listen}")) {
                    Ok(a) => Some(a),
                    Err(e) => {
                        if let Some(m) = metrics {
                            m.stop().await;
                        }
                        store_stop.cancel();
                        let _ = store_task.await;
                        return Err(e);
                    }
                }
            }
        };
        Ok(App {
            server,
            store,
            store_stop,
            store_task,
            metrics,
            admin,
        })
    }

    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.server.local_addr()
    }

    pub fn tls_local_addr(&self) -> Option<SocketAddr> {
        self.server.tls_local_addr()
    }

    /// Where `/metrics` and `/healthz` are served (`[metrics] listen`), if configured.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics.as_ref().map(|m| m.local_addr())
    }

    /// Where the admin API and console are served (`[admin] listen`), if configured.
    pub fn admin_addr(&self) -> Option<SocketAddr> {
        self.admin.as_ref().map(|a| a.local_addr())
    }

    pub fn handle(&self) -> ServerHandle {
        self.server.handle()
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Serves until shutdown, then stops the store's tasks: sessions are unbound first
    /// so no new segment arrives while the store winds down. Everything the store had
    /// not finished stays in Redis and is picked up by the next start (or another node).
    pub async fn run(self) -> anyhow::Result<()> {
        let grace = self.server.handle().config().server.shutdown_grace;
        let result = self.server.run().await;
        if let Some(a) = self.admin {
            a.stop().await;
        }
        if let Some(m) = self.metrics {
            m.stop().await;
        }
        self.store_stop.cancel();
        if tokio::time::timeout(grace, self.store_task).await.is_err() {
            tracing::warn!(
                "store tasks did not stop within the shutdown grace; their work stays in Redis"
            );
        }
        self.store.close().await;
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_receipt_lease_outlasts_every_try_of_its_send() {
        // deliver_receipt: per try up to response_timeout for a window slot, as long
        // for the writer to take the PDU and as long for the response; retries + 1
        // tries.
        let rt = Duration::from_secs(10);
        assert!(receipt_lease(rt, 2) > rt * 3 * 3);
        assert!(receipt_lease(Duration::from_millis(100), 0) >= Duration::from_secs(5));
    }
}
