//! The registrations page: acquirers only (anyone else gets 404); the acquirer's registrations
//! with their status and reasons in keyset pages; "register again" for a rejected one, through
//! the gateway's own checks and use case; another acquirer's registration answers as a missing
//! one; roles and CSRF.

use ocpay_core::ids::ClientId;
use ocpay_core::participant::{Environment, ParticipantKind};
use ocpay_core::portal::Role;
use ocpay_core::registration::Decision;
use ocpay_server::clock::Clock as _;
use ocpay_server::service::registrations;
use ocpay_testkit::{TestApp, TestParticipant, registration_request, unique_id};
use reqwest::StatusCode;

use crate::browser::{Browser, Page, field_value};
use crate::payments::{all_between, audited, next_link, signed_in};

/// Registers a store through the gateway; its registration request id.
async fn register(acquirer: &TestParticipant, merchant: &str, store: &str) -> String {
    let request_id = unique_id("REG");
    let answer = acquirer
        .client
        .register(&registration_request(&request_id, merchant, store))
        .await
        .expect("register");
    assert!(answer.result.is_success(), "{answer:?}");
    request_id
}

/// An operator rejects a registration, as `ocpay registrations reject` does.
async fn reject(app: &TestApp, acquirer: &TestParticipant, request_id: &str, reason: &str) {
    let owner = ClientId::parse(&acquirer.client_id).unwrap();
    let decision = Decision::Reject { reason: reason.parse().unwrap() };
    registrations::review(&*app.state.store, request_id, Some(&owner), &decision, app.clock.now())
        .await
        .unwrap();
}

/// The registration ids the page's "register again" links name.
fn again_links(body: &str) -> Vec<String> {
    all_between(body, "<a href=\"/portal/registrations/", "/again\"")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_acquirers_have_the_section() {
    let app = TestApp::spawn().await;
    let merchant = app.merchant().await;
    let isv = app.participant(ParticipantKind::Isv, Environment::Sandbox, None).await;
    for (client_id, email) in
        [(&merchant.client_id, "owner@shop.example"), (&isv.client_id, "owner@isv.example")]
    {
        let browser = signed_in(&app, client_id, email, Role::Owner).await;
        let home = browser.get("/portal/").await;
        assert!(!home.body.contains("/portal/registrations"), "not in the navigation");
        let page = browser.get("/portal/registrations").await;
        assert_eq!(page.status, StatusCode::NOT_FOUND);
        let again = browser.get("/portal/registrations/20991231235959000000000000000000/again").await;
        assert_eq!(again.status, StatusCode::NOT_FOUND);
    }
    let acquirer = app.acquirer().await;
    let browser = signed_in(&app, &acquirer.client_id, "owner@acquirer.example", Role::Viewer).await;
    assert!(
        browser.get("/portal/").await.body.contains("href=\"/portal/registrations\""),
        "an acquirer's navigation"
    );
    assert_eq!(browser.get("/portal/registrations").await.status, StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_list_shows_status_and_reasons_in_keyset_pages() {
    let app = TestApp::spawn_with(|config| config.portal_page_size = 2).await;
    let acquirer = app.acquirer().await;
    let other = app.acquirer().await;
    let viewer = signed_in(&app, &acquirer.client_id, "viewer@acquirer.example", Role::Viewer).await;
    let mut ids = Vec::new();
    for n in 0..5 {
        ids.push(register(&acquirer, &format!("M{n}"), "S1").await);
        app.clock.advance(jiff::SignedDuration::from_millis(3));
    }
    register(&other, "M9", "S1").await;
    reject(&app, &acquirer, &ids[1], "the legal name does not match the registration number").await;

    let mut listed = Vec::new();
    let mut path = Some("/portal/registrations".to_owned());
    let mut sizes = Vec::new();
    while let Some(current) = path {
        let page = viewer.get(&current).await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.body);
        let mut found: Vec<String> =
            ids.iter().filter(|id| page.body.contains(id.as_str())).cloned().collect();
        found.sort_by_key(|id| page.body.find(id.as_str()));
        sizes.push(found.len());
        listed.extend(found);
        path = next_link(&page);
    }
    assert_eq!(sizes, [2, 2, 1], "pages of two");
    let mut newest_first = ids.clone();
    newest_first.reverse();
    let mut in_order = listed.clone();
    in_order.sort_by_key(|id| newest_first.iter().position(|other| other == id));
    assert_eq!(listed, in_order, "newest first");

    let rejected = viewer.get("/portal/registrations?status=REJECTED").await.body;
    assert!(rejected.contains(&ids[1]) && rejected.contains("status-REJECTED"), "{rejected}");
    assert!(rejected.contains("the legal name does not match the registration number"), "the reason");
    assert!(rejected.contains("Corner Bakery Tanjong Pagar"), "the store's name");
    assert!(again_links(&rejected).is_empty(), "a viewer cannot register again");
    let processing = viewer.get("/portal/registrations?status=PROCESSING").await.body;
    assert!(
        !processing.contains(&ids[1]) && processing.contains(&ids[4]),
        "the newest page of those under review"
    );
    let refused = viewer.get("/portal/registrations?status=PENDING").await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST);
    assert!(refused.body.contains("status: must be PROCESSING, APPROVED or REJECTED"));
}

async fn post(browser: &Browser, path: &str, fields: Vec<(String, String)>) -> Page {
    let borrowed: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    browser.post(path, &borrowed).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rejected_registration_is_registered_again_through_the_gateways_checks() {
    let app = TestApp::spawn().await;
    let acquirer = app.acquirer().await;
    let request_id = register(&acquirer, "M-AGAIN", "S1").await;
    reject(&app, &acquirer, &request_id, "store address missing").await;
    let developer = signed_in(&app, &acquirer.client_id, "dev@acquirer.example", Role::Developer).await;
    let viewer = signed_in(&app, &acquirer.client_id, "viewer@acquirer.example", Role::Viewer).await;
    let list = developer.get("/portal/registrations").await;
    let links = again_links(&list.body);
    assert_eq!(links.len(), 1, "{}", list.body);
    let path = format!("/portal/registrations/{}/again", links[0]);

    // Prefilled from what was registered, with a new request id.
    let form = developer.get(&path).await;
    assert_eq!(form.status, StatusCode::OK);
    assert!(form.body.contains("store address missing"), "the reason");
    assert_eq!(field_value(&form.body, "store_name").as_deref(), Some("Corner Bakery Tanjong Pagar"));
    assert_eq!(field_value(&form.body, "legal_name").as_deref(), Some("Corner Bakery Pte Ltd"));
    assert_eq!(field_value(&form.body, "merchant_mcc").as_deref(), Some("5462"));
    assert_eq!(field_value(&form.body, "city").as_deref(), Some("Singapore"));
    let new_request_id = field_value(&form.body, "registration_request_id").unwrap();
    assert_ne!(new_request_id, request_id);
    let csrf = form.csrf();
    let fields = |mcc: &'static str, request_id: &str| {
        vec![
            ("csrf".to_owned(), csrf.clone()),
            ("registration_request_id".to_owned(), request_id.to_owned()),
            ("merchant_display_name".to_owned(), "Corner Bakery".to_owned()),
            ("merchant_mcc".to_owned(), "5462".to_owned()),
            ("legal_name".to_owned(), "Corner Bakery Pte Ltd".to_owned()),
            ("registration_no".to_owned(), "201912345K".to_owned()),
            ("store_name".to_owned(), "Corner Bakery Tanjong Pagar".to_owned()),
            ("store_mcc".to_owned(), mcc.to_owned()),
            ("region".to_owned(), "SG".to_owned()),
            ("city".to_owned(), "Singapore".to_owned()),
            ("address1".to_owned(), "2 Tanjong Pagar Road".to_owned()),
        ]
    };

    // The gateway's checks, named as the gateway names the field; the form keeps what was typed.
    let refused = post(&developer, &path, fields("54x2", &new_request_id)).await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST);
    assert!(refused.body.contains("storeInfo.storeMCC"), "{}", refused.body);
    assert!(refused.body.contains("value=\"2 Tanjong Pagar Road\""));
    assert_eq!(post(&viewer, &path, fields("5462", &new_request_id)).await.status, StatusCode::FORBIDDEN);
    let forged = {
        let mut fields = fields("5462", &new_request_id);
        fields[0].1 = "forged".into();
        post(&developer, &path, fields).await
    };
    assert_eq!(forged.status, StatusCode::FORBIDDEN);

    let again = post(&developer, &path, fields("5462", &new_request_id)).await;
    assert_eq!(again.location.as_deref(), Some("/portal/registrations?done=registered"), "{}", again.body);
    let list = developer.get("/portal/registrations?done=registered").await.body;
    assert!(list.contains("under review") && list.contains(&new_request_id), "{list}");
    let inquired = acquirer
        .client
        .inquire_registration_status(&ocpay_protocol::registrations::InquiryRegistrationStatusRequest {
            registration_request_id: Some(new_request_id.clone()),
            ..Default::default()
        })
        .await
        .unwrap();
    let status = inquired.registration_result.as_ref().map(|result| result.registration_status.as_str());
    assert_eq!(status, Some("PROCESSING"), "the gateway sees it: {inquired:?}");
    let info = app
        .state
        .store
        .registrations(Some(&ClientId::parse(&acquirer.client_id).unwrap()), Some(&new_request_id), 1)
        .await
        .unwrap()
        .remove(0);
    assert!(
        info.terms.content.contains("2 Tanjong Pagar Road"),
        "the corrected address: {}",
        info.terms.content
    );
    assert!(info.terms.content.contains("201912345K"));

    // The rejected one stays rejected; registered again it is refused as the gateway refuses it.
    let twice = post(&developer, &path, fields("5462", &unique_id("REG-TWICE"))).await;
    assert_eq!(twice.status, StatusCode::BAD_REQUEST);
    assert!(twice.body.contains("under review"), "{}", twice.body);
    assert_eq!(
        audited(&app, &acquirer.client_id, "portal.registerAgain", 3).await,
        ["PARAM_ILLEGAL", "REGISTRATION_UNDER_REVIEW", "SUCCESS"].map(str::to_owned)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_acquirers_registration_answers_as_a_missing_one() {
    let app = TestApp::spawn().await;
    let victim = app.acquirer().await;
    let attacker = app.acquirer().await;
    let rejected = register(&victim, "M-VICTIM", "S1").await;
    reject(&app, &victim, &rejected, "no").await;
    let under_review = register(&victim, "M-REVIEW", "S1").await;
    let owner = ClientId::parse(&victim.client_id).unwrap();
    let id_of = |request_id: String| {
        let app = &app;
        let owner = owner.clone();
        async move {
            app.state
                .store
                .registrations(Some(&owner), Some(&request_id), 1)
                .await
                .unwrap()
                .remove(0)
                .terms
                .id
                .to_string()
        }
    };
    let rejected_id = id_of(rejected).await;
    let under_review_id = id_of(under_review).await;
    let browser = signed_in(&app, &attacker.client_id, "owner@attacker.example", Role::Owner).await;
    let csrf = browser.get("/portal/registrations").await.csrf();
    let missing = "20991231235959000000000000000000";
    let foreign = browser.get(&format!("/portal/registrations/{rejected_id}/again")).await;
    let absent = browser.get(&format!("/portal/registrations/{missing}/again")).await;
    assert_eq!(foreign.status, StatusCode::NOT_FOUND);
    assert_eq!((foreign.status, &foreign.body), (absent.status, &absent.body));
    let form =
        [("csrf", csrf.as_str()), ("registration_request_id", "REG-ATTACK"), ("store_name", "Mine now")];
    let foreign = browser.post(&format!("/portal/registrations/{rejected_id}/again"), &form).await;
    let absent = browser.post(&format!("/portal/registrations/{missing}/again"), &form).await;
    assert_eq!(foreign.status, StatusCode::NOT_FOUND);
    assert_eq!((foreign.status, &foreign.body), (absent.status, &absent.body));
    assert!(!browser.get("/portal/registrations").await.body.contains("M-VICTIM"), "not listed");

    // The victim's own registration under review has no "again" either.
    let victim_owner = signed_in(&app, &victim.client_id, "owner@victim.example", Role::Owner).await;
    assert_eq!(
        victim_owner.get(&format!("/portal/registrations/{under_review_id}/again")).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        Browser::new(&app)
            .get(&format!("/portal/registrations/{rejected_id}/again"))
            .await
            .location
            .as_deref(),
        Some("/portal/login")
    );
}
