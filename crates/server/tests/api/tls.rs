//! HTTPS on the listener (`tls_cert_file`, `tls_key_file`): the SDK pays over it and checks
//! the server's certificate against a test authority made here; a reload serves a new
//! certificate to new connections while open ones go on; a reload that fails keeps the
//! certificate served; and each bad certificate or key stops the start, naming its file.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ocpay_server::{Application, Config};
use ocpay_testkit::tls::{ServerCertificate, TestCa, Validity};
use ocpay_testkit::{ManualClock, TestApp, pay_request, unique_id};
use tokio::io::AsyncReadExt as _;

/// A server speaking HTTPS with `certificate`, whose files are `<dir>/server.crt` and `.key`.
async fn spawn_https(dir: &Path, certificate: &ServerCertificate) -> TestApp {
    let (cert, key) = certificate.write(dir, "server");
    TestApp::spawn_with(move |config| {
        config.tls_cert_file = Some(cert);
        config.tls_key_file = Some(key);
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sdk_pays_over_https_and_checks_the_server_certificate() {
    let (ca, dir) = (TestCa::new("ocpay test authority"), tempfile::tempdir().unwrap());
    let app = spawn_https(dir.path(), &ca.server_certificate()).await;
    assert_eq!(app.base_url, format!("https://{}", app.address), "the public URL defaults to https");
    let merchant = app.merchant().await;
    let client = app
        .client_builder(&merchant.client_id, merchant.key.clone())
        .root_certificate_pem(ca.pem())
        .build()
        .unwrap();

    let request_id = unique_id("PR");
    let paid = client.pay(&pay_request(&request_id, "USD", 1250)).await.unwrap();
    assert_eq!(paid.result.result_code, "SUCCESS");
    let code = paid.order_code_form.as_ref().unwrap().text_code().unwrap();
    assert!(code.starts_with(&format!("https://{}/c/", app.address)), "the order code is https: {code}");
    let inquiry = ocpay_protocol::payments::InquiryPaymentRequest {
        payment_id: None,
        payment_request_id: Some(request_id),
    };
    assert_eq!(client.inquire_payment(&inquiry).await.unwrap().payment_id, paid.payment_id);

    // A client that does not trust the test authority refuses the server's certificate.
    let stranger = TestCa::new("another authority");
    let distrusting = app
        .client_builder(&merchant.client_id, merchant.key.clone())
        .root_certificate_pem(stranger.pem())
        .build()
        .unwrap();
    let refused = distrusting.pay(&pay_request(&unique_id("PR"), "USD", 100)).await.unwrap_err();
    assert!(
        matches!(&refused, ocpay_sdk::SdkError::Transport(reason) if reason.contains("certificate")),
        "{refused}"
    );
    assert!(stranger.connect(app.address).is_err(), "the handshake fails against another authority");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reloaded_certificate_serves_new_connections_while_open_ones_go_on() {
    let (ca, dir) = (TestCa::new("ocpay test authority"), tempfile::tempdir().unwrap());
    let (first, second) = (ca.server_certificate(), ca.server_certificate());
    let app = spawn_https(dir.path(), &first).await;

    let mut open = ca.connect(app.address).unwrap();
    assert_eq!(open.peer_certificate(), first.der);
    assert_eq!(open.get("/healthz").unwrap(), (200, "ok".to_owned()));

    second.write(dir.path(), "server");
    let loaded = app.reload_tls().unwrap();
    assert!(loaded.subject.contains("localhost"), "{loaded:?}");

    let new = ca.connect(app.address).unwrap();
    assert_eq!(new.peer_certificate(), second.der, "a new connection gets the new certificate");
    assert_eq!(open.get("/healthz").unwrap(), (200, "ok".to_owned()), "the open connection goes on");
    assert_eq!(open.peer_certificate(), first.der);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_that_fails_keeps_the_certificate_served() {
    let (ca, dir) = (TestCa::new("ocpay test authority"), tempfile::tempdir().unwrap());
    let served = ca.server_certificate();
    let app = spawn_https(dir.path(), &served).await;
    let (cert, key) = (dir.path().join("server.crt"), dir.path().join("server.key"));

    let expired = ca.server_certificate_valid(Validity::Expired);
    let other = ca.server_certificate();
    let cases: [(&str, &str, &str, &Path); 3] = [
        (&expired.cert_pem, &expired.key_pem, "expired", &cert),
        (&served.cert_pem, &other.key_pem, "is not the key of the certificate", &key),
        ("not a certificate", &served.key_pem, "holds no certificate", &cert),
    ];
    for (cert_pem, key_pem, reason, file) in cases {
        std::fs::write(&cert, cert_pem).unwrap();
        std::fs::write(&key, key_pem).unwrap();
        let error = app.reload_tls().unwrap_err();
        assert_eq!(error.file, file, "{error}");
        assert!(error.to_string().contains(reason), "{error}");
        let connection = ca.connect(app.address).unwrap();
        assert_eq!(connection.peer_certificate(), served.der, "the old certificate is still served");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_never_starts_the_handshake_is_cut_off() {
    let (ca, dir) = (TestCa::new("ocpay test authority"), tempfile::tempdir().unwrap());
    let (cert, key) = ca.server_certificate().write(dir.path(), "server");
    let app = TestApp::spawn_with(move |config| {
        config.tls_cert_file = Some(cert);
        config.tls_key_file = Some(key);
        config.header_read_timeout_ms = 300;
    })
    .await;
    let mut silent = tokio::net::TcpStream::connect(app.address).await.unwrap();
    let started = Instant::now();
    let mut received = Vec::new();
    let closed = tokio::time::timeout(Duration::from_secs(5), silent.read_to_end(&mut received)).await;
    assert!(closed.is_ok(), "the server closes a connection that sends nothing");
    assert!(started.elapsed() < Duration::from_secs(3), "closed after {:?}", started.elapsed());
    assert!(ca.connect(app.address).is_ok(), "others are served");
}

/// The start's error with `adjust`'s configuration.
async fn start_error(adjust: impl FnOnce(&mut Config)) -> String {
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config {
        data_dir: dir.path().join("data"),
        listen: "127.0.0.1:0".parse().unwrap(),
        ..Config::default()
    };
    adjust(&mut config);
    let clock = Arc::new(ManualClock::new(jiff::Timestamp::now()));
    match Application::build(config, clock).await {
        Ok(_) => panic!("the server started"),
        Err(error) => format!("{error:#}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_bad_certificate_or_key_stops_the_start_naming_its_file() {
    let (ca, dir) = (TestCa::new("ocpay test authority"), tempfile::tempdir().unwrap());
    let path = |name: &str| dir.path().join(name);
    let (good_cert, good_key) = ca.server_certificate().write(dir.path(), "good");
    let (expired, _) = ca.server_certificate_valid(Validity::Expired).write(dir.path(), "expired");
    let (early, _) = ca.server_certificate_valid(Validity::NotYetValid).write(dir.path(), "early");
    let (_, other_key) = ca.server_certificate().write(dir.path(), "other");
    std::fs::write(
        path("garbage.crt"),
        "-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydA==\n-----END CERTIFICATE-----\n",
    )
    .unwrap();
    std::fs::write(path("garbage.key"), "not a key").unwrap();
    let missing = path("missing.key");

    let cases = [
        (&expired, &good_key, "tls_cert_file", &expired, "the certificate expired at"),
        (&early, &good_key, "tls_cert_file", &early, "the certificate is not valid before"),
        (&good_cert, &other_key, "tls_key_file", &other_key, "is not the key of the certificate in"),
        (
            &path("garbage.crt"),
            &good_key,
            "tls_cert_file",
            &path("garbage.crt"),
            "its first certificate cannot be parsed",
        ),
        (&good_cert, &path("garbage.key"), "tls_key_file", &path("garbage.key"), "holds no private key"),
        (&good_cert, &missing, "tls_key_file", &missing, "cannot be read"),
    ];
    for (cert, key, named, file, reason) in cases {
        let (cert, key) = (cert.clone(), key.clone());
        let error = start_error(move |config| {
            config.tls_cert_file = Some(cert);
            config.tls_key_file = Some(key);
        })
        .await;
        assert!(
            error.starts_with(&format!("{named} {}: {reason}", file.display())) && error.contains("(set in"),
            "{error}"
        );
    }

    let error = start_error(|config| config.tls_cert_file = Some(good_cert.clone())).await;
    assert!(error.starts_with("tls_key_file in the defaults: is not set, but tls_cert_file is"), "{error}");
    let error = start_error(|config| config.tls_key_file = Some(good_key.clone())).await;
    assert!(error.starts_with("tls_cert_file in the defaults: is not set, but tls_key_file is"), "{error}");
}
