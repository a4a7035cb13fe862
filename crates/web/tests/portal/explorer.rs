//! The API explorer's page over HTTP: who sees it, the APIs and sample bodies it offers each
//! kind of participant (with the participant's own values), the platform keys it publishes,
//! and that nothing on it could carry a private key to the server. Signing and sending are the
//! browser's (`chromium.rs`).

use ocpay_core::participant::{Environment, ParticipantKind};
use ocpay_core::portal::Role;
use ocpay_testkit::{TestApp, unique_id};
use reqwest::StatusCode;

use crate::browser::{Browser, user};
use crate::payments::{pay, signed_in};

/// The `data-body` of the option of `api`, unescaped as a browser reads it.
fn sample_body(html: &str, api: &str) -> Option<serde_json::Value> {
    let start = html.find(&format!("<option value=\"{api}\""))?;
    let option = &html[start..start + html[start..].find('>')?];
    let marker = "data-body=\"";
    let body = &option[option.find(marker)? + marker.len()..];
    let body = &body[..body.find('"')?];
    let text =
        body.replace("&#34;", "\"").replace("&quot;", "\"").replace("&#39;", "'").replace("&amp;", "&");
    serde_json::from_str(&text).ok()
}

/// The element of `html` that has `id="<id>"`, up to the end of its start tag.
fn start_tag<'a>(html: &'a str, id: &str) -> &'a str {
    let at = html.find(&format!("id=\"{id}\"")).unwrap_or_else(|| panic!("no #{id}"));
    let open = html[..at].rfind('<').expect("a start tag");
    &html[open..at + html[at..].find('>').expect("the tag's end")]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_role_of_a_sandbox_merchant_gets_the_explorer_filled_in_with_its_own_values() {
    let app = TestApp::spawn().await;
    let merchant = app.merchant().await;
    let owner = signed_in(&app, &merchant.client_id, "owner@shop.example", Role::Owner).await;
    let payment_id = pay(&merchant, &unique_id("EXPLORER-PAID"), 777).await;
    let path = format!("/portal/payments/{payment_id}");
    let csrf = owner.get(&path).await.csrf();
    let paid = owner.post(&format!("{path}/pay"), &[("csrf", &csrf), ("outcome", "SUCCESS")]).await;
    assert_eq!(paid.status, StatusCode::SEE_OTHER, "{}", paid.body);
    user(&app, &merchant.client_id, "dev@shop.example", Role::Developer).await;
    user(&app, &merchant.client_id, "viewer@shop.example", Role::Viewer).await;

    for email in ["owner@shop.example", "dev@shop.example", "viewer@shop.example"] {
        let browser = Browser::signed_in(&app, email).await;
        let page = browser.get("/portal/explorer").await;
        assert_eq!(page.status, StatusCode::OK, "{email}");
        let html = &page.body;
        assert!(html.contains("href=\"/portal/explorer\" aria-current=\"page\""), "in the navigation");
        assert!(html.contains(&format!("data-client-id=\"{}\"", merchant.client_id)));
        assert!(html.contains(&format!("data-gateway=\"{}\"", app.base_url)));
        // A sandbox participant sends from here.
        assert!(html.contains("id=\"send\""), "{email} may send");
        assert!(!html.contains("live-only-signs"));

        // The order-code APIs and the API log, on the sandbox prefix; no registrations.
        for api in ["pay", "inquiryPayment", "cancel", "refund", "inquiryRefund", "apiLogInquiry"] {
            assert!(html.contains(&format!("<option value=\"{api}\"")), "{api} offered");
        }
        assert!(html.contains("data-path=\"/ams/sandbox/api/v1/payments/pay\""));
        assert!(html.contains("data-sdk-path=\"/ams/api/v1/payments/pay\""));
        assert!(!html.contains("<option value=\"registration\""), "merchants register nothing");

        // The pay sample: a fresh request id, an amount, the merchant's notify URL.
        let pay = sample_body(html, "pay").expect("the pay sample is JSON");
        let request_id = pay["paymentRequestId"].as_str().expect("a paymentRequestId");
        assert!(request_id.starts_with("pay-explorer-"), "{request_id}");
        assert_eq!(pay["paymentAmount"]["value"], "1250");
        assert_eq!(pay["paymentNotifyUrl"], "https://merchant.example/notify");
        let inquiry = sample_body(html, "inquiryPayment").unwrap();
        assert_eq!(inquiry["paymentRequestId"], request_id, "the inquiry asks for the pay above");
        // The refund sample refunds the newest paid payment.
        let refund = sample_body(html, "refund").unwrap();
        assert_eq!(refund["paymentId"], payment_id.as_str());
        assert_eq!(refund["refundAmount"]["value"], "777");

        // The key versions that may sign, and the platform keys the answer is checked with.
        assert!(html.contains("<option value=\"1\">1</option>"), "key 1");
        assert!(html.contains("data-platform-key=\"1\""));
        assert!(
            html.contains(&app.platform_key.to_pem().lines().nth(1).unwrap().to_owned()),
            "the platform key"
        );

        // The private key has no way to the server: no name, no form around it.
        let key_field = start_tag(html, "private-key");
        assert!(key_field.starts_with("<textarea") && !key_field.contains("name="), "{key_field}");
        let key_file = start_tag(html, "key-file");
        assert!(!key_file.contains("name="), "{key_file}");
        assert_eq!(html.matches("<form").count(), 1, "only the sign-out form");
        // Script from this origin only, none inline.
        assert!(html.contains("<script src=\"/portal/static/explorer.js\" defer></script>"));
        assert_eq!(html.matches("<script").count(), html.matches("<script src=\"/portal/static/").count());
        let csp = page.headers["content-security-policy"].to_str().unwrap();
        assert!(csp.contains("script-src 'self'") && csp.contains("connect-src 'self'"), "{csp}");
    }

    // Two loads, two sets of request ids.
    let browser = Browser::signed_in(&app, "dev@shop.example").await;
    let first = sample_body(&browser.get("/portal/explorer").await.body, "pay").unwrap();
    let second = sample_body(&browser.get("/portal/explorer").await.body, "pay").unwrap();
    assert_ne!(first["paymentRequestId"], second["paymentRequestId"]);

    let script = Browser::new(&app).get("/portal/static/explorer.js").await;
    assert_eq!(script.status, StatusCode::OK);
    assert_eq!(script.headers["content-type"], "text/javascript; charset=utf-8");
    assert!(script.body.contains("crypto.subtle.sign"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acquirers_get_the_registration_apis_and_isvs_an_agent_token_field() {
    let app = TestApp::spawn().await;
    let acquirer = app.acquirer().await;
    let browser = signed_in(&app, &acquirer.client_id, "dev@acquirer.example", Role::Developer).await;
    let html = browser.get("/portal/explorer").await.body;
    for api in ["registration", "inquiryRegistrationStatus", "inquiryRegistrationInfo", "pay"] {
        assert!(html.contains(&format!("<option value=\"{api}\"")), "{api} offered to an acquirer");
    }
    let registration = sample_body(&html, "registration").expect("the registration sample");
    let request_id = registration["registrationRequestId"].as_str().unwrap();
    assert!(request_id.starts_with("registration-explorer-"), "{request_id}");
    let status = sample_body(&html, "inquiryRegistrationStatus").unwrap();
    assert_eq!(status["registrationRequestId"], request_id);
    assert!(!html.contains("id=\"agent-token\""));

    let isv = app.participant(ParticipantKind::Isv, Environment::Sandbox, None).await;
    let browser = signed_in(&app, &isv.client_id, "dev@isv.example", Role::Developer).await;
    let html = browser.get("/portal/explorer").await.body;
    assert!(html.contains("id=\"agent-token\""), "an ISV sends its Agent-Token");
    assert!(!start_tag(&html, "agent-token").contains("name="));
    assert!(!html.contains("<option value=\"registration\""));
    let pay = sample_body(&html, "pay").unwrap();
    assert!(pay.get("paymentNotifyUrl").is_none(), "no notify URL set: none in the sample");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_live_participants_explorer_signs_but_sends_nothing() {
    let app = TestApp::spawn().await;
    let live = app
        .participant(ParticipantKind::Merchant, Environment::Live, Some("https://shop.example/notify"))
        .await;
    let browser = signed_in(&app, &live.client_id, "dev@live.example", Role::Developer).await;
    let page = browser.get("/portal/explorer").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("id=\"live-only-signs\""), "says why nothing is sent");
    assert!(!page.body.contains("id=\"send\""), "no send button");
    assert!(page.body.contains("id=\"sign\""), "signing and copying stay");
    assert!(page.body.contains("data-path=\"/ams/api/v1/payments/pay\""), "the live path");
    assert!(page.body.contains("data-sandbox=\"no\""));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signed_out_the_explorer_leads_to_sign_in() {
    let app = TestApp::spawn().await;
    let page = Browser::new(&app).get("/portal/explorer").await;
    assert_eq!(page.location.as_deref(), Some("/portal/login"));
}
