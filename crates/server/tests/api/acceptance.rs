//! The go-live acceptance cases, checked from a sandbox participant's own traffic: each passes
//! from traffic made right through the Rust SDK, and stays open for traffic made wrong (no retry
//! after `U`, a retry with a new request id, polling past expiry, a notification never
//! acknowledged); and the go-live checklist of the live twin.

use std::time::{Duration, Instant};

use jiff::SignedDuration;
use ocpay_core::ids::ClientId;
use ocpay_core::participant::{Environment, ParticipantKind};
use ocpay_protocol::datetime;
use ocpay_protocol::model::Amount;
use ocpay_protocol::payments::{CancelRequest, InquiryPaymentRequest, PayRequest, PayResponse};
use ocpay_protocol::refunds::{InquiryRefundRequest, RefundRequest};
use ocpay_server::service::acceptance::{Case, CaseReport, CheckItem, GoLive, go_live};
use ocpay_store::{ApiLogFilter, AuditEvent, SftpAccountChange};
use ocpay_testkit::{Clock, Receiver, Reply, TestApp, TestParticipant, pay_request, unique_id};
use serde_json::json;

use crate::helpers::{code_value, wallet_pay};

/// The grace the cases give an integration, as the defaults set it.
const GRACE: SignedDuration = SignedDuration::from_secs(60);

/// A till: a sandbox merchant's SDK client that counts its requests, so that a report is read
/// once the API log's writer has committed every one of them.
struct Till<'a> {
    app: &'a TestApp,
    merchant: TestParticipant,
    sent: usize,
}

impl<'a> Till<'a> {
    async fn new(app: &'a TestApp, receiver: &Receiver) -> Till<'a> {
        Till { app, merchant: app.merchant_notified_at(receiver).await, sent: 0 }
    }

    async fn pay(&mut self, request: &PayRequest) -> PayResponse {
        self.sent += 1;
        self.merchant.client.pay(request).await.expect("pay answers")
    }

    /// An order code of `minor` US cents under a new request id, answered `S`.
    async fn code(&mut self, minor: i64) -> PayResponse {
        let answer = self.pay(&pay_request(&unique_id("PR"), "USD", minor)).await;
        assert_eq!(answer.result.result_code, "SUCCESS", "{:?}", answer.result);
        answer
    }

    /// An order code of `minor` US cents, paid by the test payer.
    async fn paid(&mut self, minor: i64) -> PayResponse {
        let answer = self.code(minor).await;
        let (status, paid) = wallet_pay(self.app, &code_value(&answer), json!({})).await;
        assert_eq!((status, paid["status"].as_str()), (200, Some("SUCCESS")), "{paid}");
        answer
    }

    async fn inquire(&mut self, payment_request_id: &str) -> Option<String> {
        self.sent += 1;
        let request =
            InquiryPaymentRequest { payment_id: None, payment_request_id: Some(payment_request_id.into()) };
        self.merchant.client.inquire_payment(&request).await.expect("inquiryPayment answers").payment_status
    }

    async fn cancel(&mut self, payment: &PayResponse) {
        self.sent += 1;
        let request = CancelRequest { payment_id: payment.payment_id.clone(), payment_request_id: None };
        let answer = self.merchant.client.cancel(&request).await.expect("cancel answers");
        assert_eq!(answer.result.result_code, "SUCCESS", "{:?}", answer.result);
    }

    async fn refund(&mut self, payment: &PayResponse, request_id: &str, minor: i64) -> String {
        self.sent += 1;
        let request = RefundRequest {
            refund_request_id: Some(request_id.into()),
            payment_id: payment.payment_id.clone(),
            refund_amount: Some(Amount::new("USD", minor)),
            ..RefundRequest::default()
        };
        self.merchant.client.refund(&request).await.expect("refund answers").result.result_code
    }

    async fn inquire_refund(&mut self, request_id: &str) -> Option<String> {
        self.sent += 1;
        let request = InquiryRefundRequest {
            refund_request_id: Some(request_id.into()),
            ..InquiryRefundRequest::default()
        };
        self.merchant.client.inquire_refund(&request).await.expect("inquiryRefund answers").refund_status
    }

    /// The go-live report, once the API log holds every request sent.
    async fn report(&self) -> GoLive {
        let client_id = ClientId::parse(&self.merchant.client_id).unwrap();
        let started = Instant::now();
        loop {
            let limit = u32::try_from(self.sent).unwrap() + 1;
            let logged = self
                .app
                .state
                .store
                .api_log(&client_id, &ApiLogFilter::default(), None, limit)
                .await
                .unwrap();
            if logged.len() >= self.sent {
                break;
            }
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "{} of {} requests logged",
                logged.len(),
                self.sent
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        go_live(&self.app.state.context, &client_id).await.expect("the report is made")
    }

    async fn case(&self, case: Case) -> CaseReport {
        self.report().await.cases.into_iter().find(|report| report.case == case).unwrap()
    }
}

fn assert_passed(report: &CaseReport) {
    assert!(report.passed, "{}: {:?}", report.case.as_str(), report.missing);
    assert!(!report.evidence.is_empty(), "{} links its requests", report.case.as_str());
}

fn assert_open(report: &CaseReport, says: &str) {
    assert!(!report.passed, "{} is open", report.case.as_str());
    let missing = report.missing.as_deref().unwrap_or_default();
    assert!(missing.contains(says), "{}: {missing:?} should say {says:?}", report.case.as_str());
}

/// A pay request of `minor` whose code expires `seconds` from now.
fn expiring(app: &TestApp, minor: i64, seconds: i64) -> PayRequest {
    let mut request = pay_request(&unique_id("PR"), "USD", minor);
    request.payment_expiry_time =
        Some(datetime::format(app.clock.now() + SignedDuration::from_secs(seconds)));
    request
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_case_passes_from_traffic_made_right() {
    let app = TestApp::spawn_with(|config| config.sandbox_slow_answer_ms = 1_000).await;
    let receiver = Receiver::start(app.platform_key.clone()).await;
    let mut till = Till::new(&app, &receiver).await;
    let fresh = till.report().await;
    assert!(fresh.cases.iter().all(|case| !case.passed && case.missing.is_some()));
    assert_eq!(fresh.cases.len(), Case::ALL.len());
    assert!(!fresh.cases_passed && !fresh.ready);

    // Payment 1: paid, and the till inquires until it sees SUCCESS.
    let one = till.paid(1_000).await;
    let one_id = one.payment_request_id.clone().unwrap();
    assert_eq!(till.inquire(&one_id).await.as_deref(), Some("SUCCESS"));
    // Payment 2: shown, polled, cancelled.
    let two = till.code(1_000).await;
    assert_eq!(till.inquire(two.payment_request_id.as_deref().unwrap()).await.as_deref(), Some("PROCESSING"));
    till.cancel(&two).await;
    // Refund 1 and Refund 2.
    let full = till.paid(1_000).await;
    assert_eq!(till.refund(&full, &unique_id("RR"), 1_000).await, "SUCCESS");
    let parts = till.paid(1_000).await;
    assert_eq!(till.refund(&parts, &unique_id("RR"), 300).await, "SUCCESS");
    assert_eq!(till.refund(&parts, &unique_id("RR"), 200).await, "SUCCESS");
    // 9901: a U, retried with the same paymentRequestId.
    let unknown = pay_request(&unique_id("PR"), "USD", 9901);
    assert_eq!(till.pay(&unknown).await.result.result_code, "UNKNOWN_EXCEPTION");
    assert_eq!(till.pay(&unknown).await.result.result_code, "SUCCESS");
    // 9902: the client times out; the till inquires by the paymentRequestId.
    let impatient = app
        .client_builder(&till.merchant.client_id, till.merchant.key.clone())
        .timeout(Duration::from_millis(300))
        .build()
        .unwrap();
    let slow = pay_request(&unique_id("PR"), "USD", 9902);
    till.sent += 1;
    assert!(impatient.pay(&slow).await.is_err(), "the client gave up");
    assert_eq!(till.inquire(&slow.payment_request_id.clone().unwrap()).await.as_deref(), Some("PROCESSING"));
    // 9903: a U inquiry, inquired again.
    let inquired = till.code(9903).await;
    let inquired_id = inquired.payment_request_id.clone().unwrap();
    assert_eq!(till.inquire(&inquired_id).await, None, "U: no status");
    assert_eq!(till.inquire(&inquired_id).await.as_deref(), Some("PROCESSING"));
    // Refund 9901: a U, retried with the same refundRequestId.
    let big = till.paid(20_000).await;
    let refund_id = unique_id("RR");
    assert_eq!(till.refund(&big, &refund_id, 9901).await, "UNKNOWN_EXCEPTION");
    assert_eq!(till.refund(&big, &refund_id, 9901).await, "SUCCESS");
    // Refund 9902: processing; the till learns its outcome once it completed.
    let async_id = unique_id("RR");
    assert_eq!(till.refund(&big, &async_id, 9902).await, "REFUND_IN_PROCESS");
    // Polling: a short code, polled while valid, left unpaid.
    let short = expiring(&app, 1_000, 120);
    till.pay(&short).await;
    let short_id = short.payment_request_id.clone().unwrap();
    assert_eq!(till.inquire(&short_id).await.as_deref(), Some("PROCESSING"));
    // 9904: the first attempt's acknowledgement is not counted; the retry's is.
    till.paid(9904).await;
    app.background_rounds().await;

    // Each payment's notification was acknowledged; then two minutes on, the 9904 retry.
    app.clock.advance(SignedDuration::from_mins(2));
    app.background_rounds().await;
    app.clock.advance(GRACE + SignedDuration::from_secs(1));
    app.background_rounds().await;
    assert_eq!(till.inquire_refund(&async_id).await.as_deref(), Some("FAIL"), "completed, and learned");

    let report = till.report().await;
    for case in &report.cases {
        assert_passed(case);
    }
    assert!(report.cases_passed);
    let checklist: Vec<_> = report.checklist.iter().map(|item| (item.item, item.done)).collect();
    assert_eq!(
        checklist,
        [
            (CheckItem::CasesPassed, true),
            (CheckItem::LiveKey, false),
            (CheckItem::LiveNotifyUrl, false),
            (CheckItem::Sftp, false)
        ]
    );
    assert!(
        report.checklist[1].detail.contains(&format!("ask the operator to create {}", report.live_client_id))
    );
    assert!(!report.ready);
    assert_eq!(
        go_live(&app.state.context, &ClientId::parse(&report.live_client_id).unwrap()).await.unwrap(),
        report,
        "either twin names both"
    );
    let json = serde_json::to_value(&report).unwrap();
    assert_eq!(json["cases"][0]["case"], "payment-1");
    assert_eq!(json["checklist"][3]["item"], "sftp");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_u_answer_not_retried_or_retried_with_a_new_id_stays_open() {
    let app = TestApp::spawn().await;
    let receiver = Receiver::start(app.platform_key.clone()).await;
    let mut till = Till::new(&app, &receiver).await;
    let retried = pay_request(&unique_id("PR"), "USD", 9901);
    till.pay(&retried).await;
    till.pay(&retried).await;
    assert_passed(&till.case(Case::PayUnknownRetried).await);

    // Later the till changes: it gives up on a U. The latest instance decides.
    let abandoned = pay_request(&unique_id("PR"), "USD", 9901);
    assert_eq!(till.pay(&abandoned).await.result.result_code, "UNKNOWN_EXCEPTION");
    assert_passed(&till.case(Case::PayUnknownRetried).await);
    app.clock.advance(GRACE + SignedDuration::from_secs(1));
    let report = till.case(Case::PayUnknownRetried).await;
    assert_open(&report, "was not retried");
    assert_eq!(report.evidence.len(), 1);

    // Then it retries with a new paymentRequestId, which answers U too.
    let first = pay_request(&unique_id("PR"), "USD", 9901);
    let second = pay_request(&unique_id("PR"), "USD", 9901);
    till.pay(&first).await;
    till.pay(&second).await;
    let report = till.case(Case::PayUnknownRetried).await;
    let new_id = second.payment_request_id.clone().unwrap();
    assert_open(&report, &format!("retried with a new paymentRequestId {new_id}"));
    assert_eq!(report.evidence.len(), 2);

    // The same for refunds.
    let payment = till.paid(20_000).await;
    let (old, new) = (unique_id("RR"), unique_id("RR"));
    assert_eq!(till.refund(&payment, &old, 9901).await, "UNKNOWN_EXCEPTION");
    assert_eq!(till.refund(&payment, &new, 9901).await, "UNKNOWN_EXCEPTION");
    assert_open(
        &till.case(Case::RefundUnknownRetried).await,
        &format!("retried with a new refundRequestId {new}"),
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_pay_given_up_on_and_a_u_inquiry_not_repeated_stay_open() {
    let app = TestApp::spawn_with(|config| config.sandbox_slow_answer_ms = 800).await;
    let receiver = Receiver::start(app.platform_key.clone()).await;
    let mut till = Till::new(&app, &receiver).await;
    let impatient = app
        .client_builder(&till.merchant.client_id, till.merchant.key.clone())
        .timeout(Duration::from_millis(200))
        .build()
        .unwrap();
    till.sent += 1;
    assert!(impatient.pay(&pay_request(&unique_id("PR"), "USD", 9902)).await.is_err());
    let inquired = till.code(9903).await;
    assert_eq!(till.inquire(inquired.payment_request_id.as_deref().unwrap()).await, None);
    app.clock.advance(GRACE + SignedDuration::from_secs(1));
    let report = till.report().await;
    let case = |case: Case| report.cases.iter().find(|report| report.case == case).unwrap();
    assert_open(case(Case::PayTimeout), "was followed by neither an inquiry nor a retry");
    assert_open(case(Case::InquiryUnknownRetried), "was not repeated");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn polling_past_the_codes_expiry_stays_open_and_says_how_often() {
    let app = TestApp::spawn().await;
    let receiver = Receiver::start(app.platform_key.clone()).await;
    let mut till = Till::new(&app, &receiver).await;
    let short = expiring(&app, 1_000, 120);
    till.pay(&short).await;
    let id = short.payment_request_id.clone().unwrap();
    till.inquire(&id).await;
    app.clock.advance(SignedDuration::from_secs(120) + GRACE + SignedDuration::from_secs(1));
    app.background_rounds().await;
    for _ in 0..3 {
        assert_eq!(till.inquire(&id).await.as_deref(), Some("FAIL"));
    }
    let report = till.case(Case::PollingStopsAtExpiry).await;
    assert_open(
        &report,
        &format!(
            "your till inquired payment {id} 3 times after its code expired: stop polling at expireTime"
        ),
    );
    assert_eq!(report.evidence.len(), 5, "the pay, the inquiry while valid and the three after");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_notification_never_acknowledged_stays_open() {
    let app = TestApp::spawn().await;
    let receiver = Receiver::start(app.platform_key.clone()).await;
    receiver.reply_always(Reply::Status(500));
    let mut till = Till::new(&app, &receiver).await;
    till.paid(9904).await;
    app.background_rounds().await;
    assert_open(&till.case(Case::NotificationRetried).await, "acknowledge its next attempt");
    app.clock.advance(SignedDuration::from_mins(2));
    app.background_rounds().await;
    assert_open(&till.case(Case::NotificationRetried).await, "was sent 2 times and never acknowledged");
    // Payment 1 is open too: nobody saw the payment.
    app.clock.advance(GRACE);
    let paid = till.paid(1_000).await;
    app.background_rounds().await;
    app.clock.advance(GRACE + SignedDuration::from_secs(1));
    let report = till.case(Case::Payment1).await;
    assert_open(&report, &format!("payment {} was paid", paid.payment_request_id.unwrap()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_checklist_follows_the_live_twin() {
    let app = TestApp::spawn().await;
    let live = app.participant(ParticipantKind::Merchant, Environment::Live, None).await;
    let client_id = ClientId::parse(&live.client_id).unwrap();
    let checklist = |report: &GoLive| -> Vec<(CheckItem, bool)> {
        report.checklist.iter().map(|item| (item.item, item.done)).collect()
    };
    let report = go_live(&app.state.context, &client_id).await.unwrap();
    assert_eq!(report.sandbox_client_id, format!("SANDBOX_{}", live.client_id));
    assert_eq!(
        checklist(&report),
        [
            (CheckItem::CasesPassed, false),
            (CheckItem::LiveKey, true),
            (CheckItem::LiveNotifyUrl, false),
            (CheckItem::Sftp, false)
        ]
    );
    assert!(report.checklist[2].detail.contains("no notify URL"), "{:?}", report.checklist[2]);

    let store = &app.state.store;
    let now = app.clock.now();
    store.revoke_participant_key(&client_id, 1, now).await.unwrap();
    let change = ocpay_store::ParticipantChange {
        notify_url: Some(Some("https://merchant.example/live".into())),
        ..Default::default()
    };
    store.update_participant(&client_id, &change).await.unwrap();
    let test_notification = |code: &str| AuditEvent {
        at: app.clock.now(),
        client_id: client_id.clone(),
        key_version: None,
        agent: None,
        merchant: client_id.clone(),
        api: "portal.testNotification".into(),
        idempotency_key: None,
        result_status: if code == "SUCCESS" { "S" } else { "F" }.into(),
        result_code: code.into(),
    };
    store.record_audit(&[test_notification("NOT_ACKNOWLEDGED")]).await.unwrap();
    let report = go_live(&app.state.context, &client_id).await.unwrap();
    assert_eq!(
        checklist(&report),
        [
            (CheckItem::CasesPassed, false),
            (CheckItem::LiveKey, false),
            (CheckItem::LiveNotifyUrl, false),
            (CheckItem::Sftp, false)
        ]
    );
    assert!(report.checklist[1].detail.contains("no active key"));
    assert!(
        report.checklist[2]
            .detail
            .contains("did not acknowledge the latest test notification (NOT_ACKNOWLEDGED)")
    );

    app.clock.advance(SignedDuration::from_secs(1));
    store.record_audit(&[test_notification("SUCCESS")]).await.unwrap();
    // A refused form audited under the same name sent nothing: it does not reopen the item.
    app.clock.advance(SignedDuration::from_secs(1));
    store.record_audit(&[test_notification("FORBIDDEN")]).await.unwrap();
    let key = ocpay_protocol::SigningKey::generate().unwrap().verifying_key();
    let new_key = ocpay_store::NewKey {
        public_key_der: key.spki_der().to_vec(),
        label: None,
        scopes: ocpay_core::access::Scopes::ALL,
        created_at: app.clock.now(),
        expires_at: None,
    };
    store.add_participant_key(&client_id, &new_key).await.unwrap();
    let account = SftpAccountChange {
        client_id: client_id.clone(),
        add_public_key: Some(
            "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl".into(),
        ),
        password_hash: None,
        allowed_networks: None,
    };
    store.upsert_sftp_account(&account, app.clock.now()).await.unwrap();
    let report = go_live(&app.state.context, &client_id).await.unwrap();
    assert_eq!(
        checklist(&report),
        [
            (CheckItem::CasesPassed, false),
            (CheckItem::LiveKey, true),
            (CheckItem::LiveNotifyUrl, true),
            (CheckItem::Sftp, true)
        ]
    );
    assert!(!report.ready, "not while a case is open");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the official Python SDK: scripts/test runs it"]
async fn alipay_python_sdk_traffic_passes_its_cases() {
    let python = crate::interop::python();
    let app = TestApp::spawn().await;
    let receiver = Receiver::start(app.platform_key.clone()).await;
    let mut till = Till::new(&app, &receiver).await;
    let output = crate::interop::run_script_as(
        python,
        &app,
        &till.merchant,
        app.platform_key.to_base64(),
        "acceptance",
    )
    .await;
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "the official SDK failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    // Its requests: pay, inquiryPayment, refund, and pay 9901 twice.
    till.sent = 5;
    let report = till.report().await;
    let case = |case: Case| report.cases.iter().find(|report| report.case == case).unwrap();
    for passed in [Case::Payment1, Case::Refund1, Case::PayUnknownRetried] {
        assert_passed(case(passed));
    }
    assert_eq!(case(Case::PayUnknownRetried).evidence.len(), 2);
    assert_open(case(Case::Payment2), "no unpaid order code cancelled yet");
}
