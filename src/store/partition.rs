//! Partitions of the store: the unit a Redis Cluster places on its primaries.
//!
//! Every key of a message lives in one partition, named with the partition's hash
//! tag (`{tag}`), so that each state change is one script on one cluster slot. The
//! tags are chosen, not derived: partition `i` of [`COUNT`] hashes to slot `i · 256`,
//! so the partitions spread evenly over the 16,384 slots and over any number of
//! primaries that split the slots evenly (naive tags `p0..p63` land 20/20/24 on three
//! primaries: ../shared/CLUSTER_NOTES.md). Why 64: docs/design/store-v2.md.

/// Partitions of a store.
pub const COUNT: usize = 64;

/// The hash tag of each partition: `slot(TAGS[i]) == i * 256`
/// (found by search; checked by the tests below and against `CLUSTER KEYSLOT`).
pub const TAGS: [&str; COUNT] = [
    "la2", "nbd", "ms3", "ope", "dlj", "3el", "mws", "g95", "qf7", "bgq", "pt6", "cup", "qbw",
    "bc1", "arf", "cq0", "lp0", "nsf", "mb1", "06", "ltp", "3tn", "eoi", "4v", "h85", "bvs", "pe4",
    "cdr", "qsu", "br3", "acd", "6jb", "fjl", "1cj", "gxm", "0qk", "ng4", "dmz", "ou5", "mvc",
    "bfa", "5og", "c0h", "aw6", "jk9", "hho", "ky8", "asv", "nrv", "dx8", "gio", "ej9", "nv6",
    "d8p", "qn", "eny", "bwc", "abll", "ceb", "af4", "sq3", "hym", "rc2", "abt",
];

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
    use super::*;

    #[test]
    fn slot_is_the_cluster_specs_crc16() {
        // The specification's check value and two keys whose slots redis-cli shows.
        assert_eq!(slot("123456789"), 0x31C3);
        assert_eq!(slot("foo"), 12_182);
        assert_eq!(slot("bar"), 5_061);
    }

    #[test]
    fn partition_i_has_slot_i_times_256() {
        for (i, tag) in TAGS.iter().enumerate() {
            assert_eq!(usize::from(slot(tag)), i * 256, "partition {i}, tag {tag}");
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
