//! The Reports page: a settled sandbox day's three files and its batch listed and downloaded
//! byte for byte; another participant's files, crafted names and planted symlinks answering
//! exactly as a missing file; the files' and batches' pages; the SFTP account changed by an
//! owner (keys, password, allow-list), read by developers and viewers, who may not change it;
//! CSRF; and, with OpenSSH, a login with the key added on the page against the host key the
//! page shows.

use std::path::{Path, PathBuf};

use jiff::SignedDuration;
use ocpay_core::ids::ClientId;
use ocpay_core::portal::Role;
use ocpay_server::clock::Clock as _;
use ocpay_settlement::batches::Settler;
use ocpay_testkit::{TestApp, TestParticipant, unique_id};
use reqwest::StatusCode;

use crate::browser::{Browser, Page};
use crate::payments::{audited, pay, signed_in};

/// An ECDSA key and an RSA key made with `ssh-keygen`, and the ECDSA key's fingerprint as
/// `ssh-keygen -l` prints it.
const ECDSA_KEY: &str = "ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBFvkZfGT8cmrcjFa1UFW16kl4O6KwsQEKdTxnl0kVUWxsIBK8bzuVJ5zmnniRXtYeXct63D4uLsJUBY6d6XEzNw= ops@shop.example";
const ECDSA_FINGERPRINT: &str = "SHA256:xLFgbe0FLvaotzDkXMgqcGBQ1wDBV9SxPUbD6kB5Ws4";
const ED25519_KEY: &str =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGb8Jbq2cFy0FiTjdVBCtmj/3b8c0uSdLBT7vwCIA3pq alice@laptop";
const RSA_KEY: &str = "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQCkPNcg/JCxxP3EQbCUESfZwQMUq1BwczOCkVgJIiTRBA+X7khFJImeDn7enI+bJP9k5qD3WX4Jk9y58WyzDNSESOj6yddHs9T132ySjCgBYTvZkxVcilK3ntQaPHtVQIurB+nEswIDXsbQWB3eGmOc3ACnGFwwT8Jx3mpbh0Kv86vWcY5RUsAhTHbM77RujanHZ9R9UQLZju2AFbSjyK/PW72TYnCkPEf1j0DbsOSBWnfvwjZZbv8hhsTTTu+8rfdNbGh6X6Xr4Olrm5JfD1VFQZFWpr+otDzf43rNzemMUDphgpQIDdaARCEPp2x9oCkVk9FMQfQlOWgSCN9q6Rep old@shop.example";

fn client_id(participant: &TestParticipant) -> ClientId {
    ClientId::parse(&participant.client_id).unwrap()
}

/// The folder of a participant's reconciliation files.
fn tree(app: &TestApp, client_id: &str) -> PathBuf {
    ocpay_settlement::reports_root(&app.state.config.data_dir).join("v1/settlements").join(client_id)
}

/// A participant's files on disk: (folder, name, path), in order.
fn files_of(app: &TestApp, client_id: &str) -> Vec<(String, String, PathBuf)> {
    let mut found = Vec::new();
    let Ok(days) = std::fs::read_dir(tree(app, client_id)) else { return found };
    for day in days {
        let day = day.unwrap();
        for file in std::fs::read_dir(day.path()).unwrap() {
            let file = file.unwrap();
            let (folder, name) = (day.file_name(), file.file_name());
            found.push((folder.to_str().unwrap().to_owned(), name.to_str().unwrap().to_owned(), file.path()));
        }
    }
    found.sort();
    found
}

/// Pays a new payment of `merchant` through the sandbox's test payer, as `browser` (an owner
/// or a developer of the merchant).
pub(crate) async fn paid(browser: &Browser, merchant: &TestParticipant, minor: i64) {
    let id = pay(merchant, &unique_id("PR-REPORT"), minor).await;
    let path = format!("/portal/payments/{id}");
    let csrf = browser.get(&path).await.csrf();
    let answer = browser.post(&format!("{path}/pay"), &[("csrf", &csrf), ("outcome", "SUCCESS")]).await;
    assert_eq!(answer.status, StatusCode::SEE_OTHER, "{}", answer.body);
}

/// Settles everything the sandbox participant completed so far, and writes its files, as
/// `ocpay settle --now` does.
pub(crate) async fn settle(app: &TestApp, client_id: &ClientId) {
    // What completed at the cutoff belongs to the next batch: the test clock stands still.
    app.clock.advance(SignedDuration::from_secs(1));
    let root = ocpay_settlement::reports_root(&app.state.config.data_dir);
    let settler = Settler::new(app.state.store.clone(), app.state.settings.settlement.clone(), root);
    settler.settle_now(client_id, app.clock.now()).await.expect("settle now");
}

/// The `href` of the link whose text is `text`.
fn link_to(page: &Page, text: &str) -> Option<String> {
    let end = page.body.find(&format!("\" rel=\"next\">{text}</a>"))?;
    let start = page.body[..end].rfind("href=\"")? + "href=\"".len();
    Some(crate::payments::unescape(&page.body[start..end]))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_settled_day_lists_its_three_files_and_its_batch_and_each_downloads_as_written() {
    let app = TestApp::spawn().await;
    let merchant = app.merchant().await;
    let owner = signed_in(&app, &merchant.client_id, "owner@shop.example", Role::Owner).await;
    let empty = owner.get("/portal/reports").await;
    assert_eq!(empty.status, StatusCode::OK);
    assert!(empty.body.contains("No files yet") && empty.body.contains("No batches yet"), "{}", empty.body);
    assert!(empty.body.contains("<a href=\"/portal/reports\" aria-current=\"page\">Reports</a>"));

    paid(&owner, &merchant, 1250).await;
    paid(&owner, &merchant, 250).await;
    settle(&app, &client_id(&merchant)).await;
    let files = files_of(&app, &merchant.client_id);
    let names: Vec<&str> = files.iter().map(|(_, name, _)| name.as_str()).collect();
    assert_eq!(names.len(), 3, "{names:?}");
    assert!(names.iter().any(|name| name.starts_with("transactionItems_")), "{names:?}");
    assert!(names.iter().any(|name| name.starts_with("settlementItems_USD_")), "{names:?}");
    assert!(names.iter().any(|name| name.starts_with("settlementSummary_USD_")), "{names:?}");
    let batches = app.state.store.settlement_batches(Some(&client_id(&merchant)), None, 10).await.unwrap();
    assert_eq!(batches.len(), 1);

    // A viewer reads the page and downloads every file, byte for byte.
    let viewer = signed_in(&app, &merchant.client_id, "viewer@shop.example", Role::Viewer).await;
    let page = viewer.get("/portal/reports").await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    for (folder, name, path) in &files {
        let href = format!("/portal/reports/{folder}/{name}");
        assert!(
            page.body.contains(&format!("<a href=\"{href}\" download>{name}</a>")),
            "{name}: {}",
            page.body
        );
        let download = viewer.get(&href).await;
        assert_eq!(download.status, StatusCode::OK, "{href}");
        assert_eq!(download.body, std::fs::read_to_string(path).unwrap(), "{href} is the file as written");
        let header = |name: &str| download.headers.get(name).map(|value| value.to_str().unwrap().to_owned());
        assert_eq!(header("content-type").as_deref(), Some("text/csv; charset=utf-8"));
        assert_eq!(header("content-disposition"), Some(format!("attachment; filename=\"{name}\"")));
        assert_eq!(header("content-length"), Some(std::fs::metadata(path).unwrap().len().to_string()));
        assert_eq!(header("cache-control").as_deref(), Some("no-store"));
        assert_eq!(header("x-content-type-options").as_deref(), Some("nosniff"));
    }
    for kind in ["Transaction details", "Settlement details", "Settlement summary"] {
        assert!(page.body.contains(kind), "{kind}");
    }
    let batch = &batches[0];
    assert_eq!((batch.count, batch.amount.minor()), (2, 1500));
    for shown in [batch.id.clone(), batch.amount.to_string(), "Closed: payout due".to_owned()] {
        assert!(page.body.contains(&shown), "{shown}: {}", page.body);
    }
    assert!(page.body.contains("<td data-label=\"Transactions\" class=\"num\">2</td>"), "{}", page.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_participants_files_crafted_names_and_symlinks_answer_as_missing() {
    let app = TestApp::spawn().await;
    let victim = app.merchant().await;
    let attacker = app.merchant().await;
    let victim_owner = signed_in(&app, &victim.client_id, "owner@victim.example", Role::Owner).await;
    paid(&victim_owner, &victim, 990).await;
    settle(&app, &client_id(&victim)).await;
    let files = files_of(&app, &victim.client_id);
    assert_eq!(files.len(), 3);
    let folder = files[0].0.clone();

    let browser = signed_in(&app, &attacker.client_id, "owner@attacker.example", Role::Owner).await;
    let missing = browser.get(&format!("/portal/reports/{folder}/transactionItems_{folder}_999.csv")).await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    let settlement_items = files.iter().find(|(_, name, _)| name.starts_with("settlementItems_")).unwrap();
    let (victim_id, items) = (&victim.client_id, &settlement_items.1);

    // The attacker's folder gets a link to the victim's file under a name the settlement crate
    // writes, and a day folder that links to the victim's.
    let own = tree(&app, &attacker.client_id);
    std::fs::create_dir_all(own.join(&folder)).unwrap();
    std::os::unix::fs::symlink(&settlement_items.2, own.join(&folder).join(items)).unwrap();
    std::os::unix::fs::symlink(tree(&app, victim_id).join(&folder), own.join("20200101")).unwrap();

    let mut probes: Vec<String> =
        files.iter().map(|(day, name, _)| format!("/portal/reports/{day}/{name}")).collect();
    probes.extend([
        format!("/portal/reports/{folder}/..%2F..%2F{victim_id}%2F{folder}%2F{items}"),
        format!("/portal/reports/..%2F{victim_id}%2F{folder}/{items}"),
        format!("/portal/reports/{folder}/%2Fetc%2Fpasswd"),
        format!("/portal/reports/{folder}/..%2F..%2F..%2F..%2F..%2Fsftp-host-key"),
        format!("/portal/reports/{folder}/notes.txt"),
        format!("/portal/reports/{folder}/.{items}.tmp"),
        format!("/portal/reports/{folder}/{items}%00.csv"),
        "/portal/reports/20200101/".to_owned() + items,
        format!("/portal/reports/2020-01-01/{items}"),
        format!("/portal/reports/20261131/{items}"),
    ]);
    for probe in &probes {
        let answer = browser.get(probe).await;
        assert_eq!(answer.status, StatusCode::NOT_FOUND, "{probe}: {}", answer.body);
        assert_eq!(answer.body, missing.body, "{probe} answers exactly as a missing file");
    }
    let page = browser.get("/portal/reports").await;
    assert!(!page.body.contains(items.as_str()) && !page.body.contains("2020-01-01"), "links are not listed");
    assert!(!page.body.contains(victim_id.as_str()), "nothing of the victim's");

    // Its owner gets the file; signed out, nobody does.
    let own_file = victim_owner.get(&format!("/portal/reports/{folder}/{items}")).await;
    assert_eq!(own_file.status, StatusCode::OK);
    let signed_out = Browser::new(&app).get(&format!("/portal/reports/{folder}/{items}")).await;
    assert_eq!(signed_out.location.as_deref(), Some("/portal/login"));
    assert_eq!(Browser::new(&app).get("/portal/reports").await.location.as_deref(), Some("/portal/login"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn files_and_batches_page_by_date_and_by_keyset() {
    let app = TestApp::spawn_with(|config| config.portal_page_size = 2).await;
    let merchant = app.merchant().await;
    let owner = signed_in(&app, &merchant.client_id, "owner@shop.example", Role::Owner).await;
    paid(&owner, &merchant, 100).await;
    // Five batches: after the first, each settle-now makes one, empty, at its own cutoff.
    for _ in 0..5 {
        settle(&app, &client_id(&merchant)).await;
        app.clock.advance(SignedDuration::from_mins(1));
    }
    let batches = app.state.store.settlement_batches(Some(&client_id(&merchant)), None, 10).await.unwrap();
    assert_eq!(batches.len(), 5);
    // Four older days of files, besides those just written (today's, or two if the clock
    // crossed a cutoff).
    let mut settled: Vec<String> =
        files_of(&app, &merchant.client_id).into_iter().map(|file| file.0).collect();
    settled.dedup();
    settled.reverse();
    for day in ["20240105", "20240301", "20250620", "20251231"] {
        let folder = tree(&app, &merchant.client_id).join(day);
        std::fs::create_dir_all(&folder).unwrap();
        std::fs::write(folder.join(format!("transactionItems_{day}_000.csv")), format!("{day}\n<END>\n"))
            .unwrap();
        std::fs::write(folder.join("readme.txt"), "not a report").unwrap();
    }

    let (mut batch_ids, mut days) = (Vec::new(), Vec::new());
    let mut path = Some("/portal/reports".to_owned());
    while let Some(current) = path {
        let page = owner.get(&current).await;
        assert_eq!(page.status, StatusCode::OK, "{current}");
        batch_ids.extend(crate::payments::all_between(&page.body, "<td data-label=\"Batch\"><code>", "<"));
        path = link_to(&page, "Older batches");
        assert!(batch_ids.len() <= 5, "the pages end");
    }
    let newest_first: Vec<String> = batches.iter().map(|batch| batch.id.clone()).collect();
    assert_eq!(batch_ids, newest_first, "every batch once, newest first");

    let mut path = Some("/portal/reports".to_owned());
    while let Some(current) = path {
        let page = owner.get(&current).await;
        let mut shown = crate::payments::all_between(&page.body, "<td data-label=\"Date\">", "<");
        shown.dedup();
        assert!(shown.len() <= 2, "two days a page: {shown:?}");
        days.extend(shown);
        assert!(!page.body.contains("readme.txt"), "only report files are listed");
        path = link_to(&page, "Older files");
    }
    let mut expected: Vec<String> =
        settled.iter().map(|day| format!("{}-{}-{}", &day[..4], &day[4..6], &day[6..])).collect();
    expected.extend(["2025-12-31", "2025-06-20", "2024-03-01", "2024-01-05"].map(str::to_owned));
    assert_eq!(days, expected, "every day once, newest first");
    let other = owner.get("/portal/reports/20240105/readme.txt").await;
    assert_eq!(other.status, StatusCode::NOT_FOUND, "only report files download");

    let refused = owner.get("/portal/reports?after=nonsense").await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST);
    assert!(refused.body.contains("after: not a page of batches"), "{}", refused.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_owner_adds_keys_sets_a_password_and_limits_addresses() {
    let app = TestApp::spawn().await;
    let merchant = app.merchant().await;
    let id = client_id(&merchant);
    let owner = signed_in(&app, &merchant.client_id, "owner@shop.example", Role::Owner).await;
    let page = owner.get("/portal/reports").await;
    assert!(page.body.contains("No SFTP account yet"), "{}", page.body);
    assert!(page.body.contains(&format!("<dt>Login name</dt><dd><code>{}</code>", merchant.client_id)));
    assert!(page.body.contains("<dt>Port</dt><dd>2222</dd>"), "the configured SFTP port");
    assert!(page.body.contains("not made yet"), "no host key before the SFTP server first starts");
    assert!(!page.body.contains("Save the allowed addresses"), "no allow-list before an account");
    let csrf = page.csrf();
    let post = |path: &'static str, fields: Vec<(&'static str, String)>| {
        let (owner, csrf) = (&owner, csrf.clone());
        async move {
            let mut form: Vec<(&str, &str)> = vec![("csrf", &csrf)];
            form.extend(fields.iter().map(|(name, value)| (*name, value.as_str())));
            owner.post(path, &form).await
        }
    };

    // An allow-list alone makes no account.
    let refused = post("/portal/reports/sftp/allow-list", vec![("networks", "10.0.0.0/8".into())]).await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST);
    assert!(refused.body.contains("allowed addresses: there is no SFTP account"), "{}", refused.body);

    // A key makes the account, kept without its comment.
    let added = post("/portal/reports/sftp/keys", vec![("public_key", format!("{ECDSA_KEY}\n"))]).await;
    assert_eq!(added.location.as_deref(), Some("/portal/reports?saved=key-added#sftp"), "{}", added.body);
    let account = app.state.store.sftp_account(&id).await.unwrap().expect("the account exists");
    assert_eq!(account.public_keys, [ECDSA_KEY.strip_suffix(" ops@shop.example").unwrap()]);
    assert_eq!(account.password_hash, None);
    let page = owner.get("/portal/reports?saved=key-added").await;
    assert!(page.body.contains("Public key added"), "{}", page.body);
    assert!(page.body.contains(ECDSA_FINGERPRINT), "the fingerprint ssh-keygen -l prints: {}", page.body);
    assert!(page.body.contains("ecdsa-sha2-nistp256"));

    // Refused keys name the field, keep what was typed and change nothing.
    for (typed, reason) in [
        (RSA_KEY, "ssh-rsa keys are not accepted"),
        ("ssh-ed25519 not-base64!", "not an OpenSSH public key"),
        ("", "not an OpenSSH public key"),
    ] {
        let refused = post("/portal/reports/sftp/keys", vec![("public_key", typed.into())]).await;
        assert_eq!(refused.status, StatusCode::BAD_REQUEST, "{typed}");
        assert!(
            refused.body.contains("public key: ") && refused.body.contains(reason),
            "{typed}: {}",
            refused.body
        );
        assert!(refused.body.contains(&format!(">{typed}</textarea>")), "the field keeps what was typed");
    }
    assert_eq!(app.state.store.sftp_account(&id).await.unwrap().unwrap().public_keys.len(), 1);

    let added = post("/portal/reports/sftp/keys", vec![("public_key", ED25519_KEY.into())]).await;
    assert_eq!(added.status, StatusCode::SEE_OTHER);

    // A password, never shown; an empty one is refused.
    let refused = post("/portal/reports/sftp/password", vec![("password", String::new())]).await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST);
    assert!(refused.body.contains("password: the password is empty"), "{}", refused.body);
    let set =
        post("/portal/reports/sftp/password", vec![("password", "a long sftp passphrase".into())]).await;
    assert_eq!(set.location.as_deref(), Some("/portal/reports?saved=password#sftp"));
    let account = app.state.store.sftp_account(&id).await.unwrap().unwrap();
    assert!(account.password_hash.as_deref().is_some_and(|hash| hash.starts_with("$argon2id$")));
    assert_eq!(account.public_keys.len(), 2, "the keys stay");
    let page = owner.get("/portal/reports").await;
    assert!(page.body.contains("<dt>Password</dt><dd>set</dd>"), "{}", page.body);
    assert!(!page.body.contains("a long sftp passphrase") && !page.body.contains("$argon2id$"));

    // The allow-list: canonical networks, one a line; a bad one names the field; empty is any.
    let saved =
        post("/portal/reports/sftp/allow-list", vec![("networks", "10.1.2.3/8\r\n\r\n192.0.2.7\r\n".into())])
            .await;
    assert_eq!(saved.location.as_deref(), Some("/portal/reports?saved=allow-list#sftp"), "{}", saved.body);
    assert_eq!(
        app.state.store.sftp_account(&id).await.unwrap().unwrap().allowed_networks,
        ["10.0.0.0/8", "192.0.2.7/32"]
    );
    let page = owner.get("/portal/reports").await;
    assert!(page.body.contains(">10.0.0.0/8\n192.0.2.7/32</textarea>"), "{}", page.body);
    let refused =
        post("/portal/reports/sftp/allow-list", vec![("networks", "10.0.0.0/8\n10.0.0.0/33".into())]).await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST);
    assert!(refused.body.contains("allowed addresses: not an address or a network"), "{}", refused.body);
    assert!(refused.body.contains(">10.0.0.0/8\n10.0.0.0/33</textarea>"), "the field keeps what was typed");
    assert_eq!(app.state.store.sftp_account(&id).await.unwrap().unwrap().allowed_networks.len(), 2);
    post("/portal/reports/sftp/allow-list", vec![("networks", String::new())]).await;
    assert!(app.state.store.sftp_account(&id).await.unwrap().unwrap().allowed_networks.is_empty());

    // Removing a key: the account's own only, once.
    let kept = ED25519_KEY.strip_suffix(" alice@laptop").unwrap();
    let removed = post("/portal/reports/sftp/keys/remove", vec![("public_key", kept.into())]).await;
    assert_eq!(removed.location.as_deref(), Some("/portal/reports?saved=key-removed#sftp"));
    let again = post("/portal/reports/sftp/keys/remove", vec![("public_key", kept.into())]).await;
    assert_eq!(again.status, StatusCode::NOT_FOUND);
    let account = app.state.store.sftp_account(&id).await.unwrap().unwrap();
    assert_eq!(account.public_keys.len(), 1, "the other key stays");

    let client = &merchant.client_id;
    assert_eq!(audited(&app, client, "portal.sftpAddKey", 2).await, ["SUCCESS"; 2]);
    assert_eq!(audited(&app, client, "portal.sftpPassword", 1).await, ["SUCCESS"]);
    assert_eq!(audited(&app, client, "portal.sftpAllowList", 2).await, ["SUCCESS"; 2]);
    assert_eq!(audited(&app, client, "portal.sftpRemoveKey", 1).await, ["SUCCESS"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn developers_and_viewers_read_the_account_and_changes_need_an_owner_and_the_token() {
    let app = TestApp::spawn().await;
    let merchant = app.merchant().await;
    let other = app.merchant().await;
    let id = client_id(&merchant);
    let owner = signed_in(&app, &merchant.client_id, "owner@shop.example", Role::Owner).await;
    let csrf = owner.get("/portal/reports").await.csrf();
    owner.post("/portal/reports/sftp/keys", &[("csrf", &csrf), ("public_key", ED25519_KEY)]).await;
    let before = app.state.store.sftp_account(&id).await.unwrap().unwrap();
    let kept = before.public_keys[0].clone();
    let changes = [
        ("/portal/reports/sftp/keys", "public_key", ECDSA_KEY),
        ("/portal/reports/sftp/keys/remove", "public_key", kept.as_str()),
        ("/portal/reports/sftp/password", "password", "a long sftp passphrase"),
        ("/portal/reports/sftp/allow-list", "networks", "10.0.0.0/8"),
    ];

    for (email, role) in [("dev@shop.example", Role::Developer), ("viewer@shop.example", Role::Viewer)] {
        let browser = signed_in(&app, &merchant.client_id, email, role).await;
        let page = browser.get("/portal/reports").await;
        assert_eq!(page.status, StatusCode::OK);
        assert!(page.body.contains("Your role") && page.body.contains("owners change it"), "{}", page.body);
        assert!(page.body.contains(&kept), "{email} reads the keys");
        for form in ["Add this key", "Set the password", "Save the allowed addresses", "Remove this key"] {
            assert!(!page.body.contains(form), "{email} gets no {form}");
        }
        for (path, field, value) in changes {
            let answer = browser.post(path, &[("csrf", &page.csrf()), (field, value)]).await;
            assert_eq!(answer.status, StatusCode::FORBIDDEN, "{email} {path}");
        }
    }
    assert_eq!(app.state.store.sftp_account(&id).await.unwrap().unwrap(), before, "nothing changed");
    let client = &merchant.client_id;
    assert_eq!(audited(&app, client, "portal.sftpAddKey", 3).await, ["FORBIDDEN", "FORBIDDEN", "SUCCESS"]);
    assert_eq!(audited(&app, client, "portal.sftpPassword", 2).await, ["FORBIDDEN"; 2]);
    assert_eq!(audited(&app, client, "portal.sftpAllowList", 2).await, ["FORBIDDEN"; 2]);
    assert_eq!(audited(&app, client, "portal.sftpRemoveKey", 2).await, ["FORBIDDEN"; 2]);

    // An owner's change without the session's token, or from another site, changes nothing;
    // signed out, the form leads to the sign-in.
    let cross_site = [("origin", "https://evil.example"), ("sec-fetch-site", "cross-site")];
    for (path, field, value) in changes {
        let forged = owner.post(path, &[("csrf", "forged"), (field, value)]).await;
        assert_eq!(forged.status, StatusCode::FORBIDDEN, "{path}");
        let answer = owner.post_with(path, &[("csrf", &csrf), (field, value)], &cross_site).await;
        assert_eq!(answer.status, StatusCode::FORBIDDEN, "{path}");
        let signed_out = Browser::new(&app).post(path, &[("csrf", "x"), (field, value)]).await;
        assert_eq!(signed_out.location.as_deref(), Some("/portal/login"), "{path}");
    }
    assert_eq!(app.state.store.sftp_account(&id).await.unwrap().unwrap(), before, "nothing changed");

    // Another participant's owner changes only its own account, whatever the form says.
    let stranger = signed_in(&app, &other.client_id, "owner@other.example", Role::Owner).await;
    let csrf = stranger.get("/portal/reports").await.csrf();
    let answer =
        stranger.post("/portal/reports/sftp/keys/remove", &[("csrf", &csrf), ("public_key", &kept)]).await;
    assert_eq!(answer.status, StatusCode::NOT_FOUND, "a key of another's account is not there to remove");
    let answer = stranger
        .post(
            "/portal/reports/sftp/password",
            &[("csrf", &csrf), ("password", "x"), ("client_id", client.as_str())],
        )
        .await;
    assert_eq!(answer.status, StatusCode::SEE_OTHER);
    assert_eq!(
        app.state.store.sftp_account(&id).await.unwrap().unwrap(),
        before,
        "the merchant's is as it was"
    );
    assert!(app.state.store.sftp_account(&client_id(&other)).await.unwrap().unwrap().password_hash.is_some());
}

/// Runs `script` with OpenSSH's `sftp` in batch mode as `user` with the key at `key`, pinning
/// the host key in `known_hosts`.
async fn openssh_sftp(dir: &Path, port: u16, user: &str, key: &Path, script: &str) -> std::process::Output {
    use tokio::io::AsyncWriteExt as _;
    let mut command = tokio::process::Command::new("sftp");
    command
        .current_dir(dir)
        .args(["-o", "BatchMode=yes", "-b", "-", "-F", "/dev/null", "-P", &port.to_string()])
        .args(["-o", "StrictHostKeyChecking=yes", "-o", "IdentitiesOnly=yes", "-o", "IdentityAgent=none"])
        .args(["-o", "PreferredAuthentications=publickey", "-i"])
        .arg(key)
        .arg("-o")
        .arg(format!("UserKnownHostsFile={}", dir.join("known_hosts").display()))
        .arg(format!("{user}@127.0.0.1"))
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = command.spawn().expect("OpenSSH's sftp client runs");
    let mut stdin = child.stdin.take().unwrap();
    let _ = stdin.write_all(script.as_bytes()).await;
    drop(stdin);
    tokio::time::timeout(std::time::Duration::from_secs(60), child.wait_with_output())
        .await
        .expect("sftp ends")
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs OpenSSH's sftp client: scripts/test runs it"]
async fn a_key_added_on_the_page_logs_in_with_openssh_against_the_host_key_shown() {
    let app = TestApp::spawn().await;
    let merchant = app.merchant().await;
    let owner = signed_in(&app, &merchant.client_id, "owner@shop.example", Role::Owner).await;
    paid(&owner, &merchant, 700).await;
    settle(&app, &client_id(&merchant)).await;
    let (folder, name, path) = files_of(&app, &merchant.client_id).remove(0);

    // The SFTP server of the app's data directory, as `ocpay serve` starts it (on a free port).
    let mut settings = app.state.settings.sftp.clone();
    settings.listen = "127.0.0.1:0".parse().unwrap();
    settings.listen_configured = true;
    let server = ocpay_sftp::start_for_data_dir(
        &settings,
        &app.state.config.data_dir,
        app.state.store.clone(),
        app.clock.clone(),
    )
    .await
    .unwrap()
    .expect("SFTP is on");
    let port = server.local_addr().port();

    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("id_ed25519");
    let made = std::process::Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", "ops@shop.example", "-f"])
        .arg(&key)
        .output()
        .expect("ssh-keygen runs");
    assert!(made.status.success(), "{}", String::from_utf8_lossy(&made.stderr));
    let page = owner.get("/portal/reports").await;
    let public_key = std::fs::read_to_string(key.with_extension("pub")).unwrap();
    let added =
        owner.post("/portal/reports/sftp/keys", &[("csrf", &page.csrf()), ("public_key", &public_key)]).await;
    assert_eq!(added.status, StatusCode::SEE_OTHER, "{}", added.body);

    // The page shows the host key the server presents: pinned, the client connects.
    let page = owner.get("/portal/reports").await;
    let line = crate::payments::all_between(&page.body, "<pre class=\"wrap\" data-copy>", "</pre>").remove(0);
    assert!(line.starts_with("[127.0.0.1]:2222 ssh-ed25519 AAAA"), "{line}");
    let pinned = line.replace("[127.0.0.1]:2222", &format!("[127.0.0.1]:{port}"));
    std::fs::write(dir.path().join("known_hosts"), pinned + "\n").unwrap();
    let got = dir.path().join("got.csv");
    let script = format!("get /v1/settlements/{}/{folder}/{name} {}\n", merchant.client_id, got.display());
    let output = openssh_sftp(dir.path(), port, &merchant.client_id, &key, &script).await;
    assert!(
        output.status.success(),
        "sftp failed:\n{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(std::fs::read(&got).unwrap(), std::fs::read(&path).unwrap());
    server.stop().await;
}
