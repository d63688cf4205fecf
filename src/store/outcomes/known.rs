//! Finished groups this node holds in memory already, so that the outcome writer need
//! not read them back from Redis.
//!
//! Why: every finished message passed through Redis twice on its way out — read once
//! for its receipts (or built by the submit, for a single-part message) and once more
//! by the outcome writer's lease. A finished group never changes (replace_sm and
//! cancel_sm refuse a final message; the lease fields are not part of it), so the copy
//! this node parsed or built is what the lease would read. The lease then asks Redis
//! for the ids only and reads just the groups this node does not know (another node
//! finished them, this process restarted, or the map was full).
//!
//! Only a shortcut: a group missing here is read from Redis as before, so losing an
//! entry costs a read, never a message. Bounded: when full, entries older than
//! [`STALE`] go (groups another node wrote, which this node's lease never takes), and
//! if that frees nothing a new group is not kept — the ones held are the oldest, the
//! next the lease takes from the outbox (a full map means the writer is behind). The
//! lock is never held across an `.await`.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::store::model::FinishedGroup;

/// Groups held at most (a few hundred bytes each, plus their user data).
pub(crate) const CAPACITY: usize = 16_384;

/// Held this long, a group is taken to be another node's (its lease would have come:
/// the outbox is written in order) and may go when the map is full.
pub(crate) const STALE: Duration = Duration::from_secs(600);

#[derive(Default)]
pub(crate) struct Known {
    groups: Mutex<Held>,
}

#[derive(Default)]
struct Held {
    map: HashMap<String, (Instant, FinishedGroup)>,
    /// When a full map was last searched for stale entries: at most once a second,
    /// not at every put while it stays full.
    purged: Option<Instant>,
}

impl Known {
    /// Keeps `group` for the lease that takes its gid.
    pub fn put(&self, group: FinishedGroup) {
        self.put_at(group, Instant::now());
    }

    fn put_at(&self, group: FinishedGroup, now: Instant) {
        let mut h = match self.groups.lock() {
            Ok(h) => h,
            Err(poisoned) => poisoned.into_inner(),
        };
        if h.map.len() >= CAPACITY {
            let due = h
                .purged
                .is_none_or(|p| now.saturating_duration_since(p) >= Duration::from_secs(1));
            if due {
                h.purged = Some(now);
                h.map
                    .retain(|_, (at, _)| now.saturating_duration_since(*at) < STALE);
            }
            if h.map.len() >= CAPACITY {
                return;
            }
        }
        h.map.insert(group.gid.clone(), (now, group));
    }

    /// The group `gid` if this node holds it; it is given up either way.
    pub fn take(&self, gid: &str) -> Option<FinishedGroup> {
        let taken = match self.groups.lock() {
            Ok(mut h) => h.map.remove(gid),
            Err(poisoned) => poisoned.into_inner().map.remove(gid),
        };
        taken.map(|(_, g)| g)
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.groups.lock().map(|h| h.map.len()).unwrap_or(0)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::service::{Address, ExpiryMode};
    use crate::store::model::{FinishKind, GroupMeta};

    fn group(gid: &str) -> FinishedGroup {
        let a = Address {
            ton: 1,
            npi: 1,
            addr: "1".into(),
        };
        FinishedGroup {
            gid: gid.into(),
            meta: GroupMeta {
                account: "a".into(),
                service_type: String::new(),
                source: a.clone(),
                dest: a,
                scheme: None,
                reference: None,
                total: 1,
                expiry_mode: ExpiryMode::DeliverPartial,
            },
            deadline_ms: 2,
            submitted_ms: 1,
            finished_ms: 1,
            kind: FinishKind::Complete,
            node: "n".into(),
            segments: Vec::new(),
            forward_to: None,
            partial: false,
            simulated: false,
            reassembled: false,
            protocol_id: 0,
            priority: 0,
        }
    }

    #[test]
    fn a_group_is_taken_once() {
        let k = Known::default();
        k.put(group("G1"));
        assert_eq!(k.take("G1").unwrap().gid, "G1");
        assert!(k.take("G1").is_none());
        assert!(k.take("G2").is_none());
    }

    #[test]
    fn a_full_map_keeps_the_oldest_until_they_are_stale() {
        let k = Known::default();
        let t0 = Instant::now();
        for i in 0..CAPACITY {
            k.put_at(group(&format!("G{i}")), t0);
        }
        // Full: the held ones are what the lease takes next; the new one is read.
        k.put_at(group("new"), t0 + Duration::from_secs(1));
        assert_eq!(k.len(), CAPACITY);
        assert!(k.take("new").is_none());
        assert!(k.take("G0").is_some());
        k.put_at(group("fits"), t0 + Duration::from_secs(1));
        assert!(k.take("fits").is_some());
        k.put_at(group("G0"), t0);
        // Full again within the second: not searched again, not kept.
        k.put_at(group("soon"), t0 + Duration::from_millis(1500));
        assert!(k.take("soon").is_none());
        // Long after, the old ones are another node's: they go for the new one.
        k.put_at(group("late"), t0 + STALE);
        assert_eq!(k.len(), 1);
        assert!(k.take("late").is_some());
    }
}
