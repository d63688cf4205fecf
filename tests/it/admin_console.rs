//! The web console in headless Chromium (through chromedriver) against a full App
//! (real Redis, real Mongo-protocol server, a real SMPP bind): the bound ESME shows in
//! the binds table, a message is looked up, and the Unbind button unbinds the ESME.
//! Screenshots go to `target/artefacts/`.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use smpp_protocol::{Body, CommandId, CommandStatus, Pdu};
use smppd::app::App;
use smppd::config::{Config, ConfigSource, EnvOverrides};

use crate::support::config::TestConfig;
use crate::support::esme::{BindAs, Esme};
use crate::support::messages::submit_sm;
use crate::support::servers::{MongoServer, RedisKind, RedisServer};
use crate::support::webdriver::Browser;

const ADMIN_TOKEN: &str = "console-admin-token-0123456789";
const READ_TOKEN: &str = "console-read-token-0123456789";

fn artefact(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .unwrap()
        .join("artefacts")
        .join(name)
}

/// Whether the binds table has a row of `system_id` (with an Unbind button when
/// `button`).
const HAS_ROW: &str = "const [id, button] = arguments; \
    return [...document.querySelectorAll('#binds tbody tr')].some(tr => \
      tr.dataset.systemId === id && (!button || tr.querySelector('button.unbind') !== null));";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_lists_a_bind_looks_up_a_message_and_unbinds() {
    let redis = RedisServer::start(RedisKind::Redis7);
    let mongo = MongoServer::start();
    let acct = "aweb";
    let text = TestConfig::new()
        .set("server.node_id", "node-web")
        .set("server.shutdown_grace", "2s")
        .stores(&redis.url(), &mongo.uri(), acct)
        .set("admin.listen", "127.0.0.1:0")
        .toml(&format!(
            "[admin]\ntokens = [ {{ token = \"{ADMIN_TOKEN}\", role = \"admin\" }}, \
             {{ token = \"{READ_TOKEN}\", role = \"read\" }} ]\n"
        ))
        .esme(acct, "")
        .text();
    let config = Config::from_toml(&text, &EnvOverrides::default(), None).unwrap();
    let app = App::start(ConfigSource::Inline(text), Arc::new(config))
        .await
        .unwrap();
    let (smpp, admin) = (app.local_addr().unwrap(), app.admin_addr().unwrap());
    let handle = app.handle();
    let task = tokio::spawn(app.run());

    // An ESME bound, with one message submitted and its receipt answered.
    let esme = Esme::bound(smpp, BindAs::Trx, acct, "pw").await;
    let r = esme.submit(submit_sm("491701", b"hello")).await;
    assert_eq!(r.command_status, CommandStatus::ESME_ROK);
    let Body::SubmitSmResp(Some(resp)) = r.body else {
        panic!("{r:?}");
    };
    let message_id = resp.message_id.to_string_lossy().into_owned();
    let p = esme.recv().await;
    assert_eq!(p.command_id(), CommandId::DELIVER_SM);
    esme.send(Pdu::new(p.sequence_number, Body::DeliverSmResp(None)))
        .await;

    let browser = Browser::start().await;
    let url = format!("http://{admin}/?refresh=250");

    // A read token: the bind is listed, without an Unbind button.
    browser.goto(&url).await;
    browser.type_into("#token", READ_TOKEN).await;
    browser.click("#login-button").await;
    browser
        .wait_until("the bind listed", HAS_ROW, json!([acct, false]))
        .await;
    let buttons = browser
        .execute(
            "return document.querySelectorAll('button.unbind').length",
            json!([]),
        )
        .await;
    assert_eq!(buttons, 0, "a read token gets no Unbind button");
    browser.click("#logout").await;

    // The admin token.
    browser.type_into("#token", ADMIN_TOKEN).await;
    browser.click("#login-button").await;
    browser
        .wait_until("the bind with its button", HAS_ROW, json!([acct, true]))
        .await;
    let who = browser
        .execute(
            "return document.getElementById('who').textContent",
            json!([]),
        )
        .await;
    assert_eq!(who, "admin.tokens[0] (admin)");
    // Two stats samples make a rate; the chart's legend names the account.
    browser
        .wait_until(
            "the rates chart",
            "return document.getElementById('rates-legend').textContent.includes(arguments[0])",
            json!([acct]),
        )
        .await;
    browser.screenshot(&artefact("console-binds.png")).await;

    // Message lookup (the outcome reaches MongoDB shortly after the submit).
    browser.type_into("#message-id", &message_id).await;
    let delivered =
        "return document.getElementById('message-state').textContent.includes('DELIVERED')";
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        browser.click("#lookup-button").await;
        browser
            .wait_until(
                "a lookup answer",
                "return !document.getElementById('message-state').textContent.startsWith('…')",
                json!([]),
            )
            .await;
        if browser.execute(delivered, json!([])).await == true {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the message never showed DELIVERED"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let shown = browser
        .execute(
            "return document.getElementById('message').textContent",
            json!([]),
        )
        .await;
    assert!(shown.as_str().unwrap().contains(&message_id), "{shown}");
    browser.screenshot(&artefact("console-message.png")).await;

    // Unbind: confirm the dialog; the ESME is sent unbind and closed; the row goes.
    browser.click("button.unbind").await;
    browser.accept_dialog().await;
    let p = esme.recv().await;
    assert_eq!(p.body, Body::Unbind, "{p:?}");
    esme.send(Pdu::new(p.sequence_number, Body::UnbindResp))
        .await;
    assert!(esme.expect_closed().await.is_empty());
    browser
        .wait_until(
            "the row gone",
            &format!("return !(() => {{ {HAS_ROW} }})()"),
            json!([acct, false]),
        )
        .await;
    browser.screenshot(&artefact("console-unbound.png")).await;
    browser.quit().await;

    handle.shutdown();
    tokio::time::timeout(Duration::from_secs(20), task)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
}
