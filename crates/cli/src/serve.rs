//! `ocpay serve`: the platform itself.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use ocpay_server::Application;
use ocpay_server::clock::SystemClock;
use ocpay_server::config::{Config, Overrides};
use ocpay_server::tls::Tls;

/// A line for whoever started the server: as it is with text logs, as a log line with JSON
/// logs (whose every line on stderr is JSON).
macro_rules! announce {
    ($json:expr, $($line:tt)*) => {
        if $json { tracing::info!($($line)*) } else { eprintln!($($line)*) }
    };
}

#[derive(clap::Args)]
pub(crate) struct ServeArgs {
    /// Where the database and the platform key live [default: ./ocpay-data].
    #[arg(long, env = "OCPAY_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// Address to listen on [default: 127.0.0.1:8080].
    #[arg(long, env = "OCPAY_LISTEN")]
    listen: Option<SocketAddr>,
    /// Base URL that payers and merchants reach this server at [default: http://<listen>].
    #[arg(long, env = "OCPAY_PUBLIC_URL")]
    public_url: Option<String>,
    /// A TOML file of settings (see the README for every key).
    #[arg(long, env = "OCPAY_CONFIG")]
    config: Option<PathBuf>,
    /// A PostgreSQL database shared with other servers (postgres://user@host:port/db)
    /// [default: embedded SQLite files in the data directory].
    #[arg(long, env = "OCPAY_DATABASE_URL")]
    database_url: Option<String>,
}

pub(crate) async fn run(args: ServeArgs) -> anyhow::Result<()> {
    let overrides = Overrides {
        data_dir: args.data_dir,
        listen: args.listen,
        public_url: args.public_url,
        database_url: args.database_url,
    };
    let config = Config::load(args.config.as_deref(), &overrides)?;
    let log_format = ocpay_server::settings::LogFormat::of(&config)?;
    crate::init_logging(log_format, "info");
    let json_logs = log_format == ocpay_server::settings::LogFormat::Json;
    let data_dir = config.data_dir.clone();
    let app = Application::build(config, Arc::new(SystemClock)).await?.with_pages(ocpay_web::router);
    // SIGHUP reloads the listener's certificate; without TLS it is ignored, not fatal.
    let hangup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())?;
    tokio::spawn(reload_on_hangup(hangup, app.tls()));
    let scheme = if app.tls().is_some() { "https" } else { "http" };
    announce!(
        json_logs,
        "ocpay is serving on {scheme}://{} (public URL {})",
        app.local_addr(),
        app.public_url()
    );
    // The SFTP server of reconciliation files runs beside the HTTP server, on the same store
    // and clock, and stops with it.
    let state = app.state();
    let sftp = ocpay_sftp::start_for_data_dir(
        &state.settings.sftp,
        &data_dir,
        state.store.clone(),
        state.clock.clone(),
    )
    .await?;
    if let Some(sftp) = &sftp {
        announce!(json_logs, "ocpay is serving SFTP on {}", sftp.local_addr());
    }
    let served = app.run(shutdown_signal()).await;
    if let Some(sftp) = sftp {
        sftp.stop().await;
    }
    served
}

/// Reloads the TLS certificate and key from their files on each SIGHUP (`kill -HUP`). The
/// reload logs its outcome; a pair that fails its checks leaves the old one served.
async fn reload_on_hangup(mut hangup: tokio::signal::unix::Signal, tls: Option<Arc<Tls>>) {
    while hangup.recv().await.is_some() {
        match &tls {
            Some(tls) => {
                let tls = tls.clone();
                let _ = tokio::task::spawn_blocking(move || tls.reload()).await;
            }
            None => tracing::info!("SIGHUP: no TLS certificate to reload"),
        }
    }
}

/// Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {},
        () = terminate => {},
    }
}
