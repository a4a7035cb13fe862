//! What an SFTP account holds, checked where it enters (the CLI) and where it is used (a
//! login): public keys in OpenSSH's one-line form, argon2id password hashes, CIDR allow-lists.

use std::net::IpAddr;

use argon2::Argon2;
use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use ipnet::IpNet;
use russh::keys::{Algorithm, PublicKey};

/// Why a credential or an address cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AccountError {
    #[error("not an OpenSSH public key (`ssh-ed25519 AAAA... comment`): {0}")]
    NotAPublicKey(String),
    #[error("{0} keys are not accepted: use an Ed25519 key (`ssh-keygen -t ed25519`) or an ECDSA one")]
    KeyType(String),
    #[error("the password is empty")]
    EmptyPassword,
    #[error("the password cannot be hashed: {0}")]
    Hash(String),
    #[error("not an address or a network in CIDR form (10.0.0.0/8, 2001:db8::/32): {0}")]
    Network(String),
}

/// The key of an OpenSSH public key line (`ssh-ed25519 AAAA... comment`) as the store keeps
/// it: type and key data only, so that two texts are equal exactly when the keys are. RSA and
/// DSA keys are refused: the server is built without them (the RSA crate has an open timing
/// advisory and DSA is obsolete), so such a key could never log in.
pub fn normalize_public_key(text: &str) -> Result<String, AccountError> {
    let line = text
        .lines()
        .map(str::trim)
        .find(|line| !line.is_empty() && !line.starts_with('#'))
        .ok_or_else(|| AccountError::NotAPublicKey("no key in the text".into()))?;
    let mut key =
        PublicKey::from_openssh(line).map_err(|error| AccountError::NotAPublicKey(error.to_string()))?;
    match key.algorithm() {
        Algorithm::Ed25519
        | Algorithm::Ecdsa { .. }
        | Algorithm::SkEd25519
        | Algorithm::SkEcdsaSha2NistP256 => {}
        other => return Err(AccountError::KeyType(other.as_str().to_owned())),
    }
    key.set_comment("");
    let text = key.to_openssh().map_err(|error| AccountError::NotAPublicKey(error.to_string()))?;
    Ok(text.trim().to_owned())
}

/// Whether `offered` is one of the stored key lines (compared by key data).
pub(crate) fn key_matches(stored: &[String], offered: &PublicKey) -> bool {
    stored
        .iter()
        .filter_map(|line| PublicKey::from_openssh(line).ok())
        .any(|key| key.key_data() == offered.key_data())
}

/// An argon2id hash (PHC string) of `password`, with a random salt.
pub fn hash_password(password: &str) -> Result<String, AccountError> {
    if password.is_empty() {
        return Err(AccountError::EmptyPassword);
    }
    Argon2::default()
        .hash_password(password.as_bytes())
        .map(|hash| hash.to_string())
        .map_err(|error| AccountError::Hash(error.to_string()))
}

/// Whether `password` matches a stored PHC string; a damaged hash matches nothing.
pub(crate) fn verify_password(hash: &str, password: &str) -> bool {
    match PasswordHash::new(hash) {
        Ok(parsed) => Argon2::default().verify_password(password.as_bytes(), &parsed).is_ok(),
        Err(_) => false,
    }
}

/// A network of an allow-list in canonical CIDR form: an address alone is its own network
/// (`/32`, `/128`), host bits are cleared (`10.1.2.3/8` is `10.0.0.0/8`).
pub fn parse_network(text: &str) -> Result<String, AccountError> {
    let text = text.trim();
    let network = match text.parse::<IpNet>() {
        Ok(network) => network,
        Err(_) => {
            text.parse::<IpAddr>().map(IpNet::from).map_err(|_| AccountError::Network(text.to_owned()))?
        }
    };
    Ok(network.trunc().to_string())
}

/// Whether `address` may connect under `networks` (none: any address). An IPv4 client seen
/// through an IPv6 socket (`::ffff:10.1.2.3`) is judged by its IPv4 address. A stored entry
/// that does not parse allows nothing.
pub(crate) fn address_allowed(networks: &[String], address: IpAddr) -> bool {
    if networks.is_empty() {
        return true;
    }
    let address = address.to_canonical();
    networks.iter().filter_map(|text| text.parse::<IpNet>().ok()).any(|network| network.contains(&address))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_kept_without_comments_and_compared_by_data() {
        let line =
            "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGb8Jbq2cFy0FiTjdVBCtmj/3b8c0uSdLBT7vwCIA3pq alice@laptop";
        let kept = normalize_public_key(&format!("# a comment\n{line}\n")).unwrap();
        assert_eq!(kept, "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGb8Jbq2cFy0FiTjdVBCtmj/3b8c0uSdLBT7vwCIA3pq");
        let offered = PublicKey::from_openssh(line).unwrap();
        assert!(key_matches(&[kept], &offered));
        assert!(!key_matches(&[], &offered));
        assert!(matches!(normalize_public_key("ssh-ed25519 nonsense"), Err(AccountError::NotAPublicKey(_))));
        assert!(normalize_public_key("").is_err());
    }

    #[test]
    fn passwords_are_argon2id_and_verify() {
        let hash = hash_password("correct horse").unwrap();
        assert!(hash.starts_with("$argon2id$"), "{hash}");
        assert!(verify_password(&hash, "correct horse"));
        assert!(!verify_password(&hash, "wrong horse"));
        assert!(!verify_password("not a hash", "correct horse"));
        assert_eq!(hash_password(""), Err(AccountError::EmptyPassword));
    }

    #[test]
    fn networks_parse_and_match() {
        assert_eq!(parse_network("10.1.2.3/8").unwrap(), "10.0.0.0/8");
        assert_eq!(parse_network("192.0.2.7").unwrap(), "192.0.2.7/32");
        assert_eq!(parse_network("2001:db8::1/32").unwrap(), "2001:db8::/32");
        assert_eq!(parse_network("::1").unwrap(), "::1/128");
        assert!(parse_network("10.0.0.0/33").is_err());
        assert!(parse_network("localhost").is_err());

        let allowed = vec!["10.0.0.0/8".to_owned(), "2001:db8::/32".to_owned()];
        let ip = |text: &str| text.parse::<IpAddr>().unwrap();
        assert!(address_allowed(&allowed, ip("10.9.8.7")));
        assert!(address_allowed(&allowed, ip("::ffff:10.9.8.7")), "an IPv4 client on an IPv6 socket");
        assert!(address_allowed(&allowed, ip("2001:db8::5")));
        assert!(!address_allowed(&allowed, ip("127.0.0.1")));
        assert!(!address_allowed(&["garbage".to_owned()], ip("127.0.0.1")));
        assert!(address_allowed(&[], ip("127.0.0.1")), "no list: any address");
    }
}
