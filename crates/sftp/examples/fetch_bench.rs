//! Times OpenSSH's `sftp` fetching one large file from the SFTP server, in process, on
//! loopback: what a participant's download of a big day costs, and whether the server or the
//! client is the limit.
//!
//! `cargo run --release -p ocpay-sftp --example fetch_bench -- [MEGABYTES] [RUNS] [CIPHER]`
//! (default 100 MB, 3 runs, the cipher OpenSSH prefers; needs OpenSSH's `sftp` and
//! `ssh-keygen`). CIPHER is one of `ssh -Q cipher`, e.g. `aes128-gcm@openssh.com`.
//!
//! The file is pseudo-random bytes (nothing to gain from compression, which is off anyway), in
//! a participant's tree of a temporary data directory on a SQLite store. Each run is one `sftp
//! -b -` that logs in with a key and `get`s the file; a run that only logs in and lists `/` is
//! timed too, so that the transfer's own time and rate can be told from the login's. The copy
//! is checked byte for byte.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use ocpay_core::access::Scopes;
use ocpay_core::ids::ClientId;
use ocpay_core::participant::{Participant, ParticipantKind};
use ocpay_server::clock::SystemClock;
use ocpay_server::config::Config;
use ocpay_server::settings::Settings;
use ocpay_sftp::{SftpContext, accounts, host_key};
use ocpay_store::sqlite::{SqliteSettings, SqliteStore};
use ocpay_store::{NewKey, SftpAccountChange, Store};

const FILE: &str = "/v1/settlements/C1/20300101/transactionItems_20300101_000.csv";

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let megabytes: u64 = args.next().map_or(Ok(100), |text| text.parse()).context("MEGABYTES")?;
    let runs: u32 = args.next().map_or(Ok(3), |text| text.parse()).context("RUNS")?;
    let cipher = args.next();
    let dir = tempfile::tempdir()?;
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data)?;

    let store: Arc<dyn Store> =
        Arc::new(SqliteStore::open(&SqliteSettings::new(data.join("ocpay.db"))).await?);
    let now = jiff::Timestamp::now();
    let c1 = ClientId::parse("C1")?;
    let participant = Participant {
        client_id: c1.clone(),
        kind: ParticipantKind::Merchant,
        name: "C1 Ltd".parse()?,
        notify_url: None,
        created_at: now,
    };
    let key = NewKey {
        public_key_der: vec![1; 8],
        label: None,
        scopes: Scopes::ALL,
        created_at: now,
        expires_at: None,
    };
    store.create_participant(&participant, &key).await?;
    let key_file = dir.path().join("id_ed25519");
    let made = std::process::Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(&key_file)
        .output()
        .context("run ssh-keygen")?;
    if !made.status.success() {
        bail!("ssh-keygen: {}", String::from_utf8_lossy(&made.stderr));
    }
    let public_key = std::fs::read_to_string(key_file.with_extension("pub"))?;
    let account = SftpAccountChange {
        client_id: c1,
        add_public_key: Some(accounts::normalize_public_key(&public_key)?),
        password_hash: None,
        allowed_networks: None,
    };
    store.upsert_sftp_account(&account, now).await?;

    let reports_root = ocpay_settlement::reports_root(&data);
    let file = reports_root.join(FILE.trim_start_matches('/'));
    std::fs::create_dir_all(file.parent().unwrap())?;
    write_pseudo_random(&file, megabytes * 1_000_000)?;
    let size = std::fs::metadata(&file)?.len();

    let settings = Settings::resolve(&Config::default())?.sftp;
    let host_key = host_key::load_or_create(&data)?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let address = listener.local_addr()?;
    let known_hosts = dir.path().join("known_hosts");
    std::fs::write(&known_hosts, host_key::known_hosts_line(host_key.public_key(), address)? + "\n")?;
    let context = SftpContext { store, clock: Arc::new(SystemClock), settings, reports_root, host_key };
    let server = ocpay_sftp::start(context, listener).await?;

    let sftp = Sftp { port: address.port(), key: key_file, known_hosts, cipher: cipher.clone() };
    let got = dir.path().join("got.csv");
    let mut logins = Vec::new();
    let mut fetches = Vec::new();
    for _ in 0..runs {
        logins.push(sftp.run("ls /\n").await?);
        let _ = std::fs::remove_file(&got);
        fetches.push(sftp.run(&format!("get {FILE} {}\n", got.display())).await?);
        if !same_bytes(&file, &got)? {
            bail!("the copy differs from the file");
        }
    }
    server.stop().await;

    let median = |times: &mut Vec<Duration>| {
        times.sort();
        times[times.len() / 2]
    };
    let login = median(&mut logins);
    let fetch = median(&mut fetches);
    let transfer = fetch.saturating_sub(login);
    let ms = |time: Duration| u64::try_from(time.as_millis()).unwrap_or(u64::MAX);
    // Bytes per millisecond is kB/s: / 1000 is MB/s.
    let rate = |time: Duration| size / ms(time).max(1) / 1000;
    let cipher = cipher.as_deref().unwrap_or("OpenSSH's first choice");
    println!("file: {} MB; cipher: {cipher}; {runs} runs; medians:", size / 1_000_000);
    println!("  login and ls /:   {:>6} ms", ms(login));
    println!("  login and get:    {:>6} ms ({} MB/s)", ms(fetch), rate(fetch));
    println!("  transfer alone:   {:>6} ms ({} MB/s)", ms(transfer), rate(transfer));
    println!("  every get (ms):   {:?}", fetches.iter().map(|time| ms(*time)).collect::<Vec<_>>());
    Ok(())
}

struct Sftp {
    port: u16,
    key: PathBuf,
    known_hosts: PathBuf,
    cipher: Option<String>,
}

impl Sftp {
    /// Runs `script` with `sftp -b -` as C1 and returns how long the client took.
    async fn run(&self, script: &str) -> anyhow::Result<Duration> {
        use tokio::io::AsyncWriteExt as _;
        let started = Instant::now();
        let mut child = tokio::process::Command::new("sftp")
            .args(["-b", "-", "-F", "/dev/null", "-P", &self.port.to_string(), "-i"])
            .arg(&self.key)
            .args(["-o", "StrictHostKeyChecking=yes", "-o", "IdentitiesOnly=yes", "-o", "IdentityAgent=none"])
            .arg("-o")
            .arg(format!("UserKnownHostsFile={}", self.known_hosts.display()))
            .args(self.cipher.iter().flat_map(|cipher| ["-c", cipher]))
            .arg("C1@127.0.0.1")
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .context("run OpenSSH's sftp")?;
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(script.as_bytes()).await?;
        drop(stdin);
        let output = child.wait_with_output().await?;
        let elapsed = started.elapsed();
        if !output.status.success() {
            bail!("sftp failed: {}", String::from_utf8_lossy(&output.stderr));
        }
        Ok(elapsed)
    }
}

/// `bytes` of an xorshift stream, written in 1 MiB blocks.
fn write_pseudo_random(path: &Path, bytes: u64) -> anyhow::Result<()> {
    let mut out = std::io::BufWriter::new(std::fs::File::create(path)?);
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut block = vec![0u8; 1 << 20];
    let mut left = bytes;
    while left > 0 {
        for chunk in block.chunks_exact_mut(8) {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            chunk.copy_from_slice(&state.to_le_bytes());
        }
        let take = usize::try_from(left.min(block.len() as u64))?;
        out.write_all(&block[..take])?;
        left -= take as u64;
    }
    out.flush()?;
    Ok(())
}

fn same_bytes(a: &Path, b: &Path) -> anyhow::Result<bool> {
    use std::io::Read as _;
    let (mut a, mut b) = (std::fs::File::open(a)?, std::fs::File::open(b)?);
    if a.metadata()?.len() != b.metadata()?.len() {
        return Ok(false);
    }
    let (mut x, mut y) = (vec![0u8; 1 << 20], vec![0u8; 1 << 20]);
    loop {
        let read = a.read(&mut x)?;
        if read == 0 {
            return Ok(true);
        }
        b.read_exact(&mut y[..read])?;
        if x[..read] != y[..read] {
            return Ok(false);
        }
    }
}
