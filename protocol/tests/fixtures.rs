//! Every fixture in `fixtures/pdu/` decodes to a fully written-out expected value
//! and re-encodes byte for byte; every `malformed_*` fixture yields its expected
//! status and field.
#![allow(clippy::unwrap_used)]

mod common;

use bytes::Bytes;
use common::{cs, expectation, fixtures_dir, load_hex};
use smpp_protocol::*;

fn pdu(status: u32, seq: u32, body: Body) -> Pdu {
    Pdu {
        command_status: CommandStatus(status),
        sequence_number: seq,
        body,
    }
}

fn bind(sid: &str, pw: &str, st: &str, ar: &str) -> Bind {
    Bind {
        system_id: cs(sid),
        password: cs(pw),
        system_type: cs(st),
        interface_version: 0x34,
        addr_ton: 1,
        addr_npi: 1,
        address_range: cs(ar),
        tlvs: vec![],
    }
}

/// The submit_sm of reference Appendix A, with per-case overrides applied by the caller.
fn hello_sm() -> SubmitSm {
    SubmitSm {
        service_type: cs(""),
        source_addr_ton: 1,
        source_addr_npi: 1,
        source_addr: cs("447700900001"),
        dest_addr_ton: 1,
        dest_addr_npi: 1,
        destination_addr: cs("447700900002"),
        esm_class: 0,
        protocol_id: 0,
        priority_flag: 0,
        schedule_delivery_time: cs(""),
        validity_period: cs(""),
        registered_delivery: 1,
        replace_if_present_flag: 0,
        data_coding: 0,
        sm_default_msg_id: 0,
        short_message: Bytes::from_static(b"Hello"),
        tlvs: vec![],
    }
}

fn mid(id: &str, tlvs: Vec<Tlv>) -> MessageIdResp {
    MessageIdResp {
        message_id: cs(id),
        tlvs,
    }
}

fn ucs2(s: &str) -> Vec<u8> {
    s.encode_utf16().flat_map(|u| u.to_be_bytes()).collect()
}

fn expected() -> Vec<(&'static str, Pdu)> {
    let receipt: &[u8] = b"id:1A2B3C4D sub:001 dlvrd:001 submit date:2403151430 done date:2403151431 stat:DELIVRD err:000 text:Hello";
    let mut udh16 = vec![0x06, 0x08, 0x04, 0x12, 0x34, 0x03, 0x02];
    udh16.extend(ucs2("Привет"));
    vec![
        (
            "bind_transmitter",
            pdu(
                0,
                1,
                Body::BindTransmitter(bind("SMPP3TEST", "secret08", "SUBMIT1", "")),
            ),
        ),
        (
            "bind_receiver",
            pdu(
                0,
                2,
                Body::BindReceiver(bind("rx_client", "pw", "", "^4477")),
            ),
        ),
        (
            "bind_transceiver",
            pdu(
                0,
                3,
                Body::BindTransceiver(bind("trx", "secret", "VMS", "")),
            ),
        ),
        (
            "bind_transmitter_resp",
            pdu(
                0,
                1,
                Body::BindTransmitterResp(Some(BindResp {
                    system_id: cs("SMSC"),
                    tlvs: vec![],
                })),
            ),
        ),
        (
            "bind_transmitter_resp_error",
            pdu(0x0E, 1, Body::BindTransmitterResp(None)),
        ),
        (
            "bind_receiver_resp",
            pdu(
                0,
                2,
                Body::BindReceiverResp(Some(BindResp {
                    system_id: cs("SMSC"),
                    tlvs: vec![Tlv::ScInterfaceVersion(0x34)],
                })),
            ),
        ),
        (
            "bind_transceiver_resp",
            pdu(
                0,
                1,
                Body::BindTransceiverResp(Some(BindResp {
                    system_id: cs("SMSC"),
                    tlvs: vec![Tlv::ScInterfaceVersion(0x34)],
                })),
            ),
        ),
        (
            "bind_transceiver_resp_error_with_body",
            pdu(
                0x0D,
                3,
                Body::BindTransceiverResp(Some(BindResp {
                    system_id: cs("SMSC"),
                    tlvs: vec![],
                })),
            ),
        ),
        (
            "outbind",
            pdu(
                0,
                7,
                Body::Outbind(Outbind {
                    system_id: cs("SMSC"),
                    password: cs("pw"),
                    tlvs: vec![],
                }),
            ),
        ),
        ("unbind", pdu(0, 4, Body::Unbind)),
        ("unbind_resp", pdu(0, 4, Body::UnbindResp)),
        ("enquire_link", pdu(0, 15, Body::EnquireLink)),
        ("enquire_link_resp", pdu(0, 15, Body::EnquireLinkResp)),
        ("generic_nack", pdu(3, 17, Body::GenericNack)),
        ("cancel_sm_resp", pdu(0, 11, Body::CancelSmResp)),
        ("replace_sm_resp_error", pdu(0x13, 12, Body::ReplaceSmResp)),
        ("submit_sm", pdu(0, 2, Body::SubmitSm(hello_sm()))),
        (
            "submit_sm_udh8",
            pdu(
                0,
                3,
                Body::SubmitSm(SubmitSm {
                    source_addr: cs("12345"),
                    esm_class: 0x40,
                    registered_delivery: 0,
                    short_message: Bytes::from_static(b"\x05\x00\x03\xCC\x02\x01Part one"),
                    ..hello_sm()
                }),
            ),
        ),
        (
            "submit_sm_udh16_ucs2",
            pdu(
                0,
                4,
                Body::SubmitSm(SubmitSm {
                    source_addr: cs("12345"),
                    esm_class: 0x40,
                    registered_delivery: 0,
                    data_coding: 8,
                    short_message: Bytes::from(udh16),
                    ..hello_sm()
                }),
            ),
        ),
        (
            "submit_sm_sar",
            pdu(
                0,
                5,
                Body::SubmitSm(SubmitSm {
                    source_addr: cs("12345"),
                    registered_delivery: 0,
                    short_message: Bytes::from_static(b"Part one"),
                    tlvs: vec![
                        Tlv::SarMsgRefNum(0x1234),
                        Tlv::SarTotalSegments(3),
                        Tlv::SarSegmentSeqnum(1),
                    ],
                    ..hello_sm()
                }),
            ),
        ),
        (
            "submit_sm_payload_tlvs",
            pdu(
                0,
                6,
                Body::SubmitSm(SubmitSm {
                    service_type: cs("CMT"),
                    protocol_id: 0x41,
                    priority_flag: 1,
                    schedule_delivery_time: cs("240315143000004+"),
                    validity_period: cs("000002120000000R"),
                    short_message: Bytes::new(),
                    tlvs: vec![
                        Tlv::Unknown {
                            tag: TlvTag(0x1401),
                            value: Bytes::from_static(&[0xde, 0xad]),
                        },
                        Tlv::MessagePayload(Bytes::from_static(b"A long text in the payload")),
                        Tlv::SourceTelematicsId { value: 7, len: 2 },
                        Tlv::AlertOnMessageDelivery(None),
                        Tlv::CallbackNum(Bytes::from_static(b"\x01\x01\x014477")),
                        Tlv::QosTimeToLive(3600),
                        Tlv::NetworkErrorCode {
                            network_type: 3,
                            error_code: 0x22,
                        },
                    ],
                    ..hello_sm()
                }),
            ),
        ),
        (
            "submit_sm_resp",
            pdu(0, 2, Body::SubmitSmResp(Some(mid("1A2B3C4D", vec![])))),
        ),
        (
            "submit_sm_resp_error",
            pdu(0x45, 3, Body::SubmitSmResp(None)),
        ),
        (
            "submit_sm_resp_error_null_body",
            pdu(0x58, 4, Body::SubmitSmResp(Some(mid("", vec![])))),
        ),
        (
            "deliver_sm_receipt",
            pdu(
                0,
                1,
                Body::DeliverSm(DeliverSm {
                    source_addr: cs("447700900002"),
                    destination_addr: cs("12345"),
                    esm_class: 0x04,
                    registered_delivery: 0,
                    short_message: Bytes::from_static(receipt),
                    tlvs: vec![
                        Tlv::ReceiptedMessageId(cs("1A2B3C4D")),
                        Tlv::MessageState(2),
                    ],
                    ..hello_sm()
                }),
            ),
        ),
        (
            "deliver_sm_ucs2",
            pdu(
                0,
                8,
                Body::DeliverSm(DeliverSm {
                    source_addr: cs("447700900002"),
                    destination_addr: cs("12345"),
                    registered_delivery: 0,
                    data_coding: 8,
                    short_message: Bytes::from(ucs2("Hi 😀")),
                    ..hello_sm()
                }),
            ),
        ),
        (
            "deliver_sm_resp",
            pdu(0, 1, Body::DeliverSmResp(Some(mid("", vec![])))),
        ),
        (
            "deliver_sm_resp_no_body",
            pdu(0, 8, Body::DeliverSmResp(None)),
        ),
        (
            "submit_multi",
            pdu(
                0,
                9,
                Body::SubmitMulti(SubmitMulti {
                    service_type: cs(""),
                    source_addr_ton: 1,
                    source_addr_npi: 1,
                    source_addr: cs("12345"),
                    dest_address: vec![
                        DestAddress::SmeAddress {
                            dest_addr_ton: 1,
                            dest_addr_npi: 1,
                            destination_addr: cs("447700900003"),
                        },
                        DestAddress::DistributionList {
                            dl_name: cs("friends"),
                        },
                    ],
                    esm_class: 0,
                    protocol_id: 0,
                    priority_flag: 0,
                    schedule_delivery_time: cs(""),
                    validity_period: cs(""),
                    registered_delivery: 0,
                    replace_if_present_flag: 0,
                    data_coding: 0,
                    sm_default_msg_id: 0,
                    short_message: Bytes::from_static(b"Hi"),
                    tlvs: vec![],
                }),
            ),
        ),
        (
            "submit_multi_resp",
            pdu(
                0,
                9,
                Body::SubmitMultiResp(Some(SubmitMultiResp {
                    message_id: cs("MID1"),
                    unsuccess_sme: vec![UnsuccessSme {
                        dest_addr_ton: 1,
                        dest_addr_npi: 1,
                        destination_addr: cs("447700900003"),
                        error_status_code: CommandStatus::ESME_RINVDSTADR,
                    }],
                    tlvs: vec![],
                })),
            ),
        ),
        (
            "data_sm",
            pdu(
                0,
                13,
                Body::DataSm(DataSm {
                    service_type: cs("WAP"),
                    source_addr_ton: 1,
                    source_addr_npi: 1,
                    source_addr: cs("12345"),
                    dest_addr_ton: 1,
                    dest_addr_npi: 1,
                    destination_addr: cs("447700900002"),
                    esm_class: 0,
                    registered_delivery: 1,
                    data_coding: 4,
                    tlvs: vec![
                        Tlv::MessagePayload(Bytes::from_static(&[0, 1, 2, 3])),
                        Tlv::SourcePort(0x23f0),
                        Tlv::DestinationPort(0x0b84),
                    ],
                }),
            ),
        ),
        (
            "data_sm_resp",
            pdu(
                0xFE,
                13,
                Body::DataSmResp(Some(mid(
                    "D1",
                    vec![
                        Tlv::DeliveryFailureReason(3),
                        Tlv::NetworkErrorCode {
                            network_type: 3,
                            error_code: 0x22,
                        },
                        Tlv::AdditionalStatusInfoText(cs("absent subscriber")),
                        Tlv::DpfResult(1),
                    ],
                ))),
            ),
        ),
        ("data_sm_resp_error", pdu(0x08, 14, Body::DataSmResp(None))),
        (
            "query_sm",
            pdu(
                0,
                10,
                Body::QuerySm(QuerySm {
                    message_id: cs("1A2B3C4D"),
                    source_addr_ton: 1,
                    source_addr_npi: 1,
                    source_addr: cs("12345"),
                    tlvs: vec![],
                }),
            ),
        ),
        (
            "query_sm_resp",
            pdu(
                0,
                10,
                Body::QuerySmResp(Some(QuerySmResp {
                    message_id: cs("1A2B3C4D"),
                    final_date: cs("240315143100000+"),
                    message_state: 2,
                    error_code: 0,
                    tlvs: vec![],
                })),
            ),
        ),
        (
            "cancel_sm",
            pdu(
                0,
                11,
                Body::CancelSm(CancelSm {
                    service_type: cs(""),
                    message_id: cs("1A2B3C4D"),
                    source_addr_ton: 1,
                    source_addr_npi: 1,
                    source_addr: cs("12345"),
                    dest_addr_ton: 0,
                    dest_addr_npi: 0,
                    destination_addr: cs(""),
                    tlvs: vec![],
                }),
            ),
        ),
        (
            "replace_sm",
            pdu(
                0,
                12,
                Body::ReplaceSm(ReplaceSm {
                    message_id: cs("1A2B3C4D"),
                    source_addr_ton: 1,
                    source_addr_npi: 1,
                    source_addr: cs("12345"),
                    schedule_delivery_time: cs(""),
                    validity_period: cs("000001000000000R"),
                    registered_delivery: 1,
                    sm_default_msg_id: 0,
                    short_message: Bytes::from_static(b"New text"),
                    tlvs: vec![],
                }),
            ),
        ),
        (
            "alert_notification",
            pdu(
                0,
                14,
                Body::AlertNotification(AlertNotification {
                    source_addr_ton: 1,
                    source_addr_npi: 1,
                    source_addr: cs("447700900002"),
                    esme_addr_ton: 1,
                    esme_addr_npi: 1,
                    esme_addr: cs("12345"),
                    tlvs: vec![Tlv::MsAvailabilityStatus(0)],
                }),
            ),
        ),
    ]
}

fn fixture_names(malformed: bool) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(fixtures_dir())
        .unwrap()
        .filter_map(|e| {
            let name = e.unwrap().file_name().into_string().unwrap();
            name.strip_suffix(".hex").map(str::to_string)
        })
        .filter(|n| n.starts_with("malformed_") == malformed)
        .collect();
    names.sort();
    names
}

#[test]
fn every_valid_fixture_decodes_to_its_expected_value_and_reencodes_byte_for_byte() {
    let cases = expected();
    for (name, want) in &cases {
        let bytes = load_hex(name);
        let got = Pdu::decode(&bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(&got, want, "{name}: decoded value");
        assert_eq!(
            want.to_bytes(),
            bytes,
            "{name}: encoding the expected value"
        );
        assert_eq!(
            got.to_bytes(),
            bytes,
            "{name}: re-encoding the decoded value"
        );
    }
    // A fixture without a written-out expectation would silently test nothing.
    let covered: Vec<&str> = cases.iter().map(|(n, _)| *n).collect();
    for name in fixture_names(false) {
        assert!(
            covered.contains(&name.as_str()),
            "fixture {name} has no expected value"
        );
    }
}

#[test]
fn every_malformed_fixture_yields_its_expected_status_and_field() {
    let names = fixture_names(true);
    assert!(
        names.len() >= 15,
        "expected a real set of malformed fixtures"
    );
    for name in names {
        let (status, field) = expectation(&name);
        let err = Pdu::decode(&load_hex(&name)).expect_err(&name);
        assert_eq!(
            err.command_status().name(),
            Some(status.as_str()),
            "{name}: {err}"
        );
        assert_eq!(err.field(), field, "{name}: {err}");
    }
}

#[test]
fn accessors_give_user_data_and_sar() {
    let sar = Pdu::decode(&load_hex("submit_sm_sar")).unwrap();
    let Body::SubmitSm(sm) = sar.body else {
        panic!()
    };
    assert_eq!(sm.user_data(), b"Part one");
    assert_eq!(sm.sar(), (Some(0x1234), Some(3), Some(1)));

    let payload = Pdu::decode(&load_hex("submit_sm_payload_tlvs")).unwrap();
    let Body::SubmitSm(sm) = payload.body else {
        panic!()
    };
    assert_eq!(sm.user_data(), b"A long text in the payload");
    assert_eq!(sm.sar(), (None, None, None));

    let data = Pdu::decode(&load_hex("data_sm")).unwrap();
    let Body::DataSm(d) = data.body else { panic!() };
    assert_eq!(d.user_data(), &[0, 1, 2, 3]);

    let multi = Pdu::decode(&load_hex("submit_multi")).unwrap();
    let Body::SubmitMulti(m) = multi.body else {
        panic!()
    };
    assert_eq!(m.user_data(), b"Hi");
}

#[test]
fn decoded_strings_are_slices_of_the_frame_not_copies() {
    let frame = load_hex("submit_sm");
    let pdu = Pdu::decode(&frame).unwrap();
    let Body::SubmitSm(sm) = pdu.body else {
        panic!()
    };
    let range = frame.as_ptr_range();
    assert!(range.contains(&sm.source_addr.as_bytes().as_ptr()));
    assert!(range.contains(&sm.short_message.as_ptr()));
}
