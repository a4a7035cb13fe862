//! The conformance suite every [`Store`] implementation must pass, built only with the
//! `conformance` feature (tests turn it on; the server never carries it).
//!
//! Each check gets a fresh, empty store and drives it only through the trait, so the SQLite
//! and PostgreSQL backends are held to exactly the same behaviour. A failed check panics with
//! a message that says which rule broke. [`conformance_tests!`](crate::conformance_tests)
//! makes one test of each check for an engine, so that one failure hides none of the others.
//! The checks are grouped by area; the helpers they share are here.

pub mod access;
pub mod api_log;
mod database;
pub mod faults;
pub mod ledger;
pub mod notifications;
pub mod pages;
pub mod participants;
pub mod payments;
pub mod portal;
pub mod preload;
pub mod refunds;
pub mod registrations;
pub mod settlement;
pub mod sftp;

pub use database::{postgres_scratch_schema, postgres_test_url};

use jiff::SignedDuration;
use ocpay_core::Timestamp;
use ocpay_core::access::Scopes;
use ocpay_core::ids::{ClientId, CodeToken, PaymentId, PaymentRequestId, RefundId, RefundRequestId};
use ocpay_core::ledger::{Account, AccountOwner};
use ocpay_core::money::{Currency, Money};
use ocpay_core::participant::{Environment, Participant, ParticipantKind};
use ocpay_core::payer::{Payer, PayerId};
use ocpay_core::payment::{Charge, MerchantRef, Order, PaymentTerms, StoreRef};
use ocpay_core::refund::{Refund, RefundPolicy, RefundTerms};

use crate::{
    Attempt, AttemptOutcome, CreateRefund, NewKey, NewRefund, RefundCompletion, SettlePayment, Settlement,
    Store,
};

/// Declares one test per conformance check, in a module named as the `fn`:
/// `fn on_sqlite(new_store);` makes `on_sqlite::payment_idempotency`, `on_sqlite::cancel_follows_core`,
/// and so on, each on a store of its own from `new_store`, an async function of the calling
/// module that returns a new, empty `SqlStore` and whatever must live as long as it (a
/// temporary directory, say). The checks of failures inside a transaction get the store with
/// [`StatementFaults`](crate::sql::StatementFaults) installed. Attributes (such as
/// `#[ignore]`) apply to every test.
///
/// A new check is a `pub async fn` in its area's module and a line here.
#[macro_export]
macro_rules! conformance_tests {
    ($(#[$attr:meta])* fn $engine:ident($new_store:ident);) => {
        mod $engine {
            $crate::conformance_tests!(@checks [$(#[$attr])*] $new_store);
        }
    };
    (@checks $attrs:tt $new_store:ident) => {
        $crate::conformance_tests!(@area store $attrs $new_store, participants [
            participants_and_keys,
            scoped_keys_and_revocation,
            keys_page_with_their_last_use,
            suspension_listing_and_audit_search,
        ]);
        $crate::conformance_tests!(@area store $attrs $new_store, access [
            grants_hold_only_the_tokens_hash,
            the_audit_trail_is_kept_per_participant,
        ]);
        $crate::conformance_tests!(@area store $attrs $new_store, api_log [
            the_api_log_pages_by_participant_and_filters,
            unverified_api_log_entries_are_bounded_per_participant,
            the_api_log_counts_results_by_day_and_prunes_by_age,
        ]);
        $crate::conformance_tests!(@area store $attrs $new_store, payments [
            payment_idempotency,
            concurrent_duplicates_create_one_payment,
            payments_are_private_to_their_owner,
            cancel_follows_core,
            paying_moves_money_and_queues_one_notification,
            paying_across_currencies_balances_each_currency,
            only_payable_payments_are_paid,
            failing_and_expiring_are_final_and_notified,
            cancelling_a_paid_payment_reverses_it,
            racing_payers_and_cancels_have_one_winner,
            the_inquiry_fault_is_taken_once,
        ]);
        $crate::conformance_tests!(@area store $attrs $new_store, ledger [
            payers_and_top_ups,
            a_wallet_never_holds_more_than_its_maximum,
        ]);
        $crate::conformance_tests!(@area store $attrs $new_store, notifications [
            the_outbox_claims_retries_and_resends,
            a_resend_waits_for_the_attempt_in_flight,
            claims_take_the_earliest_due_and_never_one_row_twice,
            attempts_recorded_together_are_answered_each_in_its_place,
        ]);
        $crate::conformance_tests!(@area store $attrs $new_store, refunds [
            refunds_are_idempotent_and_bounded_by_the_payment,
            refunds_across_currencies_return_the_charge_exactly,
            asynchronous_refunds_complete_when_due,
            concurrent_refunds_never_exceed_the_payment,
        ]);
        $crate::conformance_tests!(@area store $attrs $new_store, registrations [
            registrations_are_idempotent_and_one_per_store,
            concurrent_duplicate_registrations_create_one,
            registrations_are_decided_once_and_notified,
            due_registrations_are_decided_automatically,
        ]);
        $crate::conformance_tests!(@area store $attrs $new_store, pages [
            payment_pages_filter_and_follow_the_keyset,
            refund_and_registration_pages_follow_the_keyset,
            held_tokens_are_taken_once_and_forgotten,
        ]);
        $crate::conformance_tests!(@area store $attrs $new_store, settlement [
            fees_are_posted_with_the_payment_and_returned_pro_rata,
            the_settlement_currency_changes_alone,
            chunks_take_each_transaction_once_and_close_the_batch,
            batch_pages_follow_the_keyset_newest_day_first,
        ]);
        $crate::conformance_tests!(@area store $attrs $new_store, preload [
            a_preloaded_history_keeps_the_ledger_and_reads_back,
        ]);
        $crate::conformance_tests!(@area store $attrs $new_store, sftp [
            sftp_accounts_add_keys_and_replace_passwords,
            sftp_failures_lock_until_the_lockout_ends,
            sftp_password_attempts_count_before_the_check,
            sftp_keys_are_removed_one_at_a_time,
        ]);
        $crate::conformance_tests!(@area store $attrs $new_store, portal [
            portal_users_are_unique_by_email_and_sign_up_is_atomic,
            a_participants_users_page_by_email,
            portal_sign_ins_lock_and_totp_steps_work_once,
            portal_user_changes_end_sessions_and_links_work_once,
            daily_activity_counts_successes_per_day_and_currency,
        ]);
        $crate::conformance_tests!(@area faults $attrs $new_store, faults [
            a_payment_that_fails_to_be_created_leaves_no_row,
            failing_or_expiring_that_fails_midway_leaves_the_payment_processing,
            a_settlement_that_fails_midway_leaves_nothing,
            a_settlement_chunk_that_fails_midway_leaves_nothing,
            a_cross_currency_settlement_that_fails_midway_leaves_nothing,
            a_refund_that_fails_midway_leaves_nothing,
            a_reversal_that_fails_midway_leaves_nothing,
            a_failing_completion_of_due_refunds_completes_none,
            attempts_recorded_together_that_fail_midway_record_none,
            a_failing_write_takes_no_concurrent_write_down,
        ]);
    };
    (@area $kind:ident $attrs:tt $new_store:ident, $area:ident [$($check:ident,)*]) => {
        $($crate::conformance_tests!(@$kind $attrs $new_store, $area::$check);)*
    };
    (@store [$(#[$attr:meta])*] $new_store:ident, $area:ident::$check:ident) => {
        #[::tokio::test(flavor = "multi_thread", worker_threads = 2)]
        $(#[$attr])*
        async fn $check() {
            let (store, _keep) = super::$new_store().await;
            $crate::conformance::$area::$check(::std::sync::Arc::new(store)).await;
        }
    };
    (@faults [$(#[$attr:meta])*] $new_store:ident, $area:ident::$check:ident) => {
        #[::tokio::test(flavor = "multi_thread", worker_threads = 2)]
        $(#[$attr])*
        async fn $check() {
            let (store, _keep) = super::$new_store().await;
            let faults = ::std::sync::Arc::new($crate::sql::StatementFaults::new());
            let store = ::std::sync::Arc::new(store.with_statement_faults(faults.clone()));
            $crate::conformance::$area::$check(store, faults).await;
        }
    };
}

fn at(second: i64) -> Timestamp {
    Timestamp::from_second(1_800_000_000 + second).expect("a valid test instant")
}

fn client(name: &str) -> ClientId {
    ClientId::parse(name).expect("a valid test client id")
}

fn key(byte: u8) -> NewKey {
    NewKey {
        public_key_der: vec![byte; 8],
        label: None,
        scopes: Scopes::ALL,
        created_at: at(0),
        expires_at: None,
    }
}

async fn merchant(store: &dyn Store, name: &str) -> ClientId {
    let participant = Participant {
        client_id: client(name),
        kind: ParticipantKind::Merchant,
        name: format!("{name} Ltd").parse().expect("a name"),
        notify_url: Some("https://merchant.example/notify".into()),
        created_at: at(0),
    };
    store.create_participant(&participant, &key(1)).await.expect("create a participant");
    participant.client_id
}

/// A payment request of `owner` with the given idempotency key, amount in USD cents.
pub fn sample_terms(owner: &ClientId, request_id: &str, amount_minor: i64) -> PaymentTerms {
    let usd = Currency::parse("USD").expect("USD");
    let unique = format!("{}-{request_id}", owner.as_str());
    PaymentTerms {
        id: PaymentId::parse(&format!("P-{unique}")).expect("payment id"),
        owner: owner.clone(),
        request_id: PaymentRequestId::parse(request_id).expect("request id"),
        amount: Money::new(amount_minor, usd),
        order: Order {
            reference_order_id: Some(format!("ORDER-{request_id}")),
            description: "Two flat whites".parse().expect("a description"),
            amount: Money::new(amount_minor, usd),
            merchant: MerchantRef {
                reference_merchant_id: "M0001".into(),
                name: "Demo Shop".parse().expect("a name"),
                mcc: "5812".parse().expect("an MCC"),
                display_name: None,
                store: StoreRef {
                    reference_store_id: "S0001".into(),
                    name: "Demo Store 1".parse().expect("a name"),
                    mcc: None,
                },
            },
        },
        code_token: CodeToken::parse(&format!("T-{unique}")).expect("code token"),
        notify_url: "https://merchant.example/notify".into(),
        redirect_url: None,
        settlement_currency: None,
        merchant_region: Some("SG".parse().expect("a region")),
        extend_info: None,
        created_at: at(10),
        expires_at: at(910),
        agent: None,
    }
}

fn usd(minor: i64) -> Money {
    Money::new(minor, Currency::parse("USD").expect("USD"))
}

fn sgd(minor: i64) -> Money {
    Money::new(minor, Currency::parse("SGD").expect("SGD"))
}

/// A live payer with `balance` in its wallet (in the balance's currency).
async fn payer_with(store: &dyn Store, id: &str, balance: Money) -> PayerId {
    let payer = Payer::new(
        PayerId::parse(id).expect("payer id"),
        Environment::Live,
        balance.currency(),
        Some("hash".into()),
        at(0),
    );
    store.create_payer(&payer).await.expect("create a payer");
    if balance.minor() > 0 {
        store.top_up(&payer.id, balance, at(1)).await.expect("top up");
    }
    payer.id
}

async fn paid_ready(store: &dyn Store, request_id: &str, amount_minor: i64) -> (ClientId, PaymentTerms) {
    let owner = match store.participant(&client("ALICE")).await.unwrap() {
        Some(participant) => participant.client_id,
        None => merchant(store, "ALICE").await,
    };
    let terms = sample_terms(&owner, request_id, amount_minor);
    store.create_payment(&terms).await.expect("create a payment");
    (owner, terms)
}

fn settlement(terms: &PaymentTerms, payer: &PayerId, now: Timestamp) -> Settlement {
    Settlement {
        code: terms.code_token.clone(),
        charge: Charge { payer: payer.clone(), amount: terms.amount, quote: None },
        now,
        sandbox_top_up: None,
    }
}

async fn wallet(store: &dyn Store, payer: &PayerId, currency: Currency) -> Money {
    store.balance(&Account::new(AccountOwner::Wallet(payer.clone()), currency)).await.unwrap()
}

async fn pending(store: &dyn Store, owner: &ClientId, currency: Currency) -> Money {
    store.balance(&Account::new(AccountOwner::MerchantPending(owner.clone()), currency)).await.unwrap()
}

async fn assert_sound(store: &dyn Store) {
    let check = store.ledger_check().await.unwrap();
    assert!(check.is_sound(), "the ledger is sound: {check:?}");
}

fn refund_policy() -> RefundPolicy {
    RefundPolicy { window: SignedDuration::from_hours(24 * 365), multiple_allowed: true }
}

/// A refund of `amount` of `payment`, requested at `now` and completed at once.
fn refund_of(payment: &PaymentTerms, request_id: &str, amount: Money, now: Timestamp) -> NewRefund {
    let unique = format!("{}-{request_id}", payment.owner.as_str());
    NewRefund {
        terms: RefundTerms {
            id: RefundId::parse(&format!("R-{unique}")).expect("refund id"),
            owner: payment.owner.clone(),
            request_id: RefundRequestId::parse(request_id).expect("refund request id"),
            payment_id: payment.id.clone(),
            amount,
            reference_refund_id: Some(format!("REF-{request_id}")),
            reason: Some("returned goods".parse().expect("a reason")),
            notify_url: Some("https://merchant.example/refunds".into()),
            async_requested: false,
            created_at: now,
            // Kept and read back like every term (refunds compare their terms whole).
            agent: Some(client("ISV-REFUNDS")),
        },
        policy: refund_policy(),
        completion: RefundCompletion::Now,
    }
}

async fn paid_by(
    store: &dyn Store,
    request_id: &str,
    amount_minor: i64,
    payer: &PayerId,
) -> (ClientId, PaymentTerms) {
    let (owner, terms) = paid_ready(store, request_id, amount_minor).await;
    let settled = store.settle_payment(&settlement(&terms, payer, at(100))).await.unwrap();
    assert!(matches!(settled, SettlePayment::Paid(_)), "{settled:?}");
    (owner, terms)
}

fn created(outcome: CreateRefund) -> Refund {
    match outcome {
        CreateRefund::Created(refund) => refund,
        other => panic!("expected a new refund, got {other:?}"),
    }
}

/// An attempt at a notification as its sender records it: due at 100, started at 101, in 3 ms,
/// with HTTP 200.
fn attempt(notification_id: &str, number: u32, outcome: AttemptOutcome) -> Attempt {
    Attempt {
        notification_id: notification_id.to_owned(),
        number,
        scheduled_at: at(100),
        started_at: at(101),
        duration_ms: 3,
        http_status: Some(200),
        outcome,
        error: None,
        manual: false,
        answer: None,
    }
}
