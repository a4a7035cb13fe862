//! `ocpay serve` over HTTPS: `kill -HUP` reloads the certificate without dropping the
//! connections already open, a reload that fails keeps the certificate served and says why in
//! the log, and without TLS a SIGHUP does not end the server.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use ocpay_testkit::tls::TestCa;

use crate::OCPAY;

/// An `ocpay serve` process whose log goes to a file. Dropping it kills the process.
struct LoggedServer {
    child: Child,
    address: SocketAddr,
    log: PathBuf,
}

impl Drop for LoggedServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl LoggedServer {
    fn start(dir: &Path, settings: &[(&str, &Path)]) -> LoggedServer {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let address: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        let log = dir.join("serve.log");
        let child = Command::new(OCPAY)
            .args([
                "serve",
                "--data-dir",
                dir.join("data").to_str().unwrap(),
                "--listen",
                &address.to_string(),
            ])
            .envs(settings.iter().copied())
            .env_remove("RUST_LOG")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("ocpay serve starts");
        LoggedServer { child, address, log }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn hang_up(&self) {
        let pid = self.child.id().to_string();
        assert!(Command::new("kill").args(["-HUP", &pid]).status().unwrap().success());
    }
}

/// Waits (up to 20 s) until `condition` holds.
fn wait_until(what: &str, server: &LoggedServer, mut condition: impl FnMut() -> bool) {
    let started = Instant::now();
    while !condition() {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "{what}: not within 20 s; log:\n{}",
            server.log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn serve_reloads_its_certificate_on_sighup_without_dropping_connections() {
    let dir = tempfile::tempdir().unwrap();
    let ca = TestCa::new("ocpay test authority");
    let (first, second) = (ca.server_certificate(), ca.server_certificate());
    let (cert, key) = first.write(dir.path(), "server");
    let server =
        LoggedServer::start(dir.path(), &[("OCPAY_TLS_CERT_FILE", &cert), ("OCPAY_TLS_KEY_FILE", &key)]);
    wait_until("the server serves HTTPS", &server, || ca.connect(server.address).is_ok());
    assert!(
        server.log().contains(&format!("ocpay is serving on https://{}", server.address)),
        "{}",
        server.log()
    );

    let mut open = ca.connect(server.address).unwrap();
    assert_eq!(open.peer_certificate(), first.der);
    assert_eq!(open.get("/healthz").unwrap(), (200, "ok".to_owned()));

    second.write(dir.path(), "server");
    server.hang_up();
    wait_until("a new connection gets the new certificate", &server, || {
        ca.connect(server.address).is_ok_and(|connection| connection.peer_certificate() == second.der)
    });
    assert_eq!(open.get("/healthz").unwrap(), (200, "ok".to_owned()), "the open connection goes on");

    std::fs::write(&cert, "not a certificate").unwrap();
    server.hang_up();
    wait_until("the failed reload is logged", &server, || server.log().contains("not reloaded"));
    let log = server.log();
    assert!(log.contains(&format!("tls_cert_file {}: holds no certificate", cert.display())), "{log}");
    let connection = ca.connect(server.address).unwrap();
    assert_eq!(connection.peer_certificate(), second.der, "the certificate loaded before is still served");
}

#[test]
fn sighup_without_tls_leaves_the_server_serving() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = LoggedServer::start(dir.path(), &[]);
    let address = server.address.to_string();
    wait_until("the server is healthy", &server, || crate::healthy(&address));
    server.hang_up();
    wait_until("the SIGHUP is logged", &server, || server.log().contains("no TLS certificate to reload"));
    assert!(server.child.try_wait().unwrap().is_none(), "still running");
    assert!(crate::healthy(&address));
}
