//! Merchants authorising ISVs: the grant, its `Agent-Token` (shown once, stored as its
//! SHA-256), the notification that hands the token to the ISV, and revocation.
//!
//! Invariants: a grant joins a merchant or acquirer to an ISV of the same environment; the
//! token is 256 random bits and never stored; revocation is read by the very next request.

use jiff::{SignedDuration, Timestamp};
use ocpay_core::access::{Grant, Scopes};
use ocpay_core::ids::ClientId;
use ocpay_core::participant::{Participant, ParticipantKind};
use ocpay_store::{NewGrant, Secret, Store, StoreError};

use super::participants::{ParticipantError, ParticipantField, invalid};
use crate::random;

/// What a merchant authorises.
#[derive(Debug, Clone)]
pub struct NewAuthorisation {
    pub merchant: ClientId,
    pub isv: ClientId,
    pub scopes: Scopes,
    /// `None`: the configured default lifetime.
    pub expires_in: Option<SignedDuration>,
}

/// A grant as created, with the token that stands for it: the only time the token is seen.
#[derive(Debug, Clone)]
pub struct Issued {
    pub grant: Grant,
    /// `Debug` leaves it out.
    pub token: Secret,
    /// Whether the ISV's notify URL will receive the token.
    pub notified: bool,
}

/// The SHA-256 of a token, lower-case hex: what the store keeps and looks up.
pub fn token_sha256(token: &str) -> String {
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, token.as_bytes());
    digest.as_ref().iter().map(|byte| format!("{byte:02x}")).collect()
}

async fn participant(
    store: &dyn Store,
    id: &ClientId,
    field: ParticipantField,
) -> Result<Participant, ParticipantError> {
    store.participant(id).await?.ok_or_else(|| invalid(field, format!("no participant {id}")))
}

/// Creates a grant and queues the token's notification to the ISV, in one transaction.
pub async fn authorise(
    store: &dyn Store,
    now: Timestamp,
    default_lifetime: SignedDuration,
    new: NewAuthorisation,
) -> Result<Issued, ParticipantError> {
    let merchant = participant(store, &new.merchant, ParticipantField::Merchant).await?;
    let isv = participant(store, &new.isv, ParticipantField::Isv).await?;
    if merchant.kind == ParticipantKind::Isv {
        return Err(invalid(ParticipantField::Merchant, "must be a merchant or an acquirer, not an ISV"));
    }
    if isv.kind != ParticipantKind::Isv {
        return Err(invalid(
            ParticipantField::Isv,
            format!("{} is a {}, not an ISV", isv.client_id, isv.kind.as_str()),
        ));
    }
    if merchant.environment() != isv.environment() {
        return Err(invalid(
            ParticipantField::Isv,
            "must be in the merchant's environment (sandbox or live)",
        ));
    }
    let lifetime = new.expires_in.unwrap_or(default_lifetime);
    if !lifetime.is_positive() {
        return Err(invalid(ParticipantField::Lifetime, "must be in the future"));
    }
    let token = random::agent_token();
    let grant = Grant {
        id: random::grant_id(now),
        merchant: merchant.client_id,
        isv: isv.client_id,
        scopes: new.scopes,
        token_sha256: token_sha256(&token),
        created_at: now,
        expires_at: Some(now.checked_add(lifetime).unwrap_or(Timestamp::MAX)),
        revoked_at: None,
    };
    let token = Secret(token);
    let notice = isv.notify_url.map(|url| (url, token.clone()));
    let notified = notice.is_some();
    store.create_grant(&NewGrant { grant: grant.clone(), notice, held: None }, now).await?;
    Ok(Issued { grant, token, notified })
}

/// Revokes a grant from `now`: the ISV's next request with its token is refused.
pub async fn revoke(store: &dyn Store, now: Timestamp, grant_id: &str) -> Result<Grant, ParticipantError> {
    store.revoke_grant(grant_id, now).await.map_err(|error| match error {
        StoreError::NotFound(_) => invalid(ParticipantField::Grant, format!("no grant {grant_id}")),
        other => other.into(),
    })
}
