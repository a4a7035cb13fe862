//! The keys page: the list with last use, keys uploaded in every form the gateway reads that then
//! sign real requests, an integrator's scoped key, revocation that the gateway honours at once,
//! roles, CSRF, another participant's key versions, and paging.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use ocpay_core::access::Scopes;
use ocpay_core::ids::ClientId;
use ocpay_core::portal::Role;
use ocpay_protocol::payments::InquiryPaymentRequest;
use ocpay_protocol::{SigningKey, VerifyingKey};
use ocpay_server::clock::Clock as _;
use ocpay_server::service::participants::{self, AddedKey};
use ocpay_testkit::{TestApp, TestParticipant, pay_request, unique_id};
use reqwest::StatusCode;

use crate::browser::{Browser, audit_codes, user};

const ALL_SCOPES: [(&str, &str); 6] = [
    ("scope", "pay"),
    ("scope", "inquiry"),
    ("scope", "cancel"),
    ("scope", "refund"),
    ("scope", "reports"),
    ("scope", "registration"),
];

/// Adds a key through the page's form: the answer to the POST.
async fn add_key(browser: &Browser, public_key: &str, extra: &[(&str, &str)]) -> crate::browser::Page {
    let csrf = browser.get("/portal/keys").await.csrf();
    let mut fields = vec![("csrf", csrf.as_str()), ("public_key", public_key)];
    fields.extend_from_slice(extra);
    browser.post("/portal/keys", &fields).await
}

/// The PKCS#1 `RSA PUBLIC KEY` PEM of a 2048-bit key: its SubjectPublicKeyInfo without the
/// 24-byte header that names the algorithm.
fn pkcs1_pem(key: &VerifyingKey) -> String {
    let spki = key.spki_der();
    assert_eq!((spki.len(), spki[24]), (294, 0x30), "a 2048-bit RSA SubjectPublicKeyInfo");
    let body = STANDARD.encode(&spki[24..]);
    let lines: Vec<&str> =
        body.as_bytes().chunks(64).map(|line| std::str::from_utf8(line).unwrap()).collect();
    format!("-----BEGIN RSA PUBLIC KEY-----\n{}\n-----END RSA PUBLIC KEY-----\n", lines.join("\n"))
}

async fn pay_result(app: &TestApp, merchant: &TestParticipant, key: &SigningKey, version: u32) -> String {
    let client = app.client_builder(&merchant.client_id, key.clone()).key_version(version).build().unwrap();
    client.pay(&pay_request(&unique_id("PORTAL"), "USD", 1_250)).await.unwrap().result.result_code
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_uploaded_in_every_form_sign_real_requests_and_a_revoked_one_stops_at_once() {
    let app = TestApp::spawn().await;
    let merchant = app.merchant().await;
    let client_id = ClientId::parse(&merchant.client_id).unwrap();
    user(&app, &merchant.client_id, "owner@shop.example", Role::Owner).await;
    let browser = Browser::signed_in(&app, "owner@shop.example").await;

    let page = browser.get("/portal/keys").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(
        page.body.contains("Active") && page.body.contains("not yet"),
        "key 1, not used yet: {}",
        page.body
    );
    assert!(page.body.contains("data-generate-key=\"public_key\""), "the browser can generate a pair");
    assert!(page.body.contains("Revoke version 1"));

    // The first key signs a payment: the page shows when, from the audit trail.
    assert_eq!(
        merchant.client.pay(&pay_request(&unique_id("K1"), "USD", 500)).await.unwrap().result.result_code,
        "SUCCESS"
    );
    audit_codes(&app, &client_id, "pay", 1).await;
    let minute = app.clock.now().strftime("%Y-%m-%d %H:%M UTC").to_string();
    let page = browser.get("/portal/keys").await;
    assert!(!page.body.contains("not yet"), "key 1 has been used: {}", page.body);
    assert!(page.body.contains(&minute), "{minute} in {}", page.body);

    // SubjectPublicKeyInfo PEM, bare base64 and PKCS#1 PEM are all taken.
    let keys: Vec<SigningKey> = (0..3).map(|_| SigningKey::generate().unwrap()).collect();
    let forms = [
        keys[0].verifying_key().to_pem(),
        keys[1].verifying_key().to_base64(),
        pkcs1_pem(&keys[2].verifying_key()),
    ];
    for (n, text) in forms.iter().enumerate() {
        let version = n as u32 + 2;
        let added = add_key(&browser, text, &ALL_SCOPES).await;
        assert_eq!(added.status, StatusCode::SEE_OTHER, "{}", added.body);
        assert_eq!(added.location.as_deref(), Some(format!("/portal/keys?added={version}").as_str()));
        assert_eq!(
            pay_result(&app, &merchant, &keys[n], version).await,
            "SUCCESS",
            "key version {version} signs"
        );
    }
    let page = browser.get("/portal/keys?added=4").await;
    assert!(page.body.contains("Key version 4 added"), "{}", page.body);

    // Revoked, the key is refused by the very next request; the others sign on.
    let csrf = page.csrf();
    let revoked = browser.post("/portal/keys/3/revoke", &[("csrf", &csrf)]).await;
    assert_eq!(
        (revoked.status, revoked.location.as_deref()),
        (StatusCode::SEE_OTHER, Some("/portal/keys?revoked=3"))
    );
    assert_eq!(pay_result(&app, &merchant, &keys[1], 3).await, "KEY_NOT_FOUND");
    assert_eq!(pay_result(&app, &merchant, &keys[2], 4).await, "SUCCESS");
    assert_eq!(
        merchant.client.pay(&pay_request(&unique_id("K1"), "USD", 500)).await.unwrap().result.result_code,
        "SUCCESS"
    );
    let page = browser.get("/portal/keys?revoked=3").await;
    assert!(page.body.contains("Key version 3 revoked") && page.body.contains("Revoked"), "{}", page.body);
    assert!(!page.body.contains("Revoke version 3"), "a revoked key offers no second revocation");

    assert_eq!(audit_codes(&app, &client_id, "portal.addKey", 3).await, ["SUCCESS"; 3]);
    assert_eq!(audit_codes(&app, &client_id, "portal.revokeKey", 1).await, ["SUCCESS"]);
    // The trail says who revoked which key.
    let events = app.state.store.audit_events(&client_id, 200).await.unwrap();
    let revoke = events.iter().find(|event| event.api == "portal.revokeKey").unwrap();
    assert!(
        revoke.idempotency_key.as_deref().is_some_and(|named| named.ends_with(" on key 3")),
        "{revoke:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_integrators_key_does_only_what_its_scopes_say_and_bad_fields_are_named() {
    let app = TestApp::spawn().await;
    let merchant = app.merchant().await;
    user(&app, &merchant.client_id, "dev@shop.example", Role::Developer).await;
    let browser = Browser::signed_in(&app, "dev@shop.example").await;
    let integrator = SigningKey::generate().unwrap();
    let public_key = integrator.verifying_key().to_pem();

    // Each refusal names its field and keeps what was typed.
    let refusals = [
        (
            "-----BEGIN PUBLIC KEY-----\nbm90IGEga2V5\n-----END PUBLIC KEY-----",
            "30",
            vec![("scope", "inquiry")],
            "public key:",
        ),
        (public_key.as_str(), "30", vec![], "scopes: tick at least one"),
        (public_key.as_str(), "0", vec![("scope", "inquiry")], "expires in (days):"),
        (public_key.as_str(), "ninety", vec![("scope", "inquiry")], "expires in (days):"),
        (public_key.as_str(), "30", vec![("scope", "everything")], "scopes:"),
    ];
    for (key, days, scopes, message) in refusals {
        let mut extra = vec![("label", "Integrator: Acme POS"), ("expires_in_days", days)];
        extra.extend(scopes);
        let refused = add_key(&browser, key, &extra).await;
        assert_eq!(refused.status, StatusCode::BAD_REQUEST, "{message}");
        assert!(refused.body.contains(message), "{message} in {}", refused.body);
        assert!(refused.body.contains("value=\"Integrator: Acme POS\""), "the label is kept");
    }
    let long_label = "x".repeat(257);
    let refused = add_key(&browser, &public_key, &[("label", &long_label), ("scope", "inquiry")]).await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST);
    assert!(refused.body.contains("label:"), "{}", refused.body);

    let added = add_key(
        &browser,
        &public_key,
        &[("label", "Integrator: Acme POS"), ("scope", "inquiry"), ("expires_in_days", "30")],
    )
    .await;
    assert_eq!(added.location.as_deref(), Some("/portal/keys?added=2"), "{}", added.body);
    let page = browser.get("/portal/keys").await;
    assert!(page.body.contains("Integrator: Acme POS") && page.body.contains(">inquiry<"), "{}", page.body);
    let expiry = (app.clock.now() + jiff::SignedDuration::from_hours(30 * 24))
        .strftime("%Y-%m-%d %H:%M UTC")
        .to_string();
    assert!(page.body.contains(&expiry), "expires in 30 days: {expiry}");

    // The integrator may inquire about the merchant's payment but not pay.
    let paid = merchant.client.pay(&pay_request(&unique_id("OWN"), "USD", 700)).await.unwrap();
    let client = app.client_builder(&merchant.client_id, integrator).key_version(2).build().unwrap();
    let denied = client.pay(&pay_request(&unique_id("SI"), "USD", 700)).await.unwrap();
    assert_eq!(denied.result.result_code, "ACCESS_DENIED", "{}", denied.result.result_message);
    let inquiry =
        InquiryPaymentRequest { payment_id: paid.payment_id.clone(), ..InquiryPaymentRequest::default() };
    assert_eq!(client.inquire_payment(&inquiry).await.unwrap().result.result_code, "SUCCESS");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn roles_csrf_and_other_participants_keys_guard_every_key_action() {
    let app = TestApp::spawn().await;
    let merchant = app.merchant().await;
    let other = app.merchant().await;
    let client_id = ClientId::parse(&merchant.client_id).unwrap();
    let other_id = ClientId::parse(&other.client_id).unwrap();
    for _ in 0..2 {
        let added = AddedKey {
            public_key: SigningKey::generate().unwrap().verifying_key(),
            label: None,
            scopes: Scopes::ALL,
            expires_at: None,
        };
        participants::add_key(&*app.state.store, app.clock.now(), &other_id, added).await.unwrap();
    }
    let new_key = SigningKey::generate().unwrap().verifying_key().to_pem();

    // Signed out, the page and its forms lead to the sign-in page.
    let stranger = Browser::new(&app);
    assert_eq!(stranger.get("/portal/keys").await.location.as_deref(), Some("/portal/login"));
    let answer = stranger.post("/portal/keys/1/revoke", &[("csrf", "x")]).await;
    assert_eq!(answer.location.as_deref(), Some("/portal/login"));

    for (email, role) in [
        ("owner@shop.example", Role::Owner),
        ("dev@shop.example", Role::Developer),
        ("viewer@shop.example", Role::Viewer),
    ] {
        user(&app, &merchant.client_id, email, role).await;
    }
    // A viewer sees the keys, no form, and is refused whatever it posts.
    let viewer = Browser::signed_in(&app, "viewer@shop.example").await;
    let page = viewer.get("/portal/keys").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(!page.body.contains("Add a key") && !page.body.contains("Revoke version"), "{}", page.body);
    let csrf = page.csrf();
    let refused =
        viewer.post("/portal/keys", &[("csrf", &csrf), ("public_key", &new_key), ("scope", "pay")]).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    assert_eq!(viewer.post("/portal/keys/1/revoke", &[("csrf", &csrf)]).await.status, StatusCode::FORBIDDEN);
    assert_eq!(audit_codes(&app, &client_id, "portal.revokeKey", 1).await, ["FORBIDDEN"]);

    // Without the session's token, or from another site, nothing changes.
    let owner = Browser::signed_in(&app, "owner@shop.example").await;
    let csrf = owner.get("/portal/keys").await.csrf();
    let forged =
        owner.post("/portal/keys", &[("csrf", "forged"), ("public_key", &new_key), ("scope", "pay")]).await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    let cross_site = [("origin", "https://evil.example"), ("sec-fetch-site", "cross-site")];
    let answer = owner.post_with("/portal/keys/1/revoke", &[("csrf", &csrf)], &cross_site).await;
    assert_eq!(answer.status, StatusCode::FORBIDDEN);
    let keys = app.state.store.participant_keys(&client_id).await.unwrap();
    assert_eq!(keys.len(), 1, "no key added");
    assert!(keys.iter().all(|key| key.revoked_at.is_none()), "none revoked");

    // Another participant's key version answers exactly as a missing one, and stays as it was.
    let theirs = owner.post("/portal/keys/3/revoke", &[("csrf", &csrf)]).await;
    let missing = owner.post("/portal/keys/99/revoke", &[("csrf", &csrf)]).await;
    let garbage = owner.post("/portal/keys/x/revoke", &[("csrf", &csrf)]).await;
    assert_eq!(theirs.status, StatusCode::NOT_FOUND);
    assert_eq!((theirs.status, &theirs.body), (missing.status, &missing.body));
    assert_eq!((theirs.status, &theirs.body), (garbage.status, &garbage.body));
    let their_keys = app.state.store.participant_keys(&other_id).await.unwrap();
    assert!(
        their_keys.iter().all(|key| key.revoked_at.is_none()),
        "the other participant's keys are untouched"
    );
    assert!(!owner.get("/portal/keys").await.body.contains(&other.client_id), "and never shown");

    // A developer adds and revokes.
    let developer = Browser::signed_in(&app, "dev@shop.example").await;
    let added = add_key(&developer, &new_key, &[("scope", "pay")]).await;
    assert_eq!(added.location.as_deref(), Some("/portal/keys?added=2"));
    let csrf = developer.get("/portal/keys").await.csrf();
    let revoked = developer.post("/portal/keys/2/revoke", &[("csrf", &csrf)]).await;
    assert_eq!(revoked.location.as_deref(), Some("/portal/keys?revoked=2"));
    assert_eq!(audit_codes(&app, &client_id, "portal.addKey", 2).await, ["FORBIDDEN", "SUCCESS"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn key_versions_are_paged_newest_first() {
    let app = TestApp::spawn_with(|config| config.portal_page_size = 2).await;
    let merchant = app.merchant().await;
    let client_id = ClientId::parse(&merchant.client_id).unwrap();
    for _ in 0..4 {
        let added = AddedKey {
            public_key: SigningKey::generate().unwrap().verifying_key(),
            label: None,
            scopes: Scopes::ALL,
            expires_at: None,
        };
        participants::add_key(&*app.state.store, app.clock.now(), &client_id, added).await.unwrap();
    }
    user(&app, &merchant.client_id, "viewer@shop.example", Role::Viewer).await;
    let browser = Browser::signed_in(&app, "viewer@shop.example").await;
    let versions = |body: &str| -> Vec<u32> {
        body.split("<td data-label=\"Version\" class=\"num\">")
            .skip(1)
            .map(|rest| rest[..rest.find('<').unwrap()].parse().unwrap())
            .collect()
    };
    let first = browser.get("/portal/keys").await.body;
    assert_eq!(versions(&first), [5, 4]);
    assert!(first.contains("href=\"/portal/keys?before=4\""), "{first}");
    let second = browser.get("/portal/keys?before=4").await.body;
    assert_eq!(versions(&second), [3, 2]);
    let last = browser.get("/portal/keys?before=2").await.body;
    assert_eq!(versions(&last), [1]);
    assert!(!last.contains("Older key versions"), "the last page links nowhere");
}
