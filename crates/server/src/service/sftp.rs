//! Participants' SFTP accounts as the CLI (`ocpay sftp add-user`) and the developer center's
//! Reports page change them: what an account holds, checked where it enters (OpenSSH public
//! key lines, argon2id password hashes, CIDR allow-lists), the changes themselves, and the
//! server's public host key, which the SFTP server publishes in the data directory for clients
//! to pin.
//!
//! The SFTP server (`ocpay-sftp`, over russh) checks logins against what is kept here. This
//! crate carries no SSH: `ssh-key` (the version russh pins) reads and writes the key lines.

use std::net::{IpAddr, SocketAddr};
use std::path::Path;

use argon2::Argon2;
use argon2::password_hash::PasswordHasher;
use ipnet::IpNet;
use jiff::{SignedDuration, Timestamp};
use ocpay_core::ids::ClientId;
use ocpay_store::{SftpAccount, SftpAccountChange, Store, StoreError};
use ssh_key::{Algorithm, HashAlg, PublicKey};

/// The public half of the SFTP server's host key, beside its private key (`sftp-host-key`) in
/// the data directory: the SFTP server writes it when it loads the key, and the developer
/// center reads it, so that nothing but the SFTP server opens the private key.
pub const HOST_PUBLIC_KEY_FILE: &str = "sftp-host-key.pub";

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
/// DSA keys are refused: the SFTP server is built without them (the RSA crate has an open
/// timing advisory and DSA is obsolete), so such a key could never log in.
pub fn normalize_public_key(text: &str) -> Result<String, AccountError> {
    let line = text
        .lines()
        .map(str::trim)
        .find(|line| !line.is_empty() && !line.starts_with('#'))
        .ok_or_else(|| AccountError::NotAPublicKey("no key in the text".into()))?;
    let key =
        PublicKey::from_openssh(line).map_err(|error| AccountError::NotAPublicKey(error.to_string()))?;
    match key.algorithm() {
        Algorithm::Ed25519
        | Algorithm::Ecdsa { .. }
        | Algorithm::SkEd25519
        | Algorithm::SkEcdsaSha2NistP256 => {}
        other => return Err(AccountError::KeyType(other.as_str().to_owned())),
    }
    key_line(&key)
}

/// A public key as one line of type and base64 data, without its comment.
pub fn key_line(key: &PublicKey) -> Result<String, AccountError> {
    let mut key = key.clone();
    key.set_comment("");
    let text = key.to_openssh().map_err(|error| AccountError::NotAPublicKey(error.to_string()))?;
    Ok(text.trim().to_owned())
}

/// A kept key's type and OpenSSH SHA-256 fingerprint (as `ssh-keygen -l` prints them), so
/// that people can tell their keys apart; `None` for a line that is not a key.
pub fn key_fingerprint(line: &str) -> Option<(String, String)> {
    let key = PublicKey::from_openssh(line).ok()?;
    Some((key.algorithm().as_str().to_owned(), key.fingerprint(HashAlg::Sha256).to_string()))
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

/// An allow-list typed one network a line (blank lines skipped), each in canonical form, each
/// once, in the order typed; an empty one lets any address connect.
pub fn parse_networks(text: &str) -> Result<Vec<String>, AccountError> {
    let mut networks: Vec<String> = Vec::new();
    for line in text.lines().map(str::trim).filter(|line| !line.is_empty()) {
        let network = parse_network(line)?;
        if !networks.contains(&network) {
            networks.push(network);
        }
    }
    Ok(networks)
}

/// The server's public host key as clients pin it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostKey {
    /// Type and base64 data (`ssh-ed25519 AAAA...`).
    pub line: String,
    /// OpenSSH's SHA-256 fingerprint (`SHA256:...`), as `ssh` shows it on a first connection.
    pub fingerprint: String,
}

impl HostKey {
    pub fn of(key: &PublicKey) -> Result<HostKey, AccountError> {
        Ok(HostKey { line: key_line(key)?, fingerprint: key.fingerprint(HashAlg::Sha256).to_string() })
    }

    /// The `known_hosts` line that pins the key for clients connecting to `host` on `port`:
    /// `[host]:port` (OpenSSH writes a bare host for port 22), then the key.
    pub fn known_hosts_line(&self, host: &str, port: u16) -> String {
        let host = host.trim_start_matches('[').trim_end_matches(']');
        if port == 22 { format!("{host} {}", self.line) } else { format!("[{host}]:{port} {}", self.line) }
    }
}

/// The public host key the SFTP server published in `data_dir`; `None` before it first started
/// (or where it never runs).
pub async fn published_host_key(data_dir: &Path) -> Result<Option<HostKey>, std::io::Error> {
    let text = match tokio::fs::read_to_string(data_dir.join(HOST_PUBLIC_KEY_FILE)).await {
        Ok(text) => text,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(error) => return Err(error),
    };
    let key = PublicKey::from_openssh(text.trim()).map_err(std::io::Error::other)?;
    HostKey::of(&key).map(Some).map_err(std::io::Error::other)
}

/// The host clients connect to: the address SFTP listens on, or, when it listens on every
/// address, the host of the public URL (the name people already reach the platform by).
pub fn connect_host(listen: SocketAddr, public_url: &str) -> String {
    if !listen.ip().is_unspecified() {
        return listen.ip().to_string();
    }
    url::Url::parse(public_url)
        .ok()
        .and_then(|url| {
            url.host_str().map(|host| host.trim_start_matches('[').trim_end_matches(']').to_owned())
        })
        .unwrap_or_else(|| listen.ip().to_string())
}

/// Whether an account may log in at all, whatever the credential.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Standing {
    Active,
    /// Too many wrong passwords in a row: no login until then.
    Locked(Timestamp),
    /// Unused (no login since it was made or last logged in) for longer than `unused_max`.
    Disabled,
}

/// Where `account` stands at `now`: the SFTP server refuses a login of a locked or disabled
/// account before it looks at the credential, and the developer center says why.
pub fn standing(account: &SftpAccount, now: Timestamp, unused_max: SignedDuration) -> Standing {
    if let Some(until) = account.locked_until.filter(|until| now < *until) {
        return Standing::Locked(until);
    }
    let last_used = account.last_login_at.map_or(account.created_at, |at| at.max(account.created_at));
    if now.duration_since(last_used) > unused_max {
        return Standing::Disabled;
    }
    Standing::Active
}

/// Why an account could not be changed.
#[derive(Debug, thiserror::Error)]
pub enum SftpError {
    #[error(transparent)]
    Invalid(#[from] AccountError),
    /// The change needs an account, and there is none.
    #[error("there is no SFTP account: add a public key or a password first")]
    NoAccount,
    #[error(transparent)]
    Store(#[from] StoreError),
}

fn change(client_id: &ClientId) -> SftpAccountChange {
    SftpAccountChange {
        client_id: client_id.clone(),
        add_public_key: None,
        password_hash: None,
        allowed_networks: None,
    }
}

/// Adds a public key (pasted as OpenSSH writes it) to the participant's account, making the
/// account when it has none; a key already there stays once. The account, and whether it is new.
pub async fn add_public_key(
    store: &dyn Store,
    client_id: &ClientId,
    text: &str,
    now: Timestamp,
) -> Result<(SftpAccount, bool), SftpError> {
    let key = normalize_public_key(text)?;
    let change = SftpAccountChange { add_public_key: Some(key), ..change(client_id) };
    Ok(store.upsert_sftp_account(&change, now).await?)
}

/// Removes a public key from the account; false when the account has no such key (or there is
/// no account). `text` is the key as the account lists it, or any line of the same key.
pub async fn remove_public_key(
    store: &dyn Store,
    client_id: &ClientId,
    text: &str,
) -> Result<bool, SftpError> {
    let key = normalize_public_key(text)?;
    Ok(store.remove_sftp_public_key(client_id, &key).await?)
}

/// Sets or replaces the account's password (argon2id, hashed off the async threads), making the
/// account when it has none.
pub async fn set_password(
    store: &dyn Store,
    client_id: &ClientId,
    password: String,
    now: Timestamp,
) -> Result<(SftpAccount, bool), SftpError> {
    let hash = tokio::task::spawn_blocking(move || hash_password(&password))
        .await
        .map_err(|error| AccountError::Hash(error.to_string()))??;
    let change = SftpAccountChange { password_hash: Some(hash), ..change(client_id) };
    Ok(store.upsert_sftp_account(&change, now).await?)
}

/// Replaces the account's allow-list with the networks typed one a line (none: any address).
/// An account is made by a key or a password, never by an allow-list alone.
pub async fn set_allowed_networks(
    store: &dyn Store,
    client_id: &ClientId,
    text: &str,
    now: Timestamp,
) -> Result<SftpAccount, SftpError> {
    let networks = parse_networks(text)?;
    if store.sftp_account(client_id).await?.is_none() {
        return Err(SftpError::NoAccount);
    }
    let change = SftpAccountChange { allowed_networks: Some(networks), ..change(client_id) };
    Ok(store.upsert_sftp_account(&change, now).await?.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ED25519: &str =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGb8Jbq2cFy0FiTjdVBCtmj/3b8c0uSdLBT7vwCIA3pq alice@laptop";

    #[test]
    fn keys_are_kept_without_comments() {
        let kept = normalize_public_key(&format!("# a comment\n{ED25519}\n")).unwrap();
        assert_eq!(kept, "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGb8Jbq2cFy0FiTjdVBCtmj/3b8c0uSdLBT7vwCIA3pq");
        let (kind, fingerprint) = key_fingerprint(&kept).unwrap();
        assert_eq!(kind, "ssh-ed25519");
        assert!(fingerprint.starts_with("SHA256:"), "{fingerprint}");
        assert_eq!(key_fingerprint("ssh-ed25519 nonsense"), None);
        assert!(matches!(normalize_public_key("ssh-ed25519 nonsense"), Err(AccountError::NotAPublicKey(_))));
        assert!(normalize_public_key("").is_err());
    }

    #[test]
    fn passwords_are_argon2id() {
        let hash = hash_password("correct horse").unwrap();
        assert!(hash.starts_with("$argon2id$"), "{hash}");
        assert_eq!(hash_password(""), Err(AccountError::EmptyPassword));
    }

    #[test]
    fn networks_parse_in_canonical_form() {
        assert_eq!(parse_network("10.1.2.3/8").unwrap(), "10.0.0.0/8");
        assert_eq!(parse_network("192.0.2.7").unwrap(), "192.0.2.7/32");
        assert_eq!(parse_network("2001:db8::1/32").unwrap(), "2001:db8::/32");
        assert_eq!(parse_network("::1").unwrap(), "::1/128");
        assert!(parse_network("10.0.0.0/33").is_err());
        assert!(parse_network("localhost").is_err());
        assert_eq!(
            parse_networks("10.1.2.3/8\n\n  192.0.2.7 \n10.0.0.0/8\n").unwrap(),
            ["10.0.0.0/8", "192.0.2.7/32"],
            "blank lines skipped, duplicates once"
        );
        assert_eq!(parse_networks(" \n").unwrap(), Vec::<String>::new());
        assert_eq!(parse_networks("10.0.0.0/8\nnope"), Err(AccountError::Network("nope".into())));
    }

    #[test]
    fn the_host_key_is_pinned_by_its_line_and_fingerprint() {
        let key = HostKey::of(&PublicKey::from_openssh(ED25519).unwrap()).unwrap();
        assert_eq!(key.line, ED25519.strip_suffix(" alice@laptop").unwrap());
        assert!(key.fingerprint.starts_with("SHA256:") && !key.fingerprint.ends_with('='), "{key:?}");
        assert_eq!(key.known_hosts_line("127.0.0.1", 2222), format!("[127.0.0.1]:2222 {}", key.line));
        assert_eq!(key.known_hosts_line("::1", 22), format!("::1 {}", key.line));
        assert_eq!(key.known_hosts_line("[::1]", 2222), format!("[::1]:2222 {}", key.line));
    }

    #[test]
    fn accounts_stand_locked_then_disabled_when_unused() {
        let at = |seconds: i64| Timestamp::from_second(seconds).unwrap();
        let account = SftpAccount {
            client_id: ClientId::parse("C1").unwrap(),
            public_keys: Vec::new(),
            password_hash: None,
            allowed_networks: Vec::new(),
            created_at: at(1_000),
            last_login_at: None,
            failures: 0,
            locked_until: None,
        };
        let unused = SignedDuration::from_secs(100);
        assert_eq!(standing(&account, at(1_100), unused), Standing::Active);
        assert_eq!(standing(&account, at(1_101), unused), Standing::Disabled);
        let used = SftpAccount { last_login_at: Some(at(1_050)), ..account.clone() };
        assert_eq!(standing(&used, at(1_101), unused), Standing::Active, "a login counts as use");
        let locked = SftpAccount { locked_until: Some(at(1_060)), ..used };
        assert_eq!(standing(&locked, at(1_059), unused), Standing::Locked(at(1_060)));
        assert_eq!(standing(&locked, at(1_060), unused), Standing::Active, "the lockout ended");
    }

    #[test]
    fn clients_connect_to_the_listener_or_the_public_host() {
        let at = |text: &str| text.parse::<SocketAddr>().unwrap();
        assert_eq!(connect_host(at("127.0.0.1:2222"), "https://pay.example"), "127.0.0.1");
        assert_eq!(connect_host(at("0.0.0.0:2222"), "https://pay.example:8443/x"), "pay.example");
        assert_eq!(connect_host(at("[::]:2222"), "http://[2001:db8::1]:8080"), "2001:db8::1");
        assert_eq!(connect_host(at("0.0.0.0:2222"), "not a url"), "0.0.0.0");
    }
}
