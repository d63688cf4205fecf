//! smppd on a Redis/Valkey Cluster under faults, end to end: two real smppd processes,
//! real SMPP sockets, real clusters started by the harness (`support::cluster`).
//!
//! * A primary SIGKILLed under load, 3 primaries + 3 replicas: Valkey 9 with
//!   `ack_replicas = 1` and `cluster-require-full-coverage no`, Redis 7.0 with
//!   `ack_replicas = 0` and the servers' default `yes` (every node answers CLUSTERDOWN
//!   until the promotion; the cluster client's retries bridge it). The dead primary's
//!   partitions answer ESME_RSYSERR while no primary owns them, the others keep
//!   answering ESME_ROK, binds stay up, the deadlines that fell in the gap fire after
//!   the promotion, every receipt arrives (at least once: counted), and every
//!   acknowledged segment ends in exactly one outcome — with `ack_replicas = 0` the
//!   async-replication window may take some back: tolerated there only, counted.
//! * A partition's slot moved to another primary under load (Valkey 9
//!   `CLUSTER MIGRATESLOTS`; `SETSLOT`/`MIGRATE`, Redis 7.0's way): its pending
//!   messages' deadlines fire on the new owner, each once, nothing is lost, and new
//!   submits to it keep working. A legacy move in many `MIGRATE` batches under load is
//!   unsupported (docs/design/cluster.md "Resharding"): those two tests reproduce why
//!   and are ignored.
//! * A mode mismatch (`cluster = false` on a cluster node, `cluster = true` on one
//!   server) stops start-up with a message that says what to set.
//!
//! The load: "lanes", each a loop of messages (single-part, complete multi-part,
//! multi-part left incomplete) whose segments alternate over binds on both nodes,
//! each multi-part message aimed at a partition chosen by its group key. Every
//! submit is logged with when it was sent and answered; the assertions read the log.
//! Every wait is on a condition with a timeout; the only sleeps pace the load.
//! `E2E_CLUSTER_TIMELINE=1` prints the failover tests' submits around the kill.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use smpp_protocol::CommandStatus;
use smppd::service::{Address, ConcatScheme, ExpiryMode};
use smppd::store::model::{group_key, GroupMeta};
use smppd::store::redis::partition::{self, COUNT};
use tokio::task::{block_in_place, JoinHandle};

use crate::support::backend::Backend;
use crate::support::cluster::RedisCluster;
use crate::support::e2e::*;
use crate::support::esme::*;
use crate::support::messages::*;
use crate::support::servers::{RedisKind, RedisServer};
use crate::support::wait_for;

/// Relative validity of 3 seconds.
const THREE_SECONDS: &str = "000000000003000R";
/// A lane starts a message at most this often.
const PACE: Duration = Duration::from_millis(20);

// ---------------------------------------------------------------------------------
// The load

/// What a lane's message is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shape {
    Single,
    /// Every segment of a multi-part message of this many.
    Complete(u8),
    /// Segments 1 and 2 of 3: finished by its deadline, as a partial outcome.
    Incomplete,
}

/// A loop of messages.
struct Lane {
    name: &'static str,
    /// Segment `seq` of message `k` goes through `esmes[(k + seq) % len]`.
    esmes: Vec<Arc<Esme>>,
    /// Multi-part message `k` goes to partition `parts[k % len]`.
    parts: Vec<usize>,
    /// Cycled over the messages.
    shapes: Vec<Shape>,
    /// Validity of every message.
    validity: &'static str,
    /// Makes the lane's destination addresses its own.
    dest_base: u32,
}

/// One submit_sm and its answer.
#[derive(Debug, Clone)]
struct Sent {
    lane: &'static str,
    msg: usize,
    shape: Shape,
    seq: u8,
    /// The partition of a multi-part message (from its group key); a single-part
    /// message's is known from its message_id only.
    part: Option<usize>,
    sent: Instant,
    answered: Instant,
    status: CommandStatus,
    id: Option<String>,
}

impl Sent {
    fn ok(&self) -> bool {
        self.status == CommandStatus::ESME_ROK
    }

    /// The partition: the group key's, or the message_id's.
    fn partition(&self) -> Option<usize> {
        self.part
            .or_else(|| self.id.as_deref().and_then(partition::of_message_id))
    }
}

type Log = Arc<Mutex<Vec<Sent>>>;

/// The group key's partition of a UDH-8 message of alice from `SENDER` to `dest`.
fn group_partition(dest: &str, reference: u16, total: u8) -> usize {
    let addr = |a: &str| Address {
        ton: 1,
        npi: 1,
        addr: a.to_owned(),
    };
    let meta = GroupMeta {
        account: "alice".into(),
        service_type: String::new(),
        source: addr("SENDER"),
        dest: addr(dest),
        scheme: Some(ConcatScheme::Udh8),
        reference: Some(reference),
        total,
        expiry_mode: ExpiryMode::DeliverPartial,
    };
    partition::of_group(&group_key(&meta))
}

/// A destination of message `k` of a lane whose group lands in partition `p`.
fn dest_in(base: u32, k: usize, reference: u16, total: u8, p: usize) -> String {
    (0u32..)
        .map(|j| format!("{base}{k:05}{j:04}"))
        .find(|d| group_partition(d, reference, total) == p)
        .unwrap()
}

impl Lane {
    /// Sends message `k`, every segment, logging each answer.
    async fn message(&self, k: usize, log: &Log) {
        let shape = self.shapes[k % self.shapes.len()];
        let (total, sent_segs) = match shape {
            Shape::Single => (1, 1),
            Shape::Complete(n) => (n, n),
            Shape::Incomplete => (3, 2),
        };
        let reference = (k % 256) as u16;
        let (dest, part) = if total == 1 {
            (format!("{}{k:05}", self.dest_base), None)
        } else {
            let p = self.parts[k % self.parts.len()];
            (dest_in(self.dest_base, k, reference, total, p), Some(p))
        };
        for seq in 1..=sent_segs {
            let concat = (total > 1).then_some((ConcatScheme::Udh8, reference, total, seq));
            let text = gsm(&format!("{} {k} {seq} ", self.name));
            let sm = segment("SENDER", &dest, concat, 0, &text, 1, self.validity);
            let esme = &self.esmes[(k + usize::from(seq)) % self.esmes.len()];
            let sent = Instant::now();
            let r = esme.submit(sm).await;
            let answered = Instant::now();
            let id = (r.command_status == CommandStatus::ESME_ROK).then(|| message_id_of(&r));
            log.lock().unwrap().push(Sent {
                lane: self.name,
                msg: k,
                shape,
                seq,
                part,
                sent,
                answered,
                status: r.command_status,
                id,
            });
        }
    }

    /// Messages one after another, at most one per [`PACE`], until `stop`.
    fn spawn(self, log: Log, stop: Arc<AtomicBool>) -> JoinHandle<usize> {
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(PACE);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut k = 0;
            while !stop.load(Ordering::SeqCst) {
                tick.tick().await;
                self.message(k, &log).await;
                k += 1;
            }
            k
        })
    }
}

/// enquire_link on `esme` every 100 ms until `stop`: (sent, round trip, status).
fn spawn_pinger(
    esme: Arc<Esme>,
    stop: Arc<AtomicBool>,
) -> JoinHandle<Vec<(Instant, Duration, CommandStatus)>> {
    tokio::spawn(async move {
        let mut seen = Vec::new();
        while !stop.load(Ordering::SeqCst) {
            let t = Instant::now();
            let r = esme.enquire_link().await;
            seen.push((t, t.elapsed(), r.command_status));
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        seen
    })
}

fn snapshot(log: &Log) -> Vec<Sent> {
    log.lock().unwrap().clone()
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// Keys of the test's prefix left in the cluster, besides the store-wide ones that
/// live on (`layout`, `node_seq`, `short_seq`, the bind lists under `{binds}`, and
/// the account limits under `{lim:…}`, held while ESMEs are bound).
fn leftover(env: &Env) -> Vec<String> {
    env.redis
        .cluster()
        .keys_with_prefix(&env.prefix)
        .into_iter()
        .filter(|k| {
            let rest = &k[env.prefix.len()..];
            !(matches!(rest, "layout" | "node_seq" | "short_seq")
                || rest.starts_with("{binds}")
                || rest.starts_with("{lim:"))
        })
        .collect()
}

/// What `keys` hold (for failure messages): each key's type and contents, and the
/// Redis time.
fn dump(env: &Env, keys: &[String]) -> String {
    let c = env.redis.cluster();
    let mut out = format!("redis time {} ms;", env.redis_time_ms());
    for k in keys {
        let ty = c.command_for_key(k, &["TYPE", k]).unwrap_or_default();
        let args: Vec<&str> = match ty.trim().trim_start_matches('+') {
            "zset" => vec!["ZRANGE", k, "0", "-1", "WITHSCORES"],
            "hash" => vec!["HGETALL", k],
            "set" => vec!["SMEMBERS", k],
            "string" => vec!["GET", k],
            _ => vec!["TYPE", k],
        };
        let v = c.command_for_key(k, &args).unwrap_or_default();
        out.push_str(&format!("\n{k}: {}", v.replace("\r\n", " ")));
    }
    out
}

/// Every submit answered from 300 ms before the kill to 1 s after the dead partitions
/// took writes again, in ms from the kill (`E2E_CLUSTER_TIMELINE=1`, for diagnosis).
fn print_timeline(log: &[Sent], kill_at: Instant, failover_at: Instant, rejoined_at: Instant) {
    let ms = |t: Instant| match t.checked_duration_since(kill_at) {
        Some(d) => d.as_millis() as i64,
        None => -((kill_at - t).as_millis() as i64),
    };
    let from = kill_at - Duration::from_millis(300);
    let to = rejoined_at + Duration::from_secs(1);
    for s in log.iter().filter(|s| s.answered >= from && s.sent <= to) {
        eprintln!(
            "{:>6} {:>6} {:5} {:?} seq {} part {:?} {:?}",
            ms(s.sent),
            ms(s.answered),
            s.lane,
            s.shape,
            s.seq,
            s.partition(),
            s.status
        );
    }
    eprintln!(
        "failover seen at {} ms, writes to the dead partitions possible from {} ms",
        ms(failover_at),
        ms(rejoined_at)
    );
}

/// Which outcome documents hold each segment message_id.
fn segments_by_doc(docs: &[mongodb::bson::Document]) -> HashMap<String, Vec<String>> {
    let mut by: HashMap<String, Vec<String>> = HashMap::new();
    for d in docs {
        for id in segment_ids(d) {
            by.entry(id)
                .or_default()
                .push(d.get_str("_id").unwrap().to_owned());
        }
    }
    by
}

/// Receipted message_ids over `esmes`, with how often each came.
/// Waits until nothing of the test is left in Redis (what is left, on timeout).
async fn wait_drained(env: &Env) {
    wait_for("nothing of the test left in Redis", T, async || {
        let left = leftover(env);
        left.is_empty()
            .then_some(())
            .ok_or_else(|| dump(env, &left))
    })
    .await;
}

/// Waits until `esmes` have a receipt for each of `want`.
async fn wait_receipts<'a>(esmes: &[&Esme], want: impl Iterator<Item = &'a str> + Clone) {
    wait_for("a receipt for every acknowledged segment", T, async || {
        let got = receipt_counts(esmes);
        let all = want.clone().count();
        let n = want.clone().filter(|id| !got.contains_key(*id)).count();
        (n == 0)
            .then_some(())
            .ok_or(format!("{n} of {all} receipts missing"))
    })
    .await;
}

fn receipt_counts(esmes: &[&Esme]) -> HashMap<String, usize> {
    let mut n = HashMap::new();
    for e in esmes {
        for d in e.delivered() {
            if let Some(id) = d.receipted_message_id {
                *n.entry(id).or_default() += 1;
            }
        }
    }
    n
}

/// Asserts every multi-part segment acknowledged went to the partition its group key
/// names (the test's aim is right), and every message_id names a partition.
fn assert_partitions_as_aimed(log: &[Sent]) {
    for s in log.iter().filter(|s| s.ok()) {
        let id = s.id.as_deref().unwrap();
        let got = partition::of_message_id(id).unwrap_or_else(|| panic!("message_id {id}"));
        if let Some(p) = s.part {
            assert_eq!(got, p, "segment {s:?} landed in another partition");
        }
    }
}

// ---------------------------------------------------------------------------------
// 1, 2. A primary killed under load

/// `full_coverage`: the servers' `cluster-require-full-coverage` (default yes: every
/// node refuses writes with CLUSTERDOWN from the moment the killed primary is marked
/// FAIL until its replica is promoted; the cluster client's retries must bridge that
/// for the other partitions).
async fn failover_under_load(kind: RedisKind, ack_replicas: u32, full_coverage: bool) {
    let t0 = Instant::now();
    let coverage = if full_coverage { "yes" } else { "no" };
    let cluster = block_in_place(|| {
        RedisCluster::start_with(kind, 3, 1, &["--cluster-require-full-coverage", coverage])
    });
    let cluster_up = t0.elapsed();
    let mut env = Env::start_on(
        Backend::Cluster(cluster),
        &format!("failover{ack_replicas}"),
    )
    .await;
    env.config
        .set("redis.ack_replicas", i64::from(ack_replicas));
    // Receipts are sent at least once: one delivered just as the primary died may
    // have its done (the delete) lost with it, and goes out again when its lease
    // ends. A short lease (max(1 s x 3 x 1, 5 s) + 5 s) keeps that wait short.
    env.config
        .set("server.response_timeout", "1s")
        .set("server.outbound_retries", 0);
    let a = env.spawn_smppd("node-a").await;
    let b = env.spawn_smppd("node-b").await;
    // The start-up warning says when one primary's failure stops every partition.
    for node in [&a, &b] {
        assert_eq!(
            node.log().contains("cluster-require-full-coverage is yes"),
            full_coverage,
            "{}",
            node.log()
        );
    }
    let bind = |addr, as_| Esme::answering(addr, as_, "alice");
    let (dead_a, dead_b) = (
        bind(a.addr, BindAs::Tx).await,
        bind(b.addr, BindAs::Tx).await,
    );
    let (live_a, live_b) = (
        bind(a.addr, BindAs::Tx).await,
        bind(b.addr, BindAs::Tx).await,
    );
    let rx_a = Arc::new(bind(a.addr, BindAs::Rx).await);
    let rx_b = Arc::new(bind(b.addr, BindAs::Rx).await);
    let (dead_a, dead_b) = (Arc::new(dead_a), Arc::new(dead_b));
    let (live_a, live_b) = (Arc::new(live_a), Arc::new(live_b));

    // A single-part message goes to its node's current partition (runs of 256 ids):
    // the primary to kill is the one that owns node A's, so that single-part submits
    // meet the outage too.
    let log: Log = Arc::default();
    let probe = Lane {
        name: "probe",
        esmes: vec![dead_a.clone()],
        parts: vec![0],
        shapes: vec![Shape::Single],
        validity: THREE_SECONDS,
        dest_base: 9,
    };
    probe.message(0, &log).await;
    let first = snapshot(&log)[0].clone();
    assert!(first.ok(), "probe: {first:?}");
    let single_part = first.partition().unwrap();
    let victim = block_in_place(|| {
        env.redis
            .cluster()
            .owner_of_slot(partition::home_slot(single_part))
    });
    let owner_of =
        |p: usize| block_in_place(|| env.redis.cluster().owner_of_slot(partition::home_slot(p)));
    let dead: Vec<usize> = (0..COUNT).filter(|&p| owner_of(p) == victim).collect();
    let live: Vec<usize> = (0..COUNT).filter(|p| !dead.contains(p)).collect();
    eprintln!(
        "{kind:?}: node A's single-part partition {single_part}; killing node {victim} \
         (partitions {}..={})",
        dead[0],
        dead[dead.len() - 1]
    );

    let stop = Arc::new(AtomicBool::new(false));
    let dead_lane = Lane {
        name: "dead",
        esmes: vec![dead_a.clone(), dead_b.clone()],
        parts: dead.clone(),
        shapes: vec![
            Shape::Single,
            Shape::Complete(2),
            Shape::Incomplete,
            Shape::Complete(3),
        ],
        // Short: the deadlines of those acknowledged just before the kill fall in
        // the gap.
        validity: TWO_SECONDS,
        dest_base: 1,
    };
    let live_lane = Lane {
        name: "live",
        esmes: vec![live_a.clone(), live_b.clone()],
        parts: live.clone(),
        shapes: vec![Shape::Complete(2), Shape::Incomplete, Shape::Complete(3)],
        validity: THREE_SECONDS,
        dest_base: 2,
    };
    let lanes = [
        dead_lane.spawn(log.clone(), stop.clone()),
        live_lane.spawn(log.clone(), stop.clone()),
    ];
    let all_binds = [&dead_a, &dead_b, &live_a, &live_b, &rx_a, &rx_b];
    let pingers: Vec<_> = all_binds
        .iter()
        .map(|e| spawn_pinger((*e).clone(), stop.clone()))
        .collect();

    // Load running on both lanes, incomplete messages pending in the dead partitions.
    wait_for("load on both lanes", T, async || {
        let l = snapshot(&log);
        let count = |lane, shape| {
            l.iter()
                .filter(|s| s.ok() && s.lane == lane && s.shape == shape && s.seq == 2)
                .count()
        };
        let (d, v) = (
            count("dead", Shape::Incomplete),
            count("live", Shape::Incomplete),
        );
        (d >= 4 && v >= 4)
            .then_some(())
            .ok_or(format!("incomplete acked: dead {d}, live {v}"))
    })
    .await;

    let kill_at = Instant::now();
    let kill_ms = now_ms();
    block_in_place(|| env.redis.cluster_mut().kill(victim));
    let promoted = block_in_place(|| env.redis.cluster().wait_failover(victim));
    let failover_at = Instant::now();
    let failover_ms = now_ms();
    let gap = failover_at - kill_at;
    eprintln!("{kind:?}: node {victim} killed; node {promoted} primary after {gap:?}");

    // With ack_replicas = 1 the promoted replica has no replica of its own: its
    // partitions cannot acknowledge until one is back. The killed node, restarted
    // (as an orchestrator would), rejoins as the new primary's replica.
    let mut rejoined_at = failover_at;
    if ack_replicas > 0 {
        block_in_place(|| {
            let c = env.redis.cluster_mut();
            c.nodes[victim].restart();
            c.wait_ready();
        });
        rejoined_at = Instant::now();
        eprintln!(
            "{kind:?}: node {victim} back as a replica {:?} after the failover",
            rejoined_at - failover_at
        );
    }

    // The dead partitions take submits again (single and multi-part).
    wait_for("submits to the failed-over partitions", T, async || {
        let l = snapshot(&log);
        let n = l
            .iter()
            .filter(|s| s.ok() && s.lane == "dead" && s.sent > rejoined_at)
            .count();
        (n >= 12).then_some(()).ok_or(format!("{n} acked"))
    })
    .await;
    stop.store(true, Ordering::SeqCst);
    let mut messages = 0;
    for l in lanes {
        messages += l.await.expect("a lane panicked");
    }
    let mut pings = Vec::new();
    for p in pingers {
        pings.push(p.await.expect("a pinger panicked"));
    }
    let log = snapshot(&log);
    assert_partitions_as_aimed(&log);
    if std::env::var_os("E2E_CLUSTER_TIMELINE").is_some() {
        print_timeline(&log, kill_at, failover_at, rejoined_at);
    }

    // Binds stayed up: every enquire_link answered, some during the gap on each bind.
    for (i, seen) in pings.iter().enumerate() {
        assert!(
            seen.iter().all(|(_, _, s)| *s == CommandStatus::ESME_ROK),
            "bind {i}: {seen:?}"
        );
        let in_gap = seen
            .iter()
            .filter(|(t, rtt, _)| *t >= kill_at && *t + *rtt <= failover_at)
            .count();
        assert!(
            in_gap > 0,
            "bind {i}: no enquire_link answered during the gap"
        );
    }
    for e in all_binds {
        assert!(!e.is_closed(), "{} was unbound", e.system_id());
    }
    let max_rtt = pings.iter().flatten().map(|p| p.1).max().unwrap();

    // Refusals: ESME_RSYSERR only, only for the dead primary's partitions, only
    // after the kill.
    let refused: Vec<&Sent> = log.iter().filter(|s| !s.ok()).collect();
    for s in &refused {
        assert_eq!(s.status, CommandStatus::ESME_RSYSERR, "{s:?}");
        assert_eq!(s.lane, "dead", "a live partition refused: {s:?}");
        assert!(s.part.is_none_or(|p| dead.contains(&p)), "{s:?}");
        assert!(s.answered >= kill_at, "refused before the kill: {s:?}");
    }
    let refused_in_gap = refused.iter().filter(|s| s.sent < failover_at).count();
    assert!(refused_in_gap > 0, "no submit refused during the outage");
    let last_refusal = refused.iter().map(|s| s.answered).max().unwrap();
    let refused_after_failover = refused.iter().filter(|s| s.sent >= failover_at).count();
    let slowest_refusal = refused.iter().map(|s| s.answered - s.sent).max().unwrap();
    // The others went on: acknowledged while no primary owned the dead partitions.
    let live_in_gap: Vec<&Sent> = log
        .iter()
        .filter(|s| s.ok() && s.sent >= kill_at && s.answered <= failover_at)
        .filter(|s| !dead.contains(&s.partition().unwrap()))
        .collect();
    assert!(
        live_in_gap.len() >= 5,
        "only {} submits to live partitions acknowledged during the {gap:?} gap",
        live_in_gap.len()
    );
    let dead_ok_in_gap = log
        .iter()
        .filter(|s| {
            s.ok() && s.sent >= kill_at + Duration::from_secs(1) && s.answered <= failover_at
        })
        .filter(|s| dead.contains(&s.partition().unwrap()))
        .count();
    let slowest_live = log
        .iter()
        .filter(|s| s.lane == "live")
        .map(|s| s.answered - s.sent)
        .max()
        .unwrap();

    // Every acknowledged segment in exactly one outcome; the rest of Redis drained.
    let acked: Vec<&Sent> = log.iter().filter(|s| s.ok()).collect();
    let acked_ids: HashSet<&str> = acked.iter().map(|s| s.id.as_deref().unwrap()).collect();
    let drain_started = Instant::now();
    wait_for("every acknowledged segment in an outcome", T, async || {
        let docs = env.docs().await;
        let by = segments_by_doc(&docs);
        let missing = acked_ids.iter().filter(|id| !by.contains_key(**id)).count();
        if missing == 0 {
            return Ok(());
        }
        // ack_replicas = 0: what the old primary acknowledged and never sent its
        // replica is gone; once nothing of the test is left in Redis, nothing more
        // will come.
        if ack_replicas == 0 && leftover(&env).is_empty() {
            return Ok(());
        }
        Err(format!("{missing} acknowledged segments in no outcome"))
    })
    .await;
    let docs = env.docs().await;
    let by = segments_by_doc(&docs);
    let lost: Vec<&&Sent> = acked
        .iter()
        .filter(|s| !by.contains_key(s.id.as_deref().unwrap()))
        .collect();
    for s in &lost {
        // Only the async-replication window: the dead primary's partitions,
        // acknowledged before it died.
        assert!(
            ack_replicas == 0,
            "acknowledged segment lost with ack_replicas = {ack_replicas}: {s:?}"
        );
        assert!(dead.contains(&s.partition().unwrap()), "lost: {s:?}");
        assert!(
            s.answered <= kill_at,
            "lost, acknowledged after the kill: {s:?}"
        );
    }
    for (id, holders) in &by {
        assert_eq!(holders.len(), 1, "segment {id} in outcomes {holders:?}");
    }

    // The incomplete messages: one partial outcome each; the dead partitions'
    // deadlines that fell in the gap fired after the promotion.
    let mut in_gap = Vec::new();
    let mut seen_msgs = HashSet::new();
    for s in acked.iter().filter(|s| s.shape == Shape::Incomplete) {
        if !seen_msgs.insert((s.lane, s.msg)) {
            continue;
        }
        let Some(doc_id) = by.get(s.id.as_deref().unwrap()) else {
            continue;
        };
        let d = docs
            .iter()
            .find(|d| d.get_str("_id").unwrap() == doc_id[0])
            .unwrap();
        assert_eq!(d.get_str("state").unwrap(), "PARTIAL", "{d}");
        assert!(missing(d).contains(&3), "{d}");
        let deadline = d.get_datetime("deadline").unwrap().timestamp_millis();
        let completed = d.get_datetime("completed_at").unwrap().timestamp_millis();
        assert!(completed >= deadline, "claimed before its deadline: {d}");
        if dead.contains(&s.part.unwrap()) && deadline > kill_ms && deadline < failover_ms {
            // How late after its deadline, and after the failover was seen.
            in_gap.push((completed - deadline, completed - failover_ms));
        }
    }
    assert!(
        !in_gap.is_empty(),
        "no incomplete message had its deadline during the gap"
    );

    // Every receipt asked for arrives (a failover may send one again: counted).
    let rx = [&*rx_a, &*rx_b];
    let want: Vec<&str> = acked_ids
        .iter()
        .copied()
        .filter(|id| by.contains_key(*id))
        .collect();
    wait_receipts(&rx, want.iter().copied()).await;
    wait_drained(&env).await;
    let drained = drain_started.elapsed();
    let got = receipt_counts(&rx);
    let dup_receipts: usize = got.values().map(|n| n - 1).sum();
    // When each duplicate's copies came, relative to the kill (ms).
    let mut copies: BTreeMap<String, Vec<i64>> = BTreeMap::new();
    for d in rx_a.delivered().into_iter().chain(rx_b.delivered()) {
        if let Some(id) = d.receipted_message_id.filter(|id| got[id] > 1) {
            let at = match d.at.checked_duration_since(kill_at) {
                Some(x) => x.as_millis() as i64,
                None => -((kill_at - d.at).as_millis() as i64),
            };
            copies.entry(id).or_default().push(at);
        }
    }
    let dup_times: Vec<Vec<i64>> = copies.into_values().collect();
    let unknown_receipts = got
        .keys()
        .filter(|id| !acked_ids.contains(id.as_str()))
        .count();
    for e in all_binds {
        assert!(!e.is_closed(), "{} was unbound", e.system_id());
    }

    let by_state = docs.iter().fold(BTreeMap::new(), |mut m, d| {
        *m.entry(d.get_str("state").unwrap().to_owned()).or_insert(0) += 1;
        m
    });
    eprintln!(
        "{kind:?} ack_replicas={ack_replicas} full_coverage={coverage}: cluster up in {cluster_up:?}; {messages} messages, \
         {} segments acked, {} refused ({refused_in_gap} sent during the gap, \
         {refused_after_failover} after it, the last answered {:?} after the failover, the \
         slowest in {slowest_refusal:?}); gap {gap:?}; {} live-partition acks during the gap; \
         {dead_ok_in_gap} dead-partition acks later than 1 s into the gap; slowest live \
         submit {slowest_live:?}; slowest enquire_link {max_rtt:?}; {} deadlines in the gap \
         fired (ms after the deadline, ms after the failover was seen) {in_gap:?}; outcomes {by_state:?}; lost acked segments {}; duplicate \
         receipts {dup_receipts} (copies at ms after the kill: {dup_times:?}); receipts of unacknowledged (refused but stored) \
         segments {unknown_receipts}; drained in {drained:?}; total {:?}",
        acked.len(),
        refused.len(),
        last_refusal.saturating_duration_since(failover_at),
        live_in_gap.len(),
        in_gap.len(),
        lost.len(),
        t0.elapsed()
    );
    drop((a, b));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn valkey9_primary_killed_under_load_loses_nothing_acknowledged() {
    failover_under_load(RedisKind::Valkey9, 1, false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis7_primary_killed_under_load_without_replica_acks() {
    failover_under_load(RedisKind::Redis7, 0, true).await;
}

// ---------------------------------------------------------------------------------
// 3. A partition's slot moved under load

/// How the slot moves: `legacy` — `SETSLOT IMPORTING/MIGRATING` and `MIGRATE` in
/// batches of 100 keys (Redis 7.0's only way, also Valkey's), else Valkey 9's atomic
/// `CLUSTER MIGRATESLOTS`; `ballast` — keys put in the slot beside the test's own
/// (outside its prefix), so that the move takes long enough for submits to meet it
/// half done (a legacy move: many `MIGRATE` batches, ASK, TRYAGAIN).
async fn slot_migration_under_load(kind: RedisKind, legacy: bool, ballast: usize) {
    let t0 = Instant::now();
    let cluster = block_in_place(|| RedisCluster::start(kind, 3, 0));
    let cluster_up = t0.elapsed();
    let env = Env::start_on(Backend::Cluster(cluster), "reshard").await;
    let a = env.spawn_smppd("node-a").await;
    let b = env.spawn_smppd("node-b").await;
    let bind = |addr, as_| Esme::answering(addr, as_, "alice");
    let moved_a = Arc::new(bind(a.addr, BindAs::Tx).await);
    let moved_b = Arc::new(bind(b.addr, BindAs::Tx).await);
    let other_a = Arc::new(bind(a.addr, BindAs::Tx).await);
    let other_b = Arc::new(bind(b.addr, BindAs::Tx).await);
    let rx_a = bind(a.addr, BindAs::Rx).await;
    let rx_b = bind(b.addr, BindAs::Rx).await;

    // The partition to move: partition 10 (slot 10240), from its primary to the next.
    let moved = 10;
    let slot = partition::home_slot(moved);
    let (from, to) = block_in_place(|| {
        let c = env.redis.cluster();
        let from = c.owner_of_slot(slot);
        let to = *c.primaries().iter().find(|&&i| i != from).unwrap();
        (from, to)
    });

    if ballast > 0 {
        let prefix = format!("ballast:{{{}}}:", partition::TAGS[moved]);
        let fill = "for i = 1, tonumber(ARGV[2]) do redis.call('SET', ARGV[1] .. i, 'x') end";
        let n = ballast.to_string();
        let reply = env
            .redis
            .cluster()
            .command_on(from, &["EVAL", fill, "0", &prefix, &n]);
        assert!(reply.is_some_and(|r| !r.starts_with('-')), "ballast");
    }

    // Pending: incomplete messages in the partition, segments on both nodes.
    let log: Log = Arc::default();
    let pending = Lane {
        name: "pending",
        esmes: vec![moved_a.clone(), moved_b.clone()],
        parts: vec![moved],
        shapes: vec![Shape::Incomplete],
        validity: THREE_SECONDS,
        dest_base: 3,
    };
    for k in 0..6 {
        pending.message(k, &log).await;
    }
    assert!(snapshot(&log).iter().all(Sent::ok), "{:?}", snapshot(&log));

    let stop = Arc::new(AtomicBool::new(false));
    let lanes = [
        Lane {
            name: "moved",
            esmes: vec![moved_a.clone(), moved_b.clone()],
            parts: vec![moved],
            shapes: vec![Shape::Complete(2), Shape::Incomplete, Shape::Complete(3)],
            validity: THREE_SECONDS,
            dest_base: 4,
        }
        .spawn(log.clone(), stop.clone()),
        Lane {
            name: "other",
            esmes: vec![other_a.clone(), other_b.clone()],
            parts: (0..COUNT).filter(|&p| p != moved).collect(),
            shapes: vec![Shape::Single, Shape::Complete(2), Shape::Incomplete],
            validity: THREE_SECONDS,
            dest_base: 5,
        }
        .spawn(log.clone(), stop.clone()),
    ];
    wait_for("load on both lanes", T, async || {
        let l = snapshot(&log);
        let n = |lane| l.iter().filter(|s| s.ok() && s.lane == lane).count();
        (n("moved") >= 10 && n("other") >= 10)
            .then_some(())
            .ok_or(format!("moved {}, other {}", n("moved"), n("other")))
    })
    .await;

    let keys_in_slot = env
        .redis
        .cluster()
        .command_resp_on(from, &["CLUSTER", "COUNTKEYSINSLOT", &slot.to_string()])
        .and_then(|r| r.as_int())
        .unwrap();
    let migrate_at = Instant::now();
    let migrate_ms = now_ms();
    block_in_place(|| {
        let c = env.redis.cluster();
        if legacy {
            c.migrate_slot_legacy(slot, to)
        } else {
            c.migrate_slot(slot, to)
        }
    });
    let migrated_at = Instant::now();
    let migrated_ms = now_ms();
    assert_eq!(
        block_in_place(|| env.redis.cluster().owner_of_slot(slot)),
        to
    );
    eprintln!(
        "{kind:?}: slot {slot} (partition {moved}, {keys_in_slot} keys) moved from node {from} \
         to node {to} in {:?} ({})",
        migrated_at - migrate_at,
        if legacy {
            "SETSLOT + MIGRATE"
        } else {
            "MIGRATESLOTS"
        }
    );

    // The pending messages' deadlines pass on the new owner; new submits keep coming.
    let pending_ids: Vec<String> = snapshot(&log)
        .iter()
        .filter(|s| s.lane == "pending")
        .map(|s| s.id.clone().unwrap())
        .collect();
    wait_for(
        "the pending messages' outcomes and submits after the move",
        T,
        async || {
            let l = snapshot(&log);
            let after = l
                .iter()
                .filter(|s| s.ok() && s.lane == "moved" && s.sent > migrated_at)
                .count();
            let docs = env.docs().await;
            let by = segments_by_doc(&docs);
            let done = pending_ids.iter().filter(|id| by.contains_key(*id)).count();
            (after >= 10 && done == pending_ids.len())
                .then_some(())
                .ok_or(format!(
                    "{after} acked after the move; {done} of {} pending segments in outcomes",
                    pending_ids.len()
                ))
        },
    )
    .await;
    stop.store(true, Ordering::SeqCst);
    let mut messages = 0;
    for l in lanes {
        messages += l.await.expect("a lane panicked");
    }
    let log = snapshot(&log);
    assert_partitions_as_aimed(&log);

    // Refusals, if any, only in the moving partition and while it moved.
    let refused: Vec<&Sent> = log.iter().filter(|s| !s.ok()).collect();
    for s in &refused {
        assert_eq!(s.status, CommandStatus::ESME_RSYSERR, "{s:?}");
        assert_eq!(s.part, Some(moved), "another partition refused: {s:?}");
        assert!(
            s.answered >= migrate_at && s.sent <= migrated_at,
            "refused outside the move: {s:?}"
        );
    }
    let moved_in_move = log
        .iter()
        .filter(|s| {
            s.ok() && s.lane == "moved" && s.sent >= migrate_at && s.answered <= migrated_at
        })
        .count();

    // Every acknowledged segment in exactly one outcome, each pending message one
    // partial outcome whose deadline came after the move.
    let acked: Vec<&Sent> = log.iter().filter(|s| s.ok()).collect();
    let acked_ids: HashSet<&str> = acked.iter().map(|s| s.id.as_deref().unwrap()).collect();
    wait_for("every acknowledged segment in an outcome", T, async || {
        let docs = env.docs().await;
        let by = segments_by_doc(&docs);
        let missing = acked_ids.iter().filter(|id| !by.contains_key(**id)).count();
        (missing == 0)
            .then_some(())
            .ok_or(format!("{missing} acknowledged segments in no outcome"))
    })
    .await;
    let rx = [&rx_a, &rx_b];
    wait_receipts(&rx, acked_ids.iter().copied()).await;
    wait_drained(&env).await;
    let docs = env.docs().await;
    let by = segments_by_doc(&docs);
    for (id, holders) in &by {
        assert_eq!(holders.len(), 1, "segment {id} in outcomes {holders:?}");
    }
    let mut pending_docs = HashSet::new();
    let mut lateness = Vec::new();
    for id in &pending_ids {
        let doc_id = &by[id.as_str()][0];
        let d = docs
            .iter()
            .find(|d| d.get_str("_id").unwrap() == doc_id)
            .unwrap();
        if !pending_docs.insert(doc_id.clone()) {
            continue;
        }
        assert_eq!(d.get_str("state").unwrap(), "PARTIAL", "{d}");
        assert_eq!(segment_seqs(d), vec![1, 2], "{d}");
        assert_eq!(missing(d), vec![3], "{d}");
        let deadline = d.get_datetime("deadline").unwrap().timestamp_millis();
        assert!(
            deadline > migrated_ms,
            "pending deadline {deadline} not after the move ({migrate_ms}..{migrated_ms}): \
             the move took too long for this test"
        );
        let late = lateness_ms(d);
        assert!((0..=2000).contains(&late), "fired {late} ms late: {d}");
        lateness.push(late);
    }
    assert_eq!(pending_docs.len(), 6, "one outcome per pending message");
    // Each segment's receipt exactly once: a message claimed twice would have queued
    // its receipts twice.
    let got = receipt_counts(&rx);
    let dup: Vec<_> = got.iter().filter(|(_, n)| **n > 1).collect();
    assert!(dup.is_empty(), "receipts sent more than once: {dup:?}");
    let after_move = log
        .iter()
        .filter(|s| s.ok() && s.lane == "moved" && s.sent > migrated_at)
        .count();
    eprintln!(
        "{kind:?}: cluster up in {cluster_up:?}; {messages} messages, {} segments acked, {} \
         refused; {moved_in_move} acked in the moved partition while it moved; {after_move} \
         after; pending deadlines fired {lateness:?} ms late; {} outcomes; total {:?}",
        acked.len(),
        refused.len(),
        docs.len(),
        t0.elapsed()
    );
    drop((a, b));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn valkey9_slot_moved_under_load_fires_its_deadlines_once_on_the_new_owner() {
    slot_migration_under_load(RedisKind::Valkey9, false, 20_000).await;
}

// The slot's few keys (< 100) move in one MIGRATE: no script meets the slot half moved.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis7_slot_moved_in_one_migrate_batch_fires_its_deadlines_once_on_the_new_owner() {
    slot_migration_under_load(RedisKind::Redis7, true, 0).await;
}

// Unsupported, reproduced here (docs/design/cluster.md "Resharding"): every script declares only `P{t}:deadlines` and
// builds its other keys from ARGV. While a legacy move has sent some of the slot's
// keys and not others, a script routed to the old owner (its declared key still
// there) aborts with "Script attempted to access a non local key in a cluster node"
// at the first undeclared key already moved (or not yet created) — after the writes
// it made before: submits are refused (ESME_RSYSERR), and a receipt queue was left
// with ids whose payloads were gone (`P{t}:r:<acct>` without `P{t}:rd:<acct>`) until
// their lease ended. Supporting it means declaring every key a script touches (so the
// server answers TRYAGAIN / ASK before running it); then drop the `ignore`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "unsupported: key-by-key resharding under load (scripts abort half done)"]
async fn redis7_slot_moved_in_many_migrate_batches_fires_its_deadlines_once_on_the_new_owner() {
    slot_migration_under_load(RedisKind::Redis7, true, 20_000).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "unsupported: key-by-key resharding under load (scripts abort half done)"]
async fn valkey9_slot_moved_in_many_migrate_batches_fires_its_deadlines_once_on_the_new_owner() {
    slot_migration_under_load(RedisKind::Valkey9, true, 20_000).await;
}

// ---------------------------------------------------------------------------------
// 4. Mode mismatch

async fn mode_mismatch_is_refused_at_start(kind: RedisKind) {
    let t0 = Instant::now();
    // A cluster node, smppd told it is one server.
    let cluster = block_in_place(|| RedisCluster::start(kind, 3, 0));
    let mut env = Env::start_on(Backend::Cluster(cluster), "mode").await;
    env.config.set("redis.cluster", false);
    let (status, out) = env.smppd_start_failure("single-on-cluster").await;
    assert!(!status.success(), "{status}: {out}");
    assert!(out.contains("store start-up failed"), "{out}");
    assert!(out.contains("is a Redis/Valkey Cluster node"), "{out}");
    assert!(out.contains("set [redis] cluster = true"), "{out}");
    drop(env);

    // One server, smppd told it is a cluster.
    let mut env = Env::start_on(Backend::Server(RedisServer::start(kind)), "mode").await;
    env.config.set("redis.cluster", true);
    let (status, out) = env.smppd_start_failure("cluster-on-single").await;
    assert!(!status.success(), "{status}: {out}");
    assert!(out.contains("store start-up failed"), "{out}");
    assert!(out.contains("is not a cluster node"), "{out}");
    assert!(out.contains("set [redis] cluster = false"), "{out}");
    eprintln!("{kind:?}: mode mismatches refused; {:?}", t0.elapsed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn valkey9_mode_mismatch_is_refused_at_start() {
    mode_mismatch_is_refused_at_start(RedisKind::Valkey9).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis7_mode_mismatch_is_refused_at_start() {
    mode_mismatch_is_refused_at_start(RedisKind::Redis7).await;
}
