//! Mapping between rows and domain types. Every column read is checked: a value that
//! does not fit the domain is reported as corrupt data, never silently defaulted.

use super::Row;
use ocpay_core::Timestamp;
use ocpay_core::access::Scopes;
use ocpay_core::fx::Rate;
use ocpay_core::ids::{
    ClientId, CodeToken, PaymentId, PaymentRequestId, RefundId, RefundRequestId, RegistrationId,
    RegistrationRequestId,
};
use ocpay_core::money::{Currency, Money};
use ocpay_core::participant::{Environment, Participant, ParticipantKey, ParticipantKind};
use ocpay_core::payer::{Payer, PayerId};
use ocpay_core::payment::{
    Charge, FailReason, MerchantRef, Order, Payment, PaymentState, PaymentStatus, PaymentTerms, Quote,
    StoreRef,
};
use ocpay_core::refund::{Refund, RefundState, RefundTerms};
use ocpay_core::registration::{
    AutomaticDecision, Decision, Registration, RegistrationState, RegistrationTerms,
};

use crate::{
    Attempt, AttemptOutcome, DeliveryStatus, Notification, NotificationEvent, NotificationKind, StoreError,
};

pub(crate) fn corrupt(what: &str, value: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(format!("{what}: {value}"))
}

pub(crate) fn millis(at: Timestamp) -> i64 {
    at.as_millisecond()
}

pub(crate) fn time(row: &Row, column: &str) -> Result<Timestamp, StoreError> {
    let millis: i64 = row.get(column)?;
    Timestamp::from_millisecond(millis).map_err(|_| corrupt(column, millis))
}

pub(crate) fn optional_time(row: &Row, column: &str) -> Result<Option<Timestamp>, StoreError> {
    let millis: Option<i64> = row.get(column)?;
    millis.map(|millis| Timestamp::from_millisecond(millis).map_err(|_| corrupt(column, millis))).transpose()
}

pub(crate) fn optional_client_id(row: &Row, column: &str) -> Result<Option<ClientId>, StoreError> {
    row.get::<_, Option<String>>(column)?
        .map(|id| ClientId::parse(&id).map_err(|_| corrupt(column, id)))
        .transpose()
}

pub(crate) fn client_id(row: &Row, column: &str) -> Result<ClientId, StoreError> {
    let text: String = row.get(column)?;
    ClientId::parse(&text).map_err(|_| corrupt(column, text))
}

fn money(row: &Row, amount_column: &str, currency_column: &str) -> Result<Money, StoreError> {
    money_of(row.get(currency_column)?, row.get(amount_column)?)
}

/// Money from a currency code and minor units read from the database.
pub(crate) fn money_of(code: String, minor: i64) -> Result<Money, StoreError> {
    let currency = Currency::parse(&code).map_err(|_| corrupt("currency", code))?;
    Ok(Money::new(minor, currency))
}

pub(crate) fn payer(row: &Row) -> Result<Payer, StoreError> {
    let id: String = row.get("payer_id")?;
    let environment: String = row.get("environment")?;
    let currency: String = row.get("currency")?;
    Ok(Payer {
        id: PayerId::parse(&id).map_err(|_| corrupt("payer_id", id))?,
        environment: Environment::parse(&environment).ok_or_else(|| corrupt("environment", environment))?,
        currency: Currency::parse(&currency).map_err(|_| corrupt("currency", currency))?,
        pin_hash: row.get("pin_hash")?,
        pin_failures: u32::try_from(row.get::<_, i64>("pin_failures")?).unwrap_or(u32::MAX),
        locked_until: optional_time(row, "locked_until_ms")?,
        created_at: time(row, "created_at_ms")?,
    })
}

pub(crate) fn notification(row: &Row) -> Result<Notification, StoreError> {
    let kind: String = row.get("kind")?;
    let kind = NotificationKind::parse(&kind).ok_or_else(|| corrupt("kind", kind))?;
    let (event_status, event_code): (String, String) = (row.get("event_status")?, row.get("event_code")?);
    let event = NotificationEvent::from_stored(kind, &event_status, &event_code)
        .ok_or_else(|| corrupt("event", format!("{event_status} {event_code}")))?;
    let status: String = row.get("status")?;
    let attempts: i64 = row.get("attempts")?;
    Ok(Notification {
        id: row.get("notification_id")?,
        recipient: client_id(row, "recipient_client_id")?,
        kind,
        subject_id: row.get("subject_id")?,
        url: row.get("url")?,
        event,
        event_at: time(row, "event_at_ms")?,
        status: DeliveryStatus::parse(&status).ok_or_else(|| corrupt("status", status))?,
        attempts: u32::try_from(attempts).map_err(|_| corrupt("attempts", attempts))?,
        next_attempt_at: optional_time(row, "next_attempt_at_ms")?,
        manual: row.get("manual")?,
        delivered_at: optional_time(row, "delivered_at_ms")?,
        created_at: time(row, "created_at_ms")?,
        secret: row.get::<_, Option<String>>("secret")?.map(crate::Secret),
    })
}

pub(crate) fn attempt(row: &Row) -> Result<Attempt, StoreError> {
    let number: i64 = row.get("attempt")?;
    let outcome: String = row.get("outcome")?;
    let http_status: Option<i64> = row.get("http_status")?;
    Ok(Attempt {
        notification_id: row.get("notification_id")?,
        number: u32::try_from(number).map_err(|_| corrupt("attempt", number))?,
        scheduled_at: time(row, "scheduled_at_ms")?,
        started_at: time(row, "started_at_ms")?,
        duration_ms: row.get("duration_ms")?,
        http_status: http_status
            .map(|status| u16::try_from(status).map_err(|_| corrupt("http_status", status)))
            .transpose()?,
        outcome: AttemptOutcome::parse(&outcome).ok_or_else(|| corrupt("outcome", outcome))?,
        error: row.get("error")?,
        manual: row.get("manual")?,
        answer: row.get("answer_excerpt")?,
    })
}

pub(crate) fn participant(row: &Row) -> Result<Participant, StoreError> {
    let kind: String = row.get("kind")?;
    Ok(Participant {
        client_id: client_id(row, "client_id")?,
        kind: ParticipantKind::parse(&kind).ok_or_else(|| corrupt("kind", kind))?,
        name: row.get("name")?,
        notify_url: row.get("notify_url")?,
        created_at: time(row, "created_at_ms")?,
    })
}

/// A scope list, `None` when the column is NULL.
pub(crate) fn scopes(row: &Row, column: &str) -> Result<Option<Scopes>, StoreError> {
    row.get::<_, Option<String>>(column)?
        .map(|text| Scopes::parse(&text).map_err(|_| corrupt(column, text)))
        .transpose()
}

pub(crate) fn participant_key(row: &Row) -> Result<ParticipantKey, StoreError> {
    let version: i64 = row.get("key_version")?;
    Ok(ParticipantKey {
        client_id: client_id(row, "client_id")?,
        key_version: u32::try_from(version).map_err(|_| corrupt("key_version", version))?,
        public_key_der: row.get("public_key_der")?,
        label: row.get("label")?,
        scopes: scopes(row, "scopes")?.unwrap_or(Scopes::ALL),
        created_at: time(row, "created_at_ms")?,
        expires_at: optional_time(row, "expires_at_ms")?,
        revoked_at: optional_time(row, "revoked_at_ms")?,
    })
}

pub(crate) fn payment(row: &Row) -> Result<Payment, StoreError> {
    let id: String = row.get("payment_id")?;
    let request_id: String = row.get("payment_request_id")?;
    let code_token: String = row.get("code_token")?;
    let settlement_currency: Option<String> = row.get("settlement_currency")?;
    let terms = PaymentTerms {
        id: PaymentId::parse(&id).map_err(|_| corrupt("payment_id", &id))?,
        owner: client_id(row, "owner_client_id")?,
        request_id: PaymentRequestId::parse(&request_id)
            .map_err(|_| corrupt("payment_request_id", request_id))?,
        amount: money(row, "amount_minor", "currency")?,
        order: Order {
            reference_order_id: row.get("reference_order_id")?,
            description: row.get("order_description")?,
            amount: money(row, "order_amount_minor", "order_currency")?,
            merchant: MerchantRef {
                reference_merchant_id: row.get("reference_merchant_id")?,
                name: row.get("merchant_name")?,
                mcc: row.get("merchant_mcc")?,
                display_name: row.get("merchant_display_name")?,
                store: StoreRef {
                    reference_store_id: row.get("reference_store_id")?,
                    name: row.get("store_name")?,
                    mcc: row.get("store_mcc")?,
                },
            },
        },
        code_token: CodeToken::parse(&code_token).map_err(|_| corrupt("code_token", &id))?,
        notify_url: row.get("notify_url")?,
        redirect_url: row.get("redirect_url")?,
        settlement_currency: settlement_currency
            .map(|code| Currency::parse(&code).map_err(|_| corrupt("settlement_currency", code)))
            .transpose()?,
        merchant_region: row.get("merchant_region")?,
        extend_info: row.get("extend_info")?,
        created_at: time(row, "created_at_ms")?,
        expires_at: time(row, "expires_at_ms")?,
        agent: optional_client_id(row, "agent_client_id")?,
    };
    let state = payment_state(row).map_err(|error| corrupt(&format!("state of payment {id}"), error))?;
    let charge = charge(row).map_err(|error| corrupt(&format!("charge of payment {id}"), error))?;
    Ok(Payment { terms, state, charge })
}

fn charge(row: &Row) -> Result<Option<Charge>, StoreError> {
    let Some(payer) = row.get::<_, Option<String>>("payer_id")? else { return Ok(None) };
    let quote =
        match (row.get::<_, Option<String>>("quote_pair")?, row.get::<_, Option<String>>("quote_price")?) {
            (Some(pair), Some(price)) => Some(Quote {
                rate: Rate::parse(&pair, &price).map_err(|error| corrupt("quote", error))?,
                quoted_at: time(row, "quoted_at_ms")?,
            }),
            _ => None,
        };
    Ok(Some(Charge {
        payer: PayerId::parse(&payer).map_err(|_| corrupt("payer_id", payer))?,
        amount: money(row, "charged_minor", "charged_currency")?,
        quote,
    }))
}

fn payment_state(row: &Row) -> Result<PaymentState, StoreError> {
    let status: String = row.get("status")?;
    let paid_at = optional_time(row, "paid_at_ms")?;
    let state = match PaymentStatus::parse(&status) {
        Some(PaymentStatus::Processing) => PaymentState::Processing,
        Some(PaymentStatus::Success) => {
            PaymentState::Success { paid_at: paid_at.ok_or_else(|| corrupt("paid_at_ms", "missing"))? }
        }
        Some(PaymentStatus::Fail) => {
            let reason: Option<String> = row.get("fail_reason")?;
            let reason = reason.as_deref().and_then(FailReason::parse);
            PaymentState::Fail {
                reason: reason.ok_or_else(|| corrupt("fail_reason", "missing or unknown"))?,
                failed_at: time(row, "failed_at_ms")?,
            }
        }
        Some(PaymentStatus::Cancelled) => {
            PaymentState::Cancelled { cancelled_at: time(row, "cancelled_at_ms")?, paid_at }
        }
        None => return Err(corrupt("status", status)),
    };
    Ok(state)
}

pub(crate) fn refund(row: &Row) -> Result<Refund, StoreError> {
    let id: String = row.get("refund_id")?;
    let request_id: String = row.get("refund_request_id")?;
    let payment_id: String = row.get("payment_id")?;
    let status: String = row.get("status")?;
    let state = match status.as_str() {
        "PROCESSING" => RefundState::Processing { completes_at: time(row, "completes_at_ms")? },
        "SUCCESS" => RefundState::Success { refunded_at: time(row, "finished_at_ms")? },
        "FAIL" => RefundState::Fail { failed_at: time(row, "finished_at_ms")? },
        _ => return Err(corrupt("refund status", status)),
    };
    Ok(Refund {
        terms: RefundTerms {
            id: RefundId::parse(&id).map_err(|_| corrupt("refund_id", &id))?,
            owner: client_id(row, "owner_client_id")?,
            request_id: RefundRequestId::parse(&request_id)
                .map_err(|_| corrupt("refund_request_id", request_id))?,
            payment_id: PaymentId::parse(&payment_id).map_err(|_| corrupt("payment_id", payment_id))?,
            amount: money(row, "amount_minor", "currency")?,
            reference_refund_id: row.get("reference_refund_id")?,
            reason: row.get("reason")?,
            notify_url: row.get("notify_url")?,
            async_requested: row.get("async_requested")?,
            created_at: time(row, "created_at_ms")?,
            agent: optional_client_id(row, "agent_client_id")?,
        },
        state,
        returned: money(row, "returned_minor", "returned_currency")?,
    })
}

pub(crate) fn registration(row: &Row) -> Result<Registration, StoreError> {
    let id: String = row.get("registration_id")?;
    let request_id: String = row.get("registration_request_id")?;
    let status: String = row.get("status")?;
    let state = match status.as_str() {
        "PROCESSING" => RegistrationState::Processing,
        "APPROVED" => RegistrationState::Approved { decided_at: time(row, "decided_at_ms")? },
        "REJECTED" => RegistrationState::Rejected {
            decided_at: time(row, "decided_at_ms")?,
            reason: row.get("reject_reason")?,
        },
        _ => return Err(corrupt("registration status", status)),
    };
    let auto_decision: Option<String> = row.get("auto_decision")?;
    let automatic = match (optional_time(row, "auto_decide_at_ms")?, auto_decision.as_deref()) {
        (None, None) => None,
        (Some(at), Some("APPROVED")) => Some(AutomaticDecision { at, decision: Decision::Approve }),
        (Some(at), Some("REJECTED")) => Some(AutomaticDecision {
            at,
            decision: Decision::Reject { reason: row.get("auto_reject_reason")? },
        }),
        (_, other) => return Err(corrupt("auto_decision", other.unwrap_or("NULL"))),
    };
    Ok(Registration {
        terms: RegistrationTerms {
            id: RegistrationId::parse(&id).map_err(|_| corrupt("registration_id", &id))?,
            owner: client_id(row, "owner_client_id")?,
            request_id: RegistrationRequestId::parse(&request_id)
                .map_err(|_| corrupt("registration_request_id", request_id))?,
            reference_merchant_id: row.get("reference_merchant_id")?,
            reference_store_id: row.get("reference_store_id")?,
            content: row.get("content")?,
            notify_url: row.get("notify_url")?,
            created_at: time(row, "created_at_ms")?,
            automatic,
        },
        state,
    })
}
