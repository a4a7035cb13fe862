//! Go-live readiness: gathers what the sandbox twin `SANDBOX_X` did (its API log, payments,
//! refunds and the notifications that matter) through bounded store reads, lets
//! [`crate::acceptance::evaluate`] judge the acceptance cases, and checks the live twin `X`'s
//! checklist (a usable key, a notify URL that acknowledged a test notification, SFTP).

use std::collections::HashSet;

use ocpay_core::Timestamp;
use ocpay_core::ids::ClientId;
use ocpay_core::participant::SANDBOX_CLIENT_ID_PREFIX;
use ocpay_core::payment::{FailReason, Payment, PaymentState};
use ocpay_core::refund::{Refund, RefundState};
use ocpay_store::{
    ApiLogFilter, AttemptOutcome, DeliveryStatus, NotificationEvent, PageCursor, PaymentFilter,
};

use crate::acceptance::{
    self, AttemptFact, Call, NOTIFICATION_RETRIED, NotificationFact, Notified, Observations, PaymentFact,
    REFUND_ASYNC, RefundFact, Request,
};
pub use crate::acceptance::{Case, CaseReport, CheckItem, ChecklistItem, GoLive};
use crate::service::{Context, ServiceError};

/// The audit trail's name of the developer center's test notification; its result code
/// `SUCCESS` means the live notify URL acknowledged it.
pub const TEST_NOTIFICATION_API: &str = "portal.testNotification";
/// The result codes a sent test notification is audited with; other events under
/// [`TEST_NOTIFICATION_API`] (a refusal of the form, say) sent nothing and do not count.
pub const TEST_NOTIFICATION_CODES: [&str; 3] = ["SUCCESS", "NOT_ACKNOWLEDGED", "NOT_SENT"];

/// How many rows one page of a read takes.
const PAGE: u32 = 500;

/// The sandbox and live twins of a client id, whichever of the two it names.
pub fn twins(client_id: &ClientId) -> Result<(ClientId, ClientId), ServiceError> {
    let text = client_id.as_str();
    let (sandbox, live) = match text.strip_prefix(SANDBOX_CLIENT_ID_PREFIX) {
        Some(live) => (text.to_owned(), live.to_owned()),
        None => (format!("{SANDBOX_CLIENT_ID_PREFIX}{text}"), text.to_owned()),
    };
    let parse = |id: &str| {
        ClientId::parse(id).map_err(|error| {
            ServiceError::Store(ocpay_store::StoreError::Corrupt(format!("the twin client id {id}: {error}")))
        })
    };
    Ok((parse(&sandbox)?, parse(&live)?))
}

/// Where the participant `client_id` (either twin) stands on its way to going live.
pub async fn go_live(cx: &Context, client_id: &ClientId) -> Result<GoLive, ServiceError> {
    let (sandbox, live) = twins(client_id)?;
    let now = cx.clock.now();
    let observations = observe(cx, &sandbox, now).await?;
    let cases = acceptance::evaluate(&observations, now, cx.settings.acceptance.poll_grace);
    let open = cases.iter().filter(|case| !case.passed).count();
    let mut checklist = vec![ChecklistItem {
        item: CheckItem::CasesPassed,
        title: CheckItem::CasesPassed.title(),
        done: open == 0,
        detail: match open {
            0 => format!("every case passed in {sandbox}"),
            open => format!("{open} of {} cases are still open in {sandbox}", cases.len()),
        },
    }];
    checklist.extend(live_checklist(cx, &live, now).await?);
    let cases_passed = open == 0;
    let ready = checklist.iter().all(|item| item.done);
    Ok(GoLive {
        sandbox_client_id: sandbox.to_string(),
        live_client_id: live.to_string(),
        cases,
        checklist,
        cases_passed,
        ready,
    })
}

/// The live twin's items of the checklist.
async fn live_checklist(
    cx: &Context,
    live: &ClientId,
    now: Timestamp,
) -> Result<Vec<ChecklistItem>, ServiceError> {
    let item = |item: CheckItem, done: bool, detail: String| ChecklistItem {
        item,
        title: item.title(),
        done,
        detail,
    };
    let Some(participant) = cx.store.participant(live).await? else {
        let detail = format!("there is no live participant {live}: ask the operator to create {live}");
        return Ok([CheckItem::LiveKey, CheckItem::LiveNotifyUrl, CheckItem::Sftp]
            .into_iter()
            .map(|check| item(check, false, detail.clone()))
            .collect());
    };
    let keys = cx.store.participant_keys(live).await?;
    let usable: Vec<String> =
        keys.iter().filter(|key| key.is_usable(now)).map(|key| key.key_version.to_string()).collect();
    let key = match usable.as_slice() {
        [] => item(
            CheckItem::LiveKey,
            false,
            format!("{live} has no active key: upload your live public key (none revoked or expired)"),
        ),
        versions => {
            item(CheckItem::LiveKey, true, format!("{live} has active key version {}", versions.join(", ")))
        }
    };
    let notify = match &participant.notify_url {
        None => item(CheckItem::LiveNotifyUrl, false, format!("{live} has no notify URL: set one")),
        Some(url) => {
            let events = cx.store.audit_events(live, cx.settings.acceptance.log_entries_max).await?;
            match events.iter().find(|event| {
                event.api == TEST_NOTIFICATION_API
                    && TEST_NOTIFICATION_CODES.contains(&event.result_code.as_str())
            }) {
                None => item(
                    CheckItem::LiveNotifyUrl,
                    false,
                    format!("{url} has not been sent a test notification yet: send one"),
                ),
                Some(event) if event.result_code == "SUCCESS" => item(
                    CheckItem::LiveNotifyUrl,
                    true,
                    format!("{url} acknowledged the latest test notification"),
                ),
                Some(event) => item(
                    CheckItem::LiveNotifyUrl,
                    false,
                    format!(
                        "{url} did not acknowledge the latest test notification ({}): answer HTTP 200 with \
                         result.resultStatus S, and send another",
                        event.result_code
                    ),
                ),
            }
        }
    };
    let sftp = match cx.store.sftp_account(live).await? {
        Some(account) if !account.public_keys.is_empty() || account.password_hash.is_some() => {
            let how = if account.public_keys.is_empty() { "a password" } else { "a public key" };
            item(CheckItem::Sftp, true, format!("{live} has an SFTP account with {how}"))
        }
        Some(_) => {
            item(CheckItem::Sftp, false, format!("{live}'s SFTP account has no key or password: add one"))
        }
        None => item(
            CheckItem::Sftp,
            false,
            format!("{live} has no SFTP account: add a public key or a password"),
        ),
    };
    Ok(vec![key, notify, sftp])
}

/// What the sandbox twin did, through bounded reads: its newest API-log entries (at most
/// `acceptance_log_entries_max`), its payments and refunds created since the oldest of them (as
/// many at most), and the notifications of the newest payments and refunds the cases ask about
/// (at most `acceptance_notification_reads_max`).
async fn observe(cx: &Context, sandbox: &ClientId, now: Timestamp) -> Result<Observations, ServiceError> {
    let max = cx.settings.acceptance.log_entries_max;
    let mut observations = Observations::default();
    let (mut before, mut read, mut oldest) = (None, 0u32, None);
    while read < max {
        let limit = PAGE.min(max - read);
        let page = cx.store.api_log(sandbox, &ApiLogFilter::default(), before, limit).await?;
        read += u32::try_from(page.len()).unwrap_or(u32::MAX);
        let Some(last) = page.last() else { break };
        before = Some(last.id);
        oldest = Some(last.at);
        observations.requests.extend(page.iter().filter_map(Request::from_entry));
        if page.len() < limit as usize {
            break;
        }
    }
    let Some(since) = oldest else { return Ok(observations) };

    let filter = PaymentFilter { from: Some(since), ..PaymentFilter::default() };
    let (mut after, mut count) = (None::<PageCursor>, 0u32);
    while count < max {
        let page = cx.store.payments_page(sandbox, &filter, after.as_ref(), PAGE).await?;
        count += u32::try_from(page.len()).unwrap_or(u32::MAX);
        let Some(last) = page.last() else { break };
        after = Some(PageCursor { created_at: last.terms.created_at, id: last.terms.id.to_string() });
        let full = page.len() == PAGE as usize;
        observations.payments.extend(page.iter().map(|payment| payment_fact(payment, now)));
        if !full {
            break;
        }
    }

    let (mut after, mut count) = (None::<PageCursor>, 0u32);
    'refunds: while count < max {
        let page = cx.store.refunds_page(sandbox, None, after.as_ref(), PAGE).await?;
        count += u32::try_from(page.len()).unwrap_or(u32::MAX);
        let Some(last) = page.last() else { break };
        after = Some(PageCursor { created_at: last.terms.created_at, id: last.terms.id.to_string() });
        let full = page.len() == PAGE as usize;
        for refund in &page {
            if refund.terms.created_at < since {
                break 'refunds;
            }
            observations.refunds.push(refund_fact(refund));
        }
        if !full {
            break;
        }
    }

    for (subject, notified) in
        notification_subjects(&observations, cx.settings.acceptance.notification_reads_max)
    {
        for (notification, attempts) in cx.store.notifications(&subject).await? {
            let matches = match notified {
                Notified::PaymentPaid => notification.event == NotificationEvent::Paid,
                Notified::RefundCompleted => {
                    matches!(
                        notification.event,
                        NotificationEvent::RefundSucceeded | NotificationEvent::RefundFailed
                    )
                }
            };
            if matches {
                observations.notifications.push(NotificationFact {
                    subject_id: subject.clone(),
                    notified,
                    pending: notification.status == DeliveryStatus::Pending,
                    attempts: attempts
                        .iter()
                        .map(|attempt| AttemptFact {
                            number: attempt.number,
                            at: attempt.started_at,
                            acknowledged: attempt.outcome == AttemptOutcome::Delivered,
                        })
                        .collect(),
                });
            }
        }
    }
    Ok(observations)
}

/// Whose notifications the cases read, newest first, at most `max`: paid payments (payment-1,
/// for those no inquiry saw succeed, and, with amount 9904, notification-retried) and refunds of amount 9902
/// (async-refund-learned), taking the kinds in turn so that each gets its newest.
fn notification_subjects(observations: &Observations, max: u32) -> Vec<(String, Notified)> {
    let mut paid: Vec<&PaymentFact> = observations.payments.iter().filter(|p| p.paid_at.is_some()).collect();
    paid.sort_by_key(|payment| std::cmp::Reverse(payment.paid_at));
    let (magic, ordinary): (Vec<_>, Vec<_>) =
        paid.into_iter().partition(|payment| payment.amount == NOTIFICATION_RETRIED);
    // A payment the till saw succeed by inquiring passes payment-1 without its notification.
    let seen: HashSet<&str> = observations
        .requests
        .iter()
        .filter(|request| {
            request.call == Call::InquiryPayment && request.payment_status.as_deref() == Some("SUCCESS")
        })
        .flat_map(|request| [request.payment_id.as_deref(), request.payment_request_id.as_deref()])
        .flatten()
        .collect();
    let ordinary: Vec<_> = ordinary
        .into_iter()
        .filter(|payment| {
            !seen.contains(payment.payment_id.as_str()) && !seen.contains(payment.payment_request_id.as_str())
        })
        .collect();
    let mut refunds: Vec<&RefundFact> =
        observations.refunds.iter().filter(|refund| refund.amount == REFUND_ASYNC).collect();
    refunds.sort_by_key(|refund| std::cmp::Reverse(refund.completed_at));
    let lists: [Vec<(String, Notified)>; 3] = [
        ordinary.iter().map(|p| (p.payment_id.clone(), Notified::PaymentPaid)).collect(),
        magic.iter().map(|p| (p.payment_id.clone(), Notified::PaymentPaid)).collect(),
        refunds.iter().map(|r| (r.refund_id.clone(), Notified::RefundCompleted)).collect(),
    ];
    let mut subjects = Vec::new();
    let mut seen = HashSet::new();
    let longest = lists.iter().map(Vec::len).max().unwrap_or(0);
    for index in 0..longest {
        for list in &lists {
            if let Some(subject) = list.get(index)
                && subjects.len() < max as usize
                && seen.insert(subject.0.clone())
            {
                subjects.push(subject.clone());
            }
        }
    }
    subjects
}

fn payment_fact(payment: &Payment, now: Timestamp) -> PaymentFact {
    let (paid_at, cancelled, expired) = match payment.state {
        PaymentState::Processing => (None, false, now >= payment.terms.expires_at),
        PaymentState::Success { paid_at } => (Some(paid_at), false, false),
        PaymentState::Fail { reason, .. } => (None, false, reason == FailReason::OrderIsClosed),
        PaymentState::Cancelled { paid_at, .. } => (paid_at, true, false),
    };
    PaymentFact {
        payment_id: payment.terms.id.to_string(),
        payment_request_id: payment.terms.request_id.to_string(),
        amount: payment.terms.amount.minor(),
        created_at: payment.terms.created_at,
        expires_at: payment.terms.expires_at,
        paid_at,
        cancelled,
        expired,
    }
}

fn refund_fact(refund: &Refund) -> RefundFact {
    let (succeeded, completed_at) = match refund.state {
        RefundState::Processing { .. } => (false, None),
        RefundState::Success { refunded_at } => (true, Some(refunded_at)),
        RefundState::Fail { failed_at } => (false, Some(failed_at)),
    };
    RefundFact {
        refund_id: refund.terms.id.to_string(),
        refund_request_id: refund.terms.request_id.to_string(),
        payment_id: refund.terms.payment_id.to_string(),
        amount: refund.terms.amount.minor(),
        succeeded,
        completed_at,
    }
}

#[cfg(test)]
mod tests {
    use ocpay_core::participant::{Environment, ParticipantKind};
    use ocpay_protocol::SigningKey;
    use ocpay_store::ApiLogEntry;

    use super::*;
    use crate::clock::Clock as _;
    use crate::service::participants::{self, NewParticipant};
    use crate::service::tests::fixture;

    fn entry(
        client_id: &ClientId,
        at: Timestamp,
        api: &str,
        body: &str,
        status: &str,
        code: &str,
    ) -> ApiLogEntry {
        ApiLogEntry {
            id: 0,
            request_id: String::new(),
            client_id: client_id.clone(),
            at,
            api: api.into(),
            path: String::new(),
            verified: true,
            key_version: Some(1),
            agent: None,
            result_status: status.into(),
            result_code: code.into(),
            http_status: 200,
            latency_micros: 1,
            request_headers: "{}".into(),
            request_body: body.into(),
            response_headers: "{}".into(),
            response_body: "{}".into(),
            diagnosis: None,
        }
    }

    /// The check reads only the newest `acceptance_log_entries_max` entries: a case whose
    /// requests are older is not seen.
    #[tokio::test]
    async fn only_the_newest_entries_are_read() {
        let fixture = fixture().await;
        let new = NewParticipant {
            kind: ParticipantKind::Merchant,
            environment: Environment::Sandbox,
            name: "Corner shop".parse().unwrap(),
            public_key: SigningKey::generate().unwrap().verifying_key(),
            notify_url: None,
        };
        let now = fixture.clock.now();
        let context = &fixture.context;
        let sandbox =
            participants::create(&*context.store, &context.settings.notify, now, new).await.unwrap();
        let client_id = sandbox.client_id;
        let pay = r#"{"paymentRequestId":"till-u","paymentAmount":{"currency":"USD","value":"9901"}}"#;
        let mut entries = vec![
            entry(&client_id, now, "pay", pay, "U", "UNKNOWN_EXCEPTION"),
            entry(&client_id, now, "pay", pay, "S", "SUCCESS"),
        ];
        let inquiry = r#"{"paymentRequestId":"other"}"#;
        entries.extend(
            (0..3).map(|_| entry(&client_id, now, "inquiryPayment", inquiry, "S", "ORDER_NOT_EXIST")),
        );
        context.store.record_api_log(&entries, 10).await.unwrap();

        let case = |report: &GoLive| {
            report.cases.iter().find(|c| c.case == Case::PayUnknownRetried).cloned().unwrap()
        };
        let report = go_live(context, &client_id).await.unwrap();
        assert!(case(&report).passed, "{:?}", case(&report).missing);
        let mut settings = context.settings.clone();
        settings.acceptance.log_entries_max = 3;
        let narrow = Context::new(context.store.clone(), context.clock.clone(), settings);
        let report = go_live(&narrow, &client_id).await.unwrap();
        assert!(case(&report).missing.is_some_and(|missing| missing.starts_with("no pay answered U yet")));
    }
}
