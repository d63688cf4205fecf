//! `/healthz`: is Redis answering, is MongoDB answering, is the expiry subscriber
//! subscribed. Each check has its own short timeout and they run at once, so a
//! hanging server makes the answer late by one timeout at most.

use std::time::Duration;

use mongodb::bson::doc;

use crate::store::Store;

/// How long each check may take.
const CHECK_TIMEOUT: Duration = Duration::from_secs(1);

/// The state of one dependency.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HealthPart {
    Ok,
    Failed(String),
}

impl HealthPart {
    fn as_json(&self) -> String {
        match self {
            HealthPart::Ok => "ok".into(),
            HealthPart::Failed(why) => format!("fail: {why}"),
        }
    }
}

/// Every dependency's state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Health {
    pub redis: HealthPart,
    pub mongodb: HealthPart,
    pub expiry_subscriber: HealthPart,
}

impl Health {
    pub async fn check(store: &Store) -> Health {
        let (redis, mongodb) = tokio::join!(redis(store), mongodb(store));
        let expiry_subscriber = if store.expiry_subscribed() {
            HealthPart::Ok
        } else {
            HealthPart::Failed("not subscribed".into())
        };
        Health {
            redis,
            mongodb,
            expiry_subscriber,
        }
    }

    pub fn is_ok(&self) -> bool {
        [&self.redis, &self.mongodb, &self.expiry_subscriber]
            .iter()
            .all(|p| **p == HealthPart::Ok)
    }

    /// `{"redis":"ok","mongodb":"fail: …","expiry_subscriber":"ok"}`
    pub fn to_json(&self) -> String {
        serde_json::json!({
            "redis": self.redis.as_json(),
            "mongodb": self.mongodb.as_json(),
            "expiry_subscriber": self.expiry_subscriber.as_json(),
        })
        .to_string()
    }
}

async fn timed<T, E: std::fmt::Display>(
    f: impl std::future::Future<Output = Result<T, E>>,
) -> HealthPart {
    match tokio::time::timeout(CHECK_TIMEOUT, f).await {
        Ok(Ok(_)) => HealthPart::Ok,
        Ok(Err(e)) => HealthPart::Failed(e.to_string()),
        Err(_) => HealthPart::Failed(format!("no answer within {CHECK_TIMEOUT:?}")),
    }
}

async fn redis(store: &Store) -> HealthPart {
    let mut conn = store.redis();
    timed(async move { redis::cmd("PING").query_async::<String>(&mut conn).await }).await
}

async fn mongodb(store: &Store) -> HealthPart {
    let client = store.outcomes().client().clone();
    timed(async move {
        client
            .database("admin")
            .run_command(doc! { "ping": 1 })
            .await
    })
    .await
}
