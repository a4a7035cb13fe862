//! What every request handler shares: configuration, store, clock and keys.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use ocpay_protocol::{SignatureError, SigningKey, VerifyingKey};
use ocpay_store::Store;

use crate::clock::Clock;
use crate::config::Config;

pub struct AppState {
    pub config: Config,
    pub store: Arc<dyn Store>,
    pub clock: Arc<dyn Clock>,
    /// Signs every response and notification.
    pub platform_key: SigningKey,
    /// Base URL without a trailing slash; order codes point under it.
    pub public_url: String,
    pub(crate) keys: KeyCache,
}

impl AppState {
    pub fn new(
        config: Config,
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        platform_key: SigningKey,
        public_url: &str,
    ) -> AppState {
        let keys = KeyCache::new(config.key_cache_entries_max);
        AppState {
            config,
            store,
            clock,
            platform_key,
            public_url: public_url.trim_end_matches('/').to_owned(),
            keys,
        }
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
