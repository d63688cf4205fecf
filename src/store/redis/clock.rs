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
use tokio::time::Instant;

/// Redis time as `offset_ms` plus the ms elapsed since `origin` on this process'
/// monotonic clock (tokio's, so that tests with paused time move it): a step of the
/// local wall clock does not move deadlines, and `instant_at` needs no wall clock.
#[derive(Debug)]
pub struct Clock {
    origin: Instant,
    offset_ms: AtomicI64,
}

impl Default for Clock {
    /// The local wall clock until the first [`Clock::sync`].
    fn default() -> Self {
        Clock::at(Utc::now().timestamp_millis())
    }
}

impl Clock {
    /// A clock reading `now_ms` now (tests; before a sync).
    pub fn at(now_ms: i64) -> Clock {
        Clock {
            origin: Instant::now(),
            offset_ms: AtomicI64::new(now_ms),
        }
    }

    fn elapsed_us(&self) -> i64 {
        i64::try_from(self.origin.elapsed().as_micros()).unwrap_or(i64::MAX)
    }

    /// Measures the offset with one `TIME` (half the round trip is the error).
    pub async fn sync<C: redis::aio::ConnectionLike>(
        &self,
        conn: &mut C,
    ) -> redis::RedisResult<()> {
        let offset_us = time_minus(conn, || self.elapsed_us()).await?;
        self.offset_ms.store(offset_us / 1000, Ordering::Relaxed);
        Ok(())
    }

    /// Redis time now, estimated, in ms since the epoch.
    pub fn now_ms(&self) -> i64 {
        self.offset_ms.load(Ordering::Relaxed) + self.elapsed_us() / 1000
    }

    pub fn now(&self) -> DateTime<Utc> {
        crate::store::model::outcome::datetime(self.now_ms())
    }

    /// The local instant at which Redis time reaches `ms` (now, if it has).
    pub fn instant_at(&self, ms: i64) -> Instant {
        let since_origin = ms - self.offset_ms.load(Ordering::Relaxed);
        let at = self.origin + Duration::from_millis(u64::try_from(since_origin).unwrap_or(0));
        at.max(Instant::now())
    }
}

/// The server's clock minus this machine's wall clock, in ms, from one `TIME` (to
/// compare the clocks of a cluster's primaries).
pub async fn offset_ms<C: redis::aio::ConnectionLike>(conn: &mut C) -> redis::RedisResult<i64> {
    Ok(time_minus(conn, || Utc::now().timestamp_micros()).await? / 1000)
}

/// The server's `TIME` minus the local clock `now_us` (µs) read around the call, at
/// its midpoint.
async fn time_minus<C: redis::aio::ConnectionLike>(
    conn: &mut C,
    now_us: impl Fn() -> i64,
) -> redis::RedisResult<i64> {
    let t0 = now_us();
    let (secs, micros): (i64, i64) = redis::cmd("TIME").query_async(conn).await?;
    let t1 = now_us();
    Ok(secs * 1_000_000 + micros - (t0 + t1) / 2)
}
