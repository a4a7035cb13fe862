//! The data directory: the SQLite database and the platform's private key.
//!
//! The platform key pair is created on first use, written with mode 0600 and published only
//! as its public half (`ocpay platform-key`). Creation is atomic: a second process starting at
//! the same moment reads the key the first one wrote instead of making a second key.

use std::fs;
use std::io::Write as _;
use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use ocpay_protocol::SigningKey;
use ocpay_store::sqlite::{SqliteSettings, SqliteStore};

use crate::config::Config;

const PLATFORM_KEY_FILE: &str = "platform-key.pem";
const DATABASE_FILE: &str = "ocpay.db";

/// The key version the platform signs with.
pub const PLATFORM_KEY_VERSION: u32 = 1;

pub struct DataDir {
    root: PathBuf,
}

impl DataDir {
    /// Opens the directory, creating it (mode 0700) when missing.
    pub fn open(root: &Path) -> anyhow::Result<DataDir> {
        if !root.exists() {
            fs::create_dir_all(root).with_context(|| format!("create data directory {}", root.display()))?;
            fs::set_permissions(root, fs::Permissions::from_mode(0o700))?;
        }
        Ok(DataDir { root: root.to_owned() })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn database_path(&self) -> PathBuf {
        self.root.join(DATABASE_FILE)
    }

    /// Opens the embedded store with the configuration's limits.
    pub async fn open_store(&self, config: &Config) -> anyhow::Result<SqliteStore> {
        let settings = SqliteSettings {
            path: self.database_path(),
            read_connections_max: config.sqlite_read_connections_max,
            write_batch_max: config.sqlite_write_batch_max,
            write_queue_max: config.sqlite_write_queue_max,
            busy_timeout: std::time::Duration::from_millis(config.sqlite_busy_timeout_ms),
            checkpoint_interval: std::time::Duration::from_millis(config.sqlite_checkpoint_interval_ms),
        };
        SqliteStore::open(&settings)
            .await
            .with_context(|| format!("open database {}", settings.path.display()))
    }

    /// The platform's signing key, created on first use.
    pub fn platform_key(&self) -> anyhow::Result<SigningKey> {
        let path = self.root.join(PLATFORM_KEY_FILE);
        if !path.exists() {
            self.create_platform_key(&path)?;
        }
        let mode = fs::metadata(&path)?.permissions().mode();
        if mode & 0o077 != 0 {
            tracing::warn!(path = %path.display(), mode = format!("{mode:o}"), "the platform key is readable by others; chmod 600 it");
        }
        let text = fs::read_to_string(&path).with_context(|| format!("read {}", path.display()))?;
        SigningKey::from_text(&text).with_context(|| format!("parse the platform key {}", path.display()))
    }

    fn create_platform_key(&self, path: &Path) -> anyhow::Result<()> {
        let key = SigningKey::generate()?;
        let pem = key.to_pkcs8_pem()?;
        let temporary = self.root.join(format!("{PLATFORM_KEY_FILE}.{}.tmp", std::process::id()));
        let mut file = fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(&temporary)?;
        file.write_all(pem.as_bytes())?;
        file.sync_all()?;
        // A hard link fails if the name exists: exactly one process's key wins.
        let linked = fs::hard_link(&temporary, path);
        fs::remove_file(&temporary)?;
        match linked {
            Ok(()) => {
                fs::File::open(&self.root)?.sync_all()?;
                tracing::info!(path = %path.display(), "created the platform key pair");
                Ok(())
            }
            Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
            Err(error) => Err(error).with_context(|| format!("write {}", path.display())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn platform_key_is_created_once_with_mode_0600() {
        let dir = tempfile::tempdir().unwrap();
        let data = DataDir::open(&dir.path().join("data")).unwrap();
        let first = data.platform_key().unwrap();
        let second = data.platform_key().unwrap();
        assert_eq!(first.verifying_key(), second.verifying_key());
        let mode = fs::metadata(data.root().join(PLATFORM_KEY_FILE)).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let dir_mode = fs::metadata(data.root()).unwrap().permissions().mode();
        assert_eq!(dir_mode & 0o777, 0o700);
    }
}
