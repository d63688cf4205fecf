//! Outcome documents in MongoDB.
//!
//! One document per message (not one SQL row per segment): a message is read and
//! written whole — its segments, their texts, the missing seqs — and that is exactly
//! the shape of a document. Lookups by segment message_id use a multikey index.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use mongodb::bson::{doc, Document};
use mongodb::error::ErrorKind;
use mongodb::options::IndexOptions;
use mongodb::{Collection, IndexModel};

use crate::store::error::StoreError;

/// Duplicate key: the document is already there, which for an idempotent write is
/// success.
const DUPLICATE_KEY: i32 = 11000;

pub struct Outcomes {
    client: mongodb::Client,
    coll: Collection<Document>,
    retention_days: Option<u32>,
    indexes_ready: AtomicBool,
}

impl Outcomes {
    /// Does not contact the server: MongoDB may be down when smppd starts; outcomes
    /// then wait in Redis.
    pub async fn new(
        uri: &str,
        database: &str,
        collection: &str,
        retention_days: Option<u32>,
    ) -> Result<Outcomes, StoreError> {
        let client = mongodb::Client::with_uri_str(uri).await?;
        Ok(Outcomes {
            coll: client.database(database).collection(collection),
            client,
            retention_days,
            indexes_ready: AtomicBool::new(false),
        })
    }

    /// Closes the driver's connection pools. Called once the store's tasks stopped:
    /// without it the driver's background tasks outlive the runtime and panic on exit.
    pub async fn close(&self) {
        self.client.clone().shutdown().immediate(true).await;
    }

    pub fn collection(&self) -> &Collection<Document> {
        &self.coll
    }

    /// Creates the lookup indexes (and the TTL index when retention is set) once.
    pub async fn ensure_indexes(&self) -> Result<(), StoreError> {
        if self.indexes_ready.load(Ordering::Relaxed) {
            return Ok(());
        }
        self.coll
            .create_indexes(outcome_indexes(self.retention_days))
            .await?;
        self.indexes_ready.store(true, Ordering::Relaxed);
        Ok(())
    }

    /// Inserts the documents; those already present (same `_id`) count as written.
    pub async fn write(&self, docs: Vec<Document>) -> Result<(), StoreError> {
        if docs.is_empty() {
            return Ok(());
        }
        self.ensure_indexes().await?;
        match self.coll.insert_many(docs).ordered(false).await {
            Ok(_) => Ok(()),
            Err(e) => match e.kind.as_ref() {
                ErrorKind::InsertMany(ime)
                    if ime.write_concern_error.is_none()
                        && ime
                            .write_errors
                            .as_ref()
                            .is_some_and(|w| w.iter().all(|we| we.code == DUPLICATE_KEY)) =>
                {
                    Ok(())
                }
                _ => Err(e.into()),
            },
        }
    }

    /// The outcome holding segment `message_id` of `account`.
    pub async fn find_by_message_id(
        &self,
        account: &str,
        message_id: &str,
    ) -> Result<Option<Document>, StoreError> {
        Ok(self
            .coll
            .find_one(doc! { "segments.message_id": message_id, "account": account })
            .await?)
    }
}

/// The indexes of the outcomes collection: lookup by segment message_id (query_sm,
/// cancel_sm after the outcome is written), by account and time, and the TTL index when
/// `retention_days` is set. Public so the benchmark's reference insert pays the same
/// index maintenance as the outcome writer.
pub fn outcome_indexes(retention_days: Option<u32>) -> Vec<IndexModel> {
    let mut models = vec![
        IndexModel::builder()
            .keys(doc! { "segments.message_id": 1 })
            .build(),
        IndexModel::builder()
            .keys(doc! { "account": 1, "submitted_at": 1 })
            .build(),
    ];
    if let Some(days) = retention_days {
        models.push(
            IndexModel::builder()
                .keys(doc! { "completed_at": 1 })
                .options(
                    IndexOptions::builder()
                        .expire_after(Duration::from_secs(u64::from(days) * 86_400))
                        .build(),
                )
                .build(),
        );
    }
    models
}
