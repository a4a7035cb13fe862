//! `ocpay sftp ...`: participants' SFTP accounts made, listed and removed from the shell, the
//! host key clients pin, and a participant fetching the files `ocpay settle` wrote from a
//! running `ocpay serve` with OpenSSH's `sftp` client.

use std::io::Write as _;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::{OCPAY, Server, create_participant, json, ocpay, wait_healthy};

/// Public keys made with `ssh-keygen -t ed25519` and `ssh-keygen -t rsa -b 2048`, kept here so
/// that this test needs no OpenSSH tools (the end-to-end one below makes its own).
const ED25519_KEY: &str =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKClXa0inC7N+cUEzuzlzmmuqqWR/RfGLmDuA4p5Qkig ops@example";
const RSA_KEY: &str = "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQDVSXX/UUUhrXeUghnProF+L/uq+9O+ySDguBS4ZNLd7K+Gi/gq\
mS0ScY7JLDvfzIxCwW6uBKM1GO0vHfnbcshHJIoj2DPF8aiyu7OAeHZ8C6vbWSZohm4AQei6RsvGsRgF3TvtkBjdjGltx9je60ITkAqxiqwBUAy\
BVvS2kjfVVmOYQhvuVZ5pAD6w1AqN7Yzr3ioU+TIQ5uL8kBIT7VMeXGlCcByQu9gyPwWpxYfVHqUWWHxOc2LUOyrwexH00P/IlKekQ253CKVUSV2\
A8yAuPHWnAozh6XGLwME00YC63jZUMOR17TcoJdKvTXwkHb7kjUdb7jGAYk87eYmfFExN ops@example";

/// `ocpay args...` with `input` on its standard input.
pub(super) fn ocpay_with_stdin(args: &[&str], input: &str) -> Output {
    let mut child = Command::new(OCPAY)
        .args(args)
        .env_remove("RUST_LOG")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("ocpay runs");
    child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
    child.wait_with_output().unwrap()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// A data directory with a platform (`ocpay migrate`) and a sandbox merchant made without a
/// server: the folder, the data directory and the merchant's client id.
fn platform_with_merchant() -> (tempfile::TempDir, String, String) {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data").to_str().unwrap().to_owned();
    assert!(ocpay(&["migrate", "--data-dir", &data]).status.success());
    let merchant =
        create_participant(&data, &dir.path().join("merchant"), "merchant", "http://127.0.0.1:1", &[]);
    let client_id = merchant["clientId"].as_str().unwrap().to_owned();
    (dir, data, client_id)
}

#[test]
fn sftp_accounts_are_added_listed_and_removed_and_the_host_key_printed() {
    let (dir, data, client_id) = platform_with_merchant();
    let ed25519 = dir.path().join("id_ed25519.pub");
    std::fs::write(&ed25519, format!("{ED25519_KEY}\n")).unwrap();
    let rsa = dir.path().join("id_rsa.pub");
    std::fs::write(&rsa, format!("{RSA_KEY}\n")).unwrap();
    let add_key = |client_id: &str, key: &Path| {
        ocpay(&[
            "sftp",
            "add-user",
            "--data-dir",
            &data,
            "--client-id",
            client_id,
            "--public-key",
            key.to_str().unwrap(),
        ])
    };

    // A key makes the account; the key is kept without its comment.
    let added = add_key(&client_id, &ed25519);
    assert!(added.status.success(), "{}", stderr(&added));
    let account = json(&added);
    assert_eq!((account["clientId"].as_str(), account["created"].as_bool()), (Some(&*client_id), Some(true)));
    let kept = ED25519_KEY.strip_suffix(" ops@example").unwrap();
    assert_eq!(account["publicKeys"], serde_json::json!([kept]), "{account}");
    assert_eq!(account["password"], false);

    // A password from stdin is added to the same account, and never shown.
    let password = "correct horse battery staple";
    let added = ocpay_with_stdin(
        &["sftp", "add-user", "--data-dir", &data, "--client-id", &client_id, "--password-stdin"],
        &format!("{password}\n"),
    );
    assert!(added.status.success(), "{}", stderr(&added));
    let account = json(&added);
    assert_eq!((account["created"].as_bool(), account["password"].as_bool()), (Some(false), Some(true)));
    assert_eq!(account["publicKeys"].as_array().unwrap().len(), 1, "the key stays: {account}");
    let empty = ocpay_with_stdin(
        &["sftp", "add-user", "--data-dir", &data, "--client-id", &client_id, "--password-stdin"],
        "\n",
    );
    assert_eq!(empty.status.code(), Some(1));
    assert!(stderr(&empty).contains("the password is empty"), "{}", stderr(&empty));

    // An unknown participant, and an RSA key, are refused with what to do.
    let unknown = add_key("SANDBOX_NOBODY", &ed25519);
    assert_eq!(unknown.status.code(), Some(1));
    assert_eq!(json(&unknown)["error"], "NOT_FOUND");
    assert!(
        stderr(&unknown).contains("no participant has the client id SANDBOX_NOBODY"),
        "{}",
        stderr(&unknown)
    );
    let refused = add_key(&client_id, &rsa);
    assert_eq!(refused.status.code(), Some(1));
    let said = stderr(&refused);
    assert!(
        said.contains("ssh-rsa keys are not accepted") && said.contains("ssh-keygen -t ed25519"),
        "{said}"
    );
    let not_a_key = dir.path().join("not-a-key.pub");
    std::fs::write(&not_a_key, "hello\n").unwrap();
    let refused = add_key(&client_id, &not_a_key);
    assert_eq!(refused.status.code(), Some(1));
    assert!(stderr(&refused).contains("not an OpenSSH public key"), "{}", stderr(&refused));
    let missing = add_key(&client_id, &dir.path().join("missing.pub"));
    assert_eq!(missing.status.code(), Some(1));
    assert!(stderr(&missing).contains("missing.pub"), "{}", stderr(&missing));

    // The list shows the account as it is: one key, a password set, never its hash.
    let listed = ocpay(&["sftp", "list", "--data-dir", &data]);
    assert!(listed.status.success(), "{}", stderr(&listed));
    let text = String::from_utf8_lossy(&listed.stdout).into_owned();
    assert!(!text.contains("argon2") && !text.contains(password), "no password is printed: {text}");
    let accounts = json(&listed)["accounts"].as_array().unwrap().clone();
    let [account] = accounts.as_slice() else { panic!("{text}") };
    assert_eq!(account["clientId"], client_id.as_str());
    assert_eq!(account["publicKeys"], serde_json::json!([kept]));
    assert_eq!((account["password"].as_bool(), account["failures"].as_u64()), (Some(true), Some(0)));
    assert!(account["lockedUntil"].is_null() && account["lastLoginAt"].is_null(), "{account}");

    // The host key, made by the first command that needs it, as a known_hosts line for the
    // address the server listens on; the same key every time.
    let printed = ocpay(&["sftp", "host-key", "--data-dir", &data]);
    assert!(printed.status.success(), "{}", stderr(&printed));
    let line = String::from_utf8(printed.stdout).unwrap();
    assert!(line.starts_with("[127.0.0.1]:2222 ssh-ed25519 AAAA"), "{line}");
    assert!(line.ends_with('\n') && line.lines().count() == 1, "{line:?}");
    assert_eq!(line.split(' ').count(), 3, "host, type and key, no comment: {line}");
    let again = Command::new(OCPAY)
        .args(["sftp", "host-key", "--data-dir", &data])
        .env("OCPAY_SFTP_LISTEN", "127.0.0.1:4022")
        .output()
        .unwrap();
    let moved = String::from_utf8(again.stdout).unwrap();
    assert_eq!(moved, line.replace("[127.0.0.1]:2222", "[127.0.0.1]:4022"), "the same key, another port");

    // Removed once; a second time there is nothing to remove.
    let removed = ocpay(&["sftp", "remove-user", "--data-dir", &data, "--client-id", &client_id]);
    assert!(removed.status.success(), "{}", stderr(&removed));
    assert_eq!(json(&removed)["removed"], true);
    assert_eq!(json(&ocpay(&["sftp", "list", "--data-dir", &data]))["accounts"], serde_json::json!([]));
    let again = ocpay(&["sftp", "remove-user", "--data-dir", &data, "--client-id", &client_id]);
    assert_eq!(again.status.code(), Some(1));
    assert_eq!(json(&again)["error"], "NOT_FOUND");
    assert!(stderr(&again).contains("has no SFTP account"), "{}", stderr(&again));
}

/// A free TCP port on the loopback address (free when asked; nothing holds it after).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// `ocpay serve` on `data` with SFTP on `sftp_port` (set through `OCPAY_SFTP_LISTEN`, as an
/// operator would), once both answer.
fn serve_with_sftp(data: &Path, sftp_port: u16) -> Server {
    let address = format!("127.0.0.1:{}", free_port());
    let child = Command::new(OCPAY)
        .args(["serve", "--data-dir", data.to_str().unwrap(), "--listen", &address])
        .env("OCPAY_SFTP_LISTEN", format!("127.0.0.1:{sftp_port}"))
        .env_remove("RUST_LOG")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("ocpay serve starts");
    let server = Server { child, url: format!("http://{address}") };
    wait_healthy(&address);
    let started = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", sftp_port)).is_err() {
        assert!(started.elapsed() < Duration::from_secs(20), "SFTP did not start on {sftp_port}");
        std::thread::sleep(Duration::from_millis(50));
    }
    server
}

/// OpenSSH's `sftp` in batch mode running `script` as `user`, logging in with the key `key`
/// only, and trusting only the host key in `known_hosts`.
fn sftp(port: u16, key: &Path, known_hosts: &Path, user: &str, script: &str) -> Output {
    let mut child = Command::new("sftp")
        .args(["-b", "-", "-F", "/dev/null", "-P", &port.to_string(), "-i"])
        .arg(key)
        .args(["-o", "StrictHostKeyChecking=yes", "-o", "IdentitiesOnly=yes", "-o", "IdentityAgent=none"])
        .arg("-o")
        .arg(format!("UserKnownHostsFile={}", known_hosts.display()))
        .arg(format!("{user}@127.0.0.1"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("OpenSSH's sftp client runs");
    // A client refused at login stops reading its batch.
    let _ = child.stdin.take().unwrap().write_all(script.as_bytes());
    child.wait_with_output().unwrap()
}

fn both(output: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr))
}

#[test]
#[ignore = "needs OpenSSH's sftp client: scripts/test runs it"]
fn a_merchant_fetches_its_settlement_files_from_ocpay_serve_openssh() {
    let dir = tempfile::tempdir().unwrap();
    let data_path = dir.path().join("data");
    let data = data_path.to_str().unwrap();
    let port = free_port();
    let server = serve_with_sftp(&data_path, port);
    let notify = ["--notify-url", "https://merchant.example/notify"];
    let merchant = create_participant(data, &dir.path().join("merchant"), "merchant", &server.url, &notify);
    let client_id = merchant["clientId"].as_str().unwrap().to_owned();
    let profile = merchant["profile"].as_str().unwrap().to_owned();

    // One order paid by the sandbox wallet, then the day settled into its files.
    let paid = ocpay(&["pay", "--profile", &profile, "--amount", "1250", "--currency", "USD"]);
    assert!(paid.status.success(), "{}", both(&paid));
    let code = json(&paid)["orderCodeForm"]["codeDetails"][0]["codeValue"].as_str().unwrap().to_owned();
    let wallet = ocpay(&["wallet", "pay", &code]);
    assert!(wallet.status.success(), "{}", both(&wallet));
    let settled = ocpay(&["settle", "--data-dir", data, "--client-id", &client_id, "--now"]);
    assert!(settled.status.success(), "{}", both(&settled));
    let settled = json(&settled);
    let day = settled["batches"][0]["day"].as_str().unwrap().to_owned();
    let files: Vec<&str> = settled["files"].as_array().unwrap().iter().map(|f| f.as_str().unwrap()).collect();
    let transactions = *files
        .iter()
        .find(|file| file.contains("/transactionItems_"))
        .unwrap_or_else(|| panic!("a transaction file: {settled}"));
    let folder = format!("v1/settlements/{client_id}/{day}");
    assert!(transactions.starts_with(&format!("{folder}/")), "{transactions}");
    let written = std::fs::read(data_path.join("reports").join(transactions)).unwrap();

    // An account with a key made now, and the server's host key pinned as the CLI prints it.
    let key = dir.path().join("id_ed25519");
    let made = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", "merchant", "-f"])
        .arg(&key)
        .output()
        .expect("ssh-keygen runs");
    assert!(made.status.success(), "{}", both(&made));
    let added = ocpay(&[
        "sftp",
        "add-user",
        "--data-dir",
        data,
        "--client-id",
        &client_id,
        "--public-key",
        key.with_extension("pub").to_str().unwrap(),
    ]);
    assert!(added.status.success(), "{}", both(&added));
    let host_key = Command::new(OCPAY)
        .args(["sftp", "host-key", "--data-dir", data])
        .env("OCPAY_SFTP_LISTEN", format!("127.0.0.1:{port}"))
        .output()
        .unwrap();
    assert!(host_key.status.success(), "{}", both(&host_key));
    let known_hosts = dir.path().join("known_hosts");
    std::fs::write(&known_hosts, &host_key.stdout).unwrap();

    // The day's folder lists the three files; the transaction file comes back byte for byte.
    let got = dir.path().join("got.csv");
    let script = format!("ls -l /{folder}\nget /{transactions} {}\n", got.display());
    let fetched = sftp(port, &key, &known_hosts, &client_id, &script);
    assert!(fetched.status.success(), "{}", both(&fetched));
    let listing = both(&fetched);
    for file in &files {
        let name = file.rsplit('/').next().unwrap();
        assert!(listing.contains(name), "{name} is listed: {listing}");
    }
    assert_eq!(std::fs::read(&got).unwrap(), written, "the same bytes as in the data directory");

    // Nothing can be put there.
    let put =
        sftp(port, &key, &known_hosts, &client_id, &format!("put {} /{folder}/forged.csv\n", got.display()));
    assert!(!put.status.success(), "a put was allowed: {}", both(&put));
    assert!(both(&put).contains("Permission denied"), "the server refused it: {}", both(&put));
    assert!(!data_path.join("reports").join(&folder).join("forged.csv").exists());

    // The read is in the merchant's audit trail.
    let audit = json(&ocpay(&["audit", "--data-dir", data, "--client-id", &client_id, "--limit", "50"]));
    let reads: Vec<&Value> = audit["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|event| event["api"] == "SFTP_READ" && event["resultCode"] == "SUCCESS")
        .collect();
    assert_eq!(reads.len(), 1, "{audit}");

    // `ocpay serve` stopped by SIGTERM tells an open session why it ends, and exits.
    let mut open = Command::new("sftp")
        .args(["-b", "-", "-F", "/dev/null", "-P", &port.to_string(), "-i"])
        .arg(&key)
        .args(["-o", "StrictHostKeyChecking=yes", "-o", "IdentitiesOnly=yes", "-o", "IdentityAgent=none"])
        .arg("-o")
        .arg(format!("UserKnownHostsFile={}", known_hosts.display()))
        .arg(format!("{client_id}@127.0.0.1"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = open.stdin.take().unwrap();
    stdin.write_all(format!("ls /{folder}\n").as_bytes()).unwrap();
    let logins = || {
        let audit = json(&ocpay(&["audit", "--data-dir", data, "--client-id", &client_id, "--limit", "50"]));
        let events = audit["events"].as_array().unwrap().clone();
        events.iter().filter(|event| event["api"] == "SFTP_LOGIN" && event["resultCode"] == "SUCCESS").count()
    };
    let started = Instant::now();
    while logins() < 3 {
        assert!(started.elapsed() < Duration::from_secs(20), "the third session logs in");
        std::thread::sleep(Duration::from_millis(50));
    }
    let mut server = server;
    let pid = server.child.id().to_string();
    assert!(Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
    let started = Instant::now();
    let status = loop {
        if let Some(status) = server.child.try_wait().unwrap() {
            break status;
        }
        assert!(started.elapsed() < Duration::from_secs(15), "ocpay serve still runs after SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "{status:?}");
    drop(stdin);
    let ended = open.wait_with_output().unwrap();
    assert!(both(&ended).contains("the server is stopping"), "the client was told: {}", both(&ended));
    drop(server);
}
