//! GSM 03.38 alphabet, septet packing and data_coding text decoding (reference §6.3, §8.7, §8.8).
#![allow(clippy::unwrap_used)]

use proptest::prelude::*;
use smpp_protocol::gsm7::{
    decode_unpacked, decode_unpacked_lossy, encode_unpacked, fill_bits_after_udh, pack,
    septet_count, unpack, EXTENSION,
};
use smpp_protocol::text::{
    decode_user_data, decode_user_data_lossy, encode_text, DecodedText, TextError,
};

/// The reference §8.8 flat list, index 0x00–0x7F (0x1B = ESC, no character).
const TABLE: [u32; 128] = [
    0x0040, 0x00A3, 0x0024, 0x00A5, 0x00E8, 0x00E9, 0x00F9, 0x00EC, //
    0x00F2, 0x00C7, 0x000A, 0x00D8, 0x00F8, 0x000D, 0x00C5, 0x00E5, //
    0x0394, 0x005F, 0x03A6, 0x0393, 0x039B, 0x03A9, 0x03A0, 0x03A8, //
    0x03A3, 0x0398, 0x039E, 0xFFFF, 0x00C6, 0x00E6, 0x00DF, 0x00C9, //
    0x0020, 0x0021, 0x0022, 0x0023, 0x00A4, 0x0025, 0x0026, 0x0027, //
    0x0028, 0x0029, 0x002A, 0x002B, 0x002C, 0x002D, 0x002E, 0x002F, //
    0x0030, 0x0031, 0x0032, 0x0033, 0x0034, 0x0035, 0x0036, 0x0037, //
    0x0038, 0x0039, 0x003A, 0x003B, 0x003C, 0x003D, 0x003E, 0x003F, //
    0x00A1, 0x0041, 0x0042, 0x0043, 0x0044, 0x0045, 0x0046, 0x0047, //
    0x0048, 0x0049, 0x004A, 0x004B, 0x004C, 0x004D, 0x004E, 0x004F, //
    0x0050, 0x0051, 0x0052, 0x0053, 0x0054, 0x0055, 0x0056, 0x0057, //
    0x0058, 0x0059, 0x005A, 0x00C4, 0x00D6, 0x00D1, 0x00DC, 0x00A7, //
    0x00BF, 0x0061, 0x0062, 0x0063, 0x0064, 0x0065, 0x0066, 0x0067, //
    0x0068, 0x0069, 0x006A, 0x006B, 0x006C, 0x006D, 0x006E, 0x006F, //
    0x0070, 0x0071, 0x0072, 0x0073, 0x0074, 0x0075, 0x0076, 0x0077, //
    0x0078, 0x0079, 0x007A, 0x00E4, 0x00F6, 0x00F1, 0x00FC, 0x00E0, //
];

/// The reference §8.8 extension table.
const EXT: [(u8, u32); 10] = [
    (0x0A, 0x000C),
    (0x14, 0x005E),
    (0x28, 0x007B),
    (0x29, 0x007D),
    (0x2F, 0x005C),
    (0x3C, 0x005B),
    (0x3D, 0x007E),
    (0x3E, 0x005D),
    (0x40, 0x007C),
    (0x65, 0x20AC),
];

#[test]
fn every_basic_code_decodes_to_the_reference_table_and_encodes_back() {
    let mut checked = 0;
    for (code, &cp) in TABLE.iter().enumerate() {
        if code == 0x1B {
            continue;
        }
        let code = code as u8;
        let ch = char::from_u32(cp).unwrap();
        assert_eq!(
            decode_unpacked(&[code]).unwrap(),
            ch.to_string(),
            "code {code:#04x}"
        );
        assert_eq!(
            encode_unpacked(&ch.to_string()).unwrap(),
            vec![code],
            "char {ch:?}"
        );
        assert_eq!(septet_count(&ch.to_string()), Some(1));
        checked += 1;
    }
    assert_eq!(checked, 127);
    // All 127 at once, too.
    let all: Vec<u8> = (0u8..128).filter(|&c| c != 0x1B).collect();
    let text = decode_unpacked(&all).unwrap();
    assert_eq!(text.chars().count(), 127);
    assert_eq!(encode_unpacked(&text).unwrap(), all);
}

#[test]
fn every_extension_char_round_trips_as_an_escape_pair() {
    assert_eq!(EXTENSION.len(), 10);
    for &(code, cp) in &EXT {
        let ch = char::from_u32(cp).unwrap().to_string();
        assert_eq!(decode_unpacked(&[0x1B, code]).unwrap(), ch);
        assert_eq!(encode_unpacked(&ch).unwrap(), vec![0x1B, code]);
        assert_eq!(septet_count(&ch), Some(2));
    }
    assert_eq!(septet_count("{€}"), Some(6));
    assert_eq!(septet_count("a{b"), Some(4));
}

#[test]
fn cedilla_c_both_cases_encode_to_0x09_and_decode_to_capital() {
    assert_eq!(encode_unpacked("Ç").unwrap(), vec![0x09]);
    assert_eq!(encode_unpacked("ç").unwrap(), vec![0x09]);
    assert_eq!(decode_unpacked(&[0x09]).unwrap(), "Ç");
    assert_eq!(septet_count("ç"), Some(1));
}

#[test]
fn section_sign_is_0x5f() {
    assert_eq!(decode_unpacked(&[0x5F]).unwrap(), "§");
    assert!(encode_unpacked("`").is_err());
}

#[test]
fn encode_error_names_the_first_unencodable_char() {
    let err = encode_unpacked("abc☃dé✓").unwrap_err();
    assert_eq!(
        err,
        TextError::Unencodable {
            ch: '☃',
            index: 3,
            charset: "GSM 03.38"
        }
    );
    assert!(err.to_string().contains('☃'), "{err}");
    assert!(err.to_string().contains("U+2603"), "{err}");
    assert_eq!(septet_count("abc☃"), None);
}

#[test]
fn invalid_septets_are_errors_and_lossy_replaces_them() {
    assert_eq!(
        decode_unpacked(&[0x41, 0x80]).unwrap_err(),
        TextError::SeptetOutOfRange {
            value: 0x80,
            index: 1
        }
    );
    assert_eq!(
        decode_unpacked(&[0x41, 0x1B]).unwrap_err(),
        TextError::LoneEscape { index: 1 }
    );
    assert_eq!(
        decode_unpacked(&[0x1B, 0x41]).unwrap_err(),
        TextError::UndefinedExtension {
            code: 0x41,
            index: 0
        }
    );
    assert_eq!(
        decode_unpacked_lossy(&[0x41, 0x80, 0x1B, 0x0D, 0x42, 0x1B]),
        "A\u{FFFD}\u{FFFD}B\u{FFFD}"
    );
    // ESC ESC is a pair (SS2), not two escapes.
    assert_eq!(decode_unpacked_lossy(&[0x1B, 0x1B, 0x41]), "\u{FFFD}A");
}

fn hex(s: &str) -> Vec<u8> {
    s.split_whitespace()
        .map(|b| u8::from_str_radix(b, 16).unwrap())
        .collect()
}

#[test]
fn packs_the_reference_examples() {
    let hellohello = encode_unpacked("hellohello").unwrap();
    assert_eq!(pack(&hellohello, 0), hex("E8 32 9B FD 46 97 D9 EC 37"));
    let hello = encode_unpacked("hello").unwrap();
    assert_eq!(pack(&hello, 0), hex("E8 32 9B FD 06"));
    assert_eq!(
        unpack(&hex("E8 32 9B FD 46 97 D9 EC 37"), 0, 10),
        hellohello
    );
    assert_eq!(unpack(&hex("E8 32 9B FD 06"), 0, 5), hello);
}

#[test]
fn packs_text_after_a_six_octet_udh_with_one_fill_bit() {
    let udh = hex("05 00 03 CC 02 01");
    let fill = fill_bits_after_udh(udh.len());
    assert_eq!(fill, 1);
    let mut tpud = udh.clone();
    tpud.extend(pack(&encode_unpacked("hello").unwrap(), fill));
    assert_eq!(tpud, hex("05 00 03 CC 02 01 D0 65 36 FB 0D"));
    assert_eq!(
        unpack(&tpud[6..], fill, 5),
        encode_unpacked("hello").unwrap()
    );
    // 7-octet UDH (16-bit ref): 56 bits, already septet-aligned.
    assert_eq!(fill_bits_after_udh(7), 0);
    assert_eq!(fill_bits_after_udh(12), 2);
}

#[test]
fn unpack_stops_at_the_available_septets() {
    assert_eq!(unpack(&[0xE8], 0, 5), vec![0x68]);
    assert!(unpack(&[], 3, 2).is_empty());
}

#[test]
fn decodes_user_data_per_data_coding() {
    let t = |dc: u8, b: &[u8]| decode_user_data(dc, b).unwrap();
    let text = |s: &str| DecodedText::Text(s.to_owned());
    assert_eq!(t(0x00, &[0x48, 0x69, 0x1B, 0x65]), text("Hi€"));
    assert_eq!(t(0x01, b"Hello"), text("Hello"));
    assert_eq!(t(0x03, &[0x48, 0xE9, 0xFF]), text("Héÿ"));
    assert_eq!(
        t(0x08, &hex("04 1F 04 40 04 38 04 32 04 35 04 42")),
        text("Привет")
    );
    assert_eq!(t(0xF0, &[0x00]), text("@"));
    assert_eq!(t(0xF3, &[0x41]), text("A"));
    for dc in [
        0x02, 0x04, 0x05, 0x06, 0x07, 0x09, 0x0A, 0x0E, 0xC0, 0xD1, 0xE0, 0xF4, 0xF5, 0xF7, 0xFF,
    ] {
        assert_eq!(
            t(dc, &[0x80, 0x00]),
            DecodedText::Binary,
            "data_coding {dc:#04x}"
        );
        assert_eq!(decode_user_data_lossy(dc, &[0x80]), DecodedText::Binary);
    }
    assert_eq!(
        decode_user_data(0x01, &[0x41, 0xC3]).unwrap_err(),
        TextError::NotAscii {
            value: 0xC3,
            index: 1
        }
    );
    assert_eq!(
        decode_user_data(0x08, &[0x00, 0x41, 0x00]).unwrap_err(),
        TextError::Ucs2OddLength { len: 3 }
    );
    assert_eq!(
        decode_user_data(0x08, &[0x00, 0x41, 0xDC, 0x00]).unwrap_err(),
        TextError::Ucs2LoneSurrogate {
            unit: 0xDC00,
            index: 2
        }
    );
}

#[test]
fn ucs2_surrogate_pair_split_across_segments_decodes_once_joined() {
    // "ab😀c" in UTF-16BE; the pair D83D DE00 is split between two segments.
    let all = encode_text(0x08, "ab😀c").unwrap();
    assert_eq!(all, hex("00 61 00 62 D8 3D DE 00 00 63"));
    let (seg1, seg2) = all.split_at(6);
    assert!(matches!(
        decode_user_data(0x08, seg1),
        Err(TextError::Ucs2LoneSurrogate {
            unit: 0xD83D,
            index: 4
        })
    ));
    assert!(matches!(
        decode_user_data(0x08, seg2),
        Err(TextError::Ucs2LoneSurrogate {
            unit: 0xDE00,
            index: 0
        })
    ));
    assert_eq!(
        decode_user_data_lossy(0x08, seg1),
        DecodedText::Text("ab\u{FFFD}".into())
    );
    assert_eq!(
        decode_user_data_lossy(0x08, seg2),
        DecodedText::Text("\u{FFFD}c".into())
    );
    let joined = [seg1, seg2].concat();
    assert_eq!(
        decode_user_data(0x08, &joined).unwrap(),
        DecodedText::Text("ab😀c".into())
    );
    assert_eq!(
        decode_user_data_lossy(0x08, &[0x00, 0x41, 0x00]),
        DecodedText::Text("A\u{FFFD}".into())
    );
}

#[test]
fn encodes_text_per_data_coding() {
    assert_eq!(encode_text(0x00, "a€").unwrap(), vec![0x61, 0x1B, 0x65]);
    assert_eq!(encode_text(0x01, "Hi").unwrap(), b"Hi".to_vec());
    assert_eq!(
        encode_text(0x01, "Hé").unwrap_err(),
        TextError::Unencodable {
            ch: 'é',
            index: 1,
            charset: "IA5"
        }
    );
    assert_eq!(encode_text(0x03, "Hé").unwrap(), vec![0x48, 0xE9]);
    assert_eq!(
        encode_text(0x03, "€").unwrap_err(),
        TextError::Unencodable {
            ch: '€',
            index: 0,
            charset: "Latin-1"
        }
    );
    assert_eq!(
        encode_text(0x08, "Привет").unwrap(),
        hex("04 1F 04 40 04 38 04 32 04 35 04 42")
    );
    assert_eq!(
        encode_text(0x04, "x").unwrap_err(),
        TextError::UnsupportedCoding { data_coding: 4 }
    );
}

fn gsm_char() -> impl Strategy<Value = char> {
    let mut chars: Vec<char> = TABLE
        .iter()
        .filter(|&&cp| cp != 0xFFFF)
        .map(|&cp| char::from_u32(cp).unwrap())
        .collect();
    chars.extend(EXT.iter().map(|&(_, cp)| char::from_u32(cp).unwrap()));
    proptest::sample::select(chars)
}

proptest! {
    #[test]
    fn gsm7_encode_decode_round_trip(chars in proptest::collection::vec(gsm_char(), 0..200)) {
        let text: String = chars.into_iter().collect();
        let septets = encode_unpacked(&text).unwrap();
        prop_assert_eq!(septets.len(), septet_count(&text).unwrap());
        prop_assert_eq!(decode_unpacked(&septets).unwrap(), text.clone());
        for dc in [0x00u8, 0xF0] {
            prop_assert_eq!(decode_user_data(dc, &encode_text(dc, &text).unwrap()).unwrap(), DecodedText::Text(text.clone()));
        }
    }

    #[test]
    fn pack_unpack_round_trip(septets in proptest::collection::vec(0u8..0x80, 0..300), fill in 0u8..7) {
        let packed = pack(&septets, fill);
        prop_assert_eq!(packed.len(), (usize::from(fill) + septets.len() * 7).div_ceil(8));
        prop_assert_eq!(unpack(&packed, fill, septets.len()), septets);
    }

    #[test]
    fn text_codings_round_trip(s in "\\PC{0,80}") {
        prop_assert_eq!(decode_user_data(0x08, &encode_text(0x08, &s).unwrap()).unwrap(), DecodedText::Text(s.clone()));
        if let Ok(b) = encode_text(0x03, &s) {
            prop_assert_eq!(decode_user_data(0x03, &b).unwrap(), DecodedText::Text(s.clone()));
        }
    }

    #[test]
    fn decoding_arbitrary_bytes_never_panics(dc in any::<u8>(), data in proptest::collection::vec(any::<u8>(), 0..64)) {
        let strict = decode_user_data(dc, &data);
        let lossy = decode_user_data_lossy(dc, &data);
        if let Ok(ok) = strict {
            prop_assert_eq!(ok, lossy);
        }
    }
}
