//! The running server: opens the data directory, binds the listener, serves HTTP with the
//! limits that keep slow or abusive clients from holding it, and runs the background work
//! (the notifier and the expiry job).
//!
//! `axum::serve` has no header-read timeout (a client trickling header bytes kept a
//! connection open for over a minute), so connections are served with hyper directly:
//! a header-read timeout (also the keep-alive idle limit), a request timeout around every
//! request, and a cap on open connections.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context as _;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use ocpay_store::sql::StatementFaults;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

use crate::clock::Clock;
use crate::config::Config;
use crate::data_dir::{DataDir, PlatformKeySource};
use crate::notify::Notifier;
use crate::rounds::Rounds;
use crate::service::Context;
use crate::settings::Settings;
use crate::state::{AppState, Parts};
use crate::tls::Tls;
use crate::{api_log, audit, batch_writer};

pub struct Application {
    listener: TcpListener,
    state: Arc<AppState>,
    /// The audit trail's queue, handed to its writer when the server runs.
    audit_queue: audit::Queue,
    /// The API log's queue (when it is kept), handed to its writer when the server runs.
    api_log_queue: Option<api_log::Queue>,
    notifier: Arc<Notifier>,
    /// Routes served beside the gateway's (the developer center), under its layers.
    pages: axum::Router<Arc<AppState>>,
    /// The metrics listener, when `metrics_listen` is set.
    metrics: Option<crate::metrics::Exporter>,
    /// HTTPS on the listener, when configured.
    tls: Option<Arc<Tls>>,
}

impl Application {
    /// Opens the data directory (creating the platform key, the admin token and the database
    /// on first start) and binds the listener. Nothing is served until [`Application::run`].
    pub async fn build(config: Config, clock: Arc<dyn Clock>) -> anyhow::Result<Application> {
        Application::build_with_faults(config, clock, None).await
    }

    /// As [`Application::build`], with the store's write statements failing when `faults`
    /// says so (tests only).
    pub async fn build_with_faults(
        config: Config,
        clock: Arc<dyn Clock>,
        faults: Option<Arc<StatementFaults>>,
    ) -> anyhow::Result<Application> {
        // An impossible setting stops the start before anything is made.
        let mut settings = Settings::resolve(&config)?;
        let tls = match &settings.http.tls {
            Some(files) => {
                let (tls, loaded) = Tls::load(files, settings.http.header_read_timeout)
                    .map_err(|error| anyhow::anyhow!("{error} (set in {})", config.source_of(error.key)))?;
                tracing::info!(subject = %loaded.subject, not_after = %loaded.not_after, "TLS certificate loaded");
                Some(Arc::new(tls))
            }
            None => None,
        };
        let data_dir = DataDir::open(&config.data_dir)?;
        let platform_keys = data_dir.platform_keys()?;
        let admin_token = data_dir.admin_token()?;
        let store = data_dir.open_store_with_faults(&config, faults).await?;
        // Claims of a previous run died with it; their notifications are due again.
        store.release_claims().await?;
        let listener =
            TcpListener::bind(config.listen).await.with_context(|| format!("bind {}", config.listen))?;
        let address = listener.local_addr()?;
        // From here on `listen` is the address bound (port 0 becomes the port picked), which
        // notifications must never reach.
        let mut config = config;
        config.listen = address;
        // Bound now, so that a metrics address that cannot be taken stops the start; from here on
        // `metrics_listen` is the address bound.
        let metrics = match settings.metrics_listen {
            Some(address) => Some(crate::metrics::Exporter::bind(address).await?),
            None => None,
        };
        config.metrics_listen = metrics.as_ref().map(crate::metrics::Exporter::local_addr).transpose()?;
        settings.notify.own_listeners = config.own_listeners();
        let public_url = config.public_url_or_default();
        let (audit, audit_queue) = audit::channel(settings.audit.queue_max);
        let (api_log, api_log_queue) = settings.api_log.as_ref().map(api_log::channel).unzip();
        let platform_keys =
            Arc::new(PlatformKeySource::new(config.data_dir.clone(), clock.clone(), platform_keys));
        let context = Arc::new(Context::new(store, clock, settings));
        let rounds = Arc::new(Rounds::default());
        let notifier = Arc::new(Notifier::new(context.clone(), platform_keys.clone(), rounds.clone())?);
        let parts = Parts {
            context,
            platform_keys,
            notifier: notifier.clone(),
            public_url,
            admin_token,
            rounds,
            audit,
            api_log,
        };
        let state = Arc::new(AppState::new(config, parts));
        Ok(Application {
            listener,
            state,
            audit_queue,
            api_log_queue,
            notifier,
            pages: axum::Router::new(),
            tls,
            metrics,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener.local_addr().expect("a bound listener has an address")
    }

    pub fn public_url(&self) -> &str {
        &self.state.public_url
    }

    pub fn state(&self) -> Arc<AppState> {
        self.state.clone()
    }

    /// The listener's TLS, when it speaks HTTPS: [`Tls::reload`] reloads its certificate.
    pub fn tls(&self) -> Option<Arc<Tls>> {
        self.tls.clone()
    }

    /// Serves `pages` too, beside the gateway, the payer's page and the admin API: how the
    /// developer center (a crate above this one) joins the server.
    pub fn with_pages(mut self, pages: impl FnOnce(&Arc<AppState>) -> axum::Router<Arc<AppState>>) -> Self {
        self.pages = self.pages.merge(pages(&self.state));
        self
    }

    /// Serves (and runs the notifier and the timer job) until `shutdown` completes, then
    /// stops accepting and lets the work in flight finish within the configured grace period.
    pub async fn run(self, shutdown: impl Future<Output = ()> + Send) -> anyhow::Result<()> {
        let address = self.local_addr();
        let Application { listener, state, audit_queue, api_log_queue, notifier, pages, tls, metrics } = self;
        let settings = &state.settings.http;
        let router = crate::api::router(state.clone(), pages);
        let (stop, stopped) = tokio::sync::watch::channel(false);
        if let Some(metrics) = metrics {
            tokio::spawn(metrics.run(state.clone(), stopped.clone()));
        }
        // The audit writer stops only after the last connection, so no request's event is lost.
        let (stop_audit, audit_stopped) = tokio::sync::watch::channel(false);
        let context = &state.context;
        let audit_settings = context.settings.audit.clone();
        let audit = tokio::spawn(batch_writer::run(
            audit::Writer(context.store.clone()),
            audit::batching(&audit_settings),
            audit_queue,
            audit_stopped.clone(),
        ));
        // The API log's writer stops with the audit writer's signal, after the last connection.
        let api_log = match (&context.settings.api_log, api_log_queue) {
            (Some(settings), Some(queue)) => Some(tokio::spawn(batch_writer::run(
                api_log::Writer::new(context.store.clone(), settings),
                api_log::batching(settings),
                queue,
                audit_stopped,
            ))),
            _ => None,
        };
        let background = [
            tokio::spawn(crate::notify::run(notifier.clone(), stopped.clone())),
            tokio::spawn(crate::jobs::timers(context.clone(), state.rounds.clone(), stopped.clone())),
            tokio::spawn(crate::jobs::retention(context.clone(), state.rounds.clone(), stopped.clone())),
            tokio::spawn(crate::jobs::settlement(
                context.clone(),
                ocpay_settlement::reports_root(&state.config.data_dir),
                state.rounds.clone(),
                stopped,
            )),
        ];
        let connections = Arc::new(Semaphore::new(settings.connections_max));
        let graceful = GracefulShutdown::new();
        let mut http = http1::Builder::new();
        http.timer(TokioTimer::new()).header_read_timeout(settings.header_read_timeout).keep_alive(true);
        tokio::pin!(shutdown);
        tracing::info!(address = %address, public_url = %state.public_url, "serving");
        loop {
            let permit = tokio::select! {
                permit = connections.clone().acquire_owned() => permit?,
                () = &mut shutdown => break,
            };
            let (stream, peer) = tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok(accepted) => accepted,
                    Err(error) => {
                        // Out of file descriptors, or a connection reset before accept: wait a
                        // moment rather than spin.
                        tracing::warn!(%error, "accept failed");
                        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                        continue;
                    }
                },
                () = &mut shutdown => break,
            };
            // Beyond its address's cap a connection is closed unread (crate::limits).
            let Some(slot) = state.limits.connection(peer.ip()) else { continue };
            let _ = stream.set_nodelay(true);
            let service = TowerToHyperService::new(crate::limits::with_peer(router.clone(), peer, slot));
            if let Some(tls) = &tls {
                // The handshake runs in the connection's task, not in the accept loop.
                let (tls, http, watcher) = (tls.clone(), http.clone(), graceful.watcher());
                tokio::spawn(async move {
                    if let Some(stream) = tls.accept(stream).await {
                        let _ = watcher.watch(http.serve_connection(TokioIo::new(stream), service)).await;
                    }
                    drop(permit);
                });
                continue;
            }
            let connection = graceful.watch(http.serve_connection(TokioIo::new(stream), service));
            tokio::spawn(async move {
                let _ = connection.await;
                drop(permit);
            });
        }
        drop(listener);
        tracing::info!("shutting down: waiting for the work in flight");
        let _ = stop.send(true);
        let stopping: Vec<_> = background.iter().map(tokio::task::JoinHandle::abort_handle).collect();
        let finished = async {
            graceful.shutdown().await;
            let _ = stop_audit.send(true);
            let _ = audit.await;
            if let Some(api_log) = api_log {
                let _ = api_log.await;
            }
            for task in background {
                let _ = task.await;
            }
        };
        if tokio::time::timeout(settings.shutdown_grace, finished).await.is_err() {
            tracing::warn!("work still in flight at the end of the grace period is stopped");
            stopping.iter().for_each(tokio::task::AbortHandle::abort);
        }
        // The notification attempts cut off are due again at once, not when their lease ends.
        match notifier.release_claims_in_flight().await {
            Ok(0) => {}
            Ok(released) => {
                tracing::info!(released, "released the claims of the notification attempts cut off")
            }
            Err(error) => {
                tracing::warn!(%error, "releasing the claims of the attempts cut off failed; they lapse")
            }
        }
        tracing::info!("stopped");
        Ok(())
    }
}
