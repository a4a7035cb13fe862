//! The `ocpay` binary end to end: a real `ocpay serve` process, participants created while it
//! runs, and the API commands against it, checking the JSON and the exit codes scripts rely on.

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

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
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let address = format!("127.0.0.1:{port}");
    let child = Command::new(OCPAY)
        .args(["serve", "--data-dir", data_dir.to_str().unwrap(), "--listen", &address])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("ocpay serve starts");
    let started = Instant::now();
    while !healthy(&address) {
        assert!(started.elapsed() < Duration::from_secs(20), "the server did not become healthy");
        std::thread::sleep(Duration::from_millis(50));
    }
    Server { child, url: format!("http://{address}") }
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
    assert_eq!(refused.status.code(), Some(2), "an F result exits with 2");
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
    drop(server);
}

#[test]
fn missing_settings_are_explained() {
    let output = ocpay(&["inquire", "--payment-id", "1", "--server-url", "http://127.0.0.1:1"]);
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("no client-id"), "{stderr}");
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
