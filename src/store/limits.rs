//! An account's limits over every node sharing the store
//! ([account-limits.md](../../docs/design/account-limits.md)): its rate as one GCRA
//! bucket in Redis (RATE_TAKE, asked a chunk at a time by `session::tokens`), its
//! `max_binds` as leases in a ZSET (BIND_ADMIT). This node remembers the leases of its
//! live binds and renews them every [`RENEW_EVERY`]; a lease not renewed ends after
//! [`LEASE`] (a crashed node's binds count that long).

use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use crate::service::{BindLease, Rate, TokenGrant};

use crate::store::error::StoreError;
use crate::store::redis::connection::Shared;
use crate::store::redis::scripts::Scripts;
use crate::store::Store;

/// How long a bind's place lasts without renewal: how long a crashed node's binds may
/// still count against their accounts' max_binds. Short, but three renewals long, so a
/// Redis hiccup or a slow pass does not drop a live bind.
pub const LEASE: Duration = Duration::from_secs(30);
/// How often this node renews the leases of its live binds.
pub const RENEW_EVERY: Duration = Duration::from_secs(10);
const _: () = assert!(LEASE.as_secs() >= 3 * RENEW_EVERY.as_secs());

/// This node's live bind leases by account (pure bookkeeping).
#[derive(Debug, Default)]
struct Book(HashMap<String, BTreeSet<String>>);

impl Book {
    fn add(&mut self, system_id: &str, member: &str) {
        self.0
            .entry(system_id.to_owned())
            .or_default()
            .insert(member.to_owned());
    }

    fn remove(&mut self, system_id: &str, member: &str) {
        if let Some(set) = self.0.get_mut(system_id) {
            set.remove(member);
            if set.is_empty() {
                self.0.remove(system_id);
            }
        }
    }

    /// Every account with its members: one renewal call each.
    fn snapshot(&self) -> Vec<(String, Vec<String>)> {
        self.0
            .iter()
            .map(|(a, m)| (a.clone(), m.iter().cloned().collect()))
            .collect()
    }
}

/// The leases of this node's live binds.
#[derive(Debug, Default)]
pub struct Leases {
    book: Mutex<Book>,
    /// Held by a renewal pass, and by a release around its ZREM: a pass that read a
    /// member before it was released cannot add it back after the ZREM.
    turn: tokio::sync::Mutex<()>,
    next: AtomicU64,
}

impl Leases {
    fn book(&self) -> std::sync::MutexGuard<'_, Book> {
        self.book.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A member name no other bind of any node has: node label, node epoch (unique per
    /// process start, so a restarted node's new binds are not its old ones) and a counter.
    fn new_member(&self, node: &str, epoch: u64) -> String {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        format!("{node}:{epoch}:{n}")
    }
}

impl Store {
    /// Takes up to `n` submits of the account's rate shared by every node.
    pub(super) async fn take_tokens(
        &self,
        system_id: &str,
        rate: Rate,
        n: u32,
    ) -> Result<TokenGrant, StoreError> {
        let inner = &self.inner;
        inner
            .scripts
            .rate_take(&mut inner.conn(), system_id, rate, n)
            .await
    }

    /// A lease among the account's `max_binds` over every node, or `None` when all are
    /// taken.
    pub(super) async fn acquire_bind(
        &self,
        system_id: &str,
        max_binds: usize,
    ) -> Result<Option<BindLease>, StoreError> {
        let inner = &self.inner;
        let member = inner.leases.new_member(inner.node(), inner.epoch);
        let admitted = inner
            .scripts
            .bind_admit(&mut inner.conn(), system_id, &member, max_binds, LEASE)
            .await?;
        if !admitted {
            return Ok(None);
        }
        inner.leases.book().add(system_id, &member);
        let (inner, system_id) = (self.inner.clone(), system_id.to_owned());
        Ok(Some(BindLease::new(member.clone(), move || {
            // Out of the book at once (no renewal after this), then out of Redis.
            inner.leases.book().remove(&system_id, &member);
            Box::pin(async move { inner.renewal().release(&system_id, &member).await })
        })))
    }
}

/// What renewing and giving back this node's bind leases uses of the store.
pub(super) struct Renewal<'a> {
    pub leases: &'a Leases,
    pub scripts: &'a Scripts,
    pub conn: &'a Shared,
}

impl Renewal<'_> {
    async fn release(&self, system_id: &str, member: &str) {
        let _turn = self.leases.turn.lock().await;
        let done = self
            .scripts
            .bind_release(&mut self.conn.get(), system_id, member)
            .await;
        if let Err(e) = done {
            tracing::warn!(system_id, error = %e, "bind lease not given back: it counts until it expires");
        }
    }

    /// Renews the leases of this node's live binds every [`RENEW_EVERY`] until
    /// `shutdown`: one BIND_RENEW call per account, all at once.
    pub(super) async fn run(&self, shutdown: &tokio_util::sync::CancellationToken) {
        let mut tick = tokio::time::interval(RENEW_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tick.tick().await;
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tick.tick() => {}
            }
            self.renew_all().await;
        }
    }

    async fn renew_all(&self) {
        let _turn = self.leases.turn.lock().await;
        let accounts = self.leases.book().snapshot();
        let calls = accounts.iter().map(|(system_id, members)| async move {
            let r = self
                .scripts
                .bind_renew(&mut self.conn.get(), system_id, members, LEASE)
                .await;
            if let Err(e) = r {
                tracing::warn!(system_id, error = %e, "bind leases not renewed");
            }
        });
        futures::future::join_all(calls).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_book_holds_each_accounts_live_members() {
        let mut b = Book::default();
        b.add("acme", "n:1:0");
        b.add("acme", "n:1:1");
        b.add("zeta", "n:1:2");
        b.remove("acme", "n:1:0");
        b.remove("acme", "n:1:9"); // unknown: nothing happens
        let mut s = b.snapshot();
        s.sort();
        assert_eq!(
            s,
            vec![
                ("acme".to_owned(), vec!["n:1:1".to_owned()]),
                ("zeta".to_owned(), vec!["n:1:2".to_owned()]),
            ]
        );
        // An account whose last bind ended is not renewed at all.
        b.remove("zeta", "n:1:2");
        assert_eq!(b.snapshot().len(), 1);
    }

    #[test]
    fn members_are_unique_per_process_and_bind() {
        let l = Leases::default();
        assert_eq!(l.new_member("node-a", 7), "node-a:7:0");
        assert_eq!(l.new_member("node-a", 7), "node-a:7:1");
    }
}
