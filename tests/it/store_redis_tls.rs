//! `rediss://` with an ACL user in the URL and a private CA (`[redis] tls_ca`): the
//! store, its expiry subscriber and its scripts all work over TLS (Redis 7.0; the
//! Valkey wheel here is built without TLS).

use std::time::Duration;

use service::{ConcatScheme, MessageService};
use smppd::service;

use crate::support::harness::*;
use crate::support::servers::{free_port, RedisKind, RedisServer, TempDir};
use crate::support::wait_for;

const T: Duration = Duration::from_secs(30);
const TWO_SECONDS: &str = "000000000002000R";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_store_works_over_tls_as_an_acl_user_and_refuses_an_unknown_ca() {
    let dir = TempDir::new("redis-tls");
    let ck = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let (cert, key) = (dir.path().join("redis.pem"), dir.path().join("redis.key"));
    std::fs::write(&cert, ck.cert.pem()).unwrap();
    std::fs::write(&key, ck.signing_key.serialize_pem()).unwrap();
    let tls_port = free_port().to_string();
    let redis = RedisServer::start_with(
        RedisKind::Redis7,
        &[
            "--tls-port",
            &tls_port,
            "--tls-cert-file",
            cert.to_str().unwrap(),
            "--tls-key-file",
            key.to_str().unwrap(),
            "--tls-auth-clients",
            "no",
            "--user",
            "smppd",
            "on",
            ">s3cret",
            "~*",
            "&*",
            "+@all",
        ],
    );
    let env = Env {
        redis,
        mongo: crate::support::servers::MongoServer::start(),
    };
    let mut settings = env.settings("tls");
    settings.redis_url = format!("rediss://smppd:s3cret@localhost:{tls_port}/");

    // Without the CA, the server's certificate is not trusted: refused, with the reason.
    let refused = smppd::store::Store::connect(settings.clone()).await;
    let e = refused.err().expect("an unknown CA is refused").to_string();
    assert!(e.to_lowercase().contains("certificate"), "{e}");

    settings.redis_tls_ca = Some(cert.clone());
    let sink = TestSink::new(true);
    let run = Running::start(settings, sink.clone()).await;
    // One segment of two: it expires through the keyspace event on the TLS subscriber
    // connection (and the local timer), into a partial outcome and its receipt.
    let req = request(
        "alice",
        Some((ConcatScheme::Udh8, 7, 2, 1)),
        0,
        b"over tls",
        1,
        TWO_SECONDS,
    );
    let id = run.store.submit(req).await.unwrap().message_id;
    let docs = wait_outcomes(&run.store, 1, T).await;
    assert_eq!(
        docs[0].get_str("_id").unwrap(),
        crate::support::messages::gid_of(&id)
    );
    assert_eq!(docs[0].get_str("state").unwrap(), "PARTIAL");
    wait_for("the receipt", T, || {
        let sink = sink.clone();
        async move { sink.count() == 1 }
    })
    .await;
    run.stop().await;
}
