//! `smppd-bench verify`: after a fault, holds what the load generator saw (the
//! `run --record` files) against what smppd wrote (the outcome documents).
//!
//! * **acked**: segments answered ESME_ROK, by message_id.
//! * **missing**: acked, but in no outcome document. Must be 0. A partial message
//!   expired as a whole (`expire_whole`) still lists its received segments in its
//!   EXPIRED document, so "missing" means the same in both expiry modes: an
//!   acknowledged segment that no outcome accounts for.
//! * **duplicates**: a message_id in two places, or one segment of the bench (its
//!   destination number and seq) stored twice although the bench never resent it
//!   after an uncertain answer. Must be 0.
//! * **resent, stored twice**: a segment the bench resent after a lost response or
//!   ESME_RSYSERR that ended up stored twice. SMPP has no idempotency key: smppd
//!   answers a resend of a *pending* concatenated segment with the first message_id,
//!   but a resend of a single-part message, or of a segment whose message already
//!   finished, is a new message. Allowed, reported.
//! * **stored, not acked**: in an outcome but never acknowledged (the response was
//!   lost with the connection). Allowed ("at least stored"), reported.
//! * **wrong state**: a message whose every sent segment was acked (none resent)
//!   whose outcome is not DELIVERED (all parts sent) or PARTIAL / EXPIRED (last part
//!   left out on purpose), or whose segments are split over several outcomes.
//! * **receipts**: every acked segment that asked for one (registered_delivery 1)
//!   has a receipt, with the message_state of its outcome. Receipts received twice
//!   (sent again after a lost deliver_sm_resp) are reported, not failed: SMPP
//!   delivers at least once.
//! * **drained**: smppd has nothing left in Redis (messages held — `P{t}:usage` is
//!   empty once the last is finalized —, deadlines, outbox, accounts with queued
//!   receipts) within `--drain-timeout`. The load's ESMEs have unbound by
//!   then, so `--drain-bind` receivers stand in for them: a receipt whose delivery
//!   smppd could not record (its process SIGKILLed after the deliver_sm_resp) stays
//!   queued until a receiver binds, and goes to them (counted, allowed: a copy).

use std::collections::{HashMap, HashSet};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use futures::{SinkExt, StreamExt, TryStreamExt};
use mongodb::bson::{doc, Document};
use smpp_protocol::codec::SmppCodec;
use smpp_protocol::{Body, MessageIdResp, Pdu};
use tokio::net::TcpStream;
use tokio_util::codec::Framed;
use tokio_util::sync::CancellationToken;

use crate::cli::VerifyArgs;
use crate::record::Why;

/// A message as the bench planned it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PlannedMessage {
    pub dest: String,
    pub parts: u8,
    pub sent: u8,
    pub registered_delivery: u8,
}

/// Everything the record files say.
#[derive(Debug, Default)]
pub struct Records {
    pub messages: HashMap<u64, PlannedMessage>,
    /// message_id → (number, seq) of every ESME_ROK.
    pub acked: HashMap<String, (u64, u8)>,
    /// (number, seq) resent after an answer that leaves open whether it was stored.
    pub resent_uncertain: HashSet<(u64, u8)>,
    /// (number, seq) given up.
    pub failed: HashSet<(u64, u8)>,
    /// message_id → message_state of every receipt received.
    pub receipts: HashMap<String, Vec<u8>>,
}

impl Records {
    pub fn read(&mut self, path: &Path) -> anyhow::Result<()> {
        let f = std::fs::File::open(path).with_context(|| format!("open {}", path.display()))?;
        for (i, line) in BufReader::new(f).lines().enumerate() {
            let line = line?;
            self.line(&line)
                .with_context(|| format!("{}:{}: {line:?}", path.display(), i + 1))?;
        }
        Ok(())
    }

    pub fn line(&mut self, line: &str) -> anyhow::Result<()> {
        let f: Vec<&str> = line.split_ascii_whitespace().collect();
        let num = |i: usize| -> anyhow::Result<u64> {
            f.get(i).context("field missing")?.parse().context("number")
        };
        let small = |i: usize| -> anyhow::Result<u8> {
            f.get(i).context("field missing")?.parse().context("number")
        };
        match f.first().copied() {
            None => {}
            Some("M") => {
                self.messages.insert(
                    num(1)?,
                    PlannedMessage {
                        dest: f.get(2).context("dest")?.to_string(),
                        parts: small(3)?,
                        sent: small(4)?,
                        registered_delivery: small(5)?,
                    },
                );
            }
            Some("A") => {
                let id = f.get(3).context("message_id")?.to_string();
                self.acked.insert(id, (num(1)?, small(2)?));
            }
            Some("R") => {
                let why = Why::parse(f.get(3).context("why")?).context("why")?;
                if why.uncertain() {
                    self.resent_uncertain.insert((num(1)?, small(2)?));
                }
            }
            Some("F") => {
                self.failed.insert((num(1)?, small(2)?));
            }
            Some("D") => {
                let id = f.get(1).context("message_id")?.to_string();
                self.receipts.entry(id).or_default().push(small(2)?);
            }
            Some(other) => bail!("unknown record {other:?}"),
        }
        Ok(())
    }
}

/// The part of an outcome document that verify looks at.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    pub id: String,
    pub state: String,
    pub dest: String,
    /// (seq, message_id) of every segment listed.
    pub segments: Vec<(u8, String)>,
}

impl Outcome {
    pub fn from_doc(d: &Document) -> anyhow::Result<Outcome> {
        let id = d.get_str("_id").context("_id")?.to_string();
        let state = d.get_str("state").context("state")?.to_string();
        let dest = d
            .get_document("dest")
            .ok()
            .and_then(|x| x.get_str("addr").ok())
            .unwrap_or_default()
            .to_string();
        let mut segments = Vec::new();
        for s in d.get_array("segments").context("segments")? {
            let s = s.as_document().context("segment")?;
            let seq = s.get_i32("seq").context("seq")?;
            let mid = s.get_str("message_id").context("message_id")?;
            segments.push((u8::try_from(seq).unwrap_or(0), mid.to_string()));
        }
        Ok(Outcome {
            id,
            state,
            dest,
            segments,
        })
    }
}

/// The result: one row of the chaos table.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct VerifyReport {
    pub label: String,
    pub outcome_documents: u64,
    pub acked_segments: u64,
    pub in_outcomes: u64,
    pub missing: u64,
    pub duplicates: u64,
    pub resent_stored_twice: u64,
    pub stored_not_acked: u64,
    pub wrong_state: u64,
    pub receipts_expected: u64,
    pub receipts_received: u64,
    pub receipts_missing: u64,
    pub receipts_wrong_state: u64,
    /// Receipts received more than once (allowed).
    pub receipts_twice: u64,
    /// Segments the bench gave up (never acknowledged).
    pub given_up: u64,
    /// Redis had nothing left to do when compared (or no --redis given: true).
    pub drained: bool,
    pub drain_left: String,
    /// deliver_sm/data_sm the `--drain-bind` receivers got: what smppd still held for
    /// an ESME that had unbound (allowed: delivery is at least once).
    pub drain_delivered: u64,
    /// `--drain-bind` receivers that could not bind or lost their bind.
    pub drain_bind_errors: Vec<String>,
    /// A few examples of each problem, for the log.
    pub examples: Vec<String>,
    pub ok: bool,
}

/// message_state of a receipt for a segment of an outcome in this state.
fn receipt_state(state: &str) -> Option<u8> {
    match state {
        "DELIVERED" | "PARTIAL" => Some(2),
        "EXPIRED" => Some(3),
        "CANCELLED" => Some(4),
        _ => None,
    }
}

/// Compares; pure, so the unit tests can feed it made-up records and documents.
pub fn compare(label: &str, rec: &Records, docs: &[Outcome], expire_whole: bool) -> VerifyReport {
    let mut r = VerifyReport {
        label: label.to_string(),
        outcome_documents: docs.len() as u64,
        acked_segments: rec.acked.len() as u64,
        given_up: rec.failed.len() as u64,
        drained: true,
        ..VerifyReport::default()
    };
    let example = |r: &mut VerifyReport, s: String| {
        if r.examples.len() < 20 {
            r.examples.push(s);
        }
    };
    let by_dest: HashMap<&str, u64> = rec
        .messages
        .iter()
        .map(|(n, m)| (m.dest.as_str(), *n))
        .collect();
    // Where each message_id and each (dest, seq) is stored.
    let mut by_id: HashMap<&str, Vec<usize>> = HashMap::new();
    let mut by_content: HashMap<(&str, u8), u32> = HashMap::new();
    for (i, d) in docs.iter().enumerate() {
        for (seq, mid) in &d.segments {
            by_id.entry(mid.as_str()).or_default().push(i);
            *by_content.entry((d.dest.as_str(), *seq)).or_default() += 1;
        }
    }
    for (mid, places) in &by_id {
        if places.len() > 1 {
            r.duplicates += 1;
            example(
                &mut r,
                format!("message_id {mid} in {} places", places.len()),
            );
        }
        if !rec.acked.contains_key(*mid) {
            r.stored_not_acked += 1;
        }
    }
    for ((dest, seq), n) in &by_content {
        if *n < 2 {
            continue;
        }
        let resent = by_dest
            .get(dest)
            .is_some_and(|num| rec.resent_uncertain.contains(&(*num, *seq)));
        if resent {
            r.resent_stored_twice += 1;
        } else {
            r.duplicates += 1;
            example(&mut r, format!("segment {seq} to {dest} stored {n} times"));
        }
    }
    // Acknowledged segments: found, in the right state, with their receipt.
    let mut acked_parts: HashMap<u64, Vec<(u8, &str)>> = HashMap::new();
    for (mid, (num, seq)) in &rec.acked {
        acked_parts
            .entry(*num)
            .or_default()
            .push((*seq, mid.as_str()));
        let Some(places) = by_id.get(mid.as_str()) else {
            r.missing += 1;
            example(
                &mut r,
                format!("acked {mid} (message {num} seq {seq}) in no outcome"),
            );
            continue;
        };
        r.in_outcomes += 1;
        let doc = &docs[places[0]];
        let wants = rec
            .messages
            .get(num)
            .is_some_and(|m| m.registered_delivery & 0x03 == 1);
        if wants {
            r.receipts_expected += 1;
            match rec.receipts.get(mid) {
                None => {
                    r.receipts_missing += 1;
                    example(&mut r, format!("no receipt for {mid} ({})", doc.state));
                }
                Some(states) => {
                    r.receipts_received += 1;
                    if states.len() > 1 {
                        r.receipts_twice += 1;
                    }
                    let want = receipt_state(&doc.state);
                    if states[0] != 0 && want.is_some_and(|w| w != states[0]) {
                        r.receipts_wrong_state += 1;
                        example(
                            &mut r,
                            format!(
                                "receipt for {mid} says state {} but the outcome is {}",
                                states[0], doc.state
                            ),
                        );
                    }
                }
            }
        }
    }
    for (num, parts) in &acked_parts {
        let Some(m) = rec.messages.get(num) else {
            continue;
        };
        let mut seqs: Vec<u8> = parts.iter().map(|(s, _)| *s).collect();
        seqs.sort_unstable();
        seqs.dedup();
        let clean = (1..=m.sent).all(|s| !rec.resent_uncertain.contains(&(*num, s)));
        if seqs.len() != usize::from(m.sent) || !clean {
            continue;
        }
        let want = if m.sent == m.parts {
            "DELIVERED"
        } else if expire_whole {
            "EXPIRED"
        } else {
            "PARTIAL"
        };
        let mut docs_of: Vec<usize> = parts
            .iter()
            .filter_map(|(_, mid)| by_id.get(mid).map(|p| p[0]))
            .collect();
        docs_of.sort_unstable();
        docs_of.dedup();
        let states: Vec<&str> = docs_of.iter().map(|i| docs[*i].state.as_str()).collect();
        if docs_of.len() > 1 || states.iter().any(|s| *s != want) {
            r.wrong_state += 1;
            example(
                &mut r,
                format!(
                    "message {num} ({} of {} parts): outcomes {states:?}, expected {want}",
                    m.sent, m.parts
                ),
            );
        }
    }
    r.ok = r.missing == 0
        && r.duplicates == 0
        && r.wrong_state == 0
        && r.receipts_missing == 0
        && r.receipts_wrong_state == 0;
    r
}

/// Waits until smppd has nothing pending in Redis: returns what is left on timeout.
async fn wait_drained(
    addr: std::net::SocketAddr,
    prefix: &str,
    timeout: Duration,
) -> anyhow::Result<Option<String>> {
    let until = Instant::now() + timeout;
    loop {
        let mut left = Vec::new();
        for (cmd, key) in [
            // Pending messages are in no ZSET: the partition's usage counts them
            // (and every message until its FINALIZE).
            ("HLEN", "usage"),
            ("ZCARD", "deadlines"),
            ("ZCARD", "outbox"),
            ("SCARD", "racc"),
        ] {
            // Summed over the store's partitions.
            let mut n = 0;
            for p in 0..smppd::store::redis::partition::COUNT {
                let k = format!("{}{key}", smppd::store::redis::partition::prefix(prefix, p));
                n += crate::redis_info::integer(addr, &[cmd, &k]).await?;
            }
            if n > 0 {
                left.push(format!("{prefix}{{*}}:{key}={n}"));
            }
        }
        if left.is_empty() {
            return Ok(None);
        }
        if Instant::now() >= until {
            return Ok(Some(left.join(" ")));
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// The `--drain-bind` receivers, bound while verify waits for the drain.
pub(crate) struct DrainReceivers {
    stop: CancellationToken,
    tasks: Vec<tokio::task::JoinHandle<Result<(), String>>>,
    delivered: Arc<AtomicU64>,
}

impl DrainReceivers {
    /// Binds a receiver per account on each address; a bind that fails is reported
    /// by [`DrainReceivers::stop`].
    pub(crate) fn start(
        addrs: &[std::net::SocketAddr],
        binds: &[(String, String)],
    ) -> DrainReceivers {
        let stop = CancellationToken::new();
        let delivered = Arc::new(AtomicU64::new(0));
        let mut tasks = Vec::new();
        for addr in addrs {
            for (id, pw) in binds {
                let (addr, id, pw) = (*addr, id.clone(), pw.clone());
                let (stop, delivered) = (stop.clone(), delivered.clone());
                tasks.push(tokio::spawn(async move {
                    let f =
                        crate::session::bind(addr, &id, &pw, crate::session::BindKind::Receiver)
                            .await
                            .map_err(|e| format!("{id}@{addr}: {e:#}"))?;
                    answer_until(f, stop, delivered)
                        .await
                        .map_err(|e| format!("{id}@{addr}: {e:#}"))
                }));
            }
        }
        DrainReceivers {
            stop,
            tasks,
            delivered,
        }
    }

    /// deliver_sm/data_sm received so far.
    #[cfg(test)]
    pub(crate) fn delivered(&self) -> u64 {
        self.delivered.load(Ordering::Relaxed)
    }

    /// Unbinds them: what they received, and their errors.
    pub(crate) async fn stop(self) -> (u64, Vec<String>) {
        self.stop.cancel();
        let mut errors = Vec::new();
        for t in self.tasks {
            match t.await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => errors.push(e),
                Err(e) => errors.push(format!("receiver task: {e}")),
            }
        }
        (self.delivered.load(Ordering::Relaxed), errors)
    }
}

/// Answers deliver_sm, data_sm and enquire_link ESME_ROK until `stop`, then unbinds
/// (answering what still comes until the unbind_resp, 5 s at most).
async fn answer_until(
    mut f: Framed<TcpStream, SmppCodec>,
    stop: CancellationToken,
    delivered: Arc<AtomicU64>,
) -> anyhow::Result<()> {
    let mut unbind_by = None;
    loop {
        let next = match unbind_by {
            None => tokio::select! {
                p = f.next() => p,
                _ = stop.cancelled() => {
                    f.send(Pdu::new(2, Body::Unbind)).await?;
                    unbind_by = Some(tokio::time::Instant::now() + Duration::from_secs(5));
                    continue;
                }
            },
            Some(by) => match tokio::time::timeout_at(by, f.next()).await {
                Ok(p) => p,
                Err(_) => bail!("no unbind_resp within 5 s"),
            },
        };
        let pdu = match next {
            Some(Ok(Ok(p))) => p,
            Some(Ok(Err(e))) => bail!("undecodable PDU: {e}"),
            Some(Err(e)) => bail!("read: {e}"),
            None if unbind_by.is_some() => return Ok(()),
            None => bail!("closed by the server"),
        };
        let seq = pdu.sequence_number;
        let resp = match pdu.body {
            Body::DeliverSm(_) => {
                delivered.fetch_add(1, Ordering::Relaxed);
                Body::DeliverSmResp(Some(MessageIdResp::default()))
            }
            Body::DataSm(_) => {
                delivered.fetch_add(1, Ordering::Relaxed);
                Body::DataSmResp(Some(MessageIdResp::default()))
            }
            Body::EnquireLink => Body::EnquireLinkResp,
            Body::Unbind => {
                f.send(Pdu::new(seq, Body::UnbindResp)).await?;
                return if unbind_by.is_some() {
                    Ok(())
                } else {
                    bail!("unbound by the server")
                };
            }
            Body::UnbindResp => return Ok(()),
            _ => continue,
        };
        f.send(Pdu::new(seq, resp)).await?;
    }
}

pub async fn verify(args: VerifyArgs) -> anyhow::Result<VerifyReport> {
    let mut rec = Records::default();
    for p in &args.records {
        rec.read(p)?;
    }
    let receivers = DrainReceivers::start(&args.smpp, &args.drain_binds);
    let left = match args.redis {
        Some(a) => wait_drained(a, &args.prefix, args.drain_timeout).await,
        None => Ok(None),
    };
    let (drain_delivered, drain_bind_errors) = receivers.stop().await;
    let left = left?;
    // Reading millions of outcomes keeps a single-threaded Mongo-protocol server busy
    // for minutes: its heartbeats must not time out meanwhile, or the driver interrupts
    // the read ("server monitor timeout").
    let mut opts = mongodb::options::ClientOptions::parse(&args.uri)
        .await
        .context("mongodb uri")?;
    opts.connect_timeout = Some(Duration::from_secs(600));
    opts.heartbeat_freq = Some(Duration::from_secs(300));
    opts.server_selection_timeout = Some(Duration::from_secs(600));
    let client = mongodb::Client::with_options(opts).context("mongodb client")?;
    let coll = client
        .database(&args.database)
        .collection::<Document>(&args.collection);
    let projection =
        doc! { "_id": 1, "state": 1, "dest.addr": 1, "segments.seq": 1, "segments.message_id": 1 };
    let raw: Vec<Document> = coll
        .find(match &args.account {
            Some(a) => doc! { "account": a },
            None => doc! {},
        })
        .projection(projection)
        .batch_size(20_000)
        .await
        .context("find outcomes")?
        .try_collect()
        .await
        .context("read outcomes")?;
    let docs = raw
        .iter()
        .map(Outcome::from_doc)
        .collect::<anyhow::Result<Vec<_>>>()?;
    let mut r = compare(&args.label, &rec, &docs, args.expire_whole);
    r.drain_delivered = drain_delivered;
    r.drain_bind_errors = drain_bind_errors;
    if let Some(l) = left {
        r.drained = false;
        r.drain_left = l;
        r.ok = false;
    }
    Ok(r)
}

impl VerifyReport {
    pub fn to_table(&self) -> String {
        let mut rows = vec![
            ("scenario".to_string(), self.label.clone()),
            (
                "segments".into(),
                format!(
                    "acked {}, in outcomes {}, missing {}, duplicates {} ({} outcome documents)",
                    self.acked_segments,
                    self.in_outcomes,
                    self.missing,
                    self.duplicates,
                    self.outcome_documents
                ),
            ),
            (
                "allowed".into(),
                format!(
                    "stored but not acked {}, resent and stored twice {}, given up {}",
                    self.stored_not_acked, self.resent_stored_twice, self.given_up
                ),
            ),
            ("wrong state".into(), self.wrong_state.to_string()),
            (
                "receipts".into(),
                format!(
                    "expected {}, received {}, missing {}, wrong state {}, received twice {}",
                    self.receipts_expected,
                    self.receipts_received,
                    self.receipts_missing,
                    self.receipts_wrong_state,
                    self.receipts_twice
                ),
            ),
            (
                "redis drained".into(),
                if self.drained {
                    "yes".into()
                } else {
                    format!("NO: {}", self.drain_left)
                },
            ),
            (
                "drain receivers".into(),
                format!(
                    "{} deliver_sm kept for an unbound ESME{}",
                    self.drain_delivered,
                    if self.drain_bind_errors.is_empty() {
                        String::new()
                    } else {
                        format!("; errors: {}", self.drain_bind_errors.join("; "))
                    }
                ),
            ),
            (
                "verdict".into(),
                if self.ok { "OK" } else { "MISMATCH" }.into(),
            ),
        ];
        for e in &self.examples {
            rows.push(("example".into(), e.clone()));
        }
        crate::report::format_rows(&rows)
    }
}
