//! The version of the store's data layout in Redis, kept in `P:layout`.
//!
//! One layout at a time: a node reads and writes exactly the layout it was built for.
//! A store written by another layout version is refused at start, never half read;
//! the way from one layout to the next is to drain the old one (README "Upgrading").

use redis::aio::ConnectionLike;

use crate::store::error::StoreError;

/// This build's layout. Bump it whenever what is stored in Redis changes shape.
/// 1: one Redis keyspace; 2: 64 partitions (`P{tag}:…` keys, sharded channels, the
/// partition in every message_id); 3: 16 partitions; 4: a pending message one binary
/// value named by its group's id, the deadline index id sets per second.
pub const VERSION: u32 = 4;

/// Keys every version of smppd wrote while it held messages or receipts, before
/// layout versions existed: any of them present without `P:layout` means the store
/// holds data of an unversioned layout.
const UNVERSIONED_SIGNS: [&str; 4] = ["deadlines", "outbox", "fresh", "racc"];

/// The layout-version key under `prefix`.
pub fn key(prefix: &str) -> String {
    format!("{prefix}layout")
}

/// Claims an empty store for this layout, or checks that the store is of it.
pub async fn check<C: ConnectionLike + Send>(conn: &mut C, prefix: &str) -> Result<(), StoreError> {
    let key = key(prefix);
    let found: Option<String> = redis::cmd("GET").arg(&key).query_async(conn).await?;
    let found = match found {
        Some(v) => v,
        None => {
            // One EXISTS per key: on a cluster they live on different slots.
            let mut held = 0u32;
            for k in UNVERSIONED_SIGNS {
                let n: u32 = redis::cmd("EXISTS")
                    .arg(format!("{prefix}{k}"))
                    .query_async(conn)
                    .await?;
                held += n;
            }
            if held > 0 {
                return Err(StoreError::Layout {
                    key,
                    found: "none (a version without layout versions)".into(),
                    expected: VERSION,
                });
            }
            // Two nodes starting on an empty store at once: one SET wins, the other
            // reads the winner's value (the same, or refused below).
            let previous: Option<String> = redis::cmd("SET")
                .arg(&key)
                .arg(VERSION)
                .arg("NX")
                .arg("GET")
                .query_async(conn)
                .await?;
            match previous {
                None => return Ok(()),
                Some(v) => v,
            }
        }
    };
    if found == VERSION.to_string() {
        Ok(())
    } else {
        Err(StoreError::Layout {
            key,
            found,
            expected: VERSION,
        })
    }
}
