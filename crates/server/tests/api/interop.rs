//! Interoperability with Alipay's official Python SDK (`global-alipay-sdk-python`): it must
//! sign requests we accept and accept the signatures of our responses.
//!
//! The interpreter comes from `OCPAY_PYTHON` (the test script sets up a virtual environment
//! with the SDK). Without it the test is skipped locally, and fails under `CI=true`.

use std::process::Command;

use ocpay_testkit::TestApp;

/// The Python interpreter that has the official SDK, if this run has one.
pub(crate) fn python() -> Option<String> {
    match std::env::var("OCPAY_PYTHON") {
        Ok(python) if !python.is_empty() => Some(python),
        _ if std::env::var("CI").is_ok_and(|ci| ci == "true") => {
            panic!("OCPAY_PYTHON must name a Python with global-alipay-sdk-python under CI=true")
        }
        _ => {
            eprintln!("skipped: set OCPAY_PYTHON (scripts/test does) to run the official-SDK interop test");
            None
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alipay_python_sdk_pays_inquires_and_cancels() {
    let Some(python) = python() else { return };
    let app = TestApp::spawn().await;
    let merchant = app.merchant().await;
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/interop/alipay_python_sdk.py");
    let output = tokio::task::spawn_blocking({
        let gateway = app.base_url.clone();
        let client_id = merchant.client_id.clone();
        let private_key = merchant.key.to_pkcs8_pem().unwrap();
        let platform_key = app.platform_key.to_base64();
        move || {
            Command::new(python)
                .arg(script)
                .env("OCPAY_GATEWAY", gateway)
                .env("OCPAY_CLIENT_ID", client_id)
                .env("OCPAY_PRIVATE_KEY_PEM", private_key)
                .env("OCPAY_PLATFORM_KEY", platform_key)
                .output()
                .expect("python runs")
        }
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "the official SDK failed:\n{stdout}\n{stderr}");
    assert!(stdout.contains("\"status\": \"CANCELLED\""), "{stdout}");
}
