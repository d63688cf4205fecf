//! Receipts as an ESME of another make sees them, over a live receiver bind on the
//! whole smppd (sessions + store, Redis 7.0 and Valkey 9):
//! * the short_message of a receipt is GSM 03.38 septets, as its data_coding 0 says
//!   (every octet < 0x80, `?` for what GSM cannot hold, `€` as an escape), and
//!   `smppd pdu decode` reads it;
//! * a generic_nack answering a receipt's deliver_sm — even with command_status 0 —
//!   means it failed (reference §10.4): the receipt comes again later.
//!
//! The receiver here reads one PDU at a time (an [`Esme`] that is not answering), so
//! a test sees the PDU exactly and answers it as it likes.

use std::process::Command;

use smpp_protocol::receipt::{DeliveryReceipt, ReceiptStat};
use smpp_protocol::text::{decode_user_data, DecodedText};
use smpp_protocol::{Body, CommandStatus, DeliverSm, Pdu, Tlv};

use crate::support::backend::both;
use crate::support::config::PW;
use crate::support::e2e::*;
use crate::support::esme::*;
use crate::support::messages::*;
use crate::support::servers::RedisKind;

/// The next deliver_sm to `rx` (not answered), within [`T`].
async fn deliver_sm(rx: &Esme) -> (Pdu, DeliverSm) {
    let p = rx.next_pdu(T).await;
    match &p.body {
        Body::DeliverSm(d) => {
            let d = d.clone();
            (p, d)
        }
        other => panic!("expected deliver_sm, got {other:?}"),
    }
}

async fn answer_ok(rx: &Esme, p: &Pdu) {
    rx.send(Pdu::new(p.sequence_number, Body::DeliverSmResp(None)))
        .await;
}

fn receipted_id(d: &DeliverSm) -> Option<String> {
    d.tlvs.iter().find_map(|t| match t {
        Tlv::ReceiptedMessageId(id) => Some(id.to_string_lossy().into_owned()),
        _ => None,
    })
}

/// `smppd pdu decode` of `pdu` (the real binary): its JSON line, after checking that
/// it exited 0 (it fails when a PDU or its text does not decode).
fn smppd_pdu_decode(pdu: &Pdu) -> serde_json::Value {
    let out = Command::new(env!("CARGO_BIN_EXE_smppd"))
        .args(["pdu", "decode", &hex::encode(pdu.to_bytes())])
        .output()
        .unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(
        out.status.success(),
        "smppd pdu decode: {:?}\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_str(stdout.lines().next().unwrap()).unwrap()
}

both!(
    receipt_text_is_gsm_septets_that_smppd_and_esmes_decode,
    |kind: RedisKind| async move {
        let env = Env::start(kind, "receipt-gsm").await;
        let app = env.start_app("node-a").await;
        let rx = Esme::bound(app.addr, BindAs::Rx, "alice", PW).await;
        let tx = Esme::answering(app.addr, BindAs::Tx, "alice").await;
        // UCS-2, so the message itself holds what GSM 03.38 cannot.
        let id = tx
            .submit_ok(segment(
                "4915112345",
                "100",
                None,
                8,
                &ucs2("héllo 世界 €"),
                1,
                "",
            ))
            .await;

        let (p, d) = deliver_sm(&rx).await;
        assert_eq!((d.esm_class, d.data_coding), (0x04, 0), "{d:?}");
        assert_eq!(receipted_id(&d).as_deref(), Some(id.as_str()));
        let octets = d.short_message.to_vec();
        assert!(
            octets.iter().all(|&b| b < 0x80),
            "short_message octets are GSM 03.38 septets: {octets:02X?}"
        );
        // é is in the default alphabet (0x05), 世界 is not (`?`), € is ESC 0x65.
        assert!(
            octets.ends_with(&[b'h', 0x05, b'l', b'l', b'o', b' ', b'?', b'?', b' ', 0x1B, 0x65]),
            "{octets:02X?}"
        );

        // Our own decoder (strict) reads it, and it is an Appendix B receipt.
        let Ok(DecodedText::Text(text)) = decode_user_data(d.data_coding, &octets) else {
            panic!("data_coding 0 short_message does not decode: {octets:02X?}")
        };
        assert!(text.ends_with(" text:héllo ?? €"), "{text}");
        let r = DeliveryReceipt::parse(&text).unwrap();
        assert_eq!((r.id.as_str(), r.stat), (id.as_str(), ReceiptStat::Delivrd));
        assert_eq!(r.text, "héllo ?? €");

        // So does `smppd pdu decode` of the PDU's bytes.
        let v = smppd_pdu_decode(&p);
        assert_eq!(v["message"]["text"], serde_json::json!(text), "{v}");

        answer_ok(&rx, &p).await;
        drop(rx);
        app.stop().await;
    }
);

both!(
    receipt_answered_with_generic_nack_status_0_comes_again,
    |kind: RedisKind| async move {
        let env = Env::start(kind, "receipt-nack").await;
        let app = env.start_app("node-a").await;
        let rx = Esme::bound(app.addr, BindAs::Rx, "alice", PW).await;
        let tx = Esme::answering(app.addr, BindAs::Tx, "alice").await;
        let id = tx
            .submit_ok(segment(
                "4915112345",
                "100",
                None,
                0,
                &gsm("nack me"),
                1,
                "",
            ))
            .await;

        let (first, d1) = deliver_sm(&rx).await;
        assert_eq!(receipted_id(&d1).as_deref(), Some(id.as_str()), "{d1:?}");
        // generic_nack, command_status 0, matching the deliver_sm: it failed.
        rx.send(Pdu::generic_nack(
            first.sequence_number,
            CommandStatus::ESME_ROK,
        ))
        .await;

        // The receipt stayed queued and is sent again, as a new request: the store
        // makes it due again after its retry pause (1 s for a first failure); the
        // wait is for that deliver_sm, up to T.
        let (second, d2) = deliver_sm(&rx).await;
        assert_ne!(
            second.sequence_number, first.sequence_number,
            "a new request"
        );
        assert_eq!(receipted_id(&d2).as_deref(), Some(id.as_str()), "{d2:?}");
        assert_eq!(d2.short_message, d1.short_message);
        answer_ok(&rx, &second).await;

        drop(rx);
        app.stop().await;
    }
);
