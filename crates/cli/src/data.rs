//! The data directory and settings of the commands that work on a platform's files directly
//! (participants, payers, notifications): the same layers as `ocpay serve`, so they use the
//! operator's configuration (SQLite settings, PIN hashing) rather than the defaults.

use std::path::PathBuf;
use std::sync::Arc;

use ocpay_server::config::{Config, Overrides};
use ocpay_server::data_dir::DataDir;
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
        Ok(Config::load(self.config.as_deref(), &overrides)?)
    }

    /// The settings, the data directory and its store.
    pub(crate) async fn open(&self) -> anyhow::Result<(Config, DataDir, Arc<dyn Store>)> {
        let config = self.config()?;
        let data_dir = DataDir::open(&config.data_dir)?;
        let store = data_dir.open_store(&config).await?;
        Ok((config, data_dir, store))
    }
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
