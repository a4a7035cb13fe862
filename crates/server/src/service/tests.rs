//! Use cases run without an HTTP server: a [`Context`] on a real SQLite store in a temporary
//! directory, with a clock that moves only when told to.

use std::sync::Arc;
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use ocpay_core::ids::PaymentRequestId;
use ocpay_core::money::{Currency, Money};
use ocpay_core::participant::{Environment, Participant, ParticipantKind};
use ocpay_core::payer::PayerId;
use ocpay_core::payment::{MerchantRef, NotPayable, Order, Payment, PaymentStatus, StoreRef};
use ocpay_protocol::SigningKey;

use super::Context;
use super::participants::{self, NewParticipant};
use super::pay::{PayCommand, pay};
use super::wallet::{self, Paid, PayCode, WalletError};
use crate::clock::{Clock as _, ManualClock};
use crate::config::Config;
use crate::data_dir::DataDir;
use crate::settings::Settings;

const PIN: &str = "2468";

/// A context on a fresh SQLite store, and the clock it reads.
pub(crate) struct Fixture {
    pub(crate) _dir: tempfile::TempDir,
    pub(crate) clock: Arc<ManualClock>,
    pub(crate) context: Arc<Context>,
}

pub(crate) async fn fixture() -> Fixture {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let config = Config { data_dir: dir.path().to_owned(), ..Config::default() };
    let settings = Settings::resolve(&config).expect("the defaults are valid");
    let store = DataDir::open(&config.data_dir)
        .expect("the data directory opens")
        .open_store(&config)
        .await
        .expect("the SQLite store opens");
    let clock = Arc::new(ManualClock::new(Timestamp::from_second(1_800_000_000).unwrap()));
    let context = Arc::new(Context::new(store, clock.clone(), settings));
    Fixture { _dir: dir, clock, context }
}

pub(crate) fn usd(minor: i64) -> Money {
    Money::new(minor, Currency::parse("USD").unwrap())
}

pub(crate) async fn live_merchant(context: &Context) -> Participant {
    let new = NewParticipant {
        kind: ParticipantKind::Merchant,
        environment: Environment::Live,
        name: "Corner shop".parse().expect("a name"),
        public_key: SigningKey::generate().unwrap().verifying_key(),
        notify_url: None,
    };
    participants::create(&*context.store, &context.settings.notify, context.clock.now(), new)
        .await
        .expect("the merchant is created")
}

pub(crate) fn command(request_id: &str, amount: Money) -> PayCommand {
    PayCommand {
        request_id: PaymentRequestId::parse(request_id).unwrap(),
        amount,
        order: Order {
            reference_order_id: None,
            description: "Two coffees".parse().expect("a description"),
            amount,
            merchant: MerchantRef {
                reference_merchant_id: "corner-shop".into(),
                name: "Corner shop".parse().expect("a name"),
                mcc: "5812".parse().expect("an MCC"),
                display_name: None,
                store: StoreRef {
                    reference_store_id: "main-street".into(),
                    name: "Main Street".parse().expect("a name"),
                    mcc: None,
                },
            },
        },
        requested_expiry: None,
        notify_url: Some("https://shop.example/notify".parse().expect("a notify URL")),
        redirect_url: None,
        settlement_currency: None,
        merchant_region: None,
        extend_info: None,
        agent: None,
    }
}

async fn signed_in(context: &Context, payment: &Payment, pin: &str) -> Result<Paid, WalletError> {
    let request =
        PayCode { payer: Some(PayerId::parse("alice").unwrap()), pin: Some(pin.into()), outcome: None };
    wallet::pay_code(context, &payment.terms.code_token, request).await
}

#[tokio::test(flavor = "multi_thread")]
async fn a_live_payer_pays_an_order_code_once_and_not_after_it_expires() {
    let Fixture { _dir, clock, context } = fixture().await;
    let merchant = live_merchant(&context).await;
    let alice = PayerId::parse("alice").unwrap();
    let iterations = context.settings.pin.hash_iterations;
    let now = clock.now();
    wallet::create_payer(
        &*context.store,
        now,
        alice.clone(),
        Environment::Live,
        usd(0).currency(),
        Some(PIN),
        iterations,
    )
    .await
    .expect("the payer is created");
    wallet::top_up(&*context.store, now, &alice, usd(10_000)).await.expect("the wallet is funded");

    let payment = pay(&context, &merchant, command("order-1", usd(1_234))).await.expect("the code is made");
    let again = pay(&context, &merchant, command("order-1", usd(1_234))).await.expect("a repeat answers");
    assert_eq!(again.terms.id, payment.terms.id, "a repeated request returns the payment it made");
    assert!(matches!(
        pay(&context, &merchant, command("order-1", usd(999))).await,
        Err(super::ServiceError::RepeatInconsistent)
    ));

    assert!(matches!(signed_in(&context, &payment, "1357").await, Err(WalletError::WrongPin)));
    let Ok(Paid::Paid(paid)) = signed_in(&context, &payment, PIN).await else { panic!("the payer pays") };
    assert_eq!(paid.state.status(), PaymentStatus::Success);
    let woken = tokio::time::timeout(Duration::from_secs(1), context.notify_wake.0.notified()).await;
    assert!(woken.is_ok(), "paying wakes the notifier for the payment's notification");
    assert_eq!(wallet::balances(&*context.store, &alice).await.unwrap(), vec![usd(10_000 - 1_234)]);
    assert!(matches!(
        signed_in(&context, &payment, PIN).await,
        Err(WalletError::NotPayable(NotPayable::AlreadyPaid))
    ));

    let later = pay(&context, &merchant, command("order-2", usd(500))).await.expect("the code is made");
    clock.set(later.terms.expires_at + SignedDuration::from_secs(1));
    assert!(matches!(
        signed_in(&context, &later, PIN).await,
        Err(WalletError::NotPayable(NotPayable::Expired))
    ));
    assert_eq!(wallet::balances(&*context.store, &alice).await.unwrap(), vec![usd(10_000 - 1_234)]);
    let check = context.store.ledger_check().await.expect("the ledger check runs");
    assert!(check.is_sound(), "the ledger is sound: {check:?}");
}
