//! `ocpay backup` of a platform serving a load of pays and wallet pays, then `ocpay restore`
//! into a new directory and a server on it: every payment acknowledged before the backup began
//! is there as it was acknowledged, and the ledger balances. A restore refuses a directory that
//! is not empty; a backup refuses a PostgreSQL platform.

use std::os::unix::fs::PermissionsExt as _;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ocpay_protocol::ResultStatus;
use ocpay_protocol::model::Amount;
use ocpay_protocol::payments::InquiryPaymentRequest;
use ocpay_sdk::Client;
use ocpay_server::config::Config;
use ocpay_server::data_dir::DataDir;
use ocpay_testkit::{Receiver, pay_request};
use serde_json::Value;

use super::{json, merchant_made_offline, ocpay, serve};

/// An order of the load as its client saw it: when the pay and the wallet pay were
/// acknowledged.
#[derive(Debug)]
struct Acknowledged {
    request_id: String,
    payment_id: String,
    amount: i64,
    paid_at: Instant,
    /// When the payer's wallet pay of the code was acknowledged, if it was.
    wallet_paid_at: Option<Instant>,
}

/// One order: a pay, then the payer pays its code from the wallet. `None` unless the pay was
/// acknowledged.
async fn order(client: &Client, url: &str, request_id: String, amount: i64) -> Option<Acknowledged> {
    let payment = client.pay(&pay_request(&request_id, "USD", amount)).await.ok()?;
    assert_ne!(payment.result.result_status, ResultStatus::F, "{request_id}: {:?}", payment.result);
    if payment.result.result_status != ResultStatus::S {
        return None;
    }
    let paid_at = Instant::now();
    let payment_id = payment.payment_id.clone()?;
    let code = payment.order_code_form.as_ref().and_then(|form| form.text_code())?;
    let token = code.rsplit('/').next()?;
    let wallet = reqwest::Client::new()
        .post(format!("{url}/wallet/api/codes/{token}/pay"))
        .json(&serde_json::json!({ "payerId": "backup-payer" }))
        .send()
        .await;
    let wallet_paid_at = match wallet {
        Ok(response) if response.status() == 200 => Some(Instant::now()),
        _ => None,
    };
    Some(Acknowledged { request_id, payment_id, amount, paid_at, wallet_paid_at })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_backup_under_load_restores_every_payment_acknowledged_before_it() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let receiver = {
        let platform_key = DataDir::open(&data).unwrap().platform_key().unwrap().verifying_key();
        Receiver::start(platform_key).await
    };
    let (client_id, key, platform_key) = merchant_made_offline(&data, None, &receiver.url).await;
    let server = serve(&data);
    let client = Arc::new(
        Client::builder(&server.url, &client_id, key.clone(), platform_key.clone())
            .attempts_max(1)
            .build()
            .unwrap(),
    );

    let stop = Arc::new(AtomicBool::new(false));
    let acknowledged = Arc::new(Mutex::new(Vec::new()));
    let count = Arc::new(AtomicUsize::new(0));
    let workers: Vec<_> = (0..4)
        .map(|worker| {
            let (client, url, stop) = (client.clone(), server.url.clone(), stop.clone());
            let (acknowledged, count) = (acknowledged.clone(), count.clone());
            tokio::spawn(async move {
                for n in 0.. {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    let amount = 1_000 + 10 * (n % 10);
                    if let Some(order) = order(&client, &url, format!("backup-{worker}-{n}"), amount).await {
                        acknowledged.lock().unwrap().push(order);
                        count.fetch_add(1, Ordering::SeqCst);
                    }
                }
            })
        })
        .collect();
    let wait_for = |orders: usize| {
        let count = count.clone();
        async move {
            let started = Instant::now();
            while count.load(Ordering::SeqCst) < orders {
                assert!(started.elapsed() < Duration::from_secs(60), "the load made {orders} orders");
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    };
    wait_for(60).await;

    let archive = dir.path().join("platform.tar");
    let backup_started = Instant::now();
    let backup = {
        let (data, archive) = (data.clone(), archive.clone());
        tokio::task::spawn_blocking(move || {
            ocpay(&["backup", "--data-dir", data.to_str().unwrap(), "--out", archive.to_str().unwrap()])
        })
        .await
        .unwrap()
    };
    let backup_ended = Instant::now();
    assert!(backup.status.success(), "{}", String::from_utf8_lossy(&backup.stderr));
    let done = count.load(Ordering::SeqCst);
    wait_for(done + 20).await;
    assert!(workers.iter().all(|worker| !worker.is_finished()), "the load went on through the backup");
    stop.store(true, Ordering::SeqCst);
    for worker in workers {
        worker.await.unwrap();
    }
    drop(server);

    let report = json(&backup);
    let databases: Vec<&str> =
        report["databases"].as_array().unwrap().iter().map(|db| db["name"].as_str().unwrap()).collect();
    assert_eq!(databases, ["ocpay.db", "ocpay-participants.db"], "{report}");
    let files: Vec<&str> = report["files"].as_array().unwrap().iter().filter_map(Value::as_str).collect();
    assert!(files.contains(&"platform-key.pem") && files.contains(&"admin-token"), "{report}");
    assert!(files.iter().all(|file| !file.contains("-wal") && !file.contains("-shm")), "{report}");
    let mode = std::fs::metadata(&archive).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "the archive holds private keys");
    let leftovers: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.starts_with('.'))
        .collect();
    assert!(leftovers.is_empty(), "the backup's scratch files are gone: {leftovers:?}");

    let restored = dir.path().join("restored");
    let restore =
        ocpay(&["restore", "--from", archive.to_str().unwrap(), "--data-dir", restored.to_str().unwrap()]);
    assert!(restore.status.success(), "{}", String::from_utf8_lossy(&restore.stderr));
    for secret in ["platform-key.pem", "admin-token"] {
        let original = std::fs::read(data.join(secret)).unwrap();
        assert_eq!(std::fs::read(restored.join(secret)).unwrap(), original, "{secret} restored");
        let mode = std::fs::metadata(restored.join(secret)).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "{secret} stays private");
    }
    let mode = std::fs::metadata(&restored).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o700);

    let server = serve(&restored);
    let client = Client::builder(&server.url, &client_id, key, platform_key).build().unwrap();
    let orders = std::mem::take(&mut *acknowledged.lock().unwrap());
    let (mut before, mut during_or_after) = (0, 0);
    for order in &orders {
        if order.paid_at >= backup_started {
            during_or_after += usize::from(order.paid_at <= backup_ended);
            continue;
        }
        before += 1;
        let request =
            InquiryPaymentRequest { payment_id: None, payment_request_id: Some(order.request_id.clone()) };
        let payment = client.inquire_payment(&request).await.expect("the inquiry answers");
        let name = &order.request_id;
        assert_eq!(payment.result.result_status, ResultStatus::S, "{name}: {:?}", payment.result);
        assert_eq!(payment.payment_id.as_ref(), Some(&order.payment_id), "{name}");
        assert_eq!(payment.payment_amount, Some(Amount::new("USD", order.amount)), "{name}");
        if order.wallet_paid_at.is_some_and(|paid| paid < backup_started) {
            assert_eq!(payment.payment_status.as_deref(), Some("SUCCESS"), "{name}: paid before the backup");
        }
    }
    assert!(before >= 60, "{before} payments acknowledged before the backup were checked");
    eprintln!(
        "backup took {:?}; {before} payments acknowledged before it found; {during_or_after} acknowledged during it",
        backup_ended - backup_started
    );
    let store = DataDir::open(&restored).unwrap().open_store(&Config::default()).await.unwrap();
    let check = store.ledger_check().await.unwrap();
    assert!(check.is_sound(), "the restored ledger balances: {check:?}");
}

#[test]
fn restore_refuses_a_directory_that_is_not_empty_and_backup_refuses_postgresql() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let migrated = ocpay(&["migrate", "--data-dir", data.to_str().unwrap()]);
    assert!(migrated.status.success(), "{}", String::from_utf8_lossy(&migrated.stderr));
    let archive = dir.path().join("platform.tar");
    let backup = ocpay(&["backup", "--data-dir", data.to_str().unwrap(), "--out", archive.to_str().unwrap()]);
    assert!(backup.status.success(), "{}", String::from_utf8_lossy(&backup.stderr));
    let again = ocpay(&["backup", "--data-dir", data.to_str().unwrap(), "--out", archive.to_str().unwrap()]);
    assert!(!again.status.success(), "an existing archive is not overwritten");

    let occupied = dir.path().join("occupied");
    std::fs::create_dir(&occupied).unwrap();
    std::fs::write(occupied.join("notes.txt"), "mine").unwrap();
    let refused =
        ocpay(&["restore", "--from", archive.to_str().unwrap(), "--data-dir", occupied.to_str().unwrap()]);
    assert!(!refused.status.success());
    let message = String::from_utf8_lossy(&refused.stderr);
    assert!(message.contains(occupied.to_str().unwrap()) && message.contains("not empty"), "{message}");
    assert_eq!(std::fs::read_dir(&occupied).unwrap().count(), 1, "nothing was written there");

    let empty = dir.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    let restored =
        ocpay(&["restore", "--from", archive.to_str().unwrap(), "--data-dir", empty.to_str().unwrap()]);
    assert!(restored.status.success(), "{}", String::from_utf8_lossy(&restored.stderr));
    assert!(empty.join("ocpay.db").exists() && empty.join("ocpay-participants.db").exists());

    let not_an_archive = dir.path().join("notes.tar");
    std::fs::write(&not_an_archive, "not a tar file at all").unwrap();
    let absent = dir.path().join("absent");
    let refused = ocpay(&[
        "restore",
        "--from",
        not_an_archive.to_str().unwrap(),
        "--data-dir",
        absent.to_str().unwrap(),
    ]);
    assert!(!refused.status.success());
    assert!(!absent.exists(), "a failed restore leaves nothing behind");

    let postgres = dir.path().join("pg.tar");
    let refused = ocpay(&[
        "backup",
        "--data-dir",
        data.to_str().unwrap(),
        "--database-url",
        "postgres://postgres@127.0.0.1:5432/ocpay",
        "--out",
        postgres.to_str().unwrap(),
    ]);
    assert!(!refused.status.success());
    let message = String::from_utf8_lossy(&refused.stderr);
    assert!(message.contains("pg_dump") && message.contains("README"), "{message}");
    assert!(!postgres.exists());
}
