//! What the HTTP side shares: the use cases' [`Context`], and what only the gateway, the
//! payer's page and the admin API need beside it (the platform keys, the key cache, the public
//! URL, the admin token, the queues of the audit trail and the API log).

use std::ops::Deref;
use std::sync::Arc;

use ocpay_protocol::{SignatureError, SigningKey, VerifyingKey};
use ocpay_store::Secret;

use crate::config::Config;
use crate::data_dir::PlatformKeySource;
use crate::notify::Notifier;
use crate::rounds::Rounds;
use crate::service::Context;
use crate::{api_log, audit};

/// Built around a [`Context`], which it dereferences to: `state.store`, `state.clock` and
/// `state.settings` are the use cases' own.
pub struct AppState {
    /// What the configuration said, as written; code reads [`Context::settings`].
    pub config: Config,
    /// What the use cases run with.
    pub context: Arc<Context>,
    /// The platform keys, shared with the notifier.
    pub(crate) platform_keys: Arc<PlatformKeySource>,
    /// The notifier, whose signed post the test notification shares.
    pub notifier: Arc<Notifier>,
    /// Base URL without a trailing slash; order codes point under it.
    pub public_url: String,
    /// Bearer token of the admin API.
    pub(crate) admin_token: Secret,
    pub(crate) keys: KeyCache,
    /// Finished rounds of the background loops.
    pub rounds: Arc<Rounds>,
    /// Where the gateway queues audit events.
    pub(crate) audit: audit::Sink,
    /// Where the gateway queues API log entries, when the log is kept.
    pub(crate) api_log: Option<api_log::Sink>,
    /// Connections per source address and the rate limits, shared with the accept loop.
    pub limits: crate::limits::Limits,
}

/// What an [`AppState`] is made of, besides its configuration.
pub struct Parts {
    pub context: Arc<Context>,
    pub platform_keys: Arc<PlatformKeySource>,
    pub notifier: Arc<Notifier>,
    pub public_url: String,
    pub admin_token: Secret,
    pub rounds: Arc<Rounds>,
    pub(crate) audit: audit::Sink,
    pub(crate) api_log: Option<api_log::Sink>,
}

impl Deref for AppState {
    type Target = Context;

    fn deref(&self) -> &Context {
        &self.context
    }
}

impl AppState {
    pub fn new(config: Config, parts: Parts) -> AppState {
        AppState {
            keys: KeyCache::new(parts.context.settings.key_cache_entries_max),
            limits: crate::limits::Limits::new(&parts.context.settings.limits, parts.context.clock.clone()),
            context: parts.context,
            platform_keys: parts.platform_keys,
            notifier: parts.notifier,
            public_url: parts.public_url.trim_end_matches('/').to_owned(),
            admin_token: parts.admin_token,
            rounds: parts.rounds,
            audit: parts.audit,
            api_log: parts.api_log,
            config,
        }
    }

    /// The platform key that signs every response and notification now, with its version (see
    /// [`PlatformKeySource::signer`]).
    pub fn platform_signer(&self) -> (u32, SigningKey) {
        self.platform_keys.signer()
    }

    /// Records an event of the developer center or the console (sign-ins and changes). A
    /// success (`S`: a change made, a sign-in) is committed before the caller answers, so that
    /// no acknowledged change loses its event in a crash; these come at a person's pace, so the
    /// commit of their own costs nothing that matters. Refusals are queued, waiting for room
    /// when the writer is behind, and a success whose commit failed is queued too.
    pub async fn record_audit(&self, event: ocpay_store::AuditEvent) {
        if event.result_status != "S" {
            return self.audit.record(event).await;
        }
        if let Err(error) = self.store.record_audit(std::slice::from_ref(&event)).await {
            tracing::warn!(%error, api = %event.api, "committing an audit event failed; it is queued");
            self.audit.record(event).await;
        }
    }

    /// The published platform keys as `/.well-known/ocpay/platform-keys` serves them.
    pub fn published_platform_keys(&self) -> serde_json::Value {
        self.platform_keys.published()
    }

    /// The key that seals Agent-Tokens held for ISVs' owners, derived from the admin token: a
    /// secret of the data directory that every node shares and the database never holds.
    pub fn token_hold_key(&self) -> crate::service::grants::HoldKey {
        crate::service::grants::HoldKey::derive(self.admin_token.expose().as_bytes())
    }
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
