//! Group commit of submits: the segments that arrive while earlier SUBMIT calls are
//! in flight go to Redis together, as one call of the batch SUBMIT script.
//!
//! Why: at a few thousand submit_sm/s a call per segment made the fixed cost of a
//! script call (EVALSHA lookup, argument parsing, its `TIME` and `ZCARD`s, one `ZADD`
//! per index) most of Redis's work per message. A batch pays it once. Nothing waits to
//! fill a batch: a submit that finds a slot free goes at once (alone when the node is
//! idle), so the batches grow only with the load.
//!
//! Durability is unchanged: every segment is answered from its own reply in the
//! batch's result, after Redis executed the whole script (one atomic step, one AOF
//! write), so an ack still means "in Redis memory and the AOF buffer".

use futures::stream::{FuturesUnordered, StreamExt};
use redis::aio::ConnectionManager;
use redis::{Script, ToRedisArgs, Value};
use tokio::sync::{mpsc, oneshot};

use super::value::items;

/// Batches in flight at once: while Redis runs one, the next is on its way. More make
/// the batches smaller, not Redis faster (it runs one script at a time): 1, 2 and 4
/// measured the same at the max single-part rate (BENCHMARKS.md).
const IN_FLIGHT: usize = 2;
/// Records per call at most: bounds the script's run time (other clients wait while
/// it runs; ~1.5 ms for 256 single-part records under load) and the size of one
/// command.
const MAX_BATCH: usize = 256;
/// Submits waiting for a slot. Sessions' windows bound what is outstanding anyway;
/// beyond this, a submit waits to be queued (back-pressure, not loss).
const QUEUE: usize = 4096;

/// The fields of one record of the batch SUBMIT script (see `scripts.rs` SUBMIT).
#[derive(Default)]
pub(crate) struct Record(Vec<Vec<u8>>);

impl Record {
    pub fn arg(&mut self, v: impl ToRedisArgs) -> &mut Self {
        v.write_redis_args(&mut self.0);
        self
    }
}

/// What every record of a call shares: ARGV[1..5] of SUBMIT.
#[derive(Clone)]
pub(crate) struct Header {
    pub prefix: String,
    pub node: String,
    pub max_pending: u64,
    pub hfe: &'static str,
    pub hold_ms: i64,
}

struct Job {
    record: Record,
    reply: oneshot::Sender<Result<Value, String>>,
}

/// The submitting side; the batching task ends once this is dropped.
pub(crate) struct Batcher {
    tx: mpsc::Sender<Job>,
}

impl Batcher {
    /// Starts the batching task on the current runtime.
    pub fn start(conn: ConnectionManager, script: Script, header: Header) -> Batcher {
        let (tx, rx) = mpsc::channel(QUEUE);
        tokio::spawn(run(rx, conn, script, header));
        Batcher { tx }
    }

    /// Stores one record; its own reply from the batch. Err: Redis failed (the whole
    /// call) or the batching task is gone.
    pub async fn submit(&self, record: Record) -> Result<Value, String> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Job { record, reply })
            .await
            .map_err(|_| "the submit batcher stopped".to_owned())?;
        rx.await
            .map_err(|_| "the submit batcher dropped the request".to_owned())?
    }
}

async fn run(mut rx: mpsc::Receiver<Job>, conn: ConnectionManager, script: Script, header: Header) {
    let mut in_flight = FuturesUnordered::new();
    let mut open = true;
    while open || !in_flight.is_empty() {
        tokio::select! {
            _ = in_flight.next(), if !in_flight.is_empty() => {}
            job = rx.recv(), if open && in_flight.len() < IN_FLIGHT => match job {
                Some(first) => {
                    let mut batch = vec![first];
                    while batch.len() < MAX_BATCH {
                        match rx.try_recv() {
                            Ok(j) => batch.push(j),
                            Err(_) => break,
                        }
                    }
                    in_flight.push(call(conn.clone(), &script, &header, batch));
                }
                None => open = false,
            },
        }
    }
}

/// One SUBMIT call for `batch`; every job gets its reply (or the call's error).
async fn call(mut conn: ConnectionManager, script: &Script, h: &Header, batch: Vec<Job>) {
    let mut inv = script.prepare_invoke();
    inv.arg(&h.prefix)
        .arg(&h.node)
        .arg(h.max_pending)
        .arg(h.hfe)
        .arg(h.hold_ms);
    let mut replies = Vec::with_capacity(batch.len());
    for job in batch {
        inv.arg(job.record.0.len());
        for field in &job.record.0 {
            inv.arg(field.as_slice());
        }
        replies.push(job.reply);
    }
    let result: Result<Value, String> = inv
        .invoke_async(&mut conn)
        .await
        .map_err(|e| format!("redis: {e}"));
    match result {
        Ok(v) => {
            let a = items(v);
            if a.len() != replies.len() {
                let e = format!(
                    "submit script answered {} replies for {}",
                    a.len(),
                    replies.len()
                );
                for r in replies {
                    let _ = r.send(Err(e.clone()));
                }
                return;
            }
            // A receiver gone (its session dropped the submit) changes nothing: the
            // segment is stored either way.
            for (r, v) in replies.into_iter().zip(a) {
                let _ = r.send(Ok(v));
            }
        }
        Err(e) => {
            for r in replies {
                let _ = r.send(Err(e.clone()));
            }
        }
    }
}
