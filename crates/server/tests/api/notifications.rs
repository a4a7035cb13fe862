//! notifyPayment delivery: signed, at least once, retried on Alipay's schedule (walked with
//! the test clock, not by sleeping), recorded attempt by attempt, resent by hand, and kept
//! across a crash. No notification reaches a metadata address or the platform itself; live
//! participants never notify private addresses, sandbox participants loopback ones only.

use jiff::SignedDuration;
use ocpay_core::participant::{Environment, ParticipantKind};
use ocpay_server::service::participants::{ParticipantError, ParticipantField};
use ocpay_testkit::{Receiver, Reply, TestApp, pay_request, unique_id};
use serde_json::{Value, json};

use crate::helpers::{code_value, name_resolving_only_to_loopback, order_code, wallet_pay};

async fn admin(app: &TestApp, method: reqwest::Method, path: &str, token: Option<&str>) -> (u16, Value) {
    let mut request = reqwest::Client::new().request(method, format!("{}{path}", app.base_url));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.unwrap();
    (response.status().as_u16(), response.json().await.unwrap())
}

async fn attempts(app: &TestApp, payment_id: &str) -> Value {
    let path = format!("/admin/api/payments/{payment_id}/notifications");
    let (status, listed) = admin(app, reqwest::Method::GET, &path, Some(&app.admin_token())).await;
    assert_eq!(status, 200, "{listed}");
    listed["notifications"][0].clone()
}

/// Waits until the notification's recorded attempts reach `n` (recording follows delivery).
async fn recorded(app: &TestApp, payment_id: &str, n: usize) -> Value {
    for _ in 0..500 {
        let notification = attempts(app, payment_id).await;
        if notification["attempts"].as_array().is_some_and(|attempts| attempts.len() >= n) {
            return notification;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    panic!("{n} attempts were not recorded: {}", attempts(app, payment_id).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_whole_retry_schedule_then_a_manual_resend() {
    let app = TestApp::spawn().await;
    let receiver = Receiver::start(app.platform_key.clone()).await;
    receiver.reply_always(Reply::Status(500));
    let merchant = app.merchant_notified_at(&receiver).await;
    let paid = order_code(&merchant, "USD", 100).await;
    let payment_id = paid.payment_id.clone().unwrap();
    wallet_pay(&app, &code_value(&paid), json!({})).await;
    receiver.wait_for(1).await;
    recorded(&app, &payment_id, 1).await;

    let intervals_minutes = [2, 10, 10, 60, 120, 360, 900];
    for (index, minutes) in intervals_minutes.into_iter().enumerate() {
        // One second early: nothing. On time: the next attempt.
        app.clock.advance(SignedDuration::from_mins(minutes) - SignedDuration::from_secs(1));
        app.background_rounds().await;
        assert_eq!(receiver.received().len(), index + 1, "no attempt before its time ({minutes} min)");
        app.clock.advance(SignedDuration::from_secs(1));
        receiver.wait_for(index + 2).await;
        recorded(&app, &payment_id, index + 2).await;
    }
    app.clock.advance(SignedDuration::from_hours(48));
    app.background_rounds().await;
    assert_eq!(receiver.received().len(), 8, "eight attempts, then it stops");

    let notification = attempts(&app, &payment_id).await;
    assert_eq!(notification["status"], "FAILED");
    let recorded_attempts = notification["attempts"].as_array().unwrap();
    let first = jiff::Timestamp::from_str_iso(recorded_attempts[0]["scheduledAt"].as_str().unwrap());
    let offsets: Vec<i64> = recorded_attempts
        .iter()
        .map(|attempt| {
            jiff::Timestamp::from_str_iso(attempt["scheduledAt"].as_str().unwrap())
                .duration_since(first)
                .as_mins()
        })
        .collect();
    assert_eq!(offsets, [0, 2, 12, 22, 82, 202, 562, 1462], "the schedule, to the minute");
    assert!(
        recorded_attempts
            .iter()
            .all(|attempt| attempt["httpStatus"] == 500 && attempt["outcome"] == "REJECTED")
    );
    let received = receiver.received();
    assert!(
        received.iter().all(|delivery| delivery.verified && delivery.notify_id == received[0].notify_id),
        "one stable notify id"
    );
    assert!(
        received.iter().all(|delivery| delivery.body == received[0].body),
        "the same body on every attempt"
    );

    let resend = format!("/admin/api/payments/{payment_id}/notifications/resend");
    let (status, _) = admin(&app, reqwest::Method::POST, &resend, None).await;
    assert_eq!(status, 401, "the admin API needs its token");
    let (status, _) = admin(&app, reqwest::Method::POST, &resend, Some("wrong")).await;
    assert_eq!(status, 401);
    receiver.reply_always(Reply::Ack);
    let (status, queued) = admin(&app, reqwest::Method::POST, &resend, Some(&app.admin_token())).await;
    assert_eq!((status, queued["queued"].as_u64()), (200, Some(1)));
    receiver.wait_for(9).await;
    let notification = recorded(&app, &payment_id, 9).await;
    assert_eq!(notification["status"], "DELIVERED");
    assert_eq!(notification["attempts"][8]["manual"], true);
    assert_eq!(notification["attempts"][8]["outcome"], "DELIVERED");
}

trait FromIso {
    fn from_str_iso(text: &str) -> jiff::Timestamp;
}

impl FromIso for jiff::Timestamp {
    fn from_str_iso(text: &str) -> jiff::Timestamp {
        ocpay_protocol::datetime::parse(text).expect("ISO 8601")
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timeouts_and_wrong_answers_are_retried() {
    let app = TestApp::spawn_with(|config| config.notify_timeout_ms = 300).await;
    let receiver = Receiver::start(app.platform_key.clone()).await;
    receiver.reply_next([Reply::Hang, Reply::Body("OK".into()), Reply::Status(302)]);
    let merchant = app.merchant_notified_at(&receiver).await;
    let paid = order_code(&merchant, "USD", 100).await;
    let payment_id = paid.payment_id.clone().unwrap();
    wallet_pay(&app, &code_value(&paid), json!({})).await;
    recorded(&app, &payment_id, 1).await;
    for (n, minutes) in [(2, 2), (3, 10), (4, 10)] {
        app.clock.advance(SignedDuration::from_mins(minutes));
        recorded(&app, &payment_id, n).await;
    }
    let notification = attempts(&app, &payment_id).await;
    let outcomes: Vec<&str> =
        notification["attempts"].as_array().unwrap().iter().map(|a| a["outcome"].as_str().unwrap()).collect();
    assert_eq!(outcomes, ["ERROR", "REJECTED", "REJECTED", "DELIVERED"]);
    assert!(notification["attempts"][0]["error"].as_str().unwrap().contains("timed out"), "{notification}");
    assert_eq!(notification["status"], "DELIVERED");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pending_delivery_survives_a_crash() {
    let app = TestApp::spawn().await;
    let receiver = Receiver::start(app.platform_key.clone()).await;
    receiver.reply_next([Reply::Status(503)]);
    let merchant = app.merchant_notified_at(&receiver).await;
    let paid = order_code(&merchant, "USD", 100).await;
    let payment_id = paid.payment_id.clone().unwrap();
    wallet_pay(&app, &code_value(&paid), json!({})).await;
    recorded(&app, &payment_id, 1).await;

    let app = app.crash_and_restart().await;
    app.clock.advance(SignedDuration::from_mins(2));
    receiver.wait_for(2).await;
    let notification = recorded(&app, &payment_id, 2).await;
    assert_eq!(notification["status"], "DELIVERED", "delivered by the restarted server");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_mid_attempt_does_not_wait_out_the_claim() {
    // The first attempt hangs far longer than the test; the crash leaves its claim held.
    let app = TestApp::spawn_with(|config| config.notify_timeout_ms = 30_000).await;
    let receiver = Receiver::start(app.platform_key.clone()).await;
    receiver.reply_next([Reply::Hang]);
    let merchant = app.merchant_notified_at(&receiver).await;
    let paid = order_code(&merchant, "USD", 100).await;
    let payment_id = paid.payment_id.clone().unwrap();
    wallet_pay(&app, &code_value(&paid), json!({})).await;
    receiver.wait_for(1).await;

    let app = app.crash_and_restart().await;
    if app.state.config.database_url.is_some() {
        // Several nodes share a PostgreSQL database, so a starting node cannot tell a dead
        // node's claims from a live one's: they lapse with their lease.
        app.clock.advance(SignedDuration::from_millis(app.state.config.notify_claim_lease_ms as i64));
    }
    // Otherwise the same instant on the test clock: only releasing the dead process's claims
    // lets it go. The server's record comes first: if the attempt failed, it says why.
    let notification = recorded(&app, &payment_id, 1).await;
    assert_eq!(notification["status"], "DELIVERED", "{notification}");
    receiver.wait_for(2).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resend_during_an_attempt_waits_for_it() {
    let app = TestApp::spawn_with(|config| config.notify_timeout_ms = 600).await;
    let receiver = Receiver::start(app.platform_key.clone()).await;
    receiver.reply_next([Reply::Hang]);
    let merchant = app.merchant_notified_at(&receiver).await;
    let paid = order_code(&merchant, "USD", 100).await;
    let payment_id = paid.payment_id.clone().unwrap();
    wallet_pay(&app, &code_value(&paid), json!({})).await;
    receiver.wait_for(1).await;
    let resend = format!("/admin/api/payments/{payment_id}/notifications/resend");
    let (status, _) = admin(&app, reqwest::Method::POST, &resend, Some(&app.admin_token())).await;
    assert_eq!(status, 200);

    let received = receiver.wait_for(2).await;
    // The first attempt ends only when the platform gives up on it, after its 600 ms timeout.
    let apart = received[1].arrived_at.duration_since(received[0].arrived_at);
    assert!(
        apart >= std::time::Duration::from_millis(550),
        "no second request beside the one in flight: {apart:?}"
    );
    let notification = recorded(&app, &payment_id, 2).await;
    let attempts = notification["attempts"].as_array().unwrap();
    assert_eq!(attempts.len(), 2, "every attempt recorded: {notification}");
    assert_eq!(
        (attempts[0]["outcome"].as_str(), attempts[0]["manual"].as_bool()),
        (Some("ERROR"), Some(false))
    );
    assert_eq!(
        (attempts[1]["outcome"].as_str(), attempts[1]["manual"].as_bool()),
        (Some("DELIVERED"), Some(true))
    );
    assert_eq!(notification["status"], "DELIVERED");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sandbox_magic_amount_9904_counts_the_acknowledgement_from_the_second_attempt_on() {
    let app = TestApp::spawn().await;
    let receiver = Receiver::start(app.platform_key.clone()).await;
    let merchant = app.merchant_notified_at(&receiver).await;
    let paid = order_code(&merchant, "USD", 9904).await;
    let payment_id = paid.payment_id.clone().unwrap();
    wallet_pay(&app, &code_value(&paid), json!({})).await;
    let notification = recorded(&app, &payment_id, 1).await;
    assert_eq!(notification["status"], "PENDING", "acknowledged, but not counted: retried");
    assert!(notification["attempts"][0]["error"].as_str().unwrap().contains("9904"));
    assert_eq!(notification["attempts"][0]["outcome"], "REJECTED");
    app.clock.advance(SignedDuration::from_mins(2));
    let notification = recorded(&app, &payment_id, 2).await;
    assert_eq!(notification["attempts"][1]["outcome"], "DELIVERED");
    assert_eq!(notification["status"], "DELIVERED", "the second attempt counts as answered");
    assert!(receiver.received().iter().all(|received| received.reply == Reply::Ack));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_participants_never_notify_private_addresses() {
    let app = TestApp::spawn().await;
    let live = app
        .participant(ParticipantKind::Merchant, Environment::Live, Some("https://merchant.example/n"))
        .await;
    for url in
        ["http://127.0.0.1:9/notify", "http://10.0.0.7/notify", "http://localhost/notify", "http://[::1]/n"]
    {
        let mut request = pay_request(&unique_id("PR"), "USD", 100);
        request.payment_notify_url = Some(url.into());
        let answer = live.client.pay(&request).await.unwrap();
        assert_eq!(answer.result.result_code, "PARAM_ILLEGAL", "{url}");
        assert!(
            answer.result.result_message.starts_with("paymentNotifyUrl:"),
            "{}",
            answer.result.result_message
        );
    }
    // Sandbox participants test against their own machine.
    let sandbox = app.merchant().await;
    let mut request = pay_request(&unique_id("PR"), "USD", 100);
    request.payment_notify_url = Some("http://127.0.0.1:9/notify".into());
    assert_eq!(sandbox.client.pay(&request).await.unwrap().result.result_code, "SUCCESS");

    let permissive = TestApp::spawn_with(|config| config.notify_allow_private_addresses = true).await;
    let live = permissive
        .participant(ParticipantKind::Merchant, Environment::Live, Some("https://merchant.example/n"))
        .await;
    let mut request = pay_request(&unique_id("PR"), "USD", 100);
    request.payment_notify_url = Some("http://127.0.0.1:9/notify".into());
    assert_eq!(
        live.client.pay(&request).await.unwrap().result.result_code,
        "SUCCESS",
        "the operator allowed it"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receiver_that_checks_signatures_refuses_another_keys_notification() {
    let app = TestApp::spawn().await;
    let stranger = ocpay_protocol::SigningKey::generate().unwrap().verifying_key();
    let receiver = Receiver::start(stranger).await;
    let merchant = app.merchant_notified_at(&receiver).await;
    let paid = order_code(&merchant, "USD", 100).await;
    let payment_id = paid.payment_id.clone().unwrap();
    wallet_pay(&app, &code_value(&paid), json!({})).await;
    let notification = recorded(&app, &payment_id, 1).await;
    assert_eq!(notification["attempts"][0]["outcome"], "REJECTED", "{notification}");
    assert_eq!(notification["status"], "PENDING", "retried later");
    let received = receiver.received();
    assert_eq!((received[0].verified, &received[0].reply), (false, &Reply::Status(401)));
}

/// Pays an order code whose `paymentNotifyUrl` is `url`, and the result code.
async fn pay_notified_at(merchant: &ocpay_testkit::TestParticipant, url: &str) -> (String, String) {
    let mut request = pay_request(&unique_id("PR"), "USD", 100);
    request.payment_notify_url = Some(url.into());
    let answer = merchant.client.pay(&request).await.unwrap();
    (answer.result.result_code, answer.result.result_message)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notifications_never_reach_metadata_addresses_private_ranges_or_the_platform_itself() {
    let app = TestApp::spawn().await;
    let sandbox = app.merchant().await;
    let refused = [
        "http://169.254.169.254/latest/meta-data/iam/security-credentials/".to_owned(),
        "http://metadata.google.internal/computeMetadata/v1/".to_owned(),
        "http://100.100.100.200/latest/meta-data/".to_owned(),
        "http://[fe80::1]/n".to_owned(),
        "http://[::ffff:169.254.169.254]/n".to_owned(),
        "http://0.0.0.0:9/n".to_owned(),
        "http://10.0.0.1:6379/".to_owned(),
        "http://192.168.1.1/n".to_owned(),
        format!("{}/admin/api/audit?clientId=x", app.base_url),
        format!("{}/wallet/api/codes/x/pay", app.base_url.replace("127.0.0.1", "localhost")),
    ];
    for url in &refused {
        let (code, message) = pay_notified_at(&sandbox, url).await;
        assert_eq!(code, "PARAM_ILLEGAL", "{url}: {message}");
        assert!(message.starts_with("paymentNotifyUrl: must not name"), "{url}: {message}");
    }
    // The developer's own machine stays reachable in the sandbox: loopback, on another port.
    assert_eq!(pay_notified_at(&sandbox, "http://127.0.0.1:9/notify").await.0, "SUCCESS");

    // A participant's own notify URL is checked the same way.
    let key = ocpay_protocol::SigningKey::generate().unwrap();
    let new = ocpay_server::service::participants::NewParticipant {
        kind: ParticipantKind::Merchant,
        environment: Environment::Sandbox,
        name: "Metadata Cafe".parse().expect("a name"),
        public_key: key.verifying_key(),
        notify_url: Some("http://169.254.169.254/latest/".parse().unwrap()),
    };
    let error = ocpay_server::service::participants::create(
        &*app.state.store,
        &app.state.settings.notify,
        ocpay_testkit::Clock::now(&*app.clock),
        new,
    )
    .await
    .unwrap_err();
    assert!(
        matches!(&error, ParticipantError::Invalid { field: ParticipantField::NotifyUrl, reason }
            if reason.starts_with("must not name a link-local")),
        "{error}"
    );

    // Settings widen what a sandbox may reach, never to metadata addresses or the platform;
    // the operator's allowance of private addresses for live participants neither.
    let widened = TestApp::spawn_with(|config| {
        config.sandbox_notify_allow_private = true;
        config.notify_allow_private_addresses = true;
    })
    .await;
    let sandbox = widened.merchant().await;
    assert_eq!(pay_notified_at(&sandbox, "http://10.0.0.1:6379/").await.0, "SUCCESS");
    let live = widened
        .participant(ParticipantKind::Merchant, Environment::Live, Some("https://merchant.example/n"))
        .await;
    for merchant in [&sandbox, &live] {
        for url in ["http://169.254.169.254/latest/".to_owned(), format!("{}/healthz", widened.base_url)] {
            assert_eq!(pay_notified_at(merchant, &url).await.0, "PARAM_ILLEGAL", "{url}");
        }
    }
    let narrowed = TestApp::spawn_with(|config| config.sandbox_notify_allow_loopback = false).await;
    let sandbox = narrowed.merchant().await;
    let (code, message) = pay_notified_at(&sandbox, "http://127.0.0.1:9/notify").await;
    assert_eq!((code.as_str(), message.contains("loopback")), ("PARAM_ILLEGAL", true), "{message}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a host name that resolves only to loopback: scripts/test runs it"]
async fn a_loopback_name_of_the_platform_or_a_refused_address_is_refused_when_sending() {
    let host = name_resolving_only_to_loopback().await;
    // The platform's own admin API, by a name: accepted up front, refused when sending.
    let app = TestApp::spawn().await;
    let merchant = app.merchant().await;
    let port = url::Url::parse(&app.base_url).unwrap().port().unwrap();
    let own = format!("http://{host}:{port}/admin/api/audit");
    let paid = {
        let mut request = pay_request(&unique_id("PR"), "USD", 100);
        request.payment_notify_url = Some(own.clone());
        merchant.client.pay(&request).await.unwrap()
    };
    assert_eq!(paid.result.result_code, "SUCCESS", "a name is accepted up front: {:?}", paid.result);
    let payment_id = paid.payment_id.clone().unwrap();
    wallet_pay(&app, &code_value(&paid), json!({})).await;
    let notification = recorded(&app, &payment_id, 1).await;
    let attempt = &notification["attempts"][0];
    assert!(
        attempt["error"].as_str().unwrap_or_default().contains("this platform's own address"),
        "{notification}"
    );
    assert_eq!(attempt["httpStatus"], Value::Null, "nothing was sent: {notification}");

    // Loopback refused by the settings: a name that resolves there is not followed either.
    let narrowed = TestApp::spawn_with(|config| config.sandbox_notify_allow_loopback = false).await;
    let receiver = Receiver::start(narrowed.platform_key.clone()).await;
    let receiver_port = url::Url::parse(&receiver.url).unwrap().port().unwrap();
    let merchant = narrowed
        .participant(
            ParticipantKind::Merchant,
            Environment::Sandbox,
            Some(&format!("http://{host}:{receiver_port}/merchant/notify")),
        )
        .await;
    let paid = order_code(&merchant, "USD", 100).await;
    let payment_id = paid.payment_id.clone().unwrap();
    wallet_pay(&narrowed, &code_value(&paid), json!({})).await;
    let notification = recorded(&narrowed, &payment_id, 1).await;
    let error = notification["attempts"][0]["error"].as_str().unwrap_or_default();
    assert!(error.contains(&format!("{host} resolves only to private addresses")), "{notification}");
    narrowed.background_rounds().await;
    assert!(receiver.received().is_empty(), "the receiver got nothing: {:?}", receiver.received());

    // Whatever slips past the checks (the platform's public address behind a NAT, say) is
    // refused by the platform itself: it takes no notification.
    let response = reqwest::Client::new()
        .post(format!("{}/admin/api/audit", app.base_url))
        .header("notify-id", "N1")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 403);
}
