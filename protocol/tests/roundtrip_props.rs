//! Property tests: decode(encode(x)) == x for every PDU type; arbitrary bytes
//! never panic (decode and codec); a valid stream split at arbitrary points
//! yields the same PDUs through the tokio codec.
#![allow(clippy::unwrap_used)]

use bytes::{BufMut, Bytes, BytesMut};
use proptest::collection::vec;
use proptest::prelude::*;
use smpp_protocol::codec::SmppCodec;
use smpp_protocol::*;
use tokio_util::codec::Decoder;

fn cstring(max_with_nul: usize) -> impl Strategy<Value = COctetString> {
    vec(1u8..=255, 0..max_with_nul).prop_map(|v| COctetString::new(v).unwrap())
}

fn time() -> impl Strategy<Value = COctetString> {
    prop_oneof![
        Just(COctetString::empty()),
        vec(1u8..=255, 16).prop_map(|v| COctetString::new(v).unwrap()),
    ]
}

fn octets(min: usize, max: usize) -> impl Strategy<Value = Bytes> {
    vec(any::<u8>(), min..=max).prop_map(Bytes::from)
}

fn tlv() -> impl Strategy<Value = Tlv> {
    let u8s: Vec<fn(u8) -> Tlv> = vec![
        Tlv::DestAddrSubunit,
        Tlv::DestNetworkType,
        Tlv::DestBearerType,
        Tlv::SourceAddrSubunit,
        Tlv::SourceNetworkType,
        Tlv::SourceBearerType,
        Tlv::PayloadType,
        Tlv::MsMsgWaitFacilities,
        Tlv::PrivacyIndicator,
        Tlv::UserResponseCode,
        Tlv::LanguageIndicator,
        Tlv::SarTotalSegments,
        Tlv::SarSegmentSeqnum,
        Tlv::ScInterfaceVersion,
        Tlv::CallbackNumPresInd,
        Tlv::NumberOfMessages,
        Tlv::DpfResult,
        Tlv::SetDpf,
        Tlv::MsAvailabilityStatus,
        Tlv::DeliveryFailureReason,
        Tlv::MoreMessagesToSend,
        Tlv::MessageState,
        Tlv::UssdServiceOp,
        Tlv::DisplayTime,
        Tlv::MsValidity,
        Tlv::ItsReplyType,
    ];
    let u16s: Vec<fn(u16) -> Tlv> = vec![
        Tlv::DestTelematicsId,
        Tlv::UserMessageReference,
        Tlv::SourcePort,
        Tlv::DestinationPort,
        Tlv::SarMsgRefNum,
        Tlv::SmsSignal,
        Tlv::ItsSessionInfo,
    ];
    let n8 = u8s.len();
    let n16 = u16s.len();
    prop_oneof![
        (0..n8, any::<u8>()).prop_map(move |(i, v)| u8s[i](v)),
        (0..n16, any::<u16>()).prop_map(move |(i, v)| u16s[i](v)),
        any::<u32>().prop_map(Tlv::QosTimeToLive),
        any::<u8>().prop_map(|v| Tlv::SourceTelematicsId {
            value: v.into(),
            len: 1
        }),
        any::<u16>().prop_map(|v| Tlv::SourceTelematicsId { value: v, len: 2 }),
        (any::<u8>(), any::<u16>()).prop_map(|(t, e)| Tlv::NetworkErrorCode {
            network_type: t,
            error_code: e
        }),
        any::<Option<u8>>().prop_map(Tlv::AlertOnMessageDelivery),
        octets(2, 23).prop_map(Tlv::SourceSubaddress),
        octets(2, 23).prop_map(Tlv::DestSubaddress),
        octets(0, 65).prop_map(Tlv::CallbackNumAtag),
        octets(4, 19).prop_map(Tlv::CallbackNum),
        octets(0, 300).prop_map(Tlv::MessagePayload),
        cstring(256).prop_map(Tlv::AdditionalStatusInfoText),
        cstring(65).prop_map(Tlv::ReceiptedMessageId),
        (any::<u16>(), octets(0, 40))
            .prop_filter("standard tags are typed", |(t, _)| TlvTag(*t)
                .name()
                .is_none())
            .prop_map(|(t, v)| Tlv::Unknown {
                tag: TlvTag(t),
                value: v
            }),
    ]
}

fn tlvs() -> impl Strategy<Value = Vec<Tlv>> {
    vec(tlv(), 0..5)
}

/// TLVs for a PDU that also has a short_message: message_payload only if it is empty.
fn sm_and_tlvs() -> impl Strategy<Value = (Bytes, Vec<Tlv>)> {
    (octets(0, 254), tlvs()).prop_map(|(sm, mut t)| {
        if !sm.is_empty() {
            t.retain(|t| !matches!(t, Tlv::MessagePayload(_)));
        }
        (sm, t)
    })
}

prop_compose! {
    fn bind()(system_id in cstring(16), password in cstring(9), system_type in cstring(13),
              interface_version: u8, addr_ton: u8, addr_npi: u8, address_range in cstring(41),
              tlvs in tlvs()) -> Bind {
        Bind { system_id, password, system_type, interface_version, addr_ton, addr_npi, address_range, tlvs }
    }
}

prop_compose! {
    fn submit_sm()(service_type in cstring(6), st: u8, sn: u8, source_addr in cstring(21),
                   dt: u8, dn: u8, destination_addr in cstring(21), flags: [u8; 3],
                   schedule_delivery_time in time(), validity_period in time(), more: [u8; 4],
                   (short_message, tlvs) in sm_and_tlvs()) -> SubmitSm {
        SubmitSm {
            service_type, source_addr_ton: st, source_addr_npi: sn, source_addr,
            dest_addr_ton: dt, dest_addr_npi: dn, destination_addr,
            esm_class: flags[0], protocol_id: flags[1], priority_flag: flags[2],
            schedule_delivery_time, validity_period,
            registered_delivery: more[0], replace_if_present_flag: more[1], data_coding: more[2],
            sm_default_msg_id: more[3], short_message, tlvs,
        }
    }
}

fn dest_address() -> impl Strategy<Value = DestAddress> {
    prop_oneof![
        (any::<u8>(), any::<u8>(), cstring(21)).prop_map(|(t, n, a)| DestAddress::SmeAddress {
            dest_addr_ton: t,
            dest_addr_npi: n,
            destination_addr: a
        }),
        cstring(21).prop_map(|dl_name| DestAddress::DistributionList { dl_name }),
    ]
}

prop_compose! {
    fn submit_multi()(sm in submit_sm(), dest_address in vec(dest_address(), 1..6)) -> SubmitMulti {
        SubmitMulti {
            service_type: sm.service_type, source_addr_ton: sm.source_addr_ton,
            source_addr_npi: sm.source_addr_npi, source_addr: sm.source_addr, dest_address,
            esm_class: sm.esm_class, protocol_id: sm.protocol_id, priority_flag: sm.priority_flag,
            schedule_delivery_time: sm.schedule_delivery_time, validity_period: sm.validity_period,
            registered_delivery: sm.registered_delivery,
            replace_if_present_flag: sm.replace_if_present_flag, data_coding: sm.data_coding,
            sm_default_msg_id: sm.sm_default_msg_id, short_message: sm.short_message, tlvs: sm.tlvs,
        }
    }
}

prop_compose! {
    fn submit_multi_resp()(message_id in cstring(65),
                           list in vec((any::<u8>(), any::<u8>(), cstring(21), any::<u32>()), 0..5),
                           tlvs in tlvs()) -> SubmitMultiResp {
        SubmitMultiResp {
            message_id,
            unsuccess_sme: list.into_iter().map(|(t, n, a, e)| UnsuccessSme {
                dest_addr_ton: t, dest_addr_npi: n, destination_addr: a,
                error_status_code: CommandStatus(e),
            }).collect(),
            tlvs,
        }
    }
}

prop_compose! {
    fn data_sm()(service_type in cstring(6), a: [u8; 4], source_addr in cstring(65),
                 destination_addr in cstring(65), b: [u8; 3], tlvs in tlvs()) -> DataSm {
        DataSm {
            service_type, source_addr_ton: a[0], source_addr_npi: a[1], source_addr,
            dest_addr_ton: a[2], dest_addr_npi: a[3], destination_addr,
            esm_class: b[0], registered_delivery: b[1], data_coding: b[2], tlvs,
        }
    }
}

prop_compose! {
    fn message_id_resp()(message_id in cstring(65), tlvs in tlvs()) -> MessageIdResp {
        MessageIdResp { message_id, tlvs }
    }
}

prop_compose! {
    fn query_sm()(message_id in cstring(65), t: u8, n: u8, source_addr in cstring(21), tlvs in tlvs()) -> QuerySm {
        QuerySm { message_id, source_addr_ton: t, source_addr_npi: n, source_addr, tlvs }
    }
}

prop_compose! {
    fn query_sm_resp()(message_id in cstring(65), final_date in time(), message_state: u8,
                       error_code: u8, tlvs in tlvs()) -> QuerySmResp {
        QuerySmResp { message_id, final_date, message_state, error_code, tlvs }
    }
}

prop_compose! {
    fn cancel_sm()(service_type in cstring(6), message_id in cstring(65), a: [u8; 4],
                   source_addr in cstring(21), destination_addr in cstring(21), tlvs in tlvs()) -> CancelSm {
        CancelSm {
            service_type, message_id, source_addr_ton: a[0], source_addr_npi: a[1], source_addr,
            dest_addr_ton: a[2], dest_addr_npi: a[3], destination_addr, tlvs,
        }
    }
}

prop_compose! {
    fn replace_sm()(message_id in cstring(65), a: [u8; 4], source_addr in cstring(21),
                    schedule_delivery_time in time(), validity_period in time(),
                    (short_message, tlvs) in sm_and_tlvs()) -> ReplaceSm {
        ReplaceSm {
            message_id, source_addr_ton: a[0], source_addr_npi: a[1], source_addr,
            schedule_delivery_time, validity_period, registered_delivery: a[2],
            sm_default_msg_id: a[3], short_message, tlvs,
        }
    }
}

prop_compose! {
    fn alert()(a: [u8; 4], source_addr in cstring(65), esme_addr in cstring(65), tlvs in tlvs()) -> AlertNotification {
        AlertNotification {
            source_addr_ton: a[0], source_addr_npi: a[1], source_addr,
            esme_addr_ton: a[2], esme_addr_npi: a[3], esme_addr, tlvs,
        }
    }
}

prop_compose! {
    fn bind_resp()(system_id in cstring(16), tlvs in tlvs()) -> BindResp {
        BindResp { system_id, tlvs }
    }
}

prop_compose! {
    fn outbind()(system_id in cstring(16), password in cstring(9), tlvs in tlvs()) -> Outbind {
        Outbind { system_id, password, tlvs }
    }
}

/// Every Body variant.
fn body() -> impl Strategy<Value = Body> {
    prop_oneof![
        bind().prop_map(Body::BindReceiver),
        bind().prop_map(Body::BindTransmitter),
        bind().prop_map(Body::BindTransceiver),
        proptest::option::of(bind_resp()).prop_map(Body::BindReceiverResp),
        proptest::option::of(bind_resp()).prop_map(Body::BindTransmitterResp),
        proptest::option::of(bind_resp()).prop_map(Body::BindTransceiverResp),
        outbind().prop_map(Body::Outbind),
        Just(Body::Unbind),
        Just(Body::UnbindResp),
        Just(Body::EnquireLink),
        Just(Body::EnquireLinkResp),
        Just(Body::GenericNack),
        submit_sm().prop_map(Body::SubmitSm),
        proptest::option::of(message_id_resp()).prop_map(Body::SubmitSmResp),
        submit_multi().prop_map(Body::SubmitMulti),
        proptest::option::of(submit_multi_resp()).prop_map(Body::SubmitMultiResp),
        submit_sm().prop_map(Body::DeliverSm),
        proptest::option::of(message_id_resp()).prop_map(Body::DeliverSmResp),
        data_sm().prop_map(Body::DataSm),
        proptest::option::of(message_id_resp()).prop_map(Body::DataSmResp),
        query_sm().prop_map(Body::QuerySm),
        proptest::option::of(query_sm_resp()).prop_map(Body::QuerySmResp),
        cancel_sm().prop_map(Body::CancelSm),
        Just(Body::CancelSmResp),
        replace_sm().prop_map(Body::ReplaceSm),
        Just(Body::ReplaceSmResp),
        alert().prop_map(Body::AlertNotification),
    ]
}

prop_compose! {
    fn any_pdu()(command_status: u32, sequence_number: u32, body in body()) -> Pdu {
        Pdu { command_status: CommandStatus(command_status), sequence_number, body }
    }
}

fn frame_with(id: CommandId, body: &[u8]) -> Bytes {
    let mut b = BytesMut::new();
    b.put_u32(16 + body.len() as u32);
    b.put_u32(id.0);
    b.put_u32(0);
    b.put_u32(1);
    b.put_slice(body);
    b.freeze()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn decode_of_encode_is_identity(pdu in any_pdu()) {
        let bytes = pdu.to_bytes();
        let header = Header::parse(&bytes).unwrap();
        prop_assert_eq!(header.command_length as usize, bytes.len());
        prop_assert_eq!(header.command_id, pdu.command_id());
        let back = Pdu::decode(&bytes).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(back, pdu);
    }

    #[test]
    fn arbitrary_bytes_never_panic_the_decoder(data in vec(any::<u8>(), 0..300)) {
        let _ = Pdu::decode(&Bytes::from(data));
    }

    #[test]
    fn arbitrary_bodies_of_known_commands_never_panic(
        idx in 0..CommandId::ALL.len(),
        body in vec(any::<u8>(), 0..300),
    ) {
        let _ = Pdu::decode(&frame_with(CommandId::ALL[idx], &body));
    }

    /// Strictness means only canonical bytes decode: whatever a mutated PDU
    /// decodes to must re-encode to exactly those bytes.
    #[test]
    fn mutated_valid_pdus_never_panic_and_reencode_exactly(pdu in any_pdu(), pos: usize, val: u8) {
        let mut bytes = pdu.to_bytes().to_vec();
        let p = 16 + pos % (bytes.len() - 15).max(1);
        if p < bytes.len() {
            bytes[p] = val;
        }
        let bytes = Bytes::from(bytes);
        if let Ok(back) = Pdu::decode(&bytes) {
            prop_assert_eq!(back.to_bytes(), bytes);
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic_the_codec(data in vec(any::<u8>(), 0..600), max in 16usize..2000) {
        let mut codec = SmppCodec::with_max_length(max);
        let mut buf = BytesMut::from(&data[..]);
        while let Ok(Some(_)) = codec.decode(&mut buf) {}
    }

    #[test]
    fn a_stream_split_anywhere_yields_the_same_pdus(
        pdus in vec(any_pdu(), 1..6),
        cuts in vec(any::<usize>(), 0..8),
    ) {
        let mut stream = BytesMut::new();
        for p in &pdus {
            p.encode(&mut stream);
        }
        let stream = stream.freeze();
        let mut points: Vec<usize> = cuts.iter().map(|c| c % (stream.len() + 1)).collect();
        points.push(stream.len());
        points.sort_unstable();

        let mut codec = SmppCodec::new();
        let mut buf = BytesMut::new();
        let mut got = Vec::new();
        let mut at = 0;
        for p in points {
            buf.extend_from_slice(&stream[at..p]);
            at = p;
            while let Some(item) = codec.decode(&mut buf).unwrap() {
                got.push(item.unwrap());
            }
        }
        prop_assert!(codec.decode_eof(&mut buf).unwrap().is_none());
        prop_assert_eq!(got, pdus);
    }
}
