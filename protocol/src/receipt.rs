//! Delivery receipt text carried in a receipt deliver_sm's short_message
//! (SMPP 3.4 Appendix B, reference §9.2):
//!
//! ```text
//! id:IIIIIIIIII sub:SSS dlvrd:DDD submit date:YYMMDDhhmm done date:YYMMDDhhmm stat:DDDDDDD err:E text:....
//! ```

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use thiserror::Error;

use crate::gsm7;
use crate::text::{encode_text_lossy_in, DefaultAlphabet, TextContext, DC_DEFAULT_GSM};
use crate::time::{format_receipt_date, parse_receipt_date, TimeError};

/// The data_coding of a receipt deliver_sm built from
/// [`DeliveryReceipt::to_short_message`]: 0, GSM 03.38 default alphabet, unpacked
/// (reference §6.3, §8.6). A receiver reads its short_message by this value, so the
/// two must go together.
pub const DATA_CODING: u8 = DC_DEFAULT_GSM;

/// The `stat:` value, with its message_state (reference §6.6).
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ReceiptStat {
    Delivrd,
    Expired,
    Deleted,
    Undeliv,
    Acceptd,
    Unknown,
    Rejectd,
    /// Not in 3.4 Table B-2 (final states only); used de facto in intermediate
    /// notifications.
    Enroute,
}

impl ReceiptStat {
    pub const ALL: [ReceiptStat; 8] = [
        ReceiptStat::Delivrd,
        ReceiptStat::Expired,
        ReceiptStat::Deleted,
        ReceiptStat::Undeliv,
        ReceiptStat::Acceptd,
        ReceiptStat::Unknown,
        ReceiptStat::Rejectd,
        ReceiptStat::Enroute,
    ];

    /// The 7-character `stat:` text.
    pub fn as_str(self) -> &'static str {
        match self {
            ReceiptStat::Delivrd => "DELIVRD",
            ReceiptStat::Expired => "EXPIRED",
            ReceiptStat::Deleted => "DELETED",
            ReceiptStat::Undeliv => "UNDELIV",
            ReceiptStat::Acceptd => "ACCEPTD",
            ReceiptStat::Unknown => "UNKNOWN",
            ReceiptStat::Rejectd => "REJECTD",
            ReceiptStat::Enroute => "ENROUTE",
        }
    }

    /// The message_state value (query_sm_resp, message_state TLV 0x0427).
    pub fn message_state(self) -> u8 {
        match self {
            ReceiptStat::Enroute => 1,
            ReceiptStat::Delivrd => 2,
            ReceiptStat::Expired => 3,
            ReceiptStat::Deleted => 4,
            ReceiptStat::Undeliv => 5,
            ReceiptStat::Acceptd => 6,
            ReceiptStat::Unknown => 7,
            ReceiptStat::Rejectd => 8,
        }
    }

    /// Inverse of [`ReceiptStat::message_state`]; `None` for 0, 9 and above (not 3.4).
    pub fn from_message_state(state: u8) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.message_state() == state)
    }

    /// Whether the state is final (everything except ENROUTE; UNKNOWN counts as final
    /// for a receipt, since it ends the SMSC's tracking).
    pub fn is_final(self) -> bool {
        self != ReceiptStat::Enroute
    }
}

impl fmt::Display for ReceiptStat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ReceiptStat {
    type Err = ReceiptError;

    /// Case-insensitive match of the 7-character stat text.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|st| st.as_str().eq_ignore_ascii_case(s))
            .ok_or_else(|| ReceiptError::UnknownStat(s.to_owned()))
    }
}

/// Why receipt text could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ReceiptError {
    #[error("receipt: missing field `{0}`")]
    MissingField(&'static str),
    #[error("receipt: field `{field}` value {value:?} is not a number")]
    BadNumber { field: &'static str, value: String },
    #[error("receipt: field `{field}`: {source}")]
    BadDate {
        field: &'static str,
        source: TimeError,
    },
    #[error("receipt: unknown stat {0:?}")]
    UnknownStat(String),
}

/// One delivery receipt.
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryReceipt {
    /// The message_id from submit_sm_resp.
    pub id: String,
    pub sub: u32,
    pub dlvrd: u32,
    pub submit_date: DateTime<Utc>,
    pub done_date: DateTime<Utc>,
    pub stat: ReceiptStat,
    pub err: u32,
    /// Start of the original message; [`DeliveryReceipt::to_text`] writes at most 20 chars.
    pub text: String,
}

const LABELS: [&str; 8] = [
    "id:",
    "sub:",
    "dlvrd:",
    "submit date:",
    "done date:",
    "stat:",
    "err:",
    "text:",
];

impl DeliveryReceipt {
    /// The Appendix B text. `sub`, `dlvrd` and `err` are zero-padded to 3 digits (wider
    /// numbers are written in full), dates are `YYMMDDhhmm` in UTC, the label is
    /// lowercase `text:` and carries the first 20 characters of `text`.
    pub fn to_text(&self) -> String {
        let text: String = self.text.chars().take(20).collect();
        format!(
            "id:{} sub:{:03} dlvrd:{:03} submit date:{} done date:{} stat:{} err:{:03} text:{}",
            self.id,
            self.sub,
            self.dlvrd,
            format_receipt_date(self.submit_date),
            format_receipt_date(self.done_date),
            self.stat,
            self.err,
            text
        )
    }

    /// [`DeliveryReceipt::to_text`] as short_message octets for data_coding
    /// [`DATA_CODING`]: GSM 03.38 unpacked, one septet per octet (every octet < 0x80),
    /// extension characters (`€`, `[`, `{`, …) as `ESC code`, and `?` for each
    /// character GSM 03.38 cannot hold (`世` → `?`). The Appendix B labels and values
    /// are ASCII letters, digits, `:` and spaces, which GSM 03.38 holds at the same
    /// codes, so only `text:` (and an unusual id) can change.
    pub fn to_short_message(&self) -> Vec<u8> {
        gsm7::encode_unpacked_lossy(&self.to_text())
    }

    /// [`DeliveryReceipt::to_short_message`] for a receiver whose data_coding 0 means
    /// `alphabet`: GSM 03.38 as above, or ASCII / Latin-1 octets with `?` for each
    /// character the alphabet cannot hold.
    pub fn to_short_message_in(&self, alphabet: DefaultAlphabet) -> Vec<u8> {
        let ctx = TextContext {
            default_alphabet: alphabet,
            ..TextContext::default()
        };
        // data_coding 0 is encodable in every alphabet: this never fails.
        encode_text_lossy_in(DATA_CODING, &self.to_text(), ctx).unwrap_or_default()
    }

    /// Parse receipt text by label (labels contain spaces, so splitting on spaces would
    /// not work). Labels match case-insensitively and must start the text or follow
    /// whitespace. Each value runs to the next whitespace, except `text:`, which takes
    /// the rest. Labels are searched only before `text:`, so the message text may hold
    /// anything. `text:` may be missing (empty text); every other field is required.
    /// Dates may be `YYMMDDhhmm` or `YYMMDDhhmmss`.
    pub fn parse(s: &str) -> Result<Self, ReceiptError> {
        let lower = s.to_ascii_lowercase();
        let text_at = find_label(&lower, "text:", 0);
        let head_end = text_at.unwrap_or(s.len());
        let value = |label: &'static str| -> Result<&str, ReceiptError> {
            let at = find_label(&lower[..head_end], label, 0)
                .ok_or(ReceiptError::MissingField(label))?;
            let rest = &s[at + label.len()..head_end];
            Ok(rest.split_whitespace().next().unwrap_or(""))
        };
        let number = |label: &'static str| -> Result<u32, ReceiptError> {
            let v = value(label)?;
            v.parse().map_err(|_| ReceiptError::BadNumber {
                field: label,
                value: v.to_owned(),
            })
        };
        let date = |label: &'static str| -> Result<DateTime<Utc>, ReceiptError> {
            parse_receipt_date(value(label)?).map_err(|source| ReceiptError::BadDate {
                field: label,
                source,
            })
        };
        let text = text_at
            .map(|at| s[at + "text:".len()..].to_owned())
            .unwrap_or_default();
        Ok(DeliveryReceipt {
            id: value(LABELS[0])?.to_owned(),
            sub: number(LABELS[1])?,
            dlvrd: number(LABELS[2])?,
            submit_date: date(LABELS[3])?,
            done_date: date(LABELS[4])?,
            stat: value(LABELS[5])?.parse()?,
            err: number(LABELS[6])?,
            text,
        })
    }
}

/// First position of `label` in `hay` (already lowercase) at or after `from` that starts
/// the text or follows whitespace.
fn find_label(hay: &str, label: &str, from: usize) -> Option<usize> {
    let mut start = from;
    while let Some(rel) = hay.get(start..)?.find(label) {
        let at = start + rel;
        if at == 0 || hay[..at].ends_with(char::is_whitespace) {
            return Some(at);
        }
        start = at + 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::find_label;

    #[test]
    fn labels_match_only_at_word_starts() {
        assert_eq!(find_label("id:1 xid:2", "id:", 0), Some(0));
        assert_eq!(find_label("xid:2 id:1", "id:", 0), Some(6));
        assert_eq!(find_label("é\tid:1", "id:", 0), Some(3));
        assert_eq!(find_label("xid:2", "id:", 0), None);
    }
}
