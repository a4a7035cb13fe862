//! The grants page: a merchant's owner authorises an ISV and revokes the grant; the Agent-Token
//! goes to the ISV only (by notification, and once on the ISV owner's page), and the ISV pays
//! for the merchant with it; roles, CSRF, and another participant's grant answers as a missing
//! one.

use jiff::SignedDuration;
use ocpay_core::participant::{Environment, ParticipantKind};
use ocpay_core::portal::Role;
use ocpay_testkit::{Receiver, TestApp, TestParticipant, pay_request, unique_id};
use reqwest::StatusCode;

use crate::browser::{Browser, Page};
use crate::payments::{all_between, audited, signed_in};

/// Authorises `isv` from the merchant's page with `fields` besides the CSRF token.
async fn authorise(browser: &Browser, fields: &[(&str, &str)]) -> Page {
    let csrf = browser.get("/portal/grants").await.csrf();
    let mut form = vec![("csrf", csrf.as_str())];
    form.extend_from_slice(fields);
    browser.post("/portal/grants", &form).await
}

/// The ids of the grants a page lists, in order.
fn grant_ids(body: &str) -> Vec<String> {
    all_between(body, "<td data-label=\"Grant\">G", "</td>").into_iter().map(|id| format!("G{id}")).collect()
}

/// The token a "shown once" page shows.
fn shown_token(body: &str) -> Option<String> {
    all_between(body, "<code id=\"agent-token\" data-copy>", "</code>").into_iter().next()
}

async fn isv_at(app: &TestApp, receiver: Option<&Receiver>) -> TestParticipant {
    app.participant(
        ParticipantKind::Isv,
        Environment::Sandbox,
        receiver.map(|receiver| receiver.url.as_str()),
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_isv_authorised_from_the_page_gets_its_token_once_and_pays_for_the_merchant() {
    let app = TestApp::spawn().await;
    let receiver = Receiver::start(app.platform_key.clone()).await;
    let merchant = app.merchant().await;
    let isv = isv_at(&app, Some(&receiver)).await;
    let merchant_owner = signed_in(&app, &merchant.client_id, "owner@shop.example", Role::Owner).await;
    let isv_owner = signed_in(&app, &isv.client_id, "owner@isv.example", Role::Owner).await;
    let isv_developer = signed_in(&app, &isv.client_id, "dev@isv.example", Role::Developer).await;

    let form = merchant_owner.get("/portal/grants").await;
    assert!(
        form.body.contains("Authorise an ISV") && form.body.contains("value=\"refund\""),
        "{}",
        form.body
    );
    let answer = authorise(
        &merchant_owner,
        &[("isv", &isv.client_id), ("scope", "pay"), ("scope", "inquiry"), ("days", "30")],
    )
    .await;
    assert_eq!(answer.location.as_deref(), Some("/portal/grants?done=authorised"), "{}", answer.body);
    let given = merchant_owner.get("/portal/grants?done=authorised").await.body;
    assert!(given.contains("goes to the ISV only"), "{given}");
    let ids = grant_ids(&given);
    assert_eq!(ids.len(), 1, "{given}");
    let grant_id = ids[0].clone();
    assert!(
        given.contains(&isv.client_id) && given.contains("pay,inquiry") && given.contains("status-ACTIVE")
    );
    assert!(!given.contains("ocpay_at_"), "the merchant never sees the token");

    // The ISV gets it by notification, as from the CLI.
    app.background_rounds().await;
    let delivered = receiver.wait_for(1).await;
    let body: serde_json::Value = serde_json::from_str(&delivered[0].body).unwrap();
    let notified = body["accessToken"].as_str().expect("the token").to_owned();
    assert_eq!(body["grantId"], grant_id.as_str());

    // The ISV's page: held for its owner; a developer sees it held but cannot take it.
    let held = isv_developer.get("/portal/grants").await;
    assert!(held.body.contains(&grant_id) && held.body.contains(&merchant.client_id), "{}", held.body);
    assert!(held.body.contains("held for you until") && held.body.contains("Only an owner"));
    assert!(!held.body.contains("Authorise an ISV"), "an ISV gives no grants");
    let token_path = format!("/portal/grants/{grant_id}/token");
    assert_eq!(
        isv_developer.post(&token_path, &[("csrf", &held.csrf())]).await.status,
        StatusCode::FORBIDDEN
    );
    let page = isv_owner.get("/portal/grants").await;
    assert!(page.body.contains("Show the token once"), "{}", page.body);
    let shown = isv_owner.post(&token_path, &[("csrf", &page.csrf())]).await;
    assert_eq!(shown.status, StatusCode::OK, "{}", shown.body);
    assert_eq!(shown.headers.get("cache-control").unwrap(), "no-store");
    let token = shown_token(&shown.body).expect("the token, once");
    assert_eq!(token, notified, "the same token the notification carried");
    assert!(shown.body.contains("class=\"secret-once\""));

    // Once only: afterwards only how it starts, when and by whom.
    let again = isv_owner.post(&token_path, &[("csrf", &page.csrf())]).await;
    assert_eq!(again.status, StatusCode::CONFLICT);
    assert!(!again.body.contains(&token) && again.body.contains("not held here any more"));
    let after = isv_owner.get("/portal/grants").await.body;
    assert!(!after.contains(&token) && !after.contains("Show the token once"));
    assert!(
        after.contains("to owner@isv.example") && after.contains(&format!("it starts {}", &token[..13])),
        "{after}"
    );

    // The ISV pays for the merchant with it.
    let client =
        app.client_builder(&isv.client_id, isv.key.clone()).agent_token(token.clone()).build().unwrap();
    let paid = client.pay(&pay_request(&unique_id("PR-ISV"), "USD", 700)).await.unwrap();
    assert!(paid.result.is_success(), "{paid:?}");
    let payment_id = paid.payment_id.unwrap();
    let payment = merchant_owner.get(&format!("/portal/payments/{payment_id}")).await.body;
    assert!(
        payment.contains(&format!("Created by ISV {}", isv.client_id)),
        "the merchant's own payment: {payment}"
    );

    // Revoked from the page: the ISV's next call is refused.
    let revoke = format!("/portal/grants/{grant_id}/revoke");
    let csrf = merchant_owner.get("/portal/grants").await.csrf();
    assert_eq!(
        merchant_owner.post(&revoke, &[("csrf", &csrf)]).await.location.as_deref(),
        Some("/portal/grants?done=revoked")
    );
    assert!(merchant_owner.get("/portal/grants").await.body.contains("status-REVOKED"));
    let refused = client.pay(&pay_request(&unique_id("PR-ISV"), "USD", 700)).await;
    assert!(refused.map(|answer| !answer.result.is_success()).unwrap_or(true), "refused once revoked");
    assert_eq!(audited(&app, &merchant.client_id, "portal.authoriseIsv", 1).await, ["SUCCESS"]);
    assert_eq!(audited(&app, &merchant.client_id, "portal.revokeGrant", 1).await, ["SUCCESS"]);
    let taken = audited(&app, &isv.client_id, "portal.takeAgentToken", 3).await;
    assert_eq!(taken, ["FORBIDDEN", "NOT_FOUND", "SUCCESS"], "the role's refusal is audited too");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_is_held_only_until_its_hold_ends_or_the_grant_is_revoked() {
    let app = TestApp::spawn_with(|config| config.portal_agent_token_hold_hours = 1).await;
    let merchant = app.merchant().await;
    let isv = isv_at(&app, None).await;
    user_pair(&app, &merchant, &isv).await;
    let merchant_owner = Browser::signed_in(&app, "owner@shop.example").await;
    for _ in 0..2 {
        let answer = authorise(&merchant_owner, &[("isv", &isv.client_id), ("scope", "pay")]).await;
        assert_eq!(answer.status, StatusCode::SEE_OTHER, "{}", answer.body);
    }
    let ids = grant_ids(&merchant_owner.get("/portal/grants").await.body);
    let csrf = merchant_owner.get("/portal/grants").await.csrf();
    merchant_owner.post(&format!("/portal/grants/{}/revoke", ids[0]), &[("csrf", &csrf)]).await;

    let isv_owner = Browser::signed_in(&app, "owner@isv.example").await;
    let page = isv_owner.get("/portal/grants").await;
    assert_eq!(
        page.body.matches("Show the token once").count(),
        1,
        "not for the revoked grant: {}",
        page.body
    );
    let revoked =
        isv_owner.post(&format!("/portal/grants/{}/token", ids[0]), &[("csrf", &page.csrf())]).await;
    assert_eq!(revoked.status, StatusCode::CONFLICT);

    // The hold ends after an hour, taken or not; the timer job forgets it.
    app.clock.advance(SignedDuration::from_mins(61));
    app.background_rounds().await;
    let isv_owner = Browser::signed_in(&app, "owner@isv.example").await;
    let page = isv_owner.get("/portal/grants").await;
    assert!(
        !page.body.contains("Show the token once") && page.body.contains("no longer held here"),
        "{}",
        page.body
    );
    let late = isv_owner.post(&format!("/portal/grants/{}/token", ids[1]), &[("csrf", &page.csrf())]).await;
    assert_eq!(late.status, StatusCode::CONFLICT);
    let isv_id = ocpay_core::ids::ClientId::parse(&isv.client_id).unwrap();
    let holds = app.state.store.token_holds(&isv_id, ocpay_core::Timestamp::MIN).await.unwrap();
    assert!(holds.iter().all(|hold| !hold.held), "nothing is held any more, whatever the time: {holds:?}");
}

/// An owner for the merchant and one for the ISV.
async fn user_pair(app: &TestApp, merchant: &TestParticipant, isv: &TestParticipant) {
    crate::browser::user(app, &merchant.client_id, "owner@shop.example", Role::Owner).await;
    crate::browser::user(app, &isv.client_id, "owner@isv.example", Role::Owner).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grants_follow_the_role_and_other_participants_grants_answer_as_missing_ones() {
    let app = TestApp::spawn().await;
    let merchant = app.merchant().await;
    let isv = isv_at(&app, None).await;
    let other_isv = isv_at(&app, None).await;
    let attacker = app.merchant().await;
    let live_isv = app.participant(ParticipantKind::Isv, Environment::Live, None).await;
    let owner = signed_in(&app, &merchant.client_id, "owner@shop.example", Role::Owner).await;
    let developer = signed_in(&app, &merchant.client_id, "dev@shop.example", Role::Developer).await;

    // Developers and viewers of the merchant read, and are refused changes.
    let page = developer.get("/portal/grants").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(!page.body.contains("Authorise an ISV"));
    let refused = authorise(&developer, &[("isv", &isv.client_id), ("scope", "pay")]).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);

    // What the owner typed is refused with the field named, and nothing tells one participant
    // from another: missing, not an ISV, or of the other environment.
    for who in [
        "SANDBOX_NOBODY",
        merchant.client_id.as_str(),
        attacker.client_id.as_str(),
        live_isv.client_id.as_str(),
    ] {
        let refused = authorise(&owner, &[("isv", who), ("scope", "pay")]).await;
        assert_eq!(refused.status, StatusCode::BAD_REQUEST, "{who}");
        assert!(
            refused.body.contains("ISV client id: no ISV has this client id in your environment"),
            "{who}: {}",
            refused.body
        );
        assert!(refused.body.contains(&format!("value=\"{who}\"")), "the form keeps what was typed");
    }
    let no_scope = authorise(&owner, &[("isv", &isv.client_id)]).await;
    assert!(no_scope.body.contains("scopes: choose at least one"), "{}", no_scope.body);
    let bad_scope = authorise(&owner, &[("isv", &isv.client_id), ("scope", "steal")]).await;
    assert_eq!(bad_scope.status, StatusCode::BAD_REQUEST);
    for days in ["0", "3651", "soon"] {
        let refused = authorise(&owner, &[("isv", &isv.client_id), ("scope", "pay"), ("days", days)]).await;
        assert!(refused.body.contains("expires in days: must be a whole number from 1 to 3650"), "{days}");
    }
    let forged =
        owner.post("/portal/grants", &[("csrf", "forged"), ("isv", &isv.client_id), ("scope", "pay")]).await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    assert!(grant_ids(&owner.get("/portal/grants").await.body).is_empty(), "nothing was granted");

    let made = authorise(&owner, &[("isv", &isv.client_id), ("scope", "pay")]).await;
    assert_eq!(made.status, StatusCode::SEE_OTHER);
    let grant_id = grant_ids(&owner.get("/portal/grants").await.body).remove(0);
    let missing = "G20991231235959000000000000000000";

    // Another merchant cannot revoke it; another ISV cannot take its token; nor can the
    // merchant take it: each answers as a grant that does not exist.
    let attacker_owner = signed_in(&app, &attacker.client_id, "owner@attacker.example", Role::Owner).await;
    let csrf = attacker_owner.get("/portal/grants").await.csrf();
    let foreign = attacker_owner.post(&format!("/portal/grants/{grant_id}/revoke"), &[("csrf", &csrf)]).await;
    let absent = attacker_owner.post(&format!("/portal/grants/{missing}/revoke"), &[("csrf", &csrf)]).await;
    assert_eq!(foreign.status, StatusCode::NOT_FOUND);
    assert_eq!((foreign.status, &foreign.body), (absent.status, &absent.body));
    let thief = signed_in(&app, &other_isv.client_id, "owner@thief.example", Role::Owner).await;
    let csrf = thief.get("/portal/grants").await.csrf();
    let foreign = thief.post(&format!("/portal/grants/{grant_id}/token"), &[("csrf", &csrf)]).await;
    let absent = thief.post(&format!("/portal/grants/{missing}/token"), &[("csrf", &csrf)]).await;
    assert_eq!(foreign.status, StatusCode::NOT_FOUND);
    assert_eq!((foreign.status, &foreign.body), (absent.status, &absent.body));
    assert!(!thief.get("/portal/grants").await.body.contains(&grant_id), "not listed");
    let csrf = owner.get("/portal/grants").await.csrf();
    assert_eq!(
        owner.post(&format!("/portal/grants/{grant_id}/token"), &[("csrf", &csrf)]).await.status,
        StatusCode::NOT_FOUND
    );
    let isv_owner = signed_in(&app, &isv.client_id, "owner@isv.example", Role::Owner).await;
    let csrf = isv_owner.get("/portal/grants").await.csrf();
    assert_eq!(
        isv_owner.post(&format!("/portal/grants/{grant_id}/revoke"), &[("csrf", &csrf)]).await.status,
        StatusCode::NOT_FOUND,
        "the merchant revokes, not the ISV"
    );
    let forged = isv_owner.post(&format!("/portal/grants/{grant_id}/token"), &[("csrf", "forged")]).await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    assert!(isv_owner.get("/portal/grants").await.body.contains("Show the token once"), "still held");
    assert!(owner.get("/portal/grants").await.body.contains("status-ACTIVE"), "not revoked");

    let stranger = Browser::new(&app);
    assert_eq!(stranger.get("/portal/grants").await.location.as_deref(), Some("/portal/login"));
    let answer = stranger.post(&format!("/portal/grants/{grant_id}/revoke"), &[("csrf", "x")]).await;
    assert_eq!(answer.location.as_deref(), Some("/portal/login"));
}
