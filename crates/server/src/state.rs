//! What every request handler shares: configuration, store, clock, keys, rates and the
//! notifier's handles.

use std::sync::{Arc, Mutex};

use ocpay_core::fx::Rate;
use ocpay_core::money::Currency;
use ocpay_core::participant::Environment;
use ocpay_protocol::{SignatureError, SigningKey, VerifyingKey};
use ocpay_store::{Secret, Store};

use crate::clock::Clock;
use crate::config::Config;
use crate::data_dir::PlatformKeys;
use crate::notify;
use crate::settings::Settings;

pub struct AppState {
    /// What the configuration said, as written; code reads [`AppState::settings`].
    pub config: Config,
    /// The configuration resolved and checked once, at start.
    pub settings: Settings,
    pub store: Arc<dyn Store>,
    pub clock: Arc<dyn Clock>,
    /// The platform keys as the data directory held them at the last look (see
    /// [`AppState::platform_signer`]).
    platform_keys: Mutex<PlatformKeyView>,
    /// Base URL without a trailing slash; order codes point under it.
    pub public_url: String,
    /// Bearer token of the admin API.
    pub(crate) admin_token: Secret,
    pub(crate) keys: KeyCache,
    pub(crate) notify_clients: notify::Clients,
    /// What a PIN is checked against when the payer does not exist, so that checking takes as
    /// long either way.
    pub(crate) dummy_pin_hash: String,
    /// Finished rounds of the background loops.
    pub rounds: crate::rounds::Rounds,
    /// Where the gateway queues audit events.
    pub(crate) audit: crate::audit::Sink,
    /// Wakes the notifier when a state change queued a notification.
    pub notify_wake: notify::Wake,
}

/// What an [`AppState`] is made of, besides its configuration.
pub struct Parts {
    /// The configuration, resolved.
    pub settings: Settings,
    pub store: Arc<dyn Store>,
    pub clock: Arc<dyn Clock>,
    pub platform_keys: PlatformKeys,
    pub public_url: String,
    pub admin_token: Secret,
}

impl AppState {
    /// Builds the notifier's HTTP clients.
    pub fn new(config: Config, parts: Parts) -> anyhow::Result<AppState> {
        let settings = parts.settings;
        let notify_clients = notify::Clients::new(&settings.notify)?;
        let started = parts.clock.now();
        Ok(AppState {
            keys: KeyCache::new(settings.key_cache_entries_max),
            notify_clients,
            dummy_pin_hash: crate::pin::unmatchable_hash(settings.pin.hash_iterations),
            notify_wake: notify::Wake::default(),
            rounds: crate::rounds::Rounds::default(),
            audit: crate::audit::Sink::new(settings.audit.queue_max),
            settings,
            store: parts.store,
            clock: parts.clock,
            platform_keys: Mutex::new(PlatformKeyView { read_at: started, keys: parts.platform_keys }),
            public_url: parts.public_url.trim_end_matches('/').to_owned(),
            admin_token: parts.admin_token,
            config,
        })
    }

    /// The platform key that signs every response and notification now, with its version: the
    /// one the data directory records as signing. The directory is read again at most once a
    /// second, so that `ocpay platform-key --activate` reaches every server within a second
    /// without a restart, and a server always signs with the key it publishes as signing.
    pub fn platform_signer(&self) -> (u32, SigningKey) {
        let view = self.platform_keys_now();
        (view.keys.version, view.keys.signing.clone())
    }

    /// The published platform keys as `/.well-known/ocpay/platform-keys` serves them, from the
    /// same reading of the directory as [`AppState::platform_signer`]: a rotation is published
    /// within a second, and `signing` marks the version this server signs with.
    pub fn published_platform_keys(&self) -> serde_json::Value {
        let view = self.platform_keys_now();
        PlatformKeys::published_json(&view.keys.published, view.keys.version)
    }

    /// The platform keys, read again from the data directory when the last reading is a second
    /// old. The reading happens outside the lock, so signers wait only for a look at the clock.
    fn platform_keys_now(&self) -> std::sync::MutexGuard<'_, PlatformKeyView> {
        let lock = || self.platform_keys.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let now = self.clock.now();
        let due = {
            let mut view = lock();
            let due = now.duration_since(view.read_at) >= jiff::SignedDuration::from_secs(1);
            if due {
                view.read_at = now;
            }
            due
        };
        if due {
            match crate::data_dir::DataDir::open(&self.config.data_dir).and_then(|dir| dir.platform_keys()) {
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
                    return view;
                }
                Err(error) => {
                    tracing::warn!(%error, "reading the platform keys failed; keeping the last ones read")
                }
            }
        }
        lock()
    }

    /// The rate configured for `environment`'s payers from one currency to another, if any.
    pub(crate) fn rate(&self, environment: Environment, from: Currency, to: Currency) -> Option<Rate> {
        self.settings
            .rates(environment)
            .iter()
            .copied()
            .find(|rate| rate.base() == from && rate.quote() == to)
    }
}

/// The platform keys of one reading of the data directory, and when it was made.
struct PlatformKeyView {
    read_at: jiff::Timestamp,
    keys: PlatformKeys,
}

/// Parsed participant public keys, by their DER bytes.
///
/// Which key a client may use is read from the store on every request, so a revoked key stops
/// working at once; only the parsing (which costs more than a verification) is cached, for at
/// most `key_cache_entries_max` keys, the ones least used going first.
pub(crate) struct KeyCache(quick_cache::sync::Cache<Vec<u8>, VerifyingKey>);

impl KeyCache {
    fn new(entries_max: usize) -> KeyCache {
        KeyCache(quick_cache::sync::Cache::new(entries_max))
    }

    pub(crate) fn get(&self, der: &[u8]) -> Result<VerifyingKey, SignatureError> {
        if let Some(key) = self.0.get(der) {
            return Ok(key);
        }
        let key = VerifyingKey::from_der(der)?;
        self.0.insert(der.to_vec(), key.clone());
        Ok(key)
    }
}
