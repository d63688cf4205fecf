//! The Mongo-protocol server's own insert rate, and the rate a backlog of outcomes
//! arrives at, so the outcome writer can be compared with the server it writes to.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use mongodb::bson::{doc, Bson, DateTime, Document};
use mongodb::Client;

use crate::cli::{MongoDrainArgs, MongoInsertArgs};

#[derive(Debug, Clone, serde::Serialize)]
pub struct MongoReport {
    pub label: String,
    pub docs: u64,
    pub elapsed_s: f64,
    pub docs_per_s: f64,
    pub batch: usize,
    pub concurrency: usize,
    /// False when a drain timed out before every document arrived.
    pub complete: bool,
}

impl MongoReport {
    pub fn to_table(&self) -> String {
        crate::report::format_rows(&[
            ("scenario".into(), self.label.clone()),
            (
                "documents".into(),
                format!(
                    "{} in {:.2} s = {:.0} docs/s (batch {}, concurrency {})",
                    self.docs, self.elapsed_s, self.docs_per_s, self.batch, self.concurrency
                ),
            ),
        ])
    }
}

/// A document shaped like a single-part DELIVERED outcome (same fields and sizes).
fn outcome_like(n: u64) -> Document {
    let now = DateTime::now();
    let id = format!("{:08X}{:012X}", 0xBEu32, n);
    let text: String = "smppd bench outcome text ".repeat(4);
    doc! {
        "_id": &id,
        "account": "bench",
        "service_type": "",
        "source": { "ton": 5, "npi": 0, "addr": "smppdbench" },
        "dest": { "ton": 1, "npi": 1, "addr": format!("4917{n:09}") },
        "scheme": Bson::Null,
        "reference": Bson::Null,
        "total": 1,
        "state": "DELIVERED",
        "segments": [{
            "seq": 1, "message_id": &id, "received_at": now, "data_coding": 0,
            "esm_class": 0, "registered_delivery": 1, "text": &text,
        }],
        "missing": [],
        "submitted_at": now,
        "deadline": now,
        "completed_at": now,
        "node": "bench",
        "text": &text,
    }
}

pub async fn insert(args: MongoInsertArgs) -> anyhow::Result<MongoReport> {
    let client = Client::with_uri_str(&args.uri)
        .await
        .context("mongodb uri")?;
    let coll = client
        .database(&args.database)
        .collection::<Document>(&args.collection);
    coll.drop().await.context("drop the bench collection")?;
    // The indexes smppd keeps on its outcomes collection, so the reference pays the
    // same index maintenance as the outcome writer.
    coll.create_indexes(smppd::store::outcome_indexes(None))
        .await
        .context("create the outcome indexes")?;
    let next = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..args.concurrency.max(1) {
        let coll = coll.clone();
        let next = next.clone();
        let (docs, batch) = (args.docs, args.batch.max(1) as u64);
        tasks.push(tokio::spawn(async move {
            loop {
                let first = next.fetch_add(batch, Ordering::Relaxed);
                if first >= docs {
                    return Ok::<(), mongodb::error::Error>(());
                }
                let last = (first + batch).min(docs);
                let batch: Vec<Document> = (first..last).map(outcome_like).collect();
                coll.insert_many(batch).ordered(false).await?;
            }
        }));
    }
    for t in tasks {
        t.await.context("insert task")?.context("insert_many")?;
    }
    let elapsed = started.elapsed();
    let _ = coll.drop().await;
    Ok(MongoReport {
        label: args.label,
        docs: args.docs,
        elapsed_s: elapsed.as_secs_f64(),
        docs_per_s: args.docs as f64 / elapsed.as_secs_f64(),
        batch: args.batch,
        concurrency: args.concurrency,
        complete: true,
    })
}

/// The rate a backlog of outcomes reaches MongoDB: from the first document (batch)
/// acknowledged to the last. With `--redis`, timed by the outbox; else by polling the
/// document count (which loads the server under test; see [`MongoDrainArgs::redis`]).
pub async fn drain(args: MongoDrainArgs) -> anyhow::Result<MongoReport> {
    let client = Client::with_uri_str(&args.uri)
        .await
        .context("mongodb uri")?;
    let coll = client
        .database(&args.database)
        .collection::<Document>(&args.collection);
    let target = args.base + args.expect;
    let until = Instant::now() + args.timeout;
    // (time, documents still to come) at the first sign of progress, and at the end.
    let mut first: Option<(Instant, u64)> = None;
    let mut last_left;
    let mut prev_left: Option<u64> = None;
    loop {
        let left = match args.redis {
            Some(addr) => {
                let mut n = 0;
                for p in 0..smppd::store::redis::partition::COUNT {
                    let key = format!(
                        "{}outbox",
                        smppd::store::redis::partition::prefix(&args.prefix, p)
                    );
                    n += crate::redis_info::integer(addr, &["ZCARD", &key])
                        .await
                        .context("outbox size")? as u64;
                }
                n
            }
            None => target.saturating_sub(coll.estimated_document_count().await.context("count")?),
        };
        last_left = left;
        let now = Instant::now();
        let progressed = match (args.redis, prev_left) {
            // The outbox may hold more than this backlog: progress is a shrink.
            (Some(_), Some(p)) => left < p,
            (Some(_), None) => false,
            (None, _) => left < args.expect,
        };
        if first.is_none() && progressed {
            first = Some((now, left));
        }
        prev_left = Some(left);
        if left == 0 || now >= until {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (t0, left0) = first.unwrap_or((Instant::now(), last_left));
    let elapsed = t0.elapsed();
    let docs = left0.saturating_sub(last_left);
    let count = coll.estimated_document_count().await.context("count")?;
    let complete = last_left == 0 && count >= target;
    if !complete {
        // Still a measurement: the rate so far, flagged incomplete.
        eprintln!(
            "mongo-drain: {} of {} documents in MongoDB, {} still to write after {:?}",
            count.saturating_sub(args.base),
            args.expect,
            last_left,
            args.timeout
        );
    }
    Ok(MongoReport {
        label: args.label,
        docs,
        elapsed_s: elapsed.as_secs_f64(),
        docs_per_s: docs as f64 / elapsed.as_secs_f64().max(1e-9),
        batch: 0,
        concurrency: 0,
        complete,
    })
}
