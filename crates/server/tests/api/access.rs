//! Isolation between parties, tested as an attacker would: merchants probing each other's
//! payments, ISVs with missing, foreign, out-of-scope, revoked or expired Agent-Tokens, and
//! system integrators whose key is revoked or expired. Every refused call must look exactly
//! like a call about a payment that does not exist, and every request lands in the audit trail.

use jiff::SignedDuration;
use ocpay_core::access::Scopes;
use ocpay_core::ids::{ClientId, PaymentId};
use ocpay_core::participant::{Environment, ParticipantKind};
use ocpay_protocol::agents::AuthorizationNotification;
use ocpay_protocol::payments::PayResponse;
use ocpay_protocol::{AmsResult, Api, SigningKey};
use ocpay_sdk::Client;
use ocpay_server::service::grants::{self, Issued, NewAuthorisation};
use ocpay_server::service::participants::{self, AddedKey, ParticipantField};
use ocpay_store::PaymentLookup;
use ocpay_testkit::{
    Clock, Receiver, TestApp, TestParticipant, pay_request, pay_request_for, registration_request, unique_id,
};
use serde_json::{Value, json};

use crate::helpers::{assert_ledger_sound, code_value, order_code, wallet_pay};

/// The newest audit events of `owner`, once `written` says the last one expected is there (the
/// gateway writes them after it answers).
async fn audit_events(
    app: &TestApp,
    owner: &ClientId,
    written: impl Fn(&[ocpay_store::AuditEvent]) -> bool,
) -> Vec<ocpay_store::AuditEvent> {
    let started = std::time::Instant::now();
    loop {
        let events = app.state.store.audit_events(owner, 100).await.unwrap();
        if written(&events) || started.elapsed() > std::time::Duration::from_secs(5) {
            return events;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
}

/// The `result` of a raw call, exactly as answered.
async fn result_of(client: &Client, api: Api, body: Value) -> AmsResult {
    let text = client.call_raw(api, serde_json::to_vec(&body).unwrap()).await.expect("an answer");
    let answer: Value = serde_json::from_str(&text).unwrap();
    serde_json::from_value(answer["result"].clone()).unwrap_or_else(|_| panic!("a result in {text}"))
}

/// Every call a client could make about one payment, named by id and by request id.
fn probes(payment: &PayResponse, request_id: &str) -> Vec<(Api, Value)> {
    let id = payment.payment_id.clone().unwrap();
    vec![
        (Api::InquiryPayment, json!({ "paymentId": id })),
        (Api::InquiryPayment, json!({ "paymentRequestId": request_id })),
        (Api::Cancel, json!({ "paymentId": id })),
        (Api::Cancel, json!({ "paymentRequestId": request_id })),
        (
            Api::Refund,
            json!({ "paymentId": id, "refundRequestId": unique_id("steal"), "refundAmount": { "currency": "USD", "value": "100" } }),
        ),
    ]
}

/// The same probes about a payment that exists for nobody.
fn probes_of_nothing() -> Vec<(Api, Value)> {
    vec![
        (Api::InquiryPayment, json!({ "paymentId": "20260101000000000000000000000000" })),
        (Api::InquiryPayment, json!({ "paymentRequestId": "no-such-request" })),
        (Api::Cancel, json!({ "paymentId": "20260101000000000000000000000000" })),
        (Api::Cancel, json!({ "paymentRequestId": "no-such-request" })),
        (
            Api::Refund,
            json!({ "paymentId": "20260101000000000000000000000000", "refundRequestId": unique_id("steal"), "refundAmount": { "currency": "USD", "value": "100" } }),
        ),
    ]
}

/// Asserts that `client` learns nothing about `payment`: each probe answers exactly as the
/// same probe about a payment that does not exist (`ORDER_NOT_EXIST`, or `ACCESS_DENIED` for a
/// call outside the client's scopes).
async fn sees_nothing(client: &Client, payment: &PayResponse, request_id: &str, who: &str) {
    for ((api, probe), (_, nothing)) in probes(payment, request_id).into_iter().zip(probes_of_nothing()) {
        let answered = result_of(client, api, probe.clone()).await;
        let control = result_of(client, api, nothing).await;
        assert_eq!(answered, control, "{who} {}: {probe}", api.name());
        assert!(
            ["ORDER_NOT_EXIST", "ACCESS_DENIED"].contains(&answered.result_code.as_str()),
            "{who} {}: {probe}: {answered:?}",
            api.name()
        );
    }
}

/// A paid payment of `merchant` (so that a refund of it would succeed for its owner).
async fn paid_payment(app: &TestApp, merchant: &TestParticipant) -> (PayResponse, String) {
    let request_id = unique_id("PR");
    let payment = merchant.client.pay(&pay_request(&request_id, "USD", 1_000)).await.unwrap();
    let (status, answer) = wallet_pay(app, &code_value(&payment), json!({})).await;
    assert_eq!(status, 200, "{answer}");
    (payment, request_id)
}

async fn status_of(app: &TestApp, owner: &TestParticipant, payment: &PayResponse) -> String {
    let owner = ClientId::parse(&owner.client_id).unwrap();
    let id = PaymentId::parse(payment.payment_id.as_deref().unwrap()).unwrap();
    let found = app.state.store.payment(&owner, &PaymentLookup::ById(id)).await.unwrap().unwrap();
    found.state.status().as_str().to_owned()
}

fn client_for(app: &TestApp, participant: &TestParticipant, agent_token: Option<&str>) -> Client {
    let mut builder = app.client_builder(&participant.client_id, participant.key.clone());
    if let Some(token) = agent_token {
        builder = builder.agent_token(token);
    }
    builder.build().unwrap()
}

async fn authorise(app: &TestApp, merchant: &TestParticipant, isv: &TestParticipant, scopes: &str) -> Issued {
    let new = NewAuthorisation {
        merchant: ClientId::parse(&merchant.client_id).unwrap(),
        isv: ClientId::parse(&isv.client_id).unwrap(),
        scopes: Scopes::parse(scopes).unwrap(),
        expires_in: None,
    };
    grants::authorise(&*app.state.store, app.clock.now(), app.state.settings.grant_lifetime, new)
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn merchants_learn_nothing_of_each_others_payments() {
    let app = TestApp::spawn().await;
    let alice = app.merchant().await;
    let bob = app.merchant().await;
    let (payment, request_id) = paid_payment(&app, &alice).await;

    sees_nothing(&bob.client, &payment, &request_id, "another merchant").await;
    let acquirer = app.participant(ParticipantKind::Acquirer, Environment::Sandbox, None).await;
    sees_nothing(&acquirer.client, &payment, &request_id, "an acquirer").await;
    assert_eq!(status_of(&app, &alice, &payment).await, "SUCCESS", "untouched by the probes");
    // The owner still sees it, by either name.
    let own = result_of(&alice.client, Api::InquiryPayment, json!({ "paymentRequestId": request_id })).await;
    assert_eq!(own.result_code, "SUCCESS");
    assert_ledger_sound(&app).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_isv_acts_only_for_merchants_that_authorise_it_within_scope() {
    let app = TestApp::spawn().await;
    let receiver = Receiver::start(app.platform_key.clone()).await;
    let merchant = app.merchant().await;
    let stranger = app.merchant().await;
    let isv = app.participant(ParticipantKind::Isv, Environment::Sandbox, Some(&receiver.url)).await;
    let rival = app.participant(ParticipantKind::Isv, Environment::Sandbox, None).await;
    let issued = authorise(&app, &merchant, &isv, "pay,inquiry,refund").await;
    assert!(issued.notified);
    assert_ne!(issued.grant.token_sha256, issued.token.expose(), "only the hash is kept");

    // The ISV receives its token, signed by the platform.
    let delivered = receiver.wait_for(1).await.remove(0);
    assert!(delivered.verified);
    assert_eq!(delivered.client_id, isv.client_id);
    let notice: AuthorizationNotification = serde_json::from_str(&delivered.body).unwrap();
    assert_eq!(
        (notice.access_token.as_str(), notice.auth_client_id.as_str()),
        (issued.token.expose(), merchant.client_id.as_str())
    );
    assert_eq!(
        (notice.client_id.as_str(), notice.scopes.as_str()),
        (isv.client_id.as_str(), "pay,inquiry,refund")
    );

    // With the token, the ISV's payment is the merchant's, and records the ISV.
    let agent = client_for(&app, &isv, Some(issued.token.expose()));
    let request_id = unique_id("ISV-PR");
    let payment = agent.pay(&pay_request(&request_id, "USD", 1_000)).await.unwrap();
    assert_eq!(payment.result.result_code, "SUCCESS");
    let owner = ClientId::parse(&merchant.client_id).unwrap();
    let id = PaymentId::parse(payment.payment_id.as_deref().unwrap()).unwrap();
    let stored = app.state.store.payment(&owner, &PaymentLookup::ById(id.clone())).await.unwrap().unwrap();
    assert_eq!(stored.terms.agent.as_ref().map(ClientId::as_str), Some(isv.client_id.as_str()));
    let by_merchant =
        result_of(&merchant.client, Api::InquiryPayment, json!({ "paymentRequestId": request_id })).await;
    assert_eq!(by_merchant.result_code, "SUCCESS", "the merchant sees the ISV's payment as its own");
    let (status, _) = wallet_pay(&app, &code_value(&payment), json!({})).await;
    assert_eq!(status, 200);
    let refund_request_id = unique_id("RR");
    let refund = json!({ "paymentId": id.as_str(), "refundRequestId": refund_request_id, "refundAmount": { "currency": "USD", "value": "100" } });
    assert_eq!(result_of(&agent, Api::Refund, refund.clone()).await.result_code, "SUCCESS");
    let lookup = ocpay_store::RefundLookup::ByRequestId(
        ocpay_core::ids::RefundRequestId::parse(&refund_request_id).unwrap(),
    );
    let kept = app.state.store.refund(&owner, &lookup).await.unwrap().unwrap();
    assert_eq!(
        kept.terms.agent.as_ref().map(ClientId::as_str),
        Some(isv.client_id.as_str()),
        "the refund records the ISV"
    );
    let replayed_by_merchant = result_of(&merchant.client, Api::Refund, refund).await;
    assert_eq!(replayed_by_merchant.result_code, "REPEAT_REQ_INCONSISTENT", "never the ISV's refund");

    // The ISV's request ids never reach the merchant's payments, nor the other way round.
    let own_request_id = unique_id("OWN");
    merchant.client.pay(&pay_request(&own_request_id, "USD", 700)).await.unwrap();
    let collided = agent.pay(&pay_request(&own_request_id, "USD", 700)).await.unwrap();
    assert_eq!(collided.result.result_code, "REPEAT_REQ_INCONSISTENT", "never the merchant's payment");
    assert!(collided.payment_id.is_none());

    // What the ISV may not do.
    let denied = |result: AmsResult, what: &str| {
        assert_eq!(
            (result.result_code.as_str(), result.result_status),
            ("ACCESS_DENIED", ocpay_protocol::ResultStatus::F),
            "{what}: {}",
            result.result_message
        );
        result.result_message
    };
    let inquiry = json!({ "paymentId": id.as_str() });
    denied(result_of(&agent, Api::Cancel, inquiry.clone()).await, "outside its scopes");
    denied(result_of(&isv.client, Api::InquiryPayment, inquiry.clone()).await, "without a token");
    let garbage = denied(
        result_of(&client_for(&app, &isv, Some("ocpay_at_forged")), Api::InquiryPayment, inquiry.clone())
            .await,
        "a forged token",
    );
    let foreign = denied(
        result_of(
            &client_for(&app, &rival, Some(issued.token.expose())),
            Api::InquiryPayment,
            inquiry.clone(),
        )
        .await,
        "another ISV's token",
    );
    assert_eq!(garbage, foreign, "a stolen token answers like a forged one");
    denied(
        result_of(
            &client_for(&app, &stranger, Some(issued.token.expose())),
            Api::InquiryPayment,
            inquiry.clone(),
        )
        .await,
        "a merchant with a token",
    );

    // A merchant that did not authorise the ISV stays invisible to it.
    let (theirs, theirs_request) = paid_payment(&app, &stranger).await;
    sees_nothing(&agent, &theirs, &theirs_request, "an ISV for another merchant").await;
    // The rival ISV, authorised by the stranger, sees nothing of the merchant's.
    let rivals = authorise(&app, &stranger, &rival, "pay,inquiry,cancel,refund").await;
    sees_nothing(
        &client_for(&app, &rival, Some(rivals.token.expose())),
        &payment,
        &request_id,
        "a rival ISV",
    )
    .await;

    // Revocation takes effect on the next request.
    assert_eq!(result_of(&agent, Api::InquiryPayment, inquiry.clone()).await.result_code, "SUCCESS");
    grants::revoke(&*app.state.store, app.clock.now(), &issued.grant.id).await.unwrap();
    let revoked = denied(result_of(&agent, Api::InquiryPayment, inquiry.clone()).await, "after revocation");
    assert!(revoked.contains("revoked"), "{revoked}");

    // Expiry too, by the clock.
    let short = NewAuthorisation {
        merchant: owner.clone(),
        isv: ClientId::parse(&isv.client_id).unwrap(),
        scopes: Scopes::parse("inquiry").unwrap(),
        expires_in: Some(SignedDuration::from_hours(1)),
    };
    let short = grants::authorise(&*app.state.store, app.clock.now(), SignedDuration::from_hours(24), short)
        .await
        .unwrap();
    let brief = client_for(&app, &isv, Some(short.token.expose()));
    assert_eq!(result_of(&brief, Api::InquiryPayment, inquiry.clone()).await.result_code, "SUCCESS");
    app.clock.advance(SignedDuration::from_mins(61));
    let expired = denied(result_of(&brief, Api::InquiryPayment, inquiry.clone()).await, "after expiry");
    assert!(expired.contains("expired"), "{expired}");

    // The audit trail shows what the ISV did for the merchant, refusals included.
    // The last two requests, refused after revocation and after expiry, are the ones to wait for.
    let refused_inquiries = |events: &[ocpay_store::AuditEvent]| {
        let refused = |event: &&ocpay_store::AuditEvent| {
            event.api == "inquiryPayment" && event.result_code == "ACCESS_DENIED" && event.agent.is_some()
        };
        events.iter().filter(refused).count()
    };
    let events = audit_events(&app, &owner, |events| refused_inquiries(events) >= 2).await;
    assert_eq!(refused_inquiries(&events), 2, "after revocation and after expiry");
    let by_isv: Vec<_> = events
        .iter()
        .filter(|event| event.agent.as_ref().map(ClientId::as_str) == Some(isv.client_id.as_str()))
        .collect();
    assert!(by_isv.iter().any(|event| event.api == "pay"
        && event.idempotency_key.as_deref() == Some(request_id.as_str())
        && event.result_code == "SUCCESS"));
    assert!(by_isv.iter().any(|event| event.api == "inquiryPayment" && event.result_code == "ACCESS_DENIED"));
    assert!(
        by_isv.iter().all(|event| event.client_id.as_str() == isv.client_id && event.key_version == Some(1))
    );
    assert_ledger_sound(&app).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grants_are_checked_when_made() {
    let app = TestApp::spawn().await;
    let merchant = app.merchant().await;
    let other = app.merchant().await;
    let isv = app.participant(ParticipantKind::Isv, Environment::Sandbox, None).await;
    let live_isv = app.participant(ParticipantKind::Isv, Environment::Live, None).await;
    let id = |participant: &TestParticipant| ClientId::parse(&participant.client_id).unwrap();
    let cases = [
        (id(&merchant), id(&other), ParticipantField::Isv),
        (id(&isv), id(&isv), ParticipantField::Merchant),
        (id(&merchant), id(&live_isv), ParticipantField::Isv),
        (id(&merchant), ClientId::parse("NOBODY").unwrap(), ParticipantField::Isv),
    ];
    for (merchant, isv, field) in cases {
        let new = NewAuthorisation { merchant, isv, scopes: Scopes::ALL, expires_in: None };
        let refused =
            grants::authorise(&*app.state.store, app.clock.now(), SignedDuration::from_hours(1), new).await;
        match refused {
            Err(participants::ParticipantError::Invalid { field: named, .. }) => assert_eq!(named, field),
            other => panic!("expected a refusal naming the {field}: {other:?}"),
        }
    }
    let issued = authorise(&app, &merchant, &isv, "pay").await;
    assert!(!issued.notified, "an ISV without a notify URL gets its token from the operator only");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_integrators_key_is_scoped_and_stops_at_once() {
    let app = TestApp::spawn().await;
    let merchant = app.merchant().await;
    let owner = ClientId::parse(&merchant.client_id).unwrap();
    let integrator_key = SigningKey::generate().unwrap();
    let added = AddedKey {
        public_key: integrator_key.verifying_key(),
        label: Some("Integrator: Acme POS".parse().expect("a label")),
        scopes: Scopes::parse("pay,inquiry").unwrap(),
        expires_at: None,
    };
    let version = participants::add_key(&*app.state.store, app.clock.now(), &owner, added).await.unwrap();
    assert_eq!(version, 2);
    let integrator =
        app.client_builder(&merchant.client_id, integrator_key.clone()).key_version(version).build().unwrap();

    let payment = integrator.pay(&pay_request(&unique_id("SI"), "USD", 500)).await.unwrap();
    assert_eq!(payment.result.result_code, "SUCCESS", "the integrator pays on the merchant's account");
    let id = json!({ "paymentId": payment.payment_id.clone().unwrap() });
    assert_eq!(result_of(&merchant.client, Api::InquiryPayment, id.clone()).await.result_code, "SUCCESS");
    let outside = result_of(&integrator, Api::Cancel, id.clone()).await;
    assert_eq!(outside.result_code, "ACCESS_DENIED", "{}", outside.result_message);
    assert!(outside.result_message.contains("keyVersion 2"), "{}", outside.result_message);

    participants::revoke_key(&*app.state.store, app.clock.now(), &owner, version).await.unwrap();
    assert_eq!(result_of(&integrator, Api::InquiryPayment, id.clone()).await.result_code, "KEY_NOT_FOUND");
    assert_eq!(
        result_of(&merchant.client, Api::InquiryPayment, id.clone()).await.result_code,
        "SUCCESS",
        "the merchant's own key works on"
    );

    // An expiring key stops by the clock.
    let temporary_key = SigningKey::generate().unwrap();
    let added = AddedKey {
        public_key: temporary_key.verifying_key(),
        label: Some("Integrator: Short job".parse().expect("a label")),
        scopes: Scopes::ALL,
        expires_at: Some(app.clock.now() + SignedDuration::from_hours(2)),
    };
    let version = participants::add_key(&*app.state.store, app.clock.now(), &owner, added).await.unwrap();
    let temporary =
        app.client_builder(&merchant.client_id, temporary_key).key_version(version).build().unwrap();
    assert_eq!(result_of(&temporary, Api::InquiryPayment, id.clone()).await.result_code, "SUCCESS");
    app.clock.advance(SignedDuration::from_mins(121));
    assert_eq!(result_of(&temporary, Api::InquiryPayment, id.clone()).await.result_code, "KEY_NOT_FOUND");
    assert_eq!(result_of(&merchant.client, Api::InquiryPayment, id.clone()).await.result_code, "SUCCESS");

    // A forged request (signed with a key the merchant never registered) is not recorded.
    let forger = app.client_builder(&merchant.client_id, SigningKey::generate().unwrap()).build().unwrap();
    assert_eq!(result_of(&forger, Api::InquiryPayment, id.clone()).await.result_code, "SIGNATURE_INVALID");
    let revoked_forger = app
        .client_builder(&merchant.client_id, SigningKey::generate().unwrap())
        .key_version(2)
        .build()
        .unwrap();
    assert_eq!(
        result_of(&revoked_forger, Api::InquiryPayment, id.clone()).await.result_code,
        "KEY_NOT_FOUND",
        "a revoked key answers as a missing one"
    );

    // One legitimate request after the forged ones: once its event is written, so is every
    // event queued before it (the trail keeps their order), forged ones included if any were.
    assert_eq!(result_of(&merchant.client, Api::InquiryPayment, id.clone()).await.result_code, "SUCCESS");

    // Each request is recorded with the key version that signed it.
    let events = audit_events(&app, &owner, |events| events.len() >= 9).await;
    let versions: Vec<_> = events
        .iter()
        .rev()
        .map(|event| (event.key_version, event.api.as_str(), event.result_code.as_str()))
        .collect();
    assert_eq!(
        versions,
        [
            (Some(2), "pay", "SUCCESS"),
            (Some(1), "inquiryPayment", "SUCCESS"),
            (Some(2), "cancel", "ACCESS_DENIED"),
            (Some(2), "inquiryPayment", "KEY_NOT_FOUND"),
            (Some(1), "inquiryPayment", "SUCCESS"),
            (Some(3), "inquiryPayment", "SUCCESS"),
            (Some(3), "inquiryPayment", "KEY_NOT_FOUND"),
            (Some(1), "inquiryPayment", "SUCCESS"),
            (Some(1), "inquiryPayment", "SUCCESS"),
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operators_grant_and_revoke_over_the_admin_api() {
    let app = TestApp::spawn().await;
    let merchant = app.merchant().await;
    let isv = app.participant(ParticipantKind::Isv, Environment::Sandbox, None).await;
    let http = reqwest::Client::new();
    let admin = |method: reqwest::Method, path: &str| {
        http.request(method, format!("{}{path}", app.base_url)).bearer_auth(app.admin_token())
    };
    let created = admin(reqwest::Method::POST, "/admin/api/grants")
        .json(&json!({ "merchant": merchant.client_id, "isv": isv.client_id, "scopes": "pay,inquiry", "expiresInDays": 30 }))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    let created: Value = created.json().await.unwrap();
    let token = created["agentToken"].as_str().unwrap().to_owned();
    let grant_id = created["grantId"].as_str().unwrap().to_owned();

    let agent = client_for(&app, &isv, Some(&token));
    let payment = agent.pay(&pay_request(&unique_id("ADMIN"), "USD", 300)).await.unwrap();
    assert_eq!(payment.result.result_code, "SUCCESS");
    let payment_code = order_code(&merchant, "USD", 100).await;
    assert!(payment_code.payment_id.is_some());

    let listed: Value = admin(reqwest::Method::GET, &format!("/admin/api/grants?clientId={}", isv.client_id))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(listed["grants"][0]["grantId"], grant_id.as_str());
    assert!(listed["grants"][0].get("agentToken").is_none(), "a listing never shows the token");

    let revoked =
        admin(reqwest::Method::POST, &format!("/admin/api/grants/{grant_id}/revoke")).send().await.unwrap();
    assert_eq!(revoked.status(), 200);
    let inquiry = json!({ "paymentId": payment.payment_id.clone().unwrap() });
    assert_eq!(result_of(&agent, Api::InquiryPayment, inquiry).await.result_code, "ACCESS_DENIED");

    let owner = ClientId::parse(&merchant.client_id).unwrap();
    audit_events(&app, &owner, |events| {
        events.first().is_some_and(|newest| newest.result_code == "ACCESS_DENIED")
    })
    .await;
    let audit: Value =
        admin(reqwest::Method::GET, &format!("/admin/api/audit?clientId={}&limit=1", merchant.client_id))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
    assert_eq!(audit["events"][0]["resultCode"], "ACCESS_DENIED");
    assert_eq!(audit["events"][0]["agent"], isv.client_id.as_str());
    assert_eq!(audit["events"].as_array().unwrap().len(), 1, "the limit holds");

    let cases = [
        (json!({ "merchant": merchant.client_id, "isv": isv.client_id, "scopes": "pay,steal" }), 400),
        (json!({ "merchant": merchant.client_id, "isv": merchant.client_id, "scopes": "pay" }), 400),
        (json!({ "merchant": merchant.client_id }), 400),
    ];
    for (body, status) in cases {
        let answer = admin(reqwest::Method::POST, "/admin/api/grants").json(&body).send().await.unwrap();
        assert_eq!(answer.status(), status, "{body}");
    }
    let unauthorised =
        http.post(format!("{}/admin/api/grants", app.base_url)).json(&json!({})).send().await.unwrap();
    assert_eq!(unauthorised.status(), 401);
    let missing =
        admin(reqwest::Method::POST, "/admin/api/participants/NOBODY/keys/1/revoke").send().await.unwrap();
    assert_eq!(missing.status(), 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_rotate_with_an_overlap_for_participants_and_the_platform() {
    let app = TestApp::spawn().await;
    let merchant = app.merchant().await;
    let owner = ClientId::parse(&merchant.client_id).unwrap();

    // A participant holds several active versions: the new one works, and so does the old.
    let new_key = SigningKey::generate().unwrap();
    let added =
        AddedKey { public_key: new_key.verifying_key(), label: None, scopes: Scopes::ALL, expires_at: None };
    let version = participants::add_key(&*app.state.store, app.clock.now(), &owner, added).await.unwrap();
    let rotated = app.client_builder(&merchant.client_id, new_key).key_version(version).build().unwrap();
    let paid = rotated.pay(&pay_request(&unique_id("ROT"), "USD", 200)).await.unwrap();
    assert_eq!(paid.result.result_code, "SUCCESS");
    let old = merchant.client.pay(&pay_request(&unique_id("ROT"), "USD", 200)).await.unwrap();
    assert_eq!(old.result.result_code, "SUCCESS", "the old version works until revoked");

    // The platform rotates: the new version is published at once, so that clients can take it
    // up first, but signs only once activated; the old one signs until then.
    let old_platform_key = app.platform_key.clone();
    let data_dir = ocpay_server::data_dir::DataDir::open(&app.data_dir.path().join("data")).unwrap();
    assert_eq!(data_dir.rotate_platform_key().unwrap(), 2);
    app.clock.advance(SignedDuration::from_secs(2));
    async fn published(base_url: &str) -> Vec<(u64, bool, String)> {
        let keys: Value = reqwest::get(format!("{base_url}/.well-known/ocpay/platform-keys"))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        keys["keys"]
            .as_array()
            .unwrap()
            .iter()
            .map(|key| {
                let pem = key["publicKey"].as_str().unwrap().to_owned();
                (key["keyVersion"].as_u64().unwrap(), key["signing"].as_bool().unwrap(), pem)
            })
            .collect()
    }
    let versions = |keys: &[(u64, bool, String)]| keys.iter().map(|(v, s, _)| (*v, *s)).collect::<Vec<_>>();
    assert_eq!(versions(&published(&app.base_url).await), [(1, true), (2, false)]);
    let still_old = merchant.client.pay(&pay_request(&unique_id("ROT"), "USD", 200)).await.unwrap();
    assert_eq!(still_old.result.result_code, "SUCCESS", "the old key signs until the new one is activated");
    // The version that signs cannot be retired: nobody could verify what it signs.
    let refused = data_dir.retire_platform_key(1).unwrap_err().to_string();
    assert!(refused.contains("signing version"), "{refused}");
    let app = app.crash_and_restart().await;
    assert_eq!(app.platform_key, old_platform_key, "a restart does not change the signing key");
    let new_platform_key = data_dir.platform_keys().unwrap().published[1].1.clone();

    // Activated, version 2 signs within a second, without a restart, and is published as signing.
    data_dir.activate_platform_key(2).unwrap();
    app.clock.advance(SignedDuration::from_secs(2));
    let keys = published(&app.base_url).await;
    assert_eq!(versions(&keys), [(1, false), (2, true)]);
    assert_eq!(keys[0].2, old_platform_key.to_pem());
    assert_eq!(keys[1].2, new_platform_key.to_pem());

    // A client that trusts only the old key refuses the new signatures; one told of the new
    // version accepts them.
    let trusting = |key: ocpay_protocol::VerifyingKey| {
        let clock = app.clock.clone();
        Client::builder(&app.base_url, &merchant.client_id, merchant.key.clone(), key)
            .attempts_max(1)
            .clock(move || clock.now())
    };
    let stale = trusting(old_platform_key.clone()).build().unwrap();
    let refused = stale.pay(&pay_request(&unique_id("ROT"), "USD", 200)).await;
    assert!(matches!(refused, Err(ocpay_sdk::SdkError::ResponseSignature(_))), "{refused:?}");
    let updated =
        trusting(old_platform_key.clone()).platform_key_version(2, new_platform_key.clone()).build().unwrap();
    let paid = updated.pay(&pay_request(&unique_id("ROT"), "USD", 200)).await.unwrap();
    assert_eq!(paid.result.result_code, "SUCCESS");

    // Once it no longer signs, the old version may be retired; what signs stays published.
    data_dir.retire_platform_key(1).unwrap();
    app.clock.advance(SignedDuration::from_secs(2));
    assert_eq!(versions(&published(&app.base_url).await), [(2, true)]);
    let only_new = trusting(new_platform_key.clone()).build().unwrap();
    let paid = only_new.pay(&pay_request(&unique_id("ROT"), "USD", 200)).await.unwrap();
    assert_eq!(paid.result.result_code, "SUCCESS");
    let app = app.crash_and_restart().await;
    assert_eq!(app.platform_key, new_platform_key, "after a restart too");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_isv_registers_and_pays_for_an_acquirer_that_authorised_it() {
    let app = TestApp::spawn().await;
    let acquirer = app.acquirer().await;
    let isv = app.participant(ParticipantKind::Isv, Environment::Sandbox, None).await;
    let issued = authorise(&app, &acquirer, &isv, "registration,pay").await;
    let agent = client_for(&app, &isv, Some(issued.token.expose()));

    let registered =
        agent.register(&registration_request(&unique_id("REG"), "M-ISV", "S-ISV")).await.unwrap();
    assert_eq!(registered.result.result_code, "SUCCESS", "{:?}", registered.result);
    let unregistered = agent.pay(&pay_request_for(&unique_id("PAY"), "M-ISV", "S-ISV", 500)).await.unwrap();
    assert_eq!(unregistered.result.result_code, "MERCHANT_NOT_REGISTERED", "under review");
    app.clock
        .advance(SignedDuration::from_secs(app.state.config.sandbox_registration_review_seconds as i64 + 1));
    app.background_rounds().await;
    let paid = agent.pay(&pay_request_for(&unique_id("PAY"), "M-ISV", "S-ISV", 500)).await.unwrap();
    assert_eq!(
        paid.result.result_code, "SUCCESS",
        "approved by the sandbox's review, the acquirer's store is payable"
    );

    // Without the registration scope, the same ISV cannot register for it.
    let pay_only = authorise(&app, &acquirer, &isv, "pay").await;
    let limited = client_for(&app, &isv, Some(pay_only.token.expose()));
    let refused =
        limited.register(&registration_request(&unique_id("REG"), "M-ISV-2", "S-ISV")).await.unwrap();
    assert_eq!(refused.result.result_code, "ACCESS_DENIED");
}

/// An operator suspends a merchant: its own signed requests and an ISV's for it answer
/// `ACCESS_DENIED` saying why, while a forged request still fails its signature first; a
/// resumption lets both through from the next request.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_suspended_participant_and_an_isv_acting_for_it_are_refused_until_resumed() {
    let app = TestApp::spawn().await;
    let merchant = app.merchant().await;
    let isv = app.participant(ParticipantKind::Isv, Environment::Sandbox, None).await;
    let issued = authorise(&app, &merchant, &isv, "pay,inquiry").await;
    let agent = client_for(&app, &isv, Some(issued.token.expose()));
    let client_id = ClientId::parse(&merchant.client_id).unwrap();
    let store = &*app.state.store;

    participants::set_suspended(store, app.clock.now(), &client_id, true).await.unwrap();
    let own = merchant.client.pay(&pay_request(&unique_id("SUSP"), "USD", 100)).await.unwrap();
    assert_eq!(own.result.result_code, "ACCESS_DENIED");
    assert!(own.result.result_message.contains("the participant is suspended"), "{:?}", own.result);
    let for_it = agent.pay(&pay_request(&unique_id("SUSP"), "USD", 100)).await.unwrap();
    assert_eq!(for_it.result.result_code, "ACCESS_DENIED");
    assert!(
        for_it.result.result_message.contains("the merchant that issued it is suspended"),
        "{:?}",
        for_it.result
    );
    let forger = app.client_builder(&merchant.client_id, SigningKey::generate().unwrap()).build().unwrap();
    let forged = forger.pay(&pay_request(&unique_id("SUSP"), "USD", 100)).await.unwrap();
    assert_eq!(forged.result.result_code, "SIGNATURE_INVALID", "the signature is checked first");

    participants::set_suspended(store, app.clock.now(), &client_id, false).await.unwrap();
    let own = merchant.client.pay(&pay_request(&unique_id("SUSP"), "USD", 100)).await.unwrap();
    assert_eq!(own.result.result_code, "SUCCESS", "resumed from the next request");
    let for_it = agent.pay(&pay_request(&unique_id("SUSP"), "USD", 100)).await.unwrap();
    assert_eq!(for_it.result.result_code, "SUCCESS");
}
