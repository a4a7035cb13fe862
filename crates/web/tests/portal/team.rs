//! The team page: an owner invites a user (the one-time link shown once sets the password, and
//! the user signs in with the role given), changes roles and disables users but never itself;
//! other participants' users answer as missing ones; roles and CSRF.

use ocpay_core::ids::ClientId;
use ocpay_core::portal::Role;
use ocpay_testkit::TestApp;
use reqwest::StatusCode;

use crate::browser::{Browser, PASSWORD, audit_codes, user};

/// The one-time link's path and query in an invitation's answer.
fn setup_path(body: &str) -> String {
    let start = body.find("/portal/setup?token=").expect("the page shows the link");
    let end = start + body[start..].find('<').expect("the link ends");
    body[start..end].to_owned()
}

async fn user_id_of(app: &TestApp, email: &str) -> String {
    app.state.store.portal_user_by_email(email).await.unwrap().expect("the user").user_id
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invited_integrator_sets_a_password_through_the_link_and_signs_in_as_a_developer() {
    let app = TestApp::spawn().await;
    let merchant = app.merchant().await;
    let client_id = ClientId::parse(&merchant.client_id).unwrap();
    user(&app, &merchant.client_id, "owner@shop.example", Role::Owner).await;
    let owner = Browser::signed_in(&app, "owner@shop.example").await;

    let page = owner.get("/portal/team").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("owner@shop.example") && page.body.contains("(you)"), "{}", page.body);
    assert!(page.body.contains("system integrator") && page.body.contains("as a <strong>developer</strong>"));
    let csrf = page.csrf();

    let refused = owner
        .post("/portal/team/invite", &[("csrf", &csrf), ("email", "not an email"), ("role", "developer")])
        .await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST);
    assert!(
        refused.body.contains("email: ") && refused.body.contains("value=\"not an email\""),
        "{}",
        refused.body
    );
    let refused = owner
        .post("/portal/team/invite", &[("csrf", &csrf), ("email", "si@acme.example"), ("role", "admin")])
        .await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST);
    assert!(refused.body.contains("role: must be owner, developer or viewer"), "{}", refused.body);
    let refused = owner
        .post("/portal/team/invite", &[("csrf", &csrf), ("email", "OWNER@shop.example"), ("role", "viewer")])
        .await;
    assert!(refused.body.contains("a user with this email exists already"), "{}", refused.body);

    let invited = owner
        .post("/portal/team/invite", &[("csrf", &csrf), ("email", "SI@Acme.Example"), ("role", "developer")])
        .await;
    assert_eq!(invited.status, StatusCode::OK, "{}", invited.body);
    assert!(invited.body.contains("class=\"secret-once\""), "{}", invited.body);
    assert!(invited.body.contains("Invitation for si@acme.example (developer)"));
    let link = setup_path(&invited.body);
    assert!(invited.body.contains(&format!("{}{link}", app.base_url)), "the link is absolute");
    let listed = owner.get("/portal/team").await.body;
    assert!(listed.contains("si@acme.example") && listed.contains("Invited: password not set yet"));
    assert!(!listed.contains("/portal/setup?token="), "the link is shown once");

    // A lost link is replaced from the team page: the old one stops working.
    let si_id = user_id_of(&app, "si@acme.example").await;
    let replaced = owner.post(&format!("/portal/team/{si_id}/link"), &[("csrf", &csrf)]).await;
    assert_eq!(replaced.status, StatusCode::OK, "{}", replaced.body);
    let lost = link;
    let link = setup_path(&replaced.body);
    assert_ne!(link, lost);
    let stale = Browser::new(&app);
    let form = stale.get(&lost).await;
    let token = lost.trim_start_matches("/portal/setup?token=");
    let refused = stale
        .post("/portal/setup", &[("csrf", &form.csrf()), ("token", token), ("password", PASSWORD)])
        .await;
    assert!(refused.body.contains("link is not valid"), "the replaced link is spent");

    // The integrator sets a password through the link and signs in with the role given.
    let integrator = Browser::new(&app);
    let form = integrator.get(&link).await;
    let token = link.trim_start_matches("/portal/setup?token=");
    let set = integrator
        .post("/portal/setup", &[("csrf", &form.csrf()), ("token", token), ("password", PASSWORD)])
        .await;
    assert_eq!(set.status, StatusCode::OK, "{}", set.body);
    let integrator = Browser::signed_in(&app, "si@acme.example").await;
    let keys = integrator.get("/portal/keys").await;
    assert!(
        keys.body.contains("si@acme.example (developer)") && keys.body.contains("Add a key"),
        "{}",
        keys.body
    );
    let team = integrator.get("/portal/team").await;
    assert_eq!(team.status, StatusCode::OK);
    assert!(!team.body.contains("Invite a user"), "a developer sees the team, no invitation form");
    let denied = integrator
        .post(
            "/portal/team/invite",
            &[("csrf", &team.csrf()), ("email", "friend@acme.example"), ("role", "owner")],
        )
        .await;
    assert_eq!(denied.status, StatusCode::FORBIDDEN);
    assert!(app.state.store.portal_user_by_email("friend@acme.example").await.unwrap().is_none());
    assert!(owner.get("/portal/team").await.body.contains("<span class=\"status status-S\">Active</span>"));
    let again = owner.post(&format!("/portal/team/{si_id}/link"), &[("csrf", &csrf)]).await;
    assert_eq!(again.status, StatusCode::BAD_REQUEST, "a user with a password gets no link");

    assert_eq!(audit_codes(&app, &client_id, "portal.inviteUser", 2).await, ["FORBIDDEN", "SUCCESS"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_owner_changes_roles_and_disables_users_but_never_itself() {
    let app = TestApp::spawn().await;
    let merchant = app.merchant().await;
    let other = app.merchant().await;
    let client_id = ClientId::parse(&merchant.client_id).unwrap();
    user(&app, &merchant.client_id, "owner@shop.example", Role::Owner).await;
    user(&app, &merchant.client_id, "dev@shop.example", Role::Developer).await;
    user(&app, &other.client_id, "dev@other.example", Role::Developer).await;
    let owner = Browser::signed_in(&app, "owner@shop.example").await;
    let developer = Browser::signed_in(&app, "dev@shop.example").await;
    let dev_id = user_id_of(&app, "dev@shop.example").await;
    let owner_id = user_id_of(&app, "owner@shop.example").await;
    let csrf = owner.get("/portal/team").await.csrf();

    // The role changes and the user's sessions end: the new role applies from the next sign-in.
    let changed =
        owner.post(&format!("/portal/team/{dev_id}/role"), &[("csrf", &csrf), ("role", "viewer")]).await;
    assert_eq!(changed.location.as_deref(), Some("/portal/team?done=role"), "{}", changed.body);
    assert_eq!(developer.get("/portal/keys").await.location.as_deref(), Some("/portal/login"));
    let viewer = Browser::signed_in(&app, "dev@shop.example").await;
    let keys = viewer.get("/portal/keys").await;
    assert!(keys.body.contains("(viewer)") && !keys.body.contains("Add a key"), "{}", keys.body);
    let bad = owner.post(&format!("/portal/team/{dev_id}/role"), &[("csrf", &csrf), ("role", "root")]).await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert!(bad.body.contains("role: "), "{}", bad.body);

    // Never itself: the participant keeps the owner who acts.
    let own_role =
        owner.post(&format!("/portal/team/{owner_id}/role"), &[("csrf", &csrf), ("role", "viewer")]).await;
    let own_disable = owner.post(&format!("/portal/team/{owner_id}/disable"), &[("csrf", &csrf)]).await;
    for refused in [&own_role, &own_disable] {
        assert_eq!(refused.status, StatusCode::BAD_REQUEST);
        assert!(refused.body.contains("your own account"), "{}", refused.body);
    }
    let me = app.state.store.portal_user(&owner_id).await.unwrap().unwrap();
    assert_eq!((me.role, me.disabled_at), (Role::Owner, None));

    // Another participant's user answers exactly as a missing one, and stays as it was.
    let theirs = user_id_of(&app, "dev@other.example").await;
    for action in ["role", "disable"] {
        let foreign = owner
            .post(&format!("/portal/team/{theirs}/{action}"), &[("csrf", &csrf), ("role", "viewer")])
            .await;
        let missing = owner
            .post(
                &format!("/portal/team/Unobody0000000000000000/{action}"),
                &[("csrf", &csrf), ("role", "viewer")],
            )
            .await;
        assert_eq!(foreign.status, StatusCode::NOT_FOUND, "{action}");
        assert_eq!((foreign.status, &foreign.body), (missing.status, &missing.body), "{action}");
    }
    let untouched = app.state.store.portal_user(&theirs).await.unwrap().unwrap();
    assert_eq!((untouched.role, untouched.disabled_at), (Role::Developer, None));
    assert!(!owner.get("/portal/team").await.body.contains("dev@other.example"), "and never listed");

    // Disabled, the user is signed out everywhere and cannot sign in again.
    let disabled = owner.post(&format!("/portal/team/{dev_id}/disable"), &[("csrf", &csrf)]).await;
    assert_eq!(disabled.location.as_deref(), Some("/portal/team?done=disabled"));
    assert_eq!(viewer.get("/portal/").await.location.as_deref(), Some("/portal/login"));
    assert_eq!(
        Browser::new(&app).sign_in("dev@shop.example", PASSWORD, "").await.status,
        StatusCode::UNAUTHORIZED
    );
    let team = owner.get("/portal/team?done=disabled").await.body;
    assert!(team.contains("User disabled") && team.contains("Disabled since"), "{team}");

    assert_eq!(audit_codes(&app, &client_id, "portal.changeRole", 1).await, ["SUCCESS"]);
    assert_eq!(audit_codes(&app, &client_id, "portal.disableUser", 1).await, ["SUCCESS"]);
    let events = app.state.store.audit_events(&client_id, 200).await.unwrap();
    let disable = events.iter().find(|event| event.api == "portal.disableUser").unwrap();
    assert!(
        disable.idempotency_key.as_deref().is_some_and(|named| named.ends_with(" on dev@shop.example")),
        "the trail names whom: {disable:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_owners_manage_users_and_only_with_the_sessions_token() {
    let app = TestApp::spawn_with(|config| config.portal_page_size = 2).await;
    let merchant = app.merchant().await;
    let client_id = ClientId::parse(&merchant.client_id).unwrap();
    assert_eq!(Browser::new(&app).get("/portal/team").await.location.as_deref(), Some("/portal/login"));
    for (email, role) in [
        ("a-owner@shop.example", Role::Owner),
        ("b-dev@shop.example", Role::Developer),
        ("c-viewer@shop.example", Role::Viewer),
    ] {
        user(&app, &merchant.client_id, email, role).await;
    }
    let target = user_id_of(&app, "c-viewer@shop.example").await;
    for email in ["b-dev@shop.example", "c-viewer@shop.example"] {
        let browser = Browser::signed_in(&app, email).await;
        let page = browser.get("/portal/team").await;
        assert_eq!(page.status, StatusCode::OK, "{email} reads the team");
        assert!(!page.body.contains("Change role") && !page.body.contains("Invite a user"), "{email}");
        let csrf = page.csrf();
        let answers = [
            browser
                .post(
                    "/portal/team/invite",
                    &[("csrf", &csrf), ("email", "x@shop.example"), ("role", "owner")],
                )
                .await,
            browser.post(&format!("/portal/team/{target}/role"), &[("csrf", &csrf), ("role", "owner")]).await,
            browser.post(&format!("/portal/team/{target}/disable"), &[("csrf", &csrf)]).await,
        ];
        for answer in answers {
            assert_eq!(answer.status, StatusCode::FORBIDDEN, "{email}");
        }
    }
    let owner = Browser::signed_in(&app, "a-owner@shop.example").await;
    let csrf = owner.get("/portal/team").await.csrf();
    let forged = owner
        .post("/portal/team/invite", &[("csrf", "forged"), ("email", "x@shop.example"), ("role", "owner")])
        .await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    let cross_site = [("origin", "https://evil.example"), ("sec-fetch-site", "cross-site")];
    let answer =
        owner.post_with(&format!("/portal/team/{target}/disable"), &[("csrf", &csrf)], &cross_site).await;
    assert_eq!(answer.status, StatusCode::FORBIDDEN);
    let answer = owner
        .post_with(&format!("/portal/team/{target}/role"), &[("csrf", &csrf), ("role", "owner")], &cross_site)
        .await;
    assert_eq!(answer.status, StatusCode::FORBIDDEN);
    assert!(app.state.store.portal_user_by_email("x@shop.example").await.unwrap().is_none());
    let unchanged = app.state.store.portal_user(&target).await.unwrap().unwrap();
    assert_eq!((unchanged.role, unchanged.disabled_at), (Role::Viewer, None), "nothing changed");
    assert_eq!(audit_codes(&app, &client_id, "portal.disableUser", 2).await, ["FORBIDDEN"; 2]);

    // Two users a page, by email.
    let first = owner.get("/portal/team").await.body;
    assert!(first.contains("a-owner@") && first.contains("b-dev@") && !first.contains("c-viewer@"));
    assert!(first.contains("href=\"/portal/team?after=b-dev%40shop.example\""), "{first}");
    let second = owner.get("/portal/team?after=b-dev%40shop.example").await.body;
    assert!(
        second.contains("c-viewer@") && !second.contains("b-dev@") && !second.contains("More users"),
        "{second}"
    );
}
