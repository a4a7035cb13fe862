//! The data directory and settings of the commands that work on a platform's files directly
//! (participants, payers, notifications): the same layers as `ocpay serve`, so they use the
//! operator's configuration (SQLite settings, PIN hashing) rather than the defaults.

use std::path::PathBuf;

use ocpay_server::config::{Config, Overrides};
use ocpay_server::data_dir::DataDir;
use ocpay_store::sqlite::SqliteStore;

#[derive(clap::Args)]
pub(crate) struct DataArgs {
    /// The platform's data directory [default: ./ocpay-data].
    #[arg(long, env = "OCPAY_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// The platform's settings file (TOML), as given to `ocpay serve`.
    #[arg(long, env = "OCPAY_CONFIG")]
    config: Option<PathBuf>,
}

impl DataArgs {
    pub(crate) fn config(&self) -> anyhow::Result<Config> {
        let overrides = Overrides { data_dir: self.data_dir.clone(), ..Overrides::default() };
        Ok(Config::load(self.config.as_deref(), &overrides)?)
    }

    /// The settings, the data directory and its store.
    pub(crate) async fn open(&self) -> anyhow::Result<(Config, DataDir, SqliteStore)> {
        let config = self.config()?;
        let data_dir = DataDir::open(&config.data_dir)?;
        let store = data_dir.open_store(&config).await?;
        Ok((config, data_dir, store))
    }
}
