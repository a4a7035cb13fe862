//! The payer's side, end to end: the page and JSON API of a code, paying from a wallet (sandbox
//! and live), the sandbox's failure outcomes, cross-currency quotes, races, cancel after
//! payment, expiry, and the QR images. The ledger is checked after every scenario.

use jiff::SignedDuration;
use ocpay_core::ledger::{Account, AccountOwner};
use ocpay_core::money::{Currency, Money};
use ocpay_core::participant::{Environment, ParticipantKind};
use ocpay_core::payer::PayerId;
use ocpay_protocol::payments::CancelRequest;
use ocpay_server::service::wallet;
use ocpay_testkit::{Clock, Receiver, TestApp};
use serde_json::json;

use crate::helpers::{assert_ledger_sound, code_value, inquire, order_code, token_of, wallet_pay};

async fn balance(app: &TestApp, owner: AccountOwner, currency: &str) -> Money {
    let account = Account::new(owner, Currency::parse(currency).unwrap());
    app.state.store.balance(&account).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_payer_pays_and_the_merchant_is_notified() {
    let app = TestApp::spawn().await;
    let receiver = Receiver::start(app.platform_key.clone()).await;
    let merchant = app.merchant_notified_at(&receiver).await;
    let paid = order_code(&merchant, "USD", 1250).await;
    let code = code_value(&paid);

    let view: serde_json::Value =
        reqwest::get(format!("{}/wallet/api/codes/{}", app.base_url, token_of(&code)))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
    assert_eq!(view["status"], "PROCESSING");
    assert_eq!(view["merchantName"], "Demo Cafe");
    assert_eq!(view["amount"]["text"], "USD 12.50");
    assert_eq!(view["secondsLeft"], 900);
    assert_eq!(
        view["outcomes"],
        json!(["SUCCESS", "USER_BALANCE_NOT_ENOUGH", "RISK_REJECT", "USER_KYC_NOT_QUALIFIED"])
    );

    let (status, answer) = wallet_pay(&app, &code, json!({})).await;
    assert_eq!((status, answer["status"].as_str()), (200, Some("SUCCESS")), "{answer}");

    let delivered = receiver.wait_for(1).await;
    let notification = &delivered[0];
    assert!(notification.verified, "signed by the platform");
    assert_eq!(notification.client_id, merchant.client_id);
    assert_eq!(notification.path, "/merchant/notify");
    let body = notification.notification.as_ref().expect("a payment notification");
    assert_eq!(body.notify_type, "PAYMENT_RESULT");
    assert_eq!(body.result.result_code, "SUCCESS");
    assert_eq!(Some(body.payment_id.clone()), paid.payment_id);
    assert_eq!(body.payment_amount, ocpay_protocol::model::Amount::new("USD", 1250));
    assert_eq!(body.actual_payment_amount, Some(ocpay_protocol::model::Amount::new("USD", 1250)));
    assert!(body.payment_time.is_some());
    assert_eq!(
        body.psp_customer_info.as_ref().and_then(|info| info.psp_customer_id.as_deref()),
        Some("sandbox-payer-usd")
    );

    let inquiry = inquire(&merchant, &paid).await;
    assert_eq!(inquiry.payment_status.as_deref(), Some("SUCCESS"));
    assert_eq!(inquiry.payment_result_code.as_deref(), Some("SUCCESS"));
    assert_eq!(inquiry.payment_time, body.payment_time);
    assert_eq!(inquiry.psp_customer_info, body.psp_customer_info);
    assert_eq!(inquiry.payment_quote, None, "same currency: no quote");

    let client = ocpay_core::ids::ClientId::parse(&merchant.client_id).unwrap();
    assert_eq!(balance(&app, AccountOwner::MerchantPending(client), "USD").await.minor(), 1250);
    let (status, again) = wallet_pay(&app, &code, json!({})).await;
    assert_eq!((status, again["error"].as_str()), (409, Some("ALREADY_PAID")));
    assert_ledger_sound(&app).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_sandbox_failure_fails_the_payment_and_is_notified() {
    let app = TestApp::spawn().await;
    let receiver = Receiver::start(app.platform_key.clone()).await;
    let merchant = app.merchant_notified_at(&receiver).await;
    let outcomes = ["USER_BALANCE_NOT_ENOUGH", "RISK_REJECT", "USER_KYC_NOT_QUALIFIED"];
    for (index, outcome) in outcomes.into_iter().enumerate() {
        let paid = order_code(&merchant, "USD", 500).await;
        let code = code_value(&paid);
        let (status, answer) = wallet_pay(&app, &code, json!({ "outcome": outcome })).await;
        assert_eq!(
            (status, answer["status"].as_str(), answer["resultCode"].as_str()),
            (200, Some("FAIL"), Some(outcome))
        );
        let delivered = receiver.wait_for(index + 1).await;
        let body = delivered[index].notification.as_ref().unwrap();
        assert_eq!(
            (body.result.result_code.as_str(), body.result.result_status),
            (outcome, ocpay_protocol::ResultStatus::F)
        );
        assert_eq!(body.payment_time, None);
        let inquiry = inquire(&merchant, &paid).await;
        assert_eq!(
            (inquiry.payment_status.as_deref(), inquiry.payment_result_code.as_deref()),
            (Some("FAIL"), Some(outcome))
        );
        let (status, answer) = wallet_pay(&app, &code, json!({})).await;
        assert_eq!((status, answer["error"].as_str()), (409, Some("FAILED")));
        let cancel = CancelRequest { payment_id: paid.payment_id.clone(), payment_request_id: None };
        let cancelled = merchant.client.cancel(&cancel).await.unwrap();
        assert_eq!(
            (cancelled.result.result_code.as_str(), cancelled.cancel_time),
            ("SUCCESS", None),
            "a failed payment stays FAIL"
        );
    }
    let (status, answer) =
        wallet_pay(&app, &code_value(&order_code(&merchant, "USD", 1).await), json!({ "outcome": "BOGUS" }))
            .await;
    assert_eq!((status, answer["error"].as_str()), (400, Some("BAD_REQUEST")));
    assert_ledger_sound(&app).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn of_payers_racing_for_one_code_exactly_one_pays() {
    let app = TestApp::spawn().await;
    let merchant = app.merchant().await;
    let code = code_value(&order_code(&merchant, "USD", 700).await);
    let app = std::sync::Arc::new(app);
    let mut racers = Vec::new();
    for n in 0..10 {
        let (app, code) = (app.clone(), code.clone());
        racers.push(tokio::spawn(async move {
            wallet_pay(&app, &code, json!({ "payerId": format!("racer-{n}") })).await
        }));
    }
    let mut statuses = Vec::new();
    for racer in racers {
        let (status, answer) = racer.await.unwrap();
        statuses.push((
            status,
            answer["status"].as_str().or(answer["error"].as_str()).unwrap_or_default().to_owned(),
        ));
    }
    assert_eq!(statuses.iter().filter(|(status, _)| *status == 200).count(), 1, "{statuses:?}");
    assert!(statuses.iter().all(|(status, what)| *status == 200 || what == "ALREADY_PAID"), "{statuses:?}");
    let client = ocpay_core::ids::ClientId::parse(&merchant.client_id).unwrap();
    assert_eq!(balance(&app, AccountOwner::MerchantPending(client), "USD").await.minor(), 700, "paid once");
    assert_ledger_sound(&app).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancel_racing_a_payment_has_one_winner() {
    let app = std::sync::Arc::new(TestApp::spawn().await);
    let merchant = std::sync::Arc::new(app.merchant().await);
    for round in 0..5 {
        let paid = order_code(&merchant, "USD", 300).await;
        let code = code_value(&paid);
        let payer = format!("contender-{round}");
        let cancel = CancelRequest { payment_id: paid.payment_id.clone(), payment_request_id: None };
        let (paying, cancelling) = tokio::join!(
            {
                let (app, code, payer) = (app.clone(), code.clone(), payer.clone());
                async move { wallet_pay(&app, &code, json!({ "payerId": payer })).await }
            },
            {
                let merchant = merchant.clone();
                async move { merchant.client.cancel(&cancel).await.unwrap() }
            },
        );
        assert_eq!(cancelling.result.result_code, "SUCCESS");
        let inquiry = inquire(&merchant, &paid).await;
        assert_eq!(
            inquiry.payment_status.as_deref(),
            Some("CANCELLED"),
            "the cancel wins either way: directly or by reversal"
        );
        let wallet = balance(&app, AccountOwner::Wallet(PayerId::sandbox(&payer).unwrap()), "USD").await;
        match paying.0 {
            // Paid first, then reversed: the wallet holds all its sandbox funding again.
            200 => assert_eq!(wallet.minor(), 100_000_000),
            409 => assert_eq!(paying.1["error"], "CANCELLED"),
            other => panic!("the payer saw {other}: {}", paying.1),
        }
    }
    assert_ledger_sound(&app).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paid_payment_is_reversed_by_a_cancel_inside_the_window_only() {
    let app = TestApp::spawn().await;
    let merchant = app.merchant().await;
    let paid = order_code(&merchant, "USD", 1250).await;
    let (status, _) = wallet_pay(&app, &code_value(&paid), json!({ "payerId": "reversed" })).await;
    assert_eq!(status, 200);
    let payer = AccountOwner::Wallet(PayerId::parse("sandbox-reversed").unwrap());
    assert_eq!(balance(&app, payer.clone(), "USD").await.minor(), 100_000_000 - 1250);
    let cancel = CancelRequest { payment_id: paid.payment_id.clone(), payment_request_id: None };
    let cancelled = merchant.client.cancel(&cancel).await.unwrap();
    assert_eq!(cancelled.result.result_code, "SUCCESS");
    assert_eq!(balance(&app, payer, "USD").await.minor(), 100_000_000, "every cent is back");
    let inquiry = inquire(&merchant, &paid).await;
    assert_eq!(inquiry.payment_status.as_deref(), Some("CANCELLED"));

    let late = order_code(&merchant, "USD", 800).await;
    wallet_pay(&app, &code_value(&late), json!({})).await;
    app.clock.advance(SignedDuration::from_hours(48));
    let cancel = CancelRequest { payment_id: late.payment_id.clone(), payment_request_id: None };
    let refused = merchant.client.cancel(&cancel).await.unwrap();
    assert_eq!(refused.result.result_code, "CANCEL_WINDOW_EXCEED");
    assert_eq!(inquire(&merchant, &late).await.payment_status.as_deref(), Some("SUCCESS"));
    assert_ledger_sound(&app).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_payers_sign_in_with_a_pin_and_pay_from_their_balance() {
    let app = TestApp::spawn_with(|config| config.pin_failures_max = 3).await;
    let merchant = app
        .participant(ParticipantKind::Merchant, Environment::Live, Some("https://merchant.example/n"))
        .await;
    let store = &*app.state.store;
    let id = PayerId::parse("alice").unwrap();
    let usd = Currency::parse("USD").unwrap();
    wallet::create_payer(store, app.clock.now(), id.clone(), Environment::Live, usd, Some("246810"), 1_000)
        .await
        .unwrap();
    wallet::top_up(store, app.clock.now(), &id, Money::new(2000, usd)).await.unwrap();
    let sandbox = PayerId::parse("sandbox-bob").unwrap();
    wallet::create_payer(store, app.clock.now(), sandbox, Environment::Sandbox, usd, Some("246810"), 1_000)
        .await
        .unwrap();
    let misnamed = PayerId::parse("sandbox-eve").unwrap();
    let refused =
        wallet::create_payer(store, app.clock.now(), misnamed, Environment::Live, usd, Some("1234"), 1_000);
    assert!(matches!(refused.await, Err(wallet::PayerError::IdEnvironment { .. })));

    let code = code_value(&order_code(&merchant, "USD", 1250).await);
    let cases = [
        (json!({}), 401, "SIGN_IN_REQUIRED"),
        (json!({ "payerId": "nobody", "pin": "246810" }), 401, "WRONG_PIN"),
        (json!({ "payerId": "sandbox-bob", "pin": "246810" }), 401, "WRONG_PIN"),
        (json!({ "payerId": "alice", "outcome": "RISK_REJECT", "pin": "246810" }), 400, "BAD_REQUEST"),
    ];
    for (body, status, error) in cases {
        let (answered, answer) = wallet_pay(&app, &code, body.clone()).await;
        assert_eq!((answered, answer["error"].as_str()), (status, Some(error)), "{body}");
    }
    for _ in 0..3 {
        let (status, answer) = wallet_pay(&app, &code, json!({ "payerId": "alice", "pin": "000000" })).await;
        assert_eq!((status, answer["error"].as_str()), (401, Some("WRONG_PIN")));
    }
    let (status, answer) = wallet_pay(&app, &code, json!({ "payerId": "alice", "pin": "246810" })).await;
    assert_eq!((status, answer["error"].as_str()), (423, Some("LOCKED")), "locked even with the right PIN");
    app.clock.advance(SignedDuration::from_mins(16));
    let code = code_value(&order_code(&merchant, "USD", 1250).await);
    let (status, answer) = wallet_pay(&app, &code, json!({ "payerId": "alice", "pin": "246810" })).await;
    assert_eq!((status, answer["status"].as_str()), (200, Some("SUCCESS")), "{answer}");
    assert_eq!(balance(&app, AccountOwner::Wallet(id.clone()), "USD").await.minor(), 750);

    let expensive = order_code(&merchant, "USD", 1000).await;
    let (status, answer) =
        wallet_pay(&app, &code_value(&expensive), json!({ "payerId": "alice", "pin": "246810" })).await;
    assert_eq!((status, answer["error"].as_str()), (402, Some("BALANCE_NOT_ENOUGH")));
    assert_eq!(
        inquire(&merchant, &expensive).await.payment_status.as_deref(),
        Some("PROCESSING"),
        "still payable"
    );
    assert_ledger_sound(&app).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sandbox_value_is_issued_as_needed_and_kept_apart_from_live_value() {
    // A configured top-up of USD 1.00 still pays a USD 50.00 order: the sandbox issues what the
    // payment needs, in the payment's transaction.
    let app = TestApp::spawn_with(|config| config.sandbox_top_up_major = 1).await;
    let merchant = app.merchant().await;
    let (status, answer) =
        wallet_pay(&app, &code_value(&order_code(&merchant, "USD", 5000).await), json!({})).await;
    assert_eq!((status, answer["status"].as_str()), (200, Some("SUCCESS")), "{answer}");
    let live_payer = PayerId::parse("carol").unwrap();
    let usd = Currency::parse("USD").unwrap();
    let store = &*app.state.store;
    wallet::create_payer(
        store,
        app.clock.now(),
        live_payer.clone(),
        Environment::Live,
        usd,
        Some("1357"),
        1_000,
    )
    .await
    .unwrap();
    wallet::top_up(store, app.clock.now(), &live_payer, Money::new(2000, usd)).await.unwrap();
    assert_eq!(balance(&app, AccountOwner::Funding(Environment::Sandbox), "USD").await.minor(), -5000);
    assert_eq!(balance(&app, AccountOwner::Funding(Environment::Live), "USD").await.minor(), -2000);
    assert_ledger_sound(&app).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_payer_in_another_currency_pays_at_the_configured_rate() {
    let app = TestApp::spawn().await;
    let receiver = Receiver::start(app.platform_key.clone()).await;
    let merchant = app.merchant_notified_at(&receiver).await;
    let store = &*app.state.store;
    let sgd = Currency::parse("SGD").unwrap();
    let id = PayerId::parse("sandbox-singapore").unwrap();
    wallet::create_payer(store, app.clock.now(), id.clone(), Environment::Sandbox, sgd, None, 1_000)
        .await
        .unwrap();

    let paid = order_code(&merchant, "USD", 1250).await;
    let (status, answer) = wallet_pay(&app, &code_value(&paid), json!({ "payerId": "singapore" })).await;
    assert_eq!(status, 200, "{answer}");
    // 12.50 USD at 1.3450 is 16.8125 SGD, rounded up to 16.82.
    assert_eq!(answer["charged"]["text"], "SGD 16.82");
    assert_eq!(answer["quote"], json!({ "pair": "USD/SGD", "price": "1.3450" }));
    let inquiry = inquire(&merchant, &paid).await;
    assert_eq!(inquiry.actual_payment_amount, Some(ocpay_protocol::model::Amount::new("SGD", 1682)));
    let quote = inquiry.payment_quote.clone().expect("a quote");
    assert_eq!((quote.quote_currency_pair.as_str(), quote.quote_price.as_str()), ("USD/SGD", "1.3450"));
    let notified = receiver.wait_for(1).await[0].notification.clone().unwrap();
    assert_eq!(notified.payment_quote, inquiry.payment_quote);
    assert_eq!(notified.actual_payment_amount, inquiry.actual_payment_amount);
    assert_eq!(notified.payment_amount, ocpay_protocol::model::Amount::new("USD", 1250));

    let krw = Currency::parse("KRW").unwrap();
    let seoul = PayerId::parse("sandbox-seoul").unwrap();
    wallet::create_payer(store, app.clock.now(), seoul, Environment::Sandbox, krw, None, 1_000)
        .await
        .unwrap();
    let (status, answer) = wallet_pay(
        &app,
        &code_value(&order_code(&merchant, "USD", 100).await),
        json!({ "payerId": "seoul" }),
    )
    .await;
    assert_eq!((status, answer["error"].as_str()), (422, Some("NO_RATE")));

    // The sandbox's sample rates are not live rates: live has only what the operator set.
    let live = app
        .participant(ParticipantKind::Merchant, Environment::Live, Some("https://merchant.example/n"))
        .await;
    let lion = PayerId::parse("lion").unwrap();
    wallet::create_payer(store, app.clock.now(), lion.clone(), Environment::Live, sgd, Some("1357"), 1_000)
        .await
        .unwrap();
    wallet::top_up(store, app.clock.now(), &lion, Money::new(5000, sgd)).await.unwrap();
    let code = code_value(&order_code(&live, "USD", 100).await);
    let (status, answer) = wallet_pay(&app, &code, json!({ "payerId": "lion", "pin": "1357" })).await;
    assert_eq!((status, answer["error"].as_str()), (422, Some("NO_RATE")));
    assert_ledger_sound(&app).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_code_cannot_be_paid_even_before_the_job_closes_it() {
    // The job polls once an hour here: only the check at paying time can refuse.
    let app = TestApp::spawn_with(|config| config.timers_poll_interval_ms = 3_600_000).await;
    let merchant = app.merchant().await;
    let paid = order_code(&merchant, "USD", 100).await;
    let code = code_value(&paid);
    app.clock.advance(SignedDuration::from_mins(15));
    let (status, answer) = wallet_pay(&app, &code, json!({})).await;
    assert_eq!((status, answer["error"].as_str()), (410, Some("EXPIRED")));
    let inquiry = inquire(&merchant, &paid).await;
    assert_eq!(
        (inquiry.payment_status.as_deref(), inquiry.payment_result_code.as_deref()),
        (Some("FAIL"), Some("ORDER_IS_CLOSED"))
    );
    let page =
        reqwest::get(format!("{}/c/{}", app.base_url, token_of(&code))).await.unwrap().text().await.unwrap();
    assert!(page.contains("This order code has expired."), "{page}");
    // Cancelling it closes it as expired, and notifies that.
    let cancel = CancelRequest { payment_id: paid.payment_id.clone(), payment_request_id: None };
    let cancelled = merchant.client.cancel(&cancel).await.unwrap();
    assert_eq!((cancelled.result.result_code.as_str(), cancelled.cancel_time), ("SUCCESS", None));
    let notifications = app.state.store.notifications(paid.payment_id.as_deref().unwrap()).await.unwrap();
    assert_eq!(
        notifications[0].0.event,
        ocpay_store::NotificationEvent::PaymentFailed(ocpay_core::payment::FailReason::OrderIsClosed)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_expiry_job_closes_unpaid_codes_and_notifies() {
    let app = TestApp::spawn().await;
    let receiver = Receiver::start(app.platform_key.clone()).await;
    let merchant = app.merchant_notified_at(&receiver).await;
    let paid = order_code(&merchant, "USD", 100).await;
    app.clock.advance(SignedDuration::from_mins(15));
    let delivered = receiver.wait_for(1).await;
    let body = delivered[0].notification.as_ref().unwrap();
    assert_eq!(
        (body.result.result_code.as_str(), body.payment_id.as_str()),
        ("ORDER_IS_CLOSED", paid.payment_id.as_deref().unwrap())
    );
    let stored = app
        .state
        .store
        .payment_by_code(&ocpay_core::ids::CodeToken::parse(&token_of(&code_value(&paid))).unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.state.status().as_str(), "FAIL", "saved, not only shown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn qr_images_decode_to_the_code_value() {
    let app = TestApp::spawn().await;
    let merchant = app.merchant().await;
    let paid = order_code(&merchant, "USD", 100).await;
    let code = code_value(&paid);
    for detail in &paid.order_code_form.as_ref().unwrap().code_details[1..] {
        let response = reqwest::get(&detail.code_value).await.unwrap();
        assert_eq!(response.status(), 200, "{}", detail.code_value);
        assert_eq!(response.headers()["content-type"], "image/png");
        let bytes = response.bytes().await.unwrap();
        let decoder = png::Decoder::new(std::io::Cursor::new(bytes.to_vec()));
        let mut reader = decoder.read_info().unwrap();
        let mut pixels = vec![0; reader.output_buffer_size().unwrap()];
        let frame = reader.next_frame(&mut pixels).unwrap();
        let (width, height) = (frame.width as usize, frame.height as usize);
        let nominal = match detail.display_type.as_str() {
            "SMALLIMAGE" => 200,
            "MIDDLEIMAGE" => 400,
            _ => 800,
        };
        assert_eq!((width, height), (nominal, nominal), "{} is as wide as documented", detail.display_type);
        let mut image =
            rqrr::PreparedImage::prepare_from_greyscale(width, height, |x, y| pixels[y * width + x]);
        let grids = image.detect_grids();
        assert_eq!(grids.len(), 1, "one QR code in {}", detail.display_type);
        let (_, decoded) = grids[0].decode().unwrap();
        assert_eq!(decoded, code, "{} decodes to the code value", detail.display_type);
    }
    let svg = reqwest::get(format!("{code}/qr-middle.svg")).await.unwrap();
    assert_eq!(svg.headers()["content-type"], "image/svg+xml");
    assert!(svg.text().await.unwrap().starts_with("<svg"));
    for missing in [
        format!("{code}/qr-huge.png"),
        format!("{code}/qr-small.gif"),
        format!("{}/c/nope/qr-small.png", app.base_url),
    ] {
        assert_eq!(reqwest::get(&missing).await.unwrap().status(), 404, "{missing}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_payer_page_shows_the_order_safely() {
    let app = TestApp::spawn().await;
    let merchant = app.merchant().await;
    let mut request = ocpay_testkit::pay_request(&ocpay_testkit::unique_id("PR"), "USD", 1250);
    request.order.as_mut().unwrap().order_description = Some("<script>alert(1)</script>".into());
    let code = code_value(&merchant.client.pay(&request).await.unwrap());
    let response = reqwest::get(&code).await.unwrap();
    assert_eq!(response.status(), 200);
    assert!(response.headers()["content-security-policy"].to_str().unwrap().contains("default-src 'self'"));
    let page = response.text().await.unwrap();
    for expected in
        ["Demo Cafe", "Demo Cafe Orchard", "USD 12.50", "Pay USD 12.50", "Fail: RISK_REJECT", "Sandbox"]
    {
        assert!(page.contains(expected), "the page shows {expected:?}");
    }
    assert!(!page.contains("<script>alert(1)</script>"), "text is escaped");
    assert!(page.contains("&lt;script&gt;") || page.contains("&#60;script&#62;"), "shown as text");
    assert_eq!(reqwest::get(format!("{}/c/unknown-token", app.base_url)).await.unwrap().status(), 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_pay_endpoint_takes_only_json_from_its_own_origin() {
    let app = TestApp::spawn().await;
    let merchant = app.merchant().await;
    let paid = order_code(&merchant, "USD", 1250).await;
    let url = format!("{}/wallet/api/codes/{}/pay", app.base_url, token_of(&code_value(&paid)));
    let http = reqwest::Client::new();
    let post = |content_type: Option<&str>, body: &'static str, headers: &[(&str, &str)]| {
        let mut request = http.post(&url).body(body);
        if let Some(content_type) = content_type {
            request = request.header("content-type", content_type);
        }
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        async move {
            let response = request.send().await.unwrap();
            let status = response.status().as_u16();
            (status, response.json::<serde_json::Value>().await.expect("a JSON answer"))
        }
    };
    // What an HTML form or a "simple" cross-site request can send without asking first.
    for (content_type, body) in [
        (Some("text/plain"), "{}"),
        (Some("application/x-www-form-urlencoded"), "payerId=x"),
        (
            Some("multipart/form-data; boundary=b"),
            "--b\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\n1\r\n--b--\r\n",
        ),
        (Some("application/json; charset=latin1"), "{}"),
        (None, "{}"),
    ] {
        let (status, answer) = post(content_type, body, &[]).await;
        assert_eq!(
            (status, answer["error"].as_str()),
            (415, Some("UNSUPPORTED_MEDIA_TYPE")),
            "{content_type:?}: {answer}"
        );
        assert!(answer["message"].as_str().unwrap().contains("Content-Type"), "{answer}");
    }
    let json = Some("application/json");
    for headers in [
        &[("origin", "https://attacker.example")][..],
        &[("origin", "null")][..],
        &[("sec-fetch-site", "cross-site")][..],
        &[("sec-fetch-site", "same-site"), ("origin", "https://pay.attacker.example")][..],
    ] {
        let (status, answer) = post(json, "{}", headers).await;
        assert_eq!((status, answer["error"].as_str()), (403, Some("CROSS_ORIGIN")), "{headers:?}: {answer}");
    }
    assert_eq!(
        inquire(&merchant, &paid).await.payment_status.as_deref(),
        Some("PROCESSING"),
        "nothing was paid"
    );

    // The page's own script: same origin, JSON.
    let origin = app.base_url.trim_end_matches('/').to_owned();
    let (status, answer) = post(
        Some("application/json; charset=utf-8"),
        "{}",
        &[("origin", &origin), ("sec-fetch-site", "same-origin")],
    )
    .await;
    assert_eq!((status, answer["status"].as_str()), (200, Some("SUCCESS")), "{answer}");
    assert_ledger_sound(&app).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_wallet_ever_holds_more_than_its_maximum_balance() {
    use ocpay_protocol::model::Amount;
    use ocpay_protocol::refunds::{InquiryRefundRequest, RefundRequest};

    // USD 1,000.00 at most in a wallet; the sandbox would issue USD 100.00 at a time.
    let app = TestApp::spawn_with(|config| {
        config.wallet_balance_max_major = 1_000;
        config.sandbox_top_up_major = 100;
    })
    .await;
    let merchant = app.merchant().await;
    let usd = Currency::parse("USD").unwrap();
    let full = AccountOwner::Wallet(PayerId::parse("sandbox-full").unwrap());

    // pay refuses an amount no wallet could hold, the largest it parses included.
    for minor in [100_001, 999_999_999_999_999_999] {
        let request = ocpay_testkit::pay_request(&ocpay_testkit::unique_id("PR"), "USD", minor);
        let refused = merchant.client.pay(&request).await.unwrap();
        assert_eq!(refused.result.result_code, "PARAM_ILLEGAL", "{minor}");
        assert!(refused.result.result_message.starts_with("paymentAmount.value: must be at most 100000"));
    }

    // Two payments, each funded by the sandbox as it is paid, leave the wallet empty; cancelling
    // both would return more than the wallet may hold, so the second cancel is refused whole.
    let first = order_code(&merchant, "USD", 60_000).await;
    let second = order_code(&merchant, "USD", 60_000).await;
    for paid in [&first, &second] {
        let (status, answer) = wallet_pay(&app, &code_value(paid), json!({ "payerId": "full" })).await;
        assert_eq!((status, answer["status"].as_str()), (200, Some("SUCCESS")), "{answer}");
    }
    assert_eq!(balance(&app, full.clone(), "USD").await.minor(), 0);
    let cancel = |paid: &ocpay_protocol::payments::PayResponse| CancelRequest {
        payment_id: paid.payment_id.clone(),
        payment_request_id: None,
    };
    assert_eq!(merchant.client.cancel(&cancel(&first)).await.unwrap().result.result_code, "SUCCESS");
    assert_eq!(balance(&app, full.clone(), "USD").await.minor(), 60_000);
    let refused = merchant.client.cancel(&cancel(&second)).await.unwrap();
    assert_eq!(
        (refused.result.result_code.as_str(), refused.result.result_status),
        ("PROCESS_FAIL", ocpay_protocol::ResultStatus::F),
        "{:?}",
        refused.result
    );
    assert!(refused.result.result_message.contains("maximum balance of USD 1000.00"), "{:?}", refused.result);
    assert_eq!(inquire(&merchant, &second).await.payment_status.as_deref(), Some("SUCCESS"), "still paid");
    assert_eq!(balance(&app, full.clone(), "USD").await.minor(), 60_000, "nothing moved");

    // A refund likewise: refused and not stored while it would overfill the wallet; one that
    // fits fills it exactly.
    let refund_of = |request_id: &str, minor: i64, asynchronous: bool| RefundRequest {
        refund_request_id: Some(request_id.into()),
        payment_id: second.payment_id.clone(),
        refund_amount: Some(Amount::new("USD", minor)),
        is_async_refund: asynchronous.then_some(true),
        ..RefundRequest::default()
    };
    let inquire_refund = |request_id: &str| {
        let request = InquiryRefundRequest {
            refund_request_id: Some(request_id.into()),
            ..InquiryRefundRequest::default()
        };
        let client = &merchant.client;
        async move { client.inquire_refund(&request).await.unwrap() }
    };
    let too_much = merchant.client.refund(&refund_of("RR-OVER", 50_000, false)).await.unwrap();
    assert_eq!(too_much.result.result_code, "PROCESS_FAIL", "{:?}", too_much.result);
    assert_eq!(inquire_refund("RR-OVER").await.result.result_code, "ORDER_NOT_EXIST", "not stored");
    let fits = merchant.client.refund(&refund_of("RR-FITS", 40_000, false)).await.unwrap();
    assert_eq!(fits.result.result_code, "SUCCESS", "{:?}", fits.result);
    assert_eq!(balance(&app, full.clone(), "USD").await.minor(), 100_000);

    // An asynchronous refund that no longer fits when it comes due fails, moving nothing.
    let third = order_code(&merchant, "USD", 30_000).await;
    let (status, _) = wallet_pay(&app, &code_value(&third), json!({ "payerId": "full" })).await;
    assert_eq!(status, 200);
    assert_eq!(balance(&app, full.clone(), "USD").await.minor(), 70_000, "paid from the balance");
    let later = RefundRequest { payment_id: third.payment_id.clone(), ..refund_of("RR-LATER", 30_000, true) };
    let accepted = merchant.client.refund(&later).await.unwrap();
    assert_eq!(accepted.result.result_code, "REFUND_IN_PROCESS");
    let payer = PayerId::parse("sandbox-full").unwrap();
    let store = &*app.state.store;
    wallet::top_up(store, app.clock.now(), &payer, Money::new(30_000, usd)).await.unwrap();
    app.clock.advance(app.state.settings.refund_async_delay + SignedDuration::from_secs(1));
    app.background_rounds().await;
    assert_eq!(inquire_refund("RR-LATER").await.refund_status.as_deref(), Some("FAIL"));
    assert_eq!(balance(&app, full.clone(), "USD").await.minor(), 100_000);

    // The operator's top-up is refused too, whatever its size, and writes nothing.
    for minor in [1, i64::MAX] {
        let refused = wallet::top_up(store, app.clock.now(), &payer, Money::new(minor, usd)).await;
        let error = refused.unwrap_err().to_string();
        assert!(error.contains("maximum balance of USD 1000.00"), "{error}");
    }
    assert_eq!(balance(&app, full, "USD").await.minor(), 100_000);

    // The sandbox funds a wallet only up to its maximum: USD 950.00 and a USD 990.00 order is
    // covered by USD 50.00, not by the USD 990.00 it would otherwise issue.
    let nearly = PayerId::parse("sandbox-nearly").unwrap();
    wallet::create_payer(store, app.clock.now(), nearly.clone(), Environment::Sandbox, usd, None, 1_000)
        .await
        .unwrap();
    wallet::top_up(store, app.clock.now(), &nearly, Money::new(95_000, usd)).await.unwrap();
    let big = order_code(&merchant, "USD", 99_000).await;
    let (status, answer) = wallet_pay(&app, &code_value(&big), json!({ "payerId": "nearly" })).await;
    assert_eq!((status, answer["status"].as_str()), (200, Some("SUCCESS")), "{answer}");
    assert_eq!(balance(&app, AccountOwner::Wallet(nearly), "USD").await.minor(), 1_000);
    assert_ledger_sound(&app).await;
}
