//! Signing in and out, the lockout, TOTP, session expiry, CSRF, one-time links and sign-up.

use jiff::SignedDuration;
use ocpay_core::participant::{Environment, ParticipantKind};
use ocpay_core::portal::Role;
use ocpay_protocol::SigningKey;
use ocpay_server::clock::Clock as _;
use ocpay_testkit::TestApp;
use ocpay_web::auth::totp_now;
use reqwest::StatusCode;

use crate::browser::{Browser, PASSWORD, field_value, user};

const FAILED: &str = "The email, password or code is wrong";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_signs_in_sees_the_home_page_and_signs_out() {
    let app = TestApp::spawn().await;
    let merchant = app.merchant().await;
    user(&app, &merchant.client_id, "Dev@Shop.Example", Role::Developer).await;
    let browser = Browser::new(&app);

    // Signed out, `/` and every portal page lead to the sign-in page.
    assert_eq!(browser.get("/").await.location.as_deref(), Some("/portal/"));
    assert_eq!(browser.get("/portal/").await.location.as_deref(), Some("/portal/login"));

    // An unknown email and a wrong password get the same answer.
    let unknown = browser.sign_in("nobody@shop.example", PASSWORD, "").await;
    let wrong = browser.sign_in("dev@shop.example", "not the password at all", "").await;
    for answer in [&unknown, &wrong] {
        assert_eq!(answer.status, StatusCode::UNAUTHORIZED);
        assert!(answer.body.contains(FAILED), "{}", answer.body);
        assert!(answer.set_cookies.iter().all(|cookie| !cookie.starts_with("ocpay_portal=")));
    }

    // The email is taken in any letter case.
    let answer = browser.sign_in("DEV@shop.example", PASSWORD, "").await;
    assert_eq!(answer.status, StatusCode::SEE_OTHER);
    assert_eq!(answer.location.as_deref(), Some("/portal/"));
    let session =
        answer.set_cookies.iter().find(|cookie| cookie.starts_with("ocpay_portal=")).expect("a session");
    for attribute in ["HttpOnly", "SameSite=Strict", "Path=/portal"] {
        assert!(session.contains(attribute), "{session} has {attribute}");
    }
    assert!(!session.contains("Secure"), "the test server is plain http");
    let home = browser.get("/portal/").await;
    assert_eq!(home.status, StatusCode::OK);
    assert!(home.body.contains(&merchant.client_id), "the home page shows the client id");
    assert!(home.body.contains("BEGIN PUBLIC KEY"), "and the platform key");
    let csp = home.headers.get("content-security-policy").unwrap().to_str().unwrap();
    assert!(csp.contains("default-src 'self'") && csp.contains("frame-ancestors 'none'"), "{csp}");
    assert!(!csp.contains("unsafe-inline"));
    assert_eq!(home.headers.get("cache-control").unwrap(), "no-store");
    assert_eq!(home.headers.get("referrer-policy").unwrap(), "same-origin");

    // The platform key downloads as PEM.
    let key = browser.get("/portal/platform-key-1.pem").await;
    assert_eq!(key.status, StatusCode::OK);
    assert!(key.body.starts_with("-----BEGIN PUBLIC KEY-----"));

    let out = browser.post("/portal/logout", &[("csrf", &home.csrf())]).await;
    assert_eq!(out.location.as_deref(), Some("/portal/login"));
    assert_eq!(browser.get("/portal/").await.location.as_deref(), Some("/portal/login"), "signed out");

    // Both sign-ins are in the participant's audit trail (written by the audit writer, which
    // batches for a moment).
    let client_id = ocpay_core::ids::ClientId::parse(&merchant.client_id).unwrap();
    let mut sign_ins = Vec::new();
    for _ in 0..200 {
        let events = app.state.store.audit_events(&client_id, 50).await.unwrap();
        sign_ins = events
            .iter()
            .filter(|event| event.api == "portal.signIn")
            .map(|event| event.result_code.clone())
            .collect::<Vec<_>>();
        if sign_ins.len() == 2 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    // In any order: the success is written before the page answers, the refusal queued.
    sign_ins.sort();
    assert_eq!(sign_ins, ["PASSWORD_WRONG", "SUCCESS"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_sign_ins_lock_the_user_until_the_lockout_ends() {
    let app = TestApp::spawn().await;
    let merchant = app.merchant().await;
    user(&app, &merchant.client_id, "dev@shop.example", Role::Developer).await;
    let browser = Browser::new(&app);
    for _ in 0..5 {
        assert_eq!(
            browser.sign_in("dev@shop.example", "wrong password!", "").await.status,
            StatusCode::UNAUTHORIZED
        );
    }
    let locked = browser.sign_in("dev@shop.example", PASSWORD, "").await;
    assert_eq!(locked.status, StatusCode::UNAUTHORIZED, "locked: the right password is refused");
    assert!(locked.body.contains(FAILED), "with the same answer");
    app.clock.advance(SignedDuration::from_secs(901));
    assert_eq!(browser.sign_in("dev@shop.example", PASSWORD, "").await.location.as_deref(), Some("/portal/"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn totp_is_turned_on_with_a_code_and_each_code_signs_in_once() {
    let app = TestApp::spawn().await;
    let merchant = app.merchant().await;
    user(&app, &merchant.client_id, "dev@shop.example", Role::Developer).await;
    let browser = Browser::signed_in(&app, "dev@shop.example").await;
    let page = browser.get("/portal/account/totp").await;
    let secret = field_value(&page.body, "secret").expect("a new key");
    let csrf = page.csrf();
    let code_now = totp_now(&secret, app.clock.now()).unwrap();
    let stolen = browser
        .post(
            "/portal/account/totp",
            &[
                ("csrf", &csrf),
                ("action", "enable"),
                ("secret", &secret),
                ("code", &code_now),
                ("password", "guess"),
            ],
        )
        .await;
    assert!(stolen.body.contains("not your password"), "a session alone cannot turn it on: {}", stolen.body);
    let wrong = browser
        .post(
            "/portal/account/totp",
            &[
                ("csrf", &csrf),
                ("action", "enable"),
                ("secret", &secret),
                ("code", "000000"),
                ("password", PASSWORD),
            ],
        )
        .await;
    assert!(wrong.body.contains("does not match"), "{}", wrong.body);
    let code = totp_now(&secret, app.clock.now()).unwrap();
    let on = browser
        .post(
            "/portal/account/totp",
            &[
                ("csrf", &csrf),
                ("action", "enable"),
                ("secret", &secret),
                ("code", &code),
                ("password", PASSWORD),
            ],
        )
        .await;
    assert_eq!(on.status, StatusCode::SEE_OTHER);
    assert!(browser.get("/portal/account/totp").await.body.contains("is <strong>on</strong>"));

    let other = Browser::new(&app);
    assert_eq!(
        other.sign_in("dev@shop.example", PASSWORD, "").await.status,
        StatusCode::UNAUTHORIZED,
        "no code"
    );
    assert_eq!(
        other.sign_in("dev@shop.example", PASSWORD, "123456").await.status,
        StatusCode::UNAUTHORIZED,
        "a wrong code"
    );
    app.clock.advance(SignedDuration::from_secs(30));
    let code = totp_now(&secret, app.clock.now()).unwrap();
    assert_eq!(
        other.sign_in("dev@shop.example", PASSWORD, &code).await.location.as_deref(),
        Some("/portal/")
    );
    let third = Browser::new(&app);
    assert_eq!(
        third.sign_in("dev@shop.example", PASSWORD, &code).await.status,
        StatusCode::UNAUTHORIZED,
        "the same code works once"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_owner_of_a_live_participant_sets_up_totp_before_anything_else() {
    let app = TestApp::spawn().await;
    let live = app.participant(ParticipantKind::Merchant, Environment::Live, None).await;
    user(&app, &live.client_id, "owner@shop.example", Role::Owner).await;
    let browser = Browser::signed_in(&app, "owner@shop.example").await;
    assert_eq!(browser.get("/portal/").await.location.as_deref(), Some("/portal/account/totp"));
    let page = browser.get("/portal/account/totp").await;
    assert!(page.body.contains("must turn on two-factor"), "{}", page.body);
    let secret = field_value(&page.body, "secret").unwrap();
    let code = totp_now(&secret, app.clock.now()).unwrap();
    browser
        .post(
            "/portal/account/totp",
            &[
                ("csrf", &page.csrf()),
                ("action", "enable"),
                ("secret", &secret),
                ("code", &code),
                ("password", PASSWORD),
            ],
        )
        .await;
    assert_eq!(browser.get("/portal/").await.status, StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_end_when_idle_or_old() {
    let app = TestApp::spawn().await;
    let merchant = app.merchant().await;
    user(&app, &merchant.client_id, "dev@shop.example", Role::Developer).await;
    let idle = Browser::signed_in(&app, "dev@shop.example").await;
    let busy = Browser::signed_in(&app, "dev@shop.example").await;
    // Used every 20 minutes, a session outlives the 30-minute idle limit, up to 12 hours.
    for _ in 0..35 {
        app.clock.advance(SignedDuration::from_mins(20));
        assert_eq!(busy.get("/portal/").await.status, StatusCode::OK);
    }
    assert_eq!(idle.get("/portal/").await.location.as_deref(), Some("/portal/login"), "idle");
    app.clock.advance(SignedDuration::from_mins(20));
    assert_eq!(busy.get("/portal/").await.location.as_deref(), Some("/portal/login"), "12 hours old");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forms_without_the_token_or_from_another_site_change_nothing() {
    let app = TestApp::spawn().await;
    let merchant = app.merchant().await;
    user(&app, &merchant.client_id, "dev@shop.example", Role::Developer).await;
    let browser = Browser::signed_in(&app, "dev@shop.example").await;
    let csrf = browser.get("/portal/").await.csrf();
    assert_eq!(browser.post("/portal/logout", &[("csrf", "forged")]).await.status, StatusCode::FORBIDDEN);
    let cross_site = [("origin", "https://evil.example"), ("sec-fetch-site", "cross-site")];
    assert_eq!(
        browser.post_with("/portal/logout", &[("csrf", &csrf)], &cross_site).await.status,
        StatusCode::FORBIDDEN
    );
    let other_origin = [("origin", "https://evil.example")];
    assert_eq!(
        browser.post_with("/portal/logout", &[("csrf", &csrf)], &other_origin).await.status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(browser.get("/portal/").await.status, StatusCode::OK, "still signed in");

    // The sign-in form's token comes with its cookie: a form posted from elsewhere is refused.
    let stranger = Browser::new(&app);
    let answer = stranger
        .post("/portal/login", &[("csrf", "made-up"), ("email", "dev@shop.example"), ("password", PASSWORD)])
        .await;
    assert_eq!(answer.status, StatusCode::FORBIDDEN);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_one_time_link_sets_the_password_once() {
    let app = TestApp::spawn().await;
    let merchant = app.merchant().await;
    let settings = &app.state.settings.portal;
    let client_id = ocpay_core::ids::ClientId::parse(&merchant.client_id).unwrap();
    let passwords = crate::browser::passwords(&app);
    let store = &*app.state.store;
    let created = ocpay_web::users::create(
        store,
        &passwords,
        settings,
        app.clock.now(),
        ocpay_web::users::NewUser {
            client_id: &client_id,
            email: "new@shop.example",
            role: Role::Viewer,
            password: None,
        },
    )
    .await
    .unwrap();
    let token = created.setup_token.expect("a link");
    let browser = Browser::new(&app);
    assert_eq!(browser.sign_in("new@shop.example", "", "").await.status, StatusCode::UNAUTHORIZED);
    let form = browser.get(&format!("/portal/setup?token={token}")).await;
    let short = browser
        .post("/portal/setup", &[("csrf", &form.csrf()), ("token", &token), ("password", "short")])
        .await;
    assert_eq!(short.status, StatusCode::BAD_REQUEST);
    assert!(short.body.contains("at least 12 characters"));
    let set = browser
        .post("/portal/setup", &[("csrf", &short.csrf()), ("token", &token), ("password", PASSWORD)])
        .await;
    assert_eq!(set.status, StatusCode::OK, "{}", set.body);
    let again = browser.get(&format!("/portal/setup?token={token}")).await;
    let reused = browser
        .post("/portal/setup", &[("csrf", &again.csrf()), ("token", &token), ("password", PASSWORD)])
        .await;
    assert!(reused.body.contains("link is not valid"), "a link works once");
    Browser::signed_in(&app, "new@shop.example").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_up_gives_a_sandbox_merchant_only_where_allowed() {
    let closed = TestApp::spawn().await;
    assert_eq!(Browser::new(&closed).get("/portal/signup").await.status, StatusCode::NOT_FOUND);

    let app = TestApp::spawn_with(|config| config.portal_signup = "sandbox".into()).await;
    let browser = Browser::new(&app);
    let form = browser.get("/portal/signup").await;
    let key = SigningKey::generate().unwrap().verifying_key().to_pem();
    let fields = |csrf: &str, name: &str| {
        vec![
            ("csrf".to_owned(), csrf.to_owned()),
            ("email".to_owned(), "founder@new.example".to_owned()),
            ("password".to_owned(), PASSWORD.to_owned()),
            ("name".to_owned(), name.to_owned()),
            ("public_key".to_owned(), key.clone()),
        ]
    };
    let post = |fields: Vec<(String, String)>| {
        let browser = &browser;
        async move {
            let borrowed: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            browser.post("/portal/signup", &borrowed).await
        }
    };
    let refused = post(fields(&form.csrf(), "")).await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST);
    assert!(refused.body.contains("merchant name"), "{}", refused.body);
    assert!(refused.body.contains("founder@new.example"), "the form keeps what was typed");
    let made = post(fields(&refused.csrf(), "New Shop")).await;
    assert_eq!(made.status, StatusCode::OK, "{}", made.body);
    assert!(made.body.contains("SANDBOX_"), "{}", made.body);
    let home = Browser::signed_in(&app, "founder@new.example").await.get("/portal/").await;
    assert!(home.body.contains("New Shop") && home.body.contains("sandbox"));
    let users = app.state.store.portal_users(None).await.unwrap();
    assert_eq!((users.len(), users[0].role), (1, Role::Owner));
}
