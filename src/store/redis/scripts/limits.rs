//! RATE_TAKE, BIND_ADMIT, BIND_RENEW, and the ZREM that gives a bind's place back: an
//! account's throughput and max_binds over every node
//! ([account-limits.md](../../../docs/design/account-limits.md)). Each account has its
//! own hash tag, so its keys live on one primary of a cluster and each call names one:
//!
//! * `P{lim:<system_id>}:rate` — string, the GCRA bucket's tat (µs, Redis time).
//! * `P{lim:<system_id>}:binds` — ZSET, bind lease member → lease expiry (ms).

use std::time::Duration;

use crate::service::{Rate, TokenGrant};
use crate::store::error::StoreError;
use crate::store::redis::connection::Conn;
use crate::store::redis::scripts::{Name, Scripts};
use crate::store::redis::value::{int_at, items};

/// How an account's key is named: its own hash tag, so rate and binds of one account
/// share a slot and different accounts spread over the cluster.
fn key(prefix: &str, system_id: &str, what: &str) -> String {
    format!("{prefix}{{lim:{system_id}}}:{what}")
}

impl Scripts {
    fn rate_key(&self, system_id: &str) -> String {
        key(&self.key_prefix, system_id, "rate")
    }

    fn binds_key(&self, system_id: &str) -> String {
        key(&self.key_prefix, system_id, "binds")
    }

    /// Takes up to `n` submits of the account's shared rate.
    pub async fn rate_take(
        &self,
        conn: &mut Conn,
        system_id: &str,
        rate: Rate,
        n: u32,
    ) -> Result<TokenGrant, StoreError> {
        let mut inv = self.call_key(Name::RateTake, &self.rate_key(system_id));
        inv.arg(rate.per_second).arg(rate.burst).arg(n);
        let a = items(inv.invoke_async(conn).await?);
        let granted = int_at(&a, 0, "rate take")?.clamp(0, i64::from(n)) as u32;
        let wait_us = int_at(&a, 1, "rate take")?.max(0) as u64;
        Ok(TokenGrant {
            granted,
            retry_after: Duration::from_micros(wait_us),
        })
    }

    /// Adds `member`'s lease unless the account holds `max_binds` live ones already.
    pub async fn bind_admit(
        &self,
        conn: &mut Conn,
        system_id: &str,
        member: &str,
        max_binds: usize,
        lease: Duration,
    ) -> Result<bool, StoreError> {
        let mut inv = self.call_key(Name::BindAdmit, &self.binds_key(system_id));
        inv.arg(member).arg(max_binds).arg(lease.as_millis() as u64);
        let admitted: i64 = inv.invoke_async(conn).await?;
        Ok(admitted == 1)
    }

    /// Extends the leases of this node's live binds of the account; returns how many
    /// leases the account holds over all nodes.
    pub async fn bind_renew(
        &self,
        conn: &mut Conn,
        system_id: &str,
        members: &[String],
        lease: Duration,
    ) -> Result<u64, StoreError> {
        let mut inv = self.call_key(Name::BindRenew, &self.binds_key(system_id));
        inv.arg(lease.as_millis() as u64).arg(members);
        Ok(inv.invoke_async(conn).await?)
    }

    /// Gives `member`'s place back (one command: nothing to decide).
    pub async fn bind_release(
        &self,
        conn: &mut Conn,
        system_id: &str,
        member: &str,
    ) -> Result<(), StoreError> {
        redis::cmd("ZREM")
            .arg(self.binds_key(system_id))
            .arg(member)
            .query_async::<()>(conn)
            .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_accounts_keys_share_its_own_hash_tag() {
        let s = Scripts::new("smppd:", "n1", true);
        assert_eq!(s.rate_key("acme"), "smppd:{lim:acme}:rate");
        assert_eq!(s.binds_key("acme"), "smppd:{lim:acme}:binds");
    }
}
