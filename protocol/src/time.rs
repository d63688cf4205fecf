//! SMPP time formats (reference §7): absolute `YYMMDDhhmmsstnnp`, relative
//! `YYMMDDhhmmss000R`, and the delivery-receipt date `YYMMDDhhmm[ss]`.
//!
//! Year pivot: `YY` is always 20YY (2000–2099). The reference notes that Wireshark
//! uses 19YY for YY ≥ 38; a new SMSC has no 20th-century dates to read, and a single
//! rule makes [`format_absolute`] and [`parse_time`] exact inverses within 2000–2099.

use chrono::{DateTime, Datelike, Months, NaiveDate, TimeDelta, Timelike, Utc};
use thiserror::Error;

/// A parsed, non-NULL SMPP time field.
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmppTime {
    /// An instant, already converted to UTC (tenths of a second kept).
    Absolute(DateTime<Utc>),
    /// A period to add to the SMSC's current time.
    Relative {
        years: u32,
        months: u32,
        days: u32,
        hours: u32,
        minutes: u32,
        seconds: u32,
    },
}

/// Why a time string is invalid. It carries no command_status: the caller knows whether
/// the field was schedule_delivery_time (ESME_RINVSCHED) or validity_period
/// (ESME_RINVEXPIRY).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum TimeError {
    #[error("time field has length {len}; expected 0 or 16 characters")]
    BadLength { len: usize },
    #[error("time field: character {position} (0x{byte:02X}) is not a digit")]
    NotDigit { position: usize, byte: u8 },
    #[error("time field: last character 0x{byte:02X} is not '+', '-' or 'R'")]
    BadSuffix { byte: u8 },
    #[error("time field: {field} value {value} out of range")]
    OutOfRange { field: &'static str, value: u32 },
    #[error("time field: {year:04}-{month:02}-{day:02} is not a calendar date")]
    NotADate { year: i32, month: u32, day: u32 },
    #[error("time field: the instant is not representable")]
    Overflow,
}

impl SmppTime {
    /// The UTC instant this time stands for. A relative period is added to `now`
    /// calendar-aware, in UTC: years first, then months (each clamped to the end of the
    /// month, e.g. Jan 31 + 1 month = Feb 28/29), then days, hours, minutes and seconds
    /// as fixed durations. `None` if the result overflows.
    pub fn resolve(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        match *self {
            SmppTime::Absolute(t) => Some(t),
            SmppTime::Relative {
                years,
                months,
                days,
                hours,
                minutes,
                seconds,
            } => {
                let t = now.checked_add_months(Months::new(years.checked_mul(12)?))?;
                let t = t.checked_add_months(Months::new(months))?;
                let rest = TimeDelta::try_days(i64::from(days))?
                    + TimeDelta::try_hours(i64::from(hours))?
                    + TimeDelta::try_minutes(i64::from(minutes))?
                    + TimeDelta::try_seconds(i64::from(seconds))?;
                t.checked_add_signed(rest)
            }
        }
    }

    pub fn is_relative(&self) -> bool {
        matches!(self, SmppTime::Relative { .. })
    }
}

/// Parse a time field's characters (without, or with, its terminating NUL).
///
/// * empty (or a lone NUL) → `Ok(None)`, the NULL time;
/// * 16 characters ending in `+`/`-` → absolute: every other character a digit, month
///   1–12, a real calendar day, hour ≤ 23, minute and second ≤ 59, `nn` ≤ 48;
/// * 16 characters ending in `R` → relative: every other character a digit. The fields
///   are amounts, not clock positions, so any 00–99 is accepted; `t` and `nn` should be
///   0 but, as the reference says receivers do, they are ignored;
/// * anything else → error.
pub fn parse_time(field: &[u8]) -> Result<Option<SmppTime>, TimeError> {
    let field = field.strip_suffix(&[0]).unwrap_or(field);
    if field.is_empty() {
        return Ok(None);
    }
    let f: &[u8; 16] = field
        .try_into()
        .map_err(|_| TimeError::BadLength { len: field.len() })?;
    let suffix = f[15];
    if !matches!(suffix, b'+' | b'-' | b'R') {
        return Err(TimeError::BadSuffix { byte: suffix });
    }
    if let Some(position) = f[..15].iter().position(|b| !b.is_ascii_digit()) {
        return Err(TimeError::NotDigit {
            position,
            byte: f[position],
        });
    }
    let two = |i: usize| u32::from(f[i] - b'0') * 10 + u32::from(f[i + 1] - b'0');
    let (yy, mo, dd, hh, mi, ss) = (two(0), two(2), two(4), two(6), two(8), two(10));
    if suffix == b'R' {
        return Ok(Some(SmppTime::Relative {
            years: yy,
            months: mo,
            days: dd,
            hours: hh,
            minutes: mi,
            seconds: ss,
        }));
    }
    let tenths = u32::from(f[12] - b'0');
    let nn = two(13);
    if nn > 48 {
        return Err(TimeError::OutOfRange {
            field: "UTC offset (quarter hours)",
            value: nn,
        });
    }
    let local = naive(yy, mo, dd, hh, mi, ss, tenths * 100)?;
    let offset = TimeDelta::minutes(i64::from(nn) * 15);
    let utc = if suffix == b'+' {
        local.checked_sub_signed(offset)
    } else {
        local.checked_add_signed(offset)
    }
    .ok_or(TimeError::Overflow)?;
    Ok(Some(SmppTime::Absolute(utc.and_utc())))
}

#[allow(clippy::too_many_arguments)]
fn naive(
    yy: u32,
    mo: u32,
    dd: u32,
    hh: u32,
    mi: u32,
    ss: u32,
    millis: u32,
) -> Result<chrono::NaiveDateTime, TimeError> {
    for (field, value, lo, hi) in [
        ("month", mo, 1, 12),
        ("day", dd, 1, 31),
        ("hour", hh, 0, 23),
        ("minute", mi, 0, 59),
        ("second", ss, 0, 59),
    ] {
        if !(lo..=hi).contains(&value) {
            return Err(TimeError::OutOfRange { field, value });
        }
    }
    // yy < 100, so the year always fits.
    let year = 2000 + yy as i32;
    let date = NaiveDate::from_ymd_opt(year, mo, dd).ok_or(TimeError::NotADate {
        year,
        month: mo,
        day: dd,
    })?;
    date.and_hms_milli_opt(hh, mi, ss, millis)
        .ok_or(TimeError::Overflow)
}

/// Format a UTC instant as an absolute SMPP time `YYMMDDhhmmsst00+` (offset 0), e.g.
/// for query_sm_resp final_date. Sub-tenth precision is truncated. Only years
/// 2000–2099 round-trip through [`parse_time`] (20YY pivot).
pub fn format_absolute(t: DateTime<Utc>) -> String {
    let tenths = (t.nanosecond() % 1_000_000_000) / 100_000_000;
    format!(
        "{:02}{:02}{:02}{:02}{:02}{:02}{}00+",
        t.year().rem_euclid(100),
        t.month(),
        t.day(),
        t.hour(),
        t.minute(),
        t.second().min(59),
        tenths
    )
}

/// Format a delivery-receipt date `YYMMDDhhmm` (UTC; seconds dropped).
pub fn format_receipt_date(t: DateTime<Utc>) -> String {
    format!(
        "{:02}{:02}{:02}{:02}{:02}",
        t.year().rem_euclid(100),
        t.month(),
        t.day(),
        t.hour(),
        t.minute()
    )
}

/// Parse a delivery-receipt date, `YYMMDDhhmm` or `YYMMDDhhmmss` (some SMSCs add
/// seconds), read as UTC with the 20YY pivot.
pub fn parse_receipt_date(s: &str) -> Result<DateTime<Utc>, TimeError> {
    let b = s.as_bytes();
    if b.len() != 10 && b.len() != 12 {
        return Err(TimeError::BadLength { len: b.len() });
    }
    if let Some(position) = b.iter().position(|c| !c.is_ascii_digit()) {
        return Err(TimeError::NotDigit {
            position,
            byte: b[position],
        });
    }
    let two = |i: usize| u32::from(b[i] - b'0') * 10 + u32::from(b[i + 1] - b'0');
    let ss = if b.len() == 12 { two(10) } else { 0 };
    Ok(naive(two(0), two(2), two(4), two(6), two(8), ss, 0)?.and_utc())
}
