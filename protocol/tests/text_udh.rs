//! UDH and SAR concatenation info (reference §8.1–§8.4), with the status of every fault.
#![allow(clippy::unwrap_used)]

use proptest::prelude::*;
use smpp_protocol::udh::{
    concat_info, parse_udh, ConcatError, ConcatErrorKind, ConcatInfo, ConcatScheme,
    InformationElement, SarParts, ESME_RINVMSGLEN, ESME_RINVOPTPARAMVAL,
};

const UDHI: u8 = 0x40;
const NO_SAR: SarParts = SarParts {
    msg_ref_num: None,
    total_segments: None,
    segment_seqnum: None,
};

fn hex(s: &str) -> Vec<u8> {
    s.split_whitespace()
        .map(|b| u8::from_str_radix(b, 16).unwrap())
        .collect()
}

fn sar(r: u16, total: u8, seq: u8) -> SarParts {
    SarParts {
        msg_ref_num: Some(r),
        total_segments: Some(total),
        segment_seqnum: Some(seq),
    }
}

fn err(esm: u8, ud: &[u8], sar: SarParts) -> ConcatError {
    concat_info(esm, ud, sar).unwrap_err()
}

#[test]
fn reads_8bit_reference_udh() {
    let ud = [hex("05 00 03 CC 02 01"), b"Part one".to_vec()].concat();
    let (info, rest) = concat_info(UDHI, &ud, NO_SAR).unwrap();
    assert_eq!(
        info,
        Some(ConcatInfo {
            reference: 0xCC,
            total: 2,
            seq: 1,
            scheme: ConcatScheme::Udh8
        })
    );
    assert_eq!(rest, b"Part one");
    let ud2 = hex("05 00 03 CC 02 02");
    let (info, rest) = concat_info(UDHI | 0x03, &ud2, NO_SAR).unwrap();
    assert_eq!(info.unwrap().seq, 2);
    assert!(rest.is_empty());
}

#[test]
fn reads_16bit_reference_udh_with_ucs2_text() {
    let ud = hex("06 08 04 12 34 03 02 04 1F 04 40 04 38 04 32 04 35 04 42");
    let (info, rest) = concat_info(UDHI, &ud, NO_SAR).unwrap();
    assert_eq!(
        info,
        Some(ConcatInfo {
            reference: 0x1234,
            total: 3,
            seq: 2,
            scheme: ConcatScheme::Udh16
        })
    );
    assert_eq!(rest, &ud[7..]);
}

#[test]
fn skips_port_addressing_ie_before_the_concat_ie() {
    let ud = [hex("0B 05 04 0B 84 23 F0 00 03 7A 02 01"), b"wap".to_vec()].concat();
    let (info, rest) = concat_info(UDHI, &ud, NO_SAR).unwrap();
    assert_eq!(
        info,
        Some(ConcatInfo {
            reference: 0x7A,
            total: 2,
            seq: 1,
            scheme: ConcatScheme::Udh8
        })
    );
    assert_eq!(rest, b"wap");
    let (udh, _) = parse_udh(&ud).unwrap();
    assert_eq!(udh.len(), 12);
    assert_eq!(
        udh.elements,
        vec![
            InformationElement {
                iei: 0x05,
                data: &[0x0B, 0x84, 0x23, 0xF0]
            },
            InformationElement {
                iei: 0x00,
                data: &[0x7A, 0x02, 0x01]
            },
        ]
    );
}

#[test]
fn udh_without_concat_ie_is_single_part_and_stripped() {
    let ud = hex("04 04 02 10 20 41 42");
    assert_eq!(
        concat_info(UDHI, &ud, NO_SAR).unwrap(),
        (None, &[0x41, 0x42][..])
    );
    // UDHL 0: an empty header.
    assert_eq!(
        concat_info(UDHI, &[0x00, 0x41], NO_SAR).unwrap(),
        (None, &[0x41][..])
    );
}

#[test]
fn without_udhi_user_data_is_kept_whole() {
    let ud = hex("05 00 03 CC 02 01 41");
    assert_eq!(concat_info(0x00, &ud, NO_SAR).unwrap(), (None, &ud[..]));
    assert_eq!(concat_info(0x04, &[], NO_SAR).unwrap(), (None, &[][..]));
}

#[test]
fn reads_complete_sar_set() {
    let (info, rest) = concat_info(0x00, b"Part one", sar(0x1234, 3, 1)).unwrap();
    assert_eq!(
        info,
        Some(ConcatInfo {
            reference: 0x1234,
            total: 3,
            seq: 1,
            scheme: ConcatScheme::Sar
        })
    );
    assert_eq!(rest, b"Part one");
}

#[test]
fn partial_sar_set_is_ignored() {
    let partials = [
        SarParts {
            msg_ref_num: Some(1),
            total_segments: Some(2),
            segment_seqnum: None,
        },
        SarParts {
            msg_ref_num: Some(1),
            total_segments: None,
            segment_seqnum: Some(1),
        },
        SarParts {
            msg_ref_num: None,
            total_segments: Some(2),
            segment_seqnum: Some(1),
        },
        // Even impossible values are ignored when the set is incomplete.
        SarParts {
            msg_ref_num: None,
            total_segments: Some(0),
            segment_seqnum: Some(9),
        },
    ];
    for p in partials {
        assert_eq!(
            concat_info(0x00, b"x", p).unwrap(),
            (None, &b"x"[..]),
            "{p:?}"
        );
    }
    // A partial SAR set next to a UDH concat IE is not a conflict.
    let ud = hex("05 00 03 CC 02 01");
    let p = SarParts {
        msg_ref_num: Some(7),
        ..NO_SAR
    };
    assert_eq!(
        concat_info(UDHI, &ud, p).unwrap().0.unwrap().scheme,
        ConcatScheme::Udh8
    );
}

#[test]
fn sar_with_a_udh_lacking_concat_ie_uses_sar() {
    let ud = hex("04 04 02 10 20 41");
    let (info, rest) = concat_info(UDHI, &ud, sar(5, 2, 2)).unwrap();
    assert_eq!(info.unwrap().scheme, ConcatScheme::Sar);
    assert_eq!(rest, &[0x41]);
}

fn check(e: ConcatError, kind: ConcatErrorKind, status: u32, words: &str) {
    assert_eq!(e.kind(), &kind);
    assert_eq!(e.command_status(), status, "{e}");
    assert!(
        e.to_string().contains(words),
        "{e:?} message {e} should mention {words:?}"
    );
}

#[test]
fn malformed_udh_is_rinvmsglen() {
    check(
        err(UDHI, &[], NO_SAR),
        ConcatErrorKind::EmptyUserData,
        ESME_RINVMSGLEN,
        "empty",
    );
    check(
        err(UDHI, &hex("05 00 03 CC 02"), NO_SAR),
        ConcatErrorKind::UdhLengthOverrun { udhl: 5, len: 5 },
        ESME_RINVMSGLEN,
        "UDHL 5",
    );
    // IE data past UDHL (the octets exist but belong to the text).
    check(
        err(UDHI, &hex("04 00 03 CC 02 01 41"), NO_SAR),
        ConcatErrorKind::IeOverrun {
            iei: 0x00,
            offset: 1,
        },
        ESME_RINVMSGLEN,
        "overruns UDHL",
    );
    // IE header cut by UDHL: only the IEI fits.
    check(
        err(UDHI, &hex("01 05 41"), NO_SAR),
        ConcatErrorKind::IeOverrun {
            iei: 0x05,
            offset: 1,
        },
        ESME_RINVMSGLEN,
        "0x05",
    );
    check(
        err(UDHI, &hex("04 00 02 CC 02"), NO_SAR),
        ConcatErrorKind::BadConcatIeLength { iei: 0x00, iedl: 2 },
        ESME_RINVMSGLEN,
        "IEDL 2",
    );
    check(
        err(UDHI, &hex("05 08 03 12 34 01"), NO_SAR),
        ConcatErrorKind::BadConcatIeLength { iei: 0x08, iedl: 3 },
        ESME_RINVMSGLEN,
        "0x08",
    );
    check(
        err(UDHI, &hex("0A 00 03 CC 02 01 00 03 CD 02 01"), NO_SAR),
        ConcatErrorKind::DuplicateConcatIe,
        ESME_RINVMSGLEN,
        "more than one",
    );
    check(
        err(UDHI, &hex("0B 00 03 CC 02 01 08 04 00 01 02 01"), NO_SAR),
        ConcatErrorKind::DuplicateConcatIe,
        ESME_RINVMSGLEN,
        "more than one",
    );
    assert!(parse_udh(&[]).is_err());
}

#[test]
fn impossible_udh_values_are_rinvmsglen() {
    for (total, seq) in [(0u8, 0u8), (0, 1), (2, 0), (2, 3), (1, 255)] {
        let ud = [0x05, 0x00, 0x03, 0xCC, total, seq];
        check(
            err(UDHI, &ud, NO_SAR),
            ConcatErrorKind::ImpossibleUdhValues { total, seq },
            ESME_RINVMSGLEN,
            "impossible",
        );
        let ud16 = [0x06, 0x08, 0x04, 0x12, 0x34, total, seq];
        assert_eq!(err(UDHI, &ud16, NO_SAR).command_status(), ESME_RINVMSGLEN);
    }
}

#[test]
fn impossible_sar_values_are_rinvoptparamval() {
    for (total, seq) in [(0u8, 0u8), (0, 1), (3, 0), (3, 4)] {
        check(
            err(0x00, b"x", sar(1, total, seq)),
            ConcatErrorKind::ImpossibleSarValues { total, seq },
            ESME_RINVOPTPARAMVAL,
            "SAR",
        );
    }
}

#[test]
fn udh_concat_ie_with_complete_sar_is_rinvoptparamval() {
    let ud = hex("05 00 03 CC 02 01 41");
    check(
        err(UDHI, &ud, sar(0xCC, 2, 1)),
        ConcatErrorKind::UdhAndSar,
        ESME_RINVOPTPARAMVAL,
        "both",
    );
}

proptest! {
    #[test]
    fn arbitrary_user_data_never_panics(esm in any::<u8>(), ud in proptest::collection::vec(any::<u8>(), 0..40),
                                        r in proptest::option::of(any::<u16>()), t in proptest::option::of(any::<u8>()), s in proptest::option::of(any::<u8>())) {
        if let Ok((info, rest)) = concat_info(esm, &ud, SarParts { msg_ref_num: r, total_segments: t, segment_seqnum: s }) {
            prop_assert!(ud.ends_with(rest));
            if let Some(i) = info {
                prop_assert!(i.seq >= 1 && i.seq <= i.total);
            }
        }
    }

    #[test]
    fn built_udh_round_trips(reference in any::<u16>(), total in 1u8..=255, seq_off in any::<u8>(), wide in any::<bool>(), text in proptest::collection::vec(any::<u8>(), 0..20)) {
        let seq = 1 + seq_off % total;
        let [hi, lo] = reference.to_be_bytes();
        let (mut ud, expect) = if wide {
            (vec![0x06, 0x08, 0x04, hi, lo, total, seq], ConcatInfo { reference, total, seq, scheme: ConcatScheme::Udh16 })
        } else {
            (vec![0x05, 0x00, 0x03, lo, total, seq], ConcatInfo { reference: u16::from(lo), total, seq, scheme: ConcatScheme::Udh8 })
        };
        ud.extend(&text);
        let (info, rest) = concat_info(UDHI, &ud, NO_SAR).unwrap();
        prop_assert_eq!(info, Some(expect));
        prop_assert_eq!(rest, &text[..]);
    }
}
