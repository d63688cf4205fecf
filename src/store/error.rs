//! Store-internal errors. Toward sessions every one of them is an internal fault
//! (`ServiceError::Internal`, ESME_RSYSERR): the peer did nothing wrong.

use crate::service::ServiceError;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
    #[error("mongodb: {0}")]
    Mongo(#[from] mongodb::error::Error),
    #[error("redis keyspace notifications: {0}")]
    KeyspaceEvents(String),
    #[error("unexpected data in redis: {0}")]
    Corrupt(String),
    /// A command of one submit record failed inside its batch's script (out of
    /// memory, say); the batch's other records are unaffected.
    #[error("submit script: {0}")]
    Script(String),
    /// The submit batcher's task is gone (the store is shutting down).
    #[error("the submit batcher stopped")]
    Stopped,
    /// The batch call this submit was part of failed (one error for every record).
    #[error(transparent)]
    Batch(std::sync::Arc<StoreError>),
    /// `WAIT` saw fewer replicas than `ack_replicas` within `ack_timeout`: the write
    /// is on the primary but would not survive its loss, so it is not acknowledged.
    #[error("only {got} of {wanted} replicas confirmed the write within {timeout_ms} ms")]
    NotReplicated {
        wanted: u32,
        got: i64,
        timeout_ms: u64,
    },
    /// `[redis] cluster` does not match the server (a cluster node without
    /// `cluster = true`, or the reverse).
    #[error("{0}")]
    Mode(String),
    /// The store holds another layout version than this build's (`layout.rs`).
    #[error(
        "the store's data layout is {found}, this smppd needs {expected} (key {key}): \
         drain the store with the smppd version that wrote it (README \"Upgrading\"), \
         or point this one at an empty Redis database or another key_prefix"
    )]
    Layout {
        key: String,
        found: String,
        expected: u32,
    },
}

impl From<StoreError> for ServiceError {
    fn from(e: StoreError) -> ServiceError {
        ServiceError::Internal(Box::new(e))
    }
}
