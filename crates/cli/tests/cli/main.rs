//! The `ocpay` binary end to end: a real `ocpay serve` process, participants created while it
//! runs, and the API commands against it, checking the JSON and the exit codes scripts rely on.

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

mod acceptance;
mod audit;
mod backup;
mod bench;
mod cluster;
mod commands;
mod kill;
mod logs;
mod observability;
mod settlement;
mod sftp;
mod shutdown;
mod tls;
mod trigger;
mod users;

const OCPAY: &str = env!("CARGO_BIN_EXE_ocpay");

fn ocpay(args: &[&str]) -> Output {
    Command::new(OCPAY).args(args).env_remove("RUST_LOG").output().expect("ocpay runs")
}

fn json(output: &Output) -> Value {
    serde_json::from_slice(&output.stdout).unwrap_or_else(|error| {
        panic!(
            "stdout is JSON ({error}):\n{}\n{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        )
    })
}

fn healthy(address: &str) -> bool {
    let Ok(mut stream) = TcpStream::connect(address) else { return false };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(1)));
    if stream.write_all(b"GET /healthz HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n").is_err() {
        return false;
    }
    let mut answer = String::new();
    let _ = stream.read_to_string(&mut answer);
    answer.starts_with("HTTP/1.1 200")
}

struct Server {
    child: Child,
    url: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn serve(data_dir: &Path) -> Server {
    serve_with(data_dir, &[])
}

/// As [`serve`], with `OCPAY_*` settings in its environment.
fn serve_with(data_dir: &Path, settings: &[(&str, &str)]) -> Server {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let address = format!("127.0.0.1:{port}");
    let child = Command::new(OCPAY)
        .args(["serve", "--data-dir", data_dir.to_str().unwrap(), "--listen", &address])
        .envs(settings.iter().copied())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("ocpay serve starts");
    wait_healthy(&address);
    Server { child, url: format!("http://{address}") }
}

/// Waits (up to 20 s) until a server at `address` answers its health check.
fn wait_healthy(address: &str) {
    let started = Instant::now();
    while !healthy(address) {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "the server at {address} did not become healthy"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A sandbox merchant notified at `notify_url`, made in the data directory's store (or on the
/// PostgreSQL database `database_url` names) before a server runs on it: its client id and key,
/// and the platform's key.
async fn merchant_made_offline(
    data: &Path,
    database_url: Option<&str>,
    notify_url: &str,
) -> (String, ocpay_protocol::SigningKey, ocpay_protocol::VerifyingKey) {
    use ocpay_core::participant::{Environment, ParticipantKind};
    use ocpay_server::service::participants::NewParticipant;

    let data_dir = ocpay_server::data_dir::DataDir::open(data).unwrap();
    let platform_key = data_dir.platform_key().unwrap().verifying_key();
    let key = ocpay_protocol::SigningKey::generate().unwrap();
    let new = NewParticipant {
        kind: ParticipantKind::Merchant,
        environment: Environment::Sandbox,
        name: "Offline merchant".parse().unwrap(),
        public_key: key.verifying_key(),
        notify_url: Some(notify_url.parse().unwrap()),
    };
    let overrides = ocpay_server::config::Overrides {
        database_url: database_url.map(str::to_owned),
        ..ocpay_server::config::Overrides::default()
    };
    let config = ocpay_server::config::Config::load(None, &overrides).unwrap();
    let created = data_dir.create_participant(&config, new).await.unwrap();
    (created.client_id.as_str().to_owned(), key, platform_key)
}

#[test]
fn from_nothing_to_a_cancelled_order_code() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let data = data.to_str().unwrap();
    let server = serve(Path::new(data));

    let keys = dir.path().join("keys");
    let generated = ocpay(&["keys", "generate", "--out", keys.to_str().unwrap()]);
    assert!(generated.status.success());
    let mode = std::fs::metadata(keys.join("private-key.pem")).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "the private key is readable by its owner only");
    let again = ocpay(&["keys", "generate", "--out", keys.to_str().unwrap()]);
    assert!(!again.status.success(), "an existing private key is never overwritten");

    let isv = json(&ocpay(&[
        "participant",
        "create",
        "--data-dir",
        data,
        "--kind",
        "isv",
        "--env",
        "live",
        "--name",
        "Acme POS",
        "--public-key",
        keys.join("public-key.pem").to_str().unwrap(),
    ]));
    assert!(!isv["clientId"].as_str().unwrap().starts_with("SANDBOX_"));
    assert_eq!(isv["kind"], "ISV");

    let merchant_dir = dir.path().join("merchant");
    let created = ocpay(&[
        "participant",
        "create",
        "--data-dir",
        data,
        "--kind",
        "merchant",
        "--env",
        "sandbox",
        "--name",
        "Demo Cafe",
        "--notify-url",
        "https://merchant.example/notify",
        "--generate-keys",
        merchant_dir.to_str().unwrap(),
        "--server-url",
        &server.url,
    ]);
    let merchant = json(&created);
    let client_id = merchant["clientId"].as_str().unwrap().to_owned();
    assert!(client_id.starts_with("SANDBOX_"), "{merchant}");
    assert_eq!(merchant["keyVersion"], 1);
    let profile = merchant["profile"].as_str().unwrap().to_owned();

    let pay = ocpay(&[
        "pay",
        "--profile",
        &profile,
        "--amount",
        "1250",
        "--currency",
        "USD",
        "--payment-request-id",
        "order-1",
    ]);
    assert!(pay.status.success(), "{}", String::from_utf8_lossy(&pay.stderr));
    let paid = json(&pay);
    assert_eq!(paid["result"]["resultStatus"], "S");
    assert!(paid["orderCodeForm"]["codeDetails"][0]["codeValue"].as_str().unwrap().starts_with(&server.url));

    let inquiry = json(&ocpay(&["inquire", "--profile", &profile, "--payment-request-id", "order-1"]));
    assert_eq!(inquiry["paymentStatus"], "PROCESSING");
    let cancel =
        ocpay(&["cancel", "--profile", &profile, "--payment-id", paid["paymentId"].as_str().unwrap()]);
    assert!(cancel.status.success());
    assert!(json(&cancel)["cancelTime"].is_string());
    let inquiry = json(&ocpay(&["inquire", "--profile", &profile, "--payment-request-id", "order-1"]));
    assert_eq!(inquiry["paymentStatus"], "CANCELLED");

    let refused = ocpay(&["pay", "--profile", &profile, "--amount", "100", "--currency", "XXX"]);
    assert_eq!(refused.status.code(), Some(4), "an F result exits with 4");
    assert_eq!(json(&refused)["result"]["resultCode"], "PARAM_ILLEGAL");

    // A system integrator's key: a second key version with its own profile.
    let integrator_dir = dir.path().join("integrator");
    let added = json(&ocpay(&[
        "participant",
        "add-key",
        "--data-dir",
        data,
        "--client-id",
        &client_id,
        "--label",
        "Integrator: Acme",
        "--expires-in",
        "30d",
        "--generate-keys",
        integrator_dir.to_str().unwrap(),
        "--server-url",
        &server.url,
    ]));
    assert_eq!(added["keyVersion"], 2);
    let integrator_profile = added["profile"].as_str().unwrap();
    let pay = ocpay(&["pay", "--profile", integrator_profile, "--amount", "500", "--currency", "SGD"]);
    assert!(pay.status.success(), "the new key version signs: {}", String::from_utf8_lossy(&pay.stdout));

    let platform_pem = String::from_utf8(ocpay(&["platform-key", "--data-dir", data]).stdout).unwrap();
    let written = std::fs::read_to_string(merchant_dir.join("platform-public-key.pem")).unwrap();
    assert_eq!(platform_pem, written);
    assert!(platform_pem.starts_with("-----BEGIN PUBLIC KEY-----"));

    let listed = json(&ocpay(&["participant", "list", "--data-dir", data]));
    assert_eq!(listed["participants"].as_array().unwrap().len(), 2);

    // A merchant's cancel is not notified: its payment is found by its request id, with nothing to list.
    let by_request =
        ocpay(&["notifications", "list", "order-1", "--client-id", &client_id, "--data-dir", data]);
    assert!(by_request.status.success(), "{}", String::from_utf8_lossy(&by_request.stderr));
    let by_request = json(&by_request);
    assert_eq!(by_request["notifications"], serde_json::json!([]), "{by_request}");
    let unowned = ocpay(&["notifications", "list", "order-1", "--data-dir", data]);
    assert_eq!(unowned.status.code(), Some(1));
    assert_eq!(json(&unowned)["error"], "NOT_FOUND");
    assert!(String::from_utf8_lossy(&unowned.stderr).contains("--client-id"));
    drop(server);
}

#[test]
fn unknown_ids_are_errors_not_empty_lists() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let data = data.to_str().unwrap();
    assert!(ocpay(&["migrate", "--data-dir", data]).status.success());
    for args in [
        &["notifications", "list", "PAY-NONE"][..],
        &["notifications", "list", "PAY-NONE", "--client-id", "SANDBOX_NONE"],
        &["notifications", "resend", "PAY-NONE"],
        &["audit", "--client-id", "SANDBOX_NONE"],
        &["grants", "list", "--client-id", "SANDBOX_NONE"],
        &["wallet", "balance", "--payer", "sandbox-nobody"],
    ] {
        let output = ocpay(&[args, &["--data-dir", data]].concat());
        assert_eq!(output.status.code(), Some(1), "{args:?}");
        let error = json(&output);
        assert_eq!(error["error"], "NOT_FOUND", "{args:?}");
        let message = error["message"].as_str().unwrap();
        assert!(message.contains("NONE") || message.contains("nobody"), "{args:?}: {message}");
        assert!(String::from_utf8_lossy(&output.stderr).contains(message), "{args:?}");
    }
}

#[test]
fn missing_settings_are_explained() {
    let output = ocpay(&["inquire", "--payment-id", "1", "--server-url", "http://127.0.0.1:1"]);
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("no client-id"), "{stderr}");
}

#[test]
fn a_command_line_that_does_not_parse_exits_2_unlike_an_f_result() {
    let output = ocpay(&["pay", "--amount", "not-a-number", "--currency", "USD"]);
    assert_eq!(output.status.code(), Some(2), "clap's usage error");
    assert!(output.stdout.is_empty());
}

#[test]
fn data_commands_refuse_a_directory_without_a_platform() {
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    let missing = dir.path().join("missing");
    let keys = dir.path().join("keys");
    for data in [&empty, &missing] {
        let data = data.to_str().unwrap();
        for args in [
            &["participant", "list", "--data-dir", data][..],
            &["platform-key", "--data-dir", data],
            &["wallet", "balance", "--payer", "sandbox-x", "--data-dir", data],
            &["participant", "create", "--data-dir", data, "--kind", "merchant", "--env", "sandbox"],
        ] {
            let mut args = args.to_vec();
            if args[1] == "create" {
                args.extend(["--name", "Cafe", "--generate-keys", keys.to_str().unwrap()]);
            }
            let output = ocpay(&args);
            assert_eq!(output.status.code(), Some(1), "{args:?}");
            let stderr = String::from_utf8_lossy(&output.stderr);
            assert!(stderr.contains(data) && stderr.contains("ocpay serve"), "{args:?}: {stderr}");
        }
    }
    let file = dir.path().join("a-file");
    std::fs::write(&file, "").unwrap();
    let unreadable = ocpay(&["participant", "list", "--data-dir", file.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&unreadable.stderr);
    assert!(stderr.contains(file.to_str().unwrap()), "a file error names its path: {stderr}");
    assert!(!missing.exists(), "nothing is created");
    assert_eq!(std::fs::read_dir(&empty).unwrap().count(), 0, "nothing is created");
    assert!(!keys.exists(), "no key files are left behind");
}

#[test]
fn a_closed_stdout_ends_the_command_quietly() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let data = data.to_str().unwrap();
    assert!(ocpay(&["migrate", "--data-dir", data]).status.success());
    for args in [["participant", "list", "--data-dir", data], ["platform-key", "--data-dir", data, "--all"]] {
        // The reader is gone before the command writes, as when `| head` has read enough.
        let (reader, writer) = std::io::pipe().unwrap();
        drop(reader);
        let output = Command::new(OCPAY)
            .args(args)
            .env_remove("RUST_LOG")
            .stdout(writer)
            .output()
            .expect("ocpay runs");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
        assert_eq!(output.status.code(), Some(141), "{args:?}: {stderr}");
    }
}

#[test]
fn a_refused_participant_create_leaves_no_key_files_behind() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let data = data.to_str().unwrap();
    assert!(ocpay(&["migrate", "--data-dir", data]).status.success());
    let keys = dir.path().join("keys");
    let create = |notify_url: &str| {
        ocpay(&[
            "participant",
            "create",
            "--data-dir",
            data,
            "--kind",
            "merchant",
            "--env",
            "sandbox",
            "--name",
            "Cafe",
            "--notify-url",
            notify_url,
            "--generate-keys",
            keys.to_str().unwrap(),
        ])
    };
    let refused = create("not a URL");
    assert_eq!(refused.status.code(), Some(1));
    assert!(!keys.join("private-key.pem").exists(), "no key written for a refused participant");
    let created = create("https://merchant.example/notify");
    assert!(created.status.success(), "the retry works: {}", String::from_utf8_lossy(&created.stderr));
    assert!(keys.join("private-key.pem").exists() && keys.join("profile.toml").exists());
    let again = create("https://merchant.example/notify");
    assert!(String::from_utf8_lossy(&again.stderr).contains("private-key.pem exists already"));
    let listed = json(&ocpay(&["participant", "list", "--data-dir", data]));
    assert_eq!(
        listed["participants"].as_array().unwrap().len(),
        1,
        "no participant for the refused key directory"
    );
}

#[test]
fn a_participant_is_renamed_and_its_notify_url_changed() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let data = data.to_str().unwrap();
    assert!(ocpay(&["migrate", "--data-dir", data]).status.success());
    let merchant = participant(data, &dir.path().join("merchant"), "merchant", "http://127.0.0.1:1");
    let client_id = merchant["clientId"].as_str().unwrap();
    let update = |more: &[&str]| {
        ocpay(&[&["participant", "update", "--data-dir", data, "--client-id", client_id][..], more].concat())
    };

    let changed = json(&update(&["--name", "Demo Bistro", "--notify-url", "https://bistro.example/n"]));
    assert_eq!(
        (changed["name"].as_str(), changed["notifyUrl"].as_str()),
        (Some("Demo Bistro"), Some("https://bistro.example/n"))
    );
    let listed = json(&ocpay(&["participant", "list", "--data-dir", data]));
    assert_eq!(listed["participants"][0], changed);
    let cleared = json(&update(&["--no-notify-url"]));
    assert_eq!((cleared["name"].as_str(), cleared["notifyUrl"].as_str()), (Some("Demo Bistro"), None));

    let refused = update(&["--notify-url", "not a URL"]);
    assert_eq!(refused.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("notify-url"));
    assert_eq!(update(&[]).status.code(), Some(2), "something to change is required");
    let unknown =
        ocpay(&["participant", "update", "--data-dir", data, "--client-id", "SANDBOX_NONE", "--name", "X"]);
    assert_eq!(unknown.status.code(), Some(1));
    assert_eq!(json(&unknown)["error"], "NOT_FOUND");
}

#[test]
fn serve_stops_cleanly_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = serve(&dir.path().join("data"));
    let pid = server.child.id().to_string();
    assert!(Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
    let started = Instant::now();
    loop {
        if let Some(status) = server.child.try_wait().unwrap() {
            assert!(status.success(), "exit status {status}");
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(15), "still running after SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Reads the first line a child prints, waiting at most `seconds`.
fn first_line(child: &mut Child, seconds: u64) -> String {
    let stdout = child.stdout.take().expect("piped stdout");
    let (sender, receiver) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = std::io::BufRead::read_line(&mut std::io::BufReader::new(stdout), &mut line);
        let _ = sender.send(line);
    });
    receiver.recv_timeout(Duration::from_secs(seconds)).expect("a line in time")
}

/// Starts `ocpay listen` on `port` for `profile`, with `more` arguments, and waits until it
/// accepts connections. Its stdout is piped.
fn listen(port: u16, profile: &str, more: &[&str]) -> Child {
    let listen = Command::new(OCPAY)
        .args(["listen", "--port", &port.to_string(), "--profile", profile])
        .args(more)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let started = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(started.elapsed() < Duration::from_secs(10), "ocpay listen did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    listen
}

#[test]
fn a_payer_pays_from_the_command_line_and_listen_receives_the_notification() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let data = data.to_str().unwrap();
    let server = serve(Path::new(data));
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let merchant_dir = dir.path().join("merchant");
    let notify_url = format!("http://127.0.0.1:{port}/notify");
    let merchant =
        create_participant(data, &merchant_dir, "merchant", &server.url, &["--notify-url", &notify_url]);
    let profile = merchant["profile"].as_str().unwrap().to_owned();
    let mut listen = listen(port, &profile, &[]);

    let paid = json(&ocpay(&["pay", "--profile", &profile, "--amount", "450", "--currency", "USD"]));
    let code = paid["orderCodeForm"]["codeDetails"][0]["codeValue"].as_str().unwrap().to_owned();
    let payment_id = paid["paymentId"].as_str().unwrap().to_owned();
    // The payer sees the participant's own name (from its profile), not a made-up merchant.
    let token = code.rsplit('/').next().unwrap();
    let shown: Value = tokio::runtime::Runtime::new().unwrap().block_on(async {
        let url = format!("{}/wallet/api/codes/{token}", server.url);
        reqwest::get(url).await.unwrap().json().await.unwrap()
    });
    let names = (&shown["merchantName"], &shown["storeName"], &shown["description"]);
    assert_eq!(names, (&json!("merchant"), &json!("merchant"), &json!("Order at merchant")), "{shown}");
    let wallet = ocpay(&["wallet", "pay", &code, "--payer", "cli-payer"]);
    assert!(wallet.status.success(), "{}", String::from_utf8_lossy(&wallet.stdout));
    assert_eq!(json(&wallet)["status"], "SUCCESS");
    let again = ocpay(&["wallet", "pay", &code]);
    assert_eq!(again.status.code(), Some(4), "paying twice fails");
    assert_eq!(json(&again)["error"], "ALREADY_PAID");

    let received: Value = serde_json::from_str(&first_line(&mut listen, 15)).unwrap();
    let _ = listen.kill();
    assert_eq!(received["verified"], true, "{received}");
    assert_eq!(received["body"]["notifyType"], "PAYMENT_RESULT");
    assert_eq!(received["body"]["paymentId"], payment_id.as_str());

    let started = Instant::now();
    loop {
        let listed = json(&ocpay(&["notifications", "list", &payment_id, "--data-dir", data]));
        if listed["notifications"][0]["status"] == "DELIVERED" {
            assert_eq!(listed["notifications"][0]["attempts"][0]["httpStatus"], 200);
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(10), "not delivered: {listed}");
        std::thread::sleep(Duration::from_millis(100));
    }
    let resent = json(&ocpay(&["notifications", "resend", &payment_id, "--data-dir", data]));
    assert_eq!(resent["queued"], 1);

    let refund = |amount: &str, request_id: &str| {
        ocpay(&[
            "refund",
            "--profile",
            &profile,
            "--payment-id",
            &payment_id,
            "--amount",
            amount,
            "--currency",
            "USD",
            "--refund-request-id",
            request_id,
            "--reason",
            "returned",
        ])
    };
    let refunded = refund("200", "RR-CLI-1");
    assert!(refunded.status.success(), "{}", String::from_utf8_lossy(&refunded.stdout));
    let refund_id = json(&refunded)["refundId"].as_str().unwrap().to_owned();
    let excess = refund("251", "RR-CLI-2");
    assert_eq!(excess.status.code(), Some(4), "an F result exits 4");
    assert_eq!(json(&excess)["result"]["resultCode"], "REFUND_AMOUNT_EXCEED");
    let found = json(&ocpay(&["inquire-refund", "--profile", &profile, "--refund-id", &refund_id]));
    assert_eq!(
        (found["refundStatus"].as_str(), found["refundRequestId"].as_str()),
        (Some("SUCCESS"), Some("RR-CLI-1"))
    );
    let inquiry = json(&ocpay(&["inquire", "--profile", &profile, "--payment-id", &payment_id]));
    assert_eq!(inquiry["transactions"][0]["transactionId"], refund_id.as_str());

    let created = ocpay(&[
        "wallet",
        "create-payer",
        "--data-dir",
        data,
        "--payer",
        "bob",
        "--currency",
        "SGD",
        "--env",
        "live",
    ]);
    assert!(!created.status.success(), "a live payer needs a PIN");
    let created = json(&ocpay(&[
        "wallet",
        "create-payer",
        "--data-dir",
        data,
        "--payer",
        "bob",
        "--currency",
        "SGD",
        "--env",
        "live",
        "--pin",
        "1357",
    ]));
    assert_eq!(created["environment"], "live");
    let topped = json(&ocpay(&[
        "wallet",
        "topup",
        "--data-dir",
        data,
        "--payer",
        "bob",
        "--amount",
        "5000",
        "--currency",
        "SGD",
    ]));
    assert_eq!(topped["balance"]["text"], "SGD 50.00");
    let balance = json(&ocpay(&["wallet", "balance", "--data-dir", data, "--payer", "bob"]));
    assert_eq!(balance["balances"][0]["value"], "5000");
    drop(server);
}

#[test]
fn each_unknown_answer_and_retry_is_shown_and_pay_says_how_to_pay_its_code() {
    let (_dir, _data, server, merchant) = sandbox_merchant();
    let profile = merchant["profile"].as_str().unwrap();
    let pay = |amount: &str, more: &[&str]| {
        let args = ["pay", "--profile", profile, "--amount", amount, "--currency", "USD"];
        ocpay(&[&args[..], more].concat())
    };

    // Sandbox amount 9901: the first attempt answers U, the command's retry pays; both are shown.
    let retried = pay("9901", &["--payment-request-id", "PR-SHOWN"]);
    assert_eq!(retried.status.code(), Some(0));
    let stderr = String::from_utf8_lossy(&retried.stderr);
    assert!(stderr.contains("pay: attempt 1 of 3: U / UNKNOWN_EXCEPTION"), "{stderr}");
    assert!(stderr.contains("retrying the same request"), "{stderr}");
    let code = json(&retried)["orderCodeForm"]["codeDetails"][0]["codeValue"].as_str().unwrap().to_owned();
    assert!(stderr.contains(&format!("ocpay wallet pay {code}\n")), "a command to copy: {stderr}");

    // Sandbox amount 9903: with one attempt, the first inquiry's U is the answer.
    let slow = pay("9903", &["--payment-request-id", "PR-ONCE", "--code-only"]);
    assert_eq!(slow.status.code(), Some(0));
    let code = String::from_utf8(slow.stdout).unwrap();
    assert!(code.starts_with(&server.url) && code.ends_with('\n') && code.lines().count() == 1, "{code}");
    let inquiry =
        ocpay(&["inquire", "--profile", profile, "--payment-request-id", "PR-ONCE", "--attempts", "1"]);
    assert_eq!(inquiry.status.code(), Some(3));
    let stderr = String::from_utf8_lossy(&inquiry.stderr);
    assert!(stderr.contains("inquiryPayment: attempt 1 of 1: U / UNKNOWN_EXCEPTION"), "{stderr}");
    assert!(stderr.contains("run the command again, or inquire"), "{stderr}");
    let unknown = pay("9901", &["--attempts", "1"]);
    assert_eq!(unknown.status.code(), Some(3));
    let stderr = String::from_utf8_lossy(&unknown.stderr);
    assert!(
        stderr.contains("run the command again with --payment-request-id cli-"),
        "the generated id: {stderr}"
    );

    // The code as copied from the JSON: quoted, with a trailing slash.
    let copied = format!("\"{}/\"", code.trim());
    let paid = ocpay(&["wallet", "pay", &copied]);
    assert!(paid.status.success(), "{}", String::from_utf8_lossy(&paid.stdout));

    // A refund may name the payment by its request id.
    let refund = |request_id: &str| {
        let args = ["refund", "--profile", profile, "--payment-request-id", request_id, "--amount", "100"];
        ocpay(&[&args[..], &["--currency", "USD"]].concat())
    };
    let refunded = refund("PR-ONCE");
    assert!(refunded.status.success(), "{}", String::from_utf8_lossy(&refunded.stdout));
    assert_eq!(json(&refunded)["refundAmount"]["value"], "100");
    let unknown = refund("PR-NONE");
    assert_eq!(unknown.status.code(), Some(4));
    assert_eq!(json(&unknown)["result"]["resultCode"], "ORDER_NOT_EXIST");
    drop(server);
}

/// A running `ocpay serve` on a data directory of its own (kept by the returned folder) with a
/// sandbox merchant: the folder, the data directory, the server and the merchant's JSON (with
/// `profile`).
fn sandbox_merchant() -> (tempfile::TempDir, String, Server, Value) {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data").to_str().unwrap().to_owned();
    let server = serve(Path::new(&data));
    let merchant = participant(&data, &dir.path().join("merchant"), "merchant", &server.url);
    (dir, data, server, merchant)
}

/// Creates a sandbox participant with generated keys; returns its JSON (with `profile`).
fn participant(data: &str, dir: &Path, kind: &str, server_url: &str) -> Value {
    create_participant(data, dir, kind, server_url, &["--notify-url", "https://merchant.example/notify"])
}

/// As [`participant`], with `more` arguments instead of the default notify URL (another notify
/// URL, a database URL).
fn create_participant(data: &str, dir: &Path, kind: &str, server_url: &str, more: &[&str]) -> Value {
    let dir = dir.to_str().unwrap();
    let mut args = vec!["participant", "create", "--data-dir", data, "--kind", kind, "--env", "sandbox"];
    args.extend(["--name", kind, "--generate-keys", dir, "--server-url", server_url]);
    args.extend_from_slice(more);
    json(&ocpay(&args))
}

#[test]
fn isvs_and_integrators_are_authorised_revoked_and_audited_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let data_path = dir.path().join("data");
    let data = data_path.to_str().unwrap();
    let server = serve(&data_path);
    let merchant = participant(data, &dir.path().join("merchant"), "merchant", &server.url);
    let isv = participant(data, &dir.path().join("isv"), "isv", &server.url);
    let merchant_id = merchant["clientId"].as_str().unwrap();
    let isv_profile = isv["profile"].as_str().unwrap();

    let granted = json(&ocpay(&[
        "grants",
        "create",
        "--data-dir",
        data,
        "--merchant",
        merchant_id,
        "--isv",
        isv["clientId"].as_str().unwrap(),
        "--scopes",
        "pay,inquiry",
        "--expires-in",
        "30d",
    ]));
    let token = granted["agentToken"].as_str().unwrap();
    assert!(token.starts_with("ocpay_at_"), "{granted}");
    let paid = ocpay(&[
        "pay",
        "--profile",
        isv_profile,
        "--agent-token",
        token,
        "--amount",
        "300",
        "--currency",
        "USD",
    ]);
    assert!(paid.status.success(), "{}", String::from_utf8_lossy(&paid.stdout));
    let payment_id = json(&paid)["paymentId"].as_str().unwrap().to_owned();
    let cancel =
        ocpay(&["cancel", "--profile", isv_profile, "--agent-token", token, "--payment-id", &payment_id]);
    assert_eq!(json(&cancel)["result"]["resultCode"], "ACCESS_DENIED", "cancel is outside the grant");
    let listed = json(&ocpay(&["grants", "list", "--data-dir", data, "--client-id", merchant_id]));
    assert_eq!(listed["grants"][0]["scopes"], "pay,inquiry");
    assert!(listed["grants"][0].get("agentToken").is_none());
    let grant_id = granted["grantId"].as_str().unwrap();
    assert!(ocpay(&["grants", "revoke", "--data-dir", data, grant_id]).status.success());
    let after =
        ocpay(&["inquire", "--profile", isv_profile, "--agent-token", token, "--payment-id", &payment_id]);
    assert_eq!(json(&after)["result"]["resultCode"], "ACCESS_DENIED", "revoked at once");

    // A system integrator's key on the merchant's account, then revoked.
    let integrator = dir.path().join("integrator");
    let added = json(&ocpay(&[
        "participant",
        "add-key",
        "--data-dir",
        data,
        "--client-id",
        merchant_id,
        "--generate-keys",
        integrator.to_str().unwrap(),
        "--label",
        "Integrator: Acme",
        "--scopes",
        "inquiry",
        "--server-url",
        &server.url,
    ]));
    assert_eq!((added["keyVersion"].as_u64(), added["scopes"].as_str()), (Some(2), Some("inquiry")));
    let profile = added["profile"].as_str().unwrap();
    let seen = ocpay(&["inquire", "--profile", profile, "--payment-id", &payment_id]);
    assert_eq!(
        json(&seen)["result"]["resultCode"],
        "SUCCESS",
        "the integrator sees the ISV's payment for the merchant"
    );
    let revoked = json(&ocpay(&[
        "participant",
        "revoke-key",
        "--data-dir",
        data,
        "--client-id",
        merchant_id,
        "--key-version",
        "2",
    ]));
    assert!(revoked["revokedAt"].is_string());
    let refused = ocpay(&["inquire", "--profile", profile, "--payment-id", &payment_id]);
    assert_eq!(json(&refused)["result"]["resultCode"], "KEY_NOT_FOUND");
    let keys = json(&ocpay(&["participant", "keys", "--data-dir", data, "--client-id", merchant_id]));
    assert_eq!(keys["keys"][1]["label"], "Integrator: Acme");

    // The server writes each audit event just after it answers.
    let started = Instant::now();
    let audit = loop {
        let audit = json(&ocpay(&["audit", "--data-dir", data, "--client-id", merchant_id, "--limit", "10"]));
        if audit["events"].as_array().unwrap().len() >= 5 || started.elapsed() > Duration::from_secs(10) {
            break audit;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let events = audit["events"].as_array().unwrap();
    let summary: Vec<_> = events
        .iter()
        .rev()
        .map(|event| {
            (
                event["api"].as_str().unwrap(),
                event["keyVersion"].as_u64(),
                event["agent"].is_string(),
                event["resultCode"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            ("pay", Some(1), true, "SUCCESS"),
            ("cancel", Some(1), true, "ACCESS_DENIED"),
            ("inquiryPayment", Some(1), true, "ACCESS_DENIED"),
            ("inquiryPayment", Some(2), false, "SUCCESS"),
            ("inquiryPayment", Some(2), false, "KEY_NOT_FOUND"),
        ]
    );
    assert!(events.last().unwrap()["idempotencyKey"].is_string(), "the pay names its paymentRequestId");

    let rotated = ocpay(&["platform-key", "--data-dir", data, "--rotate", "--all"]);
    let published = json(&rotated);
    assert_eq!(published["keys"].as_array().unwrap().len(), 2);
    assert_eq!(published["keys"][0]["signing"], true, "the new version signs only once activated");
    assert_eq!(published["keys"][1]["signing"], false);
}

#[test]
fn an_operator_approves_an_acquirers_registration_and_the_acquirer_pays() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let data = data.to_str().unwrap();
    let server = serve(Path::new(data));
    let acquirer_dir = dir.path().join("acquirer");
    let acquirer = json(&ocpay(&[
        "participant",
        "create",
        "--data-dir",
        data,
        "--kind",
        "acquirer",
        "--env",
        "live",
        "--name",
        "Acme Acquiring",
        "--notify-url",
        "https://acquirer.example/notify",
        "--generate-keys",
        acquirer_dir.to_str().unwrap(),
        "--server-url",
        &server.url,
    ]));
    let client_id = acquirer["clientId"].as_str().unwrap().to_owned();
    let profile = acquirer["profile"].as_str().unwrap().to_owned();
    let pay = |request_id: &str| {
        ocpay(&[
            "pay",
            "--profile",
            &profile,
            "--amount",
            "800",
            "--currency",
            "USD",
            "--payment-request-id",
            request_id,
            "--merchant-id",
            "BAKERY-1",
            "--store-id",
            "TP-01",
        ])
    };

    let registered = ocpay(&[
        "register",
        "--profile",
        &profile,
        "--merchant-id",
        "BAKERY-1",
        "--merchant-mcc",
        "5462",
        "--store-id",
        "TP-01",
        "--store-name",
        "Corner Bakery Tanjong Pagar",
        "--registration-request-id",
        "reg-1",
    ]);
    assert!(registered.status.success(), "{}", String::from_utf8_lossy(&registered.stderr));
    assert_eq!(json(&registered)["result"]["resultCode"], "SUCCESS");
    let early = pay("order-early");
    assert_eq!(early.status.code(), Some(4), "an F result before approval");
    assert_eq!(json(&early)["result"]["resultCode"], "MERCHANT_NOT_REGISTERED");

    let listed = json(&ocpay(&["registrations", "list", "--client-id", &client_id, "--data-dir", data]));
    let [registration] = listed["registrations"].as_array().unwrap().as_slice() else { panic!("{listed}") };
    assert_eq!(
        (registration["status"].as_str(), registration["registrationRequestId"].as_str()),
        (Some("PROCESSING"), Some("reg-1"))
    );
    assert_eq!(registration["content"]["storeInfo"]["storeName"], "Corner Bakery Tanjong Pagar");

    let approved = ocpay(&["registrations", "approve", "reg-1", "--data-dir", data]);
    assert!(approved.status.success(), "{}", String::from_utf8_lossy(&approved.stderr));
    assert_eq!(json(&approved)["status"], "APPROVED");
    let again = ocpay(&["registrations", "reject", "reg-1", "--reason", "too late", "--data-dir", data]);
    assert!(!again.status.success(), "a decision is final");
    assert!(String::from_utf8_lossy(&again.stderr).contains("APPROVED already"));
    let missing = ocpay(&["registrations", "approve", "reg-none", "--data-dir", data]);
    assert!(!missing.status.success());

    let paid = pay("order-1");
    assert_eq!(paid.status.code(), Some(0), "{}", String::from_utf8_lossy(&paid.stdout));
    assert_eq!(json(&paid)["result"]["resultCode"], "SUCCESS");

    // The acquirer reads the registration back through the API.
    let status =
        json(&ocpay(&["inquire-registration", "--profile", &profile, "--registration-request-id", "reg-1"]));
    assert_eq!(status["registrationResult"]["registrationStatus"], "APPROVED", "{status}");
    let by_store =
        ["inquire-registration", "--profile", &profile, "--merchant-id", "BAKERY-1", "--store-id", "TP-01"];
    assert_eq!(json(&ocpay(&by_store))["registrationResult"]["registrationStatus"], "APPROVED");
    let info =
        json(&ocpay(&["inquire-registration-info", "--profile", &profile, "--merchant-id", "BAKERY-1"]));
    assert_eq!(info["storeInfo"]["storeName"], "Corner Bakery Tanjong Pagar", "{info}");
    let unknown = ocpay(&["inquire-registration", "--profile", &profile, "--merchant-id", "NOBODY"]);
    assert_eq!(unknown.status.code(), Some(4));
    assert_eq!(json(&unknown)["result"]["resultCode"], "RECORD_NOT_FOUND");
}
