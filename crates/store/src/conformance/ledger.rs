//! Payers, their wallets and top-ups.

use std::sync::Arc;

use ocpay_core::ledger::{Account, AccountOwner, WalletLimit};
use ocpay_core::money::Currency;
use ocpay_core::participant::Environment;
use ocpay_core::payer::{Payer, PayerId};

use crate::{Store, StoreError};

use super::{assert_sound, at, payer_with, sgd, usd};

pub async fn payers_and_top_ups(store: Arc<dyn Store>) {
    let payer = payer_with(&*store, "PAYER-1", usd(0)).await;
    let duplicate =
        Payer::new(payer.clone(), Environment::Sandbox, Currency::parse("USD").unwrap(), None, at(0));
    assert_eq!(store.create_payer(&duplicate).await, Err(StoreError::Conflict("payer")));
    assert_eq!(store.payer(&payer).await.unwrap().unwrap().environment, Environment::Live);
    assert_eq!(store.top_up(&payer, usd(500), at(2)).await.unwrap(), usd(500));
    assert_eq!(store.top_up(&payer, usd(250), at(3)).await.unwrap(), usd(750), "balances add up");
    store.top_up(&payer, sgd(100), at(4)).await.unwrap();
    assert_eq!(store.balances(&AccountOwner::Wallet(payer.clone())).await.unwrap(), vec![sgd(100), usd(750)]);
    let lookalike = payer_with(&*store, "PAYER-1:USD", usd(99)).await;
    assert_eq!(store.balances(&AccountOwner::Wallet(lookalike)).await.unwrap(), vec![usd(99)]);
    assert_eq!(
        store.balances(&AccountOwner::Wallet(payer.clone())).await.unwrap(),
        vec![sgd(100), usd(750)],
        "another payer's wallet is not counted, however its id looks"
    );
    let missing = PayerId::parse("NOBODY").unwrap();
    assert_eq!(store.top_up(&missing, usd(1), at(5)).await, Err(StoreError::NotFound("payer")));
    for _ in 0..2 {
        assert!(store.pin_attempt(&payer, 3, at(900), at(10)).await.unwrap());
    }
    let counted = store.payer(&payer).await.unwrap().unwrap();
    assert_eq!((counted.pin_failures, counted.locked_until), (2, None));
    assert!(store.pin_attempt(&payer, 3, at(900), at(10)).await.unwrap(), "the third may still be checked");
    let locked = store.payer(&payer).await.unwrap().unwrap();
    assert!(locked.is_locked(at(899)) && !locked.is_locked(at(900)), "the third wrong PIN locks until then");
    assert!(!store.pin_attempt(&payer, 3, at(1900), at(899)).await.unwrap(), "no check while locked");
    assert_eq!(store.payer(&payer).await.unwrap().unwrap().locked_until, Some(at(900)), "and no longer lock");
    assert!(
        store.pin_attempt(&payer, 3, at(1900), at(900)).await.unwrap(),
        "checked once the lock has ended"
    );
    let afresh = store.payer(&payer).await.unwrap().unwrap();
    assert_eq!(
        (afresh.pin_failures, afresh.locked_until),
        (1, None),
        "a new run of wrong PINs starts at one"
    );
    store.pin_succeeded(&payer).await.unwrap();
    assert_eq!(store.payer(&payer).await.unwrap().unwrap().pin_failures, 0);

    // Guesses at once: exactly as many are checked as the limit allows.
    let guesser = payer_with(&*store, "PAYER-GUESSED", usd(0)).await;
    let mut guesses = Vec::new();
    for _ in 0..20 {
        let (store, guesser) = (store.clone(), guesser.clone());
        guesses.push(tokio::spawn(
            async move { store.pin_attempt(&guesser, 3, at(900), at(10)).await.unwrap() },
        ));
    }
    let mut checked = 0;
    for guess in guesses {
        checked += usize::from(guess.await.unwrap());
    }
    assert_eq!(checked, 3, "parallel guesses do not get past the limit");
    let funding = store
        .balance(&Account::new(AccountOwner::Funding(Environment::Live), Currency::parse("USD").unwrap()))
        .await
        .unwrap();
    assert_eq!(funding, usd(-750 - 99), "issued value is owed by the funding account");
    assert_sound(&*store).await;
}

/// A top-up that would take a wallet above its maximum balance is refused and writes nothing,
/// however large: no kept balance or sum of entries ever leaves the range of an amount.
pub async fn a_wallet_never_holds_more_than_its_maximum(store: Arc<dyn Store>) {
    let max = WalletLimit::default().max(usd(0).currency());
    let payer = payer_with(&*store, "PAYER-FULL", usd(0)).await;
    assert_eq!(store.top_up(&payer, usd(max.minor() - 1), at(1)).await.unwrap(), usd(max.minor() - 1));
    assert_eq!(store.top_up(&payer, usd(1), at(2)).await.unwrap(), max, "up to the maximum exactly");
    let wallet = Account::new(AccountOwner::Wallet(payer.clone()), max.currency());
    let over = StoreError::WalletLimit { account: wallet.key(), max };
    for amount in [1, max.minor(), 999_999_999_999_999_999, i64::MAX] {
        assert_eq!(store.top_up(&payer, usd(amount), at(3)).await, Err(over.clone()), "{amount}");
    }
    let empty = payer_with(&*store, "PAYER-EMPTY", usd(0)).await;
    let empty_wallet = Account::new(AccountOwner::Wallet(empty.clone()), max.currency());
    let refused = store.top_up(&empty, usd(max.minor() + 1), at(4)).await;
    assert_eq!(refused, Err(StoreError::WalletLimit { account: empty_wallet.key(), max }));
    assert_eq!(store.balance(&wallet).await.unwrap(), max, "the refused top-ups wrote nothing");
    assert_eq!(store.balance(&empty_wallet).await.unwrap(), usd(0));
    let funding = Account::new(AccountOwner::Funding(Environment::Live), max.currency());
    assert_eq!(
        store.balance(&funding).await.unwrap(),
        usd(-max.minor()),
        "issued exactly what the wallet holds"
    );
    assert_sound(&*store).await;
}
