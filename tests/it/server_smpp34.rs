//! smppd driven by an independent SMPP implementation, the `smpp34` crate, so our
//! encoder and decoder cannot agree on a shared mistake: its full client engine
//! (bind, submit_sm, receipt deliver_sm, unbind) and its codec over a raw socket
//! (bind bytes written by hand from the spec, submit_sm, enquire_link, unbind).

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use smpp34::client::{SmppClient, SmppClientListener, BIND_TYPE, SMSC};
use smpp34::{
    bind_transceiver_resp, deliver_sm, deliver_sm_resp, enquire_link, submit_sm, submit_sm_resp,
    unbind_resp, CommandHeader, SmppConnectionInformation, TlvList,
};
use smppd::service::{Address, ReceiptDelivery, ReceiptSink};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, Mutex};

use crate::support::config::TestConfig;
use crate::support::server_harness::start;

const WAIT: Duration = Duration::from_secs(5);

/// What the independent smpp34 client tells us (an ESME of another make, not
/// `support::esme`).
struct Smpp34Listener {
    bound: Mutex<Option<tokio::sync::oneshot::Sender<SMSC>>>,
    delivered: mpsc::UnboundedSender<deliver_sm>,
}

#[async_trait]
impl SmppClientListener for Smpp34Listener {
    async fn on_smsc_bound(&self, smsc: SMSC, _s: &String) {
        if let Some(tx) = self.bound.lock().await.take() {
            let _ = tx.send(smsc);
        }
    }

    async fn on_deliver_sm(
        &self,
        req: deliver_sm,
        _c: &SmppConnectionInformation,
        _s: &String,
    ) -> deliver_sm_resp {
        let _ = self.delivered.send(req.clone());
        req.accept()
    }
}

#[tokio::test]
async fn smpp34_client_binds_submits_takes_a_receipt_and_unbinds() {
    let s = start(TestConfig::new().esme("esme1", "")).await;
    let (bound_tx, bound_rx) = tokio::sync::oneshot::channel();
    let (dlv_tx, mut dlv_rx) = mpsc::unbounded_channel();
    let listener = Arc::new(Smpp34Listener {
        bound: Mutex::new(Some(bound_tx)),
        delivered: dlv_tx,
    });
    let mut client = SmppClient::new(
        "127.0.0.1".to_string(),
        s.addr.port(),
        false,
        BIND_TYPE::TRX,
        "esme1".to_string(),
        "pw".to_string(),
        String::new(),
        0,
        0,
        String::new(),
        listener,
        10,
    );
    client.start().await;
    let smsc = tokio::time::timeout(WAIT, bound_rx).await.unwrap().unwrap();
    assert_eq!(s.registry.bind_count("esme1"), 1);

    let resp = smsc
        .submit_sm()
        .source_addr("12345")
        .destination_addr("31600000000")
        .registered_delivery(1)
        .short_message(b"hello from smpp34")
        .send()
        .await
        .unwrap();
    assert!(resp.is_success());
    assert_eq!(resp.message_id.as_deref(), Some("msg-1"));
    let req = s.service.submits.lock().unwrap()[0].clone();
    assert_eq!(req.dest.addr, "31600000000");
    assert_eq!(&req.raw_user_data[..], b"hello from smpp34");

    let registry = s.registry.clone();
    let delivered = tokio::spawn(async move {
        registry
            .deliver(ReceiptDelivery {
                system_id: "esme1".into(),
                source: Address { ton: 1, npi: 1, addr: "31600000000".into() },
                dest: Address { ton: 0, npi: 0, addr: "12345".into() },
                short_message: b"id:msg-1 sub:001 dlvrd:001 submit date:2401011200 done date:2401011201 stat:DELIVRD err:000 text:".to_vec(),
                receipted_message_id: "msg-1".into(),
                message_state: 2,
                forward: None,
                intermediate: false,
                network_error: None,
            })
            .await
    });
    let d = tokio::time::timeout(WAIT, dlv_rx.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(d.esm_class, 0x04);
    assert_eq!(d.source_addr, "31600000000");
    assert_eq!(d.destination_addr, "12345");
    assert_eq!(d.tlvs.receipted_message_id().as_deref(), Some("msg-1"));
    assert_eq!(d.tlvs.message_state(), Some(2));
    assert_eq!(
        tokio::time::timeout(WAIT, delivered)
            .await
            .unwrap()
            .unwrap(),
        Ok(())
    );

    let unbound = smsc.send_unbind().await.unwrap();
    assert!(unbound.is_success());
    s.wait_binds("esme1", 0).await;
    client.stop().await;
}

async fn read_pdu(sock: &mut TcpStream) -> Vec<u8> {
    tokio::time::timeout(WAIT, async {
        let mut len = [0u8; 4];
        sock.read_exact(&mut len).await.unwrap();
        let n = u32::from_be_bytes(len) as usize;
        let mut pdu = len.to_vec();
        pdu.resize(n, 0);
        sock.read_exact(&mut pdu[4..]).await.unwrap();
        pdu
    })
    .await
    .unwrap()
}

#[tokio::test]
async fn smpp34_codec_over_a_raw_socket_binds_submits_enquires_and_unbinds() {
    let s = start(TestConfig::new().esme("esme1", "")).await;
    let mut sock = TcpStream::connect(s.addr).await.unwrap();

    // bind_transceiver written from the spec (§3.1): system_id "esme1", password
    // "pw", system_type "", interface_version 0x34, ton 0, npi 0, address_range "".
    let mut bind = vec![0, 0, 0, 0, 0, 0, 0, 0x09, 0, 0, 0, 0, 0, 0, 0, 1];
    bind.extend_from_slice(b"esme1\0pw\0\0");
    bind.extend_from_slice(&[0x34, 0, 0, 0]);
    let n = bind.len() as u32;
    bind[..4].copy_from_slice(&n.to_be_bytes());
    sock.write_all(&bind).await.unwrap();
    let pdu = read_pdu(&mut sock).await;
    let h = CommandHeader::decode(&pdu).unwrap();
    assert_eq!(
        (h.command_id, h.command_status, h.sequence_number),
        (0x8000_0009, 0, 1)
    );
    let resp = bind_transceiver_resp::decode(h, &pdu).unwrap();
    assert_eq!(resp.system_id.as_deref(), Some("smppd-test"));

    let submit = submit_sm::new(
        2,
        String::new(),
        5,
        0,
        "SENDER".into(),
        1,
        1,
        "4912345".into(),
        0,
        0,
        0,
        String::new(),
        String::new(),
        1,
        0,
        0,
        0,
        b"independent".to_vec(),
    );
    sock.write_all(&submit.encode()).await.unwrap();
    let pdu = read_pdu(&mut sock).await;
    let h = CommandHeader::decode(&pdu).unwrap();
    assert_eq!((h.command_id, h.sequence_number), (0x8000_0004, 2));
    let resp = submit_sm_resp::decode(h, &pdu).unwrap();
    assert!(resp.is_success());
    assert_eq!(resp.message_id.as_deref(), Some("msg-1"));

    sock.write_all(&enquire_link::new(3).encode())
        .await
        .unwrap();
    let pdu = read_pdu(&mut sock).await;
    let h = CommandHeader::decode(&pdu).unwrap();
    assert_eq!(
        (
            h.command_id,
            h.command_status,
            h.sequence_number,
            h.command_length
        ),
        (0x8000_0015, 0, 3, 16)
    );

    // unbind (header only).
    sock.write_all(&[0, 0, 0, 16, 0, 0, 0, 6, 0, 0, 0, 0, 0, 0, 0, 4])
        .await
        .unwrap();
    let pdu = read_pdu(&mut sock).await;
    let h = CommandHeader::decode(&pdu).unwrap();
    assert_eq!(h.sequence_number, 4);
    assert!(unbind_resp::decode(h, &pdu).unwrap().is_success());
    let mut rest = Vec::new();
    let n = tokio::time::timeout(WAIT, sock.read_to_end(&mut rest))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(n, 0, "server closes after unbind_resp");
}
