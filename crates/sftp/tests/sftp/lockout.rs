//! Password guesses made at once, from russh's own client (so that the guesses really are in
//! flight together): each counts before its password is checked, so that no more are checked
//! than the lockout allows, and the lock holds against the right password once they are done.

use std::sync::Arc;

use jiff::SignedDuration;

use super::inprocess::Server;
use super::{PASSWORD, client, start_time};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn parallel_password_guesses_stop_at_the_lockout_and_the_lock_holds() {
    let server = Server::start(|_| {}).await;
    let max = server.settings.login_failures_max;
    let guesses = max as usize * 2;
    assert!(guesses <= server.settings.connections_per_ip_max, "every guess gets a connection");
    let server = Arc::new(server);
    let attempts: Vec<_> = (0..guesses)
        .map(|guess| {
            let server = server.clone();
            tokio::spawn(async move { server.login("C1", &format!("guess {guess}")).await.is_none() })
        })
        .collect();
    for attempt in attempts {
        assert!(attempt.await.unwrap(), "a wrong password was accepted");
    }
    // Each password checked and found wrong is audited as such; the others were refused as
    // locked before any check.
    assert_eq!(server.refusals("WRONG_PASSWORD").await, max as usize, "no more checks than the limit");
    assert_eq!(server.refusals("LOCKED").await, guesses - max as usize);
    let account = server.store.sftp_account(&client("C1")).await.unwrap().unwrap();
    let lockout = server.settings.lockout;
    assert_eq!((account.failures, account.locked_until), (max, Some(start_time() + lockout)));

    assert!(server.login("C1", PASSWORD).await.is_none(), "the right password while locked");
    assert_eq!(server.refusals("LOCKED").await, guesses - max as usize + 1);

    server.clock.advance(lockout + SignedDuration::from_secs(1));
    let session = server.login("C1", PASSWORD).await;
    assert!(session.is_some(), "the right password once the lockout is over");
    let account = server.store.sftp_account(&client("C1")).await.unwrap().unwrap();
    assert_eq!((account.failures, account.locked_until), (0, None), "a success clears the count");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_right_password_refused_for_too_many_sessions_does_not_count_as_a_failure() {
    let server = Server::start(|settings| settings.sessions_per_account_max = 1).await;
    let open = server.login("C1", PASSWORD).await;
    assert!(open.is_some());
    for _ in 0..server.settings.login_failures_max + 1 {
        assert!(server.login("C1", PASSWORD).await.is_none(), "one session at a time");
    }
    assert_eq!(server.refusals("TOO_MANY_SESSIONS").await, server.settings.login_failures_max as usize + 1);
    let account = server.store.sftp_account(&client("C1")).await.unwrap().unwrap();
    assert_eq!((account.failures, account.locked_until), (0, None), "the right password locks nothing");
    drop(open);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn password_guesses_never_lock_an_account_that_has_no_password() {
    let server = Server::start(|_| {}).await;
    let participant = ocpay_core::participant::Participant {
        client_id: client("C2"),
        kind: ocpay_core::participant::ParticipantKind::Merchant,
        name: "C2 Ltd".parse().unwrap(),
        notify_url: None,
        created_at: start_time(),
    };
    let key = ocpay_store::NewKey {
        public_key_der: vec![2; 8],
        label: None,
        scopes: ocpay_core::access::Scopes::ALL,
        created_at: start_time(),
        expires_at: None,
    };
    server.store.create_participant(&participant, &key).await.unwrap();
    let key_only = ocpay_store::SftpAccountChange {
        client_id: client("C2"),
        add_public_key: Some(
            "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGSmX0Jg5tJ3O2ZS6LgN5x7CfvOoxqWkLULZ5D1Mb8lo".into(),
        ),
        password_hash: None,
        allowed_networks: None,
    };
    server.store.upsert_sftp_account(&key_only, start_time()).await.unwrap();
    for guess in 0..server.settings.login_failures_max + 2 {
        assert!(server.login("C2", &format!("guess {guess}")).await.is_none());
    }
    let account = server.store.sftp_account(&client("C2")).await.unwrap().unwrap();
    assert_eq!(
        (account.failures, account.locked_until),
        (0, None),
        "guesses at a key-only account count nothing"
    );
}
