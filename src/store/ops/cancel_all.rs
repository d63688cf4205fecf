//! cancel_sm without a message_id: every message of a source (and destination and
//! service_type, when given) that nothing has ended yet — pending, scheduled or on its
//! way to a receiver — is cancelled, with DELETED receipts.
//!
//! No index keeps messages by address (it would cost every submit), so each
//! partition is SCANned for the candidates: pending groups by the group key in their
//! value (it starts with account and source), finished-but-unended messages by their
//! state. Each candidate is then cancelled by the CANCEL script, which checks the
//! owner, the filters and the state itself, one message at a time: a rare operation
//! that reads the store once, not a loop that polls it.

use crate::service::Address;
use crate::store::model::address_key;
use crate::store::model::pending::PendingHead;
use crate::store::redis::partition;
use crate::store::redis::scripts::ops::{CancelFilter, CancelReply, Owner};
use crate::store::{Inner, StoreError};

/// SCAN COUNT per round.
const SCAN_COUNT: usize = 1000;

/// Escapes the glob characters of SCAN MATCH.
fn glob_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// The start of the group keys of `account`'s messages from `source` (to `dest`):
/// `model::group_key`'s length-prefixed parts.
fn group_key_prefix(account: &str, source: &Address, dest: Option<&Address>) -> String {
    let part = |s: &str| format!("{}:{s}|", s.len());
    let mut p = part(account) + &part(&address_key(source));
    if let Some(d) = dest {
        p += &part(&address_key(d));
    }
    p
}

impl Inner {
    /// Cancels what matches; returns how many messages were cancelled.
    pub(crate) async fn cancel_matching(
        &self,
        account: &str,
        source: &Address,
        dest: Option<&Address>,
        service_type: Option<&str>,
    ) -> Result<usize, StoreError> {
        let src = address_key(source);
        let owner = Owner {
            account,
            source: &src,
        };
        let prefix = group_key_prefix(account, source, dest);
        let filter = CancelFilter {
            group_key_prefix: &prefix,
            service_type,
        };
        let mut cancelled = 0;
        for p in 0..partition::COUNT {
            let pre = partition::prefix(self.prefix(), p);
            let mut ids = Vec::new();
            // Pending groups: by the group key in their value; CANCEL takes `#<gid>`.
            let group = format!("{pre}g:");
            let keys = self.scan(p, &format!("{}*", glob_escape(&group))).await?;
            for (key, v) in keys.iter().zip(self.values(&keys).await?) {
                let (Some(v), Some(id)) = (v, key.strip_prefix(&group)) else {
                    continue;
                };
                let head = PendingHead::parse(&v)?;
                if head.gk.starts_with(&prefix) {
                    ids.push(format!("#{}", head.gid(id)));
                }
            }
            // Messages complete but not ended (scheduled, on their way): by state.
            let pattern = format!("{}d:*", glob_escape(&pre));
            let keys = self.scan(p, &pattern).await?;
            let states = self.fields(&keys, "state").await?;
            for (key, state) in keys.iter().zip(states) {
                if matches!(state.as_deref(), Some("sched" | "routed")) {
                    if let Some(id) = key.strip_prefix(&format!("{pre}d:")) {
                        ids.push(id.to_owned());
                    }
                }
            }
            let mut here = 0;
            for id in ids {
                let reply = self
                    .scripts
                    .cancel(&mut self.conn(), p, &id, &owner, &filter)
                    .await?;
                if matches!(reply, CancelReply::Cancelled) {
                    here += 1;
                }
            }
            if here > 0 {
                self.finished(p);
                cancelled += here;
            }
        }
        Ok(cancelled)
    }

    /// The value of each key of `keys`, pipelined SCAN_COUNT at a time.
    async fn values(&self, keys: &[String]) -> Result<Vec<Option<Vec<u8>>>, StoreError> {
        let mut out = Vec::with_capacity(keys.len());
        for chunk in keys.chunks(SCAN_COUNT) {
            let mut pipe = redis::pipe();
            for k in chunk {
                pipe.get(k);
            }
            let got: Vec<Option<Vec<u8>>> = pipe.query_async(&mut self.conn()).await?;
            out.extend(got);
        }
        Ok(out)
    }

    /// Field `field` of each hash of `keys`, pipelined SCAN_COUNT at a time.
    async fn fields(
        &self,
        keys: &[String],
        field: &str,
    ) -> Result<Vec<Option<String>>, StoreError> {
        let mut out = Vec::with_capacity(keys.len());
        for chunk in keys.chunks(SCAN_COUNT) {
            let mut pipe = redis::pipe();
            for k in chunk {
                pipe.hget(k, field);
            }
            let got: Vec<Option<String>> = pipe.query_async(&mut self.conn()).await?;
            out.extend(got);
        }
        Ok(out)
    }

    /// Every key of partition `p` matching `pattern` (SCAN on the partition's primary,
    /// one round trip per SCAN_COUNT keys looked at).
    async fn scan(&self, p: usize, pattern: &str) -> Result<Vec<String>, StoreError> {
        let mut conn = self.conn();
        let mut cursor: u64 = 0;
        let mut keys = Vec::new();
        loop {
            let cmd = redis::cmd("SCAN")
                .arg(cursor)
                .arg("MATCH")
                .arg(pattern)
                .arg("COUNT")
                .arg(SCAN_COUNT)
                .clone();
            let (next, batch): (u64, Vec<String>) =
                redis::from_redis_value(conn.on_partition(cmd, p).await?)
                    .map_err(redis::RedisError::from)?;
            keys.extend(batch);
            if next == 0 {
                return Ok(keys);
            }
            cursor = next;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn group_key_prefixes_are_the_group_keys_start_and_globs_are_escaped() {
        let a = |s: &str| Address {
            ton: 1,
            npi: 1,
            addr: s.into(),
        };
        assert_eq!(group_key_prefix("acc", &a("12"), None), "3:acc|6:1.1.12|");
        assert_eq!(
            group_key_prefix("acc", &a("12"), Some(&a("9"))),
            "3:acc|6:1.1.12|5:1.1.9|"
        );
        assert_eq!(glob_escape("a*b?[c]\\"), "a\\*b\\?\\[c\\]\\\\");
    }
}
