//! The test notification: one signed notification sent now to a participant's default notify
//! URL, to show that the endpoint is reachable, verifies the platform's signature and
//! acknowledges. It goes out exactly as the notifier's do (`notify::post`: the same URL checks,
//! client, signature, headers, timeout and answer limit), but is no outbox row: it is sent once,
//! never retried, and its answer is returned at once.
//!
//! The body is a `notifyPayment` of a payment that does not exist: `notifyType` is
//! `PAYMENT_RESULT`, the result `SUCCESS`, and `paymentRequestId`, `paymentId` and the
//! `notify-id` header are the same `ocpay-test-<16 hex digits>`, a form no real payment's
//! identifiers take; the amount is 1.00 USD. A handler verifies it as any other notification and
//! answers the success acknowledgement; it should not look the payment up (or, if it does and
//! finds none, still acknowledge an `ocpay-test-` one).
//!
//! Every test notification is recorded in the audit trail of the participant whose URL it went
//! to, under [`TEST_NOTIFICATION_API`], with `SUCCESS` when acknowledged, `NOT_ACKNOWLEDGED` when answered
//! otherwise and `NOT_SENT` when nothing answered, naming who sent it: the go-live checklist
//! reads exactly that to say whether the live notify URL answered.

use jiff::Timestamp;
use ocpay_core::ids::ClientId;
use ocpay_protocol::model::Amount;
use ocpay_protocol::payments::{NOTIFY_TYPE_PAYMENT_RESULT, PaymentNotification};
use ocpay_protocol::{AmsResult, datetime};
use ocpay_store::{AuditEvent, StoreError};

pub use super::acceptance::TEST_NOTIFICATION_API;
use crate::notify::{self, Notifier, Reply};

/// The currency and minor units of a test notification's amount.
const AMOUNT: (&str, i64) = ("USD", 100);

/// One test notification and how it went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TestNotification {
    /// Whose notify URL it went to.
    pub client_id: ClientId,
    /// The URL, when the participant has one.
    pub url: Option<String>,
    /// Its `notify-id`, `paymentRequestId` and `paymentId`.
    pub id: String,
    pub sent_at: Timestamp,
    pub outcome: Outcome,
}

/// What came of a test notification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The receiver answered (acknowledged or not).
    Answered(Reply),
    /// Nothing was answered, and why: no notify URL, a URL refused, no connection, a timeout,
    /// an answer too long.
    NotSent(String),
}

impl Outcome {
    /// Its result code in the audit trail: `SUCCESS`, `NOT_ACKNOWLEDGED` or `NOT_SENT`.
    pub fn code(&self) -> &'static str {
        match self {
            Outcome::Answered(reply) if reply.acknowledged => "SUCCESS",
            Outcome::Answered(_) => "NOT_ACKNOWLEDGED",
            Outcome::NotSent(_) => "NOT_SENT",
        }
    }
}

/// The body of a test notification.
fn body(id: &str, at: Timestamp) -> PaymentNotification {
    let time = datetime::format(at);
    PaymentNotification {
        notify_type: NOTIFY_TYPE_PAYMENT_RESULT.into(),
        result: AmsResult::success(),
        payment_request_id: id.to_owned(),
        payment_id: id.to_owned(),
        payment_amount: Amount::new(AMOUNT.0, AMOUNT.1),
        actual_payment_amount: Some(Amount::new(AMOUNT.0, AMOUNT.1)),
        payment_quote: None,
        payment_create_time: Some(time.clone()),
        payment_time: Some(time),
        psp_customer_info: None,
    }
}

/// Sends one test notification to `to`'s default notify URL now and records it in `to`'s
/// audit trail as sent by `who` (a user's email, and for whom it acted). `None` when there is
/// no such participant.
pub async fn send(
    notifier: &Notifier,
    to: &ClientId,
    who: &str,
) -> Result<Option<TestNotification>, StoreError> {
    let context = notifier.context();
    let Some(participant) = context.store.participant(to).await? else {
        return Ok(None);
    };
    let id = crate::random::test_notification_id();
    let sent_at = context.clock.now();
    let outcome = match &participant.notify_url {
        None => Outcome::NotSent("no default notify URL is set".to_owned()),
        Some(url) => match serde_json::to_vec(&body(&id, sent_at)) {
            Ok(body) => match notify::post(notifier, to, &id, url, body).await {
                Ok(reply) => Outcome::Answered(reply),
                Err(reason) => Outcome::NotSent(reason),
            },
            Err(error) => Outcome::NotSent(error.to_string()),
        },
    };
    let code = outcome.code();
    let event = AuditEvent {
        at: sent_at,
        client_id: to.clone(),
        key_version: None,
        agent: None,
        merchant: to.clone(),
        api: TEST_NOTIFICATION_API.to_owned(),
        idempotency_key: Some(who.to_owned()),
        result_status: if code == "SUCCESS" { "S" } else { "F" }.to_owned(),
        result_code: code.to_owned(),
    };
    context.store.record_audit(&[event]).await?;
    Ok(Some(TestNotification { client_id: to.clone(), url: participant.notify_url, id, sent_at, outcome }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_body_is_a_successful_payment_result_marked_as_a_test() {
        let at = Timestamp::from_second(1_800_000_000).unwrap();
        let json = serde_json::to_value(body("ocpay-test-00000000000000ff", at)).unwrap();
        assert_eq!(json["notifyType"], "PAYMENT_RESULT");
        assert_eq!(json["result"]["resultStatus"], "S");
        assert_eq!(json["result"]["resultCode"], "SUCCESS");
        assert_eq!(json["paymentRequestId"], "ocpay-test-00000000000000ff");
        assert_eq!(json["paymentId"], "ocpay-test-00000000000000ff");
        assert_eq!(json["paymentAmount"], serde_json::json!({"currency": "USD", "value": "100"}));
    }

    #[test]
    fn codes() {
        let reply = |acknowledged| Reply { status: 200, acknowledged, answer: None };
        assert_eq!(Outcome::Answered(reply(true)).code(), "SUCCESS");
        assert_eq!(Outcome::Answered(reply(false)).code(), "NOT_ACKNOWLEDGED");
        assert_eq!(Outcome::NotSent("timeout".into()).code(), "NOT_SENT");
        for outcome in
            [Outcome::Answered(reply(true)), Outcome::Answered(reply(false)), Outcome::NotSent(String::new())]
        {
            assert!(super::super::acceptance::TEST_NOTIFICATION_CODES.contains(&outcome.code()));
        }
    }
}
