//! The settings page: the default notify URL, checked for the participant's environment, and the
//! settlement currency; refusals naming the field; roles and CSRF.

use ocpay_core::ids::ClientId;
use ocpay_core::money::Currency;
use ocpay_core::participant::{Environment, ParticipantKind};
use ocpay_core::portal::Role;
use ocpay_testkit::TestApp;
use reqwest::StatusCode;

use crate::browser::{Browser, audit_codes, user};

async fn notify_url_of(app: &TestApp, client_id: &ClientId) -> Option<String> {
    app.state.store.participant(client_id).await.unwrap().unwrap().notify_url
}

async fn settlement_currency_of(app: &TestApp, client_id: &ClientId) -> Option<Currency> {
    app.state.store.settlement_terms(client_id).await.unwrap().unwrap().settlement_currency
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_developer_changes_the_notify_url_and_the_settlement_currency() {
    let app = TestApp::spawn().await;
    let merchant = app.merchant().await;
    let client_id = ClientId::parse(&merchant.client_id).unwrap();
    user(&app, &merchant.client_id, "dev@shop.example", Role::Developer).await;
    let browser = Browser::signed_in(&app, "dev@shop.example").await;

    let page = browser.get("/portal/settings").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("value=\"https://merchant.example/notify\""), "{}", page.body);
    let csrf = page.csrf();
    let post = |path: &'static str, name: &'static str, value: &'static str| {
        let (browser, csrf) = (&browser, csrf.clone());
        async move { browser.post(path, &[("csrf", &csrf), (name, value)]).await }
    };

    let saved = post("/portal/settings/notify-url", "notify_url", "https://shop.example/ocpay/notify").await;
    assert_eq!(saved.location.as_deref(), Some("/portal/settings?saved=notify-url"), "{}", saved.body);
    assert_eq!(notify_url_of(&app, &client_id).await.as_deref(), Some("https://shop.example/ocpay/notify"));
    assert!(browser.get("/portal/settings?saved=notify-url").await.body.contains("Default notify URL saved"));

    // Refused URLs name the field, keep what was typed and change nothing.
    for (url, reason) in [
        ("http://169.254.169.254/latest/meta-data", "link-local"),
        ("ftp://shop.example/notify", "http or https"),
        ("shop.example/notify", "absolute URL"),
        ("http://metadata.google.internal/", "metadata"),
    ] {
        let refused = post("/portal/settings/notify-url", "notify_url", url).await;
        assert_eq!(refused.status, StatusCode::BAD_REQUEST, "{url}");
        assert!(
            refused.body.contains("notify URL: ") && refused.body.contains(reason),
            "{url}: {}",
            refused.body
        );
        assert!(refused.body.contains(&format!("value=\"{url}\"")), "the field keeps {url}");
        assert_eq!(
            notify_url_of(&app, &client_id).await.as_deref(),
            Some("https://shop.example/ocpay/notify")
        );
    }
    // Empty removes the default.
    post("/portal/settings/notify-url", "notify_url", "").await;
    assert_eq!(notify_url_of(&app, &client_id).await, None);

    let saved = post("/portal/settings/settlement-currency", "settlement_currency", "sgd").await;
    assert_eq!(saved.location.as_deref(), Some("/portal/settings?saved=settlement-currency"));
    assert_eq!(settlement_currency_of(&app, &client_id).await, Some(Currency::parse("SGD").unwrap()));
    assert!(browser.get("/portal/settings").await.body.contains("value=\"SGD\""));
    for code in ["XYZ", "XAU", "US"] {
        let refused = post("/portal/settings/settlement-currency", "settlement_currency", code).await;
        assert_eq!(refused.status, StatusCode::BAD_REQUEST, "{code}");
        assert!(refused.body.contains("settlement currency: "), "{code}: {}", refused.body);
    }
    assert_eq!(settlement_currency_of(&app, &client_id).await, Some(Currency::parse("SGD").unwrap()));
    post("/portal/settings/settlement-currency", "settlement_currency", "").await;
    assert_eq!(settlement_currency_of(&app, &client_id).await, None, "each transaction in its own");

    assert_eq!(audit_codes(&app, &client_id, "portal.changeNotifyUrl", 2).await, ["SUCCESS"; 2]);
    assert_eq!(audit_codes(&app, &client_id, "portal.changeSettlementCurrency", 2).await, ["SUCCESS"; 2]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_live_participant_may_not_notify_a_private_address() {
    let app = TestApp::spawn().await;
    let live =
        app.participant(ParticipantKind::Merchant, Environment::Live, Some("https://shop.example/n")).await;
    let client_id = ClientId::parse(&live.client_id).unwrap();
    user(&app, &live.client_id, "dev@shop.example", Role::Developer).await;
    let browser = Browser::signed_in(&app, "dev@shop.example").await;
    let page = browser.get("/portal/settings").await;
    assert!(page.body.contains("private and loopback addresses for a live participant"), "{}", page.body);
    for url in ["http://10.1.2.3/notify", "http://127.0.0.1:9000/notify", "http://localhost/notify"] {
        let refused =
            browser.post("/portal/settings/notify-url", &[("csrf", &page.csrf()), ("notify_url", url)]).await;
        assert_eq!(refused.status, StatusCode::BAD_REQUEST, "{url}");
        assert!(refused.body.contains("notify URL: "), "{url}: {}", refused.body);
    }
    assert_eq!(notify_url_of(&app, &client_id).await.as_deref(), Some("https://shop.example/n"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn viewers_read_the_settings_and_forms_need_the_sessions_token() {
    let app = TestApp::spawn().await;
    let merchant = app.merchant().await;
    let client_id = ClientId::parse(&merchant.client_id).unwrap();
    assert_eq!(Browser::new(&app).get("/portal/settings").await.location.as_deref(), Some("/portal/login"));
    let answer = Browser::new(&app).post("/portal/settings/notify-url", &[("csrf", "x")]).await;
    assert_eq!(answer.location.as_deref(), Some("/portal/login"));

    user(&app, &merchant.client_id, "viewer@shop.example", Role::Viewer).await;
    user(&app, &merchant.client_id, "owner@shop.example", Role::Owner).await;
    let viewer = Browser::signed_in(&app, "viewer@shop.example").await;
    let page = viewer.get("/portal/settings").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("https://merchant.example/notify"), "the viewer reads the URL");
    assert!(!page.body.contains("Save the notify URL"), "but gets no form");
    let csrf = page.csrf();
    let refused = viewer
        .post("/portal/settings/notify-url", &[("csrf", &csrf), ("notify_url", "https://viewer.example/n")])
        .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    let refused = viewer
        .post("/portal/settings/settlement-currency", &[("csrf", &csrf), ("settlement_currency", "EUR")])
        .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);

    let owner = Browser::signed_in(&app, "owner@shop.example").await;
    let csrf = owner.get("/portal/settings").await.csrf();
    let forged = owner
        .post("/portal/settings/notify-url", &[("csrf", "forged"), ("notify_url", "https://evil.example/n")])
        .await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    let cross_site = [("origin", "https://evil.example"), ("sec-fetch-site", "cross-site")];
    let answer = owner
        .post_with(
            "/portal/settings/settlement-currency",
            &[("csrf", &csrf), ("settlement_currency", "EUR")],
            &cross_site,
        )
        .await;
    assert_eq!(answer.status, StatusCode::FORBIDDEN);
    assert_eq!(notify_url_of(&app, &client_id).await.as_deref(), Some("https://merchant.example/notify"));
    assert_eq!(settlement_currency_of(&app, &client_id).await, None, "nothing changed");
    assert_eq!(audit_codes(&app, &client_id, "portal.changeSettlementCurrency", 1).await, ["FORBIDDEN"]);

    let saved = owner
        .post("/portal/settings/settlement-currency", &[("csrf", &csrf), ("settlement_currency", "EUR")])
        .await;
    assert_eq!(saved.status, StatusCode::SEE_OTHER, "an owner changes settings");
}
