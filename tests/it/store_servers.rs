//! The test harness itself: real servers start, answer, restart with their data.

use crate::support::servers::{MongoServer, RedisKind, RedisServer};

#[test]
fn redis_and_valkey_start_answer_and_keep_aof_data_across_restart() {
    for kind in RedisKind::ALL {
        let mut redis = RedisServer::start(kind);
        assert_eq!(redis.dbsize(), 0, "{kind:?}");
        assert!(redis
            .command(&["SET", "k", "v"])
            .unwrap()
            .starts_with("+OK"));
        assert_eq!(redis.dbsize(), 1);
        redis.restart();
        assert_eq!(redis.dbsize(), 1, "{kind:?}: AOF reloaded after restart");
    }
}

#[test]
fn mongo_server_starts_stops_and_restarts_on_the_same_port() {
    let mut mongo = MongoServer::start();
    let port = mongo.port;
    mongo.stop();
    assert!(!mongo.is_running());
    mongo.restart();
    assert_eq!(mongo.port, port);
    assert!(mongo.is_running());
}

// The partitions' hash tags spread over the cluster slots as the store expects: the
// server's own CLUSTER KEYSLOT puts partition i at slot i * 256 (a single node with
// cluster support on answers it without any slot assigned).
#[test]
fn partition_tags_have_the_slots_the_server_computes() {
    use smppd::store::partition::{COUNT, TAGS};
    for kind in RedisKind::ALL {
        let redis = RedisServer::start_with(kind, &["--cluster-enabled", "yes"]);
        for (i, tag) in TAGS.iter().enumerate() {
            let key = format!("smppd:{{{tag}}}:deadlines");
            let reply = redis.command(&["CLUSTER", "KEYSLOT", &key]).unwrap();
            assert_eq!(reply.trim(), format!(":{}", i * 256), "{kind:?} {key}");
        }
        assert_eq!(TAGS.len(), COUNT);
    }
}
