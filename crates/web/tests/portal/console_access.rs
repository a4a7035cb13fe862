//! Operators and participants' users cannot reach each other's pages, probed as an attacker
//! would: every console route signed out and without TOTP, a developer-center session cookie
//! sent to the console (by its own name and forged under the console's), a console cookie sent
//! to the developer center, forms without the CSRF token or from another site, and each
//! realm's credentials at the other's sign-in.

use ocpay_core::portal::Role;
use ocpay_testkit::TestApp;
use reqwest::StatusCode;

use crate::browser::{Browser, PASSWORD, user};
use crate::console::{console_sign_in, operator, signed_in_operator};

/// Every console page (GET) and action (POST), with a participant's client id where one is named.
fn routes(client_id: &str) -> Vec<(&'static str, String)> {
    let participant = format!("/console/participants/{client_id}");
    vec![
        ("GET", "/console/".into()),
        ("GET", "/console/participants".into()),
        ("GET", "/console/participants/new".into()),
        ("POST", "/console/participants".into()),
        ("GET", participant.clone()),
        ("POST", participant.clone()),
        ("POST", format!("{participant}/fees")),
        ("POST", format!("{participant}/suspend")),
        ("POST", format!("{participant}/resume")),
        ("GET", "/console/registrations".into()),
        ("POST", "/console/registrations/R1/approve".into()),
        ("POST", "/console/registrations/R1/reject".into()),
        ("GET", "/console/audit".into()),
    ]
}

/// A plain client that keeps no cookies and follows no redirects: it sends exactly the
/// `Cookie` header it is given.
fn raw() -> reqwest::Client {
    reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap()
}

async fn send(app: &TestApp, method: &str, path: &str, cookie: Option<&str>) -> (StatusCode, Option<String>) {
    let url = format!("{}{path}", app.base_url);
    let mut request = match method {
        "GET" => raw().get(url),
        _ => raw().post(url).form(&[("csrf", "x")]).header("origin", &app.base_url),
    };
    if let Some(cookie) = cookie {
        request = request.header("cookie", cookie);
    }
    let answer = request.send().await.unwrap();
    let location = answer.headers().get("location").map(|value| value.to_str().unwrap().to_owned());
    (answer.status(), location)
}

/// The value of the session cookie `name` the browser was given at sign-in.
fn session_value(set_cookies: &[String], name: &str) -> String {
    let cookie =
        set_cookies.iter().find(|cookie| cookie.starts_with(&format!("{name}="))).expect("a session");
    cookie.split(';').next().unwrap().split_once('=').unwrap().1.to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_console_route_needs_a_signed_in_operator_with_totp() {
    let app = TestApp::spawn().await;
    let merchant = app.merchant().await;
    for (method, path) in routes(&merchant.client_id) {
        let (status, location) = send(&app, method, &path, None).await;
        assert_eq!(status, StatusCode::SEE_OTHER, "{method} {path}");
        assert_eq!(location.as_deref(), Some("/console/login"), "{method} {path} signed out");
    }
    operator(&app, "new@platform.example").await;
    let browser = Browser::new(&app);
    let answer = console_sign_in(&browser, "new@platform.example", PASSWORD, "").await;
    let session = session_value(&answer.set_cookies, "ocpay_console");
    for (method, path) in routes(&merchant.client_id) {
        let (_, location) = send(&app, method, &path, Some(&format!("ocpay_console={session}"))).await;
        assert_eq!(location.as_deref(), Some("/console/account/totp"), "{method} {path} without TOTP");
    }
    let participant = app
        .state
        .store
        .participant_listing(&ocpay_core::ids::ClientId::parse(&merchant.client_id).unwrap())
        .await
        .unwrap();
    assert_eq!(participant.unwrap().suspended_at, None, "nothing changed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_developer_center_session_never_opens_the_console_nor_the_other_way_round() {
    let app = TestApp::spawn().await;
    let merchant = app.merchant().await;
    user(&app, &merchant.client_id, "owner@shop.example", Role::Owner).await;
    let portal = Browser::new(&app);
    let signed = portal.sign_in("owner@shop.example", PASSWORD, "").await;
    let portal_session = session_value(&signed.set_cookies, "ocpay_portal");
    let console = signed_in_operator(&app, "ops@platform.example").await;
    let answer = console_sign_in(&Browser::new(&app), "ops@platform.example", PASSWORD, "").await;
    assert_eq!(answer.status, StatusCode::UNAUTHORIZED, "the operator now needs a code");
    drop(console);
    // A fresh operator session to steal.
    operator(&app, "second@platform.example").await;
    let second = Browser::new(&app);
    let answer = console_sign_in(&second, "second@platform.example", PASSWORD, "").await;
    let console_session = session_value(&answer.set_cookies, "ocpay_console");

    // The portal's cookie at the console, by its name and forged under the console's, and with
    // every path the browser could be tricked into: the console does not know it.
    for cookie in [
        format!("ocpay_portal={portal_session}"),
        format!("ocpay_console={portal_session}"),
        format!("ocpay_portal={portal_session}; ocpay_console={portal_session}"),
    ] {
        for (method, path) in routes(&merchant.client_id) {
            let (_, location) = send(&app, method, &path, Some(&cookie)).await;
            assert_eq!(location.as_deref(), Some("/console/login"), "{cookie} at {method} {path}");
        }
    }
    // The console's cookie at the developer center, by its name and forged under the portal's.
    for cookie in [format!("ocpay_console={console_session}"), format!("ocpay_portal={console_session}")] {
        for path in ["/portal/", "/portal/payments", "/portal/settings", "/portal/team"] {
            let (_, location) = send(&app, "GET", path, Some(&cookie)).await;
            assert_eq!(location.as_deref(), Some("/portal/login"), "{cookie} at {path}");
        }
    }
    // And each still works where it belongs.
    let (status, _) = send(&app, "GET", "/portal/", Some(&format!("ocpay_portal={portal_session}"))).await;
    assert_eq!(status, StatusCode::OK);
    let (_, location) =
        send(&app, "GET", "/console/", Some(&format!("ocpay_console={console_session}"))).await;
    assert_eq!(location.as_deref(), Some("/console/account/totp"), "the operator's own session works");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_realms_credentials_are_refused_at_the_others_sign_in() {
    let app = TestApp::spawn().await;
    let merchant = app.merchant().await;
    user(&app, &merchant.client_id, "owner@shop.example", Role::Owner).await;
    operator(&app, "ops@platform.example").await;
    let browser = Browser::new(&app);
    let participant_at_console = console_sign_in(&browser, "owner@shop.example", PASSWORD, "").await;
    assert_eq!(participant_at_console.status, StatusCode::UNAUTHORIZED);
    assert!(participant_at_console.body.contains("The email, password or code is wrong"));
    assert!(participant_at_console.set_cookies.iter().all(|cookie| !cookie.starts_with("ocpay_console=")));
    let operator_at_portal = browser.sign_in("ops@platform.example", PASSWORD, "").await;
    assert_eq!(operator_at_portal.status, StatusCode::UNAUTHORIZED);
    assert!(operator_at_portal.set_cookies.iter().all(|cookie| !cookie.starts_with("ocpay_portal=")));
    // The console's sign-in form takes only its own CSRF cookie.
    let portal_form = browser.get("/portal/login").await;
    let crossed = browser
        .post(
            "/console/login",
            &[("csrf", &portal_form.csrf()), ("email", "ops@platform.example"), ("password", PASSWORD)],
        )
        .await;
    assert_eq!(crossed.status, StatusCode::FORBIDDEN, "the portal's sign-in token does not sign in here");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn console_forms_without_the_token_or_from_another_site_change_nothing() {
    let app = TestApp::spawn().await;
    let merchant = app.merchant().await;
    let browser = signed_in_operator(&app, "ops@platform.example").await;
    let path = format!("/console/participants/{}/suspend", merchant.client_id);
    let page = browser.get(&format!("/console/participants/{}", merchant.client_id)).await;
    let csrf = page.csrf();
    let without = browser.post(&path, &[]).await;
    assert_eq!(without.status, StatusCode::FORBIDDEN);
    assert!(without.body.contains("Back to the console"), "the console's own page: {}", without.body);
    let wrong = browser.post(&path, &[("csrf", "not-the-token")]).await;
    assert_eq!(wrong.status, StatusCode::FORBIDDEN);
    let cross_site = browser
        .post_with(
            &path,
            &[("csrf", &csrf)],
            &[("origin", "https://evil.example"), ("sec-fetch-site", "cross-site")],
        )
        .await;
    assert_eq!(cross_site.status, StatusCode::FORBIDDEN);
    let null_origin = browser.post_with(&path, &[("csrf", &csrf)], &[("origin", "null")]).await;
    assert_eq!(null_origin.status, StatusCode::FORBIDDEN);
    let listing = app
        .state
        .store
        .participant_listing(&ocpay_core::ids::ClientId::parse(&merchant.client_id).unwrap())
        .await
        .unwrap();
    assert_eq!(listing.unwrap().suspended_at, None, "nothing changed");
    let done = browser.post(&path, &[("csrf", &csrf)]).await;
    assert_eq!(done.status, StatusCode::SEE_OTHER, "the real form works");
    for missing in ["/console/nothing/here", "/console/participants/SANDBOX_NOBODY"] {
        let page = browser.get(missing).await;
        assert_eq!(page.status, StatusCode::NOT_FOUND, "{missing}");
        assert!(
            page.body.contains("Back to the console") && page.body.contains("operator's console"),
            "{missing}"
        );
    }
}
