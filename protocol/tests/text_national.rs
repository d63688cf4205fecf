//! The national language tables of 3GPP TS 23.038 Annex A, selected by UDH IEIs
//! 0x24 (single shift) and 0x25 (locking shift).
#![allow(clippy::unwrap_used)]

use smpp_protocol::gsm7::{
    decode_unpacked_in, decode_unpacked_lossy_in, encode_unpacked_in, septet_count_in,
    NationalLanguage, Shift, ESC,
};
use smpp_protocol::receipt::{DeliveryReceipt, ReceiptStat};
use smpp_protocol::text::{
    decode_user_data, decode_user_data_in, encode_text_in, DecodedText, DefaultAlphabet,
    TextContext, TextError,
};
use smpp_protocol::udh::{shift_of, ESM_CLASS_UDHI};

/// Codes each table defines (locking without the escape, single shift without
/// 0x1B), as counted in the generated tables: a table edited by hand shows here.
const LOCKING_DEFINED: [usize; 13] = [
    127, 0, 127, 114, 120, 127, 120, 120, 116, 110, 102, 120, 127,
];
const SINGLE_DEFINED: [usize; 13] = [17, 19, 37, 82, 70, 88, 73, 82, 75, 76, 77, 78, 90];

fn char_of(septets: &[u8], shift: Shift) -> Option<char> {
    let s = decode_unpacked_in(septets, shift).ok()?;
    let mut chars = s.chars();
    let c = chars.next()?;
    assert!(chars.next().is_none(), "{septets:02X?} gave {s:?}");
    Some(c)
}

#[test]
fn every_character_of_every_locking_table_round_trips() {
    for (i, lang) in NationalLanguage::ALL.into_iter().enumerate() {
        let shift = Shift::both(lang);
        let mut defined = 0;
        for code in (0u8..0x80).filter(|&c| c != ESC) {
            let Some(c) = char_of(&[code], shift) else {
                continue;
            };
            defined += 1;
            let encoded = encode_unpacked_in(&c.to_string(), shift).unwrap();
            assert_eq!(
                decode_unpacked_in(&encoded, shift).unwrap(),
                c.to_string(),
                "{lang:?} 0x{code:02X}"
            );
            assert_eq!(septet_count_in(&c.to_string(), shift), Some(encoded.len()));
        }
        // Spanish has no locking table: it reads as the default alphabet (127 codes).
        let expected = if lang == NationalLanguage::SPANISH {
            127
        } else {
            LOCKING_DEFINED[i]
        };
        assert_eq!(defined, expected, "{lang:?} ({})", lang.name().unwrap());
    }
}

#[test]
fn every_character_of_every_single_shift_table_round_trips() {
    for (i, lang) in NationalLanguage::ALL.into_iter().enumerate() {
        // Alone (default locking table) and with the language's own locking table.
        for shift in [
            Shift {
                locking: NationalLanguage::DEFAULT,
                single: lang,
            },
            Shift::both(lang),
        ] {
            let mut defined = 0;
            for code in 0u8..0x80 {
                let Some(c) = char_of(&[ESC, code], shift) else {
                    continue;
                };
                defined += 1;
                let encoded = encode_unpacked_in(&c.to_string(), shift).unwrap();
                assert_eq!(
                    decode_unpacked_in(&encoded, shift).unwrap(),
                    c.to_string(),
                    "{shift:?} 1B {code:02X}"
                );
            }
            assert_eq!(defined, SINGLE_DEFINED[i], "{lang:?}");
        }
    }
}

#[test]
fn tables_hold_the_characters_the_spec_puts_there() {
    let at = |lang: u8, septets: &[u8]| char_of(septets, Shift::both(NationalLanguage(lang)));
    // Turkish (A.3.1 / A.2.1).
    assert_eq!(at(1, &[0x04]), Some('€'));
    assert_eq!(at(1, &[0x07]), Some('ı'));
    assert_eq!(at(1, &[ESC, 0x47]), Some('Ğ'));
    // Spanish single shift (A.2.2); its locking table is the default one.
    assert_eq!(at(2, &[ESC, 0x09]), Some('ç'));
    assert_eq!(at(2, &[0x11]), Some('_'));
    // Portuguese (A.3.3).
    assert_eq!(at(3, &[0x10]), Some('Δ'));
    assert_eq!(at(3, &[0x13]), Some('Ç'));
    // Hindi (A.3.6), row 4 of the table: आ औ ड 4 र ू d t.
    let row4: String = [0x04, 0x14, 0x24, 0x34, 0x44, 0x54, 0x64, 0x74]
        .iter()
        .map(|&c| at(6, &[c]).unwrap())
        .collect();
    assert_eq!(row4, "\u{0906}\u{0914}\u{0921}4\u{0930}\u{0942}dt");
    assert_eq!(at(6, &[ESC, 0x20]), Some('\u{096A}'));
    // Kannada (A.3.7): 0x00 is undefined, 0x24 is ಡ (the spec's ಪ is a typo).
    assert_eq!(at(7, &[0x00]), None);
    assert_eq!(at(7, &[0x24]), Some('\u{0CA1}'));
    assert_eq!(at(7, &[0x3D]), Some('\u{0CAA}'));
    // Every Indic locking table has a comma at 0x2C.
    for lang in 4..=13 {
        assert_eq!(at(lang, &[0x2C]), Some(','), "{lang}");
    }
    // Telugu single shift: € at 0x65 like the others.
    assert_eq!(at(12, &[ESC, 0x65]), Some('€'));
    // Urdu (A.3.13 / A.2.13).
    assert_eq!(at(13, &[0x04]), Some('\u{0680}'));
    assert_eq!(at(13, &[ESC, 0x20]), Some('\u{06F4}'));
}

#[test]
fn an_undefined_code_is_an_error_or_a_replacement_character() {
    let kannada = Shift::both(NationalLanguage::KANNADA);
    assert_eq!(
        decode_unpacked_in(&[0x41, 0x00], kannada),
        Err(TextError::UndefinedSeptet { code: 0, index: 1 })
    );
    assert_eq!(
        decode_unpacked_lossy_in(&[0x40, 0x00], kannada),
        "\u{0CAC}\u{FFFD}"
    );
    // 1B 1B and an unassigned single shift code.
    assert!(decode_unpacked_in(&[ESC, ESC], kannada).is_err());
    assert!(decode_unpacked_in(&[ESC, 0x70], kannada).is_err());
    // A character neither table holds.
    assert!(matches!(
        encode_unpacked_in("ğ", kannada),
        Err(TextError::Unencodable { ch: 'ğ', .. })
    ));
}

#[test]
fn an_unknown_language_reads_as_the_default_tables() {
    let unknown = Shift::both(NationalLanguage(14));
    assert_eq!(
        decode_unpacked_in(&[0x11, ESC, 0x65], unknown).unwrap(),
        "_€"
    );
    assert_eq!(
        encode_unpacked_in("_€", unknown).unwrap(),
        [0x11, ESC, 0x65]
    );
}

#[test]
fn a_udh_with_shift_elements_selects_the_tables() {
    // UDHL 11: concat 8-bit (ref 0x2A, 2 parts, part 1), single shift Turkish, locking
    // shift Turkish; then "Ğı€ş" in Turkish septets.
    let mut raw = vec![
        0x0B, 0x00, 0x03, 0x2A, 0x02, 0x01, 0x24, 0x01, 0x01, 0x25, 0x01, 0x01,
    ];
    raw.extend([0x0B, 0x07, 0x04, 0x1D]);
    let shift = shift_of(ESM_CLASS_UDHI, &raw);
    assert_eq!(shift, Shift::both(NationalLanguage::TURKISH));
    let ctx = TextContext::of(DefaultAlphabet::Gsm7, ESM_CLASS_UDHI, &raw);
    assert_eq!(
        decode_user_data_in(0x00, &raw[12..], ctx).unwrap(),
        DecodedText::Text("Ğı€ş".into())
    );
    // The same septets read with the default tables are other characters.
    assert_eq!(
        decode_user_data(0x00, &raw[12..]).unwrap(),
        DecodedText::Text("Øìèæ".into())
    );
    // A single shift element alone: the locking table stays the default one.
    let raw = [0x03, 0x24, 0x01, 0x02, 0x41, ESC, 0x09];
    assert_eq!(
        shift_of(ESM_CLASS_UDHI, &raw),
        Shift {
            locking: NationalLanguage::DEFAULT,
            single: NationalLanguage::SPANISH,
        }
    );
    let ctx = TextContext::of(DefaultAlphabet::Gsm7, ESM_CLASS_UDHI, &raw);
    assert_eq!(
        decode_user_data_in(0x00, &raw[4..], ctx).unwrap(),
        DecodedText::Text("Aç".into())
    );
    // Without UDHI the octets are text, not a header; a malformed element is ignored.
    assert_eq!(shift_of(0, &raw), Shift::DEFAULT);
    assert_eq!(
        shift_of(ESM_CLASS_UDHI, &[0x04, 0x25, 0x02, 0x01, 0x01]),
        Shift::DEFAULT
    );
}

#[test]
fn the_default_alphabet_decides_what_data_coding_zero_means() {
    let ctx = |default_alphabet| TextContext {
        default_alphabet,
        ..TextContext::default()
    };
    let text = |alphabet, ud: &[u8]| decode_user_data_in(0x00, ud, ctx(alphabet)).unwrap();
    assert_eq!(
        text(DefaultAlphabet::Gsm7, b"a_b"),
        DecodedText::Text("a§b".into())
    );
    assert_eq!(
        text(DefaultAlphabet::Ascii, b"a_b"),
        DecodedText::Text("a_b".into())
    );
    assert_eq!(
        text(DefaultAlphabet::Latin1, b"caf\xE9"),
        DecodedText::Text("café".into())
    );
    assert!(decode_user_data_in(0x00, b"caf\xE9", ctx(DefaultAlphabet::Ascii)).is_err());
    // Only 0x00 changes: 0xF0 stays GSM 03.38.
    assert_eq!(
        decode_user_data_in(0xF0, b"a_b", ctx(DefaultAlphabet::Ascii)).unwrap(),
        DecodedText::Text("a§b".into())
    );
    assert_eq!(
        encode_text_in(0x00, "a_b", ctx(DefaultAlphabet::Ascii)).unwrap(),
        b"a_b"
    );
    assert_eq!(
        encode_text_in(0x00, "a_b", ctx(DefaultAlphabet::Gsm7)).unwrap(),
        b"a\x11b"
    );
    for name in ["gsm7", "ascii", "latin1"] {
        assert_eq!(DefaultAlphabet::parse(name).unwrap().as_str(), name);
    }
    assert_eq!(DefaultAlphabet::parse("utf8"), None);
}

#[test]
fn a_receipt_is_written_in_the_receivers_default_alphabet() {
    let dr = DeliveryReceipt {
        id: "0A0000000100000000002A".into(),
        sub: 1,
        dlvrd: 1,
        submit_date: chrono::DateTime::from_timestamp(1_764_000_000, 0).unwrap(),
        done_date: chrono::DateTime::from_timestamp(1_764_000_060, 0).unwrap(),
        stat: ReceiptStat::Delivrd,
        err: 0,
        text: "a_b é 世".into(),
    };
    let tail = |b: Vec<u8>| b[b.len() - 7..].to_vec();
    assert_eq!(tail(dr.to_short_message()), b"a\x11b \x05 ?");
    assert_eq!(
        tail(dr.to_short_message_in(DefaultAlphabet::Gsm7)),
        b"a\x11b \x05 ?"
    );
    assert_eq!(
        tail(dr.to_short_message_in(DefaultAlphabet::Ascii)),
        b"a_b ? ?"
    );
    assert_eq!(
        tail(dr.to_short_message_in(DefaultAlphabet::Latin1)),
        b"a_b \xE9 ?"
    );
}

proptest::proptest! {
    /// Any octets, any pair of tables (unknown ids included): the lossy decode never
    /// panics, and whatever decodes strictly encodes back to septets that decode to
    /// the same text (the codes may differ where a table holds a character twice).
    #[test]
    fn any_septets_in_any_tables_decode_and_round_trip(
        octets in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..120),
        locking in 0u8..16,
        single in 0u8..16,
    ) {
        let shift = Shift { locking: NationalLanguage(locking), single: NationalLanguage(single) };
        let _ = decode_unpacked_lossy_in(&octets, shift);
        if let Ok(text) = decode_unpacked_in(&octets, shift) {
            let again = encode_unpacked_in(&text, shift).unwrap();
            proptest::prop_assert_eq!(decode_unpacked_in(&again, shift).unwrap(), text);
        }
    }
}
