//! Interoperability with Alipay's official Python SDK (`global-alipay-sdk-python`): it must
//! sign requests we accept and accept the signatures of our responses.
//!
//! The interpreter comes from `OCPAY_PYTHON` (the test script sets up a virtual environment
//! with the SDK). The tests are ignored by a plain `cargo test`, which lists them as skipped;
//! `scripts/test` runs them, and a run asked for without the SDK fails.

use std::process::Command;

use ocpay_testkit::TestApp;

/// The Python interpreter that has the official SDK.
pub(crate) fn python() -> String {
    match std::env::var("OCPAY_PYTHON") {
        Ok(python) if !python.is_empty() => python,
        _ => {
            panic!("OCPAY_PYTHON must name a Python with global-alipay-sdk-python (scripts/test sets it up)")
        }
    }
}

/// Runs the official-SDK script against `app` as `merchant`, trusting `platform_key`.
async fn run_script(
    python: String,
    app: &TestApp,
    merchant: &ocpay_testkit::TestParticipant,
    platform_key: String,
) -> std::process::Output {
    run_script_as(python, app, merchant, platform_key, "merchant").await
}

/// Runs the official-SDK script in one of its roles (`merchant`, `acquirer` or `acceptance`).
pub(crate) async fn run_script_as(
    python: String,
    app: &TestApp,
    merchant: &ocpay_testkit::TestParticipant,
    platform_key: String,
    role: &'static str,
) -> std::process::Output {
    run_script_with(python, app, merchant, platform_key, role, None).await
}

/// As [`run_script_as`]; with `ca_file`, the test authority that the script's own HTTPS calls
/// trust.
async fn run_script_with(
    python: String,
    app: &TestApp,
    merchant: &ocpay_testkit::TestParticipant,
    platform_key: String,
    role: &'static str,
    ca_file: Option<std::path::PathBuf>,
) -> std::process::Output {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/interop/alipay_python_sdk.py");
    let (gateway, client_id) = (app.base_url.clone(), merchant.client_id.clone());
    let private_key = merchant.key.to_pkcs8_pem().unwrap();
    tokio::task::spawn_blocking(move || {
        Command::new(python)
            .arg(script)
            .env("OCPAY_GATEWAY", gateway)
            .env("OCPAY_CLIENT_ID", client_id)
            .env("OCPAY_PRIVATE_KEY_PEM", private_key)
            .env("OCPAY_PLATFORM_KEY", platform_key)
            .env("OCPAY_ROLE", role)
            .envs(ca_file.map(|file| ("OCPAY_CA_FILE", file)))
            .output()
            .expect("python runs")
    })
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the official Python SDK: scripts/test runs it"]
async fn alipay_python_sdk_pays_inquires_cancels_refunds_and_checks_notifications() {
    let python = python();
    let app = TestApp::spawn().await;
    let merchant = app.merchant().await;
    let output = run_script(python, &app, &merchant, app.platform_key.to_base64()).await;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "the official SDK failed:\n{stdout}\n{stderr}");
    assert!(
        stdout.contains("\"status\": \"CANCELLED\"")
            && stdout.contains("\"notified\": true")
            && stdout.contains("\"refunded\": true"),
        "{stdout}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the official Python SDK: scripts/test runs it"]
async fn alipay_python_sdk_refuses_answers_it_cannot_verify() {
    // The control: with another key as the platform's, the SDK must reject our answers, which
    // shows the passing test above really checks our signatures.
    let python = python();
    let app = TestApp::spawn().await;
    let merchant = app.merchant().await;
    let stranger = ocpay_protocol::SigningKey::generate().unwrap().verifying_key().to_base64();
    let output = run_script(python, &app, &merchant, stranger).await;
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "the SDK accepted a signature it cannot have verified");
    assert!(stderr.contains("verify failed"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the official Python SDK: scripts/test runs it"]
async fn alipay_python_sdk_registers_a_secondary_merchant_and_pays_for_it() {
    let python = python();
    let app = TestApp::spawn().await;
    let acquirer = app.acquirer().await;
    let script = run_script_as(python, &app, &acquirer, app.platform_key.to_base64(), "acquirer");
    let review = async {
        // Once the script's registration is in, the sandbox's review comes due.
        let owner = ocpay_core::ids::ClientId::parse(&acquirer.client_id).unwrap();
        for _ in 0..1_500 {
            if !app.state.store.registrations(Some(&owner), None, 1).await.unwrap().is_empty() {
                let review = app.state.config.sandbox_registration_review_seconds;
                app.clock.advance(jiff::SignedDuration::from_secs(review as i64));
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
    };
    let (output, ()) = tokio::join!(script, review);
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "the official SDK failed:\n{stdout}\n{stderr}");
    assert!(stdout.contains("\"approved\": true") && stdout.contains("\"paid\": true"), "{stdout}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the official Python SDK: scripts/test runs it"]
async fn alipay_python_sdk_unpatched_reaches_https_on_port_443() {
    // The SDK always connects with HTTPS to port 443 of its gateway's host: the server listens
    // there with a certificate of a test authority, and the SDK runs as installed, its
    // transport included, for pay, inquiry, cancel, refunds and notifications.
    let python = python();
    let port_443: std::net::SocketAddr = "127.0.0.1:443".parse().unwrap();
    if let Err(error) = std::net::TcpListener::bind(port_443) {
        panic!(
            "this test serves on {port_443}, which cannot be bound ({error}): it needs the port free and \
             the right to bind it (root, or CAP_NET_BIND_SERVICE)"
        );
    }
    let dir = tempfile::tempdir().unwrap();
    let ca = ocpay_testkit::tls::TestCa::new("ocpay test authority");
    let (cert, key) = ca.server_certificate().write(dir.path(), "server");
    let ca_file = dir.path().join("ca.crt");
    std::fs::write(&ca_file, ca.pem()).unwrap();
    let app = TestApp::spawn_with(move |config| {
        config.listen = port_443;
        config.tls_cert_file = Some(cert);
        config.tls_key_file = Some(key);
    })
    .await;
    assert_eq!(app.base_url, "https://127.0.0.1", "the gateway URL the SDK is given");
    let merchant = app.merchant().await;
    let platform_key = app.platform_key.to_base64();
    let output = run_script_with(python, &app, &merchant, platform_key, "merchant", Some(ca_file)).await;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "the official SDK failed:\n{stdout}\n{stderr}");
    assert!(
        stdout.contains("\"transport\": \"the SDK's own\"")
            && stdout.contains("\"codeValue\": \"https://127.0.0.1/c/")
            && stdout.contains("\"notified\": true")
            && stdout.contains("\"refunded\": true"),
        "{stdout}"
    );
}
