//! The tokio codec: framing limits end the stream; a bad body is consumed and
//! yielded as an item so the session can answer and stay bound.
#![allow(clippy::unwrap_used)]

mod common;

use bytes::{BufMut, BytesMut};
use common::load_hex;
use smpp_protocol::codec::{FrameError, SmppCodec};
use smpp_protocol::*;
use tokio_util::codec::{Decoder, Encoder};

#[test]
fn bad_body_is_consumed_and_yielded_then_the_next_pdu_decodes() {
    let mut buf = BytesMut::new();
    buf.extend_from_slice(&load_hex("malformed_both_payloads"));
    buf.extend_from_slice(&load_hex("enquire_link"));
    let mut codec = SmppCodec::new();

    let bad = codec.decode(&mut buf).unwrap().unwrap().unwrap_err();
    assert_eq!(bad.header.command_id, CommandId::SUBMIT_SM);
    assert_eq!(bad.header.sequence_number, 1);
    assert_eq!(
        bad.error.command_status(),
        CommandStatus::ESME_RINVOPTPARAMVAL
    );
    assert_eq!(bad.error.field(), "message_payload");
    let answer = Pdu::error_response(&bad.header, bad.error.command_status()).unwrap();
    assert_eq!(answer.body, Body::SubmitSmResp(None));

    let next = codec.decode(&mut buf).unwrap().unwrap().unwrap();
    assert_eq!(next.body, Body::EnquireLink);
    assert!(buf.is_empty());
}

#[test]
fn unknown_command_id_is_an_item_answered_with_generic_nack() {
    let mut buf = BytesMut::from(&load_hex("malformed_unknown_command_id")[..]);
    let bad = SmppCodec::new()
        .decode(&mut buf)
        .unwrap()
        .unwrap()
        .unwrap_err();
    assert_eq!(bad.error.command_status(), CommandStatus::ESME_RINVCMDID);
    let nack = Pdu::error_response(&bad.header, bad.error.command_status()).unwrap();
    assert_eq!(nack.body, Body::GenericNack);
    assert_eq!(nack.sequence_number, 1);
}

#[test]
fn command_length_below_16_ends_the_stream() {
    let mut buf = BytesMut::new();
    buf.put_u32(15);
    buf.put_u32(0x15);
    buf.put_u32(0);
    buf.put_u32(77);
    match SmppCodec::new().decode(&mut buf) {
        Err(FrameError::InvalidLength {
            command_length: 15,
            sequence_number: Some(77),
            ..
        }) => {}
        other => panic!("{other:?}"),
    }
}

#[test]
fn command_length_above_max_fails_before_buffering_the_body() {
    let mut buf = BytesMut::new();
    buf.put_u32(1_000_000);
    let cap_before = buf.capacity();
    match SmppCodec::with_max_length(4096).decode(&mut buf) {
        Err(FrameError::InvalidLength {
            command_length: 1_000_000,
            max: 4096,
            sequence_number: None,
        }) => {}
        other => panic!("{other:?}"),
    }
    assert_eq!(
        buf.capacity(),
        cap_before,
        "nothing reserved for an oversized frame"
    );
}

#[test]
fn default_max_is_64_kib_and_a_pdu_at_the_max_is_accepted() {
    assert_eq!(SmppCodec::new().max_length(), 64 * 1024);
    let payload = vec![7u8; 1000];
    let pdu = Pdu::new(
        9,
        Body::DataSm(DataSm {
            tlvs: vec![Tlv::MessagePayload(payload.into())],
            ..Default::default()
        }),
    );
    let bytes = pdu.to_bytes();
    let mut codec = SmppCodec::with_max_length(bytes.len());
    let mut buf = BytesMut::from(&bytes[..]);
    assert_eq!(codec.decode(&mut buf).unwrap().unwrap().unwrap(), pdu);
    let mut small = SmppCodec::with_max_length(bytes.len() - 1);
    assert!(small.decode(&mut BytesMut::from(&bytes[..])).is_err());
}

#[test]
fn partial_frames_wait_for_more_bytes() {
    let bytes = load_hex("submit_sm");
    let mut codec = SmppCodec::new();
    let mut buf = BytesMut::new();
    for (i, b) in bytes.iter().enumerate() {
        assert!(codec.decode(&mut buf).unwrap().is_none(), "at {i}");
        buf.put_u8(*b);
    }
    assert!(codec.decode(&mut buf).unwrap().unwrap().is_ok());
}

#[test]
fn encoder_appends_to_dst_after_existing_bytes() {
    let mut dst = BytesMut::from(&b"xy"[..]);
    let pdu = Pdu::decode(&load_hex("submit_sm")).unwrap();
    SmppCodec::new().encode(&pdu, &mut dst).unwrap();
    SmppCodec::new().encode(pdu.clone(), &mut dst).unwrap();
    let one = load_hex("submit_sm");
    assert_eq!(&dst[..2], b"xy");
    assert_eq!(&dst[2..2 + one.len()], &one[..]);
    assert_eq!(&dst[2 + one.len()..], &one[..]);
}

#[test]
fn a_bind_with_every_field_at_its_maximum_is_bind_max_len_octets() {
    let s = |n: usize| COctetString::try_from("x".repeat(n - 1).as_str()).unwrap();
    let pdu = Pdu::new(
        1,
        Body::BindTransceiver(Bind {
            system_id: s(16),
            password: s(9),
            system_type: s(13),
            interface_version: 0x34,
            addr_ton: 1,
            addr_npi: 1,
            address_range: s(41),
            tlvs: Vec::new(),
        }),
    );
    let bytes = pdu.to_bytes();
    assert_eq!(bytes.len(), Bind::MAX_LEN);
    let mut codec = SmppCodec::with_max_length(Bind::MAX_LEN);
    let decoded = codec.decode(&mut BytesMut::from(&bytes[..])).unwrap();
    assert_eq!(decoded.unwrap().unwrap(), pdu);
}

#[test]
fn a_raised_maximum_applies_to_the_next_frame() {
    let pdu = Pdu::new(9, Body::SubmitSm(SubmitSm::default()));
    let bytes = pdu.to_bytes();
    let mut codec = SmppCodec::with_max_length(bytes.len() - 1);
    assert!(codec.decode(&mut BytesMut::from(&bytes[..])).is_err());
    codec.set_max_length(bytes.len());
    assert_eq!(codec.max_length(), bytes.len());
    let decoded = codec.decode(&mut BytesMut::from(&bytes[..])).unwrap();
    assert_eq!(decoded.unwrap().unwrap(), pdu);
}
