//! smppd's partitions on real clusters of three primaries, Redis 7.0 and Valkey 9:
//! where the 16 partition tags land, that a write a replica acknowledged is served
//! after its primary's failover, and that a slot moved to another primary keeps its
//! keys and their TTLs (the store's timers are key TTLs on Redis 7.0, hash-field TTLs
//! on Valkey 9). Cluster facts measured on this machine: ../shared/CLUSTER_NOTES.md.
//! (`store_servers` checks the tags' `CLUSTER KEYSLOT` on a single node.)

use std::collections::BTreeMap;

use smppd::store::redis::partition::{self, COUNT};

use crate::support::cluster::RedisCluster;
use crate::support::servers::{RedisKind, Resp};

fn ok() -> Option<Resp> {
    Some(Resp::Simple("OK".into()))
}

fn bulk(s: &str) -> Option<Resp> {
    Some(Resp::Bulk(Some(s.as_bytes().to_vec())))
}

// Partition i has slot i * 1024 on the cluster too, and redis-cli's even split of the
// slots over three primaries (0-5460, 5461-10922, 10923-16383) gives them 6, 5 and 5
// partitions, each a contiguous run. Fails if a tag hashes elsewhere on a real cluster
// or the split is uneven.
fn partitions_split_6_5_5(kind: RedisKind) {
    let cluster = RedisCluster::start(kind, 3, 0);
    let mut per_primary: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
    for p in 0..COUNT {
        let key = format!("{}deadlines", partition::prefix("split:", p));
        let slot = cluster.key_slot(&key);
        assert_eq!(usize::from(slot), p * 1024, "{kind:?} {key}");
        per_primary
            .entry(cluster.owner_of_slot(slot))
            .or_default()
            .push(p);
        // The owner takes the partition's write (no MOVED).
        assert_eq!(
            cluster.command_resp_for_key(&key, &["SET", &key, "x"]),
            ok(),
            "{kind:?} {key}"
        );
    }
    assert_eq!(
        per_primary.keys().copied().collect::<Vec<_>>(),
        cluster.primaries(),
        "{kind:?}: every primary serves partitions"
    );
    let runs: Vec<(usize, usize)> = per_primary
        .values()
        .map(|ps| (ps[0], ps.len()))
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    assert_eq!(runs, [(0, 6), (6, 5), (11, 5)], "{kind:?} {per_primary:?}");
    for ps in per_primary.values() {
        assert!(ps.windows(2).all(|w| w[1] == w[0] + 1), "{kind:?} {ps:?}");
    }
    assert_eq!(cluster.keys_with_prefix("split:").len(), COUNT, "{kind:?}");
}

#[test]
fn cluster_partitions_split_6_5_5_over_three_redis7_primaries() {
    partitions_split_6_5_5(RedisKind::Redis7);
}

#[test]
fn cluster_partitions_split_6_5_5_over_three_valkey9_primaries() {
    partitions_split_6_5_5(RedisKind::Valkey9);
}

// A key of partition 0 written to its primary and acknowledged by the replica
// (`WAIT 1`) is served by that replica once the primary is SIGKILLed and the replica
// promoted; the other primaries keep theirs. Fails if the harness waits for the wrong
// node or the replica did not have the write.
#[test]
fn cluster_failover_serves_a_write_its_replica_acknowledged_on_valkey9() {
    let mut cluster = RedisCluster::start(RedisKind::Valkey9, 3, 1);
    let key = format!("{}m:before-failover", partition::prefix("failover:", 0));
    let slot = cluster.key_slot(&key);
    let old = cluster.owner_of_slot(slot);
    let replica = cluster
        .replica_of(old)
        .expect("partition 0's primary has a replica");
    let replies = cluster
        .pipeline_on(old, &[&["SET", &key, "kept"], &["WAIT", "1", "1000"]])
        .expect("the primary answers");
    assert_eq!(replies, [Resp::Simple("OK".into()), Resp::Int(1)]);
    let before = cluster.primaries();
    assert_eq!(before.len(), 3);

    cluster.kill(old);
    let new = cluster.wait_failover(old);
    assert_eq!(new, replica, "the dead primary's only replica took over");
    assert_eq!(cluster.owner_of_slot(slot), new);
    assert_eq!(cluster.command_resp_on(new, &["GET", &key]), bulk("kept"));
    assert_eq!(
        cluster.command_resp_for_key(&key, &["GET", &key]),
        bulk("kept")
    );
    let after = cluster.primaries();
    let expected: Vec<usize> = {
        let mut v: Vec<usize> = before
            .iter()
            .map(|&p| if p == old { new } else { p })
            .collect();
        v.sort();
        v
    };
    assert_eq!(after, expected);
    assert_eq!(cluster.replica_of(new), None, "its old primary is dead");
}

/// Writes partition `p`'s timer key (a hash-field TTL on Valkey 9, a key TTL on Redis
/// 7.0) and 150 plain keys (more than one `GETKEYSINSLOT` batch), moves the slot to
/// another primary with `migrate`, and checks that the new owner has them all and the
/// TTL is still counting down, and the old one has none.
fn a_moved_slot_keeps_its_keys_and_ttls(
    cluster: &RedisCluster,
    p: usize,
    how: &str,
    migrate: impl Fn(&RedisCluster, u16, usize),
) {
    let kind = cluster.kind;
    let prefix = partition::prefix(&format!("moved-{how}:"), p);
    let timer = format!("{prefix}timers");
    let slot = cluster.key_slot(&timer);
    let from = cluster.owner_of_slot(slot);
    let to = *cluster
        .primaries()
        .iter()
        .find(|&&i| i != from)
        .expect("another primary");
    const TTL_MS: &str = "600000";
    let replies = match kind {
        RedisKind::Valkey9 => cluster.pipeline_on(
            from,
            &[
                &["HSET", &timer, "f", "v"],
                &["HPEXPIRE", &timer, TTL_MS, "FIELDS", "1", "f"],
            ],
        ),
        RedisKind::Redis7 => cluster.pipeline_on(from, &[&["SET", &timer, "v", "PX", TTL_MS]]),
    }
    .unwrap();
    assert!(
        replies.iter().all(|r| !matches!(r, Resp::Error(_))),
        "{kind:?}: {replies:?}"
    );
    let plain: Vec<String> = (0..150).map(|i| format!("{prefix}m:{i}")).collect();
    let sets: Vec<[&str; 3]> = plain.iter().map(|k| ["SET", k.as_str(), "x"]).collect();
    let sets: Vec<&[&str]> = sets.iter().map(|c| &c[..]).collect();
    assert!(cluster
        .pipeline_on(from, &sets)
        .unwrap()
        .iter()
        .all(|r| *r == Resp::Simple("OK".into())));

    migrate(cluster, slot, to);

    assert_eq!(cluster.owner_of_slot(slot), to, "{kind:?} {how}");
    let ttl_ms = match kind {
        RedisKind::Valkey9 => {
            assert_eq!(
                cluster.command_resp_on(to, &["HGET", &timer, "f"]),
                bulk("v")
            );
            let reply = cluster.command_resp_on(to, &["HPTTL", &timer, "FIELDS", "1", "f"]);
            reply
                .as_ref()
                .and_then(|r| r.items().first().and_then(Resp::as_int))
                .unwrap_or_else(|| panic!("HPTTL: {reply:?}"))
        }
        RedisKind::Redis7 => {
            assert_eq!(cluster.command_resp_on(to, &["GET", &timer]), bulk("v"));
            let reply = cluster.command_resp_on(to, &["PTTL", &timer]);
            reply
                .as_ref()
                .and_then(Resp::as_int)
                .unwrap_or_else(|| panic!("PTTL: {reply:?}"))
        }
    };
    assert!(
        0 < ttl_ms && ttl_ms <= 600_000,
        "{kind:?} {how}: the TTL after the move is {ttl_ms} ms"
    );
    let s = slot.to_string();
    let count = |i| cluster.command_resp_on(i, &["CLUSTER", "COUNTKEYSINSLOT", &s]);
    assert_eq!(count(to), Some(Resp::Int(151)), "{kind:?} {how}");
    assert_eq!(count(from), Some(Resp::Int(0)), "{kind:?} {how}");
    let mut expected = plain;
    expected.push(timer);
    expected.sort();
    assert_eq!(
        cluster.keys_with_prefix(&format!("moved-{how}:")),
        expected,
        "{kind:?} {how}"
    );
}

#[test]
fn cluster_slot_moved_with_migrate_keeps_key_ttls_on_redis7() {
    let cluster = RedisCluster::start(RedisKind::Redis7, 3, 0);
    a_moved_slot_keeps_its_keys_and_ttls(&cluster, 1, "legacy", RedisCluster::migrate_slot);
}

// Valkey 9: the atomic CLUSTER MIGRATESLOTS (migrate_slot), and the legacy way too.
#[test]
fn cluster_slot_moved_keeps_hash_field_ttls_on_valkey9() {
    let cluster = RedisCluster::start(RedisKind::Valkey9, 3, 0);
    a_moved_slot_keeps_its_keys_and_ttls(&cluster, 1, "atomic", RedisCluster::migrate_slot);
    a_moved_slot_keeps_its_keys_and_ttls(&cluster, 2, "legacy", RedisCluster::migrate_slot_legacy);
}
