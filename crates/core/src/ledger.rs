//! Double-entry bookkeeping. Every movement of money is one [`Posting`]: a set of entries on
//! accounts whose amounts sum to zero in every currency. Balances are sums of entries; nothing
//! else holds money.
//!
//! Sign convention: an entry adds its amount to its account's balance. A payer's wallet and a
//! merchant's pending balance are positive when the platform owes them; the funding account,
//! where stored value is issued from, goes negative by exactly what was issued.

use std::collections::BTreeMap;
use std::fmt;

use crate::ids::ClientId;
use crate::money::{Currency, Money, MoneyError};
use crate::participant::Environment;
use crate::payer::PayerId;

/// Whose money an account holds.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum AccountOwner {
    /// A payer's stored value.
    Wallet(PayerId),
    /// What the platform owes a merchant (or acquirer) before settlement.
    MerchantPending(ClientId),
    /// The source of issued stored value (top-ups) in one environment. Negative by what was
    /// issued. Sandbox value never mixes with live value.
    Funding(Environment),
    /// Where one currency becomes another in a cross-currency payment or settlement, per
    /// environment.
    Exchange(Environment),
    /// What a settlement batch made payable to a merchant, not yet paid out.
    MerchantSettled(ClientId),
    /// What was paid out to merchants (the counterpart of `settlements mark-paid`).
    Payout(Environment),
    /// The platform's fee revenue.
    FeeRevenue(Environment),
    /// Tax collected on fees.
    FeeTax(Environment),
}

/// One account: an owner and a currency.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Account {
    pub owner: AccountOwner,
    pub currency: Currency,
}

impl Account {
    pub fn new(owner: AccountOwner, currency: Currency) -> Account {
        Account { owner, currency }
    }

    /// A stable text key, such as `wallet:P123:USD` or `funding:SGD`.
    pub fn key(&self) -> String {
        match &self.owner {
            AccountOwner::Wallet(payer) => format!("wallet:{payer}:{}", self.currency),
            AccountOwner::MerchantPending(client) => format!("pending:{client}:{}", self.currency),
            AccountOwner::Funding(environment) => {
                format!("funding:{}:{}", environment.as_str(), self.currency)
            }
            AccountOwner::Exchange(environment) => {
                format!("exchange:{}:{}", environment.as_str(), self.currency)
            }
            AccountOwner::MerchantSettled(client) => format!("settled:{client}:{}", self.currency),
            AccountOwner::Payout(environment) => format!("payout:{}:{}", environment.as_str(), self.currency),
            AccountOwner::FeeRevenue(environment) => {
                format!("fee:{}:{}", environment.as_str(), self.currency)
            }
            AccountOwner::FeeTax(environment) => {
                format!("fee-tax:{}:{}", environment.as_str(), self.currency)
            }
        }
    }

    /// The kind part of the key: `wallet`, `pending`, `funding` or `exchange`.
    pub fn kind(&self) -> &'static str {
        match self.owner {
            AccountOwner::Wallet(_) => "wallet",
            AccountOwner::MerchantPending(_) => "pending",
            AccountOwner::Funding(_) => "funding",
            AccountOwner::Exchange(_) => "exchange",
            AccountOwner::MerchantSettled(_) => "settled",
            AccountOwner::Payout(_) => "payout",
            AccountOwner::FeeRevenue(_) => "fee",
            AccountOwner::FeeTax(_) => "fee-tax",
        }
    }
}

impl fmt::Display for Account {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.key())
    }
}

/// One line of a posting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub account: Account,
    pub amount: Money,
}

crate::named_enum! {
    /// Why a movement of money is made.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
    pub enum PostingKind {
        TopUp = "TOPUP",
        Payment = "PAYMENT",
        /// A paid payment cancelled inside its window: the payment's posting, negated.
        Reversal = "REVERSAL",
        /// Money returned from the merchant's pending balance to the payer's wallet.
        Refund = "REFUND",
        /// A payment's fee and its tax, from the merchant's pending balance to the platform.
        Fee = "FEE",
        /// The share of a payment's fee that a refund or cancel gives back.
        FeeReturn = "FEE_RETURN",
        /// A settlement batch's net amount, from pending to settled (through the exchange
        /// account when the settlement currency differs).
        Settlement = "SETTLEMENT",
        /// Settled money paid out to a merchant.
        Payout = "PAYOUT",
    }
}

/// Why a posting could not be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LedgerError {
    #[error("an entry's amount is not in its account's currency")]
    CurrencyMismatch,
    #[error("a posting's entries do not sum to zero in {0}")]
    Unbalanced(Currency),
    #[error("a posting needs at least two non-zero entries")]
    TooFewEntries,
    #[error(transparent)]
    Money(#[from] MoneyError),
}

/// A balanced set of entries. Constructed only through [`Posting::new`], so every posting
/// that exists balances.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Posting {
    kind: PostingKind,
    entries: Vec<Entry>,
}

impl Posting {
    pub fn new(kind: PostingKind, entries: Vec<Entry>) -> Result<Posting, LedgerError> {
        if entries.len() < 2 || entries.iter().any(|entry| entry.amount.minor() == 0) {
            return Err(LedgerError::TooFewEntries);
        }
        let mut sums: BTreeMap<Currency, Money> = BTreeMap::new();
        for entry in &entries {
            if entry.amount.currency() != entry.account.currency {
                return Err(LedgerError::CurrencyMismatch);
            }
            let sum = sums.entry(entry.amount.currency()).or_insert(Money::zero(entry.amount.currency()));
            *sum = sum.checked_add(entry.amount)?;
        }
        if let Some(currency) = sums.values().find(|sum| sum.minor() != 0).map(|sum| sum.currency()) {
            return Err(LedgerError::Unbalanced(currency));
        }
        Ok(Posting { kind, entries })
    }

    pub fn kind(&self) -> PostingKind {
        self.kind
    }

    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    /// The same movement backwards, as a posting of `kind`.
    pub fn reversed(&self, kind: PostingKind) -> Result<Posting, LedgerError> {
        let entries = self
            .entries
            .iter()
            .map(|entry| Ok(Entry { account: entry.account.clone(), amount: entry.amount.checked_neg()? }))
            .collect::<Result<Vec<_>, MoneyError>>()?;
        Posting::new(kind, entries)
    }
}

/// The most a payer's wallet may hold: a number of whole units of its currency (the
/// `wallet_balance_max_major` setting), the same for every currency. Every entry that adds to a
/// wallet is checked against it where it is written, so that no wallet, and no sum of wallets'
/// entries, leaves the range of an `i64`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WalletLimit {
    max_major: i64,
}

impl WalletLimit {
    /// The default: a million million units (USD 1,000,000,000,000.00, 10^14 cents).
    pub const DEFAULT_MAJOR: i64 = 1_000_000_000_000;
    /// The largest setting accepted: even in a currency with four decimals it stays below
    /// 10^17 minor units, a tenth of the largest amount `pay` accepts.
    pub const MAX_MAJOR: i64 = 10_000_000_000_000;

    /// A limit of `max_major` whole units, or why it cannot be one.
    pub fn new(max_major: i64) -> Result<WalletLimit, String> {
        if (1..=Self::MAX_MAJOR).contains(&max_major) {
            Ok(WalletLimit { max_major })
        } else {
            Err(format!("wallet_balance_max_major: must be from 1 to {}, not {max_major}", Self::MAX_MAJOR))
        }
    }

    pub fn max_major(self) -> i64 {
        self.max_major
    }

    /// The most a wallet in `currency` may hold, in its minor units.
    pub fn max(self, currency: Currency) -> Money {
        // At most 10^13 * 10^4: no overflow, but saturate rather than trust that.
        Money::new(self.max_major.saturating_mul(10i64.saturating_pow(currency.exponent())), currency)
    }

    /// How much more a wallet holding `balance` may take.
    pub fn room(self, balance: Money) -> Money {
        let max = self.max(balance.currency());
        Money::new(max.minor().saturating_sub(balance.minor()).max(0), balance.currency())
    }
}

impl Default for WalletLimit {
    fn default() -> WalletLimit {
        WalletLimit { max_major: Self::DEFAULT_MAJOR }
    }
}

/// Stored value issued to a payer of `environment`: that environment's funding pays the wallet.
pub fn top_up(payer: &PayerId, environment: Environment, amount: Money) -> Result<Posting, LedgerError> {
    let currency = amount.currency();
    let funding = Account::new(AccountOwner::Funding(environment), currency);
    Posting::new(
        PostingKind::TopUp,
        vec![
            Entry { account: funding, amount: amount.checked_neg()? },
            Entry { account: Account::new(AccountOwner::Wallet(payer.clone()), currency), amount },
        ],
    )
}

/// A payer pays a merchant: `charged` leaves the wallet, `credited` reaches the merchant's
/// pending balance. When the currencies differ the exchange account takes one and gives the
/// other, so each currency balances on its own.
pub fn payment(
    payer: &PayerId,
    merchant: &ClientId,
    charged: Money,
    credited: Money,
) -> Result<Posting, LedgerError> {
    between(PostingKind::Payment, payer, merchant, charged, credited)
}

/// A merchant refunds a payer: `debited` leaves the merchant's pending balance (which may go
/// negative: the merchant then owes the platform), `returned` reaches the wallet.
pub fn refund(
    payer: &PayerId,
    merchant: &ClientId,
    debited: Money,
    returned: Money,
) -> Result<Posting, LedgerError> {
    between(PostingKind::Refund, payer, merchant, returned.checked_neg()?, debited.checked_neg()?)
}

/// Money between a wallet and a merchant: `charged` leaves the wallet (negative: it comes
/// in), `credited` reaches the merchant's pending balance (negative: it leaves). A payer pays
/// only merchants of its own environment, which the merchant's client id names.
fn between(
    kind: PostingKind,
    payer: &PayerId,
    merchant: &ClientId,
    charged: Money,
    credited: Money,
) -> Result<Posting, LedgerError> {
    let wallet = Account::new(AccountOwner::Wallet(payer.clone()), charged.currency());
    let pending = Account::new(AccountOwner::MerchantPending(merchant.clone()), credited.currency());
    let mut entries = vec![
        Entry { account: wallet, amount: charged.checked_neg()? },
        Entry { account: pending, amount: credited },
    ];
    if charged.currency() != credited.currency() {
        let exchange = AccountOwner::Exchange(Environment::of_client_id(merchant));
        entries.push(Entry { account: Account::new(exchange.clone(), charged.currency()), amount: charged });
        entries.push(Entry {
            account: Account::new(exchange, credited.currency()),
            amount: credited.checked_neg()?,
        });
    } else if charged != credited {
        return Err(LedgerError::Unbalanced(charged.currency()));
    }
    Posting::new(kind, entries)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_wallet_limit_is_whole_units_of_each_currency() {
        let limit = WalletLimit::new(1_000).unwrap();
        let usd = Currency::parse("USD").unwrap();
        assert_eq!(limit.max(usd), Money::new(100_000, usd));
        assert_eq!(limit.max(Currency::parse("JPY").unwrap()).minor(), 1_000);
        assert_eq!(limit.max(Currency::parse("KWD").unwrap()).minor(), 1_000_000);
        assert_eq!(limit.room(Money::new(99_000, usd)), Money::new(1_000, usd));
        assert_eq!(limit.room(Money::new(200_000, usd)), Money::new(0, usd), "never negative");
        assert!(WalletLimit::new(0).is_err());
        assert!(WalletLimit::new(WalletLimit::MAX_MAJOR + 1).is_err());
        let most = WalletLimit::new(WalletLimit::MAX_MAJOR).unwrap();
        assert!(most.max(Currency::parse("UYW").unwrap_or(usd)).minor() < 10i64.pow(17) + 1);
    }

    fn money(code: &str, minor: i64) -> Money {
        Money::new(minor, Currency::parse(code).unwrap())
    }

    fn payer() -> PayerId {
        PayerId::parse("P1").unwrap()
    }

    fn merchant() -> ClientId {
        ClientId::parse("M1").unwrap()
    }

    const CODES: [&str; 6] = ["JPY", "KRW", "USD", "SGD", "KWD", "BHD"];

    /// The sum of a posting's entries per currency, and per account.
    fn sums(posting: &Posting) -> (BTreeMap<Currency, i128>, BTreeMap<String, i128>) {
        let (mut currencies, mut accounts) = (BTreeMap::new(), BTreeMap::new());
        for entry in posting.entries() {
            assert_eq!(entry.amount.currency(), entry.account.currency, "in its account's currency");
            *currencies.entry(entry.amount.currency()).or_default() += i128::from(entry.amount.minor());
            *accounts.entry(entry.account.key()).or_default() += i128::from(entry.amount.minor());
        }
        (currencies, accounts)
    }

    proptest::proptest! {
        /// Whatever amounts and currencies core is given, a posting it makes balances in every
        /// currency and moves exactly the amounts asked for: the wallet gives what was charged
        /// and the merchant gets what was credited; a refund of the same amounts and a reversal
        /// move them back exactly; and what it cannot balance it refuses.
        #[test]
        fn postings_balance_and_move_exactly_the_amounts_asked(
            charged_code in 0..CODES.len(),
            credited_code in 0..CODES.len(),
            charged in -3i64..=i64::MAX / 2,
            credited in -3i64..=i64::MAX / 2,
            sandbox in proptest::prelude::any::<bool>(),
            same_amount in proptest::prelude::any::<bool>(),
        ) {
            let credited = if same_amount { charged } else { credited };
            let merchant = if sandbox { ClientId::parse("SANDBOX_M1").unwrap() } else { merchant() };
            let charged = money(CODES[charged_code], charged);
            let credited = money(CODES[credited_code], credited);
            let wallet = Account::new(AccountOwner::Wallet(payer()), charged.currency()).key();
            let pending =
                Account::new(AccountOwner::MerchantPending(merchant.clone()), credited.currency()).key();
            let Ok(paid) = payment(&payer(), &merchant, charged, credited) else {
                // Refused: a zero amount, or one currency with two amounts.
                proptest::prop_assert!(
                    charged.minor() == 0
                        || credited.minor() == 0
                        || (charged.currency() == credited.currency() && charged != credited)
                );
                return Ok(());
            };
            let (currencies, accounts) = sums(&paid);
            proptest::prop_assert!(currencies.values().all(|sum| *sum == 0), "{:?}", paid);
            proptest::prop_assert_eq!(accounts[&wallet], -i128::from(charged.minor()));
            proptest::prop_assert_eq!(accounts[&pending], i128::from(credited.minor()));
            let environment = if sandbox { "sandbox" } else { "live" };
            let exchanges = accounts.keys().filter(|key| key.starts_with("exchange:")).count();
            let expected = if charged.currency() == credited.currency() { 0 } else { 2 };
            proptest::prop_assert_eq!(exchanges, expected);
            let own_exchange = format!("exchange:{environment}:");
            let foreign =
                accounts.keys().find(|key| key.starts_with("exchange:") && !key.starts_with(&own_exchange));
            proptest::prop_assert_eq!(foreign, None, "the merchant's environment exchanges");
            let refunded = refund(&payer(), &merchant, credited, charged).unwrap();
            for back in [refunded, paid.reversed(PostingKind::Reversal).unwrap()] {
                let (currencies, undone) = sums(&back);
                proptest::prop_assert!(currencies.values().all(|sum| *sum == 0));
                for (account, sum) in &accounts {
                    proptest::prop_assert_eq!(undone[account], -sum, "{} is given back exactly", account);
                }
            }
            let issued = top_up(&payer(), Environment::Live, charged).unwrap();
            let (currencies, accounts) = sums(&issued);
            proptest::prop_assert!(currencies.values().all(|sum| *sum == 0));
            proptest::prop_assert_eq!(accounts[&wallet], i128::from(charged.minor()));
        }
    }

    #[test]
    fn postings_must_balance_per_currency() {
        let wallet = Account::new(AccountOwner::Wallet(payer()), Currency::parse("USD").unwrap());
        let funding = Account::new(AccountOwner::Funding(Environment::Live), Currency::parse("USD").unwrap());
        let entry = |account: &Account, amount| Entry { account: account.clone(), amount };
        assert!(
            Posting::new(
                PostingKind::TopUp,
                vec![entry(&wallet, money("USD", 5)), entry(&funding, money("USD", -5))]
            )
            .is_ok()
        );
        assert_eq!(
            Posting::new(
                PostingKind::TopUp,
                vec![entry(&wallet, money("USD", 5)), entry(&funding, money("USD", -4))]
            ),
            Err(LedgerError::Unbalanced(Currency::parse("USD").unwrap()))
        );
        assert_eq!(
            Posting::new(
                PostingKind::TopUp,
                vec![entry(&wallet, money("SGD", 5)), entry(&funding, money("SGD", -5))]
            ),
            Err(LedgerError::CurrencyMismatch)
        );
        assert_eq!(
            Posting::new(PostingKind::TopUp, vec![entry(&wallet, money("USD", 0))]),
            Err(LedgerError::TooFewEntries)
        );
    }

    #[test]
    fn a_cross_currency_payment_balances_in_each_currency_through_the_exchange() {
        let posting = payment(&payer(), &merchant(), money("SGD", 1682), money("USD", 1250)).unwrap();
        assert_eq!(posting.entries().len(), 4);
        let reversal = posting.reversed(PostingKind::Reversal).unwrap();
        for (forward, backward) in posting.entries().iter().zip(reversal.entries()) {
            assert_eq!(forward.amount.minor(), -backward.amount.minor());
        }
        let same = payment(&payer(), &merchant(), money("USD", 1250), money("USD", 1250)).unwrap();
        assert_eq!(same.entries().len(), 2);
        assert!(payment(&payer(), &merchant(), money("USD", 1250), money("USD", 1249)).is_err());
        let issued = top_up(&payer(), Environment::Sandbox, money("USD", 100)).unwrap();
        assert_eq!(issued.entries()[0].account.key(), "funding:sandbox:USD", "sandbox value is issued apart");
        let exchange = posting.entries().iter().find(|entry| entry.account.kind() == "exchange").unwrap();
        assert_eq!(exchange.account.key(), "exchange:live:SGD", "a live merchant's exchange");
        let refunded = refund(&payer(), &merchant(), money("USD", 625), money("SGD", 840)).unwrap();
        assert_eq!(refunded.kind(), PostingKind::Refund);
        let wallet = refunded.entries().iter().find(|entry| entry.account.kind() == "wallet").unwrap();
        assert_eq!(wallet.amount, money("SGD", 840), "the wallet gets the money back");
        let pending = refunded.entries().iter().find(|entry| entry.account.kind() == "pending").unwrap();
        assert_eq!(pending.amount, money("USD", -625), "the merchant gives it");
    }
}
