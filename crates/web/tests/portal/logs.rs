//! The API log pages: a signed request in the list and its detail (bodies, the Agent-Token
//! redacted), a broken signature's diagnosis on its detail page, the filters and the "Older"
//! link, another participant's entry answering as a missing one, the pasted-signature check,
//! every role, CSRF and signing out.

use std::time::{Duration, Instant};

use ocpay_core::access::Scopes;
use ocpay_core::ids::ClientId;
use ocpay_core::participant::{Environment, ParticipantKind};
use ocpay_core::portal::Role;
use ocpay_protocol::signature::content_to_sign;
use ocpay_protocol::{Api, SigningKey, datetime};
use ocpay_server::clock::Clock as _;
use ocpay_server::service::grants::{self, NewAuthorisation};
use ocpay_server::service::participants::{self, AddedKey};
use ocpay_store::ApiLogFilter;
use ocpay_testkit::{TestApp, TestParticipant, pay_request, unique_id};
use reqwest::StatusCode;

use crate::browser::{Browser, Page};
use crate::payments::{all_between, next_link, pay, signed_in, unescape};

/// Waits until `client_id`'s log holds at least `count` entries (the gateway's writer commits
/// them a moment after the answer).
async fn logged(app: &TestApp, client_id: &str, count: usize) {
    let client_id = ClientId::parse(client_id).unwrap();
    let started = Instant::now();
    loop {
        let entries =
            app.state.store.api_log(&client_id, &ApiLogFilter::default(), None, 1_000).await.unwrap();
        if entries.len() >= count {
            return;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{count} entries in the log, found {}",
            entries.len()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The entry ids a list page links to, in order.
fn entry_links(page: &Page) -> Vec<String> {
    all_between(&page.body, "<td data-label=\"Received\"><a href=\"/portal/logs/", "\"")
}

/// The text of the textarea named `name`, unescaped.
fn textarea(html: &str, name: &str) -> String {
    let start = html.find(&format!("name=\"{name}\"")).expect("the text area");
    let open = start + html[start..].find('>').unwrap() + 1;
    let end = open + html[open..].find("</textarea>").unwrap();
    unescape(&html[open..end])
}

/// Follows the "Older" links from `first`; each page's entry links.
async fn walk(browser: &Browser, first: &str) -> Vec<Vec<String>> {
    let mut pages = Vec::new();
    let mut path = Some(first.to_owned());
    while let Some(current) = path {
        let page = browser.get(&current).await;
        assert_eq!(page.status, StatusCode::OK, "{current}: {}", page.body);
        pages.push(entry_links(&page));
        path = next_link(&page);
        assert!(pages.len() < 20, "the pages end");
    }
    pages
}

/// Sends a `pay` as `merchant` with every header as given: the `Request-Time` sent, the
/// `Signature` header sent; the HTTP status and the result code.
async fn send_raw(
    app: &TestApp,
    merchant: &TestParticipant,
    request_time: &str,
    body: &[u8],
    signature: &str,
) -> (u16, String) {
    let path = Api::Pay.path_for(&merchant.client_id);
    let answer = reqwest::Client::new()
        .post(format!("{}{path}", app.base_url))
        .header("client-id", &merchant.client_id)
        .header("request-time", request_time)
        .header("content-type", "application/json; charset=UTF-8")
        .header("signature", signature)
        .body(body.to_vec())
        .send()
        .await
        .expect("the gateway answers");
    let status = answer.status().as_u16();
    let json: serde_json::Value = answer.json().await.expect("a JSON answer");
    (status, json["result"]["resultCode"].as_str().unwrap_or_default().to_owned())
}

/// A second key (version 2) for `merchant`; its private half.
async fn second_key(app: &TestApp, merchant: &TestParticipant) -> SigningKey {
    let key = SigningKey::generate().unwrap();
    let added =
        AddedKey { public_key: key.verifying_key(), label: None, scopes: Scopes::ALL, expires_at: None };
    let client_id = ClientId::parse(&merchant.client_id).unwrap();
    let version = participants::add_key(&*app.state.store, app.clock.now(), &client_id, added).await.unwrap();
    assert_eq!(version, 2);
    key
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signed_pay_is_listed_and_its_detail_shows_the_bodies_with_the_agent_token_redacted() {
    let app = TestApp::spawn().await;
    let merchant = app.merchant().await;
    let isv = app.participant(ParticipantKind::Isv, Environment::Sandbox, None).await;
    let issued = grants::authorise(
        &*app.state.store,
        app.clock.now(),
        app.state.settings.grant_lifetime,
        NewAuthorisation {
            merchant: ClientId::parse(&merchant.client_id).unwrap(),
            isv: ClientId::parse(&isv.client_id).unwrap(),
            scopes: Scopes::parse("pay,inquiry").unwrap(),
            expires_in: None,
        },
    )
    .await
    .unwrap();
    let token = issued.token.expose().to_owned();
    let for_merchant =
        app.client_builder(&isv.client_id, isv.key.clone()).agent_token(&token).build().unwrap();
    let request_id = unique_id("PR-LOG");
    let paid = for_merchant.pay(&pay_request(&request_id, "USD", 1_000)).await.unwrap();
    assert_eq!(paid.result.result_code, "SUCCESS", "{:?}", paid.result);
    let payment_id = paid.payment_id.unwrap();
    logged(&app, &isv.client_id, 1).await;

    let developer = signed_in(&app, &isv.client_id, "dev@isv.example", Role::Developer).await;
    let list = developer.get("/portal/logs").await;
    assert_eq!(list.status, StatusCode::OK, "{}", list.body);
    assert!(
        list.body.contains("<a href=\"/portal/logs\" aria-current=\"page\">API log</a>"),
        "in the navigation"
    );
    assert!(list.body.contains("kept for 30 days"), "says how long it keeps requests: {}", list.body);
    let ids = entry_links(&list);
    assert_eq!(ids.len(), 1, "{}", list.body);
    let row = list.body.split("<tbody>").nth(1).unwrap();
    assert!(
        row.contains("<td data-label=\"API\">pay <span class=\"hint\">(with Agent-Token)</span></td>"),
        "{row}"
    );
    assert!(row.contains("status-S\">S SUCCESS") && row.contains("yes (key 1)"), "{row}");
    assert!(row.contains("<td data-label=\"HTTP\" class=\"num\">200</td>"), "{row}");

    let detail = developer.get(&format!("/portal/logs/{}", ids[0])).await;
    assert_eq!(detail.status, StatusCode::OK, "{}", detail.body);
    let text = unescape(&detail.body);
    assert!(text.contains("<dt><code>agent-token</code></dt><dd><code>[redacted]</code></dd>"), "{text}");
    assert!(!text.contains(&token), "the Agent-Token is nowhere on the page");
    assert!(text.contains(&format!("\"paymentRequestId\": \"{request_id}\"")), "the request body, indented");
    assert!(text.contains(&format!("\"paymentId\": \"{payment_id}\"")), "the response body, indented");
    assert!(text.contains(&format!("<code>{}</code>", Api::Pay.path_for(&isv.client_id))), "the path");
    assert!(!text.contains("Why the signature did not verify"), "a verified request has no diagnosis");

    // The log is the signer's: the merchant the ISV acted for sees none of it, and the ISV's
    // entry answers the merchant's users exactly as an id that does not exist.
    let owner = signed_in(&app, &merchant.client_id, "owner@shop.example", Role::Owner).await;
    assert!(entry_links(&owner.get("/portal/logs").await).is_empty());
    let foreign = owner.get(&format!("/portal/logs/{}", ids[0])).await;
    let missing = owner.get("/portal/logs/999999999").await;
    let unreadable = owner.get("/portal/logs/not-an-id").await;
    assert_eq!(foreign.status, StatusCode::NOT_FOUND);
    assert_eq!((missing.status, unreadable.status), (StatusCode::NOT_FOUND, StatusCode::NOT_FOUND));
    assert_eq!(foreign.body, missing.body, "another participant's entry reads as a missing one");
    let prefilled = owner.get(&format!("/portal/logs/check?entry={}", ids[0])).await;
    assert_eq!((prefilled.status, prefilled.body == missing.body), (StatusCode::NOT_FOUND, true));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broken_signature_shows_its_diagnosis_and_the_paste_check_names_the_key() {
    let app = TestApp::spawn().await;
    let merchant = app.merchant().await;
    let second = second_key(&app, &merchant).await;
    let path = Api::Pay.path_for(&merchant.client_id);
    let millis = app.clock.now().as_millisecond().to_string();

    // Signed with key 2, sent as key 1.
    let body = serde_json::to_vec(&pay_request(&unique_id("PR-KEY"), "USD", 1_000)).unwrap();
    let content = content_to_sign("POST", &path, &merchant.client_id, &millis, &body);
    let header = second.sign_header(1, &content).unwrap();
    assert_eq!(
        send_raw(&app, &merchant, &millis, &body, &header).await,
        (200, "SIGNATURE_INVALID".to_owned())
    );
    logged(&app, &merchant.client_id, 1).await;
    // Request-Time signed as ISO text, sent as epoch milliseconds.
    let iso = datetime::format(app.clock.now());
    let body_iso = serde_json::to_vec(&pay_request(&unique_id("PR-TIME"), "USD", 1_000)).unwrap();
    let signed_iso = content_to_sign("POST", &path, &merchant.client_id, &iso, &body_iso);
    let header_iso = merchant.key.sign_header(1, &signed_iso).unwrap();
    assert_eq!(send_raw(&app, &merchant, &millis, &body_iso, &header_iso).await.1, "SIGNATURE_INVALID");
    logged(&app, &merchant.client_id, 2).await;

    let viewer = signed_in(&app, &merchant.client_id, "viewer@shop.example", Role::Viewer).await;
    let list = viewer.get("/portal/logs").await;
    let ids = entry_links(&list);
    assert_eq!(ids.len(), 2, "{}", list.body);
    assert!(
        list.body.contains("F SIGNATURE_INVALID") && list.body.contains("no (tried key 1)"),
        "{}",
        list.body
    );
    let (time_id, key_id) = (&ids[0], &ids[1]);

    let detail = viewer.get(&format!("/portal/logs/{key_id}")).await;
    assert_eq!(detail.status, StatusCode::OK);
    let text = unescape(&detail.body);
    assert!(text.contains("Why the signature did not verify"), "{text}");
    assert!(text.contains("<strong>OTHER_KEY_VERSION</strong>"), "{text}");
    assert!(
        text.contains(
            "signed with key version 2 but its Signature header says keyVersion=1: send keyVersion=2"
        ),
        "what to change, in words: {text}"
    );
    assert!(text.contains("<dt>Key version tried</dt><dd>1</dd>"), "{text}");
    let shown = format!(
        "<pre class=\"wrap string-to-sign\" aria-labelledby=\"verified-string\">POST {path}<span class=\"nl\">\\n</span>\n{}.{millis}.{}</pre>",
        merchant.client_id,
        String::from_utf8_lossy(&body)
    );
    assert!(text.contains(&shown), "the exact string verified, its \\n shown: {text}");
    assert!(text.contains("Checked and ruled out"), "{text}");
    assert!(text.contains("URL-encoded, as the protocol asks"), "{text}");

    let detail = viewer.get(&format!("/portal/logs/{time_id}")).await;
    let text = unescape(&detail.body);
    assert!(text.contains("<strong>REQUEST_TIME_FORMAT</strong>"), "{text}");
    assert!(text.contains("You signed Request-Time in another format than the header sent"), "{text}");
    assert!(text.contains(&format!("{}.{iso}.", merchant.client_id)), "what was signed instead: {text}");
    assert!(text.contains(&format!("<li>{}</li>", "another of your key versions (the newest three)")));

    // Filtered by result code, only these two; by SUCCESS, none.
    let refused = walk(&viewer, "/portal/logs?result_code=SIGNATURE_INVALID").await.concat();
    assert_eq!(refused, ids);
    assert!(walk(&viewer, "/portal/logs?result_code=SUCCESS").await.concat().is_empty());

    // The paste check, prefilled from the entry: the string verified and the header sent,
    // signed with key 2.
    let form = viewer.get(&format!("/portal/logs/check?entry={key_id}")).await;
    assert_eq!(form.status, StatusCode::OK, "{}", form.body);
    let string = textarea(&form.body, "string_to_sign");
    let signature = textarea(&form.body, "signature");
    assert_eq!(string.as_bytes(), content.as_slice(), "prefilled with the string verified");
    assert_eq!(signature, header, "prefilled with the Signature header sent");
    let csrf = form.csrf();
    let checked = viewer
        .post(
            "/portal/logs/check",
            &[
                ("csrf", &csrf),
                ("string_to_sign", &string),
                ("signature", &signature),
                ("key_version", "any"),
            ],
        )
        .await;
    assert_eq!(checked.status, StatusCode::OK, "{}", checked.body);
    assert!(
        checked.body.contains("<span class=\"status status-S\">key version 2</span>"),
        "{}",
        checked.body
    );
    assert!(checked.body.contains("URL-encoded once, as the protocol asks"), "{}", checked.body);
    // Only key 1 asked for: none verifies.
    let key_one = viewer
        .post(
            "/portal/logs/check",
            &[("csrf", &csrf), ("string_to_sign", &string), ("signature", &signature), ("key_version", "1")],
        )
        .await;
    assert!(key_one.body.contains("none of your keys"), "{}", key_one.body);
    // Another string: none verifies. The raw base64 is said to be not URL-encoded.
    let other = format!("{string}x");
    let raw = signature
        .split_once("signature=")
        .unwrap()
        .1
        .replace("%2B", "+")
        .replace("%2F", "/")
        .replace("%3D", "=");
    let wrong = viewer
        .post(
            "/portal/logs/check",
            &[("csrf", &csrf), ("string_to_sign", &other), ("signature", &raw), ("key_version", "any")],
        )
        .await;
    assert_eq!(wrong.status, StatusCode::OK);
    assert!(
        wrong.body.contains("<span class=\"status status-F\">none of your keys</span>"),
        "{}",
        wrong.body
    );
    // A browser's text area sends CRLF line breaks: still verified, and said so.
    let crlf = string.replace('\n', "\r\n");
    let browser = viewer
        .post(
            "/portal/logs/check",
            &[("csrf", &csrf), ("string_to_sign", &crlf), ("signature", &raw), ("key_version", "2")],
        )
        .await;
    assert!(browser.body.contains("key version 2</span>"), "{}", browser.body);
    assert!(browser.body.contains("not URL-encoded (raw base64)"), "{}", browser.body);

    // Refusals name the field; a key version not the participant's is refused.
    for (fields, message) in [
        ([("string_to_sign", ""), ("signature", "x"), ("key_version", "any")], "string to sign: "),
        ([("string_to_sign", "POST /"), ("signature", " "), ("key_version", "any")], "signature: "),
        ([("string_to_sign", "POST /"), ("signature", "x"), ("key_version", "7")], "key version: "),
    ] {
        let mut form = vec![("csrf", csrf.as_str())];
        form.extend(fields);
        let refused = viewer.post("/portal/logs/check", &form).await;
        assert_eq!(refused.status, StatusCode::BAD_REQUEST, "{message}");
        assert!(refused.body.contains(message), "{message}: {}", refused.body);
    }
    // Without the session's token, or from another site: refused.
    let fields = [("string_to_sign", string.as_str()), ("signature", signature.as_str())];
    let no_token = viewer.post("/portal/logs/check", &fields).await;
    assert_eq!(no_token.status, StatusCode::FORBIDDEN);
    let with_token = [("csrf", csrf.as_str()), fields[0], fields[1]];
    let cross = viewer
        .post_with(
            "/portal/logs/check",
            &with_token,
            &[("origin", "https://evil.example"), ("sec-fetch-site", "cross-site")],
        )
        .await;
    assert_eq!(cross.status, StatusCode::FORBIDDEN);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_list_filters_by_api_and_dates_and_pages_with_the_older_link() {
    let app = TestApp::spawn_with(|config| config.portal_page_size = 2).await;
    let merchant = app.merchant().await;
    let other = app.merchant().await;
    let mut payment_ids = Vec::new();
    for _ in 0..3 {
        payment_ids.push(pay(&merchant, &unique_id("PR-PAGE"), 500).await);
    }
    let inquiry = ocpay_protocol::payments::InquiryPaymentRequest {
        payment_id: Some(payment_ids[0].clone()),
        payment_request_id: None,
    };
    for _ in 0..2 {
        assert!(merchant.client.inquire_payment(&inquiry).await.unwrap().result.is_success());
    }
    pay(&other, &unique_id("PR-OTHER"), 500).await;
    logged(&app, &merchant.client_id, 5).await;
    logged(&app, &other.client_id, 1).await;

    for role in [Role::Owner, Role::Developer, Role::Viewer] {
        let email = format!("{}@shop.example", role.as_str());
        let browser = signed_in(&app, &merchant.client_id, &email, role).await;
        let pages = walk(&browser, "/portal/logs").await;
        assert_eq!(
            pages.iter().map(Vec::len).collect::<Vec<_>>(),
            [2, 2, 1],
            "{role:?}: five requests, pages of two"
        );
        let all = pages.concat();
        let mut sorted = all.clone();
        sorted.sort_by_key(|id| std::cmp::Reverse(id.parse::<i64>().unwrap()));
        sorted.dedup();
        assert_eq!(all, sorted, "newest first, each once");
        let form = browser.get("/portal/logs/check").await;
        assert_eq!(form.status, StatusCode::OK, "{role:?} may check a signature");
        assert!(form.body.contains("<option value=\"1\">Version 1</option>"), "{}", form.body);
    }
    let viewer = Browser::signed_in(&app, "viewer@shop.example").await;
    let pays = walk(&viewer, "/portal/logs?api=pay").await;
    assert_eq!(pays.iter().map(Vec::len).collect::<Vec<_>>(), [2, 1], "three pays; the filter kept on Older");
    let second = viewer.get(&next_link(&viewer.get("/portal/logs?api=pay").await).unwrap()).await;
    assert!(second.body.contains("<option value=\"pay\" selected>pay</option>"), "{}", second.body);
    assert!(second.body.contains(">Newest</a>"), "a way back to the newest");
    assert_eq!(walk(&viewer, "/portal/logs?api=inquiryPayment").await.concat().len(), 2);
    assert!(walk(&viewer, "/portal/logs?api=refund").await.concat().is_empty());

    let today = app.clock.now().strftime("%Y-%m-%d").to_string();
    let yesterday = (app.clock.now() - jiff::SignedDuration::from_hours(24)).strftime("%Y-%m-%d").to_string();
    let tomorrow = (app.clock.now() + jiff::SignedDuration::from_hours(24)).strftime("%Y-%m-%d").to_string();
    assert_eq!(walk(&viewer, &format!("/portal/logs?from={today}&to={today}")).await.concat().len(), 5);
    assert!(walk(&viewer, &format!("/portal/logs?to={yesterday}")).await.concat().is_empty());
    assert!(walk(&viewer, &format!("/portal/logs?from={tomorrow}")).await.concat().is_empty());
    assert_eq!(walk(&viewer, &format!("/portal/logs?api=pay&from={today}")).await.concat().len(), 3);

    for (query, message) in [
        ("api=bogus", "API: choose one of the protocol&#39;s APIs"),
        ("result_code=NOPE", "result code: "),
        ("from=31%2F03%2F2026", "from: must be a date"),
        ("before=x", "before: not a page of this list"),
        ("before=-3", "before: not a page of this list"),
    ] {
        let refused = viewer.get(&format!("/portal/logs?{query}")).await;
        assert_eq!(refused.status, StatusCode::BAD_REQUEST, "{query}");
        assert!(refused.body.contains(message), "{query}: {}", refused.body);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signed_out_every_log_page_leads_to_sign_in() {
    let app = TestApp::spawn().await;
    let anonymous = Browser::new(&app);
    for path in ["/portal/logs", "/portal/logs/1", "/portal/logs/check", "/portal/logs/check?entry=1"] {
        let page = anonymous.get(path).await;
        assert_eq!(page.location.as_deref(), Some("/portal/login"), "{path}");
    }
    let posted = anonymous
        .post("/portal/logs/check", &[("csrf", "x"), ("string_to_sign", "s"), ("signature", "s")])
        .await;
    assert_eq!(posted.location.as_deref(), Some("/portal/login"));
}
