//! The payer page in a real browser: headless Chromium opens an order code, clicks Pay, and the
//! payment must then be done for the merchant too, by notification and by inquiry.
//!
//! The browser side is `tests/browser/pay.mjs`, run by `node` with `playwright-core` from
//! `OCPAY_NODE_MODULES` (default: `tests/browser/node_modules`, which `npm ci` fills) driving
//! Debian's Chromium from `OCPAY_CHROMIUM` (default: `/usr/bin/chromium`). A plain `cargo test`
//! ignores the test and lists it as skipped; `scripts/test` sets them up and runs it, and a run
//! asked for without them fails.

use std::path::{Path, PathBuf};
use std::process::Command;

use ocpay_testkit::{Receiver, TestApp};

use crate::helpers::{code_value, inquire, order_code};

/// The folder of the browser script and its `package.json`.
const BROWSER_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/browser");

/// What a browser test needs from the machine.
struct Browser {
    chromium: PathBuf,
    node_modules: PathBuf,
}

/// The browser prerequisites; a run without them all fails, naming what is missing.
fn browser() -> Browser {
    let chromium = match std::env::var("OCPAY_CHROMIUM") {
        Ok(path) if !path.is_empty() => PathBuf::from(path),
        _ => PathBuf::from("/usr/bin/chromium"),
    };
    let node_modules = match std::env::var("OCPAY_NODE_MODULES") {
        Ok(path) if !path.is_empty() => PathBuf::from(path),
        _ => Path::new(BROWSER_DIR).join("node_modules"),
    };
    let mut missing = Vec::new();
    if !chromium.is_file() {
        missing.push(format!("Chromium at {} (OCPAY_CHROMIUM)", chromium.display()));
    }
    if !node_modules.join("playwright-core").join("package.json").is_file() {
        missing.push(format!("playwright-core in {} (OCPAY_NODE_MODULES)", node_modules.display()));
    }
    // A node that cannot even report its version cannot run the script either.
    if !Command::new("node").arg("--version").output().is_ok_and(|output| output.status.success()) {
        missing.push("node on the PATH".to_owned());
    }
    assert!(missing.is_empty(), "the browser test needs {}; scripts/test sets them up", missing.join(", "));
    Browser { chromium, node_modules }
}

/// Where screenshots go, so that a person can look at what the browser saw.
fn test_output(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/test-output/browser");
    std::fs::create_dir_all(&dir).expect("the test output folder");
    dir.canonicalize().expect("the test output folder exists").join(name)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs Chromium: scripts/test runs it"]
async fn a_payer_pays_on_the_page_in_chromium() {
    let browser = browser();
    let app = TestApp::spawn().await;
    let receiver = Receiver::start(app.platform_key.clone()).await;
    let merchant = app.merchant_notified_at(&receiver).await;
    let paid = order_code(&merchant, "USD", 1250).await;
    let code = code_value(&paid);
    let screenshot = test_output("pay-success.png");
    // A screenshot left by an earlier run must not pass for this run's.
    let _ = std::fs::remove_file(&screenshot);

    let script = Path::new(BROWSER_DIR).join("pay.mjs");
    let (url, shot) = (code.clone(), screenshot.clone());
    let output = tokio::task::spawn_blocking(move || {
        Command::new("node")
            .arg(script)
            .arg(url)
            .arg(shot)
            .arg("USD 12.50")
            .env("OCPAY_CHROMIUM", browser.chromium)
            .env("OCPAY_NODE_MODULES", browser.node_modules)
            .output()
            .expect("node runs")
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "paying in Chromium failed:\n{stdout}\n{stderr}");
    let line: serde_json::Value = serde_json::from_str(stdout.trim()).expect("one JSON line");
    assert_eq!(line["amount"], "USD 12.50", "{line}");
    assert!(line["result"].as_str().is_some_and(|text| text.starts_with("Payment successful")), "{line}");

    let png = std::fs::read(&screenshot).expect("the browser saved a screenshot");
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"), "{} is not a PNG", screenshot.display());
    eprintln!("screenshot: {}", screenshot.display());

    let delivered = receiver.wait_for(1).await;
    let body = delivered[0].notification.as_ref().expect("a payment notification");
    assert!(delivered[0].verified, "signed by the platform");
    assert_eq!(body.result.result_code, "SUCCESS");
    assert_eq!(Some(body.payment_id.clone()), paid.payment_id);

    let inquiry = inquire(&merchant, &paid).await;
    assert_eq!(inquiry.payment_status.as_deref(), Some("SUCCESS"));
    assert_eq!(inquiry.payment_result_code.as_deref(), Some("SUCCESS"));
}
