//! The API log: every request under a participant's client id, verified or not, with its
//! headers (secrets redacted), bodies and answer; a broken signature with the signature
//! debugger's diagnosis; nothing for an unknown client id; a bound on unverified entries;
//! pruning after the retention; and `apiLogInquiry`, which follows the log and is not logged.

use std::time::{Duration, Instant};

use base64::Engine as _;
use jiff::SignedDuration;
use ocpay_core::access::Scopes;
use ocpay_core::ids::ClientId;
use ocpay_protocol::api_log::{ApiLogInquiryRequest, SignatureDiagnosis};
use ocpay_protocol::signature::content_to_sign;
use ocpay_protocol::{Api, SigningKey};
use ocpay_server::service::grants::{self, NewAuthorisation};
use ocpay_server::service::participants::{self, AddedKey};
use ocpay_store::{ApiLogEntry, ApiLogFilter};
use ocpay_testkit::{Clock, TestApp, TestParticipant, pay_request, unique_id};

use crate::helpers::{RawRequest, send, signature_for};

/// `client_id`'s log, newest first, once `written` says what the test waits for is there (the
/// gateway's writer commits entries a moment after the answer).
async fn log_of(
    app: &TestApp,
    client_id: &str,
    written: impl Fn(&[ApiLogEntry]) -> bool,
) -> Vec<ApiLogEntry> {
    let client_id = ClientId::parse(client_id).unwrap();
    let started = Instant::now();
    loop {
        let entries =
            app.state.store.api_log(&client_id, &ApiLogFilter::default(), None, 1_000).await.unwrap();
        if written(&entries) || started.elapsed() > Duration::from_secs(10) {
            return entries;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn pay_body(request_id: &str) -> Vec<u8> {
    serde_json::to_vec(&pay_request(request_id, "USD", 1_000)).unwrap()
}

fn headers(entry: &ApiLogEntry, of: &str) -> serde_json::Value {
    let text = if of == "request" { &entry.request_headers } else { &entry.response_headers };
    serde_json::from_str(text)
        .unwrap_or_else(|error| panic!("{of} headers are a JSON object: {error}: {text}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signed_pay_is_logged_with_its_headers_bodies_and_answer_and_the_agent_token_redacted() {
    let app = TestApp::spawn().await;
    let merchant = app.merchant().await;
    let isv = app
        .participant(
            ocpay_core::participant::ParticipantKind::Isv,
            ocpay_core::participant::Environment::Sandbox,
            None,
        )
        .await;
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
    let request_id = unique_id("PR");
    let paid = for_merchant.pay(&pay_request(&request_id, "USD", 1_000)).await.unwrap();
    assert_eq!(paid.result.result_code, "SUCCESS", "{:?}", paid.result);

    let log = log_of(&app, &isv.client_id, |entries| !entries.is_empty()).await;
    assert_eq!(log.len(), 1, "the ISV's request is in the ISV's log: {log:?}");
    let entry = &log[0];
    let path = Api::Pay.path_for(&isv.client_id);
    assert_eq!((entry.api.as_str(), entry.path.as_str()), ("pay", path.as_str()));
    assert!(entry.verified);
    assert_eq!(entry.key_version, Some(1));
    assert_eq!(entry.agent.as_ref().map(ClientId::as_str), Some(isv.client_id.as_str()), "acted as an agent");
    assert_eq!(
        (entry.result_status.as_str(), entry.result_code.as_str(), entry.http_status),
        ("S", "SUCCESS", 200)
    );
    assert!(entry.latency_micros > 0);
    let received_ago = app.clock.now().duration_since(entry.at).abs();
    assert!(received_ago < SignedDuration::from_secs(5), "received at the server's now");
    assert_eq!(entry.diagnosis, None);

    let sent = headers(entry, "request");
    assert_eq!(sent["agent-token"], "[redacted]");
    assert_eq!(sent["client-id"], isv.client_id.as_str());
    assert!(sent["signature"].as_str().unwrap().starts_with("algorithm=RSA256,keyVersion=1,signature="));
    assert!(!format!("{entry:?}").contains(&token), "the Agent-Token is nowhere in the entry");
    let body: serde_json::Value = serde_json::from_str(&entry.request_body).unwrap();
    assert_eq!(body["paymentRequestId"], request_id.as_str(), "the request body as sent");
    let answered: serde_json::Value = serde_json::from_str(&entry.response_body).unwrap();
    assert_eq!(answered["paymentId"], paid.payment_id.clone().unwrap().as_str(), "the answer as sent");
    let returned = headers(entry, "response");
    assert_eq!(returned["client-id"], isv.client_id.as_str());
    assert!(returned["signature"].is_string() && returned["response-time"].is_string(), "{returned}");
    assert!(log_of(&app, &merchant.client_id, |_| true).await.is_empty(), "the log is the signer's");

    // The ISV follows its own log, without a token: the newest entries, then after a cursor.
    let page = isv.client.api_log(&ApiLogInquiryRequest::default()).await.unwrap();
    assert_eq!(page.result.result_code, "SUCCESS", "{:?}", page.result);
    let records = page.entries.unwrap();
    assert_eq!(records.len(), 1);
    let record = &records[0];
    assert_eq!(record.id, Some(entry.id.to_string()));
    assert_eq!((record.api.as_deref(), record.result_code.as_deref()), (Some("pay"), Some("SUCCESS")));
    assert_eq!((record.verified, record.key_version.as_deref()), (Some(true), Some("1")));
    assert_eq!(record.agent.as_deref(), Some(isv.client_id.as_str()));
    assert_eq!(page.next_after_id, Some(entry.id.to_string()));
    let after =
        ApiLogInquiryRequest { after_id: page.next_after_id.clone(), ..ApiLogInquiryRequest::default() };
    let nothing_new = isv.client.api_log(&after).await.unwrap();
    assert_eq!(
        (nothing_new.entries.unwrap().len(), nothing_new.next_after_id),
        (0, page.next_after_id.clone())
    );
    let wrong = ApiLogInquiryRequest { limit: Some("0".into()), ..ApiLogInquiryRequest::default() };
    let refused = isv.client.api_log(&wrong).await.unwrap();
    assert_eq!(refused.result.result_code, "PARAM_ILLEGAL");
    assert!(refused.result.result_message.starts_with("limit: must be"), "{:?}", refused.result);
    let wrong = ApiLogInquiryRequest { after_id: Some("x".into()), ..ApiLogInquiryRequest::default() };
    assert!(isv.client.api_log(&wrong).await.unwrap().result.result_message.starts_with("afterId: "));

    // Reading the log is not logged: a request after the reads is, and nothing between.
    let inquiry = ocpay_protocol::payments::InquiryPaymentRequest {
        payment_id: paid.payment_id.clone(),
        payment_request_id: None,
    };
    assert_eq!(for_merchant.inquire_payment(&inquiry).await.unwrap().result.result_code, "SUCCESS");
    let log = log_of(&app, &isv.client_id, |entries| entries.len() >= 2).await;
    let apis: Vec<&str> = log.iter().map(|entry| entry.api.as_str()).collect();
    assert_eq!(apis, ["inquiryPayment", "pay"], "no apiLogInquiry in the log");
}

/// A signature whose standard base64 has a `+`, over a pay body that differs only in its
/// request id; each try is one RSA signature, and about half have one.
fn body_signed_with_plus(key: &SigningKey, request: &RawRequest) -> (Vec<u8>, String) {
    for _ in 0..64 {
        let body = pay_body(&unique_id("PR"));
        let content = content_to_sign(
            "POST",
            &request.path,
            request.client_id.as_deref().unwrap(),
            request.request_time.as_deref().unwrap(),
            &body,
        );
        let base64 = base64::engine::general_purpose::STANDARD.encode(key.sign(&content).unwrap());
        if base64.contains('+') {
            return (body, base64);
        }
    }
    panic!("no signature with a + among 64");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broken_signature_is_logged_with_the_diagnosis_of_its_cause() {
    let app = TestApp::spawn().await;
    let merchant = app.merchant().await;
    let second_key = SigningKey::generate().unwrap();
    let client_id = ClientId::parse(&merchant.client_id).unwrap();
    let added = AddedKey {
        public_key: second_key.verifying_key(),
        label: None,
        scopes: Scopes::ALL,
        expires_at: None,
    };
    let version = participants::add_key(&*app.state.store, app.clock.now(), &client_id, added).await.unwrap();
    assert_eq!(version, 2);
    let sandbox = Api::Pay.path_for(&merchant.client_id);
    let live = Api::Pay.path();
    assert_ne!(sandbox, live, "a sandbox merchant's path has the sandbox prefix");

    // Signed with key 2, sent as key 1.
    let wrong_key = RawRequest::new(&app, &merchant.client_id, &sandbox, pay_body(&unique_id("PR")));
    let wrong_key = RawRequest { signature: Some(signature_for(&second_key, &wrong_key)), ..wrong_key };
    // Signed without the sandbox prefix, sent with it.
    let unprefixed = RawRequest::new(&app, &merchant.client_id, &sandbox, pay_body(&unique_id("PR")));
    let signed_live = signature_for(&merchant.key, &RawRequest { path: live.clone(), ..unprefixed.clone() });
    let unprefixed = RawRequest { signature: Some(signed_live), ..unprefixed };
    // Raw base64 whose `+` a form decoder on the way turned into spaces.
    let raw = RawRequest::new(&app, &merchant.client_id, &sandbox, Vec::new());
    let (body, base64) = body_signed_with_plus(&merchant.key, &raw);
    let raw_header = format!("algorithm=RSA256,keyVersion=1,signature={}", base64.replace('+', " "));
    let raw = RawRequest { body, signature: Some(raw_header), ..raw };
    // The body changed after it was signed.
    let changed = RawRequest::new(&app, &merchant.client_id, &sandbox, pay_body(&unique_id("PR")));
    let signed_other =
        signature_for(&merchant.key, &RawRequest { body: pay_body(&unique_id("PR")), ..changed.clone() });
    let changed = RawRequest { signature: Some(signed_other), ..changed };

    let cases = [
        (wrong_key, "OTHER_KEY_VERSION", Some("2")),
        (unprefixed, "SANDBOX_PREFIX", Some("1")),
        (raw, "SIGNATURE_NOT_URL_ENCODED", Some("1")),
        (changed, "BODY_CHANGED", None),
    ];
    for (request, cause, verifying_key_version) in &cases {
        let answer = send(&app, &merchant.key, request.clone()).await;
        assert_eq!(answer.result.result_code, "SIGNATURE_INVALID", "{cause}: {}", answer.body);
        let body = request.body.clone();
        let log = log_of(&app, &merchant.client_id, |entries| {
            entries.first().is_some_and(|entry| entry.request_body.as_bytes() == body.as_slice())
        })
        .await;
        let entry = &log[0];
        assert_eq!(
            entry.request_body.as_bytes(),
            body.as_slice(),
            "{cause}: the newest entry is this request"
        );
        assert!(!entry.verified, "{cause}");
        assert_eq!((entry.api.as_str(), entry.result_code.as_str()), ("pay", "SIGNATURE_INVALID"), "{cause}");
        let diagnosis: SignatureDiagnosis = serde_json::from_str(
            entry.diagnosis.as_deref().unwrap_or_else(|| panic!("{cause}: a diagnosis")),
        )
        .unwrap();
        assert_eq!(diagnosis.cause, *cause, "{cause}: {}", diagnosis.message);
        assert_eq!(diagnosis.verifying_key_version.as_deref(), *verifying_key_version, "{cause}");
        assert_eq!(diagnosis.key_version.as_deref(), Some("1"), "{cause}: the key tried");
        let head =
            format!("POST {sandbox}\n{}.{}.", merchant.client_id, request.request_time.as_deref().unwrap());
        assert_eq!(
            diagnosis.string_to_sign,
            head + &String::from_utf8_lossy(&body),
            "{cause}: what was verified"
        );
    }
    let raw_entry = log_of(&app, &merchant.client_id, |_| true).await;
    let raw_diagnosis: SignatureDiagnosis = serde_json::from_str(
        raw_entry
            .iter()
            .find_map(|entry| entry.diagnosis.as_deref().filter(|text| text.contains("NOT_URL_ENCODED")))
            .unwrap(),
    )
    .unwrap();
    assert_eq!(raw_diagnosis.signature_url_encoded, Some(false));
    assert!(
        app.state.store.audit_events(&client_id, 100).await.unwrap().is_empty(),
        "requests that failed verification stay out of the audit trail"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_client_id_is_not_logged_and_a_known_ones_early_refusal_is() {
    let app = TestApp::spawn().await;
    let merchant = app.merchant().await;
    let stranger = SigningKey::generate().unwrap();
    let nobody = "SANDBOX_NOBODY0000000000";
    let path = Api::Pay.path_for(nobody);
    let unknown =
        send(&app, &stranger, RawRequest::new(&app, nobody, &path, pay_body(&unique_id("PR")))).await;
    assert_eq!(unknown.result.result_code, "CLIENT_INVALID");
    let missing = RawRequest::new(&app, nobody, &path, pay_body(&unique_id("PR")));
    let missing = RawRequest { request_time: None, ..missing };
    assert_eq!(send(&app, &stranger, missing).await.result.result_code, "PARAM_ILLEGAL");

    // A known participant's request refused before its signature was looked at is logged, as
    // what came after the unknown ones: once it is there, they would be too.
    let path = Api::Pay.path_for(&merchant.client_id);
    let early = RawRequest::new(&app, &merchant.client_id, &path, pay_body(&unique_id("PR")));
    let early = RawRequest { request_time: None, ..early };
    assert_eq!(send(&app, &merchant.key, early).await.result.result_code, "PARAM_ILLEGAL");
    let log = log_of(&app, &merchant.client_id, |entries| !entries.is_empty()).await;
    assert_eq!(log.len(), 1);
    assert_eq!(
        (log[0].verified, log[0].result_code.as_str(), log[0].key_version),
        (false, "PARAM_ILLEGAL", None)
    );
    assert_eq!(log[0].diagnosis, None, "no signature was checked");
    assert!(log_of(&app, nobody, |_| true).await.is_empty(), "nothing under a client id that is nobody's");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unverified_entries_are_bounded_per_participant_and_verified_ones_are_not() {
    let app = TestApp::spawn_with(|config| config.api_log_unverified_max = 3).await;
    let merchant = app.merchant().await;
    let stranger = SigningKey::generate().unwrap();
    let path = Api::Pay.path_for(&merchant.client_id);
    let mut last_body = Vec::new();
    for _ in 0..6 {
        let forged = RawRequest::new(&app, &merchant.client_id, &path, pay_body(&unique_id("PR")));
        last_body = forged.body.clone();
        assert_eq!(send(&app, &stranger, forged).await.result.result_code, "SIGNATURE_INVALID");
    }
    let signed = merchant.client.pay(&pay_request(&unique_id("PR"), "USD", 1_000)).await.unwrap();
    assert_eq!(signed.result.result_code, "SUCCESS");
    let log = log_of(&app, &merchant.client_id, |entries| {
        entries.first().is_some_and(|entry| entry.verified)
            && entries.iter().filter(|entry| !entry.verified).count() == 3
    })
    .await;
    let unverified: Vec<&ApiLogEntry> = log.iter().filter(|entry| !entry.verified).collect();
    assert_eq!(unverified.len(), 3, "the bound holds: {log:?}");
    assert_eq!(unverified[0].request_body.as_bytes(), last_body.as_slice(), "the newest are kept");
    assert_eq!(log.iter().filter(|entry| entry.verified).count(), 1, "a verified request is always kept");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn entries_older_than_the_retention_are_pruned_once_the_clock_moves() {
    let app = TestApp::spawn_with(|config| config.api_log_retention_days = 30).await;
    let merchant: TestParticipant = app.merchant().await;
    let first = merchant.client.pay(&pay_request(&unique_id("PR"), "USD", 1_000)).await.unwrap();
    assert_eq!(first.result.result_code, "SUCCESS");
    log_of(&app, &merchant.client_id, |entries| entries.len() == 1).await;
    app.clock.advance(SignedDuration::from_hours(20 * 24));
    let second = merchant.client.pay(&pay_request(&unique_id("PR"), "USD", 1_000)).await.unwrap();
    assert_eq!(second.result.result_code, "SUCCESS");
    log_of(&app, &merchant.client_id, |entries| entries.len() == 2).await;

    app.background_rounds().await;
    assert_eq!(log_of(&app, &merchant.client_id, |_| true).await.len(), 2, "nothing is 30 days old yet");
    app.clock.advance(SignedDuration::from_hours(11 * 24));
    app.background_rounds().await;
    let left = log_of(&app, &merchant.client_id, |_| true).await;
    assert_eq!(left.len(), 1, "the entry of 31 days ago is pruned: {left:?}");
    let body: serde_json::Value = serde_json::from_str(&left[0].response_body).unwrap();
    assert_eq!(body["paymentId"], second.payment_id.unwrap().as_str(), "the newer one stays");
}
