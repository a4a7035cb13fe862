//! The developer center's users and sessions: emails are unique across participants, a sign-up
//! is all or nothing, failed sign-ins lock a user (counted before the check), a TOTP step works
//! once, and a change of password, role or status ends the user's sessions.

use std::sync::Arc;

use ocpay_core::participant::{Participant, ParticipantKind};
use ocpay_core::portal::Role;

use crate::portal::Realm;
use crate::{NewPortalUser, PortalSession, PortalUserChange, SetupToken, Store, StoreError};

use super::{at, client, key, merchant};

fn user(id: &str, client_name: &str, email: &str) -> NewPortalUser {
    NewPortalUser {
        user_id: id.into(),
        client_id: client(client_name),
        email: email.into(),
        role: Role::Developer,
        password_hash: Some(format!("$argon2id${id}")),
        setup: None,
        created_at: at(1),
    }
}

fn session(byte: u8, user_id: &str, second: i64) -> PortalSession {
    PortalSession {
        session_sha256: vec![byte; 32],
        user_id: user_id.into(),
        csrf_token: format!("csrf-{byte}"),
        created_at: at(second),
        last_seen_at: at(second),
    }
}

pub async fn portal_users_are_unique_by_email_and_sign_up_is_atomic(store: Arc<dyn Store>) {
    merchant(&*store, "ALICE").await;
    merchant(&*store, "BOB").await;
    store.create_portal_user(&user("u1", "ALICE", "dev@alice.example")).await.unwrap();
    assert_eq!(
        store.create_portal_user(&user("u2", "BOB", "dev@alice.example")).await,
        Err(StoreError::Conflict("email")),
        "an email belongs to one user of one participant"
    );
    store.create_portal_user(&user("u3", "BOB", "ops@bob.example")).await.unwrap();
    let found = store.portal_user_by_email("dev@alice.example").await.unwrap().unwrap();
    assert_eq!(
        (found.user_id.as_str(), found.client_id.as_str(), found.role),
        ("u1", "ALICE", Role::Developer)
    );
    assert_eq!(store.portal_user("u3").await.unwrap().unwrap().email, "ops@bob.example");
    let of_bob: Vec<_> =
        store.portal_users(Some(&client("BOB"))).await.unwrap().into_iter().map(|u| u.user_id).collect();
    assert_eq!(of_bob, ["u3"]);
    assert_eq!(store.portal_users(None).await.unwrap().len(), 2);

    // A sign-up whose email is taken leaves no participant behind.
    let participant = Participant {
        client_id: client("CAROL"),
        kind: ParticipantKind::Merchant,
        name: "Carol Ltd".parse().unwrap(),
        notify_url: None,
        created_at: at(2),
    };
    let taken = user("u4", "CAROL", "ops@bob.example");
    assert_eq!(store.sign_up(&participant, &key(3), &taken).await, Err(StoreError::Conflict("email")));
    assert_eq!(store.participant(&client("CAROL")).await.unwrap(), None);
    store.sign_up(&participant, &key(3), &user("u4", "CAROL", "me@carol.example")).await.unwrap();
    assert!(store.participant(&client("CAROL")).await.unwrap().is_some());
    assert_eq!(store.portal_user("u4").await.unwrap().unwrap().client_id, client("CAROL"));
}

pub async fn a_participants_users_page_by_email(store: Arc<dyn Store>) {
    merchant(&*store, "ALICE").await;
    merchant(&*store, "BOB").await;
    for (id, email) in [("u1", "c@alice.example"), ("u2", "a@alice.example"), ("u3", "b@alice.example")] {
        store.create_portal_user(&user(id, "ALICE", email)).await.unwrap();
    }
    store.create_portal_user(&user("u4", "BOB", "b0@bob.example")).await.unwrap();
    let emails = |page: Vec<crate::PortalUser>| page.into_iter().map(|user| user.email).collect::<Vec<_>>();
    let alice = client("ALICE");
    let first = store.portal_users_page(&alice, None, 2).await.unwrap();
    assert_eq!(emails(first), ["a@alice.example", "b@alice.example"], "by email, cut to the limit");
    let rest = store.portal_users_page(&alice, Some("b@alice.example"), 2).await.unwrap();
    assert_eq!(emails(rest), ["c@alice.example"], "after the last email of the page before");
    assert!(store.portal_users_page(&alice, Some("c@alice.example"), 2).await.unwrap().is_empty());
    let bob = store.portal_users_page(&client("BOB"), None, 10).await.unwrap();
    assert_eq!(emails(bob), ["b0@bob.example"], "another participant's users are never in the page");
}

pub async fn portal_sign_ins_lock_and_totp_steps_work_once(store: Arc<dyn Store>) {
    merchant(&*store, "ALICE").await;
    store.create_portal_user(&user("u1", "ALICE", "dev@alice.example")).await.unwrap();
    // Three attempts counted, the third locks until 100; while locked nothing counts.
    for _ in 0..3 {
        assert!(store.sign_in_attempt(Realm::Portal, "u1", 3, at(100), at(10)).await.unwrap());
    }
    let locked = store.portal_user("u1").await.unwrap().unwrap();
    assert_eq!((locked.failures, locked.locked_until), (3, Some(at(100))));
    assert!(!store.sign_in_attempt(Realm::Portal, "u1", 3, at(200), at(50)).await.unwrap());
    assert_eq!(store.portal_user("u1").await.unwrap().unwrap().locked_until, Some(at(100)));
    // After the lockout a success clears the count and opens a session.
    assert!(store.sign_in_attempt(Realm::Portal, "u1", 3, at(300), at(101)).await.unwrap());
    assert!(store.record_sign_in(Realm::Portal, &session(1, "u1", 101), Some(7)).await.unwrap());
    let signed_in = store.portal_user("u1").await.unwrap().unwrap();
    assert_eq!((signed_in.failures, signed_in.locked_until), (0, None));
    assert_eq!((signed_in.totp_last_step, signed_in.last_sign_in_at), (Some(7), Some(at(101))));
    // The same TOTP step again is refused and opens nothing.
    assert!(!store.record_sign_in(Realm::Portal, &session(2, "u1", 102), Some(7)).await.unwrap());
    assert_eq!(store.portal_session(&[2; 32]).await.unwrap(), None);
    assert!(store.record_sign_in(Realm::Portal, &session(2, "u1", 102), Some(8)).await.unwrap());
    let (found, owner) = store.portal_session(&[1; 32]).await.unwrap().unwrap();
    assert_eq!((found.csrf_token.as_str(), owner.user_id.as_str()), ("csrf-1", "u1"));
    store.touch_session(Realm::Portal, &[1; 32], at(150)).await.unwrap();
    store.touch_session(Realm::Portal, &[1; 32], at(120)).await.unwrap();
    assert_eq!(store.portal_session(&[1; 32]).await.unwrap().unwrap().0.last_seen_at, at(150));
    store.end_session(Realm::Portal, &[1; 32]).await.unwrap();
    assert_eq!(store.portal_session(&[1; 32]).await.unwrap(), None);
    assert!(store.portal_session(&[2; 32]).await.unwrap().is_some());
}

pub async fn portal_user_changes_end_sessions_and_links_work_once(store: Arc<dyn Store>) {
    merchant(&*store, "ALICE").await;
    let invited = NewPortalUser {
        password_hash: None,
        setup: Some(SetupToken { sha256: vec![9; 32], expires_at: at(100) }),
        ..user("u1", "ALICE", "new@alice.example")
    };
    store.create_portal_user(&invited).await.unwrap();
    assert_eq!(store.portal_user_by_setup_token(&[9; 32], at(100)).await.unwrap(), None, "expired");
    assert_eq!(store.portal_user_by_setup_token(&[9; 32], at(99)).await.unwrap().unwrap().user_id, "u1");
    let change = PortalUserChange { password_hash: Some("$argon2id$set".into()), ..Default::default() };
    let changed = store.update_portal_user("u1", &change).await.unwrap().unwrap();
    assert_eq!(changed.password_hash.as_deref(), Some("$argon2id$set"));
    assert_eq!(store.portal_user_by_setup_token(&[9; 32], at(1)).await.unwrap(), None, "the link is spent");

    // A new TOTP key keeps the session; a new role ends it; a disabled user keeps its first time.
    assert!(store.record_sign_in(Realm::Portal, &session(1, "u1", 10), None).await.unwrap());
    let totp = PortalUserChange { totp_secret: Some(Some("JBSWY3DPEHPK3PXP".into())), ..Default::default() };
    store.update_portal_user("u1", &totp).await.unwrap();
    assert!(store.portal_session(&[1; 32]).await.unwrap().is_some());
    let role = PortalUserChange { role: Some(Role::Viewer), ..Default::default() };
    assert_eq!(store.update_portal_user("u1", &role).await.unwrap().unwrap().role, Role::Viewer);
    assert_eq!(store.portal_session(&[1; 32]).await.unwrap(), None);
    assert!(store.record_sign_in(Realm::Portal, &session(2, "u1", 20), None).await.unwrap());
    let disable = PortalUserChange { disabled_at: Some(at(30)), ..Default::default() };
    store.update_portal_user("u1", &disable).await.unwrap();
    let again = PortalUserChange { disabled_at: Some(at(40)), ..Default::default() };
    let disabled = store.update_portal_user("u1", &again).await.unwrap().unwrap();
    assert_eq!(disabled.disabled_at, Some(at(30)));
    assert_eq!(store.portal_session(&[2; 32]).await.unwrap(), None);
    assert_eq!(store.update_portal_user("nobody", &disable).await.unwrap(), None);
}

pub async fn daily_activity_counts_successes_per_day_and_currency(store: Arc<dyn Store>) {
    use ocpay_core::money::{Currency, Money};
    let usd = |minor| Money::new(minor, Currency::parse("USD").unwrap());
    let payer = super::payer_with(&*store, "PAYER-1", usd(1_000_000)).await;
    let (owner, first) = super::paid_by(&*store, "A-1", 1_250, &payer).await;
    super::paid_by(&*store, "A-2", 750, &payer).await;
    super::paid_ready(&*store, "A-3", 999).await;
    let refund = super::refund_of(&first, "R-1", usd(250), super::at(200));
    store.create_refund(&refund).await.unwrap();
    super::merchant(&*store, "BOB").await;

    // Nothing final yet: every figure is computed from the rows.
    let activity = store.daily_activity(&owner, super::at(0), super::at(0)).await.unwrap();
    let day = super::at(0).as_millisecond() / 86_400_000;
    assert_eq!(activity.payments.len(), 1, "{activity:?}");
    let payments = &activity.payments[0];
    assert_eq!(
        (payments.day, payments.count, payments.amount),
        (day, 2, usd(2_000)),
        "unpaid ones do not count"
    );
    assert_eq!(activity.refunds.len(), 1);
    assert_eq!((activity.refunds[0].count, activity.refunds[0].amount), (1, usd(250)));
    let notified: u64 = activity.notifications.iter().map(|d| d.delivered + d.failed + d.pending).sum();
    assert_eq!(notified, 3, "two payment results and a refund result: {activity:?}");
    assert_eq!(
        store.daily_activity(&client("BOB"), super::at(0), super::at(0)).await.unwrap(),
        Default::default()
    );

    // Once the day is final it is kept: the same figures, computed once, then read as kept
    // even if a row changed afterwards (which a final day's rows no longer do).
    let later = super::at(86_400 * 5);
    assert_eq!(store.daily_activity(&owner, super::at(0), later).await.unwrap(), activity);
    super::paid_by(&*store, "A-4", 1_000, &payer).await;
    assert_eq!(store.daily_activity(&owner, super::at(0), later).await.unwrap(), activity, "kept");
    let live = store.daily_activity(&owner, super::at(0), super::at(0)).await.unwrap();
    assert_eq!(live.payments[0].count, 3, "computed again when not final");
    assert_eq!(
        store.daily_activity(&owner, super::at(86_400 * 3), later).await.unwrap(),
        Default::default(),
        "older days"
    );
}
