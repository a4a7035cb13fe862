//! The listener and the limits around the SSH sessions: connections per IP address, sessions
//! per account, the time to log in, and the idle time; the stop that ends every session; and the
//! audit helper the sessions share.

use std::collections::HashMap;
use std::future::Future;
use std::hash::Hash;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use ocpay_core::ids::ClientId;
use ocpay_server::clock::Clock;
use ocpay_server::settings::SftpSettings;
use ocpay_store::{AuditEvent, Store, StoreError};
use russh::keys::PrivateKey;
use russh::server::Config;
use russh::{Disconnect, MethodKind, MethodSet, SshId};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::login::Connection;
use crate::tree::Tree;

/// What the SFTP server runs with.
pub struct SftpContext {
    pub store: Arc<dyn Store>,
    pub clock: Arc<dyn Clock>,
    pub settings: SftpSettings,
    /// `ocpay_settlement::reports_root(data_dir)`.
    pub reports_root: PathBuf,
    pub host_key: PrivateKey,
}

/// What every session of one server shares.
pub(crate) struct Shared {
    pub(crate) tree: Tree,
    pub(crate) settings: SftpSettings,
    pub(crate) sessions: Arc<Counter<ClientId>>,
}

impl Shared {
    pub(crate) fn store(&self) -> &dyn Store {
        &*self.tree.store
    }

    pub(crate) fn clock(&self) -> &dyn Clock {
        &*self.tree.clock
    }

    /// Appends one event to the audit trail: `login` acting, for `owner`'s files when they are
    /// another's (then `login` is the agent, as an ISV's API calls are recorded).
    pub(crate) async fn audit(
        &self,
        login: &ClientId,
        owner: &ClientId,
        api: &str,
        key: String,
        status: &str,
        code: &str,
    ) -> Result<(), StoreError> {
        let event = AuditEvent {
            at: self.clock().now(),
            client_id: login.clone(),
            key_version: None,
            agent: (owner != login).then(|| login.clone()),
            merchant: owner.clone(),
            api: api.to_owned(),
            idempotency_key: Some(key),
            result_status: status.to_owned(),
            result_code: code.to_owned(),
        };
        self.store().record_audit(&[event]).await
    }
}

/// Counts of open things by key, each held by a [`Slot`] that gives it back when dropped.
pub(crate) struct Counter<K: Eq + Hash + Clone> {
    counts: Mutex<HashMap<K, usize>>,
}

impl<K: Eq + Hash + Clone> Counter<K> {
    pub(crate) fn new() -> Arc<Counter<K>> {
        Arc::new(Counter { counts: Mutex::new(HashMap::new()) })
    }

    /// A slot for `key`, unless `max` are taken.
    pub(crate) fn take(self: &Arc<Self>, key: &K, max: usize) -> Option<Slot<K>> {
        let mut counts = self.counts.lock().unwrap_or_else(PoisonError::into_inner);
        let count = counts.entry(key.clone()).or_insert(0);
        if *count >= max {
            return None;
        }
        *count += 1;
        Some(Slot { counter: self.clone(), key: key.clone() })
    }
}

pub(crate) struct Slot<K: Eq + Hash + Clone> {
    counter: Arc<Counter<K>>,
    key: K,
}

impl<K: Eq + Hash + Clone> Drop for Slot<K> {
    fn drop(&mut self) {
        let mut counts = self.counter.counts.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(count) = counts.get_mut(&self.key) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                counts.remove(&self.key);
            }
        }
    }
}

/// How long a stopping server gives each session to end after telling its client so, before it
/// cuts the connection.
const STOP_GRACE: Duration = Duration::from_secs(2);

/// A connection that fails its reads once the login time is over and no login succeeded, so
/// that a client that connects and then says nothing (or never finishes logging in) is closed;
/// and fails its reads and writes once `cut` is ready (the server stopped, and its grace is
/// over), so that a session ends however its client behaves: the SSH session runs in a task of
/// russh's own, which nothing else can end.
struct Guarded<S> {
    inner: S,
    deadline: Pin<Box<tokio::time::Sleep>>,
    authenticated: Arc<AtomicBool>,
    cut: Pin<Box<dyn Future<Output = ()> + Send>>,
}

fn cut_error() -> io::Error {
    io::Error::new(io::ErrorKind::ConnectionAborted, "the SFTP server stopped")
}

impl<S: AsyncRead + Unpin> AsyncRead for Guarded<S> {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.cut.as_mut().poll(cx).is_ready() {
            return Poll::Ready(Err(cut_error()));
        }
        if !this.authenticated.load(Ordering::Acquire) && this.deadline.as_mut().poll(cx).is_ready() {
            return Poll::Ready(Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "no login within the login time",
            )));
        }
        Pin::new(&mut this.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Guarded<S> {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if this.cut.as_mut().poll(cx).is_ready() {
            return Poll::Ready(Err(cut_error()));
        }
        Pin::new(&mut this.inner).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.cut.as_mut().poll(cx).is_ready() {
            return Poll::Ready(Err(cut_error()));
        }
        Pin::new(&mut this.inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

/// A running SFTP server.
pub struct Running {
    address: SocketAddr,
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl Running {
    pub fn local_addr(&self) -> SocketAddr {
        self.address
    }

    /// Stops accepting and closes every session: each client is told the server is stopping
    /// (an SSH disconnect), and a connection still open two seconds later is cut.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
    }
}

/// SSH as the server speaks it: only `publickey` and `password` logins (never
/// keyboard-interactive), rejections that take a constant second, six attempts a connection,
/// and the idle limit. The identification names no library version.
fn ssh_config(settings: &SftpSettings, host_key: PrivateKey) -> Config {
    Config {
        server_id: SshId::Standard("SSH-2.0-ocpay_sftp".into()),
        methods: MethodSet::from(&[MethodKind::PublicKey, MethodKind::Password][..]),
        auth_rejection_time: Duration::from_secs(1),
        // OpenSSH probes with "none" first: no need to make that wait.
        auth_rejection_time_initial: Some(Duration::ZERO),
        keys: vec![host_key],
        max_auth_attempts: 6,
        inactivity_timeout: Some(settings.idle_timeout),
        nodelay: true,
        ..Config::default()
    }
}

/// Serves SFTP on `listener` until [`Running::stop`].
pub async fn start(context: SftpContext, listener: TcpListener) -> io::Result<Running> {
    let address = listener.local_addr()?;
    let SftpContext { store, clock, settings, reports_root, host_key } = context;
    let config = Arc::new(ssh_config(&settings, host_key));
    let shared = Arc::new(Shared {
        tree: Tree { reports_root, store, clock },
        settings: settings.clone(),
        sessions: Counter::new(),
    });
    let (stop, mut stopped) = watch::channel(false);
    let task = tokio::spawn(async move {
        let per_ip: Arc<Counter<IpAddr>> = Counter::new();
        let mut connections = JoinSet::new();
        tracing::info!(%address, "serving SFTP");
        loop {
            let accepted = tokio::select! {
                accepted = listener.accept() => accepted,
                _ = stopped.changed() => break,
                Some(_) = connections.join_next() => continue,
            };
            let (stream, peer) = match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    tracing::warn!(%error, "sftp accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            let Some(slot) = per_ip.take(&peer.ip().to_canonical(), settings.connections_per_ip_max) else {
                tracing::warn!(peer = %peer, "sftp connection refused: too many from this address");
                continue;
            };
            let _ = stream.set_nodelay(true);
            let authenticated = Arc::new(AtomicBool::new(false));
            let mut cut_at_stop = stopped.clone();
            let stream = Guarded {
                inner: stream,
                deadline: Box::pin(tokio::time::sleep(settings.auth_timeout)),
                authenticated: authenticated.clone(),
                cut: Box::pin(async move {
                    // A dropped `Running` stops the server too.
                    let _ = cut_at_stop.wait_for(|stopped| *stopped).await.map(drop);
                    tokio::time::sleep(STOP_GRACE).await;
                }),
            };
            let handler = Connection::new(shared.clone(), peer, authenticated);
            let config = config.clone();
            let mut stopping = stopped.clone();
            connections.spawn(async move {
                let _slot = slot;
                let _open = OpenConnection::counted();
                let started = tokio::select! {
                    started = russh::server::run_stream(config, stream, handler) => started,
                    // No session yet: dropping the stream closes the connection.
                    _ = async { stopping.wait_for(|stopped| *stopped).await.is_ok() } => return,
                };
                let session = match started {
                    Ok(session) => session,
                    Err(error) => {
                        tracing::debug!(peer = %peer, %error, "sftp connection failed");
                        return;
                    }
                };
                let handle = session.handle();
                let mut session = std::pin::pin!(session);
                let ended = tokio::select! {
                    ended = &mut session => ended,
                    _ = async { stopping.wait_for(|stopped| *stopped).await.is_ok() } => {
                        let _ = handle
                            .disconnect(Disconnect::ByApplication, "the server is stopping".into(), String::new())
                            .await;
                        session.await
                    }
                };
                if let Err(error) = ended {
                    tracing::debug!(peer = %peer, %error, "sftp session ended");
                }
            });
        }
        // Every session ends within the grace (its connection is cut then).
        let drained = async { while connections.join_next().await.is_some() {} };
        let _ = tokio::time::timeout(STOP_GRACE + Duration::from_secs(1), drained).await;
        connections.shutdown().await;
    });
    Ok(Running { address, stop, task })
}

/// Starts the SFTP server of a data directory as its settings say: the host key made on first
/// start, the files under `ocpay_settlement::reports_root`. `None` when it is turned off. An
/// address left at its default that cannot be bound (another server on the machine has it) is
/// logged and SFTP not served, so that it never stops the payments; one set on purpose must
/// bind.
pub async fn start_for_data_dir(
    settings: &SftpSettings,
    data_dir: &std::path::Path,
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
) -> anyhow::Result<Option<Running>> {
    use anyhow::Context as _;
    if !settings.enabled {
        return Ok(None);
    }
    let host_key = crate::host_key::load_or_create(data_dir)?;
    let listener = match TcpListener::bind(settings.listen).await {
        Ok(listener) => listener,
        Err(error) if !settings.listen_configured => {
            tracing::error!(address = %settings.listen, %error, "cannot bind the default SFTP address; serving without SFTP (set sftp_listen)");
            return Ok(None);
        }
        Err(error) => {
            return Err(error).with_context(|| format!("bind the SFTP address {}", settings.listen));
        }
    };
    let context = SftpContext {
        store,
        clock,
        settings: settings.clone(),
        reports_root: ocpay_settlement::reports_root(data_dir),
        host_key,
    };
    Ok(Some(start(context, listener).await?))
}

/// An open SFTP connection, counted in the `ocpay_sftp_sessions` gauge (through the `metrics`
/// facade: nothing is recorded unless the server installed a recorder) while it lives.
struct OpenConnection;

impl OpenConnection {
    fn counted() -> OpenConnection {
        metrics::gauge!("ocpay_sftp_sessions").increment(1.0);
        OpenConnection
    }
}

impl Drop for OpenConnection {
    fn drop(&mut self) {
        metrics::gauge!("ocpay_sftp_sessions").decrement(1.0);
    }
}
