//! The server's Ed25519 host key: made on first use at `<data_dir>/sftp-host-key` (OpenSSH's
//! private key format, mode 0600), so that it survives restarts and clients can pin it; its
//! public half published beside it (`sftp-host-key.pub`), which the developer center shows
//! without opening the private key; and the `known_hosts` line that pins it.

use std::io::Write as _;
use std::net::SocketAddr;
use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use ocpay_server::service::sftp::{HOST_PUBLIC_KEY_FILE, HostKey};
use russh::keys::ssh_key::LineEnding;
use russh::keys::ssh_key::private::{Ed25519Keypair, KeypairData};
use russh::keys::{Algorithm, PrivateKey, PublicKey};

/// The host key's file in the data directory.
pub const HOST_KEY_FILE: &str = "sftp-host-key";

pub fn path(data_dir: &Path) -> PathBuf {
    data_dir.join(HOST_KEY_FILE)
}

/// The host key of the data directory, made first if there is none. Several processes starting
/// at once agree on one key: it is written to a temporary file and hard-linked into place,
/// which fails for all but the first.
pub fn load_or_create(data_dir: &Path) -> anyhow::Result<PrivateKey> {
    let file = path(data_dir);
    if !file.exists() {
        create(data_dir, &file)?;
    }
    let mode =
        std::fs::metadata(&file).with_context(|| format!("read {}", file.display()))?.permissions().mode();
    if mode & 0o077 != 0 {
        tracing::warn!(path = %file.display(), mode = format!("{mode:o}"), "the SFTP host key is readable by others; chmod 600 it");
    }
    let text = std::fs::read_to_string(&file).with_context(|| format!("read {}", file.display()))?;
    let key =
        PrivateKey::from_openssh(text.as_bytes()).with_context(|| format!("parse {}", file.display()))?;
    if key.algorithm() != Algorithm::Ed25519 {
        anyhow::bail!("{} is not an Ed25519 key", file.display());
    }
    publish(data_dir, key.public_key())?;
    Ok(key)
}

/// Writes the public key's line to `sftp-host-key.pub` unless it holds it already: under a
/// temporary name, then renamed, so that a reader never sees half a line.
fn publish(data_dir: &Path, key: &PublicKey) -> anyhow::Result<()> {
    let file = data_dir.join(HOST_PUBLIC_KEY_FILE);
    let line = format!("{}\n", HostKey::of(key)?.line);
    if std::fs::read_to_string(&file).is_ok_and(|text| text == line) {
        return Ok(());
    }
    let temporary = data_dir.join(format!("{HOST_PUBLIC_KEY_FILE}.{}.tmp", std::process::id()));
    let write = || format!("write {}", temporary.display());
    let mut out = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o644)
        .open(&temporary)
        .with_context(write)?;
    out.write_all(line.as_bytes()).with_context(write)?;
    out.sync_all().with_context(write)?;
    std::fs::rename(&temporary, &file).with_context(|| format!("write {}", file.display()))?;
    Ok(())
}

fn create(data_dir: &Path, file: &Path) -> anyhow::Result<()> {
    let mut seed = [0u8; 32];
    aws_lc_rs::rand::fill(&mut seed).map_err(|_| anyhow::anyhow!("the system RNG failed"))?;
    let key = PrivateKey::new(KeypairData::Ed25519(Ed25519Keypair::from_seed(&seed)), "ocpay sftp host key")
        .context("make the SFTP host key")?;
    let text = key.to_openssh(LineEnding::LF).context("encode the SFTP host key")?;
    std::fs::create_dir_all(data_dir).with_context(|| format!("create {}", data_dir.display()))?;
    let temporary = data_dir.join(format!("{HOST_KEY_FILE}.{}.tmp", std::process::id()));
    let write = || format!("write {}", temporary.display());
    let mut out = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&temporary)
        .with_context(write)?;
    out.write_all(text.as_bytes()).with_context(write)?;
    out.sync_all().with_context(write)?;
    let linked = std::fs::hard_link(&temporary, file);
    std::fs::remove_file(&temporary).with_context(|| format!("remove {}", temporary.display()))?;
    match linked {
        Ok(()) => {
            std::fs::File::open(data_dir)?.sync_all()?;
            tracing::info!(path = %file.display(), "created the SFTP host key");
            Ok(())
        }
        Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(error) => Err(error).with_context(|| format!("write {}", file.display())),
    }
}

/// The `known_hosts` line that pins `key` for clients connecting to `address`: `[host]:port`
/// (OpenSSH writes a bare host for port 22), the key type and its base64 data.
pub fn known_hosts_line(key: &PublicKey, address: SocketAddr) -> anyhow::Result<String> {
    let key = HostKey::of(key).context("encode the SFTP host key")?;
    Ok(key.known_hosts_line(&address.ip().to_string(), address.port()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_key_is_made_once_private_and_pinned() {
        let dir = tempfile::tempdir().unwrap();
        let key = load_or_create(dir.path()).unwrap();
        let mode = std::fs::metadata(path(dir.path())).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let again = load_or_create(dir.path()).unwrap();
        assert_eq!(key.public_key().key_data(), again.public_key().key_data(), "the same key on every start");
        let text = std::fs::read_to_string(path(dir.path())).unwrap();
        assert!(text.starts_with("-----BEGIN OPENSSH PRIVATE KEY-----"), "{text}");

        let line = known_hosts_line(key.public_key(), "127.0.0.1:2222".parse().unwrap()).unwrap();
        assert!(line.starts_with("[127.0.0.1]:2222 ssh-ed25519 AAAA"), "{line}");
        let line = known_hosts_line(key.public_key(), "[::1]:22".parse().unwrap()).unwrap();
        assert!(line.starts_with("::1 ssh-ed25519 "), "{line}");

        // The public half is published beside it, and written again if it was lost.
        let published = std::fs::read_to_string(dir.path().join(HOST_PUBLIC_KEY_FILE)).unwrap();
        assert_eq!(published, format!("{}\n", HostKey::of(key.public_key()).unwrap().line));
        assert!(published.starts_with("ssh-ed25519 AAAA"), "{published}");
        std::fs::remove_file(dir.path().join(HOST_PUBLIC_KEY_FILE)).unwrap();
        load_or_create(dir.path()).unwrap();
        assert_eq!(std::fs::read_to_string(dir.path().join(HOST_PUBLIC_KEY_FILE)).unwrap(), published);
    }
}
