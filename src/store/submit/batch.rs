//! Group commit of submits: the segments that arrive while earlier SUBMIT calls are
//! in flight go to Redis together, as one call of the batch SUBMIT script.
//!
//! Why: at a few thousand submit_sm/s a call per segment made the fixed cost of a
//! script call (EVALSHA lookup, argument parsing, its `TIME` and `ZCARD`s, one `ZADD`
//! per index) most of Redis's work per message. A batch pays it once. Nothing waits to
//! fill a batch: a submit that finds a slot free goes at once (alone when the node is
//! idle), so the batches grow only with the load.
//!
//! On a standalone server a batch is one SUBMIT call whatever its partitions; where a
//! call may touch one partition only (a cluster), it is split by partition, each part
//! one call, all sent at once (pipelined). The segments of a message share a
//! partition, so their order is kept either way; single-part ids come in runs of 256
//! per partition (`Inner::next_message_id`), so a batch of them is one call or two.
//!
//! Durability is unchanged: every segment is answered from its own reply in the
//! batch's result, after Redis executed the whole script (one atomic step, one AOF
//! write), so an ack still means "in Redis memory and the AOF buffer".

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::store::redis::connection::{Ack, Conn, Shared};
use futures::stream::{FuturesUnordered, StreamExt};
use tokio::sync::{mpsc, oneshot};

use crate::store::redis::scripts::submit::{SubmitHeader, SubmitRecord, SubmitReply};
use crate::store::redis::scripts::Scripts;
use crate::store::StoreError;

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

/// How a batch is sent: as one SUBMIT call whatever its partitions (a standalone
/// server, where a script may touch any key: a batch of multi-part segments spreads
/// over many partitions, and a call per partition cost Redis a script's fixed work
/// each — 3-part load 0.74× of one call per batch), or one call per partition (a
/// cluster, where a call's keys must share a slot).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Calls {
    One,
    PerPartition,
}

struct Job {
    record: SubmitRecord,
    reply: oneshot::Sender<Result<SubmitReply, StoreError>>,
}

/// The submitting side; the batching task ends once this is dropped.
pub(crate) struct Batcher {
    tx: mpsc::Sender<Job>,
}

impl Batcher {
    /// Starts the batching task on the current runtime.
    pub fn start(
        conn: Shared,
        ack: Ack,
        scripts: Arc<Scripts>,
        header: SubmitHeader,
        calls: Calls,
    ) -> Batcher {
        let (tx, rx) = mpsc::channel(QUEUE);
        tokio::spawn(run(rx, conn, ack, scripts, header, calls));
        Batcher { tx }
    }

    /// Stores one record; its own reply from the batch. Err: Redis failed (the whole
    /// call) or the batching task is gone.
    pub async fn submit(&self, record: SubmitRecord) -> Result<SubmitReply, StoreError> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Job { record, reply })
            .await
            .map_err(|_| StoreError::Stopped)?;
        rx.await.map_err(|_| StoreError::Stopped)?
    }
}

async fn run(
    mut rx: mpsc::Receiver<Job>,
    conn: Shared,
    ack: Ack,
    scripts: Arc<Scripts>,
    header: SubmitHeader,
    calls: Calls,
) {
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
                    in_flight.push(call(conn.get(), ack, &scripts, header, calls, batch));
                }
                None => open = false,
            },
        }
    }
}

/// The SUBMIT calls of `batch`: one (`Calls::One`), or one per partition, all at once
/// (`Calls::PerPartition`); every job gets its reply (or its call's error).
async fn call(
    conn: Conn,
    ack: Ack,
    scripts: &Scripts,
    h: SubmitHeader,
    calls: Calls,
    batch: Vec<Job>,
) {
    if calls == Calls::One {
        return call_part(conn, ack, scripts, h, batch).await;
    }
    let mut parts: BTreeMap<usize, Vec<Job>> = BTreeMap::new();
    for j in batch {
        parts.entry(j.record.part).or_default().push(j);
    }
    futures::future::join_all(
        parts
            .into_values()
            .map(|jobs| call_part(conn.clone(), ack, scripts, h, jobs)),
    )
    .await;
}

async fn call_part(mut conn: Conn, ack: Ack, scripts: &Scripts, h: SubmitHeader, batch: Vec<Job>) {
    let (records, replies): (Vec<_>, Vec<_>) =
        batch.into_iter().map(|j| (j.record, j.reply)).unzip();
    let part = records.first().map(|r| r.part).unwrap_or_default();
    let stored = match scripts.submit(&mut conn, h, &records).await {
        // Acknowledged only once the replicas asked for have it too.
        Ok(answers) => ack.wait(&mut conn, part).await.map(|()| answers),
        Err(e) => Err(e),
    };
    match stored {
        // A receiver gone (its session dropped the submit) changes nothing: the
        // segment is stored either way.
        Ok(answers) => {
            for (r, v) in replies.into_iter().zip(answers) {
                let _ = r.send(Ok(v));
            }
        }
        Err(e) => {
            let e = Arc::new(e);
            for r in replies {
                let _ = r.send(Err(StoreError::Batch(e.clone())));
            }
        }
    }
}
