//! Starts smppd's SMPP server in-process on 127.0.0.1:0 with a recording test double
//! as its MessageService, from a `config::TestConfig` (a TLS listener added when
//! asked, with certificates generated at test time).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use futures::future::BoxFuture;
use smppd::config::ConfigSource;
use smppd::server::{Server, ServerHandle};
use smppd::service::{
    AccountPolicy, Address, BindLease, MessageService, QueryAnswer, Rate, ServiceError,
    SubmitAccepted, SubmitRequest, TokenGrant,
};
use smppd::session::SessionRegistry;
use tokio::sync::{Notify, Semaphore};

use super::config::TestConfig;
use super::local_limits::LocalLimits;
use super::wait_for;

/// A MessageService that records every request. Destinations steer the outcome:
/// "queuefull" → QueueFull, "internal" → Internal, "reject" → Rejected(0x0B).
/// With a gate, each submit waits for one gate permit (window tests).
#[derive(Default)]
pub struct Recorder {
    pub submits: Mutex<Vec<SubmitRequest>>,
    pub calls: Mutex<Vec<String>>,
    next_id: AtomicU64,
    pub in_flight: AtomicUsize,
    pub max_in_flight: AtomicUsize,
    pub gate: Option<Arc<Semaphore>>,
    pub changed: Notify,
    /// throughput and max_binds as one node alone counts them.
    pub limits: LocalLimits,
}

impl Recorder {
    pub fn gated(gate: Arc<Semaphore>) -> Self {
        Recorder {
            gate: Some(gate),
            ..Recorder::default()
        }
    }

    pub fn submit_count(&self) -> usize {
        self.submits.lock().unwrap().len()
    }

    /// Waits until `f` holds (re-checked whenever a request arrives or finishes).
    pub async fn wait_until(&self, what: &str, f: impl Fn(&Recorder) -> bool) {
        tokio::time::timeout(Duration::from_secs(5), async {
            loop {
                let notified = self.changed.notified();
                if f(self) {
                    return;
                }
                notified.await;
            }
        })
        .await
        .unwrap_or_else(|_| panic!("timed out waiting for {what}"));
    }
}

impl MessageService for Recorder {
    fn submit(&self, req: SubmitRequest) -> BoxFuture<'_, Result<SubmitAccepted, ServiceError>> {
        Box::pin(async move {
            let dest = req.dest.addr.clone();
            self.submits.lock().unwrap().push(req);
            let now = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
            self.max_in_flight.fetch_max(now, Ordering::SeqCst);
            self.changed.notify_waiters();
            if let Some(g) = &self.gate {
                g.acquire().await.unwrap().forget();
            }
            self.in_flight.fetch_sub(1, Ordering::SeqCst);
            self.changed.notify_waiters();
            match dest.as_str() {
                "queuefull" => Err(ServiceError::QueueFull("full".into())),
                "internal" => Err(ServiceError::Internal("redis down".into())),
                "reject" => Err(ServiceError::Rejected {
                    status: 0x0B,
                    reason: "bad dest".into(),
                }),
                _ => {
                    let n = self.next_id.fetch_add(1, Ordering::SeqCst) + 1;
                    Ok(SubmitAccepted::new(format!("msg-{n}")))
                }
            }
        })
    }

    fn query(
        &self,
        system_id: &str,
        message_id: &str,
        _source: &Address,
    ) -> BoxFuture<'_, Result<QueryAnswer, ServiceError>> {
        self.calls
            .lock()
            .unwrap()
            .push(format!("query {system_id} {message_id}"));
        let message_id = message_id.to_string();
        Box::pin(async move {
            if message_id == "unknown" {
                return Err(ServiceError::Rejected {
                    status: 0x0C,
                    reason: "unknown".into(),
                });
            }
            Ok(QueryAnswer {
                message_id,
                message_state: 2,
                final_date: Some(chrono::DateTime::from_timestamp(1_700_000_000, 0).unwrap()),
                error_code: 0,
            })
        })
    }

    fn cancel(
        &self,
        system_id: &str,
        message_id: &str,
        _source: &Address,
        dest: Option<&Address>,
        _service_type: &str,
    ) -> BoxFuture<'_, Result<(), ServiceError>> {
        self.calls.lock().unwrap().push(format!(
            "cancel {system_id} {message_id} {}",
            dest.map(|d| d.addr.as_str()).unwrap_or("-")
        ));
        Box::pin(async { Ok(()) })
    }

    fn replace(
        &self,
        account: &AccountPolicy,
        message_id: &str,
        _source: &Address,
        _registered_delivery: u8,
        _validity_period: Bytes,
        short_message: Bytes,
    ) -> BoxFuture<'_, Result<(), ServiceError>> {
        self.calls.lock().unwrap().push(format!(
            "replace {} {message_id} {}",
            account.system_id,
            String::from_utf8_lossy(&short_message)
        ));
        Box::pin(async { Ok(()) })
    }

    fn take_tokens(
        &self,
        system_id: &str,
        rate: Rate,
        n: u32,
    ) -> BoxFuture<'_, Result<TokenGrant, ServiceError>> {
        let grant = self.limits.take_tokens(system_id, rate, n);
        Box::pin(async move { Ok(grant) })
    }

    fn acquire_bind(
        &self,
        system_id: &str,
        max_binds: usize,
    ) -> BoxFuture<'_, Result<Option<BindLease>, ServiceError>> {
        let lease = self.limits.acquire_bind(system_id, max_binds);
        Box::pin(async move { Ok(lease) })
    }
}

/// A self-signed certificate for "localhost": (cert PEM, key PEM, cert DER).
pub fn make_cert() -> (String, String, Vec<u8>) {
    let ck = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    (
        ck.cert.pem(),
        ck.signing_key.serialize_pem(),
        ck.cert.der().to_vec(),
    )
}

pub struct TestServer {
    pub addr: SocketAddr,
    pub tls_addr: Option<SocketAddr>,
    pub handle: ServerHandle,
    pub registry: Arc<SessionRegistry>,
    pub service: Arc<Recorder>,
    pub config_path: PathBuf,
    pub ca_der: Option<Vec<u8>>,
    pub join: tokio::task::JoinHandle<anyhow::Result<()>>,
    pub dir: tempfile::TempDir,
}

pub struct Options {
    pub tls: bool,
    pub service: Option<Arc<Recorder>>,
}

pub async fn start(config: &TestConfig) -> TestServer {
    start_with(
        config,
        Options {
            tls: false,
            service: None,
        },
    )
    .await
}

/// The TLS listener's keys, with the certificate and key files `start_with` writes.
fn with_tls(config: &TestConfig) -> TestConfig {
    let mut c = config.clone();
    c.set("server.tls_listen", "127.0.0.1:0")
        .set("server.tls_cert", "cert.pem")
        .set("server.tls_key", "key.pem");
    c
}

/// Writes `config` (TLS keys added when asked) to a temp file and starts the server.
pub async fn start_with(config: &TestConfig, opts: Options) -> TestServer {
    let dir = tempfile::tempdir().unwrap();
    let mut ca_der = None;
    let text = if opts.tls {
        let (cert, key, der) = make_cert();
        std::fs::write(dir.path().join("cert.pem"), cert).unwrap();
        std::fs::write(dir.path().join("key.pem"), key).unwrap();
        ca_der = Some(der);
        with_tls(config).text()
    } else {
        config.text()
    };
    let config_path = dir.path().join("config.toml");
    std::fs::write(&config_path, &text).unwrap();
    let source = ConfigSource::File(config_path.clone());
    let loaded = source
        .load()
        .unwrap_or_else(|p| panic!("test config invalid: {p}\n{text}"));
    let config = Arc::new(loaded.config);
    let registry = SessionRegistry::new(&config);
    let service = opts.service.unwrap_or_default();
    let server = Server::bind(source, config, service.clone(), registry.clone())
        .await
        .unwrap();
    let addr = server.local_addr().unwrap();
    let tls_addr = server.tls_local_addr();
    let handle = server.handle();
    let join = tokio::spawn(server.run());
    TestServer {
        addr,
        tls_addr,
        handle,
        registry,
        service,
        config_path,
        ca_der,
        join,
        dir,
    }
}

impl TestServer {
    /// Rewrites the config file as `config` says (keeping the TLS listener if the
    /// server has one), for a reload.
    pub fn rewrite_config(&self, config: &TestConfig) {
        let text = if self.tls_addr.is_some() {
            with_tls(config).text()
        } else {
            config.text()
        };
        std::fs::write(&self.config_path, text).unwrap();
    }

    /// Waits until the account has `n` live binds.
    pub async fn wait_binds(&self, system_id: &str, n: usize) {
        wait_for(
            &format!("{n} binds of {system_id}"),
            Duration::from_secs(5),
            async || self.registry.bind_count(system_id) == n,
        )
        .await;
    }
}

pub fn count_by_status(pdus: &[smpp_protocol::Pdu]) -> HashMap<u32, usize> {
    let mut m = HashMap::new();
    for p in pdus {
        *m.entry(p.command_status.0).or_default() += 1;
    }
    m
}
