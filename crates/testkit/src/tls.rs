//! A certificate authority made at test time, the server certificates it signs (for
//! `localhost` and 127.0.0.1), and a blocking TLS client that trusts only that authority and
//! tells which certificate a server presented.

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};
use rustls::pki_types::{CertificateDer, ServerName};

/// A test certificate authority.
pub struct TestCa {
    issuer: CertifiedIssuer<'static, KeyPair>,
}

/// When a server certificate is valid, counted in days from today.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Validity {
    /// From yesterday for 30 days.
    Current,
    /// From 30 days ago until yesterday.
    Expired,
    /// From tomorrow for 30 days.
    NotYetValid,
}

/// A server certificate (PEM, and its DER as a client sees it) and its private key (PKCS#8 PEM).
#[derive(Debug, Clone)]
pub struct ServerCertificate {
    pub cert_pem: String,
    pub key_pem: String,
    pub der: Vec<u8>,
}

impl ServerCertificate {
    /// Writes `<name>.crt` and `<name>.key` into `dir`; returns their paths.
    pub fn write(&self, dir: &Path, name: &str) -> (PathBuf, PathBuf) {
        let (cert, key) = (dir.join(format!("{name}.crt")), dir.join(format!("{name}.key")));
        std::fs::write(&cert, &self.cert_pem).expect("write the certificate");
        std::fs::write(&key, &self.key_pem).expect("write the key");
        (cert, key)
    }
}

/// The calendar date (UTC) `days` from today, as (year, month, day).
fn day(days: i64) -> (i32, u8, u8) {
    let at = jiff::Timestamp::now().checked_add(jiff::SignedDuration::from_hours(days * 24)).expect("a time");
    let date = jiff::tz::Offset::UTC.to_datetime(at).date();
    (i32::from(date.year()), date.month() as u8, date.day() as u8)
}

/// Sets `params`' validity from `from` to `to` days from today.
fn valid(params: &mut CertificateParams, from: i64, to: i64) {
    let ((y1, m1, d1), (y2, m2, d2)) = (day(from), day(to));
    params.not_before = rcgen::date_time_ymd(y1, m1, d1);
    params.not_after = rcgen::date_time_ymd(y2, m2, d2);
}

impl TestCa {
    /// A new authority, its name in its certificate.
    pub fn new(name: &str) -> TestCa {
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA parameters");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        valid(&mut params, -1, 365);
        let key = KeyPair::generate().expect("a CA key");
        TestCa { issuer: CertifiedIssuer::self_signed(params, key).expect("a CA certificate") }
    }

    /// The authority's certificate, PEM.
    pub fn pem(&self) -> String {
        self.issuer.pem()
    }

    /// The authority's certificate, DER.
    pub fn der(&self) -> CertificateDer<'static> {
        self.issuer.der().clone()
    }

    /// A server certificate for `localhost` and 127.0.0.1 with a new key, valid now.
    pub fn server_certificate(&self) -> ServerCertificate {
        self.server_certificate_valid(Validity::Current)
    }

    /// A server certificate for `localhost` and 127.0.0.1 with a new key, valid as `validity` says.
    pub fn server_certificate_valid(&self, validity: Validity) -> ServerCertificate {
        let names = vec!["localhost".to_owned(), "127.0.0.1".to_owned()];
        let mut params = CertificateParams::new(names).expect("server certificate parameters");
        params.distinguished_name.push(DnType::CommonName, "localhost");
        let (from, to) = match validity {
            Validity::Current => (-1, 30),
            Validity::Expired => (-30, -1),
            Validity::NotYetValid => (1, 30),
        };
        valid(&mut params, from, to);
        let key = KeyPair::generate().expect("a server key");
        let cert = params.signed_by(&key, &self.issuer).expect("a server certificate");
        ServerCertificate { cert_pem: cert.pem(), key_pem: key.serialize_pem(), der: cert.der().to_vec() }
    }

    /// Opens a TLS connection to `address` as a client that trusts only this authority and
    /// expects the name `localhost`: the handshake's failure, or the connection.
    pub fn connect(&self, address: SocketAddr) -> Result<TlsConnection, std::io::Error> {
        let mut roots = rustls::RootCertStore::empty();
        roots.add(self.der()).map_err(std::io::Error::other)?;
        let config = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::aws_lc_rs::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .map_err(std::io::Error::other)?
        .with_root_certificates(roots)
        .with_no_client_auth();
        let name = ServerName::try_from("localhost").map_err(std::io::Error::other)?;
        let connection =
            rustls::ClientConnection::new(Arc::new(config), name).map_err(std::io::Error::other)?;
        let socket = TcpStream::connect(address)?;
        socket.set_read_timeout(Some(Duration::from_secs(10)))?;
        let mut stream = rustls::StreamOwned::new(connection, socket);
        while stream.conn.is_handshaking() {
            stream.conn.complete_io(&mut stream.sock)?;
        }
        Ok(TlsConnection { stream: BufReader::new(stream) })
    }
}

/// A client's TLS connection to a test server, which stays open between requests.
pub struct TlsConnection {
    stream: BufReader<rustls::StreamOwned<rustls::ClientConnection, TcpStream>>,
}

impl TlsConnection {
    /// The end-entity certificate the server presented, DER.
    pub fn peer_certificate(&self) -> Vec<u8> {
        let certificates = self.stream.get_ref().conn.peer_certificates().expect("the server's certificates");
        certificates.first().expect("an end-entity certificate").to_vec()
    }

    /// `GET path` on this connection, kept alive: the status code and the body.
    pub fn get(&mut self, path: &str) -> std::io::Result<(u16, String)> {
        let request = format!("GET {path} HTTP/1.1\r\nhost: localhost\r\n\r\n");
        self.stream.get_mut().write_all(request.as_bytes())?;
        self.stream.get_mut().flush()?;
        let mut status_line = String::new();
        self.stream.read_line(&mut status_line)?;
        let status = status_line
            .split(' ')
            .nth(1)
            .and_then(|code| code.parse().ok())
            .ok_or_else(|| std::io::Error::other(format!("not an HTTP status line: {status_line:?}")))?;
        let mut length = 0;
        loop {
            let mut line = String::new();
            self.stream.read_line(&mut line)?;
            let line = line.trim_end();
            if line.is_empty() {
                break;
            }
            if let Some((name, value)) = line.split_once(':')
                && name.eq_ignore_ascii_case("content-length")
            {
                length = value.trim().parse().map_err(std::io::Error::other)?;
            }
        }
        let mut body = vec![0; length];
        self.stream.read_exact(&mut body)?;
        Ok((status, String::from_utf8_lossy(&body).into_owned()))
    }
}
