//! The data directory: the SQLite database and the platform's private key.
//!
//! The platform key pair is created on first use, written with mode 0600 and published only
//! as its public half (`ocpay platform-key`). Creation is atomic: a second process starting at
//! the same moment reads the key the first one wrote instead of making a second key.

use std::fs;
use std::io::Write as _;
use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use anyhow::Context as _;
use ocpay_protocol::SigningKey;
use ocpay_store::postgres::{PostgresSettings, PostgresStore};
use ocpay_store::sql::StatementFaults;
use ocpay_store::sqlite::{SqliteSettings, SqliteStore};
use ocpay_store::{Secret, Store};

use crate::clock::Clock;
use crate::config::Config;

const PLATFORM_KEY_FILE: &str = "platform-key.pem";
const ADMIN_TOKEN_FILE: &str = "admin-token";
const DATABASE_FILE: &str = "ocpay.db";

/// The platform's key pairs: the version the data directory records as signing
/// (`platform-key-signing`) signs every response and notification, and every version not
/// retired stays published, so that messages signed before a switch still verify and clients
/// can move to a new key during the overlap.
pub struct PlatformKeys {
    pub signing: SigningKey,
    pub version: u32,
    /// Every published version, oldest first (the signing one included).
    pub published: Vec<(u32, ocpay_protocol::VerifyingKey)>,
}

impl PlatformKeys {
    /// The published keys as JSON: what `/.well-known/ocpay/platform-keys` serves.
    pub fn published_json(
        published: &[(u32, ocpay_protocol::VerifyingKey)],
        signing: u32,
    ) -> serde_json::Value {
        let keys: Vec<_> = published
            .iter()
            .map(|(version, key)| {
                serde_json::json!({ "keyVersion": version, "signing": *version == signing, "publicKey": key.to_pem() })
            })
            .collect();
        serde_json::json!({ "keys": keys })
    }
}

/// The platform keys as the data directory held them at the last look, shared by the gateway
/// (which signs answers and publishes the keys) and the notifier (which signs notifications).
///
/// The directory is looked at again at most once a second, so that `ocpay platform-key
/// --activate` reaches every server within a second without a restart, and a server always
/// signs with the key it publishes as signing. A look costs two `stat`s: the keys are read and
/// parsed again only when the directory or the signing record changed since the last reading
/// (every change the `platform-key` commands make renames a file into or out of the directory).
pub struct PlatformKeySource {
    root: PathBuf,
    clock: Arc<dyn Clock>,
    view: Mutex<PlatformKeyView>,
}

/// The platform keys of one reading of the data directory, when it was made, and the state of
/// the directory it was made from.
struct PlatformKeyView {
    read_at: jiff::Timestamp,
    stamp: Option<DirectoryStamp>,
    keys: PlatformKeys,
}

/// When the data directory and its signing record last changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct DirectoryStamp {
    directory: std::time::SystemTime,
    signing: Option<std::time::SystemTime>,
}

impl DirectoryStamp {
    /// The stamp of the directory at `root`; `None` (read again next time) when it cannot be
    /// read or changed in the last two seconds, since a file system with coarse timestamps could
    /// give a later change the same one.
    fn of(root: &Path, now: jiff::Timestamp) -> Option<DirectoryStamp> {
        let modified = |path: &Path| fs::metadata(path).and_then(|metadata| metadata.modified()).ok();
        let stamp =
            DirectoryStamp { directory: modified(root)?, signing: modified(&root.join(SIGNING_FILE)) };
        let settled = |time: std::time::SystemTime| {
            jiff::Timestamp::try_from(time)
                .is_ok_and(|changed| now.duration_since(changed) > jiff::SignedDuration::from_secs(2))
        };
        (settled(stamp.directory) && stamp.signing.is_none_or(settled)).then_some(stamp)
    }
}

impl PlatformKeySource {
    /// Starts from `keys`, read from the directory at `root` just now.
    pub fn new(root: PathBuf, clock: Arc<dyn Clock>, keys: PlatformKeys) -> PlatformKeySource {
        let stamp = DirectoryStamp::of(&root, clock.now());
        let view = Mutex::new(PlatformKeyView { read_at: clock.now(), stamp, keys });
        PlatformKeySource { root, clock, view }
    }

    /// The platform key that signs every response and notification now, with its version: the
    /// one the data directory records as signing.
    pub fn signer(&self) -> (u32, SigningKey) {
        let view = self.now();
        (view.keys.version, view.keys.signing.clone())
    }

    /// The published platform keys as `/.well-known/ocpay/platform-keys` serves them, from the
    /// same reading of the directory as [`PlatformKeySource::signer`]: a rotation is published
    /// within a second, and `signing` marks the version this server signs with.
    pub fn published(&self) -> serde_json::Value {
        let view = self.now();
        PlatformKeys::published_json(&view.keys.published, view.keys.version)
    }

    /// The platform keys, read again from the data directory when the last reading is a second
    /// old. The reading happens outside the lock, so signers wait only for a look at the clock.
    fn now(&self) -> MutexGuard<'_, PlatformKeyView> {
        let lock = || self.view.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let now = self.clock.now();
        let last_stamp = {
            let mut view = lock();
            if now.duration_since(view.read_at) < jiff::SignedDuration::from_secs(1) {
                return view;
            }
            view.read_at = now;
            view.stamp
        };
        let stamp = DirectoryStamp::of(&self.root, now);
        if stamp.is_some() && stamp == last_stamp {
            return lock();
        }
        match DataDir::open(&self.root).and_then(|dir| dir.platform_keys()) {
            Ok(keys) => {
                let mut view = lock();
                if keys.version != view.keys.version {
                    tracing::info!(
                        from = view.keys.version,
                        to = keys.version,
                        "the platform signing key changed"
                    );
                }
                view.keys = keys;
                view.stamp = stamp;
                view
            }
            Err(error) => {
                tracing::warn!(%error, "reading the platform keys failed; keeping the last ones read");
                lock()
            }
        }
    }
}

/// The file of a platform key version: version 1 keeps its original name.
fn platform_key_file(version: u32) -> String {
    if version == 1 { PLATFORM_KEY_FILE.to_owned() } else { format!("platform-key-v{version}.pem") }
}

const RETIRED_SUFFIX: &str = ".retired";

/// Records the platform key version that signs. Without it (a directory from before it
/// existed), the newest version signs, as servers then chose at start.
const SIGNING_FILE: &str = "platform-key-signing";

pub struct DataDir {
    root: PathBuf,
}

impl DataDir {
    /// Opens the directory, creating it (mode 0700) when missing.
    pub fn open(root: &Path) -> anyhow::Result<DataDir> {
        if !root.exists() {
            fs::create_dir_all(root).with_context(|| format!("create data directory {}", root.display()))?;
            fs::set_permissions(root, fs::Permissions::from_mode(0o700))
                .with_context(|| format!("make data directory {} private", root.display()))?;
        }
        Ok(DataDir { root: root.to_owned() })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn database_path(&self) -> PathBuf {
        self.root.join(DATABASE_FILE)
    }

    /// Opens the store the configuration names, PostgreSQL or the embedded SQLite files, with
    /// the configuration's limits, and applies its pending migrations.
    pub async fn open_store(&self, config: &Config) -> anyhow::Result<Arc<dyn Store>> {
        self.open_store_with_faults(config, None).await
    }

    /// Creates a participant in the store `config` names, without a server running: how the
    /// benchmarks and the command-line tests set up their merchant.
    pub async fn create_participant(
        &self,
        config: &Config,
        new: crate::service::participants::NewParticipant,
    ) -> anyhow::Result<ocpay_core::participant::Participant> {
        let store = self.open_store(config).await?;
        let settings = crate::settings::Settings::resolve(config)?;
        Ok(crate::service::participants::create(&*store, &settings.notify, jiff::Timestamp::now(), new)
            .await?)
    }

    /// As [`DataDir::open_store`], with write statements that fail when `faults` says so
    /// (tests only; see [`StatementFaults`]).
    pub async fn open_store_with_faults(
        &self,
        config: &Config,
        faults: Option<Arc<StatementFaults>>,
    ) -> anyhow::Result<Arc<dyn Store>> {
        if let Some(settings) = postgres_settings(config) {
            let store = PostgresStore::open(&settings)
                .await
                .context("open the PostgreSQL database")?
                .with_wallet_limit(config.wallet_limit()?)
                .with_fee_rules(fee_rules(config)?);
            return Ok(match faults {
                Some(faults) => Arc::new(store.with_statement_faults(faults)),
                None => Arc::new(store),
            });
        }
        let settings = SqliteSettings {
            path: self.database_path(),
            read_connections_max: config.sqlite_read_connections_max,
            write_batch_max: config.sqlite_write_batch_max,
            write_queue_max: config.sqlite_write_queue_max,
            write_gather_yields: config.sqlite_write_gather_yields,
            busy_timeout: std::time::Duration::from_millis(config.sqlite_busy_timeout_ms),
            checkpoint_interval: std::time::Duration::from_millis(config.sqlite_checkpoint_interval_ms),
        };
        let store = SqliteStore::open(&settings)
            .await
            .with_context(|| format!("open database {}", settings.path.display()))?
            .with_wallet_limit(config.wallet_limit()?)
            .with_fee_rules(fee_rules(config)?);
        Ok(match faults {
            Some(faults) => Arc::new(store.with_statement_faults(faults)),
            None => Arc::new(store),
        })
    }

    /// The platform's signing key, created on first use.
    pub fn platform_key(&self) -> anyhow::Result<SigningKey> {
        Ok(self.platform_keys()?.signing)
    }

    /// Every platform key version that is not retired, and the one that signs; version 1 is
    /// created on first use.
    pub fn platform_keys(&self) -> anyhow::Result<PlatformKeys> {
        let retired_first = self.root.join(format!("{PLATFORM_KEY_FILE}{RETIRED_SUFFIX}"));
        if self.newest_platform_key_version()? == 1 && !retired_first.exists() {
            self.secret(PLATFORM_KEY_FILE, || Ok(SigningKey::generate()?.to_pkcs8_pem()?))?;
        }
        let mut keys = Vec::new();
        for version in 1..=self.newest_platform_key_version()? {
            let name = platform_key_file(version);
            if !self.root.join(&name).exists() {
                continue;
            }
            let text = self.secret(&name, || anyhow::bail!("{name} vanished"))?;
            let key =
                SigningKey::from_text(&text).with_context(|| format!("parse the platform key {name}"))?;
            keys.push((version, key));
        }
        let published = keys.iter().map(|(version, key)| (*version, key.verifying_key())).collect();
        let (version, signing) = match self.recorded_signing_version()? {
            Some(recorded) => keys.into_iter().find(|(version, _)| *version == recorded).with_context(|| {
                format!(
                    "{SIGNING_FILE} names platform key version {recorded}, whose file {} is missing or retired",
                    platform_key_file(recorded)
                )
            })?,
            None => keys.pop().context("every platform key is retired")?,
        };
        Ok(PlatformKeys { signing, version, published })
    }

    /// The version `platform-key-signing` names, if the file exists.
    fn recorded_signing_version(&self) -> anyhow::Result<Option<u32>> {
        let path = self.root.join(SIGNING_FILE);
        let text = match fs::read_to_string(&path) {
            Ok(text) => text,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(error) => return Err(error).with_context(|| format!("read {}", path.display())),
        };
        let version = text.trim().parse().ok().filter(|version| *version > 0).with_context(|| {
            format!("{} must hold a platform key version, not {:?}", path.display(), text.trim())
        })?;
        Ok(Some(version))
    }

    /// Records `version` as the signing one: written whole and renamed into place, so that a
    /// server reading at the same moment sees the old version or the new, never a torn file.
    fn record_signing_version(&self, version: u32) -> anyhow::Result<()> {
        let path = self.root.join(SIGNING_FILE);
        let temporary = self.root.join(format!("{SIGNING_FILE}.{}.tmp", std::process::id()));
        let write = || format!("write {}", temporary.display());
        let mut file = fs::File::create(&temporary).with_context(write)?;
        file.write_all(format!("{version}\n").as_bytes()).with_context(write)?;
        file.sync_all().with_context(write)?;
        fs::rename(&temporary, &path).with_context(|| format!("write {}", path.display()))?;
        fs::File::open(&self.root)?.sync_all()?;
        Ok(())
    }

    /// The highest platform key version ever made, retired ones included.
    fn newest_platform_key_version(&self) -> anyhow::Result<u32> {
        let mut newest = 1;
        let read = || format!("read data directory {}", self.root.display());
        for entry in fs::read_dir(&self.root).with_context(read)? {
            let name = entry.with_context(read)?.file_name();
            let name = name.to_string_lossy();
            let name = name.strip_suffix(RETIRED_SUFFIX).unwrap_or(&name);
            if let Some(version) =
                name.strip_prefix("platform-key-v").and_then(|rest| rest.strip_suffix(".pem"))
            {
                newest = newest.max(version.parse().unwrap_or(0));
            }
        }
        Ok(newest)
    }

    /// Makes a new platform key version, published at once but not signing: the version that
    /// signed goes on signing until [`DataDir::activate_platform_key`] says otherwise. Returns
    /// the new version.
    pub fn rotate_platform_key(&self) -> anyhow::Result<u32> {
        let keys = self.platform_keys()?;
        if self.recorded_signing_version()?.is_none() {
            // Until now the newest signed by default: record it, or the new one would sign.
            self.record_signing_version(keys.version)?;
        }
        let version = self.newest_platform_key_version()? + 1;
        self.secret(&platform_key_file(version), || Ok(SigningKey::generate()?.to_pkcs8_pem()?))?;
        Ok(version)
    }

    /// Makes a published version the signing one. Every server on this directory takes it up
    /// within a second, without a restart (see [`PlatformKeySource`]).
    pub fn activate_platform_key(&self, version: u32) -> anyhow::Result<()> {
        let keys = self.platform_keys()?;
        if !keys.published.iter().any(|(published, _)| *published == version) {
            anyhow::bail!("no published platform key version {version}: make one with --rotate");
        }
        self.record_signing_version(version)
    }

    /// Stops publishing a platform key version that no longer signs (its file is kept,
    /// renamed). The signing version cannot be retired: servers sign with it, and what they
    /// sign must stay verifiable.
    pub fn retire_platform_key(&self, version: u32) -> anyhow::Result<()> {
        let keys = self.platform_keys()?;
        if version == keys.version {
            anyhow::bail!(
                "platform key version {version} is the signing version: servers sign every answer and \
                 notification with it, which nobody could verify once it is retired; make another \
                 version sign first (--activate), then retire this one"
            );
        }
        let name = platform_key_file(version);
        let path = self.root.join(&name);
        if !keys.published.iter().any(|(published, _)| *published == version) || !path.exists() {
            anyhow::bail!("no published platform key version {version}");
        }
        fs::rename(&path, self.root.join(format!("{name}{RETIRED_SUFFIX}")))
            .with_context(|| format!("rename {}", path.display()))?;
        Ok(())
    }

    /// The bearer token of the admin API, created on first use: 256 random bits.
    pub fn admin_token(&self) -> anyhow::Result<Secret> {
        let text = self.secret(ADMIN_TOKEN_FILE, || {
            let mut bytes = [0u8; 32];
            aws_lc_rs::rand::fill(&mut bytes).map_err(|_| anyhow::anyhow!("the system RNG failed"))?;
            Ok(base64::Engine::encode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, bytes) + "\n")
        })?;
        Ok(Secret::new(text.trim().to_owned()))
    }

    /// Reads a secret file, creating it with `generate` first when missing.
    fn secret(
        &self,
        name: &str,
        generate: impl FnOnce() -> anyhow::Result<String>,
    ) -> anyhow::Result<String> {
        let path = self.root.join(name);
        if !path.exists() {
            self.create_secret(&path, &generate()?)?;
        }
        let mode =
            fs::metadata(&path).with_context(|| format!("read {}", path.display()))?.permissions().mode();
        if mode & 0o077 != 0 {
            tracing::warn!(path = %path.display(), mode = format!("{mode:o}"), "a secret file is readable by others; chmod 600 it");
        }
        fs::read_to_string(&path).with_context(|| format!("read {}", path.display()))
    }

    /// Writes a secret with mode 0600 atomically: a second process starting at the same moment
    /// reads the first one's secret instead of making its own.
    fn create_secret(&self, path: &Path, contents: &str) -> anyhow::Result<()> {
        let name = path.file_name().and_then(|name| name.to_str()).unwrap_or("secret");
        let temporary = self.root.join(format!("{name}.{}.tmp", std::process::id()));
        let write = || format!("write {}", temporary.display());
        let mut file = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&temporary)
            .with_context(write)?;
        file.write_all(contents.as_bytes()).with_context(write)?;
        file.sync_all().with_context(write)?;
        // A hard link fails if the name exists: exactly one process's secret wins.
        let linked = fs::hard_link(&temporary, path);
        fs::remove_file(&temporary)?;
        match linked {
            Ok(()) => {
                fs::File::open(&self.root)?.sync_all()?;
                tracing::info!(path = %path.display(), "created a secret");
                Ok(())
            }
            Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
            Err(error) => Err(error).with_context(|| format!("write {}", path.display())),
        }
    }
}

/// The PostgreSQL settings of a configuration that names a database.
pub fn postgres_settings(config: &Config) -> Option<PostgresSettings> {
    let url = config.database_url.as_deref()?;
    Some(PostgresSettings {
        url: url.to_owned(),
        pool_max: config.postgres_pool_max,
        pool_wait: std::time::Duration::from_millis(config.postgres_pool_wait_ms),
        connect_timeout: std::time::Duration::from_millis(config.postgres_connect_timeout_ms),
        statement_timeout: std::time::Duration::from_millis(config.postgres_statement_timeout_ms),
        serialization_retries: config.postgres_serialization_retries,
        ca_file: config.postgres_ca_file.clone(),
    })
}

/// The configured fee rules, refused with the key that is wrong.
fn fee_rules(config: &Config) -> anyhow::Result<ocpay_core::fees::FeeRules> {
    config.fee_rules().map_err(|(key, reason)| anyhow::anyhow!("{key}: {reason}"))
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
        let token = data.admin_token().unwrap();
        assert_eq!(token.expose(), data.admin_token().unwrap().expose());
        assert!(token.expose().len() >= 43, "256 bits");
        let mode = fs::metadata(data.root().join(ADMIN_TOKEN_FILE)).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let dir_mode = fs::metadata(data.root()).unwrap().permissions().mode();
        assert_eq!(dir_mode & 0o777, 0o700);
    }

    #[test]
    fn platform_keys_rotate_and_retire() {
        let dir = tempfile::tempdir().unwrap();
        let data = DataDir::open(&dir.path().join("data")).unwrap();
        let first = data.platform_keys().unwrap();
        assert_eq!((first.version, first.published.len()), (1, 1));
        assert_eq!(data.rotate_platform_key().unwrap(), 2);
        let rotated = data.platform_keys().unwrap();
        assert_eq!(rotated.version, 1, "a new version is published but does not sign yet");
        assert_eq!(rotated.published.iter().map(|(v, _)| *v).collect::<Vec<_>>(), [1, 2]);
        assert_eq!(rotated.published[0].1, first.signing.verifying_key(), "the old key stays published");
        let refused = data.retire_platform_key(1).unwrap_err().to_string();
        assert!(refused.contains("signing version"), "{refused}");
        assert!(data.activate_platform_key(3).is_err(), "only a published version signs");
        data.activate_platform_key(2).unwrap();
        assert_eq!(data.platform_keys().unwrap().version, 2);
        assert!(data.retire_platform_key(2).is_err(), "the signing key cannot be retired");
        data.retire_platform_key(1).unwrap();
        assert!(data.retire_platform_key(1).is_err(), "retired once");
        let retired = data.platform_keys().unwrap();
        assert_eq!(retired.published.iter().map(|(v, _)| *v).collect::<Vec<_>>(), [2]);
        assert!(data.activate_platform_key(1).is_err(), "a retired version cannot sign again");
        assert_eq!(data.rotate_platform_key().unwrap(), 3, "versions are never reused");
        assert_eq!(data.platform_keys().unwrap().version, 2);
        let mode = fs::metadata(data.root().join("platform-key-v3.pem")).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    #[test]
    fn a_settled_directory_is_not_read_again_until_a_key_command_changes_it() {
        let dir = tempfile::tempdir().unwrap();
        let data = DataDir::open(&dir.path().join("data")).unwrap();
        let keys = data.platform_keys().unwrap();
        // Ten seconds on, by the source's clock: the directory has settled.
        let clock = Arc::new(crate::clock::ManualClock::new(
            jiff::Timestamp::now() + jiff::SignedDuration::from_secs(10),
        ));
        let source = PlatformKeySource::new(data.root().to_owned(), clock.clone(), keys);
        assert!(source.view.lock().unwrap().stamp.is_some(), "a settled directory has a stamp");
        let unchanged = source.view.lock().unwrap().stamp;
        clock.advance(jiff::SignedDuration::from_secs(2));
        assert_eq!(source.signer().0, 1);
        assert_eq!(source.view.lock().unwrap().stamp, unchanged, "nothing changed: nothing read");

        let version = data.rotate_platform_key().unwrap();
        data.activate_platform_key(version).unwrap();
        clock.advance(jiff::SignedDuration::from_secs(2));
        assert_eq!(source.signer().0, version, "an activation is seen at the next look");
    }

    #[test]
    fn a_directory_without_a_signing_record_keeps_signing_with_its_newest_version() {
        let dir = tempfile::tempdir().unwrap();
        let data = DataDir::open(&dir.path().join("data")).unwrap();
        data.platform_keys().unwrap();
        // A directory rotated before the record existed: its servers started on version 2.
        data.secret(&platform_key_file(2), || Ok(SigningKey::generate()?.to_pkcs8_pem()?)).unwrap();
        assert_eq!(data.platform_keys().unwrap().version, 2);
        assert_eq!(data.rotate_platform_key().unwrap(), 3);
        assert_eq!(data.platform_keys().unwrap().version, 2, "the rotation recorded what signed");
        fs::write(data.root().join(SIGNING_FILE), "two\n").unwrap();
        let error = data.platform_keys().err().unwrap().to_string();
        assert!(error.contains("platform-key-signing"), "{error}");
    }
}
