//! Participants' SFTP accounts: upserts add keys and replace passwords, and the login count
//! (each password attempt counted before it is checked) locks an account after too many
//! failures, until the lockout ends.

use std::sync::Arc;

use crate::{SftpAccountChange, SftpLoginOutcome, Store};

use super::{at, client};

fn change(name: &str) -> SftpAccountChange {
    SftpAccountChange {
        client_id: client(name),
        add_public_key: None,
        password_hash: None,
        allowed_networks: None,
    }
}

pub async fn sftp_accounts_add_keys_and_replace_passwords(store: Arc<dyn Store>) {
    assert_eq!(store.sftp_account(&client("ALICE")).await.unwrap(), None);
    let first = SftpAccountChange {
        add_public_key: Some("ssh-ed25519 AAAA1".into()),
        allowed_networks: Some(vec!["10.0.0.0/8".into(), "::1/128".into()]),
        ..change("ALICE")
    };
    let (account, created) = store.upsert_sftp_account(&first, at(1)).await.unwrap();
    assert!(created);
    assert_eq!(account.public_keys, vec!["ssh-ed25519 AAAA1".to_owned()]);
    assert_eq!(account.allowed_networks, vec!["10.0.0.0/8".to_owned(), "::1/128".to_owned()]);
    assert_eq!((account.created_at, account.last_login_at, account.failures), (at(1), None, 0));
    assert_eq!(store.sftp_account(&client("ALICE")).await.unwrap(), Some(account.clone()));

    // The same key again changes nothing; another is added; a password is set; the allow-list
    // stays when none is given.
    let (again, created) = store.upsert_sftp_account(&first, at(2)).await.unwrap();
    assert!(!created);
    assert_eq!(again, account, "a key already there is not added twice");
    let second = SftpAccountChange {
        add_public_key: Some("ssh-ed25519 AAAA2".into()),
        password_hash: Some("$argon2id$one".into()),
        ..change("ALICE")
    };
    let (account, _) = store.upsert_sftp_account(&second, at(3)).await.unwrap();
    assert_eq!(account.public_keys.len(), 2);
    assert_eq!(account.password_hash.as_deref(), Some("$argon2id$one"));
    assert_eq!(account.allowed_networks.len(), 2);
    assert_eq!(account.created_at, at(1), "the creation keeps its time");
    let replace = SftpAccountChange {
        password_hash: Some("$argon2id$two".into()),
        allowed_networks: Some(Vec::new()),
        ..change("ALICE")
    };
    let (account, _) = store.upsert_sftp_account(&replace, at(4)).await.unwrap();
    assert_eq!(account.password_hash.as_deref(), Some("$argon2id$two"));
    assert!(account.allowed_networks.is_empty());

    store.upsert_sftp_account(&change("BOB"), at(5)).await.unwrap();
    let listed: Vec<_> = store.sftp_accounts().await.unwrap().into_iter().map(|a| a.client_id).collect();
    assert_eq!(listed, vec![client("ALICE"), client("BOB")]);
    assert!(store.remove_sftp_account(&client("BOB")).await.unwrap());
    assert!(!store.remove_sftp_account(&client("BOB")).await.unwrap());
    assert_eq!(store.sftp_accounts().await.unwrap().len(), 1);
}

pub async fn sftp_failures_lock_until_the_lockout_ends(store: Arc<dyn Store>) {
    let alice = client("ALICE");
    store.upsert_sftp_account(&change("ALICE"), at(0)).await.unwrap();
    let failed = |now: i64| SftpLoginOutcome::Failed { failures_max: 3, locked_until: at(now + 100) };
    for second in 1..=2 {
        let account = store.record_sftp_login(&alice, failed(second), at(second)).await.unwrap().unwrap();
        assert_eq!((account.failures, account.locked_until), (u32::try_from(second).unwrap(), None));
    }
    let locked = store.record_sftp_login(&alice, failed(3), at(3)).await.unwrap().unwrap();
    assert_eq!((locked.failures, locked.locked_until), (3, Some(at(103))), "the third failure locks");
    let during = store.record_sftp_login(&alice, failed(50), at(50)).await.unwrap().unwrap();
    assert_eq!(during.locked_until, Some(at(103)), "a failure during a lockout does not extend it");
    let after = store.record_sftp_login(&alice, failed(200), at(200)).await.unwrap().unwrap();
    assert_eq!((after.failures, after.locked_until), (1, None), "after a lockout the count starts afresh");

    let success =
        store.record_sftp_login(&alice, SftpLoginOutcome::Succeeded, at(201)).await.unwrap().unwrap();
    assert_eq!((success.failures, success.locked_until, success.last_login_at), (0, None, Some(at(201))));
    assert_eq!(store.record_sftp_login(&client("NOBODY"), failed(1), at(1)).await.unwrap(), None);

    // Concurrent failures all count: none is lost to another.
    let bob = client("BOB");
    store.upsert_sftp_account(&change("BOB"), at(0)).await.unwrap();
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let (store, bob) = (store.clone(), bob.clone());
            let outcome = SftpLoginOutcome::Failed { failures_max: 100, locked_until: at(1_000) };
            tokio::spawn(async move { store.record_sftp_login(&bob, outcome, at(10)).await.unwrap() })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    assert_eq!(store.sftp_account(&bob).await.unwrap().unwrap().failures, 8);
}

pub async fn sftp_password_attempts_count_before_the_check(store: Arc<dyn Store>) {
    let alice = client("ALICE");
    store.upsert_sftp_account(&change("ALICE"), at(0)).await.unwrap();
    for _ in 0..2 {
        assert!(store.sftp_login_attempt(&alice, 3, at(900), at(10)).await.unwrap());
    }
    let counted = store.sftp_account(&alice).await.unwrap().unwrap();
    assert_eq!((counted.failures, counted.locked_until), (2, None), "each attempt counts as it starts");
    assert!(store.sftp_login_attempt(&alice, 3, at(900), at(10)).await.unwrap(), "the third may be checked");
    let locked = store.sftp_account(&alice).await.unwrap().unwrap();
    assert_eq!((locked.failures, locked.locked_until), (3, Some(at(900))), "and it locks");
    assert!(!store.sftp_login_attempt(&alice, 3, at(1900), at(899)).await.unwrap(), "no check while locked");
    assert_eq!(
        store.sftp_account(&alice).await.unwrap().unwrap().locked_until,
        Some(at(900)),
        "nor longer lock"
    );
    assert!(store.sftp_login_attempt(&alice, 3, at(1900), at(900)).await.unwrap(), "checked once it ended");
    let afresh = store.sftp_account(&alice).await.unwrap().unwrap();
    assert_eq!((afresh.failures, afresh.locked_until), (1, None), "a new run starts at one");
    // The right password: the success clears the attempt it had counted.
    let success =
        store.record_sftp_login(&alice, SftpLoginOutcome::Succeeded, at(901)).await.unwrap().unwrap();
    assert_eq!((success.failures, success.locked_until), (0, None));
    assert!(!store.sftp_login_attempt(&client("NOBODY"), 3, at(900), at(10)).await.unwrap());

    // Guesses at once: exactly as many are checked as the limit allows.
    let bob = client("BOB");
    store.upsert_sftp_account(&change("BOB"), at(0)).await.unwrap();
    let guesses: Vec<_> = (0..20)
        .map(|_| {
            let (store, bob) = (store.clone(), bob.clone());
            tokio::spawn(async move { store.sftp_login_attempt(&bob, 3, at(900), at(10)).await.unwrap() })
        })
        .collect();
    let mut checked = 0;
    for guess in guesses {
        checked += usize::from(guess.await.unwrap());
    }
    assert_eq!(checked, 3, "parallel guesses do not get past the limit");
    let locked = store.sftp_account(&bob).await.unwrap().unwrap();
    assert_eq!((locked.failures, locked.locked_until), (3, Some(at(900))));
}

pub async fn sftp_keys_are_removed_one_at_a_time(store: Arc<dyn Store>) {
    let alice = client("ALICE");
    assert!(!store.remove_sftp_public_key(&alice, "ssh-ed25519 AAAA1").await.unwrap(), "no account");
    for key in ["ssh-ed25519 AAAA1", "ssh-ed25519 AAAA2", "ssh-ed25519 AAAA3"] {
        let add = SftpAccountChange { add_public_key: Some(key.into()), ..change("ALICE") };
        store.upsert_sftp_account(&add, at(1)).await.unwrap();
    }
    let password = SftpAccountChange { password_hash: Some("$argon2id$one".into()), ..change("ALICE") };
    store.upsert_sftp_account(&password, at(2)).await.unwrap();
    store.upsert_sftp_account(&change("BOB"), at(2)).await.unwrap();
    let bobs = SftpAccountChange { add_public_key: Some("ssh-ed25519 AAAA2".into()), ..change("BOB") };
    store.upsert_sftp_account(&bobs, at(2)).await.unwrap();

    assert!(store.remove_sftp_public_key(&alice, "ssh-ed25519 AAAA2").await.unwrap());
    assert!(!store.remove_sftp_public_key(&alice, "ssh-ed25519 AAAA2").await.unwrap(), "once");
    assert!(!store.remove_sftp_public_key(&alice, "ssh-ed25519 AAAA").await.unwrap(), "whole keys only");
    let account = store.sftp_account(&alice).await.unwrap().unwrap();
    assert_eq!(account.public_keys, ["ssh-ed25519 AAAA1", "ssh-ed25519 AAAA3"], "the others stay in order");
    assert_eq!(account.password_hash.as_deref(), Some("$argon2id$one"), "the password stays");
    let bob = store.sftp_account(&client("BOB")).await.unwrap().unwrap();
    assert_eq!(bob.public_keys, ["ssh-ed25519 AAAA2"], "another account's same key stays");
    for key in ["ssh-ed25519 AAAA1", "ssh-ed25519 AAAA3"] {
        assert!(store.remove_sftp_public_key(&alice, key).await.unwrap());
    }
    let account = store.sftp_account(&alice).await.unwrap().unwrap();
    assert!(account.public_keys.is_empty(), "the account stays, with its password");
}
