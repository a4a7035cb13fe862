//! The ledger's invariants over random histories, on the real SQLite store: top-ups, payments
//! in the payer's currency or across currencies, cancels (reversals), refunds at once, later
//! or failing, and their completions, in any order.
//!
//! Core makes every posting (`ledger::top_up`, `payment`, `refund`, reversals) and the store
//! combines them with the balance checks, so the properties hold of the two together: after
//! every step the ledger check finds every posting balanced per currency, no wallet below zero,
//! kept wallet balances equal to their entries and every currency summing to zero; and every
//! balance is what a reference model, moved by what the store said it did, expects.

use std::collections::BTreeMap;
use std::sync::Arc;

use ocpay_core::Timestamp;
use ocpay_core::fx::Rate;
use ocpay_core::ids::{ClientId, PaymentId, RefundId, RefundRequestId};
use ocpay_core::ledger::{Account, AccountOwner};
use ocpay_core::money::{Currency, Money};
use ocpay_core::participant::{Environment, Participant, ParticipantKind};
use ocpay_core::payer::{Payer, PayerId};
use ocpay_core::payment::{CancelWindow, Charge, PaymentState};
use ocpay_core::refund::{Refund, RefundPolicy, RefundState, RefundTerms};
use ocpay_store::prelude::*;
use ocpay_store::sqlite::{SqliteSettings, SqliteStore};
use ocpay_store::{
    CancelPayment, CreateRefund, NewRefund, PaymentLookup, RefundCompletion, SettlePayment, Settlement,
    conformance,
};
use proptest::prelude::*;

/// One step of a history. Indexes pick a payer, merchant or payment modulo how many there are.
#[derive(Debug, Clone)]
enum Step {
    TopUp {
        payer: usize,
        minor: i64,
    },
    /// A payment of `minor` US cents to a merchant, paid by a payer in its wallet's currency.
    Pay {
        payer: usize,
        merchant: usize,
        minor: i64,
    },
    Cancel {
        payment: usize,
    },
    /// A refund of a share (per mille) of a payment, completed as `completion` says.
    Refund {
        payment: usize,
        share: i64,
        completion: u8,
    },
    /// Due asynchronous refunds complete (or fail).
    Complete,
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        3 => (0..3usize, 1..5_000i64).prop_map(|(payer, minor)| Step::TopUp { payer, minor }),
        3 => (0..3usize, 0..2usize, 1..3_000i64)
            .prop_map(|(payer, merchant, minor)| Step::Pay { payer, merchant, minor }),
        1 => any::<usize>().prop_map(|payment| Step::Cancel { payment }),
        3 => (any::<usize>(), 1..=1_000i64, 0..3u8)
            .prop_map(|(payment, share, completion)| Step::Refund { payment, share, completion }),
        1 => Just(Step::Complete),
    ]
}

fn at(second: i64) -> Timestamp {
    Timestamp::from_second(1_800_000_000 + second).unwrap()
}

fn currency(code: &str) -> Currency {
    Currency::parse(code).unwrap()
}

/// The balances the store should have, by account.
#[derive(Default)]
struct Model {
    balances: BTreeMap<Account, i64>,
}

impl Model {
    /// Moves money as a posting with these entries would.
    fn post(&mut self, entries: &[(Account, Money)]) {
        for (account, amount) in entries {
            assert_eq!(account.currency, amount.currency());
            *self.balances.entry(account.clone()).or_default() += amount.minor();
        }
    }

    fn wallet(&self, payer: &PayerId, currency: Currency) -> i64 {
        let account = Account::new(AccountOwner::Wallet(payer.clone()), currency);
        self.balances.get(&account).copied().unwrap_or(0)
    }

    /// A payer's `charged` to a merchant's `credited`, through the exchange when they differ;
    /// negated for a reversal or a refund.
    fn between(&mut self, payer: &PayerId, merchant: &ClientId, charged: Money, credited: Money, sign: i64) {
        let signed = |money: Money| Money::new(sign * money.minor(), money.currency());
        let wallet = Account::new(AccountOwner::Wallet(payer.clone()), charged.currency());
        let pending = Account::new(AccountOwner::MerchantPending(merchant.clone()), credited.currency());
        let mut entries = vec![
            (wallet, signed(Money::new(-charged.minor(), charged.currency()))),
            (pending, signed(credited)),
        ];
        if charged.currency() != credited.currency() {
            let exchange = AccountOwner::Exchange(Environment::of_client_id(merchant));
            entries.push((Account::new(exchange.clone(), charged.currency()), signed(charged)));
            let given = Money::new(-credited.minor(), credited.currency());
            entries.push((Account::new(exchange, credited.currency()), signed(given)));
        }
        self.post(&entries);
    }
}

/// A paid (or attempted) payment of the history.
struct Paid {
    merchant: ClientId,
    payer: PayerId,
    id: PaymentId,
    amount: Money,
    charge: Money,
}

fn refund_terms(paid: &Paid, n: usize, amount: Money) -> RefundTerms {
    RefundTerms {
        id: RefundId::parse(&format!("R-{n}")).unwrap(),
        owner: paid.merchant.clone(),
        request_id: RefundRequestId::parse(&format!("RR-{n}")).unwrap(),
        payment_id: paid.id.clone(),
        amount,
        reference_refund_id: None,
        reason: None,
        notify_url: Some("https://merchant.example/refunds".into()),
        async_requested: false,
        created_at: at(200),
        agent: None,
    }
}

async fn run(steps: Vec<Step>) -> Result<(), TestCaseError> {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SqliteStore::open(&SqliteSettings::new(dir.path().join("ocpay.db"))).await.unwrap());
    let key = ocpay_store::NewKey {
        public_key_der: vec![1],
        label: None,
        scopes: ocpay_core::access::Scopes::ALL,
        created_at: at(0),
        expires_at: None,
    };
    let mut merchants = Vec::new();
    for name in ["ALICE", "BOB"] {
        let client_id = ClientId::parse(name).unwrap();
        let participant = Participant {
            client_id: client_id.clone(),
            kind: ParticipantKind::Merchant,
            name: name.parse().expect("a name"),
            notify_url: None,
            created_at: at(0),
        };
        store.create_participant(&participant, &key).await.unwrap();
        merchants.push(client_id);
    }
    // Wallets in the payment's currency, and in currencies of 2 and 0 decimals.
    let mut payers = Vec::new();
    for (name, code) in [("PAYER-USD", "USD"), ("PAYER-SGD", "SGD"), ("PAYER-JPY", "JPY")] {
        let payer = Payer::new(
            PayerId::parse(name).unwrap(),
            Environment::Live,
            currency(code),
            Some("hash".into()),
            at(0),
        );
        store.create_payer(&payer).await.unwrap();
        payers.push(payer);
    }
    let rates = [Rate::parse("USD/SGD", "1.3450").unwrap(), Rate::parse("USD/JPY", "150.25").unwrap()];
    let policy = RefundPolicy { window: jiff::SignedDuration::from_hours(24 * 365), multiple_allowed: true };
    let mut model = Model::default();
    let mut payments: Vec<Paid> = Vec::new();
    let mut refunds = 0;
    for (n, step) in steps.into_iter().enumerate() {
        match step {
            Step::TopUp { payer, minor } => {
                let payer = &payers[payer];
                // About as much as a payment asks for, in the wallet's currency.
                let minor = if payer.currency.code() == "USD" { minor } else { 2 * minor };
                let amount = Money::new(minor, payer.currency);
                store.top_up(&payer.id, amount, at(50)).await.unwrap();
                let funding = Account::new(AccountOwner::Funding(Environment::Live), payer.currency);
                let wallet = Account::new(AccountOwner::Wallet(payer.id.clone()), payer.currency);
                model.post(&[(funding, Money::new(-minor, payer.currency)), (wallet, amount)]);
            }
            Step::Pay { payer, merchant, minor } => {
                let (payer, merchant) = (&payers[payer], &merchants[merchant]);
                let terms = conformance::sample_terms(merchant, &format!("PR-{n}"), minor);
                store.create_payment(&terms).await.unwrap();
                let rate = rates.iter().copied().find(|rate| rate.quote() == payer.currency);
                let charge =
                    Charge::for_payment(payer.id.clone(), terms.amount, payer.currency, rate, at(100))
                        .unwrap();
                let settlement = Settlement {
                    code: terms.code_token.clone(),
                    charge: charge.clone(),
                    now: at(100),
                    sandbox_top_up: None,
                };
                let balance = model.wallet(&payer.id, payer.currency);
                match store.settle_payment(&settlement).await.unwrap() {
                    SettlePayment::Paid(_) => {
                        prop_assert!(balance >= charge.amount.minor(), "paid {charge:?} from {balance}");
                        model.between(&payer.id, merchant, charge.amount, terms.amount, 1);
                    }
                    SettlePayment::InsufficientBalance { balance: seen } => {
                        prop_assert_eq!(seen.minor(), balance);
                        prop_assert!(
                            balance < charge.amount.minor(),
                            "refused {:?} with {}",
                            charge,
                            balance
                        );
                    }
                    other => prop_assert!(false, "settling gave {:?}", other),
                }
                payments.push(Paid {
                    merchant: merchant.clone(),
                    payer: payer.id.clone(),
                    id: terms.id,
                    amount: terms.amount,
                    charge: charge.amount,
                });
            }
            Step::Cancel { payment } if !payments.is_empty() => {
                let paid = &payments[payment % payments.len()];
                let lookup = PaymentLookup::ById(paid.id.clone());
                let before = store.payment(&paid.merchant, &lookup).await.unwrap().unwrap();
                let window = CancelWindow::default();
                let cancel = store.cancel_payment(&paid.merchant, &lookup, &window, at(200)).await.unwrap();
                if let CancelPayment::Done(after) = cancel {
                    let reversed = matches!(before.state, PaymentState::Success { .. })
                        && matches!(after.state, PaymentState::Cancelled { paid_at: Some(_), .. });
                    if reversed {
                        model.between(&paid.payer, &paid.merchant, paid.charge, paid.amount, -1);
                    }
                }
            }
            Step::Refund { payment, share, completion } if !payments.is_empty() => {
                let paid = &payments[payment % payments.len()];
                let minor = (paid.amount.minor() * share / 1_000).max(1);
                refunds += 1;
                let completion = match completion {
                    0 => RefundCompletion::Now,
                    1 => RefundCompletion::SucceedsAt(at(260)),
                    _ => RefundCompletion::FailsAt(at(260)),
                };
                let terms = refund_terms(paid, refunds, Money::new(minor, paid.amount.currency()));
                let asked = NewRefund { terms, policy, completion };
                if let CreateRefund::Created(refund) = store.create_refund(&asked).await.unwrap() {
                    refunded(&mut model, paid, &refund);
                }
            }
            Step::Complete => {
                for refund in store.complete_refunds(at(300), 100).await.unwrap() {
                    let paid = payments.iter().find(|paid| paid.id == refund.terms.payment_id).unwrap();
                    refunded(&mut model, paid, &refund);
                }
            }
            Step::Cancel { .. } | Step::Refund { .. } => {}
        }
        let check = store.ledger_check().await.unwrap();
        prop_assert!(check.is_sound(), "after step {}: {:?}", n, check);
    }
    for (account, expected) in &model.balances {
        let stored = store.balance(account).await.unwrap();
        prop_assert_eq!(stored.minor(), *expected, "the balance of {}", account);
    }
    let mut totals: BTreeMap<Currency, i64> = BTreeMap::new();
    for (account, balance) in &model.balances {
        *totals.entry(account.currency).or_default() += balance;
    }
    prop_assert!(totals.values().all(|total| *total == 0), "the model conserves money too: {:?}", totals);
    Ok(())
}

/// Moves the money of a refund that succeeded: the merchant gives the amount, the wallet gets
/// what the refund returns (through the exchange when the payer paid in another currency).
fn refunded(model: &mut Model, paid: &Paid, refund: &Refund) {
    if let RefundState::Success { .. } = refund.state {
        model.between(&paid.payer, &paid.merchant, refund.returned, refund.terms.amount, -1);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 32, ..ProptestConfig::default() })]

    #[test]
    fn every_history_keeps_the_ledger_balanced_and_as_the_model_expects(
        steps in proptest::collection::vec(step(), 1..60),
    ) {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        runtime.block_on(run(steps))?;
    }
}
