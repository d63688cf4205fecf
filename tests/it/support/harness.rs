//! Driving the store directly: real Redis/Valkey and Mongo-protocol servers, a test
//! receipt sink standing in for the session side, the store's requests ([`request`],
//! of `messages::segment`), partition keys and outcome reads.
//!
//! Used by the `store_*` test modules (`use crate::support::harness::*;`), whose
//! scenarios run on both servers through `both!(standalone …)`
//! ([`both!`](crate::support::backend::both)).

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use futures::future::BoxFuture;
use futures::TryStreamExt;
use mongodb::bson::{doc, Document};
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

use crate::support::messages::segment;
use crate::support::servers::{MongoServer, RedisKind, RedisServer};
use crate::support::wait_for;
use smppd::service::{
    AccountPolicy, Address, Concat, ConcatScheme, DeliverError, ExpiryMode, ReceiptDelivery,
    ReceiptSink, SubmitRequest,
};
use smppd::store::Counter;
use smppd::store::{Store, StoreSettings};

/// A fake of the session registry: records receipts; "bound" decides whether a
/// receiver is there; it can refuse the first N deliveries. By default it cannot tell
/// whether a receiver is bound before trying (`has_receiver` is always true, so an
/// unbound sink answers NoReceiver); `telling` makes it tell, as the session registry
/// does.
pub struct TestSink {
    pub received: Mutex<Vec<ReceiptDelivery>>,
    bound: AtomicBool,
    tells: bool,
    refuse_next: AtomicU32,
    /// Deliveries never answer while set (a receiver that stopped responding).
    stall: AtomicBool,
    /// Each delivery answers after this many ms (a receiver that takes its time).
    slow_ms: AtomicU32,
    pub attempts: AtomicU32,
    tx: broadcast::Sender<String>,
}

impl TestSink {
    pub fn new(bound: bool) -> Arc<TestSink> {
        Self::build(bound, false)
    }

    pub fn telling(bound: bool) -> Arc<TestSink> {
        Self::build(bound, true)
    }

    fn build(bound: bool, tells: bool) -> Arc<TestSink> {
        let (tx, _) = broadcast::channel(64);
        Arc::new(TestSink {
            received: Mutex::new(Vec::new()),
            bound: AtomicBool::new(bound),
            tells,
            refuse_next: AtomicU32::new(0),
            stall: AtomicBool::new(false),
            slow_ms: AtomicU32::new(0),
            attempts: AtomicU32::new(0),
            tx,
        })
    }

    /// A receiver of `account` binds.
    pub fn bind(&self, account: &str) {
        self.bound.store(true, Ordering::SeqCst);
        let _ = self.tx.send(account.to_owned());
    }

    /// From now on, deliveries hang (they are in flight for ever).
    pub fn stall(&self) {
        self.stall.store(true, Ordering::SeqCst);
    }

    /// From now on, each delivery answers after `ms`.
    pub fn slow(&self, ms: u32) {
        self.slow_ms.store(ms, Ordering::SeqCst);
    }

    pub fn refuse(&self, n: u32) {
        self.refuse_next.store(n, Ordering::SeqCst);
    }

    pub fn receipts(&self) -> Vec<ReceiptDelivery> {
        self.received.lock().unwrap().clone()
    }

    pub fn count(&self) -> usize {
        self.received.lock().unwrap().len()
    }
}

impl ReceiptSink for TestSink {
    fn deliver(&self, receipt: ReceiptDelivery) -> BoxFuture<'_, Result<(), DeliverError>> {
        Box::pin(async move {
            self.attempts.fetch_add(1, Ordering::SeqCst);
            if self.stall.load(Ordering::SeqCst) {
                std::future::pending::<()>().await;
            }
            let slow = self.slow_ms.load(Ordering::SeqCst);
            if slow > 0 {
                tokio::time::sleep(std::time::Duration::from_millis(u64::from(slow))).await;
            }
            if !self.bound.load(Ordering::SeqCst) {
                return Err(DeliverError::NoReceiver);
            }
            if self
                .refuse_next
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                .is_ok()
            {
                return Err(DeliverError::Refused(0x64));
            }
            self.received.lock().unwrap().push(receipt);
            Ok(())
        })
    }

    fn receiver_bound(&self) -> broadcast::Receiver<String> {
        self.tx.subscribe()
    }

    fn has_receiver(&self, _system_id: &str) -> bool {
        !self.tells || self.bound.load(Ordering::SeqCst)
    }
}

/// Servers of one test.
pub struct Env {
    pub redis: RedisServer,
    pub mongo: MongoServer,
}

impl Env {
    pub fn start(kind: RedisKind) -> Env {
        Env {
            redis: RedisServer::start(kind),
            mongo: MongoServer::start(),
        }
    }

    pub fn settings(&self, name: &str) -> StoreSettings {
        let mut s = StoreSettings::new(self.redis.url(), self.mongo.uri());
        s.database = format!("t_{name}");
        s.key_prefix = format!("{name}:");
        s.node_id = "node-a".into();
        s.receipt_retry_min = Duration::from_millis(50);
        s.receipt_retry_max = Duration::from_millis(200);
        s
    }
}

/// A running store and what stops it.
pub struct Running {
    pub store: Store,
    pub shutdown: CancellationToken,
    pub tasks: tokio::task::JoinHandle<()>,
}

impl Running {
    pub async fn start(settings: StoreSettings, sink: Arc<TestSink>) -> Running {
        let store = Store::connect(settings).await.unwrap();
        let shutdown = CancellationToken::new();
        let tasks = store.spawn(sink, shutdown.clone());
        // Started: subscribed, its recovery pass and the release scan it asks for
        // done, so that what a test does next meets no start-up work.
        let st = store.clone();
        wait_for(
            "the store's start-up scans",
            Duration::from_secs(30),
            || {
                let st = st.clone();
                async move { st.counts()[Counter::FreshScans] >= 1 }
            },
        )
        .await;
        Running {
            store,
            shutdown,
            tasks,
        }
    }

    /// Stops every background task (as a node going away would).
    pub async fn stop(self) {
        self.shutdown.cancel();
        tokio::time::timeout(Duration::from_secs(10), self.tasks)
            .await
            .expect("store tasks stop within 10 s")
            .unwrap();
    }
}

pub fn addr(a: &str) -> Address {
    Address {
        ton: 1,
        npi: 1,
        addr: a.into(),
    }
}

pub fn policy(account: &str) -> AccountPolicy {
    AccountPolicy {
        system_id: account.into(),
        default_validity: Duration::from_secs(3600),
        max_validity: Duration::from_secs(86_400),
        expiry_mode: ExpiryMode::DeliverPartial,
        limits: Default::default(),
        message_id_format: Default::default(),
    }
}

/// The store partition a multi-part message's segment goes to (its group key's).
pub fn partition_of(req: &SubmitRequest) -> usize {
    smppd::store::redis::partition::of_group(&smppd::store::model::group_key(
        &smppd::store::model::GroupMeta::of(req),
    ))
}

/// `n` UDH16 references whose messages (`make(reference)`) share one partition:
/// for tests of what a partition counts (limits, batching), which go per partition.
pub fn refs_in_one_partition(n: usize, make: impl Fn(u16) -> SubmitRequest) -> Vec<u16> {
    let want = partition_of(&make(0));
    (0..=u16::MAX)
        .filter(|r| partition_of(&make(*r)) == want)
        .take(n)
        .collect()
}

/// The key of a pending group, as the store names it (`P{tag}:g:<id>`, its first
/// choice of id).
pub fn pending_group_key(prefix: &str, req: &SubmitRequest) -> String {
    let gk = smppd::store::model::group_key(&smppd::store::model::GroupMeta::of(req));
    let p = smppd::store::redis::partition::of_group(&gk);
    let (id, _) = smppd::store::model::pending::group_ids(&gk);
    format!(
        "{}g:{id}",
        smppd::store::redis::partition::prefix(prefix, p)
    )
}

/// The key `<kind>:<id>` of a message id's partition (`P{tag}:m:<id>`, `…:d:<gid>`).
pub fn id_key(prefix: &str, kind: &str, id: &str) -> String {
    let p = smppd::store::redis::partition::of_message_id(id).expect("a message_id of this store");
    format!(
        "{}{kind}:{id}",
        smppd::store::redis::partition::prefix(prefix, p)
    )
}

/// The key prefix of the partition a multi-part message's segment goes to.
pub fn partition_prefix_of(prefix: &str, req: &SubmitRequest) -> String {
    smppd::store::redis::partition::prefix(prefix, partition_of(req))
}

/// The request of segment `seq` of `total` (or of a single-part message when
/// `concat` is None) of `account`, from 12345 to 447700900001: the store's side of
/// [`segment`], as a session makes it of that submit_sm.
pub fn request(
    account: &str,
    concat: Option<(ConcatScheme, u16, u8, u8)>,
    data_coding: u8,
    user_data: &[u8],
    registered_delivery: u8,
    validity: &str,
) -> SubmitRequest {
    let sm = segment(
        "12345",
        "447700900001",
        concat,
        data_coding,
        user_data,
        registered_delivery,
        validity,
    );
    SubmitRequest {
        policy: policy(account),
        service_type: String::new(),
        source: addr("12345"),
        dest: addr("447700900001"),
        esm_class: sm.esm_class,
        protocol_id: 0,
        priority_flag: 0,
        registered_delivery,
        data_coding,
        concat: concat.map(|(scheme, reference, total, seq)| Concat {
            scheme,
            reference,
            total,
            seq,
        }),
        user_data: Bytes::copy_from_slice(user_data),
        raw_user_data: sm.short_message,
        validity_period: Bytes::copy_from_slice(validity.as_bytes()),
        receipt_id: None,
        schedule_delivery_time: Bytes::new(),
        replace_if_present: false,
        forward_to: None,
        forward_reassembled: false,
        simulate: None,
    }
}

/// Every outcome document, sorted by `_id`.
pub async fn outcomes(store: &Store) -> Vec<Document> {
    let mut docs: Vec<Document> = store
        .outcomes()
        .find(doc! {})
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    docs.sort_by(|a, b| a.get_str("_id").unwrap().cmp(b.get_str("_id").unwrap()));
    docs
}

/// Outcome count, 0 while MongoDB is unreachable.
pub async fn outcome_count(store: &Store) -> u64 {
    store.outcomes().count_documents(doc! {}).await.unwrap_or(0)
}

/// Waits until `n` outcome documents exist.
pub async fn wait_outcomes(store: &Store, n: u64, timeout: Duration) -> Vec<Document> {
    let s = store.clone();
    wait_for(&format!("{n} outcome documents"), timeout, || {
        let s = s.clone();
        async move { outcome_count(&s).await >= n }
    })
    .await;
    outcomes(store).await
}
