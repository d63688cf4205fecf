//! Real Redis 7.0 / Valkey 9 clusters for integration tests.
//!
//! [`RedisCluster::start`] starts `primaries × (1 + replicas)` nodes (each a
//! [`RedisServer`] with AOF, its own directory and `nodes.conf`), joins them with
//! `redis-cli --cluster create` (`$SMPPD_REDIS_CLI`; it creates Valkey clusters too) and
//! returns once every node agrees on one complete slot map. Every question about the
//! topology (who is primary, who owns a slot) is asked of the nodes, never remembered,
//! so it stays right across [`kill`](RedisCluster::kill), failovers and
//! [`migrate_slot`](RedisCluster::migrate_slot). Waits poll with a deadline and panic
//! with the last state seen. Dropping the cluster kills every node.
//!
//! Nodes are left without `notify-keyspace-events` (smppd sets it) and with a short
//! `cluster-node-timeout` ([`NODE_TIMEOUT_MS`]) so that a failover takes a few seconds.
//! Facts about clusters on this machine: ../shared/CLUSTER_NOTES.md.

use std::collections::BTreeMap;
use std::net::TcpListener;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use super::servers::{binary_from_env, RedisKind, RedisServer, Resp};

/// Slots of a cluster.
pub const SLOTS: u16 = 16_384;

/// `cluster-node-timeout`: a killed primary is failed over after about this plus a
/// second. Short, but long enough that a node busy for a moment on a loaded machine is
/// not taken for dead.
pub const NODE_TIMEOUT_MS: u64 = 1_500;

/// How long a new cluster may take to agree on its slots.
const READY_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a failover may take.
const FAILOVER_TIMEOUT: Duration = Duration::from_secs(30);
/// How long everyone may take to agree on a slot's owner.
const AGREE_TIMEOUT: Duration = Duration::from_secs(30);
/// How long `redis-cli --cluster create` may run (it sleeps 1 s while nodes join).
const CREATE_TIMEOUT: Duration = Duration::from_secs(60);

/// Client ports are taken from 10000..22767, so that a node's bus port (+10000) stays
/// below Linux's ephemeral range (32768..): outgoing connections and `free_port` use
/// that range, so they do not take a bus port between the check and the bind.
const PORT_LOW: u32 = 10_000;
const PORT_SPAN: u32 = 12_767;
/// The bus port is the client port plus this.
const BUS_OFFSET: u16 = 10_000;

/// A cluster of `redis-server` or `valkey-server` processes on 127.0.0.1.
pub struct RedisCluster {
    pub kind: RedisKind,
    /// Every node started, killed ones included; indexes are stable.
    pub nodes: Vec<RedisServer>,
    /// `CLUSTER MYID` of each node (a node keeps its id, in `nodes.conf`).
    ids: Vec<String>,
    /// The slot ranges node i served when [`kill`](Self::kill) killed it.
    killed_slots: BTreeMap<usize, Vec<(u16, u16)>>,
    /// Primaries and replicas per primary it was started with.
    shape: (usize, usize),
}

impl RedisCluster {
    /// `primaries` primaries (at least 3: `redis-cli --cluster create` refuses fewer),
    /// each with `replicas` replicas, slots split evenly in order (redis-cli: 0-5460,
    /// 5461-10922, 10923-16383 for three). Returns once every node says
    /// `cluster_state:ok` with all 16384 slots assigned, every node's `CLUSTER NODES`
    /// shows the same primaries, replicas and slot ranges, and every replica's link to
    /// its primary is up.
    pub fn start(kind: RedisKind, primaries: usize, replicas: usize) -> RedisCluster {
        RedisCluster::start_with(kind, primaries, replicas, &[])
    }

    /// [`start`](Self::start) with more arguments for every node (kept across
    /// restarts), e.g. `["--cluster-require-full-coverage", "no"]`.
    pub fn start_with(
        kind: RedisKind,
        primaries: usize,
        replicas: usize,
        extra: &[&str],
    ) -> RedisCluster {
        assert!(
            primaries >= 3,
            "redis-cli --cluster create needs at least 3 primaries, not {primaries}"
        );
        let started = Instant::now();
        let nodes: Vec<RedisServer> = (0..primaries * (1 + replicas))
            .map(|_| start_node(kind, extra))
            .collect();
        let ids = nodes
            .iter()
            .map(|node| {
                node.command_resp(&["CLUSTER", "MYID"])
                    .and_then(|r| r.as_str())
                    .unwrap_or_else(|| panic!("CLUSTER MYID on port {}", node.port))
            })
            .collect();
        let cluster = RedisCluster {
            kind,
            nodes,
            ids,
            killed_slots: BTreeMap::new(),
            shape: (primaries, replicas),
        };
        let mut args = vec!["--cluster".to_string(), "create".to_string()];
        args.extend(
            cluster
                .nodes
                .iter()
                .map(|n| format!("127.0.0.1:{}", n.port)),
        );
        args.extend([
            "--cluster-replicas".to_string(),
            replicas.to_string(),
            "--cluster-yes".to_string(),
        ]);
        let nodes_up = started.elapsed();
        run_redis_cli(&args);
        let created = started.elapsed();
        poll(
            &format!("{kind:?} cluster of {primaries} primaries × {replicas} replicas ready"),
            READY_TIMEOUT,
            || cluster.ready(primaries, replicas),
        );
        eprintln!(
            "cluster: {kind:?} {primaries} primaries × {replicas} replicas ready in {:?} \
             (nodes answering after {nodes_up:?}, redis-cli done after {created:?})",
            started.elapsed()
        );
        cluster
    }

    /// Waits until the cluster is whole again as [`start`](Self::start) waited for it
    /// (after its nodes were restarted).
    pub fn wait_ready(&self) {
        let (primaries, replicas) = self.shape;
        poll("cluster ready again", READY_TIMEOUT, || {
            self.ready(primaries, replicas)
        });
    }

    /// `redis://127.0.0.1:PORT/` of one running node, a seed for a cluster client.
    pub fn url(&self) -> String {
        self.nodes[*self.live().first().expect("no node is running")].url()
    }

    /// Every node's URL (killed ones too: a client tries its seeds in turn).
    pub fn seeds(&self) -> Vec<String> {
        self.nodes.iter().map(RedisServer::url).collect()
    }

    /// Node `i`'s cluster id.
    pub fn id(&self, i: usize) -> &str {
        &self.ids[i]
    }

    /// The running nodes that are primaries now, each by its own `ROLE`, in index order.
    pub fn primaries(&self) -> Vec<usize> {
        self.live()
            .into_iter()
            .filter(|&i| self.role(i).is_some_and(|r| r.0 == "master"))
            .collect()
    }

    /// The primary serving `slot` now, as every running node sees it (waits until
    /// they agree). Right after a kill that is the dead node, until its failover.
    pub fn owner_of_slot(&self, slot: u16) -> usize {
        assert!(slot < SLOTS, "slot {slot}");
        poll(
            &format!("the running nodes agreeing on the owner of slot {slot}"),
            AGREE_TIMEOUT,
            || {
                let seen: Vec<(usize, Option<String>)> = self
                    .live()
                    .into_iter()
                    .map(|i| {
                        let owner = self
                            .view(i)
                            .and_then(|v| v.into_iter().find(|e| e.owns(slot, slot)).map(|e| e.id));
                        (i, owner)
                    })
                    .collect();
                match seen.first() {
                    Some((_, Some(id))) if seen.iter().all(|(_, o)| o.as_ref() == Some(id)) => self
                        .index_of(id)
                        .ok_or_else(|| format!("unknown node {id}")),
                    _ => Err(format!("owner seen by each node: {seen:?}")),
                }
            },
        )
    }

    /// The slot of `key` (`CLUSTER KEYSLOT` on a running node).
    pub fn key_slot(&self, key: &str) -> u16 {
        let reply = self.command_resp_on(self.live()[0], &["CLUSTER", "KEYSLOT", key]);
        reply
            .as_ref()
            .and_then(Resp::as_int)
            .and_then(|n| u16::try_from(n).ok())
            .unwrap_or_else(|| panic!("CLUSTER KEYSLOT {key}: {reply:?}"))
    }

    /// A running replica of `primary` (by the replicas' own `ROLE`), if any.
    pub fn replica_of(&self, primary: usize) -> Option<usize> {
        let port = i64::from(self.nodes[primary].port);
        self.live()
            .into_iter()
            .filter(|&i| i != primary)
            .find(|&i| {
                self.role(i)
                    .is_some_and(|(role, master_port)| role == "slave" && master_port == Some(port))
            })
    }

    /// Kills node `i` with SIGKILL (no restart; `nodes[i].restart()` brings it back
    /// with its `nodes.conf` and AOF). Remembers the slots it served, for
    /// [`wait_failover`](Self::wait_failover).
    pub fn kill(&mut self, i: usize) {
        let slots = self
            .view(i)
            .and_then(|v| v.into_iter().find(|e| e.myself))
            .map(|e| e.slots)
            .unwrap_or_default();
        self.killed_slots.insert(i, slots);
        self.nodes[i].kill();
    }

    /// Waits until the slots that `dead` served when it was killed are served by one
    /// running node that its `ROLE` says is a primary (a promoted replica), as every
    /// running node sees it, and every running node says `cluster_state:ok`. Returns
    /// that node.
    pub fn wait_failover(&self, dead: usize) -> usize {
        assert!(
            !self.nodes[dead].is_running(),
            "node {dead} is running: kill it with RedisCluster::kill first"
        );
        let slots = self.killed_slots.get(&dead).cloned().unwrap_or_default();
        assert!(
            !slots.is_empty(),
            "node {dead} served no slots when killed (or was not killed by RedisCluster::kill)"
        );
        let started = Instant::now();
        let new = poll(
            &format!("a failover of node {dead} (slots {slots:?})"),
            FAILOVER_TIMEOUT,
            || {
                let mut owner: Option<String> = None;
                for i in self.live() {
                    let state = self.info_field(i, &["CLUSTER", "INFO"], "cluster_state");
                    if state.as_deref() != Some("ok") {
                        return Err(format!("node {i}: cluster_state {state:?}"));
                    }
                    let view = self.view(i).ok_or(format!("node {i}: no CLUSTER NODES"))?;
                    for &(a, b) in &slots {
                        let id = view.iter().find(|e| e.owns(a, b)).map(|e| e.id.clone());
                        match (&owner, id) {
                            (_, None) => return Err(format!("node {i}: no one owns {a}-{b}")),
                            (_, Some(id)) if id == self.ids[dead] => {
                                return Err(format!("node {i}: {a}-{b} still on node {dead}"))
                            }
                            (None, Some(id)) => owner = Some(id),
                            (Some(o), Some(id)) if *o != id => {
                                return Err(format!("node {i}: {a}-{b} on {id}, elsewhere {o}"))
                            }
                            _ => {}
                        }
                    }
                }
                let id = owner.ok_or("no running node")?;
                let new = self.index_of(&id).ok_or(format!("unknown node {id}"))?;
                match self.role(new) {
                    Some((role, _)) if role == "master" => Ok(new),
                    role => Err(format!(
                        "node {new} serves the slots but its ROLE is {role:?}"
                    )),
                }
            },
        );
        eprintln!(
            "cluster: node {dead} failed over to node {new} in {:?} (after the wait began)",
            started.elapsed()
        );
        new
    }

    /// Moves `slot` and its keys to primary `to`, and waits until every running node
    /// says `to` owns it and the old owner holds none of its keys. Valkey 9: the atomic
    /// `CLUSTER MIGRATESLOTS`; Redis 7.0: [`migrate_slot_legacy`](Self::migrate_slot_legacy).
    pub fn migrate_slot(&self, slot: u16, to: usize) {
        match self.kind {
            RedisKind::Valkey9 => {
                let Some(from) = self.migration_source(slot, to) else {
                    return;
                };
                let s = slot.to_string();
                let args = [
                    "CLUSTER",
                    "MIGRATESLOTS",
                    "SLOTSRANGE",
                    &s,
                    &s,
                    "NODE",
                    &self.ids[to],
                ];
                expect_ok(self.command_resp_on(from, &args), &args);
                self.wait_moved(slot, from, to);
            }
            RedisKind::Redis7 => self.migrate_slot_legacy(slot, to),
        }
    }

    /// The same the way Redis 7.0 (and Valkey, still) does it: `SETSLOT IMPORTING` on
    /// `to`, `SETSLOT MIGRATING` on the owner, `MIGRATE … KEYS` in batches of 100 until
    /// the owner has none left, then `SETSLOT NODE` on `to`, the old owner and every
    /// other primary. Key names must be UTF-8.
    pub fn migrate_slot_legacy(&self, slot: u16, to: usize) {
        let Some(from) = self.migration_source(slot, to) else {
            return;
        };
        let s = slot.to_string();
        let (from_id, to_id) = (self.ids[from].as_str(), self.ids[to].as_str());
        let importing = ["CLUSTER", "SETSLOT", &s, "IMPORTING", from_id];
        expect_ok(self.command_resp_on(to, &importing), &importing);
        let migrating = ["CLUSTER", "SETSLOT", &s, "MIGRATING", to_id];
        expect_ok(self.command_resp_on(from, &migrating), &migrating);
        let port = self.nodes[to].port.to_string();
        loop {
            let reply = self.command_resp_on(from, &["CLUSTER", "GETKEYSINSLOT", &s, "100"]);
            let keys: Vec<String> = match &reply {
                Some(r @ Resp::Array(Some(_))) => {
                    r.items().iter().filter_map(Resp::as_str).collect()
                }
                _ => panic!("CLUSTER GETKEYSINSLOT {s} on node {from}: {reply:?}"),
            };
            if keys.is_empty() {
                break;
            }
            let mut args = vec!["MIGRATE", "127.0.0.1", &port, "", "0", "10000", "KEYS"];
            args.extend(keys.iter().map(String::as_str));
            let reply = self.command_resp_on(from, &args);
            assert!(
                matches!(&reply, Some(Resp::Simple(s)) if s == "OK" || s == "NOKEY"),
                "MIGRATE of {} keys of slot {slot} to node {to}: {reply:?}",
                keys.len()
            );
        }
        let node = ["CLUSTER", "SETSLOT", &s, "NODE", to_id];
        let others = self
            .primaries()
            .into_iter()
            .filter(|&i| i != to && i != from);
        for i in [to, from].into_iter().chain(others) {
            expect_ok(self.command_resp_on(i, &node), &node);
        }
        self.wait_moved(slot, from, to);
    }

    /// Every key starting with `prefix` (`SCAN MATCH`), over the current primaries,
    /// sorted. For tests that want nothing of theirs left in the cluster.
    pub fn keys_with_prefix(&self, prefix: &str) -> Vec<String> {
        let mut pattern: String = prefix
            .chars()
            .flat_map(|c| {
                let escape = matches!(c, '*' | '?' | '[' | ']' | '\\');
                escape.then_some('\\').into_iter().chain([c])
            })
            .collect();
        pattern.push('*');
        let mut keys = Vec::new();
        for i in self.primaries() {
            let mut cursor = "0".to_string();
            loop {
                let args = ["SCAN", &cursor, "MATCH", &pattern, "COUNT", "1000"];
                let reply = self.command_resp_on(i, &args);
                let (next, found) = match reply.as_ref().map(Resp::items) {
                    Some([next, found]) => (next.as_str(), found.items()),
                    _ => panic!("SCAN on node {i}: {reply:?}"),
                };
                keys.extend(found.iter().filter_map(Resp::as_str));
                cursor = next.unwrap_or_else(|| panic!("SCAN cursor on node {i}: {reply:?}"));
                if cursor == "0" {
                    break;
                }
            }
        }
        keys.sort();
        keys
    }

    /// One command on node `i` (a connection of its own), the raw reply; `None` if
    /// the node is not reachable.
    pub fn command_on(&self, i: usize, args: &[&str]) -> Option<String> {
        self.nodes[i].command(args)
    }

    /// The same, parsed.
    pub fn command_resp_on(&self, i: usize, args: &[&str]) -> Option<Resp> {
        self.nodes[i].command_resp(args)
    }

    /// Commands on one connection to node `i` (`WAIT` after a write needs that).
    pub fn pipeline_on(&self, i: usize, cmds: &[&[&str]]) -> Option<Vec<Resp>> {
        self.nodes[i].pipeline(cmds)
    }

    /// One command on the owner of `key`'s slot now.
    pub fn command_for_key(&self, key: &str, args: &[&str]) -> Option<String> {
        self.command_on(self.owner_of_slot(self.key_slot(key)), args)
    }

    /// The same, parsed.
    pub fn command_resp_for_key(&self, key: &str, args: &[&str]) -> Option<Resp> {
        self.command_resp_on(self.owner_of_slot(self.key_slot(key)), args)
    }

    // -----------------------------------------------------------------------------

    fn live(&self) -> Vec<usize> {
        (0..self.nodes.len())
            .filter(|&i| self.nodes[i].is_running())
            .collect()
    }

    fn index_of(&self, id: &str) -> Option<usize> {
        self.ids.iter().position(|known| known == id)
    }

    /// Node i's `CLUSTER NODES`.
    fn view(&self, i: usize) -> Option<Vec<Entry>> {
        if !self.nodes[i].is_running() {
            return None;
        }
        let text = self.command_resp_on(i, &["CLUSTER", "NODES"])?.as_str()?;
        Some(text.lines().filter_map(Entry::parse).collect())
    }

    /// Node i's `ROLE`: "master" or "slave", and a replica's primary's port.
    fn role(&self, i: usize) -> Option<(String, Option<i64>)> {
        let reply = self.command_resp_on(i, &["ROLE"])?;
        let items = reply.items();
        let role = items.first()?.as_str()?;
        Some((role, items.get(2).and_then(Resp::as_int)))
    }

    /// A `field:value` line of an INFO-like bulk reply.
    fn info_field(&self, i: usize, args: &[&str], field: &str) -> Option<String> {
        let text = self.command_resp_on(i, args)?.as_str()?;
        text.lines()
            .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
            .map(|v| v.trim().to_string())
    }

    /// `Err` with what is missing, until the new cluster is whole.
    fn ready(&self, primaries: usize, replicas: usize) -> Result<(), String> {
        let n = self.nodes.len();
        let mut first: Option<Vec<Shape>> = None;
        for i in 0..n {
            for (field, want) in [
                ("cluster_state", "ok".to_string()),
                ("cluster_slots_assigned", SLOTS.to_string()),
                ("cluster_slots_ok", SLOTS.to_string()),
                ("cluster_known_nodes", n.to_string()),
            ] {
                let got = self.info_field(i, &["CLUSTER", "INFO"], field);
                if got.as_deref() != Some(want.as_str()) {
                    return Err(format!("node {i}: {field} {got:?}, not {want}"));
                }
            }
            let view = self.view(i).ok_or(format!("node {i}: no CLUSTER NODES"))?;
            if let Some(e) = view.iter().find(|e| !e.healthy()) {
                return Err(format!("node {i} sees {e:?}"));
            }
            if view
                .iter()
                .any(|e| e.master_id.is_none() && e.slots.is_empty())
            {
                return Err(format!("node {i}: a primary without slots in {view:?}"));
            }
            // Who replicates whom and who serves what, without the volatile fields.
            let mut map: Vec<_> = view
                .into_iter()
                .map(|e| (e.id, e.master_id, e.slots))
                .collect();
            map.sort();
            match &first {
                None => first = Some(map),
                Some(f) if *f != map => {
                    return Err(format!("node 0 sees {f:?}, node {i} sees {map:?}"))
                }
                Some(_) => {}
            }
        }
        let map = first.unwrap_or_default();
        let masters: Vec<_> = map.iter().filter(|e| e.1.is_none()).collect();
        if masters.len() != primaries {
            return Err(format!(
                "{} primaries, not {primaries}: {map:?}",
                masters.len()
            ));
        }
        for (id, _, _) in masters {
            let count = map.iter().filter(|e| e.1.as_ref() == Some(id)).count();
            if count != replicas {
                return Err(format!("{id} has {count} replicas, not {replicas}"));
            }
        }
        for i in 0..n {
            if self.role(i).is_some_and(|r| r.0 == "slave") {
                let link = self.info_field(i, &["INFO", "replication"], "master_link_status");
                if link.as_deref() != Some("up") {
                    return Err(format!("node {i}: master_link_status {link:?}"));
                }
            }
        }
        Ok(())
    }

    /// The slot's owner, unless it is `to` already (then `None`); `to` must be a primary.
    fn migration_source(&self, slot: u16, to: usize) -> Option<usize> {
        let role = self.role(to);
        assert!(
            role.as_ref().is_some_and(|r| r.0 == "master"),
            "node {to} is no running primary: ROLE {role:?}"
        );
        let from = self.owner_of_slot(slot);
        (from != to).then_some(from)
    }

    fn wait_moved(&self, slot: u16, from: usize, to: usize) {
        let started = Instant::now();
        let s = slot.to_string();
        poll(
            &format!("slot {slot} moved from node {from} to node {to}"),
            AGREE_TIMEOUT,
            || {
                for i in self.live() {
                    let owner = self
                        .view(i)
                        .and_then(|v| v.into_iter().find(|e| e.owns(slot, slot)).map(|e| e.id));
                    if owner.as_deref() != Some(self.ids[to].as_str()) {
                        let jobs = match self.kind {
                            RedisKind::Valkey9 => {
                                self.command_on(from, &["CLUSTER", "GETSLOTMIGRATIONS"])
                            }
                            RedisKind::Redis7 => None,
                        };
                        return Err(format!(
                            "node {i} says {owner:?} owns it; migrations on node {from}: {jobs:?}"
                        ));
                    }
                }
                let left = self.command_resp_on(from, &["CLUSTER", "COUNTKEYSINSLOT", &s]);
                match left.as_ref().and_then(Resp::as_int) {
                    Some(0) => Ok(()),
                    _ => Err(format!("node {from} still counts {left:?} keys in it")),
                }
            },
        );
        eprintln!(
            "cluster: slot {slot} moved from node {from} to node {to} in {:?}",
            started.elapsed()
        );
    }
}

/// A node as the others see it, without the volatile fields: its id, its primary's
/// (none for a primary) and the slot ranges it serves.
type Shape = (String, Option<String>, Vec<(u16, u16)>);

/// One line of `CLUSTER NODES`:
/// `<id> <ip:port@cport[,…]> <flags> <master|-> <ping> <pong> <epoch> <link> <slots>…`
#[derive(Debug, Clone)]
struct Entry {
    id: String,
    myself: bool,
    flags: String,
    master_id: Option<String>,
    /// Slot ranges served, inclusive; `[slot->-id]` / `[slot-<-id]` (a slot being
    /// migrated or imported) left out.
    slots: Vec<(u16, u16)>,
}

impl Entry {
    fn parse(line: &str) -> Option<Entry> {
        let fields: Vec<&str> = line.split_whitespace().collect();
        if fields.len() < 8 {
            return None;
        }
        let flags = fields[2].to_string();
        let slots = fields[8..]
            .iter()
            .filter(|f| !f.starts_with('['))
            .filter_map(|f| match f.split_once('-') {
                Some((a, b)) => Some((a.parse().ok()?, b.parse().ok()?)),
                None => f.parse().ok().map(|a| (a, a)),
            })
            .collect();
        Some(Entry {
            id: fields[0].to_string(),
            myself: flags.split(',').any(|f| f == "myself"),
            flags,
            master_id: (fields[3] != "-").then(|| fields[3].to_string()),
            slots,
        })
    }

    /// Serves every slot of a..=b.
    fn owns(&self, a: u16, b: u16) -> bool {
        self.slots.iter().any(|&(x, y)| x <= a && b <= y)
    }

    /// Neither failing nor still being met.
    fn healthy(&self) -> bool {
        !self
            .flags
            .split(',')
            .any(|f| matches!(f, "fail" | "fail?" | "handshake" | "noaddr"))
    }
}

/// Starts one cluster node on a port whose bus port is free too.
fn start_node(kind: RedisKind, extra: &[&str]) -> RedisServer {
    let timeout = NODE_TIMEOUT_MS.to_string();
    let mut args = vec![
        "--cluster-enabled",
        "yes",
        "--cluster-config-file",
        "nodes.conf",
        "--cluster-node-timeout",
        &timeout,
        // A replica takes over however long ago it last heard from its primary.
        "--cluster-replica-validity-factor",
        "0",
        // A replica's first sync starts at once (default: 5 s of waiting for others).
        "--repl-diskless-sync-delay",
        "0",
    ];
    args.extend_from_slice(extra);
    for _ in 0..50 {
        let port = next_port();
        let free = |p: u16| TcpListener::bind(("127.0.0.1", p)).is_ok();
        if !(free(port) && free(port + BUS_OFFSET)) {
            continue;
        }
        // Exits at once if another process took either port meanwhile.
        if let Some(node) = RedisServer::try_start_on(kind, port, &args) {
            return node;
        }
    }
    panic!("could not start a {kind:?} cluster node: no free port pair in 50 tries");
}

/// The next candidate client port: consecutive within this process (so its clusters
/// do not race for one port), from a start of this process's own (so do other test
/// processes, mostly).
fn next_port() -> u16 {
    static START: OnceLock<u32> = OnceLock::new();
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let start = *START.get_or_init(|| std::process::id().wrapping_mul(7_919) % PORT_SPAN);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    u16::try_from(PORT_LOW + (start + n) % PORT_SPAN).unwrap()
}

/// Runs `redis-cli` with `args`, panicking with its output if it fails or hangs.
fn run_redis_cli(args: &[String]) {
    let cli = binary_from_env("SMPPD_REDIS_CLI");
    let child = Command::new(&cli)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("spawning {}: {e}", cli.display()));
    let pid = child.id();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    let output = match rx.recv_timeout(CREATE_TIMEOUT) {
        Ok(output) => output.unwrap_or_else(|e| panic!("waiting for redis-cli: {e}")),
        Err(_) => {
            let _ = Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .status();
            panic!("redis-cli {args:?} still running after {CREATE_TIMEOUT:?}");
        }
    };
    assert!(
        output.status.success(),
        "redis-cli {args:?}: {}\n{}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

fn expect_ok(reply: Option<Resp>, args: &[&str]) {
    assert!(
        matches!(&reply, Some(Resp::Simple(s)) if s == "OK"),
        "{args:?}: {reply:?}"
    );
}

/// Polls `check` until it returns `Ok` or `timeout` passes; then panics with the last
/// `Err` (what was not there yet), which says more than a bare timeout.
fn poll<T>(what: &str, timeout: Duration, mut check: impl FnMut() -> Result<T, String>) -> T {
    let deadline = Instant::now() + timeout;
    let mut pause = Duration::from_millis(5);
    loop {
        match check() {
            Ok(value) => return value,
            Err(last) => assert!(
                Instant::now() < deadline,
                "timed out after {timeout:?} waiting for {what}; last seen: {last}"
            ),
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(50));
    }
}
