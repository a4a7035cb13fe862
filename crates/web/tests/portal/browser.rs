//! A minimal browser for the tests: a cookie jar, no redirects followed, forms posted with the
//! page's CSRF token; and helpers that make users.

use ocpay_core::ids::ClientId;
use ocpay_core::portal::Role;
use ocpay_server::clock::Clock as _;
use ocpay_testkit::TestApp;
use ocpay_web::auth::Passwords;
use reqwest::StatusCode;

pub(crate) const PASSWORD: &str = "correct horse battery staple";

pub(crate) struct Page {
    pub(crate) status: StatusCode,
    pub(crate) location: Option<String>,
    pub(crate) set_cookies: Vec<String>,
    pub(crate) headers: reqwest::header::HeaderMap,
    pub(crate) body: String,
}

impl Page {
    /// The value of the first `name="csrf"` hidden field.
    pub(crate) fn csrf(&self) -> String {
        field_value(&self.body, "csrf").expect("the page has a CSRF field")
    }
}

/// The `value` of the first input named `name` in `html`.
pub(crate) fn field_value(html: &str, name: &str) -> Option<String> {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html.find(&marker)? + marker.len();
    let end = html[start..].find('"')?;
    Some(html[start..start + end].to_owned())
}

pub(crate) struct Browser {
    http: reqwest::Client,
    base: String,
}

impl Browser {
    pub(crate) fn new(app: &TestApp) -> Browser {
        let http = reqwest::Client::builder()
            .cookie_store(true)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("an HTTP client");
        Browser { http, base: app.base_url.clone() }
    }

    async fn page(response: reqwest::Response) -> Page {
        let status = response.status();
        let headers = response.headers().clone();
        let location = headers.get("location").map(|value| value.to_str().unwrap().to_owned());
        let set_cookies =
            headers.get_all("set-cookie").iter().map(|value| value.to_str().unwrap().to_owned()).collect();
        let body = response.text().await.expect("a body");
        Page { status, location, set_cookies, headers, body }
    }

    pub(crate) async fn get(&self, path: &str) -> Page {
        Browser::page(self.http.get(format!("{}{path}", self.base)).send().await.expect("GET")).await
    }

    /// Posts a form as the browser would from the portal's own page.
    pub(crate) async fn post(&self, path: &str, fields: &[(&str, &str)]) -> Page {
        self.post_with(path, fields, &[("origin", &self.base), ("sec-fetch-site", "same-origin")]).await
    }

    pub(crate) async fn post_with(
        &self,
        path: &str,
        fields: &[(&str, &str)],
        headers: &[(&str, &str)],
    ) -> Page {
        let mut request = self.http.post(format!("{}{path}", self.base)).form(fields);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        Browser::page(request.send().await.expect("POST")).await
    }

    /// Signs in through the form; the answer to the form's POST.
    pub(crate) async fn sign_in(&self, email: &str, password: &str, totp: &str) -> Page {
        let form = self.get("/portal/login").await;
        assert_eq!(form.status, StatusCode::OK);
        let csrf = form.csrf();
        self.post(
            "/portal/login",
            &[("csrf", &csrf), ("email", email), ("password", password), ("totp", totp)],
        )
        .await
    }

    /// Signs in and expects to land on the home page.
    pub(crate) async fn signed_in(app: &TestApp, email: &str) -> Browser {
        let browser = Browser::new(app);
        let answer = browser.sign_in(email, PASSWORD, "").await;
        assert_eq!(answer.location.as_deref(), Some("/portal/"), "{email} signs in: {}", answer.body);
        browser
    }
}

pub(crate) fn passwords(app: &TestApp) -> Passwords {
    let settings = &app.state.settings.portal;
    Passwords::new(settings.argon2_memory_kib, settings.argon2_iterations)
}

/// A user of `client_id` with [`PASSWORD`].
pub(crate) async fn user(app: &TestApp, client_id: &str, email: &str, role: Role) {
    let client_id = ClientId::parse(client_id).unwrap();
    let store = &*app.state.store;
    let settings = &app.state.settings.portal;
    ocpay_web::users::create(
        store,
        &passwords(app),
        settings,
        app.clock.now(),
        ocpay_web::users::NewUser { client_id: &client_id, email, role, password: Some(PASSWORD) },
    )
    .await
    .expect("create a user");
}

/// The result codes of a participant's audit events of `api`, newest first, once there are at
/// least `count` of them (the audit writer commits in batches, a moment later).
pub(crate) async fn audit_codes(app: &TestApp, client_id: &ClientId, api: &str, count: usize) -> Vec<String> {
    let mut codes = Vec::new();
    for _ in 0..500 {
        let events = app.state.store.audit_events(client_id, 200).await.expect("the audit trail");
        codes = events.into_iter().filter(|event| event.api == api).map(|event| event.result_code).collect();
        if codes.len() >= count {
            // In any order: an action's success is written before the page answers, while
            // refusals are queued and written a moment later, so the trail's order is not the
            // requests' (the README says so).
            codes.sort();
            return codes;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    panic!("{count} {api} events in the audit trail, found {codes:?}");
}
