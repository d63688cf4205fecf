//! The one clock: Redis `TIME`.
//!
//! Deadlines are compared and groups claimed inside Lua scripts with `TIME`, so every
//! node agrees on what has expired whatever its own clock says. Rust code needs the
//! same clock twice: to turn a relative validity_period into a deadline, and to arm a
//! local one-shot timer for a deadline. For that it keeps the offset between Redis
//! time and the local clock, measured at start and again on every (re)subscription
//! (half the round trip is the error bound, well under a millisecond locally).

use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use chrono::{DateTime, Utc};

#[derive(Debug, Default)]
pub struct Clock {
    offset_ms: AtomicI64,
}

impl Clock {
    /// Measures the offset with one `TIME`.
    pub async fn sync<C: redis::aio::ConnectionLike>(
        &self,
        conn: &mut C,
    ) -> redis::RedisResult<()> {
        let offset_ms = offset_ms(conn).await?;
        self.offset_ms.store(offset_ms, Ordering::Relaxed);
        Ok(())
    }
}

/// The server's clock minus ours, in ms, from one `TIME`.
pub async fn offset_ms<C: redis::aio::ConnectionLike>(conn: &mut C) -> redis::RedisResult<i64> {
    let t0 = Utc::now().timestamp_micros();
    let (secs, micros): (i64, i64) = redis::cmd("TIME").query_async(conn).await?;
    let t1 = Utc::now().timestamp_micros();
    let redis_us = secs * 1_000_000 + micros;
    Ok((redis_us - (t0 + t1) / 2) / 1000)
}

impl Clock {
    /// Redis time now, estimated, in ms since the epoch.
    pub fn now_ms(&self) -> i64 {
        Utc::now().timestamp_millis() + self.offset_ms.load(Ordering::Relaxed)
    }

    pub fn now(&self) -> DateTime<Utc> {
        crate::store::model::outcome::datetime(self.now_ms())
    }

    /// The local instant at which Redis time reaches `ms`.
    pub fn instant_at(&self, ms: i64) -> tokio::time::Instant {
        let wait = u64::try_from(ms - self.now_ms()).unwrap_or(0);
        tokio::time::Instant::now() + Duration::from_millis(wait)
    }
}
