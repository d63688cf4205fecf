//! The store's partitions on a real server: their hash tags have the cluster slots
//! the store expects. (The servers the tests start are checked by the tests that use
//! them: outages restart Redis from its AOF and MongoDB on its port.)

use crate::support::servers::{RedisKind, RedisServer};

// The partitions' hash tags spread over the cluster slots as the store expects: the
// server's own CLUSTER KEYSLOT puts partition i at slot i * 1024 (a single node with
// cluster support on answers it without any slot assigned).
#[test]
fn partition_tags_have_the_slots_the_server_computes() {
    use smppd::store::redis::partition::{COUNT, TAGS};
    for kind in RedisKind::ALL {
        let redis = RedisServer::start_with(kind, &["--cluster-enabled", "yes"]);
        for (i, tag) in TAGS.iter().enumerate() {
            let key = format!("smppd:{{{tag}}}:deadlines");
            let reply = redis.command(&["CLUSTER", "KEYSLOT", &key]).unwrap();
            assert_eq!(reply.trim(), format!(":{}", i * 1024), "{kind:?} {key}");
        }
        assert_eq!(TAGS.len(), COUNT);
    }
}
