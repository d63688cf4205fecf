//! A receipt's short_message in the alphabet of its data_coding (0: GSM 03.38
//! unpacked, reference §6.3, §8.6, §8.8), and the lossy encoders behind it: `?` for
//! what the alphabet cannot hold, `ESC code` for extension characters.
#![allow(clippy::unwrap_used)]

use bytes::Bytes;
use chrono::{TimeZone, Utc};
use proptest::prelude::*;
use smpp_protocol::gsm7::{encode_unpacked, encode_unpacked_lossy, ESC, REPLACEMENT};
use smpp_protocol::receipt::{DeliveryReceipt, ReceiptStat, DATA_CODING};
use smpp_protocol::text::{
    decode_user_data, encode_text, encode_text_lossy, DecodedText, TextError,
};
use smpp_protocol::{Body, DeliverSm, Pdu};

fn receipt(text: &str) -> DeliveryReceipt {
    DeliveryReceipt {
        id: "0000000A000000000001".into(),
        sub: 1,
        dlvrd: 1,
        submit_date: Utc.with_ymd_and_hms(2024, 3, 15, 14, 30, 0).unwrap(),
        done_date: Utc.with_ymd_and_hms(2024, 3, 15, 14, 31, 0).unwrap(),
        stat: ReceiptStat::Delivrd,
        err: 0,
        text: text.into(),
    }
}

const HEAD: &str = "id:0000000A000000000001 sub:001 dlvrd:001 submit date:2403151430 done date:2403151431 stat:DELIVRD err:000 text:";

fn gsm_text(octets: &[u8]) -> String {
    match decode_user_data(DATA_CODING, octets).unwrap() {
        DecodedText::Text(t) => t,
        DecodedText::Binary => panic!("data_coding {DATA_CODING} decoded as binary"),
    }
}

#[test]
fn receipt_data_coding_is_the_gsm_default_alphabet() {
    assert_eq!(DATA_CODING, 0);
}

#[test]
fn lossy_gsm_encoding_replaces_what_gsm_cannot_hold_and_escapes_extensions() {
    // é is in the default alphabet (0x05); 世 and 界 are not; € is ESC 0x65.
    assert_eq!(
        encode_unpacked_lossy("héllo 世界 €"),
        [b"h".as_slice(), &[0x05], b"llo ?? ", &[ESC, 0x65]].concat()
    );
    assert_eq!(REPLACEMENT, b'?');
    // The GSM codes that differ from ASCII stay GSM: @ is 0x00, $ 0x02, _ 0x11.
    assert_eq!(encode_unpacked_lossy("@$_"), [0x00, 0x02, 0x11]);
    // A NUL, a control character, an emoji (non-BMP) and a combining accent: one `?`
    // per character.
    assert_eq!(encode_unpacked_lossy("a\0\u{7}😀e\u{301}"), b"a???e?");
    assert_eq!(encode_unpacked_lossy(""), b"");
}

#[test]
fn lossy_gsm_encoding_equals_the_strict_one_where_that_succeeds() {
    let all = "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡ABCXYZÄÖÑÜ§¿abcxyzäöñüà\u{c}^{}\\[~]|€";
    assert_eq!(encode_unpacked_lossy(all), encode_unpacked(all).unwrap());
    assert_eq!(gsm_text(&encode_unpacked_lossy(all)), all);
}

#[test]
fn lossy_text_encoding_by_data_coding() {
    let s = "é€世";
    assert_eq!(encode_text_lossy(0x00, s).unwrap(), [0x05, ESC, 0x65, b'?']);
    assert_eq!(encode_text_lossy(0xF1, s).unwrap(), [0x05, ESC, 0x65, b'?']);
    assert_eq!(encode_text_lossy(0x01, s).unwrap(), b"???");
    assert_eq!(encode_text_lossy(0x03, s).unwrap(), [0xE9, b'?', b'?']);
    assert_eq!(
        encode_text_lossy(0x08, s).unwrap(),
        encode_text(0x08, s).unwrap()
    );
    assert_eq!(
        encode_text_lossy(0x04, s),
        Err(TextError::UnsupportedCoding { data_coding: 0x04 })
    );
}

/// The case of the issue: the receipt of "héllo 世界 €" was sent as UTF-8 with
/// data_coding 0, which no GSM decoder (ours included) reads.
#[test]
fn receipt_of_non_gsm_text_is_gsm_septets_that_decode_to_the_appendix_b_text() {
    let r = receipt("héllo 世界 €");
    let octets = r.to_short_message();
    assert!(octets.iter().all(|&b| b < 0x80), "{octets:02X?}");
    assert!(
        octets.ends_with(&[b'h', 0x05, b'l', b'l', b'o', b' ', b'?', b'?', b' ', ESC, 0x65]),
        "{octets:02X?}"
    );
    let text = gsm_text(&octets);
    assert_eq!(text, format!("{HEAD}héllo ?? €"));
    let back = DeliveryReceipt::parse(&text).unwrap();
    assert_eq!(back, receipt("héllo ?? €"));
}

#[test]
fn receipt_of_gsm_text_is_unchanged_by_the_round_trip() {
    let r = receipt("5€ [promo] @home_");
    let text = gsm_text(&r.to_short_message());
    assert_eq!(text, r.to_text());
    assert_eq!(DeliveryReceipt::parse(&text).unwrap(), r);
}

/// The octets travel in a deliver_sm through the codec and come out the same.
#[test]
fn receipt_deliver_sm_round_trips_through_the_codec() {
    let r = receipt("héllo 世界 €");
    let pdu = Pdu::new(
        7,
        Body::DeliverSm(DeliverSm {
            esm_class: 0x04,
            data_coding: DATA_CODING,
            short_message: Bytes::from(r.to_short_message()),
            ..DeliverSm::default()
        }),
    );
    let back = Pdu::decode(&pdu.to_bytes()).unwrap();
    let Body::DeliverSm(d) = back.body else {
        panic!("{back:?}")
    };
    assert_eq!(d.data_coding, 0);
    assert_eq!(gsm_text(&d.short_message), format!("{HEAD}héllo ?? €"));
}

proptest! {
    #[test]
    fn any_receipt_text_is_valid_gsm_and_decodes_to_itself_with_question_marks(
        text in "\\PC{0,30}",
    ) {
        let r = receipt(&text);
        let octets = r.to_short_message();
        prop_assert!(octets.iter().all(|&b| b < 0x80));
        let decoded = gsm_text(&octets);
        let expected: String = r
            .to_text()
            .chars()
            .map(|c| match encode_unpacked(&c.to_string()) {
                // Itself, but for ç, which GSM 03.38 holds as Ç (0x09).
                Ok(septets) => gsm_text(&septets),
                Err(_) => "?".to_owned(),
            })
            .collect();
        prop_assert_eq!(&decoded, &expected);
        let back = DeliveryReceipt::parse(&decoded).unwrap();
        prop_assert_eq!(back.id, r.id);
        prop_assert_eq!(back.stat, r.stat);
    }
}
