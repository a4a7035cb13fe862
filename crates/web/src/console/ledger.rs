//! The ledger (`/console/ledger`): the balance of every account that is not a payer's wallet
//! (the platform's funding, exchange, payout, fee and tax accounts per environment and
//! currency, and each participant's pending and settled ones), a page at a time by account,
//! and, on request, the ledger check `ocpay` runs after every scenario that moves money
//! (postings balance, wallets are not negative and match their entries, every currency sums to
//! zero). The check reads every entry, so it runs only when asked for.

use std::sync::Arc;

use askama::Template;
use axum::extract::{Query, State};
use ocpay_store::LedgerCheck;
use serde::Deserialize;

use super::{Chrome, Operator};
use crate::Portal;
use crate::pages::lists;
use crate::pages::{PageError, PageResult};

pub(crate) const SECTION: &str = "/console/ledger";

struct AccountRow {
    /// The account's kind (`funding`, `pending`, ...).
    kind: String,
    /// Whose it is: an environment or a client id.
    owner: String,
    currency: String,
    balance: String,
}

/// The ledger check's result in words.
struct CheckView {
    sound: bool,
    postings: u64,
    /// What is wrong, one line each; empty when sound.
    problems: Vec<String>,
    totals: String,
}

fn check_view(check: &LedgerCheck) -> CheckView {
    let mut problems = Vec::new();
    if !check.unbalanced_postings.is_empty() {
        let ids: Vec<String> = check.unbalanced_postings.iter().map(ToString::to_string).collect();
        problems.push(format!("Postings that do not balance: {}", ids.join(", ")));
    }
    for (account, balance) in &check.negative_wallets {
        problems.push(format!("Wallet {account} is below zero: {balance}"));
    }
    for account in &check.balance_mismatches {
        problems.push(format!("Wallet {account}: its kept balance differs from the sum of its entries"));
    }
    for total in check.totals.iter().filter(|total| total.minor() != 0) {
        problems.push(format!("The accounts in {} sum to {total}, not zero", total.currency().code()));
    }
    let totals = match check.totals.is_empty() {
        true => "no entries yet".to_owned(),
        false => check.totals.iter().map(ToString::to_string).collect::<Vec<_>>().join(", "),
    };
    CheckView { sound: check.is_sound(), postings: check.postings, problems, totals }
}

#[derive(Template)]
#[template(path = "console/ledger.html")]
struct Ledger {
    chrome: Chrome,
    accounts: Vec<AccountRow>,
    next: Option<String>,
    first: Option<String>,
    check: Option<CheckView>,
}

#[derive(Default, Deserialize)]
pub(crate) struct LedgerQuery {
    /// The last account key of the page before.
    #[serde(default)]
    after: String,
    /// `run`: run the ledger check.
    #[serde(default)]
    check: String,
}

pub(crate) async fn page(
    State(portal): State<Arc<Portal>>,
    operator: Operator,
    Query(query): Query<LedgerQuery>,
) -> PageResult {
    let size = portal.settings().page_size;
    let after = Some(query.after.as_str()).filter(|after| !after.is_empty());
    if after.is_some_and(|after| after.len() > 200) {
        return Err(PageError::Invalid("after: not a page of accounts; start again from the first".into()));
    }
    let found = portal.app.store.account_balances(after, size + 1).await?;
    let (found, next) = lists::split_page(found, size, |found| found.account.clone());
    let accounts = found
        .iter()
        .map(|found| {
            // Keys are `kind:owner:currency`; an owner may hold no colon of its own.
            let mut parts = found.account.splitn(2, ':');
            let kind = parts.next().unwrap_or_default().to_owned();
            let rest = parts.next().unwrap_or_default();
            let owner = rest.rsplit_once(':').map_or(rest, |(owner, _)| owner).to_owned();
            AccountRow {
                kind,
                owner,
                currency: found.balance.currency().code().to_owned(),
                balance: found.balance.to_string(),
            }
        })
        .collect();
    let check = match query.check.as_str() {
        "run" => Some(check_view(&portal.app.store.ledger_check().await?)),
        _ => None,
    };
    let page = Ledger {
        chrome: Chrome::new(&operator, SECTION),
        accounts,
        next: next.map(|after| lists::link(SECTION, &[("after", &after)])),
        first: after.map(|_| SECTION.to_owned()),
        check,
    };
    Ok(lists::answer(&page, false))
}
