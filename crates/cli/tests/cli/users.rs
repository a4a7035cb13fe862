//! `ocpay users ...`: the developer center's users made from the shell, with a password or a
//! one-time link, listed without their secrets, and disabled.

use super::sftp::ocpay_with_stdin;
use super::{create_participant, json, ocpay};

fn args(owned: &[String]) -> Vec<&str> {
    owned.iter().map(String::as_str).collect()
}

#[test]
fn users_are_created_listed_and_disabled_from_the_shell() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data").to_str().unwrap().to_owned();
    assert!(ocpay(&["migrate", "--data-dir", &data]).status.success());
    let merchant =
        create_participant(&data, &dir.path().join("merchant"), "merchant", "http://127.0.0.1:1", &[]);
    let client_id = merchant["clientId"].as_str().unwrap();
    let create = |email: &str, role: &str| {
        vec![
            "users",
            "create",
            "--data-dir",
            &data,
            "--client-id",
            client_id,
            "--email",
            email,
            "--role",
            role,
        ]
        .into_iter()
        .map(str::to_owned)
        .collect::<Vec<_>>()
    };

    // A password from stdin: checked, and never printed.
    let mut with_password = create("Ops@Shop.Example", "viewer");
    with_password.push("--password-stdin".into());
    let short = ocpay_with_stdin(&args(&with_password), "short\n");
    assert!(!short.status.success());
    assert!(String::from_utf8_lossy(&short.stderr).contains("password"), "the message names the password");
    let made = ocpay_with_stdin(&args(&with_password), "a long enough passphrase\n");
    assert!(made.status.success(), "{}", String::from_utf8_lossy(&made.stderr));
    let made = json(&made);
    assert_eq!((made["email"].as_str(), made["role"].as_str()), (Some("ops@shop.example"), Some("viewer")));
    assert!(made.get("setupLink").is_none());

    // Without one, a one-time link that sets it.
    let invited = json(&ocpay(&args(&create("dev@shop.example", "developer"))));
    let link = invited["setupLink"].as_str().expect("a one-time link");
    assert!(link.contains("/portal/setup?token="), "{link}");
    assert!(invited["setupLinkExpiresAt"].is_string());

    // The same email again, another participant's user or an unknown client id are refused.
    let again = ocpay(&args(&create("dev@shop.example", "viewer")));
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("exists already"));
    let unknown = ocpay(&[
        "users",
        "create",
        "--data-dir",
        &data,
        "--client-id",
        "SANDBOX_NOBODY",
        "--email",
        "x@y.example",
        "--role",
        "owner",
    ]);
    assert!(!unknown.status.success());
    let bad_role = ocpay(&args(&create("z@shop.example", "admin")));
    assert_eq!(bad_role.status.code(), Some(2), "a role that does not parse is a usage error");

    let listed = json(&ocpay(&["users", "list", "--data-dir", &data, "--client-id", client_id]));
    let users = listed["users"].as_array().unwrap();
    let emails: Vec<_> = users.iter().map(|user| user["email"].as_str().unwrap()).collect();
    assert_eq!(emails, ["dev@shop.example", "ops@shop.example"]);
    assert_eq!(users[0]["password"], false, "the invited user has no password yet");
    assert_eq!(users[1]["password"], true);
    let text = listed.to_string();
    assert!(!text.contains("argon2") && !text.contains("token="), "no secret is listed: {text}");

    // A lost link is replaced; a user with a password gets none.
    let again = json(&ocpay(&["users", "link", "--data-dir", &data, "--email", "DEV@shop.example"]));
    let new_link = again["setupLink"].as_str().expect("a new link");
    assert!(new_link.contains("/portal/setup?token=") && new_link != link, "{new_link}");
    let has_password = ocpay(&["users", "link", "--data-dir", &data, "--email", "ops@shop.example"]);
    assert!(!has_password.status.success());
    assert!(String::from_utf8_lossy(&has_password.stderr).contains("has not set a password"));

    let disabled = json(&ocpay(&["users", "disable", "--data-dir", &data, "--email", "ops@shop.example"]));
    assert!(disabled["disabledAt"].is_string());
    let missing = ocpay(&["users", "disable", "--data-dir", &data, "--email", "nobody@shop.example"]);
    assert!(!missing.status.success());
}

#[test]
fn operators_are_created_linked_listed_and_disabled_with_operator_and_participants_suspended() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data").to_str().unwrap().to_owned();
    assert!(ocpay(&["migrate", "--data-dir", &data]).status.success());
    let operator = |more: &[&str]| {
        let mut all = vec!["users"];
        all.extend_from_slice(more);
        all.extend_from_slice(&["--data-dir", &data, "--operator"]);
        ocpay(&all)
    };

    let invited = json(&operator(&["create", "--email", "Ops@Platform.Example"]));
    assert_eq!(
        (invited["email"].as_str(), invited["operator"].as_bool()),
        (Some("ops@platform.example"), Some(true))
    );
    let link = invited["setupLink"].as_str().expect("a one-time link");
    assert!(link.contains("/console/setup?token="), "the console's: {link}");
    let renewed = json(&operator(&["link", "--email", "ops@platform.example"]));
    assert!(
        renewed["setupLink"].as_str().is_some_and(|new| new.contains("/console/setup?token=") && new != link)
    );
    let twice = operator(&["create", "--email", "ops@platform.example"]);
    assert!(String::from_utf8_lossy(&twice.stderr).contains("exists already"));
    let with_role = ocpay(&[
        "users",
        "create",
        "--data-dir",
        &data,
        "--operator",
        "--email",
        "x@platform.example",
        "--role",
        "owner",
    ]);
    assert_eq!(with_role.status.code(), Some(2), "an operator has no role");

    // The trails of operators and payers are read like a participant's, though no participant has them.
    for trail in ["operators", "payers"] {
        let audit = ocpay(&["audit", "--data-dir", &data, "--client-id", trail]);
        assert!(audit.status.success(), "{}", String::from_utf8_lossy(&audit.stderr));
        assert!(json(&audit)["events"].is_array());
    }
    let unknown = ocpay(&["audit", "--data-dir", &data, "--client-id", "NOBODY"]);
    assert!(!unknown.status.success(), "an unknown participant's trail is still refused");

    let listed = json(&operator(&["list"]));
    let operators = listed["users"].as_array().unwrap();
    assert_eq!(operators.len(), 1);
    assert_eq!(
        (operators[0]["totp"].as_bool(), operators[0]["password"].as_bool()),
        (Some(false), Some(false))
    );
    let users = json(&ocpay(&["users", "list", "--data-dir", &data]));
    assert_eq!(users["users"].as_array().map(Vec::len), Some(0), "operators are not participants' users");
    let disabled = json(&operator(&["disable", "--email", "ops@platform.example"]));
    assert!(disabled["disabledAt"].is_string());

    let merchant =
        create_participant(&data, &dir.path().join("merchant"), "merchant", "http://127.0.0.1:1", &[]);
    let client_id = merchant["clientId"].as_str().unwrap();
    let suspend =
        |word: &str| json(&ocpay(&["participant", word, "--data-dir", &data, "--client-id", client_id]));
    assert!(suspend("suspend")["suspendedAt"].is_string());
    assert!(suspend("resume")["suspendedAt"].is_null());
    let unknown = ocpay(&["participant", "suspend", "--data-dir", &data, "--client-id", "SANDBOX_NOBODY"]);
    assert!(!unknown.status.success());
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("client"), "names the flag");
}
