//! What a login checks of an SFTP account: its public keys, its argon2id password hash and its
//! CIDR allow-list. What an account holds is checked where it enters (the CLI, the developer
//! center) by the server crate's `service::sftp`, whose checks are re-exported here.

use std::net::IpAddr;

use argon2::Argon2;
use argon2::password_hash::PasswordVerifier;
use argon2::password_hash::phc::PasswordHash;
use ipnet::IpNet;
pub use ocpay_server::service::sftp::{AccountError, hash_password, normalize_public_key, parse_network};
use russh::keys::PublicKey;

/// Whether `offered` is one of the stored key lines (compared by key data).
pub(crate) fn key_matches(stored: &[String], offered: &PublicKey) -> bool {
    stored
        .iter()
        .filter_map(|line| PublicKey::from_openssh(line).ok())
        .any(|key| key.key_data() == offered.key_data())
}

/// Whether `password` matches a stored PHC string; a damaged hash matches nothing.
pub(crate) fn verify_password(hash: &str, password: &str) -> bool {
    match PasswordHash::new(hash) {
        Ok(parsed) => Argon2::default().verify_password(password.as_bytes(), &parsed).is_ok(),
        Err(_) => false,
    }
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
    }

    #[test]
    fn passwords_are_argon2id_and_verify() {
        let hash = hash_password("correct horse").unwrap();
        assert!(hash.starts_with("$argon2id$"), "{hash}");
        assert!(verify_password(&hash, "correct horse"));
        assert!(!verify_password(&hash, "wrong horse"));
        assert!(!verify_password("not a hash", "correct horse"));
    }

    #[test]
    fn addresses_match_the_allow_list() {
        let allowed = vec!["10.0.0.0/8".to_owned(), "2001:db8::/32".to_owned()];
        let ip = |text: &str| text.parse::<IpAddr>().unwrap();
        assert!(address_allowed(&allowed, ip("10.9.8.7")));
        assert!(address_allowed(&allowed, ip("::ffff:10.9.8.7")), "an IPv4 client on an IPv6 socket");
        assert!(address_allowed(&allowed, ip("2001:db8::5")));
        assert!(!address_allowed(&allowed, ip("127.0.0.1")));
        assert!(!address_allowed(&["garbage".to_owned()], ip("127.0.0.1")));
        assert!(address_allowed(&[], ip("127.0.0.1")), "no list: any address");
        let typed = parse_network("10.1.2.3/8").unwrap();
        assert!(address_allowed(&[typed], ip("10.9.9.9")), "a network as the CLI keeps it");
    }
}
