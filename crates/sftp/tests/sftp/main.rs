//! The SFTP server as participants (and attackers) meet it: a real server on a temporary
//! SQLite store and data directory, driven by OpenSSH's `sftp` client in batch mode, by
//! Python's paramiko and by russh's own client, with the test clock moving lockouts and
//! disabled accounts along.

use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::Arc;

use jiff::{SignedDuration, Timestamp};
use ocpay_core::access::{Grant, Scopes};
use ocpay_core::ids::ClientId;
use ocpay_core::participant::{Participant, ParticipantKind};
use ocpay_server::clock::ManualClock;
use ocpay_server::config::Config;
use ocpay_server::settings::Settings;
use ocpay_sftp::{Running, SftpContext, accounts, host_key};
use ocpay_store::sqlite::{SqliteSettings, SqliteStore};
use ocpay_store::{AuditEvent, NewGrant, NewKey, SftpAccountChange, Store};

mod inprocess;
mod lockout;
mod paramiko;
mod stop;

const PASSWORD: &str = "correct horse battery staple";

/// A server with participants C1, C2 (merchants) and ISV1, each with an SFTP account holding
/// a key of its own (and C1 a password), and one reconciliation file in each merchant's tree.
struct Env {
    dir: tempfile::TempDir,
    store: Arc<dyn Store>,
    clock: Arc<ManualClock>,
    server: Option<Running>,
}

fn client(id: &str) -> ClientId {
    ClientId::parse(id).unwrap()
}

fn start_time() -> Timestamp {
    "2030-01-01T00:00:00Z".parse().unwrap()
}

impl Env {
    async fn new() -> Env {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        std::fs::create_dir_all(&data).unwrap();
        let store: Arc<dyn Store> =
            Arc::new(SqliteStore::open(&SqliteSettings::new(data.join("ocpay.db"))).await.unwrap());
        let clock = Arc::new(ManualClock::new(start_time()));
        let mut env = Env { dir, store, clock, server: None };
        for (id, kind) in [
            ("C1", ParticipantKind::Merchant),
            ("C2", ParticipantKind::Merchant),
            ("ISV1", ParticipantKind::Isv),
        ] {
            let participant = Participant {
                client_id: client(id),
                kind,
                name: format!("{id} Ltd").parse().unwrap(),
                notify_url: None,
                created_at: start_time(),
            };
            let key = NewKey {
                public_key_der: vec![1; 8],
                label: None,
                scopes: Scopes::ALL,
                created_at: start_time(),
                expires_at: None,
            };
            env.store.create_participant(&participant, &key).await.unwrap();
            let public_key = env.keygen(id);
            let change = SftpAccountChange {
                client_id: client(id),
                add_public_key: Some(accounts::normalize_public_key(&public_key).unwrap()),
                password_hash: (id == "C1").then(|| accounts::hash_password(PASSWORD).unwrap()),
                allowed_networks: None,
            };
            env.store.upsert_sftp_account(&change, start_time()).await.unwrap();
        }
        env.place("C1", "20300101/C1-settlement.csv", "batch,amount\nC1-1,100\n");
        env.place("C2", "20300101/C2-settlement.csv", "batch,amount\nC2-1,200\n");
        env.start().await;
        env
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn tree(&self, id: &str) -> PathBuf {
        ocpay_settlement::reports_root(&self.data()).join("v1/settlements").join(id)
    }

    fn place(&self, id: &str, relative: &str, contents: &str) {
        let path = self.tree(id).join(relative);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, contents).unwrap();
    }

    fn key(&self, id: &str) -> PathBuf {
        self.dir.path().join(format!("key-{id}"))
    }

    /// A new Ed25519 key pair at `key-<id>`; returns the public key line.
    fn keygen(&self, id: &str) -> String {
        let path = self.key(id);
        let made = std::process::Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-C", id, "-f"])
            .arg(&path)
            .output()
            .expect("ssh-keygen runs (OpenSSH's client tools)");
        assert!(made.status.success(), "{}", String::from_utf8_lossy(&made.stderr));
        std::fs::read_to_string(path.with_extension("pub")).unwrap()
    }

    async fn start(&mut self) {
        let mut settings = Settings::resolve(&Config::default()).unwrap().sftp;
        settings.auth_timeout = std::time::Duration::from_secs(10);
        let host_key = host_key::load_or_create(&self.data()).unwrap();
        let known =
            host_key::known_hosts_line(host_key.public_key(), "127.0.0.1:1".parse().unwrap()).unwrap();
        let context = SftpContext {
            store: self.store.clone(),
            clock: self.clock.clone(),
            settings,
            reports_root: ocpay_settlement::reports_root(&self.data()),
            host_key,
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let server = ocpay_sftp::start(context, listener).await.unwrap();
        let known = known.replace("[127.0.0.1]:1", &format!("[127.0.0.1]:{}", server.local_addr().port()));
        std::fs::write(self.dir.path().join("known_hosts"), known + "\n").unwrap();
        self.server = Some(server);
    }

    fn port(&self) -> u16 {
        self.server.as_ref().unwrap().local_addr().port()
    }

    /// Runs `script` with OpenSSH's `sftp` in batch mode as `user`, logging in with `key-<key>`.
    async fn sftp_key(&self, user: &str, key: &str, script: &str) -> Output {
        let mut command = self.sftp_command(true);
        command.args(["-o", "PreferredAuthentications=publickey", "-i"]).arg(self.key(key));
        run(command, user, script).await
    }

    /// Runs `script` as `user` logging in with `password`, which OpenSSH reads from an askpass
    /// program (it reads passwords only from a terminal otherwise).
    async fn sftp_password(&self, user: &str, password: &str, script: &str) -> Output {
        let askpass = self.dir.path().join(format!("askpass-{}", password.len()));
        std::fs::write(&askpass, format!("#!/bin/sh\nprintf '%s\\n' '{password}'\n")).unwrap();
        std::fs::set_permissions(&askpass, std::os::unix::fs::PermissionsExt::from_mode(0o700)).unwrap();
        let mut command = self.sftp_command(false);
        command
            .args(["-o", "PreferredAuthentications=password", "-o", "NumberOfPasswordPrompts=1"])
            .env("SSH_ASKPASS", &askpass)
            .env("SSH_ASKPASS_REQUIRE", "force")
            .env("DISPLAY", ":0");
        run(command, user, script).await
    }

    /// `sftp -b -` with the host key pinned and no agent or config file. `-b` turns on
    /// `BatchMode` (no password prompts) unless an earlier `-o` said otherwise: the first value
    /// of an option wins.
    fn sftp_command(&self, batch_mode: bool) -> tokio::process::Command {
        let mut command = tokio::process::Command::new("sftp");
        command
            .current_dir(self.dir.path())
            .arg("-o")
            .arg(if batch_mode { "BatchMode=yes" } else { "BatchMode=no" })
            .args(["-b", "-", "-F", "/dev/null", "-P", &self.port().to_string()])
            .args(["-o", "StrictHostKeyChecking=yes", "-o", "IdentitiesOnly=yes", "-o", "IdentityAgent=none"])
            .arg("-o")
            .arg(format!("UserKnownHostsFile={}", self.dir.path().join("known_hosts").display()));
        command
    }

    async fn audit(&self, id: &str) -> Vec<AuditEvent> {
        self.store.audit_events(&client(id), 1_000).await.unwrap()
    }

    async fn audited(&self, id: &str, api: &str, code: &str) -> Vec<AuditEvent> {
        self.audit(id)
            .await
            .into_iter()
            .filter(|event| event.api == api && event.result_code == code)
            .collect()
    }
}

async fn run(mut command: tokio::process::Command, user: &str, script: &str) -> Output {
    use tokio::io::AsyncWriteExt as _;
    command.arg(format!("{user}@127.0.0.1"));
    command
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = command.spawn().expect("OpenSSH's sftp client runs");
    let mut stdin = child.stdin.take().unwrap();
    // A client refused at login stops reading its batch.
    let _ = stdin.write_all(script.as_bytes()).await;
    drop(stdin);
    tokio::time::timeout(std::time::Duration::from_secs(60), child.wait_with_output())
        .await
        .expect("sftp ends")
        .unwrap()
}

fn text(output: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr))
}

fn assert_ok(output: &Output) {
    assert!(output.status.success(), "sftp failed:\n{}", text(output));
}

fn assert_refused(output: &Output, what: &str) {
    assert!(!output.status.success(), "{what} was allowed:\n{}", text(output));
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs OpenSSH's sftp client: scripts/test runs it"]
async fn a_participant_reads_its_own_tree_and_nothing_else_openssh() {
    let env = Env::new().await;
    let out = env.dir.path().join("got.csv");

    let listing = env
        .sftp_key("C1", "C1", "ls /\nls /v1\nls /v1/settlements\nls -l /v1/settlements/C1/20300101\n")
        .await;
    assert_ok(&listing);
    let listed = text(&listing);
    assert!(listed.contains("C1-settlement.csv"), "{listed}");
    assert!(!listed.contains("C2"), "another participant's tree is not listed: {listed}");
    assert!(listed.contains("-r--r--r--"), "files show as read-only: {listed}");

    let got = env
        .sftp_key(
            "C1",
            "C1",
            &format!("get /v1/settlements/C1/20300101/C1-settlement.csv {}\n", out.display()),
        )
        .await;
    assert_ok(&got);
    assert_eq!(read(&out), "batch,amount\nC1-1,100\n");
    let reads = env.audited("C1", ocpay_sftp::AUDIT_READ, "SUCCESS").await;
    assert_eq!(reads.len(), 1, "{reads:?}");
    assert_eq!(reads[0].idempotency_key.as_deref(), Some("/v1/settlements/C1/20300101/C1-settlement.csv"));
    assert_eq!(reads[0].result_status, "S");
    let logins = env.audited("C1", ocpay_sftp::AUDIT_LOGIN, "SUCCESS").await;
    assert_eq!(logins.len(), 2);
    assert_eq!(logins[0].idempotency_key.as_deref(), Some("127.0.0.1"));

    // Another participant's tree, by every road.
    let c2_file = "/v1/settlements/C2/20300101/C2-settlement.csv";
    for attempt in [
        format!("get {c2_file} {}", out.display()),
        format!(
            "get v1/settlements/C1/../../../v1/settlements/C2/20300101/C2-settlement.csv {}",
            out.display()
        ),
        format!("cd /v1/settlements/C1\nget ../../C2/20300101/C2-settlement.csv {}", out.display()),
        "cd /v1/settlements/C2".to_owned(),
        "ls /v1/settlements/C2".to_owned(),
        "ls /v1/settlements/C2/20300101".to_owned(),
        format!("get /etc/passwd {}", out.display()),
        format!("get /v1/settlements/C1/../../../../etc/passwd {}", out.display()),
        format!("get ../../../../../etc/hostname {}", out.display()),
    ] {
        std::fs::write(&out, "untouched").unwrap();
        let output = env.sftp_key("C1", "C1", &format!("{attempt}\n")).await;
        assert_refused(&output, &attempt);
        assert_eq!(read(&out), "untouched", "{attempt}");
    }

    // Nothing can be changed.
    let local = env.dir.path().join("upload.csv");
    std::fs::write(&local, "forged").unwrap();
    let existing = "/v1/settlements/C1/20300101/C1-settlement.csv";
    for attempt in [
        format!("put {} /v1/settlements/C1/20300101/new.csv", local.display()),
        format!("put {} {existing}", local.display()),
        format!("rename {existing} /v1/settlements/C1/20300101/moved.csv"),
        format!("rm {existing}"),
        "mkdir /v1/settlements/C1/new".to_owned(),
        "rmdir /v1/settlements/C1/20300101".to_owned(),
        format!("symlink {existing} /v1/settlements/C1/link.csv"),
        format!("ln -s {existing} /v1/settlements/C1/link.csv"),
        format!("chmod 777 {existing}"),
    ] {
        let output = env.sftp_key("C1", "C1", &format!("{attempt}\n")).await;
        assert_refused(&output, &attempt);
    }
    assert_eq!(read(&env.tree("C1").join("20300101/C1-settlement.csv")), "batch,amount\nC1-1,100\n");
    let entries: Vec<_> = std::fs::read_dir(env.tree("C1").join("20300101")).unwrap().collect();
    assert_eq!(entries.len(), 1, "nothing was added");

    // Symlinks planted inside the tree are neither listed nor followed.
    std::os::unix::fs::symlink(
        env.tree("C2").join("20300101/C2-settlement.csv"),
        env.tree("C1").join("20300101/leak.csv"),
    )
    .unwrap();
    std::os::unix::fs::symlink(env.tree("C2"), env.tree("C1").join("c2-tree")).unwrap();
    let listing = env.sftp_key("C1", "C1", "ls /v1/settlements/C1\nls /v1/settlements/C1/20300101\n").await;
    assert_ok(&listing);
    assert!(
        !text(&listing).contains("leak.csv") && !text(&listing).contains("c2-tree"),
        "{}",
        text(&listing)
    );
    for attempt in [
        format!("get /v1/settlements/C1/20300101/leak.csv {}", out.display()),
        format!("get /v1/settlements/C1/c2-tree/20300101/C2-settlement.csv {}", out.display()),
        "ls /v1/settlements/C1/c2-tree".to_owned(),
    ] {
        std::fs::write(&out, "untouched").unwrap();
        let output = env.sftp_key("C1", "C1", &format!("{attempt}\n")).await;
        assert_refused(&output, &attempt);
        assert_eq!(read(&out), "untouched", "{attempt}");
    }
    assert_eq!(
        env.audited("C2", ocpay_sftp::AUDIT_READ, "SUCCESS").await.len(),
        0,
        "none of C2's files was read"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs OpenSSH's sftp client: scripts/test runs it"]
async fn wrong_keys_and_guessed_passwords_are_refused_until_the_lockout_ends_openssh() {
    let env = Env::new().await;
    assert_refused(&env.sftp_key("C1", "C2", "ls /\n").await, "another participant's key");
    assert_eq!(env.audited("C1", ocpay_sftp::AUDIT_LOGIN, "WRONG_KEY").await.len(), 1);
    assert_refused(&env.sftp_key("NOBODY", "C1", "ls /\n").await, "an unknown user");

    assert_ok(&env.sftp_password("C1", PASSWORD, "ls /v1/settlements/C1\n").await);
    for guess in 0..5 {
        assert_refused(
            &env.sftp_password("C1", &format!("guess {guess}"), "ls /\n").await,
            "a wrong password",
        );
    }
    assert_eq!(env.audited("C1", ocpay_sftp::AUDIT_LOGIN, "WRONG_PASSWORD").await.len(), 5);
    let account = env.store.sftp_account(&client("C1")).await.unwrap().unwrap();
    assert_eq!(account.locked_until, Some(start_time() + SignedDuration::from_secs(900)));

    assert_refused(&env.sftp_password("C1", PASSWORD, "ls /\n").await, "the right password while locked");
    assert_refused(&env.sftp_key("C1", "C1", "ls /\n").await, "the right key while locked");
    assert_eq!(env.audited("C1", ocpay_sftp::AUDIT_LOGIN, "LOCKED").await.len(), 2);

    env.clock.advance(SignedDuration::from_secs(901));
    assert_ok(&env.sftp_password("C1", PASSWORD, "ls /v1/settlements/C1\n").await);
    let account = env.store.sftp_account(&client("C1")).await.unwrap().unwrap();
    assert_eq!((account.failures, account.locked_until), (0, None), "a success clears the count");
    assert_refused(&env.sftp_password("C2", PASSWORD, "ls /\n").await, "an account without a password");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs OpenSSH's sftp client: scripts/test runs it"]
async fn unused_accounts_and_addresses_outside_the_allow_list_are_refused_openssh() {
    let env = Env::new().await;
    let change = SftpAccountChange {
        client_id: client("C2"),
        add_public_key: None,
        password_hash: None,
        allowed_networks: Some(vec![accounts::parse_network("10.0.0.0/8").unwrap()]),
    };
    env.store.upsert_sftp_account(&change, start_time()).await.unwrap();
    assert_refused(&env.sftp_key("C2", "C2", "ls /\n").await, "an address outside the allow-list");
    let refused = env.audited("C2", ocpay_sftp::AUDIT_LOGIN, "ADDRESS_NOT_ALLOWED").await;
    assert_eq!((refused.len(), refused[0].result_status.as_str()), (1, "F"));

    // C1 logs in on day 30, so is unused only from day 121; ISV1 never logs in.
    env.clock.advance(SignedDuration::from_hours(30 * 24));
    assert_ok(&env.sftp_key("C1", "C1", "ls /\n").await);
    env.clock.advance(SignedDuration::from_hours(61 * 24));
    assert_refused(&env.sftp_key("ISV1", "ISV1", "ls /\n").await, "an account unused for 91 days");
    assert_eq!(env.audited("ISV1", ocpay_sftp::AUDIT_LOGIN, "DISABLED").await.len(), 1);
    assert_ok(&env.sftp_key("C1", "C1", "ls /\n").await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs OpenSSH's sftp client: scripts/test runs it"]
async fn an_isv_sees_a_merchants_tree_while_its_reports_grant_lasts_openssh() {
    let env = Env::new().await;
    let out = env.dir.path().join("got.csv");
    let file = "/v1/settlements/C1/20300101/C1-settlement.csv";
    assert_refused(
        &env.sftp_key("ISV1", "ISV1", &format!("get {file} {}\n", out.display())).await,
        "no grant yet",
    );

    let grant = |id: &str, scopes: &str| Grant {
        id: id.into(),
        merchant: client(if scopes == "reports" { "C1" } else { "C2" }),
        isv: client("ISV1"),
        scopes: Scopes::parse(scopes).unwrap(),
        token_sha256: format!("{id:0>64}"),
        created_at: start_time(),
        expires_at: None,
        revoked_at: None,
    };
    env.store
        .create_grant(&NewGrant { grant: grant("G1", "reports"), notice: None, held: None }, start_time())
        .await
        .unwrap();
    env.store
        .create_grant(&NewGrant { grant: grant("G2", "pay,refund"), notice: None, held: None }, start_time())
        .await
        .unwrap();
    let listing = env.sftp_key("ISV1", "ISV1", "ls /v1/settlements\n").await;
    assert_ok(&listing);
    assert!(
        text(&listing).contains("C1") && !text(&listing).contains("C2"),
        "only the reports grant shows: {}",
        text(&listing)
    );
    assert_ok(&env.sftp_key("ISV1", "ISV1", &format!("get {file} {}\n", out.display())).await);
    assert_eq!(read(&out), "batch,amount\nC1-1,100\n");
    let reads = env.audited("C1", ocpay_sftp::AUDIT_READ, "SUCCESS").await;
    assert_eq!(reads.len(), 1, "the merchant's trail shows the ISV's read: {reads:?}");
    assert_eq!(
        (reads[0].client_id.as_str(), reads[0].agent.as_ref().map(ClientId::as_str)),
        ("ISV1", Some("ISV1"))
    );

    env.store.revoke_grant("G1", start_time()).await.unwrap();
    std::fs::write(&out, "untouched").unwrap();
    assert_refused(
        &env.sftp_key("ISV1", "ISV1", &format!("get {file} {}\n", out.display())).await,
        "a revoked grant",
    );
    assert_eq!(read(&out), "untouched");
    let listing = env.sftp_key("ISV1", "ISV1", "ls /v1/settlements\n").await;
    assert!(!text(&listing).contains("C1"), "{}", text(&listing));
}
