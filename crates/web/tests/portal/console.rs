//! The operator's console, driven over HTTP as a browser would: operators sign in and must
//! turn on TOTP first; they create, change, suspend and resume participants (a suspended
//! participant's API requests answer ACCESS_DENIED through the Rust SDK), review registrations
//! and search the audit trail across participants; every action is in the audit trail of the
//! participant concerned with the operator who did it.

use jiff::SignedDuration;
use ocpay_core::ids::ClientId;
use ocpay_protocol::SigningKey;
use ocpay_server::clock::Clock as _;
use ocpay_testkit::{TestApp, TestParticipant, pay_request, registration_request, unique_id};
use ocpay_web::auth::totp_now;
use reqwest::StatusCode;

use crate::browser::{Browser, PASSWORD, Page, audit_codes, field_value, passwords};

/// Creates an operator with [`PASSWORD`] and no second factor yet.
pub(crate) async fn operator(app: &TestApp, email: &str) {
    let settings = &app.state.settings.portal;
    ocpay_web::users::create_operator(
        &*app.state.store,
        &passwords(app),
        settings,
        app.clock.now(),
        email,
        Some(PASSWORD),
    )
    .await
    .expect("create an operator");
}

/// Signs in at the console's form; the answer to its POST.
pub(crate) async fn console_sign_in(browser: &Browser, email: &str, password: &str, totp: &str) -> Page {
    let form = browser.get("/console/login").await;
    assert_eq!(form.status, StatusCode::OK, "{}", form.body);
    let csrf = form.csrf();
    browser
        .post("/console/login", &[("csrf", &csrf), ("email", email), ("password", password), ("totp", totp)])
        .await
}

/// Turns on the second factor of the signed-in operator and returns its key.
pub(crate) async fn enable_totp(app: &TestApp, browser: &Browser) -> String {
    let page = browser.get("/console/account/totp").await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    let secret = field_value(&page.body, "secret").expect("the key is in the form");
    let code = totp_now(&secret, app.clock.now()).unwrap();
    let answer = browser
        .post(
            "/console/account/totp",
            &[
                ("csrf", &page.csrf()),
                ("action", "enable"),
                ("secret", &secret),
                ("code", &code),
                ("password", PASSWORD),
            ],
        )
        .await;
    assert_eq!(answer.location.as_deref(), Some("/console/"), "{}", answer.body);
    secret
}

/// An operator with TOTP on, signed in (the code's step is then spent: the clock moves on).
pub(crate) async fn signed_in_operator(app: &TestApp, email: &str) -> Browser {
    operator(app, email).await;
    let browser = Browser::new(app);
    let answer = console_sign_in(&browser, email, PASSWORD, "").await;
    assert_eq!(answer.location.as_deref(), Some("/console/"), "{}", answer.body);
    enable_totp(app, &browser).await;
    browser
}

/// The CSRF token of a console page.
async fn csrf_of(browser: &Browser, path: &str) -> String {
    let page = browser.get(path).await;
    assert_eq!(page.status, StatusCode::OK, "{path}: {}", page.body);
    page.csrf()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_turns_on_totp_before_anything_else_and_signs_in_with_it() {
    let app = TestApp::spawn().await;
    operator(&app, "Ops@Platform.Example").await;
    let browser = Browser::new(&app);

    let answer = console_sign_in(&browser, "ops@platform.example", PASSWORD, "").await;
    assert_eq!(answer.location.as_deref(), Some("/console/"));
    let session = answer.set_cookies.iter().find(|c| c.starts_with("ocpay_console=")).expect("a session");
    for attribute in ["HttpOnly", "SameSite=Strict", "Path=/console"] {
        assert!(session.contains(attribute), "{session} has {attribute}");
    }
    // Without TOTP every page leads to its setup, which says why.
    for path in ["/console/", "/console/participants", "/console/registrations", "/console/audit"] {
        assert_eq!(browser.get(path).await.location.as_deref(), Some("/console/account/totp"), "{path}");
    }
    let setup = browser.get("/console/account/totp").await;
    assert!(setup.body.contains("Operators must turn on two-factor sign-in"), "{}", setup.body);
    assert!(setup.body.contains("operator's console"));
    let secret = enable_totp(&app, &browser).await;
    let home = browser.get("/console/").await;
    assert_eq!(home.status, StatusCode::OK);
    assert!(home.body.contains("Registrations to review"));
    let setup = browser.get("/console/account/totp").await;
    assert!(!setup.body.contains("Turn off"), "operators cannot turn it off");
    let off = browser
        .post(
            "/console/account/totp",
            &[
                ("csrf", &setup.csrf()),
                ("action", "disable"),
                ("code", &totp_now(&secret, app.clock.now()).unwrap()),
            ],
        )
        .await;
    assert_eq!(off.status, StatusCode::BAD_REQUEST, "nor by hand");

    let out = browser.post("/console/logout", &[("csrf", &home.csrf())]).await;
    assert_eq!(out.location.as_deref(), Some("/console/login"));
    assert_eq!(browser.get("/console/").await.location.as_deref(), Some("/console/login"));

    // From now on the code is asked, and each code works once.
    app.clock.advance(SignedDuration::from_secs(30));
    let without = console_sign_in(&browser, "ops@platform.example", PASSWORD, "").await;
    assert_eq!(without.status, StatusCode::UNAUTHORIZED);
    let code = totp_now(&secret, app.clock.now()).unwrap();
    let with = console_sign_in(&browser, "ops@platform.example", PASSWORD, &code).await;
    assert_eq!(with.location.as_deref(), Some("/console/"), "{}", with.body);
    let again = Browser::new(&app);
    let reused = console_sign_in(&again, "ops@platform.example", PASSWORD, &code).await;
    assert_eq!(reused.status, StatusCode::UNAUTHORIZED, "a code signs in once");
    // Operators belong to no participant: their sign-ins have an audit trail of their own.
    let trail = ClientId::parse("operators").unwrap();
    let codes = audit_codes(&app, &trail, "console.signIn", 3).await;
    assert!(codes.contains(&"SUCCESS".to_owned()) && codes.len() >= 3, "{codes:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_operator_sign_ins_lock_the_operator_out() {
    let app = TestApp::spawn().await;
    operator(&app, "ops@platform.example").await;
    let browser = Browser::new(&app);
    let failures = app.state.settings.portal.sign_in_failures_max;
    for _ in 0..failures {
        let answer = console_sign_in(&browser, "ops@platform.example", "not the password at all", "").await;
        assert_eq!(answer.status, StatusCode::UNAUTHORIZED);
    }
    let locked = console_sign_in(&browser, "ops@platform.example", PASSWORD, "").await;
    assert_eq!(locked.status, StatusCode::UNAUTHORIZED, "locked, even with the password");
    let found = app.state.store.operator_by_email("ops@platform.example").await.unwrap().unwrap();
    assert!(found.locked_until.is_some(), "the lockout is in the store");
    app.clock.advance(SignedDuration::from_secs(24 * 3600));
    let after = console_sign_in(&browser, "ops@platform.example", PASSWORD, "").await;
    assert_eq!(after.location.as_deref(), Some("/console/"), "the lockout ends");
}

/// Whether the SDK's `pay` of `merchant` is answered `ACCESS_DENIED` for the suspension.
async fn pay_code(merchant: &TestParticipant) -> (String, String) {
    let answer = merchant.client.pay(&pay_request(&unique_id("PAY"), "USD", 1_000)).await.expect("pay");
    (answer.result.result_code.clone(), answer.result.result_message.clone())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_suspends_a_participant_whose_requests_are_then_denied_until_resumed() {
    let app = TestApp::spawn().await;
    let merchant = app.merchant().await;
    let browser = signed_in_operator(&app, "ops@platform.example").await;
    assert_eq!(pay_code(&merchant).await.0, "SUCCESS");

    let path = format!("/console/participants/{}", merchant.client_id);
    let csrf = csrf_of(&browser, &path).await;
    let suspended = browser.post(&format!("{path}/suspend"), &[("csrf", &csrf)]).await;
    assert_eq!(suspended.location.as_deref(), Some(format!("{path}?done=suspended").as_str()));
    let page = browser.get(&path).await;
    assert!(page.body.contains("Suspended since"), "{}", page.body);

    let (code, message) = pay_code(&merchant).await;
    assert_eq!(code, "ACCESS_DENIED");
    assert!(message.contains("the participant is suspended"), "{message}");
    let listed = browser.get("/console/participants?status=suspended").await;
    assert!(listed.body.contains(&merchant.client_id));

    // Its developer-center users may read, and change nothing.
    crate::browser::user(&app, &merchant.client_id, "dev@shop.example", ocpay_core::portal::Role::Owner)
        .await;
    let developer = Browser::signed_in(&app, "dev@shop.example").await;
    let read = developer.get("/portal/payments").await;
    assert_eq!(read.status, StatusCode::OK);
    assert!(read.body.contains("suspended this participant"), "the pages say why: {}", read.body);
    let settings = developer.get("/portal/settings").await;
    let change = developer
        .post("/portal/settings/notify-url", &[("csrf", &settings.csrf()), ("notify_url", "")])
        .await;
    assert_eq!(change.status, StatusCode::FORBIDDEN, "{}", change.body);
    assert!(change.body.contains("suspended this participant"), "{}", change.body);

    let csrf = csrf_of(&browser, &path).await;
    let resumed = browser.post(&format!("{path}/resume"), &[("csrf", &csrf)]).await;
    assert_eq!(resumed.location.as_deref(), Some(format!("{path}?done=resumed").as_str()));
    assert_eq!(pay_code(&merchant).await.0, "SUCCESS", "resumed at once");

    let client_id = ClientId::parse(&merchant.client_id).unwrap();
    assert_eq!(audit_codes(&app, &client_id, "console.resume", 1).await, ["SUCCESS"]);
    assert_eq!(audit_codes(&app, &client_id, "console.suspend", 1).await, ["SUCCESS"]);
    let denied = audit_codes(&app, &client_id, "pay", 3).await;
    assert_eq!(denied, ["ACCESS_DENIED", "SUCCESS", "SUCCESS"], "the refused request is audited too");
    let events = app.state.store.audit_events(&client_id, 50).await.unwrap();
    let suspend = events.iter().find(|event| event.api == "console.suspend").unwrap();
    assert_eq!(
        suspend.idempotency_key.as_deref(),
        Some(format!("operator ops@platform.example on participant {}", merchant.client_id).as_str()),
        "who did it, to what"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_creates_and_changes_a_participant() {
    let app = TestApp::spawn().await;
    let browser = signed_in_operator(&app, "ops@platform.example").await;
    let csrf = csrf_of(&browser, "/console/participants/new").await;
    let key = SigningKey::generate().unwrap().verifying_key().to_pem();
    let fields = |name: &'static str, key: &str| {
        vec![
            ("csrf", csrf.clone()),
            ("kind", "ACQUIRER".to_owned()),
            ("environment", "SANDBOX".to_owned()),
            ("name", name.to_owned()),
            ("notify_url", String::new()),
            ("public_key", key.to_owned()),
        ]
    };
    let post = |fields: Vec<(&'static str, String)>| {
        let browser = &browser;
        async move {
            let pairs: Vec<(&str, &str)> =
                fields.iter().map(|(name, value)| (*name, value.as_str())).collect();
            browser.post("/console/participants", &pairs).await
        }
    };
    let refused = post(fields("Acme Acquiring", "not a key")).await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST);
    assert!(refused.body.contains("public key:"), "{}", refused.body);
    let mut chosen = fields("Acme Live", &key);
    chosen.push(("client_id", "SANDBOX_ACME_MIGRATED".to_owned()));
    chosen[2].1 = "LIVE".to_owned();
    let mismatch = post(chosen.clone()).await;
    assert_eq!(mismatch.status, StatusCode::BAD_REQUEST);
    assert!(mismatch.body.contains("client id: a live participant"), "{}", mismatch.body);
    chosen[2].1 = "SANDBOX".to_owned();
    let kept = post(chosen.clone()).await;
    assert_eq!(kept.location.as_deref(), Some("/console/participants/SANDBOX_ACME_MIGRATED?done=created"));
    let taken = post(chosen).await;
    assert!(taken.body.contains("client id: another participant has it"), "{}", taken.body);
    let mut reserved = fields("Payers Ltd", &key);
    reserved.push(("client_id", "PAYERS".to_owned()));
    reserved[2].1 = "LIVE".to_owned();
    let trail = post(reserved).await;
    assert_eq!(trail.status, StatusCode::BAD_REQUEST);
    assert!(trail.body.contains("names an audit trail of the platform"), "{}", trail.body);
    let created = post(fields("Acme Acquiring", &key)).await;
    let location = created.location.expect("created");
    assert!(location.starts_with("/console/participants/SANDBOX_"), "{location}");
    let path = location.split('?').next().unwrap().to_owned();
    let client_id = ClientId::parse(path.rsplit('/').next().unwrap()).unwrap();
    let stored = app.state.store.participant(&client_id).await.unwrap().expect("stored");
    assert_eq!(stored.name.as_str(), "Acme Acquiring");
    assert_eq!(stored.kind.as_str(), "ACQUIRER");

    let csrf = csrf_of(&browser, &path).await;
    let updated = browser
        .post(
            &path,
            &[("csrf", &csrf), ("name", "Acme Acquiring Ltd"), ("notify_url", "https://acme.example/notify")],
        )
        .await;
    assert_eq!(updated.status, StatusCode::SEE_OTHER, "{}", updated.body);
    let stored = app.state.store.participant(&client_id).await.unwrap().unwrap();
    assert_eq!(stored.name.as_str(), "Acme Acquiring Ltd");
    assert_eq!(stored.notify_url.as_deref(), Some("https://acme.example/notify"));
    let bad = browser
        .post(&path, &[("csrf", &csrf), ("name", "Acme"), ("notify_url", "http://169.254.169.254/")])
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert!(bad.body.contains("notify URL"), "{}", bad.body);

    let fees = browser
        .post(
            &format!("{path}/fees"),
            &[
                ("csrf", &csrf),
                ("rate_bps", "250"),
                ("tax_rate_bps", "900"),
                ("fixed_currency", "usd"),
                ("fixed_amount", "0.30"),
                ("settlement_currency", "SGD"),
            ],
        )
        .await;
    assert_eq!(fees.status, StatusCode::SEE_OTHER, "{}", fees.body);
    let terms = app.state.store.settlement_terms(&client_id).await.unwrap().unwrap();
    let schedule = terms.fees.expect("its own fees");
    assert_eq!((schedule.rate_bps, schedule.tax_rate_bps), (250, 900));
    assert_eq!(schedule.fixed.values().copied().collect::<Vec<_>>(), [30]);
    assert_eq!(terms.settlement_currency.map(|currency| currency.code()), Some("SGD"));
    let bad = browser
        .post(&format!("{path}/fees"), &[("csrf", &csrf), ("rate_bps", "10001"), ("tax_rate_bps", "0")])
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST, "{}", bad.body);

    for api in ["console.createParticipant", "console.updateParticipant", "console.setFees"] {
        assert_eq!(audit_codes(&app, &client_id, api, 1).await, ["SUCCESS"], "{api}");
    }
    let listed = browser.get("/console/participants?kind=ACQUIRER&q=acme").await;
    assert!(listed.body.contains(client_id.as_str()), "{}", listed.body);
    let wrong = browser.get("/console/participants?kind=BANK").await;
    assert_eq!(wrong.status, StatusCode::BAD_REQUEST);
    assert!(wrong.body.contains("kind: must be one of"), "{}", wrong.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_approves_and_rejects_registrations_from_the_queue() {
    let app = TestApp::spawn().await;
    let acquirer = app.acquirer().await;
    let mut request_ids = Vec::new();
    for store in ["S-1", "S-2"] {
        let request_id = unique_id("REG");
        let answer = acquirer
            .client
            .register(&registration_request(&request_id, "M-1", store))
            .await
            .expect("register");
        assert!(answer.result.is_success(), "{answer:?}");
        request_ids.push(request_id);
    }
    let browser = signed_in_operator(&app, "ops@platform.example").await;
    let home = browser.get("/console/").await;
    assert!(home.body.contains(">2</a>"), "two to review: {}", home.body);
    let queue = browser.get("/console/registrations").await;
    for request_id in &request_ids {
        assert!(queue.body.contains(request_id.as_str()), "{}", queue.body);
    }
    let owner = ClientId::parse(&acquirer.client_id).unwrap();
    let find = |request_id: String| {
        let app = &app;
        let owner = owner.clone();
        async move {
            let found = app.state.store.registrations(Some(&owner), Some(&request_id), 1).await.unwrap();
            found.into_iter().next().expect("the registration")
        }
    };
    let first = find(request_ids[0].clone()).await;
    let second = find(request_ids[1].clone()).await;
    let csrf = queue.csrf();
    let approved =
        browser.post(&format!("/console/registrations/{}/approve", first.terms.id), &[("csrf", &csrf)]).await;
    assert_eq!(approved.location.as_deref(), Some("/console/registrations?done=approved"));
    let no_reason =
        browser.post(&format!("/console/registrations/{}/reject", second.terms.id), &[("csrf", &csrf)]).await;
    assert_eq!(no_reason.status, StatusCode::BAD_REQUEST, "a rejection needs a reason");
    let rejected = browser
        .post(
            &format!("/console/registrations/{}/reject", second.terms.id),
            &[("csrf", &csrf), ("reason", "The store's address is incomplete")],
        )
        .await;
    assert_eq!(rejected.location.as_deref(), Some("/console/registrations?done=rejected"));
    let twice = browser
        .post(&format!("/console/registrations/{}/approve", second.terms.id), &[("csrf", &csrf)])
        .await;
    assert_eq!(twice.status, StatusCode::BAD_REQUEST, "a decision is final");
    assert!(twice.body.contains("REJECTED already"), "{}", twice.body);

    assert_eq!(find(request_ids[0].clone()).await.state.status(), "APPROVED");
    assert_eq!(find(request_ids[1].clone()).await.state.status(), "REJECTED");
    let empty = browser.get("/console/registrations").await;
    assert!(empty.body.contains("Nothing to review."), "{}", empty.body);
    let decided = browser.get("/console/registrations?status=ALL").await;
    assert!(decided.body.contains("address is incomplete"), "the reason shows: {}", decided.body);
    assert_eq!(audit_codes(&app, &owner, "console.approveRegistration", 1).await, ["SUCCESS"]);
    assert_eq!(audit_codes(&app, &owner, "console.rejectRegistration", 1).await, ["SUCCESS"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_audit_search_finds_across_participants_newest_first() {
    let app = TestApp::spawn().await;
    let alice = app.merchant().await;
    let bob = app.merchant().await;
    assert_eq!(pay_code(&alice).await.0, "SUCCESS");
    assert_eq!(pay_code(&bob).await.0, "SUCCESS");
    let browser = signed_in_operator(&app, "ops@platform.example").await;
    let bob_id = ClientId::parse(&bob.client_id).unwrap();
    audit_codes(&app, &bob_id, "pay", 1).await;

    let all = browser.get("/console/audit?api=pay").await;
    assert_eq!(all.status, StatusCode::OK);
    let (at_alice, at_bob) =
        (all.body.find(&alice.client_id).unwrap(), all.body.find(&bob.client_id).unwrap());
    assert!(at_bob < at_alice, "newest first");
    let of_bob =
        browser.get(&format!("/console/audit?client_id={}&result_code=success", bob.client_id)).await;
    assert!(
        of_bob.body.contains(&bob.client_id) && !of_bob.body.contains(&alice.client_id),
        "{}",
        of_bob.body
    );
    let none = browser.get("/console/audit?api=pay&from=2000-01-01&to=2000-01-02").await;
    assert!(none.body.contains("No events match."));
    let wrong = browser.get("/console/audit?from=yesterday").await;
    assert_eq!(wrong.status, StatusCode::BAD_REQUEST);
    assert!(wrong.body.contains("from"), "{}", wrong.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operators_session_ends_when_idle_and_a_disabled_operator_is_signed_out() {
    let app = TestApp::spawn().await;
    let browser = signed_in_operator(&app, "ops@platform.example").await;
    let idle = app.state.settings.portal.session.idle_ms;
    app.clock.advance(SignedDuration::from_millis(idle - 1_000));
    assert_eq!(browser.get("/console/").await.status, StatusCode::OK, "still within the idle time");
    app.clock.advance(SignedDuration::from_millis(idle));
    assert_eq!(browser.get("/console/").await.location.as_deref(), Some("/console/login"), "idle too long");

    let other = signed_in_operator(&app, "second@platform.example").await;
    assert_eq!(other.get("/console/participants").await.status, StatusCode::OK);
    let disabled =
        ocpay_web::users::disable_operator(&*app.state.store, app.clock.now(), "second@platform.example")
            .await;
    assert!(disabled.unwrap().disabled_at.is_some());
    assert_eq!(other.get("/console/participants").await.location.as_deref(), Some("/console/login"));
    let again = console_sign_in(&Browser::new(&app), "second@platform.example", PASSWORD, "").await;
    assert_eq!(again.status, StatusCode::UNAUTHORIZED, "a disabled operator cannot sign in");
}
