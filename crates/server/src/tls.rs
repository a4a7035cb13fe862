//! HTTPS on the main listener (`tls_cert_file` and `tls_key_file`), with rustls.
//!
//! The certificate chain and its key are PEM files. They are checked at start: a file that
//! cannot be read or holds no certificate or key, a certificate that has expired or is not yet
//! valid, or a key that is not the certificate's stops the start, naming the setting and the
//! file. [`Tls::reload`] (`ocpay serve` calls it on SIGHUP) reads them again and, when the new
//! pair passes the same checks, swaps it in: new handshakes present the new certificate while
//! connections already open go on undisturbed. A pair that fails the checks is not used; the
//! old one stays.
//!
//! The handshake has the header-read timeout, so a client that connects and sends nothing
//! holds its connection slot no longer than one that sends no request.

use std::path::{Path, PathBuf};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::{Duration, SystemTime};

use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use tokio::net::TcpStream;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;
use x509_cert::der::Decode as _;

use crate::settings::TlsSettings;

/// The setting naming the certificate file.
const CERT_KEY: &str = "tls_cert_file";
/// The setting naming the key file.
const KEY_KEY: &str = "tls_key_file";

/// Why a certificate and key cannot be served: the setting, its file, and the reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{key} {}: {reason}", file.display())]
pub struct TlsError {
    /// `tls_cert_file` or `tls_key_file`.
    pub key: &'static str,
    pub file: PathBuf,
    pub reason: String,
}

/// What a loaded certificate says of itself, for the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Loaded {
    /// The end-entity certificate's subject.
    pub subject: String,
    pub not_after: jiff::Timestamp,
}

/// The TLS side of the listener: the current certificate and key, and the acceptor whose
/// handshakes present them.
pub struct Tls {
    settings: TlsSettings,
    provider: Arc<CryptoProvider>,
    current: Arc<Current>,
    acceptor: TlsAcceptor,
    handshake_timeout: Duration,
}

impl std::fmt::Debug for Tls {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.debug_struct("Tls").field("settings", &self.settings).finish_non_exhaustive()
    }
}

/// The pair new handshakes present, swapped whole by a reload.
#[derive(Debug)]
struct Current(RwLock<Arc<CertifiedKey>>);

impl Current {
    fn get(&self) -> Arc<CertifiedKey> {
        self.0.read().unwrap_or_else(PoisonError::into_inner).clone()
    }

    fn set(&self, key: Arc<CertifiedKey>) {
        *self.0.write().unwrap_or_else(PoisonError::into_inner) = key;
    }
}

impl ResolvesServerCert for Current {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.get())
    }
}

impl Tls {
    /// Loads and checks the pair `settings` names; handshakes time out after `handshake_timeout`.
    pub fn load(settings: &TlsSettings, handshake_timeout: Duration) -> Result<(Tls, Loaded), TlsError> {
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let (key, loaded) = load_pair(settings, &provider, SystemTime::now())?;
        let current = Arc::new(Current(RwLock::new(key)));
        let mut config = rustls::ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|error| TlsError {
                key: CERT_KEY,
                file: settings.cert_file.clone(),
                reason: format!("no TLS version to serve it with: {error}"),
            })?
            .with_no_client_auth()
            .with_cert_resolver(current.clone());
        // The listener speaks HTTP/1.1 only; a client that offers ALPN learns it in the handshake.
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        let acceptor = TlsAcceptor::from(Arc::new(config));
        let tls = Tls { settings: settings.clone(), provider, current, acceptor, handshake_timeout };
        Ok((tls, loaded))
    }

    /// Reads the certificate and key files again and, when they pass the checks of the start,
    /// serves them to new handshakes; otherwise keeps the pair being served. Logs either way.
    pub fn reload(&self) -> Result<Loaded, TlsError> {
        match load_pair(&self.settings, &self.provider, SystemTime::now()) {
            Ok((key, loaded)) => {
                self.current.set(key);
                tracing::info!(
                    subject = %loaded.subject,
                    not_after = %loaded.not_after,
                    "TLS certificate reloaded: new connections get it"
                );
                Ok(loaded)
            }
            Err(error) => {
                tracing::error!(%error, "TLS certificate not reloaded: the one loaded before is still served");
                Err(error)
            }
        }
    }

    /// The handshake of an accepted connection, within the handshake timeout; `None` (logged
    /// at debug level) when it fails or times out.
    pub(crate) async fn accept(&self, stream: TcpStream) -> Option<TlsStream<TcpStream>> {
        match tokio::time::timeout(self.handshake_timeout, self.acceptor.accept(stream)).await {
            Ok(Ok(stream)) => Some(stream),
            Ok(Err(error)) => {
                tracing::debug!(%error, "TLS handshake failed");
                None
            }
            Err(_) => {
                tracing::debug!("TLS handshake timed out");
                None
            }
        }
    }
}

/// Reads `settings`' files and checks the pair at `now`.
fn load_pair(
    settings: &TlsSettings,
    provider: &CryptoProvider,
    now: SystemTime,
) -> Result<(Arc<CertifiedKey>, Loaded), TlsError> {
    let cert_error = |reason: String| TlsError { key: CERT_KEY, file: settings.cert_file.clone(), reason };
    let key_error = |reason: String| TlsError { key: KEY_KEY, file: settings.key_file.clone(), reason };

    let pem = read(&settings.cert_file).map_err(cert_error)?;
    let chain = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|error| cert_error(format!("is not a PEM certificate chain: {error}")))?;
    let Some(end_entity) = chain.first() else {
        return Err(cert_error("holds no certificate (a PEM \"BEGIN CERTIFICATE\" block)".into()));
    };
    let loaded = check_validity(end_entity, now).map_err(cert_error)?;

    let pem = read(&settings.key_file).map_err(key_error)?;
    let key = PrivateKeyDer::from_pem_slice(&pem).map_err(|error| {
        key_error(format!("holds no private key in PEM (PKCS#8, PKCS#1 or SEC1): {error}"))
    })?;
    let signing_key = provider
        .key_provider
        .load_private_key(key)
        .map_err(|error| key_error(format!("is not a usable private key: {error}")))?;
    let certified = CertifiedKey::new(chain, signing_key);
    match certified.keys_match() {
        Ok(()) => {}
        Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::KeyMismatch)) => {
            return Err(key_error(format!(
                "is not the key of the certificate in {}",
                settings.cert_file.display()
            )));
        }
        // rustls cannot tell for some key types; the handshake would fail, not mislead.
        Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::Unknown)) => {}
        Err(error) => return Err(cert_error(format!("cannot be checked against its key: {error}"))),
    }
    Ok((Arc::new(certified), loaded))
}

fn read(file: &Path) -> Result<Vec<u8>, String> {
    std::fs::read(file).map_err(|error| format!("cannot be read: {error}"))
}

/// The end-entity certificate's subject and end of validity, or why it is not valid at `now`.
fn check_validity(certificate: &CertificateDer<'_>, now: SystemTime) -> Result<Loaded, String> {
    let parsed = x509_cert::Certificate::from_der(certificate)
        .map_err(|error| format!("its first certificate cannot be parsed: {error}"))?;
    let validity = &parsed.tbs_certificate.validity;
    let timestamp = |time: &x509_cert::time::Time| {
        jiff::Timestamp::try_from(time.to_system_time()).unwrap_or(jiff::Timestamp::MAX)
    };
    let (not_before, not_after) = (timestamp(&validity.not_before), timestamp(&validity.not_after));
    if validity.not_after.to_system_time() < now {
        return Err(format!("the certificate expired at {not_after}"));
    }
    if validity.not_before.to_system_time() > now {
        return Err(format!("the certificate is not valid before {not_before}"));
    }
    Ok(Loaded { subject: parsed.tbs_certificate.subject.to_string(), not_after })
}
