//! Short message_ids (`message_id_format = "short"`): at most 8 characters, for
//! SMPP 3.3 clients (whose message_id is a C-Octet String of 9 octets, NUL included).
//!
//! An id is exactly 8 characters: an uppercase letter, then 7 base-36 digits
//! (`0-9A-Z`). Its value `v < 26 · 36^7` (≈ 2^40.9) is `partition · SPAN + seq`, so
//! the id names its partition (the store's invariant: query, cancel, replace and
//! receipts go to it from the id alone). The leading letter keeps the form apart from
//! the others: a decimal id is digits only, a hex id 22 characters.
//!
//! 40.9 bits cannot hold a node epoch and a counter wide enough, so `seq` comes from
//! one store-wide counter, `P:short_seq`, which a node reserves in blocks of
//! [`BLOCK`] (one `INCRBY` per block). Ids repeat only after [`SPAN`] (3.2 × 10^10)
//! short ids store-wide — over a week at 50,000/s of short-id traffic alone, and
//! receipts live far less. A node that stops wastes what is left of its block.
//! Why this form: docs/interop.md ("Short ids").

use super::COUNT;
use crate::store::StoreError;

/// Characters of a short id.
pub const LEN: usize = 8;

/// 36^7: the values the 7 digits after the letter hold.
const TAIL: u64 = 36u64.pow(7);

/// Sequence numbers per partition: `26 · 36^7 / 16` (exact: 36^7 is 2^14 · 3^14).
pub const SPAN: u64 = 26 * TAIL / COUNT as u64;
const _: () = assert!((26 * TAIL) % COUNT as u64 == 0);

/// Sequence numbers a node reserves at a time.
pub const BLOCK: u64 = 4096;

const DIGITS: &[u8; 36] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ";

/// The short id of sequence number `seq` (taken modulo [`SPAN`]) in partition `p`.
pub fn encode(p: usize, seq: u64) -> String {
    let mut v = (p as u64 % COUNT as u64) * SPAN + seq % SPAN;
    let mut out = [0u8; LEN];
    out[0] = b'A' + (v / TAIL) as u8;
    v %= TAIL;
    for slot in out[1..].iter_mut().rev() {
        *slot = DIGITS[(v % 36) as usize];
        v /= 36;
    }
    out.iter().map(|b| char::from(*b)).collect()
}

/// The partition a short id names, or `None` when `id` is not of the form.
pub fn partition_of(id: &str) -> Option<usize> {
    let b = id.as_bytes();
    if b.len() != LEN || !b[0].is_ascii_uppercase() {
        return None;
    }
    let mut v = u64::from(b[0] - b'A');
    for c in &b[1..] {
        let d = match c {
            b'0'..=b'9' => c - b'0',
            b'A'..=b'Z' => c - b'A' + 10,
            _ => return None,
        };
        v = v * 36 + u64::from(d);
    }
    Some((v / SPAN) as usize)
}

/// This node's reserved block of `P:short_seq`: `next..end`.
#[derive(Debug, Default)]
pub struct Blocks(tokio::sync::Mutex<(u64, u64)>);

impl Blocks {
    /// The next sequence number, reserving a block with `INCRBY <key> BLOCK` when
    /// this node's is used up. Concurrent submits wait for that one call.
    pub async fn next<C: redis::aio::ConnectionLike>(
        &self,
        conn: &mut C,
        key: &str,
    ) -> Result<u64, StoreError> {
        let mut b = self.0.lock().await;
        if b.0 == b.1 {
            let end: u64 = redis::cmd("INCRBY")
                .arg(key)
                .arg(BLOCK)
                .query_async(conn)
                .await?;
            *b = (end - BLOCK, end);
        }
        b.0 += 1;
        Ok(b.0 - 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::redis::partition::of_message_id;

    #[test]
    fn a_short_id_is_8_characters_a_letter_first_and_names_its_partition() {
        for p in [0, 1, 7, COUNT - 1] {
            for seq in [0, 1, 35, 36, BLOCK, SPAN - 1, SPAN, u64::MAX] {
                let id = encode(p, seq);
                assert_eq!(id.len(), LEN, "{id}");
                assert!(id.as_bytes()[0].is_ascii_uppercase(), "{id}");
                assert!(
                    id.bytes()
                        .all(|b| b.is_ascii_digit() || b.is_ascii_uppercase()),
                    "{id}"
                );
                assert_eq!(partition_of(&id), Some(p), "{id}");
                assert_eq!(of_message_id(&id), Some(p), "{id}");
            }
        }
        assert_eq!(encode(0, 0), "A0000000");
        assert_eq!(encode(COUNT - 1, SPAN - 1), "ZZZZZZZZ");
    }

    #[test]
    fn neighbouring_sequence_numbers_give_distinct_ids_until_the_span_wraps() {
        let ids: std::collections::HashSet<String> =
            (SPAN - 1000..SPAN + 1000).map(|s| encode(5, s)).collect();
        assert_eq!(ids.len(), 2000);
        assert_eq!(encode(5, 7), encode(5, SPAN + 7), "repeats after SPAN");
        assert_ne!(encode(5, 7), encode(6, 7));
    }

    #[test]
    fn other_forms_are_not_short_ids() {
        for id in [
            "a0000000",
            "A000000",
            "A00000000",
            "10000000",
            "A000000-",
            "",
        ] {
            assert_eq!(partition_of(id), None, "{id}");
        }
        // Digits only stay decimal ids, 22 hex digits a hex id.
        assert_eq!(of_message_id("12345678"), Some(0));
        assert_eq!(of_message_id("0F00000001000000000000"), Some(15));
    }
}
