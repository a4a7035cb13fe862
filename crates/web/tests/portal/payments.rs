//! The payments pages: the list's filters and keyset pages, the detail page's timeline of
//! notification attempts, and its actions (refund, cancel, resend, the sandbox's test payer) by
//! role and environment; another participant's payment answers as a missing one; CSRF.
//!
//! Also the helpers the other pages' tests share: reading links out of a page, paying through
//! the gateway, the audit trail's codes.

use jiff::SignedDuration;
use ocpay_core::ids::ClientId;
use ocpay_core::participant::{Environment, ParticipantKind};
use ocpay_core::portal::Role;
use ocpay_server::clock::Clock as _;
use ocpay_store::PortalUserChange;
use ocpay_testkit::{Receiver, Reply, TestApp, TestParticipant, pay_request, unique_id};
use ocpay_web::auth::{new_totp_secret, totp_now};
use reqwest::StatusCode;

use crate::browser::{Browser, PASSWORD, Page, user};

/// `text` with the HTML escapes askama writes undone.
pub(crate) fn unescape(text: &str) -> String {
    text.replace("&#39;", "'")
        .replace("&#34;", "\"")
        .replace("&quot;", "\"")
        .replace("&#60;", "<")
        .replace("&lt;", "<")
        .replace("&#62;", ">")
        .replace("&gt;", ">")
        .replace("&#38;", "&")
        .replace("&amp;", "&")
}

/// The `href` of the page's "next page" link.
pub(crate) fn next_link(page: &Page) -> Option<String> {
    let end = page.body.find("\" rel=\"next\"")?;
    let start = page.body[..end].rfind("href=\"")? + "href=\"".len();
    Some(unescape(&page.body[start..end]))
}

/// Every text between `start` and the next `end` in `html`, in order.
pub(crate) fn all_between(html: &str, start: &str, end: &str) -> Vec<String> {
    let mut found = Vec::new();
    let mut rest = html;
    while let Some(at) = rest.find(start) {
        rest = &rest[at + start.len()..];
        let Some(stop) = rest.find(end) else { break };
        found.push(unescape(&rest[..stop]));
        rest = &rest[stop..];
    }
    found
}

/// The payment ids a list page links to, in order.
pub(crate) fn payment_links(page: &Page) -> Vec<String> {
    all_between(&page.body, "<a href=\"/portal/payments/", "\"")
}

/// Follows a list's "next page" links from `first`, and returns each page's payment links.
async fn walk_payments(browser: &Browser, first: &str) -> Vec<Vec<String>> {
    let mut pages = Vec::new();
    let mut path = Some(first.to_owned());
    while let Some(current) = path {
        let page = browser.get(&current).await;
        assert_eq!(page.status, StatusCode::OK, "{current}: {}", page.body);
        pages.push(payment_links(&page));
        path = next_link(&page);
        assert!(pages.len() < 20, "the pages end: {current} {pages:?}");
    }
    pages
}

/// Pays `amount_minor` USD cents through the gateway as `merchant`; the payment id.
pub(crate) async fn pay(merchant: &TestParticipant, request_id: &str, amount_minor: i64) -> String {
    let answer = merchant.client.pay(&pay_request(request_id, "USD", amount_minor)).await.expect("pay");
    assert!(answer.result.is_success(), "{answer:?}");
    answer.payment_id.expect("a payment id")
}

/// A signed-in user of `client_id` with `role`.
pub(crate) async fn signed_in(app: &TestApp, client_id: &str, email: &str, role: Role) -> Browser {
    user(app, client_id, email, role).await;
    Browser::signed_in(app, email).await
}

/// An owner of a live participant, signed in with the second factor the settings require.
pub(crate) async fn live_owner(app: &TestApp, client_id: &str, email: &str) -> Browser {
    user(app, client_id, email, Role::Owner).await;
    let secret = new_totp_secret();
    let store = &app.state.store;
    let found = store.portal_user_by_email(email).await.unwrap().expect("the user");
    let change = PortalUserChange { totp_secret: Some(Some(secret.clone())), ..PortalUserChange::default() };
    store.update_portal_user(&found.user_id, &change).await.unwrap();
    let browser = Browser::new(app);
    let code = totp_now(&secret, app.clock.now()).unwrap();
    let answer = browser.sign_in(email, PASSWORD, &code).await;
    assert_eq!(answer.location.as_deref(), Some("/portal/"), "{}", answer.body);
    browser
}

/// The result codes the audit trail holds for `api` (newest first), once the audit writer has
/// written `count` of them.
pub(crate) async fn audited(app: &TestApp, client_id: &str, api: &str, count: usize) -> Vec<String> {
    let client_id = ClientId::parse(client_id).unwrap();
    let mut codes = Vec::new();
    // The audit writer batches for a moment: wait for it, not for a time.
    for _ in 0..500 {
        let events = app.state.store.audit_events(&client_id, 500).await.unwrap();
        codes =
            events.iter().filter(|event| event.api == api).map(|event| event.result_code.clone()).collect();
        if codes.len() >= count {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    // In any order: successes are written before the answer, refusals queued (see audit_codes).
    codes.sort();
    codes
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_list_filters_and_pages_by_keyset() {
    let app = TestApp::spawn_with(|config| config.portal_page_size = 2).await;
    let merchant = app.merchant().await;
    let other = app.merchant().await;
    let browser = signed_in(&app, &merchant.client_id, "viewer@shop.example", Role::Viewer).await;
    let mut ids = Vec::new();
    for (n, amount) in [100, 250, 300, 990, 1500].into_iter().enumerate() {
        ids.push(pay(&merchant, &format!("PR-LIST-{n}"), amount).await);
        app.clock.advance(SignedDuration::from_secs(1));
    }
    pay(&other, "PR-LIST-0", 100).await;
    let newest_first: Vec<String> = ids.iter().rev().cloned().collect();

    let pages = walk_payments(&browser, "/portal/payments").await;
    assert_eq!(pages.iter().map(Vec::len).collect::<Vec<_>>(), [2, 2, 1], "pages of two, by keyset");
    assert_eq!(pages.concat(), newest_first, "newest first, every payment once, none of another's");
    let second = browser.get(&next_link(&browser.get("/portal/payments").await).unwrap()).await;
    assert!(next_link(&second).unwrap().contains("after="), "a keyset cursor, not an offset");
    assert!(second.body.contains("First page"));

    // Fail one as a sandbox test payer would, then filter by status.
    let owner = signed_in(&app, &merchant.client_id, "owner@shop.example", Role::Owner).await;
    let detail = owner.get(&format!("/portal/payments/{}", ids[1])).await;
    let failed = owner
        .post(
            &format!("/portal/payments/{}/pay", ids[1]),
            &[("csrf", &detail.csrf()), ("outcome", "RISK_REJECT")],
        )
        .await;
    assert_eq!(failed.status, StatusCode::SEE_OTHER, "{}", failed.body);
    assert_eq!(walk_payments(&browser, "/portal/payments?status=FAIL").await.concat(), [ids[1].clone()]);
    let processing = walk_payments(&browser, "/portal/payments?status=PROCESSING").await;
    assert_eq!(processing.concat().len(), 4);
    assert!(processing.iter().all(|page| page.len() <= 2));

    // Amounts in major units of a currency, inclusive; the filters are kept across pages.
    let amounts = walk_payments(&browser, "/portal/payments?currency=usd&min=2.50&max=9.90").await;
    assert_eq!(amounts, vec![vec![ids[3].clone(), ids[2].clone()], vec![ids[1].clone()]]);
    let page = browser.get("/portal/payments?currency=USD&min=2.50&max=9.90").await;
    let next = next_link(&page).unwrap();
    assert!(
        next.contains("currency=USD") && next.contains("min=2.50") && next.contains("max=9.90"),
        "{next}"
    );
    assert_eq!(
        walk_payments(&browser, "/portal/payments?status=PROCESSING&currency=USD&min=9.90").await.concat(),
        [ids[4].clone(), ids[3].clone()],
        "filters hold together"
    );

    // Dates are UTC days, both ends included.
    let today = app.clock.now().strftime("%Y-%m-%d").to_string();
    let yesterday = (app.clock.now() - SignedDuration::from_hours(24)).strftime("%Y-%m-%d").to_string();
    let tomorrow = (app.clock.now() + SignedDuration::from_hours(24)).strftime("%Y-%m-%d").to_string();
    let created_today =
        walk_payments(&browser, &format!("/portal/payments?from={yesterday}&to={tomorrow}")).await;
    assert_eq!(created_today.concat(), newest_first);
    assert!(walk_payments(&browser, &format!("/portal/payments?to={yesterday}")).await.concat().is_empty());
    assert!(walk_payments(&browser, &format!("/portal/payments?from={tomorrow}")).await.concat().is_empty());
    if app.clock.now().strftime("%H").to_string() != "23" {
        assert_eq!(
            walk_payments(&browser, &format!("/portal/payments?from={today}&to={today}"))
                .await
                .concat()
                .len(),
            5
        );
    }

    // By payment request id: only the participant's own.
    assert_eq!(
        walk_payments(&browser, "/portal/payments?request_id=PR-LIST-3").await.concat(),
        [ids[3].clone()]
    );

    // A filter that cannot be read says which field, and keeps what was typed.
    for (query, message) in [
        ("min=2.50", "minimum amount: choose a currency to filter by amount"),
        ("currency=USD&max=2.505", "maximum amount: must be an amount in USD"),
        ("currency=XYZ", "currency: must be a three-letter ISO 4217 code"),
        ("status=PAID", "status: must be PROCESSING, SUCCESS, FAIL or CANCELLED"),
        ("from=31%2F12%2F2026", "from: must be a date such as"),
        ("after=garbage", "after: not a page of this list"),
    ] {
        let refused = browser.get(&format!("/portal/payments?{query}")).await;
        assert_eq!(refused.status, StatusCode::BAD_REQUEST, "{query}");
        assert!(refused.body.contains(message), "{query}: {}", refused.body);
    }
    let kept = browser.get("/portal/payments?currency=USD&max=2.505").await;
    assert!(kept.body.contains("value=\"2.505\""), "the form keeps what was typed");

    // Money is shown with its currency's exponent.
    let list = browser.get("/portal/payments").await;
    assert!(list.body.contains("USD 15.00") && list.body.contains("USD 9.90"), "{}", list.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_timeline_shows_every_notification_attempt_after_the_notifier_ran() {
    let app = TestApp::spawn().await;
    let receiver = Receiver::start(app.platform_key.clone()).await;
    let merchant = app.merchant_notified_at(&receiver).await;
    let owner = signed_in(&app, &merchant.client_id, "owner@shop.example", Role::Owner).await;
    let id = pay(&merchant, &unique_id("PR-TIMELINE"), 1250).await;
    let path = format!("/portal/payments/{id}");

    let detail = owner.get(&path).await;
    assert_eq!(detail.status, StatusCode::OK);
    assert!(detail.body.contains("Created: USD 12.50"), "{}", detail.body);
    assert!(detail.body.contains("Pay as a sandbox test payer"), "the sandbox's test payer is offered");

    // The merchant's endpoint is busy at first: the attempt, its status and the answer show.
    receiver.reply_next([Reply::Body("busy: try again later".into())]);
    let paid = owner.post(&format!("{path}/pay"), &[("csrf", &detail.csrf()), ("outcome", "SUCCESS")]).await;
    assert_eq!(paid.location.as_deref(), Some(format!("{path}?done=paid").as_str()));
    app.background_rounds().await;
    let timeline = owner.get(&format!("{path}?done=paid")).await.body;
    assert!(timeline.contains("Paid as a sandbox test payer."), "the notice");
    assert!(timeline.contains("Paid (SUCCESS)"), "{timeline}");
    assert!(timeline.contains("Notification queued: payment SUCCESS"), "{timeline}");
    assert!(timeline.contains("Notification attempt 1 (payment SUCCESS): not acknowledged"), "{timeline}");
    assert!(
        timeline.contains("HTTP 200 in ")
            && timeline.contains(" ms; the answer is not a success acknowledgement")
    );
    assert!(timeline.contains("busy: try again later"), "the answer's excerpt");
    assert!(!timeline.contains("attempt 2"));

    // The retry is delivered once due.
    app.clock.advance(SignedDuration::from_secs(121));
    app.background_rounds().await;
    let timeline = owner.get(&path).await.body;
    assert!(timeline.contains("Notification attempt 2 (payment SUCCESS): delivered"), "{timeline}");
    assert!(timeline.contains("delivery DELIVERED"), "{timeline}");
    assert!(timeline.contains("resultStatus"), "the acknowledgement's excerpt");
    assert_eq!(receiver.received().len(), 2);

    // Resent by hand from the page, and sent at once.
    let resent = owner.post(&format!("{path}/resend"), &[("csrf", &detail.csrf()), ("subject", &id)]).await;
    assert_eq!(resent.location.as_deref(), Some(format!("{path}?done=resend").as_str()), "{}", resent.body);
    app.background_rounds().await;
    assert_eq!(receiver.received().len(), 3);
    let timeline = owner.get(&path).await.body;
    assert!(
        timeline.contains("Notification attempt 3 (payment SUCCESS): delivered, sent again by hand"),
        "{timeline}"
    );

    // A refund is on the timeline with its own notification.
    let refunded = owner
        .post(
            &format!("{path}/refund"),
            &[
                ("csrf", &detail.csrf()),
                ("amount", "2.5"),
                ("reason", "one coffee was cold"),
                ("refund_request_id", "RR-TIMELINE"),
            ],
        )
        .await;
    assert_eq!(
        refunded.location.as_deref(),
        Some(format!("{path}?done=refund").as_str()),
        "{}",
        refunded.body
    );
    app.background_rounds().await;
    let timeline = owner.get(&path).await.body;
    assert!(
        timeline.contains("asked: USD 2.50") && timeline.contains("reason: one coffee was cold"),
        "{timeline}"
    );
    assert!(timeline.contains("succeeded") && timeline.contains("USD 2.50 back to the payer"));
    assert!(timeline.contains("Notification attempt 1 (refund SUCCESS): delivered"), "{timeline}");
    assert!(timeline.contains("at most 10.00"), "what is left to refund");
    assert_eq!(audited(&app, &merchant.client_id, "portal.sandboxPay", 1).await, ["SUCCESS"]);
    assert_eq!(audited(&app, &merchant.client_id, "portal.resendNotification", 1).await, ["SUCCESS"]);
}

async fn csrf_of(browser: &Browser, path: &str) -> String {
    browser.get(path).await.csrf()
}

async fn refund(browser: &Browser, path: &str, amount: &str, request_id: &str) -> Page {
    let token = csrf_of(browser, path).await;
    let form = [("csrf", token.as_str()), ("amount", amount), ("refund_request_id", request_id)];
    browser.post(&format!("{path}/refund"), &form).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refunds_and_cancels_follow_the_role_and_the_environment() {
    let app = TestApp::spawn().await;
    let merchant = app.merchant().await;
    let owner = signed_in(&app, &merchant.client_id, "owner@shop.example", Role::Owner).await;
    let developer = signed_in(&app, &merchant.client_id, "dev@shop.example", Role::Developer).await;
    let viewer = signed_in(&app, &merchant.client_id, "viewer@shop.example", Role::Viewer).await;
    let id = pay(&merchant, &unique_id("PR-ROLES"), 1000).await;
    let path = format!("/portal/payments/{id}");

    // A viewer reads, sees no action and is refused every one.
    let seen = viewer.get(&path).await;
    assert_eq!(seen.status, StatusCode::OK);
    assert!(
        !seen.body.contains("/pay\"") && !seen.body.contains("/cancel\"") && !seen.body.contains("/refund\"")
    );
    assert!(seen.body.contains("need the owner role or the developer role"), "{}", seen.body);
    let token = csrf_of(&viewer, &path).await;
    for (action, fields) in [
        ("pay", vec![("outcome", "SUCCESS")]),
        ("refund", vec![("amount", "1.00"), ("refund_request_id", "RR-VIEWER")]),
        ("cancel", vec![]),
        ("resend", vec![]),
    ] {
        let mut form = vec![("csrf", token.as_str())];
        form.extend(fields);
        assert_eq!(
            viewer.post(&format!("{path}/{action}"), &form).await.status,
            StatusCode::FORBIDDEN,
            "{action}"
        );
    }
    assert!(owner.get(&path).await.body.contains("PROCESSING"), "nothing changed");

    // A developer pays it as a test payer and refunds it, in the sandbox.
    let token = csrf_of(&developer, &path).await;
    assert_eq!(
        developer.post(&format!("{path}/pay"), &[("csrf", &token), ("outcome", "SUCCESS")]).await.status,
        StatusCode::SEE_OTHER
    );
    let detail = developer.get(&path).await;
    assert!(
        detail.body.contains("Refund to the payer") && !detail.body.contains("Pay as a sandbox test payer")
    );
    let request_id = crate::browser::field_value(&detail.body, "refund_request_id").unwrap();
    for amount in ["0", "-1", "1.234", "ten"] {
        let refused = refund(&developer, &path, amount, &request_id).await;
        assert_eq!(refused.status, StatusCode::CONFLICT, "{amount}");
        assert!(refused.body.contains("amount: must be"), "{amount}: {}", refused.body);
    }
    let too_much = refund(&developer, &path, "10.01", &request_id).await;
    assert_eq!(too_much.status, StatusCode::CONFLICT);
    assert!(too_much.body.contains("Refund refused"), "{}", too_much.body);
    assert_eq!(refund(&developer, &path, "4", &request_id).await.status, StatusCode::SEE_OTHER);
    // The same form sent twice refunds once.
    assert_eq!(refund(&developer, &path, "4", &request_id).await.status, StatusCode::SEE_OTHER);
    let refunds = app
        .state
        .store
        .refunds_of_payment(
            &ClientId::parse(&merchant.client_id).unwrap(),
            &ocpay_core::ids::PaymentId::parse(&id).unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(refunds.len(), 1, "idempotent by the form's refund request id");
    assert!(developer.get(&path).await.body.contains("at most 6.00"));

    // A cancel of a refunded payment is refused, and said so.
    let token = csrf_of(&owner, &path).await;
    let refused = owner.post(&format!("{path}/cancel"), &[("csrf", &token)]).await;
    assert_eq!(refused.status, StatusCode::CONFLICT);
    assert!(refused.body.contains("Cancel refused"), "{}", refused.body);
    let unpaid = pay(&merchant, &unique_id("PR-CANCEL"), 700).await;
    let cancelled = developer
        .post(&format!("/portal/payments/{unpaid}/cancel"), &[("csrf", &csrf_of(&developer, &path).await)])
        .await;
    assert_eq!(cancelled.status, StatusCode::SEE_OTHER);
    let page = owner.get(&format!("/portal/payments/{unpaid}")).await.body;
    assert!(page.contains("status-CANCELLED") && page.contains("Cancelled"), "{page}");
    let refunds = audited(&app, &merchant.client_id, "portal.refund", 8).await;
    assert_eq!(refunds.iter().filter(|code| *code == "SUCCESS").count(), 2, "{refunds:?}");
    assert_eq!(refunds.len(), 8, "refusals are audited too, the role's included: {refunds:?}");
    assert_eq!(refunds.iter().filter(|code| *code == "FORBIDDEN").count(), 1, "{refunds:?}");
    assert_eq!(
        audited(&app, &merchant.client_id, "portal.cancel", 3).await,
        ["FORBIDDEN", "REFUSED", "SUCCESS"]
    );

    // Live: developers read only; owners operate; no test payer.
    let live = app
        .participant(ParticipantKind::Merchant, Environment::Live, Some("https://shop.example/notify"))
        .await;
    let live_developer = signed_in(&app, &live.client_id, "dev@live.example", Role::Developer).await;
    let live_owner = live_owner(&app, &live.client_id, "owner@live.example").await;
    let live_id = pay(&live, &unique_id("PR-LIVE"), 500).await;
    let live_path = format!("/portal/payments/{live_id}");
    let page = live_developer.get(&live_path).await;
    assert!(page.body.contains("need the owner role.") && !page.body.contains("/cancel\""), "{}", page.body);
    assert!(!page.body.contains("Pay as a sandbox test payer"));
    let token = page.csrf();
    for action in ["cancel", "resend", "refund"] {
        let answer =
            live_developer.post(&format!("{live_path}/{action}"), &[("csrf", &token), ("amount", "1")]).await;
        assert_eq!(answer.status, StatusCode::FORBIDDEN, "{action}");
    }
    let test_pay =
        live_developer.post(&format!("{live_path}/pay"), &[("csrf", &token), ("outcome", "SUCCESS")]).await;
    assert_eq!(test_pay.status, StatusCode::FORBIDDEN, "no test payer in live");
    let token = live_owner.get(&live_path).await.csrf();
    let test_pay =
        live_owner.post(&format!("{live_path}/pay"), &[("csrf", &token), ("outcome", "SUCCESS")]).await;
    assert_eq!(test_pay.status, StatusCode::FORBIDDEN, "not even for an owner");
    assert_eq!(
        live_owner.post(&format!("{live_path}/cancel"), &[("csrf", &token)]).await.status,
        StatusCode::SEE_OTHER
    );
    assert!(live_owner.get(&live_path).await.body.contains("status-CANCELLED"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sandbox_test_payer_pays_or_fails_as_chosen() {
    let app = TestApp::spawn().await;
    let merchant = app.merchant().await;
    let developer = signed_in(&app, &merchant.client_id, "dev@shop.example", Role::Developer).await;
    for (outcome, status, title) in [
        ("SUCCESS", "SUCCESS", "Paid (SUCCESS)"),
        ("USER_BALANCE_NOT_ENOUGH", "FAIL", "Failed (USER_BALANCE_NOT_ENOUGH)"),
        ("RISK_REJECT", "FAIL", "Failed (RISK_REJECT)"),
        ("USER_KYC_NOT_QUALIFIED", "FAIL", "Failed (USER_KYC_NOT_QUALIFIED)"),
    ] {
        let id = pay(&merchant, &unique_id("PR-OUTCOME"), 880).await;
        let path = format!("/portal/payments/{id}");
        let page = developer.get(&path).await;
        assert!(page.body.contains(&format!("value=\"{outcome}\"")), "{outcome} is offered");
        let answer =
            developer.post(&format!("{path}/pay"), &[("csrf", &page.csrf()), ("outcome", outcome)]).await;
        assert_eq!(answer.status, StatusCode::SEE_OTHER, "{outcome}: {}", answer.body);
        let page = developer.get(&path).await.body;
        assert!(
            page.contains(&format!("status-{status}\">{status}")) && page.contains(title),
            "{outcome}: {page}"
        );
        assert!(!page.contains("Pay as a sandbox test payer"), "offered only while payable");
        let again = developer
            .post(
                &format!("{path}/pay"),
                &[("csrf", &developer.get(&path).await.csrf()), ("outcome", "SUCCESS")],
            )
            .await;
        assert_eq!(again.status, StatusCode::CONFLICT, "{outcome}");
        assert!(again.body.contains("The test payer could not pay"), "{}", again.body);
    }
    let id = pay(&merchant, &unique_id("PR-OUTCOME"), 880).await;
    let page = developer.get(&format!("/portal/payments/{id}")).await;
    let unknown = developer
        .post(&format!("/portal/payments/{id}/pay"), &[("csrf", &page.csrf()), ("outcome", "MAYBE")])
        .await;
    assert_eq!(unknown.status, StatusCode::CONFLICT);
    assert!(unknown.body.contains("outcome: choose SUCCESS"), "{}", unknown.body);
    assert!(developer.get(&format!("/portal/payments/{id}")).await.body.contains("status-PROCESSING"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_participants_payment_answers_exactly_as_a_missing_one() {
    let app = TestApp::spawn().await;
    let victim = app.merchant().await;
    let attacker = app.merchant().await;
    let id = pay(&victim, &unique_id("PR-VICTIM"), 1000).await;
    let victim_owner = signed_in(&app, &victim.client_id, "owner@victim.example", Role::Owner).await;
    let token = victim_owner.get(&format!("/portal/payments/{id}")).await.csrf();
    victim_owner
        .post(&format!("/portal/payments/{id}/pay"), &[("csrf", &token), ("outcome", "SUCCESS")])
        .await;
    let attacker_owner = signed_in(&app, &attacker.client_id, "owner@attacker.example", Role::Owner).await;
    let csrf = attacker_owner.get("/portal/payments").await.csrf();
    let missing = "20991231235959000000000000000000";

    let foreign = attacker_owner.get(&format!("/portal/payments/{id}")).await;
    let absent = attacker_owner.get(&format!("/portal/payments/{missing}")).await;
    let malformed = attacker_owner.get("/portal/payments/..%2F..%2Fetc").await;
    assert_eq!(foreign.status, StatusCode::NOT_FOUND);
    assert_eq!((foreign.status, &foreign.body), (absent.status, &absent.body), "identical answers");
    assert_eq!(malformed.status, StatusCode::NOT_FOUND);
    for (action, fields) in [
        ("pay", vec![("outcome", "SUCCESS")]),
        ("refund", vec![("amount", "1.00"), ("refund_request_id", "RR-ATTACK")]),
        ("cancel", vec![]),
        ("resend", vec![("subject", id.as_str())]),
    ] {
        let mut form = vec![("csrf", csrf.as_str())];
        form.extend(fields);
        let foreign = attacker_owner.post(&format!("/portal/payments/{id}/{action}"), &form).await;
        let absent = attacker_owner.post(&format!("/portal/payments/{missing}/{action}"), &form).await;
        assert_eq!(foreign.status, StatusCode::NOT_FOUND, "{action}");
        assert_eq!(
            (foreign.status, &foreign.body),
            (absent.status, &absent.body),
            "{action}: identical answers"
        );
    }
    // The victim's refund ids are not the attacker's to resend either.
    let attacker_id = pay(&attacker, &unique_id("PR-ATTACKER"), 1000).await;
    let victim_csrf = victim_owner.get(&format!("/portal/payments/{id}")).await.csrf();
    victim_owner
        .post(
            &format!("/portal/payments/{id}/refund"),
            &[("csrf", &victim_csrf), ("amount", "1"), ("refund_request_id", "RR-V")],
        )
        .await;
    let victim_refund = app
        .state
        .store
        .refunds_of_payment(
            &ClientId::parse(&victim.client_id).unwrap(),
            &ocpay_core::ids::PaymentId::parse(&id).unwrap(),
        )
        .await
        .unwrap()
        .remove(0)
        .terms
        .id
        .to_string();
    let resend = attacker_owner
        .post(
            &format!("/portal/payments/{attacker_id}/resend"),
            &[("csrf", &csrf), ("subject", &victim_refund)],
        )
        .await;
    assert_eq!(resend.status, StatusCode::NOT_FOUND);
    assert!(!attacker_owner.get("/portal/payments").await.body.contains(&id), "not listed");
    assert!(!attacker_owner.get("/portal/refunds").await.body.contains(&victim_refund), "not listed");

    // Signed out: every page and action leads to the sign-in page.
    let stranger = Browser::new(&app);
    for path in ["/portal/payments", &format!("/portal/payments/{id}")] {
        assert_eq!(stranger.get(path).await.location.as_deref(), Some("/portal/login"), "{path}");
    }
    let answer = stranger.post(&format!("/portal/payments/{id}/cancel"), &[("csrf", "x")]).await;
    assert_eq!(answer.location.as_deref(), Some("/portal/login"));

    // Without the session's CSRF token, or from another site, nothing happens.
    let forged = victim_owner.post(&format!("/portal/payments/{id}/cancel"), &[("csrf", "forged")]).await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    let cross_site = victim_owner
        .post_with(
            &format!("/portal/payments/{id}/refund"),
            &[("csrf", &victim_csrf), ("amount", "1"), ("refund_request_id", "RR-CROSS")],
            &[("origin", "https://evil.example"), ("sec-fetch-site", "cross-site")],
        )
        .await;
    assert_eq!(cross_site.status, StatusCode::FORBIDDEN);
    let page = victim_owner.get(&format!("/portal/payments/{id}")).await.body;
    assert!(page.contains("status-SUCCESS\">SUCCESS") && !page.contains("RR-CROSS"), "nothing changed");
}
