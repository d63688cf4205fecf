//! SMPP time formats (reference §7) and delivery receipt text (reference §9).
#![allow(clippy::unwrap_used)]

use chrono::{DateTime, Datelike, NaiveDate, TimeZone, Utc};
use proptest::prelude::*;
use smpp_protocol::receipt::{DeliveryReceipt, ReceiptError, ReceiptStat};
use smpp_protocol::time::{
    format_absolute, format_receipt_date, parse_receipt_date, parse_time, SmppTime, TimeError,
};

fn utc(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

fn abs(s: &str) -> DateTime<Utc> {
    match parse_time(s.as_bytes()).unwrap().unwrap() {
        SmppTime::Absolute(t) => t,
        other => panic!("{s}: expected absolute, got {other:?}"),
    }
}

fn rel(s: &str) -> SmppTime {
    let t = parse_time(s.as_bytes()).unwrap().unwrap();
    assert!(t.is_relative(), "{s}");
    t
}

#[test]
fn reference_absolute_examples() {
    assert_eq!(abs("240315143000004+"), utc("2024-03-15T13:30:00.0Z"));
    assert_eq!(abs("240101003000508-"), utc("2024-01-01T02:30:00.5Z"));
    assert_eq!(abs("240301013000032+"), utc("2024-02-29T17:30:00.0Z"));
    assert_eq!(abs("250615120000000+"), utc("2025-06-15T12:00:00.0Z"));
    // Reference: 1999-12-31 (19YY pivot) → 2000-01-01T11:59:59.9Z. We pivot 20YY, so the
    // same arithmetic (−12 h behind, crossing a year) lands a century later.
    assert_eq!(abs("991231235959948-"), utc("2100-01-01T11:59:59.9Z"));
}

#[test]
fn reference_relative_examples() {
    let t = rel("000002120000000R");
    assert_eq!(
        t,
        SmppTime::Relative {
            years: 0,
            months: 0,
            days: 2,
            hours: 12,
            minutes: 0,
            seconds: 0
        }
    );
    let now = utc("2024-03-15T12:00:00Z");
    assert_eq!(t.resolve(now), Some(utc("2024-03-18T00:00:00Z")));
    assert_eq!((t.resolve(now).unwrap() - now).num_seconds(), 216_000);

    let t = rel("000000000130000R");
    assert_eq!((t.resolve(now).unwrap() - now).num_seconds(), 90);

    let t = rel("010203040506000R");
    assert_eq!(
        t,
        SmppTime::Relative {
            years: 1,
            months: 2,
            days: 3,
            hours: 4,
            minutes: 5,
            seconds: 6
        }
    );
    assert_eq!(
        t.resolve(utc("2024-01-31T00:00:00Z")),
        Some(utc("2025-04-03T04:05:06Z"))
    );

    // [5.0]'s example.
    assert_eq!(
        rel("020610233429000R"),
        SmppTime::Relative {
            years: 2,
            months: 6,
            days: 10,
            hours: 23,
            minutes: 34,
            seconds: 29
        }
    );
}

#[test]
fn relative_adds_years_then_months_clamping_month_ends() {
    // 2024-02-29 + 1 y → 2025-02-28, then + 1 mo → 2025-03-28 (not 03-29).
    let t = rel("010100000000000R");
    assert_eq!(
        t.resolve(utc("2024-02-29T10:00:00Z")),
        Some(utc("2025-03-28T10:00:00Z"))
    );
    let t = rel("000100000000000R");
    assert_eq!(
        t.resolve(utc("2024-01-31T00:00:00Z")),
        Some(utc("2024-02-29T00:00:00Z"))
    );
    // Amounts are not clock positions: 99 hours is fine.
    let t = rel("000000990000000R");
    assert_eq!(
        t.resolve(utc("2024-01-01T00:00:00Z")),
        Some(utc("2024-01-05T03:00:00Z"))
    );
    // t and nn of a relative time should be 0; like other receivers we ignore them.
    assert_eq!(rel("000000000130912R"), rel("000000000130000R"));
    // Absolute ignores now.
    let a = parse_time(b"250615120000000+").unwrap().unwrap();
    assert_eq!(
        a.resolve(utc("1990-01-01T00:00:00Z")),
        Some(utc("2025-06-15T12:00:00Z"))
    );
}

#[test]
fn null_and_nul_terminated_fields() {
    assert_eq!(parse_time(b"").unwrap(), None);
    assert_eq!(parse_time(b"\0").unwrap(), None);
    assert_eq!(
        parse_time(b"240315143000004+\0").unwrap(),
        Some(SmppTime::Absolute(utc("2024-03-15T13:30:00Z")))
    );
}

#[test]
fn invalid_time_strings_are_errors_naming_the_problem() {
    let e = |s: &[u8]| parse_time(s).unwrap_err();
    assert_eq!(e(b"24031514300000+"), TimeError::BadLength { len: 15 });
    assert_eq!(e(b"2403151430000040+"), TimeError::BadLength { len: 17 });
    assert_eq!(e(b"240315143000004X"), TimeError::BadSuffix { byte: b'X' });
    assert_eq!(e(b"240315143000004r"), TimeError::BadSuffix { byte: b'r' });
    assert_eq!(
        e(b"24031514300a004+"),
        TimeError::NotDigit {
            position: 11,
            byte: b'a'
        }
    );
    assert_eq!(
        e(b"2403151430 0004+"),
        TimeError::NotDigit {
            position: 10,
            byte: b' '
        }
    );
    assert_eq!(
        e(b"00000000000000+R"),
        TimeError::NotDigit {
            position: 14,
            byte: b'+'
        }
    );
    assert_eq!(
        e(b"241315143000004+"),
        TimeError::OutOfRange {
            field: "month",
            value: 13
        }
    );
    assert_eq!(
        e(b"240015143000004+"),
        TimeError::OutOfRange {
            field: "month",
            value: 0
        }
    );
    assert_eq!(
        e(b"240300143000004+"),
        TimeError::OutOfRange {
            field: "day",
            value: 0
        }
    );
    assert_eq!(
        e(b"240332143000004+"),
        TimeError::OutOfRange {
            field: "day",
            value: 32
        }
    );
    assert_eq!(
        e(b"240315243000004+"),
        TimeError::OutOfRange {
            field: "hour",
            value: 24
        }
    );
    assert_eq!(
        e(b"240315146000004+"),
        TimeError::OutOfRange {
            field: "minute",
            value: 60
        }
    );
    assert_eq!(
        e(b"240315143060004+"),
        TimeError::OutOfRange {
            field: "second",
            value: 60
        }
    );
    assert!(matches!(
        e(b"240315143000049+"),
        TimeError::OutOfRange { value: 49, .. }
    ));
    assert_eq!(
        e(b"230229120000000+"),
        TimeError::NotADate {
            year: 2023,
            month: 2,
            day: 29
        }
    );
    assert_eq!(
        e(b"240431120000000-"),
        TimeError::NotADate {
            year: 2024,
            month: 4,
            day: 31
        }
    );
    assert!(parse_time(b"240229120000000+").is_ok());
    assert!(e(b"241315143000004+").to_string().contains("month"));
    assert!(e(b"24031514300a004+").to_string().contains("not a digit"));
}

#[test]
fn formats_absolute_and_receipt_dates() {
    let t = utc("2024-03-15T14:30:05.75Z");
    assert_eq!(format_absolute(t), "240315143005700+");
    assert_eq!(format_receipt_date(t), "2403151430");
    assert_eq!(
        format_absolute(utc("2009-01-02T03:04:05Z")),
        "090102030405000+"
    );
}

#[test]
fn parses_receipt_dates_with_and_without_seconds() {
    assert_eq!(
        parse_receipt_date("2403151430").unwrap(),
        utc("2024-03-15T14:30:00Z")
    );
    assert_eq!(
        parse_receipt_date("240315143059").unwrap(),
        utc("2024-03-15T14:30:59Z")
    );
    assert_eq!(
        parse_receipt_date("24031514").unwrap_err(),
        TimeError::BadLength { len: 8 }
    );
    assert_eq!(
        parse_receipt_date("24031514301").unwrap_err(),
        TimeError::BadLength { len: 11 }
    );
    assert!(matches!(
        parse_receipt_date("24031514x0"),
        Err(TimeError::NotDigit { position: 8, .. })
    ));
    assert!(matches!(
        parse_receipt_date("2402301430"),
        Err(TimeError::NotADate { .. })
    ));
}

// ---- delivery receipts ----

const REFERENCE_RECEIPT: &str = "id:1A2B3C4D sub:001 dlvrd:001 submit date:2403151430 done date:2403151431 stat:DELIVRD err:000 text:Hello";

fn sample() -> DeliveryReceipt {
    DeliveryReceipt {
        id: "1A2B3C4D".into(),
        sub: 1,
        dlvrd: 1,
        submit_date: utc("2024-03-15T14:30:00Z"),
        done_date: utc("2024-03-15T14:31:00Z"),
        stat: ReceiptStat::Delivrd,
        err: 0,
        text: "Hello".into(),
    }
}

#[test]
fn parses_the_reference_receipt_and_formats_it_back() {
    let r = DeliveryReceipt::parse(REFERENCE_RECEIPT).unwrap();
    assert_eq!(r, sample());
    assert_eq!(r.to_text(), REFERENCE_RECEIPT);
    assert_eq!(r.stat.message_state(), 2);
}

#[test]
fn to_text_pads_numbers_and_keeps_twenty_chars_of_text() {
    let r = DeliveryReceipt {
        sub: 7,
        dlvrd: 0,
        err: 12,
        stat: ReceiptStat::Undeliv,
        text: "ÀBCDEFGHIJKLMNOPQRSTUVWXYZ".into(),
        ..sample()
    };
    let s = r.to_text();
    assert!(s.contains(" sub:007 dlvrd:000 "), "{s}");
    assert!(
        s.contains(" stat:UNDELIV err:012 text:ÀBCDEFGHIJKLMNOPQRST"),
        "{s}"
    );
    assert!(s.ends_with("text:ÀBCDEFGHIJKLMNOPQRST"), "{s}");
}

#[test]
fn parse_accepts_capital_text_label_missing_text_seconds_and_any_order() {
    let r = DeliveryReceipt::parse(
        "id:abc-123 sub:001 dlvrd:000 submit date:240315143012 done date:240315143159 stat:undeliv err:042 Text:Hi there id:x",
    )
    .unwrap();
    assert_eq!(r.id, "abc-123");
    assert_eq!(r.submit_date, utc("2024-03-15T14:30:12Z"));
    assert_eq!(r.done_date, utc("2024-03-15T14:31:59Z"));
    assert_eq!(r.stat, ReceiptStat::Undeliv);
    assert_eq!(r.err, 42);
    assert_eq!(r.text, "Hi there id:x");

    let r = DeliveryReceipt::parse(
        "id:9 sub:001 dlvrd:001 submit date:2403151430 done date:2403151431 stat:DELIVRD err:000",
    )
    .unwrap();
    assert_eq!(r.text, "");

    let r = DeliveryReceipt::parse(
        "stat:EXPIRED err:000 ID:9 SUB:001 DLVRD:000 Submit Date:2403151430 Done Date:2403151431",
    )
    .unwrap();
    assert_eq!((r.id.as_str(), r.stat), ("9", ReceiptStat::Expired));
}

#[test]
fn parse_errors_name_the_field() {
    let e = DeliveryReceipt::parse(
        "id:1 sub:001 dlvrd:001 done date:2403151431 stat:DELIVRD err:000 text:x",
    )
    .unwrap_err();
    assert_eq!(e, ReceiptError::MissingField("submit date:"));
    assert!(e.to_string().contains("submit date"));
    let e = DeliveryReceipt::parse(&REFERENCE_RECEIPT.replace("sub:001", "sub:0x1")).unwrap_err();
    assert!(
        matches!(e, ReceiptError::BadNumber { field: "sub:", .. }),
        "{e:?}"
    );
    let e = DeliveryReceipt::parse(&REFERENCE_RECEIPT.replace("DELIVRD", "FOO")).unwrap_err();
    assert_eq!(e, ReceiptError::UnknownStat("FOO".into()));
    let e =
        DeliveryReceipt::parse(&REFERENCE_RECEIPT.replace("2403151431", "2413151431")).unwrap_err();
    assert!(
        matches!(
            e,
            ReceiptError::BadDate {
                field: "done date:",
                ..
            }
        ),
        "{e:?}"
    );
    // "id:" inside another word does not count.
    let e = DeliveryReceipt::parse(
        "xid:1 sub:001 dlvrd:001 submit date:2403151430 done date:2403151431 stat:DELIVRD err:000",
    )
    .unwrap_err();
    assert_eq!(e, ReceiptError::MissingField("id:"));
}

#[test]
fn stat_texts_and_message_states() {
    let expect = [
        ("DELIVRD", 2),
        ("EXPIRED", 3),
        ("DELETED", 4),
        ("UNDELIV", 5),
        ("ACCEPTD", 6),
        ("UNKNOWN", 7),
        ("REJECTD", 8),
        ("ENROUTE", 1),
    ];
    for (st, (text, state)) in ReceiptStat::ALL.into_iter().zip(expect) {
        assert_eq!(st.as_str(), text);
        assert_eq!(st.message_state(), state);
        assert_eq!(text.parse::<ReceiptStat>().unwrap(), st);
        assert_eq!(text.to_lowercase().parse::<ReceiptStat>().unwrap(), st);
        assert_eq!(ReceiptStat::from_message_state(state), Some(st));
    }
    assert_eq!(ReceiptStat::from_message_state(0), None);
    assert_eq!(ReceiptStat::from_message_state(9), None);
}

fn minute_instant() -> impl Strategy<Value = DateTime<Utc>> {
    (2000i32..2100, 1u32..=12, 1u32..=28, 0u32..24, 0u32..60)
        .prop_map(|(y, mo, d, h, mi)| Utc.with_ymd_and_hms(y, mo, d, h, mi, 0).unwrap())
}

proptest! {
    #[test]
    fn parse_time_never_panics(bytes in proptest::collection::vec(any::<u8>(), 16)) {
        let _ = parse_time(&bytes);
    }

    #[test]
    fn parse_time_never_panics_on_digit_strings(digits in "[0-9]{15}", p in "[-+R]") {
        let s = format!("{digits}{p}");
        if let Ok(Some(t)) = parse_time(s.as_bytes()) {
            let _ = t.resolve(Utc::now());
        }
    }

    #[test]
    fn format_absolute_parse_time_round_trip(
        day in 0i64..36_524, secs in 0u32..86_400, tenths in 0u32..10
    ) {
        let date = NaiveDate::from_ymd_opt(2000, 1, 1).unwrap() + chrono::Days::new(day as u64);
        let t = date.and_hms_milli_opt(secs / 3600, secs / 60 % 60, secs % 60, tenths * 100).unwrap().and_utc();
        prop_assert!((2000..2100).contains(&t.year()));
        let s = format_absolute(t);
        prop_assert_eq!(s.len(), 16);
        prop_assert_eq!(parse_time(s.as_bytes()).unwrap(), Some(SmppTime::Absolute(t)));
    }

    #[test]
    fn receipt_round_trip(
        id in "[0-9A-Za-z-]{1,64}", sub in 0u32..1000, dlvrd in 0u32..1000, err in 0u32..1000,
        submit in minute_instant(), done in minute_instant(),
        stat in proptest::sample::select(ReceiptStat::ALL.to_vec()),
        text in "\\PC{0,20}",
    ) {
        let r = DeliveryReceipt { id, sub, dlvrd, submit_date: submit, done_date: done, stat, err, text };
        prop_assert_eq!(DeliveryReceipt::parse(&r.to_text()).unwrap(), r);
    }
}
