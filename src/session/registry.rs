//! Every bound session by account: bind counting, live account changes on reload, and
//! the outbound side of receipts ([`ReceiptSink`]).
//!
//! One `std::sync::Mutex` guards the map; it is never held across an `.await` (the
//! outbound request runs after the chosen session's handle is cloned out).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use chrono::{DateTime, Utc};

use futures::future::BoxFuture;
use smpp_protocol::{Body, COctetString, DataSm, DeliverSm, Tlv};
use tokio::sync::{broadcast, watch, OwnedSemaphorePermit};
use tokio_util::sync::CancellationToken;

use super::outbound::{Outbound, OutboundError};
use super::state::BindType;
use super::tokens::{AccountTokens, Take};
use crate::config::{Account, Config};
use crate::service::{DeliverError, Forward, ReceiptDelivery, ReceiptPdu, ReceiptSink};

/// An account as live sessions use it: its settings and its share of the rate.
#[derive(Debug)]
pub struct AccountRuntime {
    pub account: Account,
    /// Shared by all sessions of the account on this node, drawing on the budget every
    /// node shares; `None`: unlimited.
    pub tokens: Option<Arc<AccountTokens>>,
}

impl AccountRuntime {
    fn new(account: Account) -> Self {
        let tokens = account.throughput.map(|t| Arc::new(AccountTokens::new(t)));
        AccountRuntime { account, tokens }
    }

    /// Takes one submit from the rate budget without waiting.
    pub fn take(&self) -> Take {
        self.tokens.as_ref().map_or(Take::Admit, |t| t.take())
    }
}

/// Why a bind could not be registered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RegisterError {
    #[error("account already has {0} bind(s), its max_binds")]
    TooManyBinds(usize),
}

#[derive(Debug, Clone)]
struct SessionEntry {
    id: u64,
    bind_type: BindType,
    peer: SocketAddr,
    tls: bool,
    /// What the ESME gave in its bind: below 0x34 it must never be sent TLVs (§3.2).
    interface_version: u8,
    outbound: Arc<Outbound>,
    /// Cancelled to make the session unbind (reload removed it, an operator, or
    /// shutdown).
    kick: CancellationToken,
    bound_since: DateTime<Utc>,
    counters: Arc<BindCounters>,
}

/// What an account's binds did, summed over every bind it had on this node since
/// start (kept when its last bind ends, so rates computed from it do not jump).
#[derive(Debug, Default)]
pub struct AccountCounters {
    /// submit_sm / data_sm / submit_multi answered ESME_ROK.
    pub submits_ok: AtomicU64,
    /// Answered with any other status (throttled ones included).
    pub submits_failed: AtomicU64,
    /// Of the failed ones, those refused by the account's rate limit.
    pub throttled: AtomicU64,
    /// Receipts (deliver_sm) answered deliver_sm_resp OK.
    pub receipts_delivered: AtomicU64,
}

/// A snapshot of [`AccountCounters`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AccountCountersSnapshot {
    pub submits_ok: u64,
    pub submits_failed: u64,
    pub throttled: u64,
    pub receipts_delivered: u64,
}

impl AccountCounters {
    fn snapshot(&self) -> AccountCountersSnapshot {
        let l = |a: &AtomicU64| a.load(Ordering::Relaxed);
        AccountCountersSnapshot {
            submits_ok: l(&self.submits_ok),
            submits_failed: l(&self.submits_failed),
            throttled: l(&self.throttled),
            receipts_delivered: l(&self.receipts_delivered),
        }
    }
}

/// Counters of one bind, shared by its session task and the registry; each event is
/// counted for the account too.
#[derive(Debug, Default)]
pub struct BindCounters {
    /// Requests the ESME sent while bound (enquire_link and unbind aside).
    requests: AtomicU64,
    /// Of those, requests in progress now: the inbound window in use.
    in_flight: AtomicU64,
    /// This bind's own share of the account's counters.
    bind: AccountCounters,
    account: Arc<AccountCounters>,
}

impl BindCounters {
    fn new(account: Arc<AccountCounters>) -> Self {
        BindCounters {
            account,
            ..BindCounters::default()
        }
    }

    /// A request taken into the window; [`BindCounters::request_done`] follows.
    pub fn request_started(&self) {
        self.requests.fetch_add(1, Ordering::Relaxed);
        self.in_flight.fetch_add(1, Ordering::Relaxed);
    }

    pub fn request_done(&self) {
        self.in_flight.fetch_sub(1, Ordering::Relaxed);
    }

    /// A submit (submit_sm, data_sm, submit_multi) answered with `ok` or not.
    pub fn submit_answered(&self, ok: bool) {
        for c in [&self.bind, &*self.account] {
            if ok {
                c.submits_ok.fetch_add(1, Ordering::Relaxed);
            } else {
                c.submits_failed.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// A submit refused by the account's rate limit (never taken into the window).
    pub fn throttled(&self) {
        self.throttled_in_window();
        self.requests.fetch_add(1, Ordering::Relaxed);
    }

    /// A submit refused by the rate limit once in the window (its token had to be
    /// asked for: counted as a request when it started).
    pub fn throttled_in_window(&self) {
        for c in [&self.bind, &*self.account] {
            c.throttled.fetch_add(1, Ordering::Relaxed);
            c.submits_failed.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn receipt_delivered(&self) {
        for c in [&self.bind, &*self.account] {
            c.receipts_delivered.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// One live bind of this node, as the admin API lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BindSnapshot {
    /// Unique on this node for as long as it runs.
    pub id: u64,
    pub system_id: String,
    pub bind_type: BindType,
    pub peer: SocketAddr,
    pub tls: bool,
    pub interface_version: u8,
    pub bound_since: DateTime<Utc>,
    /// Told to unbind, not closed yet.
    pub unbinding: bool,
    /// The account's window and how much of it is in use.
    pub window: usize,
    pub window_in_use: u64,
    /// Our deliver_sm waiting for their response.
    pub outbound_in_flight: usize,
    pub requests: u64,
    pub counters: AccountCountersSnapshot,
}

#[derive(Debug)]
struct AccountSlot {
    runtime: watch::Sender<Arc<AccountRuntime>>,
    sessions: Vec<SessionEntry>,
    /// Round-robin position for receipts.
    next: usize,
}

#[derive(Debug, Default)]
struct Inner {
    accounts: HashMap<String, AccountSlot>,
    next_id: u64,
    /// Per account since start; an entry stays when the account's last bind ends.
    counters: HashMap<String, Arc<AccountCounters>>,
}

/// The session chosen for a receipt.
struct Picked {
    outbound: Arc<Outbound>,
    permit: Option<OwnedSemaphorePermit>,
    /// The bind is SMPP 3.4 or later (may be sent TLVs).
    tlvs: bool,
    counters: Arc<BindCounters>,
    /// The PDU the account wants its receipts in.
    receipt_pdu: ReceiptPdu,
}

impl Picked {
    fn new(
        s: &SessionEntry,
        permit: Option<OwnedSemaphorePermit>,
        receipt_pdu: ReceiptPdu,
    ) -> Picked {
        Picked {
            outbound: s.outbound.clone(),
            permit,
            tlvs: s.interface_version >= 0x34,
            counters: s.counters.clone(),
            receipt_pdu,
        }
    }

    /// The receipt as this bind takes it: data_sm if the account asked for it and the
    /// bind speaks 3.4 (3.3 has no data_sm), else deliver_sm.
    fn body(&self, receipt: &ReceiptDelivery) -> Body {
        if let Some(f) = &receipt.forward {
            return Body::DeliverSm(forwarded_deliver_sm(receipt, f, self.tlvs));
        }
        match self.receipt_pdu {
            ReceiptPdu::DataSm if self.tlvs => Body::DataSm(receipt_data_sm(receipt)),
            _ => Body::DeliverSm(receipt_deliver_sm(receipt, self.tlvs)),
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct OutboundSettings {
    response_timeout: Duration,
    retries: u32,
}

/// The live sessions of every account. Implements [`ReceiptSink`].
#[derive(Debug)]
pub struct SessionRegistry {
    inner: Mutex<Inner>,
    receiver_bound: broadcast::Sender<String>,
    settings: RwLock<OutboundSettings>,
    /// Bumped on every bind and unbind (the admin API republishes the bind list).
    changed: watch::Sender<u64>,
}

/// A registered bind; dropping it removes the session from the registry.
#[derive(Debug)]
pub struct Registration {
    registry: Arc<SessionRegistry>,
    system_id: String,
    id: u64,
    /// The account's current settings; changes on reload.
    pub runtime: watch::Receiver<Arc<AccountRuntime>>,
    /// What this bind did (admin API).
    pub counters: Arc<BindCounters>,
}

impl Drop for Registration {
    fn drop(&mut self) {
        let mut inner = self.registry.lock();
        if let Some(slot) = inner.accounts.get_mut(&self.system_id) {
            slot.sessions.retain(|s| s.id != self.id);
            if slot.sessions.is_empty() {
                inner.accounts.remove(&self.system_id);
            }
        }
        drop(inner);
        self.registry.changed.send_modify(|n| *n += 1);
    }
}

impl SessionRegistry {
    pub fn new(config: &Config) -> Arc<Self> {
        let (receiver_bound, _) = broadcast::channel(1024);
        Arc::new(SessionRegistry {
            inner: Mutex::new(Inner::default()),
            receiver_bound,
            settings: RwLock::new(settings(config)),
            changed: watch::Sender::new(0),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Registers a successful bind if the account has room (`max_binds`).
    #[allow(clippy::too_many_arguments)]
    pub fn register(
        self: &Arc<Self>,
        account: &Account,
        bind_type: BindType,
        peer: SocketAddr,
        tls: bool,
        interface_version: u8,
        outbound: Arc<Outbound>,
        kick: CancellationToken,
    ) -> Result<Registration, RegisterError> {
        let mut inner = self.lock();
        inner.next_id += 1;
        let id = inner.next_id;
        let account_counters = inner
            .counters
            .entry(account.system_id.clone())
            .or_default()
            .clone();
        let counters = Arc::new(BindCounters::new(account_counters));
        let slot = inner
            .accounts
            .entry(account.system_id.clone())
            .or_insert_with(|| AccountSlot {
                runtime: watch::Sender::new(Arc::new(AccountRuntime::new(account.clone()))),
                sessions: Vec::new(),
                next: 0,
            });
        let max = slot.runtime.borrow().account.max_binds;
        if slot.sessions.len() >= max {
            let empty = slot.sessions.is_empty();
            if empty {
                inner.accounts.remove(&account.system_id);
            }
            return Err(RegisterError::TooManyBinds(max));
        }
        slot.sessions.push(SessionEntry {
            id,
            bind_type,
            peer,
            tls,
            interface_version,
            outbound,
            kick,
            bound_since: Utc::now(),
            counters: counters.clone(),
        });
        let runtime = slot.runtime.subscribe();
        drop(inner);
        self.changed.send_modify(|n| *n += 1);
        if bind_type.receives() {
            // No subscriber is fine: nobody waits for receipts right now.
            let _ = self.receiver_bound.send(account.system_id.clone());
        }
        Ok(Registration {
            registry: self.clone(),
            system_id: account.system_id.clone(),
            id,
            runtime,
            counters,
        })
    }

    /// Every live bind of this node, oldest first.
    pub fn binds(&self) -> Vec<BindSnapshot> {
        let inner = self.lock();
        let mut out: Vec<BindSnapshot> = inner
            .accounts
            .iter()
            .flat_map(|(system_id, slot)| {
                let window = slot.runtime.borrow().account.window;
                slot.sessions.iter().map(move |s| BindSnapshot {
                    id: s.id,
                    system_id: system_id.clone(),
                    bind_type: s.bind_type,
                    peer: s.peer,
                    tls: s.tls,
                    interface_version: s.interface_version,
                    bound_since: s.bound_since,
                    unbinding: s.kick.is_cancelled(),
                    window,
                    window_in_use: s.counters.in_flight.load(Ordering::Relaxed),
                    outbound_in_flight: s.outbound.in_flight(),
                    requests: s.counters.requests.load(Ordering::Relaxed),
                    counters: s.counters.bind.snapshot(),
                })
            })
            .collect();
        out.sort_by_key(|b| b.id);
        out
    }

    /// What each account's binds did on this node since start, by system_id.
    pub fn account_counters(&self) -> Vec<(String, AccountCountersSnapshot)> {
        let mut out: Vec<_> = self
            .lock()
            .counters
            .iter()
            .map(|(id, c)| (id.clone(), c.snapshot()))
            .collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }

    /// Tells bind `id` to unbind (it sends unbind, waits `shutdown_grace` for
    /// unbind_resp and in-flight work, then closes). Its system_id, or `None` when no
    /// live bind has that id.
    pub fn unbind(&self, id: u64) -> Option<String> {
        let inner = self.lock();
        inner.accounts.iter().find_map(|(system_id, slot)| {
            let s = slot.sessions.iter().find(|s| s.id == id)?;
            s.kick.cancel();
            Some(system_id.clone())
        })
    }

    /// Changes whenever a bind is registered or removed.
    pub fn changes(&self) -> watch::Receiver<u64> {
        self.changed.subscribe()
    }

    /// Number of live binds of an account.
    pub fn bind_count(&self, system_id: &str) -> usize {
        self.lock()
            .accounts
            .get(system_id)
            .map_or(0, |s| s.sessions.len())
    }

    /// Live binds per account: (system_id, [transmitter, receiver, transceiver]).
    pub fn bind_counts(&self) -> Vec<(String, [usize; 3])> {
        let inner = self.lock();
        let count =
            |s: &AccountSlot, t: BindType| s.sessions.iter().filter(|e| e.bind_type == t).count();
        inner
            .accounts
            .iter()
            .map(|(id, s)| {
                let n = [
                    BindType::Transmitter,
                    BindType::Receiver,
                    BindType::Transceiver,
                ];
                (id.clone(), n.map(|t| count(s, t)))
            })
            .collect()
    }

    /// Number of live binds over all accounts.
    pub fn total_binds(&self) -> usize {
        self.lock()
            .accounts
            .values()
            .map(|s| s.sessions.len())
            .sum()
    }

    /// Applies a reloaded config to live sessions: new limits go to every session of
    /// a changed account; sessions of removed or disabled accounts, and sessions the
    /// account no longer permits (address, bind type, TLS), are told to unbind.
    /// Returns how many sessions were told to unbind.
    pub fn apply_config(&self, config: &Config) -> usize {
        *self.settings.write().unwrap_or_else(|e| e.into_inner()) = settings(config);
        let mut kicked = 0;
        let inner = self.lock();
        for (system_id, slot) in &inner.accounts {
            let Some(account) = config.account(system_id).filter(|a| a.enabled) else {
                tracing::info!(
                    system_id,
                    "account removed or disabled: unbinding its sessions"
                );
                for s in &slot.sessions {
                    s.kick.cancel();
                    kicked += 1;
                }
                continue;
            };
            for s in &slot.sessions {
                let allowed = account.address_allowed(s.peer.ip())
                    && bind_type_allowed(account, s.bind_type)
                    && (s.tls || !account.tls_required);
                if !allowed {
                    tracing::info!(system_id, peer = %s.peer, "session no longer permitted: unbinding");
                    s.kick.cancel();
                    kicked += 1;
                }
            }
            let current = slot.runtime.borrow().clone();
            if current.account != *account {
                let tokens = if current.account.throughput == account.throughput {
                    // Unchanged rate: keep the tokens this node holds. (The shared
                    // bucket in the store lives on either way: no free burst on reload.)
                    current.tokens.clone()
                } else {
                    account.throughput.map(|t| Arc::new(AccountTokens::new(t)))
                };
                slot.runtime.send_replace(Arc::new(AccountRuntime {
                    account: account.clone(),
                    tokens,
                }));
            }
        }
        kicked
    }

    /// Picks an RX/TRX session of the account, preferring one with a free outbound
    /// slot (round robin among them).
    fn pick(&self, system_id: &str) -> Option<Picked> {
        let mut inner = self.lock();
        let slot = inner.accounts.get_mut(system_id)?;
        let receipt_pdu = slot.runtime.borrow().account.receipt_pdu;
        let candidates: Vec<&SessionEntry> = slot
            .sessions
            .iter()
            .filter(|s| s.bind_type.receives() && !s.kick.is_cancelled())
            .collect();
        if candidates.is_empty() {
            return None;
        }
        let start = slot.next % candidates.len();
        let mut chosen = None;
        for i in 0..candidates.len() {
            let s = candidates[(start + i) % candidates.len()];
            if let Some(permit) = s.outbound.try_slot() {
                chosen = Some(Picked::new(s, Some(permit), receipt_pdu));
                break;
            }
        }
        let chosen = chosen.unwrap_or_else(|| Picked::new(candidates[start], None, receipt_pdu));
        slot.next = slot.next.wrapping_add(1);
        Some(chosen)
    }

    async fn deliver_receipt(&self, receipt: ReceiptDelivery) -> Result<(), DeliverError> {
        let settings = *self.settings.read().unwrap_or_else(|e| e.into_inner());
        let mut last = DeliverError::NoReceiver;
        for _attempt in 0..=settings.retries {
            let Some(picked) = self.pick(&receipt.system_id) else {
                return Err(last);
            };
            let body = picked.body(&receipt);
            let Picked {
                outbound,
                permit,
                counters,
                ..
            } = picked;
            let permit = match permit {
                Some(p) => p,
                None => {
                    match tokio::time::timeout(settings.response_timeout, outbound.slot()).await {
                        Ok(Some(p)) => p,
                        _ => {
                            last = DeliverError::Timeout;
                            continue;
                        }
                    }
                }
            };
            match outbound
                .request(body, settings.response_timeout, &permit)
                .await
            {
                Ok(()) => {
                    counters.receipt_delivered();
                    return Ok(());
                }
                Err(OutboundError::Refused(status)) => return Err(DeliverError::Refused(status.0)),
                Err(OutboundError::Nacked(status)) => return Err(DeliverError::Nacked(status.0)),
                Err(OutboundError::Timeout) | Err(OutboundError::Closed) => {
                    tracing::debug!(system_id = %receipt.system_id, "deliver_sm unanswered, retrying");
                    last = DeliverError::Timeout;
                }
            }
        }
        Err(last)
    }
}

fn settings(config: &Config) -> OutboundSettings {
    OutboundSettings {
        response_timeout: config.server.response_timeout,
        retries: config.server.outbound_retries,
    }
}

pub(crate) fn bind_type_allowed(account: &Account, t: BindType) -> bool {
    let a = account.allowed_bind_types;
    match t {
        BindType::Transmitter => a.transmitter,
        BindType::Receiver => a.receiver,
        BindType::Transceiver => a.transceiver,
    }
}

/// COctetString from text, dropping NULs (which a C-string cannot hold).
pub(crate) fn cstr(s: &str) -> COctetString {
    COctetString::try_from(s.replace('\0', "")).unwrap_or_default()
}

/// The deliver_sm of reference §9.1: esm_class 0x04, receipted_message_id and
/// message_state TLVs, the text in short_message (message_payload if longer than 254).
/// To an SMPP 3.3 bind (`tlvs` false) only the text, cut to 254 octets: 3.3 has no
/// TLVs, and the receipt text carries the id and state itself.
fn receipt_deliver_sm(r: &ReceiptDelivery, tlvs: bool) -> DeliverSm {
    let mut text = bytes::Bytes::from(r.short_message.clone());
    let mut out = Vec::new();
    if tlvs {
        out.push(Tlv::ReceiptedMessageId(cstr(&r.receipted_message_id)));
        out.push(Tlv::MessageState(r.message_state));
        if let Some((network_type, error_code)) = r.network_error {
            out.push(Tlv::NetworkErrorCode {
                network_type,
                error_code,
            });
        }
    }
    let short_message = if text.len() <= 254 {
        text
    } else if tlvs {
        out.push(Tlv::MessagePayload(text));
        bytes::Bytes::new()
    } else {
        text.truncate(254);
        text
    };
    let tlvs = out;
    DeliverSm {
        source_addr_ton: r.source.ton,
        source_addr_npi: r.source.npi,
        source_addr: cstr(&r.source.addr),
        dest_addr_ton: r.dest.ton,
        dest_addr_npi: r.dest.npi,
        destination_addr: cstr(&r.dest.addr),
        esm_class: if r.intermediate { 0x20 } else { 0x04 },
        // The text was encoded for it (DeliveryReceipt::to_short_message).
        data_coding: smpp_protocol::receipt::DATA_CODING,
        short_message,
        tlvs,
        ..DeliverSm::default()
    }
}

/// A forwarded message's segment as the receiver's deliver_sm: addresses,
/// service_type, data_coding, the GSM bits of esm_class (UDHI) and the octets as
/// submitted; SAR TLVs for a SAR segment. Octets beyond 254 go in message_payload
/// (3.4 binds; a 3.3 bind gets them cut to 254, as it could not take more).
fn forwarded_deliver_sm(r: &ReceiptDelivery, f: &Forward, tlvs: bool) -> DeliverSm {
    let mut text = bytes::Bytes::from(r.short_message.clone());
    let mut out = Vec::new();
    if let (Some((reference, total, seq)), true) = (f.sar, tlvs) {
        out.push(Tlv::SarMsgRefNum(reference));
        out.push(Tlv::SarTotalSegments(total));
        out.push(Tlv::SarSegmentSeqnum(seq));
    }
    let short_message = if text.len() <= 254 && !(f.payload && tlvs) {
        text
    } else if tlvs {
        out.push(Tlv::MessagePayload(text));
        bytes::Bytes::new()
    } else {
        text.truncate(254);
        text
    };
    DeliverSm {
        service_type: cstr(&f.service_type),
        source_addr_ton: r.source.ton,
        source_addr_npi: r.source.npi,
        source_addr: cstr(&r.source.addr),
        dest_addr_ton: r.dest.ton,
        dest_addr_npi: r.dest.npi,
        destination_addr: cstr(&r.dest.addr),
        esm_class: f.esm_class,
        protocol_id: f.protocol_id,
        priority_flag: f.priority_flag,
        data_coding: f.data_coding,
        short_message,
        tlvs: out,
        ..DeliverSm::default()
    }
}

/// The receipt as a data_sm (reference §3.9, §9.1: "it may also use data_sm"): the
/// same esm_class 0x04, addresses and receipted_message_id / message_state TLVs as the
/// deliver_sm, and the text in message_payload (data_sm has no short_message).
fn receipt_data_sm(r: &ReceiptDelivery) -> DataSm {
    DataSm {
        source_addr_ton: r.source.ton,
        source_addr_npi: r.source.npi,
        source_addr: cstr(&r.source.addr),
        dest_addr_ton: r.dest.ton,
        dest_addr_npi: r.dest.npi,
        destination_addr: cstr(&r.dest.addr),
        esm_class: if r.intermediate { 0x20 } else { 0x04 },
        data_coding: smpp_protocol::receipt::DATA_CODING,
        tlvs: [
            Tlv::ReceiptedMessageId(cstr(&r.receipted_message_id)),
            Tlv::MessageState(r.message_state),
            Tlv::MessagePayload(bytes::Bytes::from(r.short_message.clone())),
        ]
        .into_iter()
        .chain(
            r.network_error
                .map(|(network_type, error_code)| Tlv::NetworkErrorCode {
                    network_type,
                    error_code,
                }),
        )
        .collect(),
        ..DataSm::default()
    }
}

impl ReceiptSink for SessionRegistry {
    fn deliver(&self, receipt: ReceiptDelivery) -> BoxFuture<'_, Result<(), DeliverError>> {
        Box::pin(self.deliver_receipt(receipt))
    }

    fn receiver_bound(&self) -> broadcast::Receiver<String> {
        self.receiver_bound.subscribe()
    }

    fn has_receiver(&self, system_id: &str) -> bool {
        self.lock().accounts.get(system_id).is_some_and(|slot| {
            slot.sessions
                .iter()
                .any(|s| s.bind_type.receives() && !s.kick.is_cancelled())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::EnvOverrides;

    fn config() -> Config {
        Config::from_toml(
            "[[esme]]\nsystem_id = \"acme\"\npassword = \"pw\"\nwindow = 4\n",
            &EnvOverrides::default(),
            None,
        )
        .expect("valid config")
    }

    #[test]
    fn binds_are_listed_counted_and_told_to_unbind() {
        let config = config();
        let registry = SessionRegistry::new(&config);
        let mut changes = registry.changes();
        let account = config.account("acme").expect("configured");
        let (tx, _rx) = tokio::sync::mpsc::channel(1);
        let kick = CancellationToken::new();
        let peer: SocketAddr = "192.0.2.1:4000".parse().expect("address");
        let reg = registry
            .register(
                account,
                BindType::Transceiver,
                peer,
                true,
                0x34,
                Arc::new(Outbound::new(2, tx)),
                kick.clone(),
            )
            .expect("room for a bind");
        assert!(changes.has_changed().unwrap_or(false), "a bind is a change");
        changes.mark_unchanged();

        reg.counters.request_started();
        reg.counters.submit_answered(true);
        reg.counters.throttled();
        let binds = registry.binds();
        assert_eq!(binds.len(), 1);
        let b = &binds[0];
        assert_eq!((b.system_id.as_str(), b.peer, b.tls), ("acme", peer, true));
        assert_eq!((b.window, b.window_in_use, b.requests), (4, 1, 2));
        assert_eq!(
            b.counters,
            AccountCountersSnapshot {
                submits_ok: 1,
                submits_failed: 1,
                throttled: 1,
                receipts_delivered: 0
            }
        );
        reg.counters.request_done();
        assert_eq!(registry.binds()[0].window_in_use, 0);

        assert_eq!(registry.unbind(b.id + 1), None);
        assert_eq!(registry.unbind(b.id).as_deref(), Some("acme"));
        assert!(kick.is_cancelled());
        assert!(registry.binds()[0].unbinding);

        // Gone with its registration; the account's counters stay.
        drop(reg);
        assert!(
            changes.has_changed().unwrap_or(false),
            "an unbind is a change"
        );
        assert!(registry.binds().is_empty());
        let counters = registry.account_counters();
        assert_eq!(counters.len(), 1);
        assert_eq!(counters[0].1.submits_ok, 1);
    }
}
