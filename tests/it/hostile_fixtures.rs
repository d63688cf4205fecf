//! Every malformed PDU class of the codec fixtures (`fixtures/pdu/malformed_*.hex`),
//! sent over a live socket: each gets the answer of reference §10.8 and the session
//! keeps working (a good submit_sm right after it is accepted).

use smpp_protocol::{Body, CommandId, CommandStatus, Pdu};

use crate::support::config::TestConfig;
use crate::support::esme::{BindAs, Esme};
use crate::support::hostile::{self, malformed_fixtures, still_serves, Fixture};
use crate::support::messages::submit_sm;
use crate::support::server_harness::start;

fn cfg() -> TestConfig {
    let mut c = TestConfig::new();
    c.esme("hostile", "").esme("bystander", "");
    c
}

/// A frame-level fixture: its command_length disagrees with the octets it holds.
fn frame_level(f: &Fixture) -> bool {
    f.command_length() as usize != f.bytes.len()
}

/// The answer a *bound transceiver* must get (§10.8: state before body).
fn expected_when_bound(f: &Fixture) -> (CommandId, CommandStatus) {
    let id = f.command_id();
    if !id.is_known() {
        (CommandId::GENERIC_NACK, f.status)
    } else if matches!(
        id,
        CommandId::BIND_TRANSMITTER | CommandId::BIND_RECEIVER | CommandId::BIND_TRANSCEIVER
    ) {
        (id.response(), CommandStatus::ESME_RALYBND)
    } else if id == CommandId::DELIVER_SM {
        // SMSC→ESME only: never legal from an ESME, whatever its body.
        (id.response(), CommandStatus::ESME_RINVBNDSTS)
    } else {
        (id.response(), f.status)
    }
}

#[tokio::test]
async fn every_malformed_fixture_over_a_live_bind_gets_its_answer_and_the_bind_survives() {
    let s = start(&cfg()).await;
    let c = Esme::bound(s.addr, BindAs::Trx, "hostile", "pw").await;
    let mut good = 0;
    let mut table = Vec::new();
    for (i, f) in malformed_fixtures()
        .iter()
        .filter(|f| !frame_level(f))
        .enumerate()
    {
        let seq = 1000 + i as u32;
        c.send_raw(&f.with_seq(seq)).await;
        let r = c.response_to(seq).await;
        let (id, status) = expected_when_bound(f);
        assert_eq!(r.command_id(), id, "{}: {r:?}", f.name);
        assert_eq!(r.command_status, status, "{}: {r:?}", f.name);
        table.push(format!(
            "{:45} -> {} {}",
            f.name,
            r.command_id(),
            r.command_status
        ));
        // The same bind goes on working.
        let ok = c.submit(submit_sm("4915112345", f.name.as_bytes())).await;
        assert_eq!(
            ok.command_status,
            CommandStatus::ESME_ROK,
            "after {}",
            f.name
        );
        good += 1;
    }
    println!("{}", table.join("\n"));
    assert!(good >= 20);
    // Only the good submits reached the message service.
    assert_eq!(s.service.submit_count(), good);
    still_serves(s.addr, "bystander").await;
}

/// Before a bind, a request other than bind/enquire_link is refused on state alone
/// (ESME_RINVBNDSTS) and the connection stays open; the malformed binds get their
/// own status and the connection closes.
#[tokio::test]
async fn malformed_fixtures_before_bind() {
    let s = start(&cfg()).await;
    let fixtures = malformed_fixtures();
    let open = Esme::connect(s.addr).await;
    for (i, f) in fixtures
        .iter()
        .filter(|f| !frame_level(f))
        .filter(|f| {
            !matches!(
                f.command_id(),
                CommandId::BIND_TRANSMITTER
                    | CommandId::BIND_RECEIVER
                    | CommandId::BIND_TRANSCEIVER
            )
        })
        .enumerate()
    {
        let seq = 2000 + i as u32;
        open.send_raw(&f.with_seq(seq)).await;
        let r = open.response_to(seq).await;
        let id = f.command_id();
        let want = if !id.is_known() {
            (CommandId::GENERIC_NACK, f.status)
        } else if id == CommandId::ENQUIRE_LINK {
            (id.response(), f.status)
        } else {
            (id.response(), CommandStatus::ESME_RINVBNDSTS)
        };
        assert_eq!((r.command_id(), r.command_status), want, "{}", f.name);
    }
    // The connection survived all of it and can still bind.
    let r = open.bind(BindAs::Trx, "hostile", "pw").await;
    assert_eq!(r.command_status, CommandStatus::ESME_ROK);

    for f in fixtures.iter().filter(|f| {
        matches!(
            f.command_id(),
            CommandId::BIND_TRANSMITTER | CommandId::BIND_RECEIVER | CommandId::BIND_TRANSCEIVER
        )
    }) {
        let c = Esme::connect(s.addr).await;
        c.send_raw(&f.with_seq(7)).await;
        let r = c.response_to(7).await;
        assert_eq!(r.command_id(), f.command_id().response(), "{}", f.name);
        assert_eq!(r.command_status, f.status, "{}", f.name);
        assert!(c.expect_closed().await.is_empty(), "{}", f.name);
    }
    assert_eq!(s.service.submit_count(), 0);
    still_serves(s.addr, "bystander").await;
}

/// A command_length larger than the octets that follow cannot be seen on a stream
/// until the next bytes fail to frame: here the claimed 30 octets swallow the first
/// 11 octets of the next submit_sm, its remainder starts with command_length 0, and
/// the server answers generic_nack(ESME_RINVCMDLEN) and closes. Nothing of the
/// mangled submit reaches the message service.
#[tokio::test]
async fn command_length_mismatch_desyncs_the_stream_and_is_closed() {
    let s = start(&cfg()).await;
    let mismatched: Vec<Fixture> = malformed_fixtures()
        .into_iter()
        .filter(frame_level)
        .collect();
    assert!(!mismatched.is_empty());
    for f in &mismatched {
        assert!(f.command_length() as usize > f.bytes.len(), "{}", f.name);
        let c = Esme::bound(s.addr, BindAs::Trx, "hostile", "pw").await;
        c.send_raw(&f.bytes).await;
        // An ESME that believes the previous PDU was complete sends the next one.
        c.send(Pdu::new(
            2,
            Body::SubmitSm(crate::support::messages::submit_sm("4915112345", b"next")),
        ))
        .await;
        let got = c.expect_closed().await;
        hostile::assert_cmdlen_nack(&got, &f.name);
        s.wait_binds("hostile", 0).await;
    }
    assert_eq!(s.service.submit_count(), 0);
    still_serves(s.addr, "bystander").await;
}
