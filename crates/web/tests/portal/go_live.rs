//! The go-live page: the checklist and the cases of the sandbox twin, the test notification to
//! the live twin's notify URL or the participant's own (signed, audited on the trail of the
//! participant it went to, its answer shown), roles, CSRF, and a participant that reaches
//! nothing of another.

use ocpay_core::access::Scopes;
use ocpay_core::ids::{ClientId, PaymentId};
use ocpay_core::participant::{Environment, Participant, ParticipantKind};
use ocpay_core::payer::SandboxOutcome;
use ocpay_core::portal::Role;
use ocpay_protocol::SigningKey;
use ocpay_protocol::model::Amount;
use ocpay_protocol::payments::{CancelRequest, InquiryPaymentRequest};
use ocpay_protocol::refunds::{InquiryRefundRequest, RefundRequest};
use ocpay_server::clock::Clock as _;
use ocpay_server::service::acceptance::{self, CheckItem};
use ocpay_server::service::wallet::{self, Paid, PayCode};
use ocpay_store::{NewKey, PaymentLookup};
use ocpay_testkit::{Receiver, Reply, TestApp, TestParticipant};
use reqwest::StatusCode;

use crate::browser::{Browser, audit_codes, user};

/// A server whose live participants may be notified on loopback, where the test receivers are.
pub(crate) async fn app() -> TestApp {
    TestApp::spawn_with(|config| config.notify_allow_private_addresses = true).await
}

/// The live twin `X` of a sandbox participant `SANDBOX_X`, with a key of its own and `notify_url`.
pub(crate) async fn live_twin(
    app: &TestApp,
    sandbox: &TestParticipant,
    notify_url: Option<&str>,
) -> ClientId {
    let live = sandbox.client_id.strip_prefix("SANDBOX_").expect("a sandbox client id");
    let client_id = ClientId::parse(live).unwrap();
    let now = app.clock.now();
    let participant = Participant {
        client_id: client_id.clone(),
        kind: ParticipantKind::Merchant,
        name: "Test participant".parse().unwrap(),
        notify_url: notify_url.map(str::to_owned),
        created_at: now,
    };
    let key = NewKey {
        public_key_der: SigningKey::generate().unwrap().verifying_key().spki_der().to_vec(),
        label: None,
        scopes: Scopes::ALL,
        created_at: now,
        expires_at: None,
    };
    app.state.store.create_participant(&participant, &key).await.expect("the live twin");
    client_id
}

/// The `id="item-..."` element of a checklist item, from its start to the end of its line.
fn item<'a>(body: &'a str, name: &str) -> &'a str {
    let start = body.find(&format!("id=\"item-{name}\"")).unwrap_or_else(|| panic!("no item {name}: {body}"));
    let line = &body[start..];
    &line[..line.find("</li>").unwrap_or(line.len())]
}

/// The class of the element that holds an item: `check-done` or `check-open`.
fn item_state(body: &str, name: &str) -> &'static str {
    let marker = format!("id=\"item-{name}\"");
    let at = body.find(&marker).unwrap_or_else(|| panic!("no item {name}"));
    let open_tag = &body[body[..at].rfind('<').unwrap()..at];
    if open_tag.contains("check-done") { "done" } else { "open" }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_developer_sends_test_notifications_to_the_live_twin_and_its_own_url() {
    let app = app().await;
    let live_receiver = Receiver::start(app.platform_key.clone()).await;
    let sandbox_receiver = Receiver::start(app.platform_key.clone()).await;
    let sandbox = app.merchant_notified_at(&sandbox_receiver).await;
    let sandbox_id = ClientId::parse(&sandbox.client_id).unwrap();
    let live = live_twin(&app, &sandbox, Some(&live_receiver.url)).await;
    user(&app, &sandbox.client_id, "dev@shop.example", Role::Developer).await;
    let browser = Browser::signed_in(&app, "dev@shop.example").await;

    let page = browser.get("/portal/go-live").await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert!(page.body.contains("href=\"/portal/go-live\" aria-current=\"page\">Go live"), "in the sections");
    assert!(page.body.contains(&format!("<code>{live}</code>")), "names the live twin");
    assert_eq!(item_state(&page.body, "live-key"), "done", "{}", item(&page.body, "live-key"));
    assert_eq!(item_state(&page.body, "live-notify-url"), "open");
    assert!(item(&page.body, "live-notify-url").contains("Open"), "said in words too");
    assert_eq!(item_state(&page.body, "sftp"), "open");
    assert_eq!(item_state(&page.body, "cases-passed"), "open");
    for case in ["payment-1", "pay-unknown-retried", "polling-stops-at-expiry"] {
        assert!(page.body.contains(&format!("id=\"case-{case}\"")), "case {case} shown");
    }
    assert!(page.body.contains("How to provoke it:</strong> pay with amount 9901"), "{}", page.body);
    assert!(page.body.contains("Send a test notification"));
    assert!(page.body.contains("Send one to the sandbox notify URL"));
    let csrf = page.csrf();

    // To the live twin: signed for it, marked as a test, acknowledged, on its audit trail.
    let sent = browser.post("/portal/go-live/test-notification", &[("csrf", &csrf), ("to", "live")]).await;
    assert_eq!(sent.status, StatusCode::OK, "{}", sent.body);
    assert!(sent.body.contains("<strong>Acknowledged</strong> by the live notify URL of"), "{}", sent.body);
    assert!(sent.body.contains("<dt>HTTP status</dt><dd>200</dd>"), "{}", sent.body);
    assert!(sent.body.contains("resultStatus"), "the start of the answer is shown");
    let delivered = live_receiver.wait_for(1).await;
    let test = &delivered[0];
    assert!(test.verified, "signed with the platform key");
    assert_eq!(test.client_id, live.as_str());
    assert!(test.notify_id.starts_with("ocpay-test-"), "{}", test.notify_id);
    let notification = test.notification.as_ref().expect("a notifyPayment");
    assert_eq!(notification.notify_type, "PAYMENT_RESULT");
    assert_eq!(notification.result.result_code, "SUCCESS");
    assert_eq!(notification.payment_request_id, test.notify_id);
    assert!(sent.body.contains(&test.notify_id), "the page names what was sent");
    assert_eq!(audit_codes(&app, &live, "portal.testNotification", 1).await, ["SUCCESS"]);
    let events = app.state.store.audit_events(&live, 10).await.unwrap();
    let event = events.iter().find(|event| event.api == "portal.testNotification").unwrap();
    assert_eq!(event.idempotency_key.as_deref(), Some(format!("dev@shop.example of {sandbox_id}").as_str()));
    assert!(sandbox_receiver.received().is_empty(), "nothing to the sandbox URL");

    let page = browser.get("/portal/go-live").await;
    assert_eq!(item_state(&page.body, "live-notify-url"), "done", "{}", item(&page.body, "live-notify-url"));

    // To its own URL, which answers 500: shown, and on its own trail only.
    sandbox_receiver.reply_next([Reply::Status(500)]);
    let sent = browser.post("/portal/go-live/test-notification", &[("csrf", &csrf), ("to", "own")]).await;
    assert_eq!(sent.status, StatusCode::OK);
    assert!(sent.body.contains("<strong>Not acknowledged</strong> by the notify URL of"), "{}", sent.body);
    assert!(sent.body.contains("<dt>HTTP status</dt><dd>500</dd>"), "{}", sent.body);
    assert_eq!(sandbox_receiver.wait_for(1).await[0].client_id, sandbox_id.as_str());
    assert_eq!(audit_codes(&app, &sandbox_id, "portal.testNotification", 1).await, ["NOT_ACKNOWLEDGED"]);

    // An answer that does not acknowledge opens the live item again.
    live_receiver.reply_next([Reply::Body("OK".into())]);
    let sent = browser.post("/portal/go-live/test-notification", &[("csrf", &csrf), ("to", "live")]).await;
    assert!(sent.body.contains("<strong>Not acknowledged</strong>"), "{}", sent.body);
    assert!(sent.body.contains("<pre class=\"wrap\">OK</pre>"), "{}", sent.body);
    assert_eq!(item_state(&sent.body, "live-notify-url"), "open", "{}", item(&sent.body, "live-notify-url"));

    let refused =
        browser.post("/portal/go-live/test-notification", &[("csrf", &csrf), ("to", "SANDBOX_X")]).await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST);
    assert!(refused.body.contains("to: must be live or own"), "{}", refused.body);
    assert_eq!(live_receiver.received().len(), 2, "nothing more sent");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_notify_url_or_an_unreachable_one_is_not_sent_and_says_why() {
    let app = app().await;
    let sandbox = app.participant(ParticipantKind::Merchant, Environment::Sandbox, None).await;
    user(&app, &sandbox.client_id, "owner@shop.example", Role::Owner).await;
    let browser = Browser::signed_in(&app, "owner@shop.example").await;
    let csrf = browser.get("/portal/go-live").await.csrf();

    // No live twin yet.
    let sent = browser.post("/portal/go-live/test-notification", &[("csrf", &csrf), ("to", "live")]).await;
    assert_eq!(sent.status, StatusCode::OK);
    assert!(sent.body.contains("<strong>Not sent</strong>"), "{}", sent.body);
    assert!(sent.body.contains("there is no participant"), "{}", sent.body);

    // A live twin without a notify URL; then one that nothing listens on.
    let live = live_twin(&app, &sandbox, None).await;
    let sent = browser.post("/portal/go-live/test-notification", &[("csrf", &csrf), ("to", "live")]).await;
    assert!(sent.body.contains("no default notify URL is set"), "{}", sent.body);
    let own = browser.post("/portal/go-live/test-notification", &[("csrf", &csrf), ("to", "own")]).await;
    assert!(own.body.contains("no default notify URL is set"), "{}", own.body);
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/notify", closed.local_addr().unwrap());
    drop(closed);
    let change = ocpay_store::ParticipantChange { name: None, notify_url: Some(Some(url.clone())) };
    app.state.store.update_participant(&live, &change).await.unwrap();
    let sent = browser.post("/portal/go-live/test-notification", &[("csrf", &csrf), ("to", "live")]).await;
    assert!(sent.body.contains("<strong>Not sent</strong>"), "{}", sent.body);
    assert!(sent.body.contains(&format!("<code>{url}</code>")), "{}", sent.body);
    assert_eq!(
        audit_codes(&app, &live, "portal.testNotification", 2).await,
        ["NOT_SENT", "NOT_SENT"],
        "each attempt on the live trail"
    );
    let page = browser.get("/portal/go-live").await;
    assert_eq!(item_state(&page.body, "live-notify-url"), "open");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signed_out_viewers_and_forged_forms_send_nothing() {
    let app = app().await;
    let live_receiver = Receiver::start(app.platform_key.clone()).await;
    let sandbox = app.merchant().await;
    let live = live_twin(&app, &sandbox, Some(&live_receiver.url)).await;

    let stranger = Browser::new(&app);
    assert_eq!(stranger.get("/portal/go-live").await.location.as_deref(), Some("/portal/login"));
    let answer = stranger.post("/portal/go-live/test-notification", &[("csrf", "x"), ("to", "live")]).await;
    assert_eq!(answer.location.as_deref(), Some("/portal/login"));

    user(&app, &sandbox.client_id, "viewer@shop.example", Role::Viewer).await;
    let viewer = Browser::signed_in(&app, "viewer@shop.example").await;
    let page = viewer.get("/portal/go-live").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("id=\"item-live-key\""), "the viewer reads the checklist");
    assert!(!page.body.contains("Send a test notification"), "but gets no button");
    let refused =
        viewer.post("/portal/go-live/test-notification", &[("csrf", &page.csrf()), ("to", "live")]).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    let sandbox_id = ClientId::parse(&sandbox.client_id).unwrap();
    assert_eq!(audit_codes(&app, &sandbox_id, "portal.testNotification", 1).await, ["FORBIDDEN"]);

    user(&app, &sandbox.client_id, "owner@shop.example", Role::Owner).await;
    let owner = Browser::signed_in(&app, "owner@shop.example").await;
    let csrf = owner.get("/portal/go-live").await.csrf();
    let forged = owner.post("/portal/go-live/test-notification", &[("csrf", "forged"), ("to", "live")]).await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    let cross_site = [("origin", "https://evil.example"), ("sec-fetch-site", "cross-site")];
    let answer = owner
        .post_with("/portal/go-live/test-notification", &[("csrf", &csrf), ("to", "live")], &cross_site)
        .await;
    assert_eq!(answer.status, StatusCode::FORBIDDEN);
    assert!(live_receiver.received().is_empty(), "nothing was sent");
    let events = app.state.store.audit_events(&live, 50).await.unwrap();
    assert!(events.iter().all(|event| event.api != "portal.testNotification"), "{events:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_participants_user_reaches_nothing_of_this_one() {
    let app = app().await;
    let live_receiver = Receiver::start(app.platform_key.clone()).await;
    let sandbox = app.merchant().await;
    let live = live_twin(&app, &sandbox, Some(&live_receiver.url)).await;
    let other = app.merchant().await;
    user(&app, &other.client_id, "dev@other.example", Role::Developer).await;
    let browser = Browser::signed_in(&app, "dev@other.example").await;

    let page = browser.get("/portal/go-live").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(!page.body.contains(sandbox.client_id.as_str()), "nothing of the other sandbox participant");
    assert!(!page.body.contains(live.as_str()), "nor of its live twin");
    assert!(!page.body.contains(&live_receiver.url), "nor its notify URL");
    let csrf = page.csrf();
    for to in ["live", "own"] {
        let sent = browser.post("/portal/go-live/test-notification", &[("csrf", &csrf), ("to", to)]).await;
        assert_eq!(sent.status, StatusCode::OK);
        assert!(!sent.body.contains(live.as_str()), "{}", sent.body);
    }
    assert!(live_receiver.received().is_empty(), "nothing reached the other's live URL");
    let events = app.state.store.audit_events(&live, 50).await.unwrap();
    assert!(events.iter().all(|event| event.api != "portal.testNotification"), "{events:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_live_twins_developer_sees_the_cases_without_the_sandbox_log() {
    let app = app().await;
    let live_receiver = Receiver::start(app.platform_key.clone()).await;
    let sandbox = app.merchant().await;
    // Payment 2 in the sandbox (a code polled, then cancelled), so that a case has evidence.
    let payment_request_id = ocpay_testkit::unique_id("GOLIVE");
    let request = ocpay_testkit::pay_request(&payment_request_id, "USD", 1250);
    sandbox.client.pay(&request).await.expect("pay answers");
    let named = || (None, Some(payment_request_id.clone()));
    let (payment_id, request_id) = named();
    let inquiry =
        ocpay_protocol::payments::InquiryPaymentRequest { payment_id, payment_request_id: request_id };
    sandbox.client.inquire_payment(&inquiry).await.expect("inquiry answers");
    let (payment_id, request_id) = named();
    let cancel = ocpay_protocol::payments::CancelRequest { payment_id, payment_request_id: request_id };
    let cancelled = sandbox.client.cancel(&cancel).await.expect("cancel answers");
    assert_eq!(cancelled.result.result_code, "SUCCESS", "{:?}", cancelled.result);
    let live = live_twin(&app, &sandbox, Some(&live_receiver.url)).await;
    // A live owner turns on two-factor sign-in first; a live developer signs in with a password.
    user(&app, live.as_str(), "live@shop.example", Role::Developer).await;
    user(&app, &sandbox.client_id, "dev@shop.example", Role::Developer).await;

    let sandbox_dev = Browser::signed_in(&app, "dev@shop.example").await;
    let mut linked = String::new();
    for _ in 0..500 {
        linked = sandbox_dev.get("/portal/go-live").await.body;
        if linked.contains("href=\"/portal/logs/") {
            break;
        }
        // The API log's writer commits in batches, a moment later.
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert!(linked.contains("href=\"/portal/logs/"), "the sandbox's users follow the evidence: {linked}");

    let owner = Browser::signed_in(&app, "live@shop.example").await;
    let page = owner.get("/portal/go-live").await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert!(page.body.contains("id=\"case-payment-2\""));
    assert!(!page.body.contains("href=\"/portal/logs/"), "no links into another participant's log");
    assert!(page.body.contains("requests in the API log of"), "{}", page.body);
    assert!(!page.body.contains("Send one to the sandbox notify URL"), "its own URL is the live one");
    let sent =
        owner.post("/portal/go-live/test-notification", &[("csrf", &page.csrf()), ("to", "live")]).await;
    assert!(sent.body.contains("<strong>Acknowledged</strong>"), "{}", sent.body);
    assert_eq!(live_receiver.wait_for(1).await[0].client_id, live.as_str());
    assert_eq!(audit_codes(&app, &live, "portal.testNotification", 1).await, ["SUCCESS"]);
}

/// A sandbox merchant whose integration went through every acceptance case right, with the
/// Rust SDK, and its live twin set up (a key, a notify URL at a receiver that acknowledges, an
/// SFTP account): everything but the test notification, which the checklist waits for.
pub(crate) struct Integrator {
    pub(crate) sandbox: TestParticipant,
    pub(crate) live: ClientId,
    /// Where the sandbox merchant's notifications go; it acknowledges all but 9904's first.
    pub(crate) sandbox_receiver: Receiver,
    /// The live twin's notify URL.
    pub(crate) live_receiver: Receiver,
}

/// A server for [`integrator`]: live participants reach loopback, and a slow `pay` is slow for a
/// moment only.
pub(crate) async fn integrator_app() -> TestApp {
    TestApp::spawn_with(|config| {
        config.notify_allow_private_addresses = true;
        config.sandbox_slow_answer_ms = 200;
    })
    .await
}

/// Pays a sandbox payment's order code as the sandbox's test payer.
async fn test_payer_pays(app: &TestApp, client_id: &ClientId, payment_id: &str) {
    let lookup = PaymentLookup::ById(PaymentId::parse(payment_id).unwrap());
    let payment = app.state.store.payment(client_id, &lookup).await.unwrap().expect("the payment");
    let request = PayCode { payer: None, pin: None, outcome: Some(SandboxOutcome::Pay) };
    let paid =
        wallet::pay_code(&app.state, &payment.terms.code_token, request).await.expect("the test payer pays");
    assert!(matches!(paid, Paid::Paid(_)), "{paid:?}");
}

fn inquiry(payment_request_id: &str) -> InquiryPaymentRequest {
    InquiryPaymentRequest { payment_id: None, payment_request_id: Some(payment_request_id.to_owned()) }
}

fn refund_of(payment_id: &str, refund_request_id: &str, amount: i64) -> RefundRequest {
    RefundRequest {
        refund_request_id: Some(refund_request_id.to_owned()),
        payment_id: Some(payment_id.to_owned()),
        reference_refund_id: None,
        refund_amount: Some(Amount::new("USD", amount)),
        refund_reason: None,
        is_async_refund: None,
        refund_notify_url: None,
        extend_info: None,
        refund_request_time: None,
    }
}

pub(crate) async fn integrator(app: &TestApp) -> Integrator {
    let sandbox_receiver = Receiver::start(app.platform_key.clone()).await;
    let live_receiver = Receiver::start(app.platform_key.clone()).await;
    let sandbox = app.merchant_notified_at(&sandbox_receiver).await;
    let client_id = ClientId::parse(&sandbox.client_id).unwrap();
    let client = &sandbox.client;
    let id = ocpay_testkit::unique_id;
    let pay = |request_id: &str, amount: i64| {
        let request = ocpay_testkit::pay_request(request_id, "USD", amount);
        async move { client.pay(&request).await.expect("pay answers") }
    };
    let paid = |request_id: String, amount: i64| {
        let (app, client_id) = (app, &client_id);
        async move {
            let answer = pay(&request_id, amount).await;
            assert_eq!(answer.result.result_code, "SUCCESS", "{:?}", answer.result);
            let payment_id = answer.payment_id.expect("a payment id");
            test_payer_pays(app, client_id, &payment_id).await;
            (request_id, payment_id)
        }
    };

    // Payment 1: paid, and the till sees it.
    let (request_id, _) = paid(id("P1"), 1250).await;
    let seen = client.inquire_payment(&inquiry(&request_id)).await.unwrap();
    assert_eq!(seen.payment_status.as_deref(), Some("SUCCESS"), "{seen:?}");
    // Payment 2: shown, polled, cancelled.
    let request_id = id("P2");
    assert_eq!(pay(&request_id, 1300).await.result.result_code, "SUCCESS");
    client.inquire_payment(&inquiry(&request_id)).await.unwrap();
    let cancel = CancelRequest { payment_id: None, payment_request_id: Some(request_id) };
    assert_eq!(client.cancel(&cancel).await.unwrap().result.result_code, "SUCCESS");
    // Refund 1: a full refund; Refund 2: two partial refunds of one payment.
    let (_, payment_id) = paid(id("R1"), 1000).await;
    let refunded = client.refund(&refund_of(&payment_id, &id("RF1"), 1000)).await.unwrap();
    assert_eq!(refunded.result.result_code, "SUCCESS", "{:?}", refunded.result);
    let (_, payment_id) = paid(id("R2"), 1000).await;
    for (part, amount) in [("RF2A", 300), ("RF2B", 400)] {
        let refunded = client.refund(&refund_of(&payment_id, &id(part), amount)).await.unwrap();
        assert_eq!(refunded.result.result_code, "SUCCESS", "{:?}", refunded.result);
    }
    // 9901: U, then the same paymentRequestId again.
    let request_id = id("U9901");
    assert_eq!(pay(&request_id, 9901).await.result.result_code, "UNKNOWN_EXCEPTION");
    assert_eq!(pay(&request_id, 9901).await.result.result_code, "SUCCESS");
    // 9902: a slow pay, then an inquiry.
    let request_id = id("S9902");
    pay(&request_id, 9902).await;
    client.inquire_payment(&inquiry(&request_id)).await.unwrap();
    // 9903: an inquiry answered U, inquired again.
    let request_id = id("I9903");
    assert_eq!(pay(&request_id, 9903).await.result.result_code, "SUCCESS");
    let first = client.inquire_payment(&inquiry(&request_id)).await.unwrap();
    assert_eq!(first.result.result_code, "UNKNOWN_EXCEPTION", "{:?}", first.result);
    client.inquire_payment(&inquiry(&request_id)).await.unwrap();
    // 9904: paid; the first notification attempt is not counted, a later one is.
    paid(id("N9904"), 9904).await;
    // Refund 9901: U, then the same refundRequestId again; refund 9902: asynchronous.
    let (_, payment_id) = paid(id("RU"), 20_000).await;
    let refund_request_id = id("RFU");
    let unknown = client.refund(&refund_of(&payment_id, &refund_request_id, 9901)).await.unwrap();
    assert_eq!(unknown.result.result_code, "UNKNOWN_EXCEPTION", "{:?}", unknown.result);
    let again = client.refund(&refund_of(&payment_id, &refund_request_id, 9901)).await.unwrap();
    assert_eq!(again.result.result_code, "SUCCESS", "{:?}", again.result);
    let (_, payment_id) = paid(id("RA"), 20_000).await;
    let async_request_id = id("RFA");
    let accepted = client.refund(&refund_of(&payment_id, &async_request_id, 9902)).await.unwrap();
    assert_eq!(accepted.result.result_code, "REFUND_IN_PROCESS", "{:?}", accepted.result);
    // Polling that stops at expiry: a code valid for five minutes, polled once, left unpaid.
    let request_id = id("EXP");
    let mut request = ocpay_testkit::pay_request(&request_id, "USD", 1400);
    let expires = app.clock.now() + jiff::SignedDuration::from_mins(5);
    request.payment_expiry_time = Some(ocpay_protocol::datetime::format(expires));
    assert_eq!(client.pay(&request).await.unwrap().result.result_code, "SUCCESS");
    client.inquire_payment(&inquiry(&request_id)).await.unwrap();

    // Two hours later: the code expired, the refund completed, 9904's notification retried.
    app.background_rounds().await;
    app.clock.advance(jiff::SignedDuration::from_hours(2));
    app.background_rounds().await;
    app.background_rounds().await;
    let learned = InquiryRefundRequest {
        refund_id: None,
        refund_request_id: Some(async_request_id),
        merchant_account_id: None,
    };
    let outcome = client.inquire_refund(&learned).await.unwrap();
    assert_eq!(outcome.refund_status.as_deref(), Some("FAIL"), "{outcome:?}");

    // The live twin: a key, a notify URL that acknowledges, an SFTP account.
    let live = live_twin(app, &sandbox, Some(&live_receiver.url)).await;
    let key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGb8Jbq2cFy0FiTjdVBCtmj/3b8c0uSdLBT7vwCIA3pq ops@shop";
    ocpay_server::service::sftp::add_public_key(&*app.state.store, &live, key, app.clock.now())
        .await
        .expect("an SFTP account");
    Integrator { sandbox, live, sandbox_receiver, live_receiver }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_case_passed_and_a_live_twin_set_up_leave_only_the_test_notification() {
    let app = integrator_app().await;
    let integrator = integrator(&app).await;
    // The API log's writer commits in batches: wait for the refund inquiry, the last request.
    let sandbox_id = ClientId::parse(&integrator.sandbox.client_id).unwrap();
    let mut report = None;
    for _ in 0..500 {
        let go_live = acceptance::go_live(&app.state, &sandbox_id).await.unwrap();
        if go_live.cases_passed {
            report = Some(go_live);
            break;
        }
        report = Some(go_live);
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    let report = report.unwrap();
    let open: Vec<_> = report.cases.iter().filter(|case| !case.passed).collect();
    assert!(open.is_empty(), "open cases: {open:#?}");
    let open: Vec<_> = report.checklist.iter().filter(|item| !item.done).map(|item| item.item).collect();
    assert_eq!(open, [CheckItem::LiveNotifyUrl], "{:#?}", report.checklist);

    user(&app, &integrator.sandbox.client_id, "dev@shop.example", Role::Developer).await;
    let browser = Browser::signed_in(&app, "dev@shop.example").await;
    let page = browser.get("/portal/go-live").await;
    assert!(!page.body.contains("Ready to go live"));
    let sent =
        browser.post("/portal/go-live/test-notification", &[("csrf", &page.csrf()), ("to", "live")]).await;
    assert!(sent.body.contains("<strong>Acknowledged</strong>"), "{}", sent.body);
    assert!(sent.body.contains("Ready to go live"), "{}", sent.body);
    for name in ["cases-passed", "live-key", "live-notify-url", "sftp"] {
        assert_eq!(item_state(&sent.body, name), "done", "{}", item(&sent.body, name));
    }
    assert_eq!(integrator.live_receiver.received().len(), 1);
    assert_eq!(audit_codes(&app, &integrator.live, "portal.testNotification", 1).await, ["SUCCESS"]);
    let sandbox_deliveries = integrator.sandbox_receiver.received();
    assert!(sandbox_deliveries.iter().all(|delivery| delivery.verified), "signed notifications");
    assert!(!sent.body.contains("class=\"case check-open\""), "every case passed");
}
