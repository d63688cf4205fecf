//! Interop settings of an account, over real SMPP binds on the whole smppd (sessions
//! + store, Valkey 9 — nothing here depends on the Redis version):
//! * `default_alphabet = "ascii"`: data_coding 0 is ASCII for the account, so `_`
//!   stays `_` in the outcome document and comes back as `_` in the receipt's `text:`
//!   (GSM 03.38 would read the octet 0x5F as `§`); `"latin1"` the same with é;
//! * national language shift tables named by the UDH (IEI 0x25 / 0x24) decode the
//!   outcome's text;
//! * `receipt_pdu = "data_sm"`: the receipt reaches the receiver as data_sm, the text in
//!   message_payload, and resolves on its data_sm_resp.
//!
//! Account names are unique to this file: what data_coding 0 means is published per
//! system_id for the whole process.

use bytes::Bytes;
use smpp_protocol::CommandId;

use crate::support::e2e::*;
use crate::support::esme::*;
use crate::support::messages::*;
use crate::support::servers::RedisKind;

const WAIT: std::time::Duration = std::time::Duration::from_secs(20);

/// The env's own accounts instead of alice and bob: each as they are, and with
/// `extra`.
async fn env(name: &str) -> Env {
    let mut env = Env::start(RedisKind::Valkey9, name).await;
    env.config.remove("esme");
    for (system_id, extra) in [
        ("txt_ascii", "default_alphabet = \"ascii\""),
        ("txt_gsm", ""),
        ("txt_datasm", "receipt_pdu = \"data_sm\""),
        ("txt_latin1", "default_alphabet = \"latin1\""),
    ] {
        let account = format!(
            "max_binds = 10\nwindow = 10\ndefault_validity = \"1h\"\nmax_validity = \"1day\"\n{extra}"
        );
        env.config.esme(system_id, &account);
    }
    env
}

fn text_of(doc: &mongodb::bson::Document) -> &str {
    doc.get_str("text")
        .unwrap_or_else(|_| panic!("no text in {doc}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ascii_account_keeps_its_underscore_in_outcome_and_receipt() {
    let env = env("txt-ascii").await;
    let app = env.start_app("node-a").await;
    let ascii = Esme::answering(app.addr, BindAs::Trx, "txt_ascii").await;
    let gsm = Esme::answering(app.addr, BindAs::Trx, "txt_gsm").await;

    let id = ascii
        .submit_ok(segment("4915112345", "100", None, 0, b"snake_case", 1, ""))
        .await;
    let r = ascii.wait_delivered(1, WAIT).await;
    assert_eq!(r[0].command, CommandId::DELIVER_SM);
    assert_eq!(r[0].receipted_message_id.as_deref(), Some(id.as_str()));
    assert!(
        r[0].raw.ends_with(b" text:snake_case"),
        "receipt octets: {:?}",
        r[0].raw
    );
    env.wait_docs(1, WAIT).await;
    let doc = env.doc_of(&id).await;
    assert_eq!(text_of(&doc), "snake_case");
    let seg = doc.get_array("segments").unwrap()[0].as_document().unwrap();
    assert_eq!(seg.get_str("text").unwrap(), "snake_case");

    // The same octets from a GSM 03.38 account (the default) read as GSM: 0x5F is §,
    // and its receipt gives the octet back as it came.
    let id = gsm
        .submit_ok(segment("4915112345", "100", None, 0, b"snake_case", 1, ""))
        .await;
    let r = gsm.wait_delivered(1, WAIT).await;
    assert!(r[0].raw.ends_with(b" text:snake_case"), "{:?}", r[0].raw);
    env.wait_docs(2, WAIT).await;
    assert_eq!(text_of(&env.doc_of(&id).await), "snake§case");

    // Latin-1: octets past 0x7F are text too, and come back as they were.
    let latin1 = Esme::answering(app.addr, BindAs::Trx, "txt_latin1").await;
    let id = latin1
        .submit_ok(segment("4915112345", "100", None, 0, b"caf\xE9_", 1, ""))
        .await;
    let r = latin1.wait_delivered(1, WAIT).await;
    assert!(r[0].raw.ends_with(b" text:caf\xE9_"), "{:?}", r[0].raw);
    env.wait_docs(3, WAIT).await;
    assert_eq!(text_of(&env.doc_of(&id).await), "café_");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn national_language_shift_tables_decode_the_outcome_text() {
    let env = env("txt-shift").await;
    let app = env.start_app("node-a").await;
    let tx = Esme::answering(app.addr, BindAs::Trx, "txt_gsm").await;
    // UDH: concat 8-bit (ref 7, 2 parts) + locking shift Turkish (IEI 0x25) + single
    // shift Turkish (IEI 0x24); part 1 "ıĞ" (0x07 0x0B), part 2 "ş" + ESC "ç".
    let part = |seq: u8, text: &[u8]| {
        let mut sm = segment("4915112345", "100", None, 0, &[], 1, "");
        sm.esm_class = 0x40;
        let mut ud = vec![
            0x0B, 0x00, 0x03, 0x07, 0x02, seq, 0x25, 0x01, 0x01, 0x24, 0x01, 0x01,
        ];
        ud.extend_from_slice(text);
        sm.short_message = Bytes::from(ud);
        sm
    };
    let first = tx.submit_ok(part(1, &[0x07, 0x0B])).await;
    tx.submit_ok(part(2, &[0x1D, 0x1B, 0x63])).await;
    env.wait_docs(1, WAIT).await;
    let doc = env.doc_of(&first).await;
    assert_eq!(doc.get_str("state").unwrap(), "DELIVERED");
    assert_eq!(text_of(&doc), "ıĞşç");
    assert_eq!(segment_texts(&doc), ["ıĞ", "şç"]);
    // A receipt carries no UDH, so its text is written with the default tables: what
    // they lack becomes `?` (ç is Ç's septet 0x09, as GSM 03.38 senders use it).
    let r = tx.wait_delivered(2, WAIT).await;
    let mut texts: Vec<_> = r
        .iter()
        .map(|d| d.receipt.as_ref().unwrap().text.clone())
        .collect();
    texts.sort();
    assert_eq!(texts, ["??", "?Ç"]);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receiver_that_asked_for_data_sm_gets_its_receipt_as_data_sm() {
    let env = env("txt-datasm").await;
    let app = env.start_app("node-a").await;
    let base = env.redis.dbsize();
    let rx = Esme::answering(app.addr, BindAs::Rx, "txt_datasm").await;
    let tx = Esme::answering(app.addr, BindAs::Tx, "txt_datasm").await;
    let id = tx
        .submit_ok(segment("4915112345", "100", None, 0, &gsm("hello"), 1, ""))
        .await;
    let r = rx.wait_delivered(1, WAIT).await;
    let d = &r[0];
    assert_eq!(d.command, CommandId::DATA_SM);
    assert_eq!(d.esm_class, 0x04);
    assert_eq!((d.source.as_str(), d.dest.as_str()), ("100", "4915112345"));
    assert_eq!(d.receipted_message_id.as_deref(), Some(id.as_str()));
    assert_eq!(d.message_state, Some(2));
    let receipt = d.receipt.as_ref().unwrap_or_else(|| panic!("{:?}", d.text));
    assert_eq!(
        (receipt.id.as_str(), receipt.text.as_str()),
        (id.as_str(), "hello")
    );
    // Answered with data_sm_resp, the receipt is done: nothing comes again, and the
    // store lets go of the message once its outcome is written.
    env.wait_docs(1, WAIT).await;
    env.wait_dbsize(base, WAIT).await;
    assert_eq!(rx.delivered().len(), 1);
    app.stop().await;
}
