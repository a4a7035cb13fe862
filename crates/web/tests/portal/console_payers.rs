//! The console's Payers and Ledger pages, over HTTP as a browser would: a payer found by the
//! start of its id, created, topped up in major units (the balance moves by exactly that, and
//! the ledger check stays sound), unlocked after wrong PINs; the ledger's balances by account;
//! each change audited with the operator; and nobody else reaching them: signed out, or signed
//! in to the developer center, a page leads to the console's sign-in and a form changes nothing.

use ocpay_core::ids::ClientId;
use ocpay_core::ledger::{Account, AccountOwner};
use ocpay_core::money::{Currency, Money};
use ocpay_core::payer::PayerId;
use ocpay_core::portal::Role;
use ocpay_server::clock::Clock as _;
use ocpay_store::PortalUserChange;
use ocpay_testkit::{TestApp, unique_id};
use ocpay_web::auth::{new_totp_secret, totp_now};
use reqwest::StatusCode;

use crate::browser::{Browser, PASSWORD};
use crate::console::console_sign_in;
use crate::payments::{audited, signed_in};

/// An operator with the second factor on, signed in to the console.
pub(crate) async fn operator(app: &TestApp, email: &str) -> Browser {
    let secret = operator_account(app, email).await;
    let browser = Browser::new(app);
    let code = totp_now(&secret, app.clock.now()).unwrap();
    let answer = console_sign_in(&browser, email, PASSWORD, &code).await;
    assert_eq!(answer.location.as_deref(), Some("/console/"), "{email} signs in: {}", answer.body);
    browser
}

/// An operator with [`PASSWORD`] and the second factor on; its TOTP secret.
pub(crate) async fn operator_account(app: &TestApp, email: &str) -> String {
    crate::console::operator(app, email).await;
    let store = &*app.state.store;
    let created = store.operator_by_email(email).await.unwrap().expect("the operator");
    let secret = new_totp_secret();
    let change = PortalUserChange { totp_secret: Some(Some(secret.clone())), ..PortalUserChange::default() };
    store.update_operator(&created.user_id, &change).await.unwrap().expect("the operator");
    secret
}

/// Payers' changes are filed under this name in the audit trail.
pub(crate) fn payers_audit() -> ClientId {
    ClientId::parse("payers").unwrap()
}

fn usd() -> Currency {
    Currency::parse("USD").unwrap()
}

/// Every page and form of the console's own sections, for the access checks.
pub(crate) async fn refuses_everyone_else(app: &TestApp, pages: &[&str], forms: &[&str]) {
    let signed_out = Browser::new(app);
    let merchant = app.merchant().await;
    let email = format!("{}@shop.example", unique_id("owner"));
    let participant_user = signed_in(app, &merchant.client_id, &email, Role::Owner).await;
    for browser in [&signed_out, &participant_user] {
        for page in pages {
            let answer = browser.get(page).await;
            assert_eq!(answer.status, StatusCode::SEE_OTHER, "{page}: {}", answer.body);
            assert_eq!(answer.location.as_deref(), Some("/console/login"), "{page}");
        }
        for form in forms {
            let answer = browser.post(form, &[("csrf", "x"), ("amount", "5"), ("currency", "USD")]).await;
            assert_ne!(answer.status, StatusCode::OK, "{form}");
            assert!(
                answer.status.is_redirection() || answer.status.is_client_error(),
                "{form}: {}",
                answer.status
            );
            assert_eq!(answer.location.as_deref().unwrap_or("/console/login"), "/console/login", "{form}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_creates_finds_and_tops_up_a_payer_and_the_ledger_stays_balanced() {
    let app = TestApp::spawn().await;
    let console = operator(&app, "ops@platform.example").await;
    let id = unique_id("sandbox-console");

    let page = console.get("/console/payers").await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert!(page.body.contains("Create a payer"));

    // A live payer without a PIN is refused, the field named, and nothing is made.
    let refused = console
        .post(
            "/console/payers",
            &[
                ("csrf", &page.csrf()),
                ("payer_id", "live-no-pin"),
                ("environment", "live"),
                ("currency", "USD"),
            ],
        )
        .await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST, "{}", refused.body);
    assert!(refused.body.contains("pin: live payers need a PIN"), "{}", refused.body);
    assert!(app.state.store.payer(&PayerId::parse("live-no-pin").unwrap()).await.unwrap().is_none());

    let created = console
        .post(
            "/console/payers",
            &[("csrf", &page.csrf()), ("payer_id", &id), ("environment", "sandbox"), ("currency", "usd")],
        )
        .await;
    let path = format!("/console/payers/{id}");
    assert_eq!(
        created.location.as_deref(),
        Some(format!("{path}?done=created").as_str()),
        "{}",
        created.body
    );

    // Found by the start of its id.
    let found = console.get(&format!("/console/payers?q={}", &id[..id.len() - 3])).await;
    assert!(found.body.contains(&format!("href=\"{path}\"")), "{}", found.body);
    let none = console.get("/console/payers?q=nobody-has-this").await;
    assert!(none.body.contains("No payer has an id starting with"), "{}", none.body);

    // An amount with more decimals than the currency has is refused, never rounded.
    let detail = console.get(&path).await;
    let csrf = detail.csrf();
    let top_up = format!("{path}/top-up");
    let bad = console.post(&top_up, &[("csrf", &csrf), ("amount", "12.345"), ("currency", "USD")]).await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert!(bad.body.contains("amount: must be an amount in USD"), "{}", bad.body);
    let zero = console.post(&top_up, &[("csrf", &csrf), ("amount", "0"), ("currency", "USD")]).await;
    assert!(zero.body.contains("amount: must be greater than zero"), "{}", zero.body);

    let done = console.post(&top_up, &[("csrf", &csrf), ("amount", "12.50"), ("currency", "USD")]).await;
    assert_eq!(done.location.as_deref(), Some(format!("{path}?done=topped-up").as_str()), "{}", done.body);
    let payer = PayerId::parse(&id).unwrap();
    let wallet = Account::new(AccountOwner::Wallet(payer.clone()), usd());
    assert_eq!(app.state.store.balance(&wallet).await.unwrap(), Money::new(1250, usd()));
    let check = app.state.store.ledger_check().await.unwrap();
    assert!(check.is_sound(), "{check:?}");

    let detail = console.get(&format!("{path}?done=topped-up")).await;
    assert!(detail.body.contains("its balance is now USD 12.50"), "{}", detail.body);
    assert!(detail.body.contains("TOPUP") && detail.body.contains("USD +12.50"), "{}", detail.body);

    // The ledger page: the sandbox funding account is negative by what was issued, and the
    // check, when asked for, is sound.
    let ledger = console.get("/console/ledger?check=run").await;
    assert_eq!(ledger.status, StatusCode::OK, "{}", ledger.body);
    assert!(
        ledger.body.contains("<code>sandbox</code>") && ledger.body.contains("USD -12.50"),
        "{}",
        ledger.body
    );
    assert!(ledger.body.contains("Sound:"), "{}", ledger.body);

    let on = audited(&app, "payers", "console.topUp", 3).await;
    assert_eq!(on.iter().filter(|code| *code == "SUCCESS").count(), 1, "{on:?}");
    let events = app.state.store.audit_events(&payers_audit(), 50).await.unwrap();
    let event =
        events.iter().find(|event| event.api == "console.createPayer" && event.result_code == "SUCCESS");
    let named = event.and_then(|event| event.idempotency_key.clone()).unwrap_or_default();
    assert!(named.contains("ops@platform.example") && named.contains(&id), "{named}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_unlocks_a_payer_locked_after_wrong_pins() {
    let app = TestApp::spawn().await;
    let store = &*app.state.store;
    let id = unique_id("live-pins");
    let payer = ocpay_server::service::wallet::create_payer(
        store,
        app.clock.now(),
        PayerId::parse(&id).unwrap(),
        ocpay_core::participant::Environment::Live,
        usd(),
        Some("123456"),
        1_000,
    )
    .await
    .unwrap();
    let max = app.state.settings.pin.failures_max;
    let until = app.clock.now() + jiff::SignedDuration::from_mins(15);
    for _ in 0..max {
        assert!(store.pin_attempt(&payer.id, max, until, app.clock.now()).await.unwrap());
    }
    assert!(!store.pin_attempt(&payer.id, max, until, app.clock.now()).await.unwrap(), "locked");

    let console = operator(&app, "ops@platform.example").await;
    let path = format!("/console/payers/{id}");
    let detail = console.get(&path).await;
    assert!(detail.body.contains("Locked until"), "{}", detail.body);
    let unlocked = console.post(&format!("{path}/unlock"), &[("csrf", &detail.csrf())]).await;
    assert_eq!(unlocked.location.as_deref(), Some(format!("{path}?done=unlocked").as_str()));
    let after = store.payer(&payer.id).await.unwrap().unwrap();
    assert_eq!((after.pin_failures, after.locked_until), (0, None));
    assert!(store.pin_attempt(&payer.id, max, until, app.clock.now()).await.unwrap(), "may try again");
    assert_eq!(audited(&app, "payers", "console.unlockPayer", 1).await, ["SUCCESS"]);

    // A payer that does not exist is not found, and a form without the session's token
    // changes nothing.
    assert_eq!(console.get("/console/payers/live-nobody").await.status, StatusCode::NOT_FOUND);
    let forged = console
        .post(&format!("{path}/top-up"), &[("csrf", "forged"), ("amount", "1"), ("currency", "USD")])
        .await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn payers_and_the_ledger_are_the_operators_only() {
    let app = TestApp::spawn().await;
    let id = unique_id("sandbox-other");
    let store = &*app.state.store;
    ocpay_server::service::wallet::create_payer(
        store,
        app.clock.now(),
        PayerId::parse(&id).unwrap(),
        ocpay_core::participant::Environment::Sandbox,
        usd(),
        None,
        1_000,
    )
    .await
    .unwrap();
    let path = format!("/console/payers/{id}");
    refuses_everyone_else(
        &app,
        &["/console/payers", &path, "/console/ledger", "/console/ledger?check=run"],
        &["/console/payers", &format!("{path}/top-up"), &format!("{path}/unlock")],
    )
    .await;
    let wallet = Account::new(AccountOwner::Wallet(PayerId::parse(&id).unwrap()), usd());
    assert_eq!(store.balance(&wallet).await.unwrap(), Money::new(0, usd()), "nothing was topped up");
}

/// Follows a list's "more" links from `first`, collecting what `rows` finds on each page.
async fn walk_pages(
    console: &Browser,
    first: &str,
    more: &str,
    rows: impl Fn(&str) -> Vec<String>,
) -> Vec<String> {
    let mut found = Vec::new();
    let mut next = Some(first.to_owned());
    while let Some(path) = next.take() {
        let page = console.get(&path).await;
        assert_eq!(page.status, StatusCode::OK, "{path}: {}", page.body);
        found.extend(rows(&page.body));
        let marker = format!("\" rel=\"next\">{more}</a>");
        if let Some(end) = page.body.find(&marker) {
            let start = page.body[..end].rfind("href=\"").unwrap() + "href=\"".len();
            next = Some(crate::payments::unescape(&page.body[start..end]));
        }
        assert!(found.len() < 100, "the pages end");
    }
    found
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn payers_accounts_and_entries_page_by_keyset() {
    let app = TestApp::spawn_with(|config| config.portal_page_size = 2).await;
    let store = &*app.state.store;
    let prefix = unique_id("sandbox-page");
    let mut ids = Vec::new();
    for n in 0..5 {
        let id = PayerId::parse(&format!("{prefix}-{n}")).unwrap();
        ocpay_server::service::wallet::create_payer(
            store,
            app.clock.now(),
            id.clone(),
            ocpay_core::participant::Environment::Sandbox,
            usd(),
            None,
            1_000,
        )
        .await
        .unwrap();
        ids.push(id.to_string());
    }
    // Another payer's id shares no prefix with them and is not listed.
    let other = PayerId::parse(&unique_id("sandbox-other")).unwrap();
    store
        .create_payer(&ocpay_core::payer::Payer::new(
            other,
            ocpay_core::participant::Environment::Sandbox,
            usd(),
            None,
            app.clock.now(),
        ))
        .await
        .unwrap();
    let first = &ids[0];
    for minor in [100, 200, 300, 400, 500] {
        store
            .top_up(&PayerId::parse(first).unwrap(), Money::new(minor, usd()), app.clock.now())
            .await
            .unwrap();
    }
    let console = operator(&app, "ops@platform.example").await;

    let listed = walk_pages(&console, &format!("/console/payers?q={prefix}"), "More payers", |body| {
        crate::payments::all_between(body, "<a href=\"/console/payers/", "\"")
    })
    .await;
    assert_eq!(listed, ids, "every payer of the prefix once, in order, two a page");

    let entries = walk_pages(&console, &format!("/console/payers/{first}"), "Older entries", |body| {
        crate::payments::all_between(body, "<td data-label=\"Amount\" class=\"num\">", "</td>")
    })
    .await;
    assert_eq!(entries, ["USD +5.00", "USD +4.00", "USD +3.00", "USD +2.00", "USD +1.00"], "newest first");

    // The ledger's accounts: the funding account only (wallets are not listed), on one page.
    let accounts = walk_pages(&console, "/console/ledger", "More accounts", |body| {
        crate::payments::all_between(body, "<td data-label=\"Balance\" class=\"num\">", "</td>")
    })
    .await;
    assert_eq!(accounts, ["USD -15.00"]);
    let bad = console.get("/console/payers?after=%20").await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert!(bad.body.contains("after: not a page of this list"), "{}", bad.body);
}
