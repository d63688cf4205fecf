//! Simulated outcomes for testers (`[[simulate]]` profiles, route target
//! `simulate:<name>`): a message routed to a profile is not delivered anywhere; after
//! the profile's delay it ends in a state picked by weight, and its receipts and
//! outcome document say so. Pure: the pick is a function of the profile's seed and the
//! message (its message_id, or for a multi-part message its group key), so the same
//! message gets the same outcome on every node and every run.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use smpp_protocol::receipt::ReceiptStat;

/// One weighted final state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub stat: ReceiptStat,
    /// The receipt's `err:` and the query_sm error_code.
    pub err: u32,
    pub weight: u32,
}

/// A submit refused at a given rate.
#[derive(Debug, Clone, PartialEq)]
pub struct SubmitError {
    pub status: u32,
    /// Out of 100; fractions allowed (0.5 = one in 200).
    pub percent: f64,
}

/// One `[[simulate]]` profile.
#[derive(Debug)]
pub struct Profile {
    pub name: String,
    pub seed: u64,
    pub outcomes: Vec<Outcome>,
    /// Uniform in `delay.0 ..= delay.1`.
    pub delay: (Duration, Duration),
    pub submit_errors: Vec<SubmitError>,
    /// Send an ENROUTE intermediate notification (esm_class 0x20) when a segment is
    /// accepted, to ESMEs that ask for one (registered_delivery bit 4).
    pub intermediate: bool,
    /// Submits this profile saw on this node: the draw of submit errors.
    submits: AtomicU64,
}

/// What a simulated message ends as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Picked {
    pub stat: ReceiptStat,
    pub err: u32,
    pub delay_ms: i64,
}

/// splitmix64: a well-mixed 64-bit hash step, so neighbouring ids draw independently.
fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// FNV-1a of the key, then mixed with the seed.
fn draw(seed: u64, key: &str, salt: u64) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in key.as_bytes() {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    mix(h ^ mix(seed ^ salt))
}

impl Profile {
    pub fn new(
        name: String,
        seed: u64,
        outcomes: Vec<Outcome>,
        delay: (Duration, Duration),
        submit_errors: Vec<SubmitError>,
        intermediate: bool,
    ) -> Profile {
        Profile {
            name,
            seed,
            outcomes,
            delay,
            submit_errors,
            intermediate,
            submits: AtomicU64::new(0),
        }
    }

    /// The outcome of the message `key` names (a message_id or a group key).
    pub fn pick(&self, key: &str) -> Picked {
        let total: u64 = self.outcomes.iter().map(|o| u64::from(o.weight)).sum();
        let mut at = draw(self.seed, key, 1) % total.max(1);
        let mut chosen = self.outcomes.first();
        for o in &self.outcomes {
            if at < u64::from(o.weight) {
                chosen = Some(o);
                break;
            }
            at -= u64::from(o.weight);
        }
        let (lo, hi) = (
            self.delay.0.as_millis() as u64,
            self.delay.1.as_millis() as u64,
        );
        let delay = lo + draw(self.seed, key, 2) % (hi.saturating_sub(lo) + 1);
        Picked {
            stat: chosen.map_or(ReceiptStat::Delivrd, |o| o.stat),
            err: chosen.map_or(0, |o| o.err),
            delay_ms: delay as i64,
        }
    }

    /// A status to refuse this submit with, at the profile's rates (the n-th submit
    /// of this profile on this node draws with n).
    pub fn submit_error(&self) -> Option<u32> {
        if self.submit_errors.is_empty() {
            return None;
        }
        let n = self.submits.fetch_add(1, Ordering::Relaxed);
        let roll = (draw(self.seed, "submit", n) % 1_000_000) as f64 / 10_000.0;
        let mut acc = 0.0;
        for e in &self.submit_errors {
            acc += e.percent;
            if roll < acc {
                return Some(e.status);
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn profile(outcomes: Vec<Outcome>, errors: Vec<SubmitError>) -> Profile {
        Profile::new(
            "p".into(),
            7,
            outcomes,
            (Duration::from_millis(100), Duration::from_millis(300)),
            errors,
            false,
        )
    }

    fn o(stat: ReceiptStat, err: u32, weight: u32) -> Outcome {
        Outcome { stat, err, weight }
    }

    #[test]
    fn the_same_message_gets_the_same_outcome_and_weights_hold() {
        let p = profile(
            vec![
                o(ReceiptStat::Delivrd, 0, 90),
                o(ReceiptStat::Undeliv, 34, 10),
            ],
            Vec::new(),
        );
        assert_eq!(
            p.pick("0100000001000000000001"),
            p.pick("0100000001000000000001")
        );
        let undeliv = (0..10_000)
            .filter(|i| p.pick(&format!("{i:022x}")).stat == ReceiptStat::Undeliv)
            .count();
        assert!((800..1200).contains(&undeliv), "{undeliv}");
        // 90/8/2 over 10,000 messages: each weight within 2 points.
        let p3 = profile(
            vec![
                o(ReceiptStat::Delivrd, 0, 90),
                o(ReceiptStat::Undeliv, 34, 8),
                o(ReceiptStat::Rejectd, 11, 2),
            ],
            Vec::new(),
        );
        for (stat, want) in [
            (ReceiptStat::Delivrd, 9000),
            (ReceiptStat::Undeliv, 800),
            (ReceiptStat::Rejectd, 200),
        ] {
            let n = (0..10_000)
                .filter(|i| p3.pick(&format!("{i:022X}")).stat == stat)
                .count();
            assert!(
                n.abs_diff(want) <= 200,
                "{stat:?}: {n} of 10,000, want {want} ± 200"
            );
        }
        for i in 0..1000 {
            let d = p.pick(&format!("{i}")).delay_ms;
            assert!((100..=300).contains(&d), "{d}");
        }
    }

    #[test]
    fn submit_errors_come_at_their_rate() {
        let p = profile(
            vec![o(ReceiptStat::Delivrd, 0, 1)],
            vec![SubmitError {
                status: 0x58,
                percent: 5.0,
            }],
        );
        let refused = (0..20_000).filter(|_| p.submit_error().is_some()).count();
        assert!((800..1200).contains(&refused), "{refused}");
    }
}
