//! Open newtypes for wire codes: named constants, names, Debug, responses.
#![allow(clippy::unwrap_used)]

use smpp_protocol::*;

#[test]
fn command_ids_have_spec_names_and_unknown_ids_print_as_hex() {
    assert_eq!(CommandId::ALL.len(), 27);
    assert_eq!(CommandId::SUBMIT_SM.0, 4);
    assert_eq!(CommandId::SUBMIT_SM.name(), Some("submit_sm"));
    assert_eq!(format!("{:?}", CommandId::DATA_SM_RESP), "data_sm_resp");
    assert_eq!(format!("{:?}", CommandId(0x111)), "CommandId(0x00000111)");
    assert_eq!(CommandId::SUBMIT_SM.response(), CommandId::SUBMIT_SM_RESP);
    assert!(CommandId::GENERIC_NACK.is_response());
    assert!(!CommandId::OUTBIND.is_response());
    for id in CommandId::ALL {
        assert!(id.response().is_response());
    }
}

#[test]
fn command_statuses_have_spec_names() {
    assert_eq!(CommandStatus::ALL.len(), 48);
    assert_eq!(CommandStatus::ESME_RINVBNDSTS.0, 4);
    assert_eq!(CommandStatus::ESME_RALYBND.0, 5);
    assert_eq!(CommandStatus::ESME_RINVOPTPARSTREAM.0, 0xC0);
    assert_eq!(CommandStatus(0x45).name(), Some("ESME_RSUBMITFAIL"));
    assert_eq!(
        format!("{:?}", CommandStatus(0x400)),
        "CommandStatus(0x00000400)"
    );
}

#[test]
fn tlv_tags_cover_the_reference_table() {
    assert_eq!(TlvTag::ALL.len(), 44);
    assert_eq!(TlvTag::MESSAGE_PAYLOAD.0, 0x0424);
    assert_eq!(format!("{:?}", TlvTag(0x1401)), "TlvTag(0x1401)");
}

#[test]
fn error_response_picks_the_right_answer() {
    let h = |id: CommandId| Header {
        command_length: 16,
        command_id: id,
        command_status: CommandStatus::ESME_ROK,
        sequence_number: 5,
    };
    let r = Pdu::error_response(&h(CommandId::SUBMIT_SM), CommandStatus::ESME_RINVBNDSTS).unwrap();
    assert_eq!(r.command_id(), CommandId::SUBMIT_SM_RESP);
    assert_eq!(r.to_bytes().len(), 16);
    assert!(Pdu::error_response(
        &h(CommandId::ALERT_NOTIFICATION),
        CommandStatus::ESME_RSYSERR
    )
    .is_none());
    assert!(
        Pdu::error_response(&h(CommandId::DELIVER_SM_RESP), CommandStatus::ESME_RSYSERR).is_none()
    );
    let nack = Pdu::error_response(&h(CommandId(0x111)), CommandStatus::ESME_RINVCMDID).unwrap();
    assert_eq!(nack.body, Body::GenericNack);
}

#[test]
fn error_display_names_field_and_status() {
    let e =
        Pdu::decode_slice(&[0, 0, 0, 17, 0, 0, 0, 0x15, 0, 0, 0, 0, 0, 0, 0, 1, 9]).unwrap_err();
    let text = e.to_string();
    assert!(
        text.contains("body") && text.contains("ESME_RINVCMDLEN"),
        "{text}"
    );
}
