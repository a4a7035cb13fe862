//! Merchant registrations, end to end through the SDK: idempotency (replays, changed content,
//! concurrent duplicates), one live registration per store, fields named when malformed,
//! inquiries, review by an operator and by the sandbox (with the test clock), the signed
//! registration notification, who may register, and an acquirer's pay for registered and
//! unregistered merchants.

use std::sync::Arc;
use std::time::Duration;

use jiff::SignedDuration;
use ocpay_core::ids::ClientId;
use ocpay_core::participant::{Environment, ParticipantKind};
use ocpay_core::registration::Decision;
use ocpay_protocol::ResultStatus;
use ocpay_protocol::registrations::{
    InquiryRegistrationInfoRequest, InquiryRegistrationStatusRequest, InquiryRegistrationStatusResponse,
    RegistrationRequest, RegistrationResponse, StoreRegistrationInfo,
};
use ocpay_sdk::webhook::{self, Delivery};
use ocpay_server::service::registrations::{self, ReviewError};
use ocpay_store::NotificationKind;
use ocpay_testkit::{
    Clock, Receiver, TestApp, TestParticipant, pay_request, pay_request_for, registration_request, unique_id,
};
use serde_json::json;

use crate::helpers::{assert_ledger_sound, code_value, wallet_pay};

async fn register(acquirer: &TestParticipant, request: &RegistrationRequest) -> RegistrationResponse {
    acquirer.client.register(request).await.expect("registration answers")
}

fn code(result: &ocpay_protocol::AmsResult) -> (&str, ResultStatus) {
    (result.result_code.as_str(), result.result_status)
}

async fn status(acquirer: &TestParticipant, request_id: &str) -> InquiryRegistrationStatusResponse {
    let request = InquiryRegistrationStatusRequest {
        registration_request_id: Some(request_id.into()),
        ..InquiryRegistrationStatusRequest::default()
    };
    acquirer.client.inquire_registration_status(&request).await.expect("inquiryRegistrationStatus answers")
}

/// The registration's status and reject reasons, as the acquirer reads them.
async fn status_of(acquirer: &TestParticipant, request_id: &str) -> (String, Option<String>) {
    let answer = status(acquirer, request_id).await;
    let result = answer.registration_result.expect("a registration result");
    (result.registration_status, result.reject_reasons)
}

/// Waits (up to five seconds) for the timer job to take a registration out of `PROCESSING`.
async fn decided(acquirer: &TestParticipant, request_id: &str) -> (String, Option<String>) {
    for _ in 0..500 {
        let now = status_of(acquirer, request_id).await;
        if now.0 != "PROCESSING" {
            return now;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("{request_id} was never decided")
}

/// Registers a store and has an operator decide it.
async fn registered(
    app: &TestApp,
    acquirer: &TestParticipant,
    merchant: &str,
    store: &str,
    decision: Option<Decision>,
) -> String {
    let request_id = unique_id("REG");
    let answer = register(acquirer, &registration_request(&request_id, merchant, store)).await;
    assert_eq!(code(&answer.result), ("SUCCESS", ResultStatus::S), "{:?}", answer.result);
    if let Some(decision) = decision {
        let owner = ClientId::parse(&acquirer.client_id).unwrap();
        registrations::review(&*app.state.store, &request_id, Some(&owner), &decision, app.clock.now())
            .await
            .expect("the operator decides");
    }
    request_id
}

/// A server whose sandbox review never comes within a test: only operators decide.
async fn reviewed_by_hand() -> TestApp {
    TestApp::spawn_with(|config| config.sandbox_registration_review_seconds = 30 * 86_400).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_registration_is_idempotent_and_inquirable() {
    let app = reviewed_by_hand().await;
    let acquirer = app.acquirer().await;
    let request = registration_request("REG-1", "M-BAKERY", "S-1");
    let first = register(&acquirer, &request).await;
    assert_eq!(code(&first.result), ("SUCCESS", ResultStatus::S), "{:?}", first.result);
    assert_eq!(first.pass_through_info.as_deref(), Some("pass-REG-1"), "passThroughInfo is echoed");
    assert_eq!(register(&acquirer, &request).await, first, "a replay gets the same answer");

    let answer = status(&acquirer, "REG-1").await;
    assert_eq!(code(&answer.result), ("SUCCESS", ResultStatus::S));
    let result = answer.registration_result.clone().unwrap();
    assert_eq!((result.registration_status.as_str(), result.reject_reasons), ("PROCESSING", None));
    let psp = answer.psp_registration_result_list.clone().unwrap();
    assert_eq!(psp.len(), 1);
    assert_eq!(psp[0].registration_result.registration_status, "PROCESSING");
    let by_merchant = InquiryRegistrationStatusRequest {
        reference_merchant_id: Some("M-BAKERY".into()),
        reference_store_id: Some("S-1".into()),
        ..InquiryRegistrationStatusRequest::default()
    };
    assert_eq!(acquirer.client.inquire_registration_status(&by_merchant).await.unwrap(), answer);

    let info_request = InquiryRegistrationInfoRequest {
        reference_merchant_id: Some("M-BAKERY".into()),
        reference_store_id: None,
    };
    let info = acquirer.client.inquire_registration_info(&info_request).await.unwrap();
    assert_eq!(code(&info.result), ("SUCCESS", ResultStatus::S));
    assert_eq!(info.merchant_info, request.merchant_info);
    assert_eq!(info.store_info, request.store_info);
    assert_eq!(info.product_codes, request.product_codes);

    let mut changed = request.clone();
    changed.store_info.as_mut().unwrap().store_name = Some("Another name".into());
    let answer = register(&acquirer, &changed).await;
    assert_eq!(code(&answer.result), ("REPEAT_REQ_INCONSISTENT", ResultStatus::F));
    assert!(answer.result.result_message.starts_with("registrationRequestId:"), "{:?}", answer.result);
    let mut other_url = request.clone();
    other_url.registration_notify_url = Some("https://acquirer.example/elsewhere".into());
    assert_eq!(
        code(&register(&acquirer, &other_url).await.result),
        ("SUCCESS", ResultStatus::S),
        "not significant"
    );

    let again = register(&acquirer, &registration_request("REG-2", "M-BAKERY", "S-1")).await;
    assert_eq!(code(&again.result), ("REGISTRATION_UNDER_REVIEW", ResultStatus::F));
    let other_store = register(&acquirer, &registration_request("REG-3", "M-BAKERY", "S-2")).await;
    assert_eq!(code(&other_store.result), ("SUCCESS", ResultStatus::S), "each store is registered");

    let missing = status(&acquirer, "REG-NEVER").await;
    assert_eq!(
        (code(&missing.result), missing.registration_result),
        (("RECORD_NOT_FOUND", ResultStatus::F), None)
    );
    let mismatched = InquiryRegistrationStatusRequest {
        registration_request_id: Some("REG-1".into()),
        reference_merchant_id: Some("M-OTHER".into()),
        ..InquiryRegistrationStatusRequest::default()
    };
    let answer = acquirer.client.inquire_registration_status(&mismatched).await.unwrap();
    assert_eq!(code(&answer.result), ("RECORD_NOT_FOUND", ResultStatus::F));
    let nowhere = InquiryRegistrationInfoRequest {
        reference_merchant_id: Some("M-NONE".into()),
        reference_store_id: None,
    };
    let answer = acquirer.client.inquire_registration_info(&nowhere).await.unwrap();
    assert_eq!((code(&answer.result), answer.merchant_info), (("RECORD_NOT_FOUND", ResultStatus::F), None));
    let empty = InquiryRegistrationStatusRequest::default();
    let answer = acquirer.client.inquire_registration_status(&empty).await.unwrap();
    assert_eq!(code(&answer.result), ("PARAM_ILLEGAL", ResultStatus::F));

    let stranger = app.acquirer().await;
    assert_eq!(
        code(&status(&stranger, "REG-1").await.result),
        ("RECORD_NOT_FOUND", ResultStatus::F),
        "private"
    );
    let theirs = register(&stranger, &registration_request("REG-1", "M-BAKERY", "S-1")).await;
    assert_eq!(code(&theirs.result), ("SUCCESS", ResultStatus::S), "ids are per acquirer");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_duplicate_registrations_create_one() {
    let app = reviewed_by_hand().await;
    let acquirer = Arc::new(app.acquirer().await);
    let request = registration_request("REG-RACE", "M-RACE", "S-RACE");
    let mut racers = tokio::task::JoinSet::new();
    for _ in 0..20 {
        let (acquirer, request) = (acquirer.clone(), request.clone());
        racers.spawn(async move { acquirer.client.register(&request).await.expect("registration answers") });
    }
    while let Some(answer) = racers.join_next().await {
        assert_eq!(code(&answer.unwrap().result), ("SUCCESS", ResultStatus::S));
    }
    let owner = ClientId::parse(&acquirer.client_id).unwrap();
    let stored = app.state.store.registrations(Some(&owner), None, 100).await.unwrap();
    assert_eq!(stored.len(), 1, "exactly one registration");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_registrations_name_their_field() {
    let app = reviewed_by_hand().await;
    let acquirer = app.acquirer().await;
    type Spoil = fn(&mut RegistrationRequest);
    let cases: Vec<(&str, Spoil)> = vec![
        ("registrationRequestId:", |request| request.registration_request_id = None),
        ("registrationNotifyURL:", |request| {
            request.registration_notify_url = Some("ftp://x.example".into())
        }),
        ("passThroughInfo:", |request| request.pass_through_info = Some("p".repeat(2049))),
        ("merchantInfo:", |request| request.merchant_info = None),
        ("merchantInfo.referenceMerchantId:", |request| {
            request.merchant_info.as_mut().unwrap().reference_merchant_id = None
        }),
        ("merchantInfo.merchantMCC:", |request| {
            request.merchant_info.as_mut().unwrap().merchant_mcc = Some("54a2".into())
        }),
        ("productCodes:", |request| request.product_codes = None),
        ("productCodes:", |request| request.product_codes = Some(vec![])),
        ("productCodes[1]:", |request| {
            request.product_codes = Some(vec!["IN_STORE_PAYMENT".into(), "CASHIER_PAYMENT".into()])
        }),
        ("storeInfo:", |request| request.store_info = None),
        ("storeInfo.referenceStoreId:", |request| {
            request.store_info.as_mut().unwrap().reference_store_id = Some("s".repeat(33))
        }),
        ("storeInfo.storeName:", |request| {
            request.store_info = Some(StoreRegistrationInfo {
                reference_store_id: Some("S-1".into()),
                ..StoreRegistrationInfo::default()
            })
        }),
        ("storeInfo.storeMCC:", |request| {
            request.store_info.as_mut().unwrap().store_mcc = Some("12345".into())
        }),
        ("storeInfo.storeAddress.region:", |request| {
            request.store_info.as_mut().unwrap().store_address.as_mut().unwrap().region =
                Some("Singapore".into())
        }),
    ];
    for (field, spoil) in cases {
        let mut request = registration_request(&unique_id("REG"), "M-BAD", "S-1");
        spoil(&mut request);
        let answer = register(&acquirer, &request).await;
        assert_eq!(code(&answer.result), ("PARAM_ILLEGAL", ResultStatus::F), "{field}");
        assert!(answer.result.result_message.starts_with(field), "{field}: {}", answer.result.result_message);
    }
    let owner = ClientId::parse(&acquirer.client_id).unwrap();
    assert!(
        app.state.store.registrations(Some(&owner), None, 10).await.unwrap().is_empty(),
        "nothing stored"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_acquirers_call_the_registration_apis() {
    let app = reviewed_by_hand().await;
    let merchant = app.merchant().await;
    let answer = register(&merchant, &registration_request("REG-M", "M-1", "S-1")).await;
    assert_eq!(code(&answer.result), ("ACCESS_DENIED", ResultStatus::F));
    assert!(answer.result.result_message.contains("MERCHANT"), "{:?}", answer.result);
    assert_eq!(code(&status(&merchant, "REG-M").await.result), ("ACCESS_DENIED", ResultStatus::F));
    let info = InquiryRegistrationInfoRequest {
        reference_merchant_id: Some("M-1".into()),
        reference_store_id: None,
    };
    let answer = merchant.client.inquire_registration_info(&info).await.unwrap();
    assert_eq!(code(&answer.result), ("ACCESS_DENIED", ResultStatus::F));
    let isv = app.participant(ParticipantKind::Isv, Environment::Sandbox, None).await;
    let answer = register(&isv, &registration_request("REG-I", "M-1", "S-1")).await;
    assert_eq!(code(&answer.result), ("ACCESS_DENIED", ResultStatus::F));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_approves_or_rejects_and_the_acquirer_is_notified() {
    // A live acquirer: nothing decides its registrations but an operator.
    let app = TestApp::spawn_with(|config| config.notify_allow_private_addresses = true).await;
    let receiver = Receiver::start(app.platform_key.clone()).await;
    let acquirer = app.participant(ParticipantKind::Acquirer, Environment::Live, None).await;
    let owner = ClientId::parse(&acquirer.client_id).unwrap();
    for (request_id, merchant) in [("REG-OK", "M-OK"), ("REG-NO", "M-NO")] {
        let mut request = registration_request(request_id, merchant, "S-1");
        request.registration_notify_url = Some(format!("{}/registrations", receiver.url));
        assert_eq!(code(&register(&acquirer, &request).await.result), ("SUCCESS", ResultStatus::S));
    }
    app.clock.advance(SignedDuration::from_hours(24));
    app.background_rounds().await;
    assert_eq!(
        status_of(&acquirer, "REG-OK").await.0,
        "PROCESSING",
        "a live registration waits for an operator"
    );

    let store = &*app.state.store;
    let approved =
        registrations::review(store, "REG-OK", None, &Decision::Approve, app.clock.now()).await.unwrap();
    let reject = Decision::Reject { reason: "the business licence has expired".parse().expect("a reason") };
    let found = registrations::find(store, "REG-NO", Some(&owner)).await.unwrap();
    registrations::review(store, found.terms.id.as_str(), None, &reject, app.clock.now()).await.unwrap();
    assert!(matches!(
        registrations::review(store, "REG-OK", None, &reject, app.clock.now()).await,
        Err(ReviewError::AlreadyDecided { status: "APPROVED", .. })
    ));
    assert!(matches!(
        registrations::review(store, "REG-NEVER", None, &reject, app.clock.now()).await,
        Err(ReviewError::NotFound(_))
    ));

    let delivered = receiver.wait_for(2).await;
    let mut notified = Vec::new();
    for delivery in &delivered {
        assert!(delivery.verified, "signed by the platform");
        assert_eq!(delivery.path, "/merchant/notify/registrations");
        assert_eq!(delivery.client_id, acquirer.client_id);
        let parsed = webhook::registration_notification(
            &app.platform_key,
            &Delivery {
                path: &delivery.path,
                client_id: &delivery.client_id,
                request_time: &delivery.request_time,
                signature: &delivery.signature,
                body: delivery.body.as_bytes(),
            },
        )
        .expect("the SDK verifies and reads it");
        assert_eq!(parsed.notify_type, "REGISTRATION_STATUS");
        assert_eq!(parsed.reference_store_id.as_deref(), Some("S-1"));
        assert_eq!(parsed.psp_registration_result_list[0].registration_result, parsed.registration_result);
        notified.push((
            parsed.registration_request_id,
            parsed.reference_merchant_id,
            parsed.registration_result.registration_status,
            parsed.registration_result.reject_reasons,
        ));
    }
    notified.sort();
    assert_eq!(
        notified,
        [
            (
                "REG-NO".into(),
                "M-NO".into(),
                "REJECTED".into(),
                Some("the business licence has expired".into())
            ),
            ("REG-OK".into(), "M-OK".into(), "APPROVED".into(), None),
        ]
    );
    assert_eq!(status_of(&acquirer, "REG-OK").await, ("APPROVED".into(), None));
    assert_eq!(status_of(&acquirer, "REG-NO").await.1.as_deref(), Some("the business licence has expired"));
    let record = store.notifications(approved.terms.id.as_str()).await.unwrap();
    assert_eq!(record.len(), 1);
    assert_eq!(record[0].0.kind, NotificationKind::RegistrationStatus);

    let twice = register(&acquirer, &registration_request("REG-OK-2", "M-OK", "S-1")).await;
    assert_eq!(code(&twice.result), ("REPEAT_REGISTRATION", ResultStatus::F));
    let retry = register(&acquirer, &registration_request("REG-NO-2", "M-NO", "S-1")).await;
    assert_eq!(code(&retry.result), ("SUCCESS", ResultStatus::S), "a rejected merchant may try again");
    assert_eq!(status_of(&acquirer, "REG-NO-2").await.0, "PROCESSING");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sandbox_reviews_by_itself_when_due() {
    let app = TestApp::spawn_with(|config| config.sandbox_registration_review_seconds = 45).await;
    let acquirer = app.acquirer().await;
    for (request_id, merchant) in [("REG-SB-OK", "M-FINE"), ("REG-SB-NO", "REJECT-ME")] {
        let request = registration_request(request_id, merchant, "S-1");
        assert_eq!(code(&register(&acquirer, &request).await.result), ("SUCCESS", ResultStatus::S));
    }
    app.clock.advance(SignedDuration::from_secs(44));
    app.background_rounds().await;
    assert_eq!(status_of(&acquirer, "REG-SB-OK").await.0, "PROCESSING", "not before the review is due");
    app.clock.advance(SignedDuration::from_secs(1));
    assert_eq!(decided(&acquirer, "REG-SB-OK").await, ("APPROVED".into(), None));
    let (status, reason) = decided(&acquirer, "REG-SB-NO").await;
    assert_eq!(status, "REJECTED");
    assert!(reason.is_some_and(|reason| reason.contains("REJECT")), "the reason says why");
    let answer = acquirer.client.pay(&pay_request_for(&unique_id("PR"), "M-FINE", "S-1", 500)).await.unwrap();
    assert_eq!(code(&answer.result), ("SUCCESS", ResultStatus::S), "approved by the sandbox");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acquirers_pay_only_for_their_approved_merchants() {
    let app = reviewed_by_hand().await;
    let acquirer = app.acquirer().await;
    let other = app.acquirer().await;
    let reject = Decision::Reject { reason: "no".parse().expect("a reason") };
    registered(&app, &acquirer, "M-APPROVED", "S-1", Some(Decision::Approve)).await;
    registered(&app, &acquirer, "M-PENDING", "S-1", None).await;
    registered(&app, &acquirer, "M-REJECTED", "S-1", Some(reject)).await;
    registered(&app, &other, "M-THEIRS", "S-1", Some(Decision::Approve)).await;

    let refused = [
        ("M-NOBODY", "S-1", "order.merchant.referenceMerchantId:", "not registered"),
        ("M-APPROVED", "S-2", "order.merchant.store.referenceStoreId:", "not registered"),
        ("M-PENDING", "S-1", "order.merchant.store.referenceStoreId:", "under review"),
        ("M-REJECTED", "S-1", "order.merchant.store.referenceStoreId:", "rejected"),
        ("M-THEIRS", "S-1", "order.merchant.referenceMerchantId:", "not registered"),
    ];
    for (merchant, store, field, why) in refused {
        let answer =
            acquirer.client.pay(&pay_request_for(&unique_id("PR"), merchant, store, 500)).await.unwrap();
        assert_eq!(code(&answer.result), ("MERCHANT_NOT_REGISTERED", ResultStatus::F), "{merchant}/{store}");
        let message = &answer.result.result_message;
        assert!(message.starts_with(field) && message.contains(why), "{merchant}/{store}: {message}");
        assert_eq!(answer.payment_id, None, "nothing created");
    }

    let request = pay_request_for(&unique_id("PR"), "M-APPROVED", "S-1", 1250);
    let paid = acquirer.client.pay(&request).await.unwrap();
    assert_eq!(code(&paid.result), ("SUCCESS", ResultStatus::S), "{:?}", paid.result);
    let (status, answer) = wallet_pay(&app, &code_value(&paid), json!({})).await;
    assert_eq!((status, answer["status"].as_str()), (200, Some("SUCCESS")), "{answer}");
    let theirs = other.client.pay(&pay_request_for(&unique_id("PR"), "M-THEIRS", "S-1", 100)).await.unwrap();
    assert_eq!(code(&theirs.result), ("SUCCESS", ResultStatus::S), "their own merchant is theirs to use");

    let merchant = app.merchant().await;
    let own = merchant.client.pay(&pay_request(&unique_id("PR"), "USD", 700)).await.unwrap();
    assert_eq!(code(&own.result), ("SUCCESS", ResultStatus::S), "a merchant needs no registration");
    assert_ledger_sound(&app).await;
}
