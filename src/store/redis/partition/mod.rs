//! Partitions of the store: the unit a Redis Cluster places on its primaries.
//!
//! Every key of a message lives in one partition, named with the partition's hash
//! tag (`{tag}`), so that each state change is one script on one cluster slot. The
//! tags are chosen, not derived: partition `i` of [`COUNT`] hashes to slot `i · 1024`,
//! so the partitions spread evenly over the 16,384 slots and over any number of
//! primaries that split the slots evenly (naive tags land unevenly: ../shared/CLUSTER_NOTES.md).
//! Why 16: docs/design/store-v2.md. Every message_id names its partition
//! ([`of_message_id`]; the 8-character form and its numbering: [`short_id`]).

pub(crate) mod short_id;

/// Partitions of a store.
pub const COUNT: usize = 16;

/// The hash tag of each partition: `slot(TAGS[i]) == i * 1024`
/// (found by search; checked by the tests below and against `CLUSTER KEYSLOT`).
pub const TAGS: [&str; COUNT] = [
    "la2", "dlj", "qf7", "qbw", "lp0", "ltp", "h85", "qsu", "fjl", "ng4", "bfa", "jk9", "nrv",
    "nv6", "bwc", "sq3",
];

/// The key prefix of partition `p`: `<key_prefix>{<tag>}:`. Every key of the
/// partition starts with it, so a cluster keeps them on one slot.
pub fn prefix(key_prefix: &str, p: usize) -> String {
    format!("{key_prefix}{{{}}}:", TAGS[p])
}

/// The cluster slot of partition `p` (its tag's: `p · 1024`, see [`TAGS`]).
pub fn home_slot(p: usize) -> u16 {
    (p * (16_384 / COUNT)) as u16
}

/// The partition of a multi-part message, from its group key: every segment finds
/// the same one, whichever node receives it.
/// A deadline entry `@<gid>` (a forwarded message's delivery deadline) or `^<gid>`
/// (a scheduled message's time) is its message's, in the partition its gid names.
pub fn of_group(gk: &str) -> usize {
    if let Some(p) = gk.strip_prefix(['@', '^']).and_then(of_message_id) {
        return p;
    }
    usize::from(slot(gk)) % COUNT
}

/// The partition of a receipt-queue id: a message_id, or one with a suffix (an
/// intermediate notification's `<message_id>.n`).
pub fn of_queue_id(id: &str) -> Option<usize> {
    of_message_id(id.split('.').next()?)
}

/// A decimal message_id (`message_id_format = "decimal"`): the partition in the top
/// 6 bits of a u64, then 20 bits of the node epoch and 38 of its counter. Unique while
/// epochs and counters do not wrap: 1M node starts, 2.7 × 10^11 messages per start
/// (63 days at 50k/s), far beyond the receipt lifetime that ids must outlive.
pub fn decimal_id(p: usize, epoch: u64, counter: u64) -> u64 {
    ((p as u64) << 58) | ((epoch & 0xF_FFFF) << 38) | (counter & ((1 << 38) - 1))
}

/// Characters of a message_id: 2 hex digits of partition, 8 of node epoch, 12 of
/// counter (`Inner::next_message_id`).
pub const MESSAGE_ID_LEN: usize = 22;

/// Characters of a multi-part message's gid in the hex format: 2 hex digits of
/// partition, 13 of its group's id (`model::pending::group_ids`), then the 20 of
/// epoch and counter of its first segment's node id; a segment's message_id adds 2
/// of its seq, so that it names its group (`seg_id` in `store/redis/lua/lib.lua`).
pub const GROUP_ID_LEN: usize = 35;
pub const SEGMENT_ID_LEN: usize = GROUP_ID_LEN + 2;

/// The partition a message_id names (a hex id's first two digits, see
/// `MessageIdFormat` for the others), or `None` for an id smppd did not give.
pub fn of_message_id(id: &str) -> Option<usize> {
    // A decimal id has at most 20 digits (a u64), a short one 8 characters, a letter
    // first (`short_id`), a hex one exactly 22 (35 a gid, 37 a multi-part segment).
    if (1..=20).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_digit()) {
        let p = (id.parse::<u64>().ok()? >> 58) as usize;
        return (p < COUNT).then_some(p);
    }
    if id.len() == crate::store::redis::partition::short_id::LEN {
        return crate::store::redis::partition::short_id::partition_of(id);
    }
    if ![MESSAGE_ID_LEN, GROUP_ID_LEN, SEGMENT_ID_LEN].contains(&id.len())
        || !id.bytes().all(|b| b.is_ascii_hexdigit())
    {
        return None;
    }
    let p = usize::from_str_radix(&id[..2], 16).ok()?;
    (p < COUNT).then_some(p)
}

/// The partition a key of this store names (`<key_prefix>{<tag>}:…`).
pub fn of_key(key_prefix: &str, key: &str) -> Option<usize> {
    let rest = key.strip_prefix(key_prefix)?.strip_prefix('{')?;
    let (tag, _) = rest.split_once("}:")?;
    TAGS.iter().position(|t| *t == tag)
}

/// A partition's share of a store-wide or per-account limit: a quarter above an even
/// split, at least 1. A partition refuses past its share, so the whole never holds
/// more than 1.25 × the limit (+ one per partition), and only traffic skewed onto few
/// partitions meets the refusal early. No partition can see the others' counts in
/// one atomic step on a cluster, which an exact limit would need.
pub fn share(limit: u64) -> u64 {
    limit.saturating_mul(5).div_ceil(4 * COUNT as u64).max(1)
}

/// A set of partitions that have work, shared between the tasks that find work and
/// the one that does it.
#[derive(Debug, Default)]
pub struct PartSet(std::sync::atomic::AtomicU64);

impl PartSet {
    pub fn add(&self, p: usize) {
        self.0.fetch_or(1 << p, std::sync::atomic::Ordering::AcqRel);
    }

    pub fn add_all(&self) {
        self.0.store(u64::MAX, std::sync::atomic::Ordering::Release);
    }

    pub fn add_mask(&self, mask: u64) {
        self.0.fetch_or(mask, std::sync::atomic::Ordering::AcqRel);
    }

    /// Takes the set, leaving it empty: a bit per partition.
    pub fn take(&self) -> u64 {
        self.0.swap(0, std::sync::atomic::Ordering::AcqRel)
    }
}

/// A task's wake-up naming the partitions that have work: the waker adds its
/// partition and notifies; the task takes the set. Wake-ups while the task works
/// leave one permit and their bits, so none is lost and passes never overlap.
#[derive(Debug, Default)]
pub struct Wake {
    parts: PartSet,
    notify: tokio::sync::Notify,
}

impl Wake {
    pub fn wake(&self, p: usize) {
        self.parts.add(p);
        self.notify.notify_one();
    }

    pub fn wake_all(&self) {
        self.parts.add_all();
        self.notify.notify_one();
    }

    pub fn wake_mask(&self, mask: u64) {
        if mask != 0 {
            self.parts.add_mask(mask);
            self.notify.notify_one();
        }
    }

    pub async fn notified(&self) {
        self.notify.notified().await
    }

    /// The partitions woken since the last take.
    pub fn take(&self) -> u64 {
        self.parts.take()
    }
}

/// Which partitions a task works through, in turn, and when each of the others has
/// its next entry due (a lease of another node ending, say), so that the task sleeps
/// until the earliest instead of scanning.
#[derive(Debug)]
pub struct Turns {
    todo: std::collections::VecDeque<usize>,
    next_due: [Option<i64>; COUNT],
}

impl Turns {
    /// Every partition in turn: what a stopped node left may be anywhere.
    pub fn all() -> Turns {
        Turns {
            todo: (0..COUNT).collect(),
            next_due: [None; COUNT],
        }
    }

    /// None in turn.
    pub fn none() -> Turns {
        Turns {
            todo: Default::default(),
            next_due: [None; COUNT],
        }
    }

    /// Puts in turn the partitions of `mask` and those whose next entry is due by
    /// `now_ms`.
    pub fn add(&mut self, mask: u64, now_ms: i64) {
        for p in 0..COUNT {
            let due = self.next_due[p].is_some_and(|d| d <= now_ms);
            if due || mask & (1 << p) != 0 {
                self.next_due[p] = None;
                if !self.todo.contains(&p) {
                    self.todo.push_back(p);
                }
            }
        }
    }

    /// The partition whose turn it is.
    pub fn current(&self) -> Option<usize> {
        self.todo.front().copied()
    }

    /// Partition `p` has nothing due now; its next entry falls due at `next_ms`.
    pub fn done(&mut self, p: usize, next_ms: Option<i64>) {
        self.todo.retain(|q| *q != p);
        self.next_due[p] = next_ms;
    }

    /// Partition `p` has an entry due at `at_ms` (unless it is in turn already).
    pub fn due_at(&mut self, p: usize, at_ms: i64) {
        if !self.todo.contains(&p) {
            self.next_due[p] = Some(self.next_due[p].map_or(at_ms, |d| d.min(at_ms)));
        }
    }

    /// The earliest next due entry of the partitions not in turn.
    pub fn next_due(&self) -> Option<i64> {
        self.next_due.iter().flatten().min().copied()
    }
}

/// The partitions of a bit mask, in order.
pub fn members(mask: u64) -> impl Iterator<Item = usize> {
    (0..COUNT).filter(move |p| mask & (1 << p) != 0)
}

/// The cluster slot of a key whose hash tag is `tag`: CRC16/XMODEM mod 16,384, as
/// the Redis Cluster specification defines it.
pub fn slot(tag: &str) -> u16 {
    let mut crc: u16 = 0;
    for b in tag.bytes() {
        crc ^= u16::from(b) << 8;
        for _ in 0..8 {
            crc = if crc & 0x8000 != 0 {
                (crc << 1) ^ 0x1021
            } else {
                crc << 1
            };
        }
    }
    crc % 16_384
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_decimal_id_names_its_partition_and_a_hex_one_of_22_digits_stays_hex() {
        for p in [0, 1, 7, COUNT - 1] {
            let id = super::decimal_id(p, 0xABCDE, (1 << 38) - 1).to_string();
            assert!(id.len() <= 20 && id.parse::<u64>().is_ok(), "{id}");
            assert_eq!(super::of_message_id(&id), Some(p));
            assert_eq!(super::of_queue_id(&format!("{id}.n")), Some(p));
        }
        // 22 digits: the hex form (partition 01), not a decimal one.
        assert_eq!(super::of_message_id("0100000000000000000001"), Some(1));
        assert_eq!(super::of_message_id("123456789012345678901"), None);
    }

    use super::*;

    #[test]
    fn slot_is_the_cluster_specs_crc16() {
        // The specification's check value and two keys whose slots redis-cli shows.
        assert_eq!(slot("123456789"), 0x31C3);
        assert_eq!(slot("foo"), 12_182);
        assert_eq!(slot("bar"), 5_061);
    }

    #[test]
    fn a_message_id_names_its_partition() {
        assert_eq!(of_message_id("0F00000001000000000000"), Some(15));
        assert_eq!(of_message_id("0000000001000000000007"), Some(0));
        assert_eq!(
            of_message_id("1000000001000000000000"),
            None,
            "16 is no partition"
        );
        assert_eq!(
            of_message_id("0F0000000100000000000"),
            None,
            "21 characters"
        );
        assert_eq!(of_message_id("0G00000001000000000000"), None);
        assert_eq!(of_message_id(""), None);
    }

    #[test]
    fn a_key_names_its_partition() {
        for p in [0, 7, 15] {
            let key = format!("{}g:x", prefix("smppd:", p));
            assert_eq!(of_key("smppd:", &key), Some(p), "{key}");
        }
        assert_eq!(of_key("smppd:", "smppd:layout"), None);
        assert_eq!(of_key("smppd:", "other:{la2}:g:x"), None);
    }

    #[test]
    fn shares_hold_a_quarter_more_than_an_even_split() {
        assert_eq!(share(1), 1);
        assert_eq!(share(2560), 200);
        assert_eq!(share(100_000), 7813);
        assert!(share(u64::MAX) > 0);
    }

    #[test]
    fn part_sets_take_what_was_added() {
        let s = PartSet::default();
        s.add(3);
        s.add(15);
        assert_eq!(members(s.take()).collect::<Vec<_>>(), vec![3, 15]);
        assert_eq!(s.take(), 0);
        s.add_all();
        assert_eq!(members(s.take()).count(), COUNT);
    }

    #[test]
    fn turns_come_back_when_woken_or_due() {
        let mut t = Turns::none();
        assert_eq!(t.current(), None);
        t.add(1 << 5 | 1 << 9, 0);
        assert_eq!(t.current(), Some(5));
        t.done(5, Some(100));
        assert_eq!(t.current(), Some(9));
        t.done(9, None);
        assert_eq!((t.current(), t.next_due()), (None, Some(100)));
        t.add(0, 99);
        assert_eq!(t.current(), None, "not due yet");
        t.due_at(7, 50);
        assert_eq!(t.next_due(), Some(50));
        t.add(0, 100);
        assert_eq!((t.current(), t.next_due()), (Some(5), None));
        t.done(5, None);
        assert_eq!(t.current(), Some(7));
    }

    #[test]
    fn partition_i_has_slot_i_times_1024() {
        for (i, tag) in TAGS.iter().enumerate() {
            assert_eq!(usize::from(slot(tag)), i * 1024, "partition {i}, tag {tag}");
            assert_eq!(home_slot(i), slot(tag));
            assert!(
                !tag.contains(['{', '}']),
                "a tag is the text between braces"
            );
        }
        let mut sorted = TAGS.to_vec();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted.len(), COUNT);
    }
}
