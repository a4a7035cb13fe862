//! The data directory and settings of the commands that work on a platform's files directly
//! (participants, payers, notifications): the same layers as `ocpay serve`, so they use the
//! operator's configuration (SQLite settings, PIN hashing) rather than the defaults.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context as _;
use ocpay_server::config::{Config, Overrides};
use ocpay_server::data_dir::DataDir;
use ocpay_server::settings::Settings;
use ocpay_store::Store;
use ocpay_store::postgres::PostgresStore;

#[derive(clap::Args)]
pub(crate) struct DataArgs {
    /// The platform's data directory [default: ./ocpay-data].
    #[arg(long, env = "OCPAY_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// The platform's settings file (TOML), as given to `ocpay serve`.
    #[arg(long, env = "OCPAY_CONFIG")]
    config: Option<PathBuf>,
    /// The platform's PostgreSQL database, when it has one (postgres://user@host:port/db).
    #[arg(long, env = "OCPAY_DATABASE_URL")]
    database_url: Option<String>,
}

impl DataArgs {
    pub(crate) fn config(&self) -> anyhow::Result<Config> {
        let overrides = Overrides {
            data_dir: self.data_dir.clone(),
            database_url: self.database_url.clone(),
            ..Overrides::default()
        };
        Config::load(self.config.as_deref(), &overrides)
    }

    /// The data directory of a platform that exists: one that `ocpay serve` (or `ocpay
    /// migrate`) has run on. Anything else is refused rather than made into a new, empty
    /// platform that a running server knows nothing of.
    pub(crate) fn data_dir(&self, config: &Config) -> anyhow::Result<DataDir> {
        ensure_platform(&config.data_dir)?;
        DataDir::open(&config.data_dir)
    }

    /// The settings (resolved and checked), the data directory and its store.
    pub(crate) async fn open(&self) -> anyhow::Result<(Settings, DataDir, Arc<dyn Store>)> {
        let config = self.config()?;
        let settings = Settings::resolve(&config)?;
        let data_dir = self.data_dir(&config)?;
        let store = data_dir.open_store(&config).await?;
        Ok((settings, data_dir, store))
    }
}

/// Fails unless `root` holds a platform: its platform key (`serve` makes it on its first
/// start) or its SQLite database (`migrate` makes it).
fn ensure_platform(root: &Path) -> anyhow::Result<()> {
    let shown = std::path::absolute(root).unwrap_or_else(|_| root.to_owned());
    let entries = match std::fs::read_dir(root) {
        Ok(entries) => entries,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            anyhow::bail!("{}", no_platform(&shown, "does not exist"))
        }
        Err(error) => {
            return Err(error).with_context(|| format!("read the data directory {}", shown.display()));
        }
    };
    for entry in entries {
        let entry = entry.with_context(|| format!("read the data directory {}", shown.display()))?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name == "ocpay.db" || name.starts_with("platform-key") {
            return Ok(());
        }
    }
    anyhow::bail!("{}", no_platform(&shown, "holds no platform (no platform key, no database)"))
}

fn no_platform(root: &Path, what: &str) -> String {
    format!(
        "the data directory {} {what}: run `ocpay serve` once to create the platform there, \
         or pass --data-dir (or set OCPAY_DATA_DIR) naming the directory `ocpay serve` uses",
        root.display()
    )
}

/// `ocpay migrate`: brings the schema up to date and says from which version to which.
pub(crate) async fn migrate(args: DataArgs) -> anyhow::Result<()> {
    let config = args.config()?;
    let report = match ocpay_server::data_dir::postgres_settings(&config) {
        Some(settings) => {
            let (from, to) = PostgresStore::migrate(&settings).await?;
            serde_json::json!({ "database": "postgres", "schemaVersionBefore": from, "schemaVersion": to })
        }
        None => {
            let data_dir = DataDir::open(&config.data_dir)?;
            data_dir.open_store(&config).await?;
            let (main, participants) = ocpay_store::sqlite::SCHEMA_VERSIONS;
            serde_json::json!({
                "database": "sqlite",
                "path": data_dir.database_path(),
                "schemaVersion": { "main": main, "participants": participants },
            })
        }
    };
    crate::print_json(&report)
}
