//! The developer center's reads: lists of one participant's payments, refunds and
//! registrations, filtered and paged by keyset; and the Agent-Tokens held for an ISV's owner.

use std::sync::Arc;

use ocpay_core::Timestamp;
use ocpay_core::access::{Grant, Scopes};
use ocpay_core::ids::{ClientId, PaymentRequestId, RegistrationId, RegistrationRequestId};
use ocpay_core::money::Currency;
use ocpay_core::payment::{FailReason, Payment, PaymentStatus};
use ocpay_core::registration::{Decision, RegistrationTerms};

use crate::pages::{HeldToken, PageCursor, PaymentFilter};
use crate::{NewGrant, RefundCompletion, Store};

use super::{at, client, created, merchant, paid_by, payer_with, refund_of, sample_terms, sgd, usd};

/// Every page of a list, each at most `size` long, following the cursor of the last row.
async fn walk<T, F, Fut>(size: u32, mut page: F, cursor_of: impl Fn(&T) -> PageCursor) -> Vec<Vec<T>>
where
    F: FnMut(Option<PageCursor>, u32) -> Fut,
    Fut: std::future::Future<Output = Vec<T>>,
{
    let mut pages = Vec::new();
    let mut after = None;
    loop {
        let rows = page(after.clone(), size).await;
        assert!(rows.len() <= size as usize, "a page holds at most its limit");
        let Some(last) = rows.last() else { break };
        after = Some(cursor_of(last));
        let full = rows.len() == size as usize;
        pages.push(rows);
        if !full {
            break;
        }
    }
    pages
}

fn payment_cursor(payment: &Payment) -> PageCursor {
    PageCursor { created_at: payment.terms.created_at, id: payment.terms.id.to_string() }
}

fn request_ids(payments: &[Payment]) -> Vec<String> {
    payments.iter().map(|payment| payment.terms.request_id.to_string()).collect()
}

pub async fn payment_pages_filter_and_follow_the_keyset(store: Arc<dyn Store>) {
    let alice = merchant(&*store, "ALICE").await;
    let bob = merchant(&*store, "BOB").await;
    // Seven payments of Alice: two created in the same millisecond (ties are ordered by id),
    // one in SGD, one failed; and one of Bob's, newer than all of them.
    let specs: [(&str, i64, i64, bool); 7] = [
        ("PR-1", 10, 100, false),
        ("PR-2", 20, 250, false),
        ("PR-3", 30, 990, false),
        ("PR-4", 30, 500, false),
        ("PR-5", 40, 700, true),
        ("PR-6", 50, 1200, false),
        ("PR-7", 60, 300, false),
    ];
    for (request_id, second, amount, sgd_payment) in specs {
        let mut terms = sample_terms(&alice, request_id, amount);
        terms.created_at = at(second);
        terms.expires_at = at(second + 900);
        if sgd_payment {
            terms.amount = sgd(amount);
            terms.order.amount = sgd(amount);
        }
        store.create_payment(&terms).await.unwrap();
        if request_id == "PR-3" {
            store.fail_payment(&terms.code_token, FailReason::RiskReject, at(35)).await.unwrap();
        }
    }
    let mut foreign = sample_terms(&bob, "PR-1", 100);
    foreign.created_at = at(70);
    store.create_payment(&foreign).await.unwrap();

    let list = |filter: PaymentFilter, size: u32| {
        let store = store.clone();
        let alice = alice.clone();
        async move {
            let pages = walk(
                size,
                |after, limit| {
                    let (store, alice, filter) = (store.clone(), alice.clone(), filter.clone());
                    async move { store.payments_page(&alice, &filter, after.as_ref(), limit).await.unwrap() }
                },
                payment_cursor,
            )
            .await;
            pages.iter().map(|page| request_ids(page)).collect::<Vec<_>>()
        }
    };
    let newest_first = ["PR-7", "PR-6", "PR-5", "PR-4", "PR-3", "PR-2", "PR-1"];
    assert_eq!(
        list(PaymentFilter::default(), 3).await,
        vec![vec!["PR-7", "PR-6", "PR-5"], vec!["PR-4", "PR-3", "PR-2"], vec!["PR-1"]],
        "newest first, ties by id, never another owner's"
    );
    assert_eq!(list(PaymentFilter::default(), 7).await.concat(), newest_first, "a full last page");
    // A row created meanwhile does not shift the pages after it.
    let first = store.payments_page(&alice, &PaymentFilter::default(), None, 2).await.unwrap();
    let mut newer = sample_terms(&alice, "PR-8", 100);
    newer.created_at = at(80);
    store.create_payment(&newer).await.unwrap();
    let next = store
        .payments_page(&alice, &PaymentFilter::default(), Some(&payment_cursor(&first[1])), 2)
        .await
        .unwrap();
    assert_eq!(request_ids(&next), ["PR-5", "PR-4"]);

    let failed = PaymentFilter { status: Some(PaymentStatus::Fail), ..PaymentFilter::default() };
    assert_eq!(list(failed, 2).await.concat(), ["PR-3"]);
    let processing = PaymentFilter { status: Some(PaymentStatus::Processing), ..PaymentFilter::default() };
    assert_eq!(list(processing, 2).await.concat(), ["PR-8", "PR-7", "PR-6", "PR-5", "PR-4", "PR-2", "PR-1"]);
    let window = PaymentFilter { from: Some(at(20)), to: Some(at(50)), ..PaymentFilter::default() };
    assert_eq!(
        list(window.clone(), 2).await.concat(),
        ["PR-5", "PR-4", "PR-3", "PR-2"],
        "from ≤ created < to"
    );
    // A cursor from outside the window starts at the window's end.
    let late = PageCursor { created_at: at(1_000), id: "Z".into() };
    let from_late = store.payments_page(&alice, &window, Some(&late), 10).await.unwrap();
    assert_eq!(request_ids(&from_late), ["PR-5", "PR-4", "PR-3", "PR-2"]);
    let usd_code = Currency::parse("USD").unwrap();
    let amounts = PaymentFilter {
        currency: Some(usd_code),
        amount_min: Some(250),
        amount_max: Some(990),
        ..PaymentFilter::default()
    };
    assert_eq!(
        list(amounts, 2).await.concat(),
        ["PR-7", "PR-4", "PR-3", "PR-2"],
        "inclusive bounds, USD only"
    );
    let in_sgd = PaymentFilter { currency: Currency::parse("SGD").ok(), ..PaymentFilter::default() };
    assert_eq!(list(in_sgd, 2).await.concat(), ["PR-5"]);
    let by_request = |id: &str| PaymentFilter {
        request_id: Some(PaymentRequestId::parse(id).unwrap()),
        ..PaymentFilter::default()
    };
    assert_eq!(list(by_request("PR-4"), 2).await.concat(), ["PR-4"]);
    assert!(list(by_request("PR-404"), 2).await.concat().is_empty());
    let mixed = PaymentFilter { status: Some(PaymentStatus::Fail), ..by_request("PR-4") };
    assert!(list(mixed, 2).await.concat().is_empty(), "every filter holds together");
    let bobs = store.payments_page(&bob, &PaymentFilter::default(), None, 10).await.unwrap();
    assert_eq!(request_ids(&bobs), ["PR-1"]);
    assert_eq!(bobs[0].terms.owner, bob);
    assert!(store.payments_page(&client("NOBODY"), &by_request("PR-1"), None, 10).await.unwrap().is_empty());
}

pub async fn refund_and_registration_pages_follow_the_keyset(store: Arc<dyn Store>) {
    let payer = payer_with(&*store, "payer-pages", usd(100_000)).await;
    let (alice, payment) = paid_by(&*store, "PR-REFUNDED", 10_000, &payer).await;
    let mut ids = Vec::new();
    for n in 0..5 {
        let mut refund = refund_of(&payment, &format!("RR-{n}"), usd(100), at(200 + n));
        if n == 3 {
            refund.completion = RefundCompletion::SucceedsAt(at(10_000));
        }
        ids.push(created(store.create_refund(&refund).await.unwrap()).terms.id.to_string());
    }
    let bob = merchant(&*store, "BOB").await;
    let refund_cursor = |refund: &ocpay_core::refund::Refund| PageCursor {
        created_at: refund.terms.created_at,
        id: refund.terms.id.to_string(),
    };
    let refunds = |owner: ClientId, status: Option<&'static str>| {
        let store = store.clone();
        async move {
            walk(
                2,
                |after, limit| {
                    let (store, owner) = (store.clone(), owner.clone());
                    async move { store.refunds_page(&owner, status, after.as_ref(), limit).await.unwrap() }
                },
                refund_cursor,
            )
            .await
            .into_iter()
            .map(|page| page.into_iter().map(|refund| refund.terms.id.to_string()).collect::<Vec<_>>())
            .collect::<Vec<_>>()
        }
    };
    let newest_first: Vec<String> = ids.iter().rev().cloned().collect();
    let pages = refunds(alice.clone(), None).await;
    assert_eq!(pages.len(), 3, "two full pages and a last one");
    assert_eq!(pages.concat(), newest_first);
    assert_eq!(refunds(alice.clone(), Some("PROCESSING")).await.concat(), [ids[3].clone()]);
    assert_eq!(refunds(alice.clone(), Some("SUCCESS")).await.concat().len(), 4);
    assert!(refunds(alice.clone(), Some("FAIL")).await.concat().is_empty());
    assert!(refunds(bob.clone(), None).await.concat().is_empty(), "never another owner's");

    let acquirer = merchant(&*store, "ACQ-PAGES").await;
    let registration = |owner: &ClientId, n: i64| RegistrationTerms {
        id: RegistrationId::parse(&format!("G-{owner}-{n}")).unwrap(),
        owner: owner.clone(),
        request_id: RegistrationRequestId::parse(&format!("REG-{n}")).unwrap(),
        reference_merchant_id: format!("M{n}"),
        reference_store_id: "S1".into(),
        content: format!(r#"{{"merchant":"M{n}"}}"#),
        notify_url: None,
        // Two in one millisecond: ties are ordered by id.
        created_at: at(n.min(3)),
        automatic: None,
    };
    for n in 0..5 {
        store.create_registration(&registration(&acquirer, n)).await.unwrap();
    }
    store.create_registration(&registration(&bob, 9)).await.unwrap();
    let rejected = RegistrationId::parse(&format!("G-{acquirer}-1")).unwrap();
    let reason = "incomplete".parse().unwrap();
    store
        .decide_registration(Some(&acquirer), &rejected, &Decision::Reject { reason }, at(50))
        .await
        .unwrap();
    let registration_cursor = |registration: &ocpay_core::registration::Registration| PageCursor {
        created_at: registration.terms.created_at,
        id: registration.terms.id.to_string(),
    };
    let registrations = |status: Option<&'static str>| {
        let (store, acquirer) = (store.clone(), acquirer.clone());
        async move {
            walk(
                2,
                |after, limit| {
                    let (store, acquirer) = (store.clone(), acquirer.clone());
                    async move {
                        store.registrations_page(&acquirer, status, after.as_ref(), limit).await.unwrap()
                    }
                },
                registration_cursor,
            )
            .await
            .concat()
            .into_iter()
            .map(|registration| registration.terms.request_id.to_string())
            .collect::<Vec<_>>()
        }
    };
    assert_eq!(registrations(None).await, ["REG-4", "REG-3", "REG-2", "REG-1", "REG-0"]);
    assert_eq!(registrations(Some("REJECTED")).await, ["REG-1"]);
    assert_eq!(registrations(Some("PROCESSING")).await, ["REG-4", "REG-3", "REG-2", "REG-0"]);
    assert!(registrations(Some("APPROVED")).await.is_empty());
}

pub async fn held_tokens_are_taken_once_and_forgotten(store: Arc<dyn Store>) {
    let alice = merchant(&*store, "ALICE").await;
    let isv = client("ISV1");
    let grant = |id: &str, hash: &str| Grant {
        id: id.into(),
        merchant: alice.clone(),
        isv: isv.clone(),
        scopes: Scopes::parse("pay").unwrap(),
        token_sha256: hash.repeat(32),
        created_at: at(5),
        expires_at: Some(at(5_000)),
        revoked_at: None,
    };
    let held = |until: Timestamp| HeldToken {
        sealed: "sealed-token".into(),
        hint: "ocpay_at_AbCd".into(),
        hold_until: until,
    };
    for (id, hash) in [("G-1", "ab"), ("G-2", "cd"), ("G-3", "ef")] {
        let new = NewGrant { grant: grant(id, hash), notice: None, held: Some(held(at(100))) };
        store.create_grant(&new, at(5)).await.unwrap();
    }
    let without = NewGrant { grant: grant("G-4", "12"), notice: None, held: None };
    store.create_grant(&without, at(5)).await.unwrap();
    assert!(!format!("{:?}", held(at(1))).contains("sealed-token"), "Debug leaves the sealed token out");

    let holds = store.token_holds(&isv, at(10)).await.unwrap();
    assert_eq!(
        holds.iter().map(|hold| (hold.grant_id.as_str(), hold.held)).collect::<Vec<_>>(),
        [("G-1", true), ("G-2", true), ("G-3", true)]
    );
    assert_eq!(holds[0].hint, "ocpay_at_AbCd");
    assert!(store.token_holds(&alice, at(10)).await.unwrap().is_empty(), "held for the ISV only");

    assert_eq!(store.take_held_token("G-1", &alice, "owner@alice.example", at(10)).await.unwrap(), None);
    assert_eq!(
        store.take_held_token("G-1", &isv, "owner@isv.example", at(10)).await.unwrap().as_deref(),
        Some("sealed-token")
    );
    assert_eq!(store.take_held_token("G-1", &isv, "owner@isv.example", at(11)).await.unwrap(), None, "once");
    let taken = store.token_holds(&isv, at(12)).await.unwrap().remove(0);
    assert_eq!(
        (taken.held, taken.taken_at, taken.taken_by.as_deref()),
        (false, Some(at(10)), Some("owner@isv.example"))
    );

    // Two takes at once: exactly one gets it.
    let (one, two) = tokio::join!(
        store.take_held_token("G-2", &isv, "a@isv.example", at(20)),
        store.take_held_token("G-2", &isv, "b@isv.example", at(20)),
    );
    assert_eq!([one.unwrap(), two.unwrap()].iter().flatten().count(), 1);

    // Revoking the grant forgets its token; so does the end of the hold.
    store.revoke_grant("G-3", at(30)).await.unwrap();
    assert_eq!(store.take_held_token("G-3", &isv, "owner@isv.example", at(31)).await.unwrap(), None);
    let late = NewGrant { grant: grant("G-5", "34"), notice: None, held: Some(held(at(100))) };
    store.create_grant(&late, at(40)).await.unwrap();
    assert!(!store.token_holds(&isv, at(100)).await.unwrap().iter().any(|hold| hold.held), "the hold ended");
    assert_eq!(store.take_held_token("G-5", &isv, "owner@isv.example", at(100)).await.unwrap(), None);
    assert_eq!(store.forget_held_tokens(at(99)).await.unwrap(), 0);
    assert_eq!(store.forget_held_tokens(at(100)).await.unwrap(), 1, "only G-5 was still held");
    assert_eq!(store.forget_held_tokens(at(100)).await.unwrap(), 0);
    assert_eq!(store.token_holds(&isv, at(0)).await.unwrap().iter().filter(|hold| hold.held).count(), 0);
}
