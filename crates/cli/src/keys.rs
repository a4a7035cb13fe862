//! `ocpay keys generate`: an RSA-2048 key pair in the forms the official SDKs take.

use std::fs;
use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use ocpay_protocol::SigningKey;

#[derive(clap::Subcommand)]
pub(crate) enum KeysCommand {
    /// Write private-key.pem (PKCS#8, mode 0600) and public-key.pem (SubjectPublicKeyInfo).
    Generate {
        /// Directory to write the pair into (created if missing).
        #[arg(long)]
        out: PathBuf,
    },
}

pub(crate) fn run(command: KeysCommand) -> anyhow::Result<()> {
    match command {
        KeysCommand::Generate { out } => {
            let files = generate(&out)?;
            crate::print_json(&serde_json::json!({
                "privateKeyFile": files.private_key,
                "publicKeyFile": files.public_key,
            }))
        }
    }
}

pub(crate) struct KeyFiles {
    pub(crate) private_key: PathBuf,
    pub(crate) public_key: PathBuf,
}

/// Generates a pair into `dir`. An existing private key is never overwritten.
pub(crate) fn generate(dir: &Path) -> anyhow::Result<KeyFiles> {
    ensure_free(dir)?;
    write(dir, SigningKey::generate()?)
}

/// Fails when `dir` holds a private key already, before anything else is done with a new pair.
pub(crate) fn ensure_free(dir: &Path) -> anyhow::Result<()> {
    let private_key = dir.join("private-key.pem");
    if private_key.exists() {
        anyhow::bail!("{} exists already: choose another directory for new keys", private_key.display());
    }
    Ok(())
}

/// Writes `key` into `dir` as a pair. An existing private key is never overwritten.
pub(crate) fn write(dir: &Path, key: SigningKey) -> anyhow::Result<KeyFiles> {
    fs::create_dir_all(dir).with_context(|| format!("create {}", dir.display()))?;
    let private_key = dir.join("private-key.pem");
    let public_key = dir.join("public-key.pem");
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&private_key)
        .with_context(|| format!("create {} (it must not exist yet)", private_key.display()))?;
    let write = |path: &Path| format!("write {}", path.display());
    file.write_all(key.to_pkcs8_pem()?.as_bytes()).with_context(|| write(&private_key))?;
    file.sync_all().with_context(|| write(&private_key))?;
    fs::write(&public_key, key.verifying_key().to_pem()).with_context(|| write(&public_key))?;
    Ok(KeyFiles { private_key, public_key })
}
