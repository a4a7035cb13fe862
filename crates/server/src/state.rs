//! What every request handler shares: configuration, store, clock, keys, rates and the
//! notifier's handles.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use ocpay_core::fx::Rate;
use ocpay_core::money::Currency;
use ocpay_core::participant::Environment;
use ocpay_core::schedule::RetrySchedule;
use ocpay_protocol::{SignatureError, SigningKey, VerifyingKey};
use ocpay_store::Store;

use crate::clock::Clock;
use crate::config::Config;
use crate::data_dir::PlatformKeys;
use crate::notify;

pub struct AppState {
    pub config: Config,
    pub store: Arc<dyn Store>,
    pub clock: Arc<dyn Clock>,
    /// Signs every response and notification: the newest platform key version.
    pub platform_key: SigningKey,
    pub platform_key_version: u32,
    /// Every platform public key not retired, by version, as the data directory held them at
    /// the last look (see [`AppState::published_platform_keys`]).
    published_platform_keys: Mutex<(jiff::Timestamp, Vec<(u32, VerifyingKey)>)>,
    /// Base URL without a trailing slash; order codes point under it.
    pub public_url: String,
    /// Bearer token of the admin API.
    pub(crate) admin_token: String,
    pub(crate) keys: KeyCache,
    /// Exchange rates of live and of sandbox payers.
    pub(crate) rates: Vec<Rate>,
    pub(crate) sandbox_rates: Vec<Rate>,
    pub(crate) schedule: RetrySchedule,
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
    pub store: Arc<dyn Store>,
    pub clock: Arc<dyn Clock>,
    pub platform_keys: PlatformKeys,
    pub public_url: String,
    pub admin_token: String,
}

impl AppState {
    /// Checks the configuration and builds the notifier's HTTP clients.
    pub fn new(config: Config, parts: Parts) -> anyhow::Result<AppState> {
        config.check().map_err(anyhow::Error::msg)?;
        let rates = config.rates(Environment::Live).map_err(anyhow::Error::msg)?;
        let sandbox_rates = config.rates(Environment::Sandbox).map_err(anyhow::Error::msg)?;
        let notify_clients =
            notify::Clients::new(std::time::Duration::from_millis(config.notify_timeout_ms))?;
        let started = parts.clock.now();
        Ok(AppState {
            keys: KeyCache::new(config.key_cache_entries_max),
            schedule: config.retry_schedule(),
            rates,
            sandbox_rates,
            notify_clients,
            dummy_pin_hash: crate::pin::unmatchable_hash(config.pin_hash_iterations),
            notify_wake: notify::Wake::default(),
            rounds: crate::rounds::Rounds::default(),
            audit: crate::audit::Sink::new(config.audit_queue_max),
            store: parts.store,
            clock: parts.clock,
            platform_key: parts.platform_keys.signing,
            platform_key_version: parts.platform_keys.version,
            published_platform_keys: Mutex::new((started, parts.platform_keys.published)),
            public_url: parts.public_url.trim_end_matches('/').to_owned(),
            admin_token: parts.admin_token,
            config,
        })
    }

    /// The published platform keys as `/.well-known/ocpay/platform-keys` serves them: read
    /// again from the data directory at most once a second, so that a rotation is published at
    /// once (the new version signs only from the next start, `signing` says which one does).
    pub fn published_platform_keys(&self) -> serde_json::Value {
        let mut published =
            self.published_platform_keys.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let now = self.clock.now();
        if now.duration_since(published.0) >= jiff::SignedDuration::from_secs(1) {
            match crate::data_dir::DataDir::open(&self.config.data_dir).and_then(|dir| dir.platform_keys()) {
                Ok(keys) => *published = (now, keys.published),
                Err(error) => {
                    tracing::warn!(%error, "reading the platform keys failed; publishing the last ones read")
                }
            }
        }
        PlatformKeys::published_json(&published.1, self.platform_key_version)
    }

    /// The rate configured for `environment`'s payers from one currency to another, if any.
    pub(crate) fn rate(&self, environment: Environment, from: Currency, to: Currency) -> Option<Rate> {
        let rates = match environment {
            Environment::Live => &self.rates,
            Environment::Sandbox => &self.sandbox_rates,
        };
        rates.iter().copied().find(|rate| rate.base() == from && rate.quote() == to)
    }
}

/// Parsed participant public keys, by their DER bytes.
///
/// Which key a client may use is read from the store on every request, so a revoked key stops
/// working at once; only the parsing (which costs more than a verification) is cached.
pub(crate) struct KeyCache {
    entries: Mutex<HashMap<Vec<u8>, VerifyingKey>>,
    entries_max: usize,
}

impl KeyCache {
    fn new(entries_max: usize) -> KeyCache {
        KeyCache { entries: Mutex::new(HashMap::new()), entries_max: entries_max.max(1) }
    }

    pub(crate) fn get(&self, der: &[u8]) -> Result<VerifyingKey, SignatureError> {
        if let Some(key) = self.lock().get(der) {
            return Ok(key.clone());
        }
        let key = VerifyingKey::from_der(der)?;
        let mut entries = self.lock();
        if entries.len() >= self.entries_max {
            entries.clear();
        }
        entries.insert(der.to_vec(), key.clone());
        Ok(key)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Vec<u8>, VerifyingKey>> {
        self.entries.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}
