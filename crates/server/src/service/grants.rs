//! Merchants authorising ISVs: the grant, its `Agent-Token` (shown once, stored as its
//! SHA-256), the notification that hands the token to the ISV, and revocation.
//!
//! Invariants: a grant joins a merchant or acquirer to an ISV of the same environment; the
//! token is 256 random bits and never stored; revocation is read by the very next request.
//!
//! A grant made in the developer center also holds its token for the ISV's owner to see once
//! there ([`authorise_held`], [`take_held`]): sealed (AES-256-GCM under a [`HoldKey`] derived
//! from a secret of the data directory, bound to the grant and the ISV), so that the database
//! alone never holds a usable token, and only until the owner takes it, the grant is revoked or
//! the hold ends.

use jiff::{SignedDuration, Timestamp};
use ocpay_core::access::{Grant, Scopes};
use ocpay_core::ids::ClientId;
use ocpay_core::participant::{Participant, ParticipantKind};
use ocpay_store::{HeldToken, NewGrant, Secret, Store, StoreError};

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
    create(store, now, default_lifetime, new, None).await
}

/// How long and under which key a token is held for the ISV's owner.
pub struct Hold<'a> {
    pub key: &'a HoldKey,
    /// The longest a token is held; never past the grant's expiry.
    pub lifetime: SignedDuration,
}

/// Creates a grant as [`authorise`] does, and holds its token, sealed, for the ISV's owner to
/// see once in the developer center, in the same transaction.
pub async fn authorise_held(
    store: &dyn Store,
    now: Timestamp,
    default_lifetime: SignedDuration,
    new: NewAuthorisation,
    hold: Hold<'_>,
) -> Result<Issued, ParticipantError> {
    create(store, now, default_lifetime, new, Some(hold)).await
}

async fn create(
    store: &dyn Store,
    now: Timestamp,
    default_lifetime: SignedDuration,
    new: NewAuthorisation,
    hold: Option<Hold<'_>>,
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
    let held = hold.map(|hold| {
        let until = now.checked_add(hold.lifetime).unwrap_or(Timestamp::MAX);
        HeldToken {
            sealed: hold.key.seal(&grant, &token),
            hint: token.chars().take(TOKEN_HINT_CHARS).collect(),
            hold_until: grant.expires_at.map_or(until, |expires_at| expires_at.min(until)),
        }
    });
    let token = Secret::new(token);
    let notice = isv.notify_url.map(|url| (url, token.clone()));
    let notified = notice.is_some();
    store.create_grant(&NewGrant { grant: grant.clone(), notice, held }, now).await?;
    Ok(Issued { grant, token, notified })
}

/// How much of a token is kept to tell it by once it is gone: the `ocpay_at_` prefix and four
/// of its 43 random characters.
pub const TOKEN_HINT_CHARS: usize = 13;

/// The key that seals tokens held for ISVs' owners: AES-256-GCM, derived (HKDF-SHA256) from a
/// secret that every node reads from the data directory and the database never holds.
pub struct HoldKey(aws_lc_rs::aead::RandomizedNonceKey);

impl HoldKey {
    pub fn derive(secret: &[u8]) -> HoldKey {
        use aws_lc_rs::{aead, hkdf};
        let salt = hkdf::Salt::new(hkdf::HKDF_SHA256, b"ocpay held agent tokens");
        let mut key = [0u8; 32];
        salt.extract(secret)
            .expand(&[b"aes-256-gcm v1"], &aead::AES_256_GCM)
            .and_then(|okm| okm.fill(&mut key))
            .expect("HKDF-SHA256 fills a 32-byte key");
        HoldKey(aead::RandomizedNonceKey::new(&aead::AES_256_GCM, &key).expect("a 32-byte AES key"))
    }

    /// The token sealed for this grant and ISV only: base64 of the nonce, then the ciphertext
    /// and its tag.
    fn seal(&self, grant: &Grant, token: &str) -> String {
        use base64::Engine as _;
        let mut sealed = token.as_bytes().to_vec();
        let nonce = self
            .0
            .seal_in_place_append_tag(
                aws_lc_rs::aead::Aad::from(bound_to(&grant.id, &grant.isv)),
                &mut sealed,
            )
            .expect("AES-GCM seals a short token");
        let mut text = nonce.as_ref().to_vec();
        text.extend_from_slice(&sealed);
        base64::engine::general_purpose::STANDARD.encode(text)
    }

    fn open(&self, grant_id: &str, isv: &ClientId, sealed: &str) -> Option<Secret> {
        use aws_lc_rs::aead::{Aad, NONCE_LEN, Nonce};
        use base64::Engine as _;
        let bytes = base64::engine::general_purpose::STANDARD.decode(sealed).ok()?;
        let (nonce, ciphertext) = bytes.split_at_checked(NONCE_LEN)?;
        let nonce = Nonce::try_assume_unique_for_key(nonce).ok()?;
        let mut in_out = ciphertext.to_vec();
        let plain = self.0.open_in_place(nonce, Aad::from(bound_to(grant_id, isv)), &mut in_out).ok()?;
        String::from_utf8(plain.to_vec()).ok().map(Secret::new)
    }
}

/// What a sealed token is bound to: it opens only for its own grant and ISV.
fn bound_to(grant_id: &str, isv: &ClientId) -> Vec<u8> {
    format!("{grant_id}\n{isv}").into_bytes()
}

/// Takes the token held for one of `isv`'s grants, once (`who` took it, at `now`): `None` when
/// it was taken before, the grant was revoked, the hold ended, or it does not open with `key`
/// (the data directory's secret changed since).
pub async fn take_held(
    store: &dyn Store,
    key: &HoldKey,
    grant_id: &str,
    isv: &ClientId,
    who: &str,
    now: Timestamp,
) -> Result<Option<Secret>, StoreError> {
    let sealed = store.take_held_token(grant_id, isv, who, now).await?;
    Ok(sealed.and_then(|sealed| key.open(grant_id, isv, &sealed)))
}

/// Revokes a grant from `now`: the ISV's next request with its token is refused.
pub async fn revoke(store: &dyn Store, now: Timestamp, grant_id: &str) -> Result<Grant, ParticipantError> {
    store.revoke_grant(grant_id, now).await.map_err(|error| match error {
        StoreError::NotFound(_) => invalid(ParticipantField::Grant, format!("no grant {grant_id}")),
        other => other.into(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use ocpay_core::access::Scopes;

    #[test]
    fn a_held_token_opens_only_for_its_grant_and_isv_under_its_key() {
        let isv = ClientId::parse("SANDBOX_ISV1").unwrap();
        let grant = Grant {
            id: "G1".into(),
            merchant: ClientId::parse("SANDBOX_M1").unwrap(),
            isv: isv.clone(),
            scopes: Scopes::ALL,
            token_sha256: String::new(),
            created_at: Timestamp::UNIX_EPOCH,
            expires_at: None,
            revoked_at: None,
        };
        let key = HoldKey::derive(b"the data directory's secret");
        let sealed = key.seal(&grant, "ocpay_at_token");
        assert!(!sealed.contains("token"), "sealed, not encoded");
        assert_ne!(sealed, key.seal(&grant, "ocpay_at_token"), "a fresh nonce each time");
        assert_eq!(
            key.open("G1", &isv, &sealed).map(|token| token.expose().to_owned()).as_deref(),
            Some("ocpay_at_token")
        );
        assert!(key.open("G2", &isv, &sealed).is_none(), "another grant's row");
        assert!(key.open("G1", &ClientId::parse("SANDBOX_ISV2").unwrap(), &sealed).is_none(), "another ISV");
        assert!(HoldKey::derive(b"another secret").open("G1", &isv, &sealed).is_none(), "another key");
        assert!(key.open("G1", &isv, "not base64!").is_none());
    }
}
