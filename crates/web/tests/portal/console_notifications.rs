//! The console's Notifications page: a merchant's endpoint that answers HTTP 500 shows as
//! failing (participant, host, attempts, last error) with the age of the oldest undelivered
//! notification; a resend by payment id (audited under the merchant with the operator)
//! delivers to the testkit's receiver once it acknowledges; an id that names nothing is
//! refused naming the field; and only operators reach the page. The console home's charts
//! count the platform's payments and notifications.

use jiff::SignedDuration;
use ocpay_core::portal::Role;
use ocpay_testkit::{Receiver, Reply, TestApp, unique_id};
use reqwest::StatusCode;

use crate::console_payers::{operator, refuses_everyone_else};
use crate::payments::{audited, pay, signed_in};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_endpoint_shows_and_a_resend_delivers_once_it_answers() {
    let app = TestApp::spawn().await;
    let receiver = Receiver::start(app.platform_key.clone()).await;
    let merchant = app.merchant_notified_at(&receiver).await;
    let owner = signed_in(&app, &merchant.client_id, "owner@shop.example", Role::Owner).await;

    receiver.reply_always(Reply::Status(500));
    let id = pay(&merchant, &unique_id("PR-CONSOLE"), 1250).await;
    let path = format!("/portal/payments/{id}");
    let csrf = owner.get(&path).await.csrf();
    let paid = owner.post(&format!("{path}/pay"), &[("csrf", &csrf), ("outcome", "SUCCESS")]).await;
    assert_eq!(paid.status, StatusCode::SEE_OTHER, "{}", paid.body);
    app.background_rounds().await;
    assert_eq!(receiver.received().len(), 1, "one attempt, refused");
    app.clock.advance(SignedDuration::from_mins(125));
    // The retry due by then is made (and refused) before anything is counted.
    app.background_rounds().await;
    // Signed in now: a session of two hours ago would have ended idle.
    let console = operator(&app, "ops@platform.example").await;

    let failing = console.get("/console/notifications").await;
    assert_eq!(failing.status, StatusCode::OK, "{}", failing.body);
    let body = &failing.body;
    assert!(body.contains(&format!("<code>{}</code>", merchant.client_id)), "{body}");
    assert!(body.contains("127.0.0.1") && body.contains("HTTP 500"), "{body}");
    assert!(body.contains("<dt>Being retried</dt><dd>1</dd>"), "{body}");
    assert!(body.contains("2 h 5 min old"), "the oldest undelivered notification's age: {body}");
    assert!(body.contains(&format!("name=\"id\" value=\"{id}\"")), "a resend of the newest: {body}");

    // An id that names nothing is refused, naming the field; nothing is sent.
    let unknown = console
        .post(
            "/console/notifications/resend",
            &[("csrf", &failing.csrf()), ("id", "PAY-NOTHING"), ("client_id", "")],
        )
        .await;
    assert_eq!(unknown.status, StatusCode::BAD_REQUEST, "{}", unknown.body);
    assert!(unknown.body.contains("id: no notification is about PAY-NOTHING"), "{}", unknown.body);

    receiver.reply_always(Reply::Ack);
    // The retries due in those two hours were refused too.
    let refused = receiver.received().len();
    let resent =
        console.post("/console/notifications/resend", &[("csrf", &failing.csrf()), ("id", &id)]).await;
    assert_eq!(resent.location.as_deref(), Some("/console/notifications?queued=1"), "{}", resent.body);
    app.background_rounds().await;
    let received = receiver.received();
    assert_eq!(received.len(), refused + 1, "delivered on the resend");
    assert_eq!(received[0].notify_id, received[refused].notify_id, "the same notification");
    let after = console.get("/console/notifications?queued=1").await;
    assert!(after.body.contains("1 notifications were queued"), "{}", after.body);
    assert!(after.body.contains("No endpoint is failing"), "{}", after.body);
    assert_eq!(audited(&app, &merchant.client_id, "console.resendNotifications", 1).await, ["SUCCESS"]);

    // The console home charts the platform's day: one payment, one notification delivered.
    let home = console.get("/console/").await;
    assert!(home.body.contains("1 payments (1 USD 12.50)"), "{}", home.body);
    assert!(home.body.contains("1 delivered, 0 still trying, 0 failed"), "{}", home.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notifications_are_the_operators_only() {
    let app = TestApp::spawn().await;
    refuses_everyone_else(&app, &["/console/notifications"], &["/console/notifications/resend"]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_home_charts_every_participant_and_keeps_the_days_that_can_no_longer_change() {
    let app = TestApp::spawn().await;
    let receiver = Receiver::start(app.platform_key.clone()).await;
    receiver.reply_always(Reply::Ack);
    let mut owners = Vec::new();
    for (n, minor) in [1250, 700].into_iter().enumerate() {
        let merchant = app.merchant_notified_at(&receiver).await;
        let owner =
            signed_in(&app, &merchant.client_id, &format!("owner{n}@shop.example"), Role::Owner).await;
        let id = pay(&merchant, &unique_id("PR-CHART"), minor).await;
        let path = format!("/portal/payments/{id}");
        let csrf = owner.get(&path).await.csrf();
        let paid = owner.post(&format!("{path}/pay"), &[("csrf", &csrf), ("outcome", "SUCCESS")]).await;
        assert_eq!(paid.status, StatusCode::SEE_OTHER, "{}", paid.body);
        owners.push(merchant);
    }
    app.background_rounds().await;
    // Ten days on, the day of the payments can no longer change: the first view computes and
    // keeps it, the next reads it kept, and both say the same.
    app.clock.advance(SignedDuration::from_hours(240));
    let console = operator(&app, "ops@platform.example").await;
    for view in ["first", "kept"] {
        let home = console.get("/console/").await;
        assert_eq!(home.status, StatusCode::OK, "{view}: {}", home.body);
        assert!(home.body.contains("2 payments (2 USD 19.50)"), "{view}: {}", home.body);
        assert!(home.body.contains("2 delivered, 0 still trying, 0 failed"), "{view}: {}", home.body);
    }
    // A participant's own charts are untouched by the platform's kept days.
    let first = &owners[0];
    let own = signed_in(&app, &first.client_id, "later@shop.example", Role::Viewer).await;
    let home = own.get("/portal/").await;
    assert!(home.body.contains("1 payments (1 USD 12.50)"), "{}", home.body);
    assert!(!home.body.contains("USD 7.00"), "{}", home.body);
}
