//! How long the developer center's pages and the operator's console's take with a large
//! participant: a real server (SQLite, or PostgreSQL with `OCPAY_TEST_STORE=postgres`), one
//! sandbox merchant preloaded with N payments spread over the last 30 days (two in three paid,
//! through the store's own writes), then each page fetched repeatedly by a signed-in browser (a
//! participant's owner, then an operator); prints the median and worst server time of each page
//! (the time to the whole answer on loopback) as JSON lines and a table.
//!
//! `cargo run --release -p ocpay-web --example pages_bench -- [--payments 100000] [--rounds 20]`
//!
//! A page whose route does not exist answers 404 and is reported as missing, not timed. Exits
//! non-zero when a page answers anything but 200.

use std::sync::Arc;
use std::time::Instant;

use jiff::SignedDuration;
use ocpay_core::ids::{ClientId, CodeToken, PaymentId, PaymentRequestId};
use ocpay_core::money::Money;
use ocpay_core::participant::Environment;
use ocpay_core::payer::{Payer, PayerId};
use ocpay_core::payment::Charge;
use ocpay_core::portal::Role;
use ocpay_server::clock::Clock as _;
use ocpay_store::{Settlement, Store};
use ocpay_testkit::TestApp;

fn arg(name: &str, default: usize) -> usize {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .map(|v| v.parse().expect("a number"))
        .unwrap_or(default)
}

/// Payments of `owner` by 256 concurrent tasks, each paying from a sandbox wallet of its own
/// (one wallet for all would make every payment wait for the last on PostgreSQL).
async fn preload(store: Arc<dyn Store>, owner: ClientId, count: usize, now: jiff::Timestamp) {
    let tasks = 256;
    let mut handles = Vec::new();
    let currency = ocpay_core::money::Currency::parse("USD").unwrap();
    for task in 0..tasks {
        let payer = PayerId::parse(&format!("sandbox-bench-{task}")).unwrap();
        let wallet = Payer::new(payer.clone(), Environment::Sandbox, currency, None, now);
        store.create_payer(&wallet).await.expect("a payer");
        let (store, owner) = (store.clone(), owner.clone());
        handles.push(tokio::spawn(async move {
            for i in (task..count).step_by(tasks) {
                let request_id = format!("BENCH-{i:08}");
                let mut terms =
                    ocpay_store::conformance::sample_terms(&owner, &request_id, 100 + (i as i64 % 9_900));
                let unique = format!("{}{i:08}", owner.as_str());
                terms.id = PaymentId::parse(&format!("P{unique}")).unwrap();
                terms.request_id = PaymentRequestId::parse(&request_id).unwrap();
                terms.code_token = CodeToken::parse(&format!("T{unique}")).unwrap();
                // Spread over the last 30 days, newest last.
                let age = SignedDuration::from_secs(((count - i) * 30 * 86_400 / count) as i64);
                terms.created_at = now - age;
                terms.expires_at = terms.created_at + SignedDuration::from_mins(15);
                store.create_payment(&terms).await.expect("create a payment");
                if i % 3 != 0 {
                    let charge = Charge { payer: payer.clone(), amount: terms.amount, quote: None };
                    let settlement = Settlement {
                        code: terms.code_token.clone(),
                        charge,
                        now: terms.created_at + SignedDuration::from_secs(30),
                        sandbox_top_up: Some(Money::new(1_000_000, terms.amount.currency())),
                    };
                    store.settle_payment(&settlement).await.expect("pay");
                }
            }
        }));
    }
    for handle in handles {
        handle.await.expect("a preload task");
    }
}

#[tokio::main]
async fn main() {
    let payments = arg("--payments", 100_000);
    let rounds = arg("--rounds", 20);
    // The timer job waits: the preload closes its own unpaid codes day by day (below), so that
    // their notifications fall on the days they expired, not all on the day the bench runs.
    let app = TestApp::spawn_with(|config| config.timers_poll_interval_ms = 3_600_000).await;
    let merchant = app.merchant().await;
    let owner = ClientId::parse(&merchant.client_id).unwrap();
    let store = app.state.store.clone();
    let started = Instant::now();
    preload(store.clone(), owner.clone(), payments, app.clock.now()).await;
    let month_start = app.clock.now() - SignedDuration::from_hours(31 * 24);
    for day in 0..=31 {
        let day_end = month_start + SignedDuration::from_hours(24 * day);
        while !store.expire_payments(day_end.min(app.clock.now()), 5_000).await.expect("expire").is_empty() {}
    }
    eprintln!("preloaded {payments} payments in {} s", started.elapsed().as_secs());

    // The home page's reads alone, to tell the store's share from the rest.
    let month_ago = app.clock.now() - SignedDuration::from_hours(30 * 24);
    for (name, read) in [("daily_activity", 0), ("api_results_by_day", 1)] {
        let started = Instant::now();
        match read {
            0 => drop(store.daily_activity(&owner, month_ago, month_ago).await.expect("a read")),
            _ => drop(store.api_results_by_day(&owner, month_ago).await.expect("a read")),
        }
        eprintln!("{name}: {} µs", started.elapsed().as_micros());
    }
    let settings = &app.state.settings.portal;
    let passwords = ocpay_web::auth::Passwords::new(settings.argon2_memory_kib, settings.argon2_iterations);
    let password = "a benchmark passphrase";
    let new = ocpay_web::users::NewUser {
        client_id: &owner,
        email: "bench@shop.example",
        role: Role::Owner,
        password: Some(password),
    };
    ocpay_web::users::create(&*store, &passwords, settings, app.clock.now(), new).await.expect("a user");
    let http = reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let base = &app.base_url;
    let login = http.get(format!("{base}/portal/login")).send().await.unwrap().text().await.unwrap();
    let marker = "name=\"csrf\" value=\"";
    let start = login.find(marker).unwrap() + marker.len();
    let csrf = &login[start..start + login[start..].find('"').unwrap()];
    let answer = http
        .post(format!("{base}/portal/login"))
        .header("origin", base.as_str())
        .form(&[("csrf", csrf), ("email", "bench@shop.example"), ("password", password)])
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 303, "signed in");

    // An operator, with the second factor the console requires, for the console's pages.
    let operator = "ops@bench.example";
    let created = ocpay_web::users::create_operator(
        &*store,
        &passwords,
        settings,
        app.clock.now(),
        operator,
        Some(password),
    )
    .await
    .expect("an operator");
    let secret = ocpay_web::auth::new_totp_secret();
    let change = ocpay_store::PortalUserChange {
        totp_secret: Some(Some(secret.clone())),
        ..ocpay_store::PortalUserChange::default()
    };
    store.update_operator(&created.operator.user_id, &change).await.expect("TOTP on").expect("the operator");
    let form = http.get(format!("{base}/console/login")).send().await.unwrap().text().await.unwrap();
    let start = form.find(marker).unwrap() + marker.len();
    let csrf = &form[start..start + form[start..].find('"').unwrap()];
    let code = ocpay_web::auth::totp_now(&secret, app.clock.now()).unwrap();
    let answer = http
        .post(format!("{base}/console/login"))
        .header("origin", base.as_str())
        .form(&[("csrf", csrf), ("email", operator), ("password", password), ("totp", code.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 303, "the operator signed in");

    let newest = format!("P{}{:08}", owner.as_str(), payments - 1);
    let pages = [
        "/portal/".to_owned(),
        "/portal/payments".to_owned(),
        "/portal/payments?status=SUCCESS".to_owned(),
        format!("/portal/payments/{newest}"),
        "/portal/refunds".to_owned(),
        "/portal/keys".to_owned(),
        "/portal/logs".to_owned(),
        "/portal/reports".to_owned(),
        "/console/".to_owned(),
        "/console/payers".to_owned(),
        "/console/payers/sandbox-bench-0".to_owned(),
        "/console/ledger".to_owned(),
        "/console/notifications".to_owned(),
        "/console/settlement".to_owned(),
    ];
    let mut failed = false;
    println!("{:<44} {:>10} {:>10} {:>10}", "page", "first µs", "median µs", "worst µs");
    for page in &pages {
        let mut times = Vec::with_capacity(rounds);
        let mut status = 0;
        for _ in 0..rounds {
            let started = Instant::now();
            let response = http.get(format!("{base}{page}")).send().await.unwrap();
            status = response.status().as_u16();
            let _ = response.bytes().await.unwrap();
            times.push(started.elapsed());
        }
        if status == 404 {
            println!("{page:<44} {:>21}", "missing (404)");
            continue;
        }
        if status != 200 {
            println!("{page:<44} answered {status}");
            failed = true;
            continue;
        }
        let first = times[0].as_micros();
        times.sort();
        let (median, worst) = (times[times.len() / 2].as_micros(), times[times.len() - 1].as_micros());
        println!("{page:<44} {first:>10} {median:>10} {worst:>10}");
        eprintln!(
            "{}",
            serde_json::json!({ "page": page, "payments": payments, "firstMicros": first as u64, "medianMicros": median as u64, "worstMicros": worst as u64 })
        );
    }
    if failed {
        std::process::exit(1);
    }
}
