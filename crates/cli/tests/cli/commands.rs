//! What the README documents of single commands that the other CLI tests leave out: exit code
//! 3 for a `U` result, `ocpay listen --forward-to` passing the application's answer back as the
//! acknowledgement, `ocpay serve` refusing a database newer than it knows, and the answers
//! when the PostgreSQL pool is exhausted or a write keeps failing to serialise.

use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use ocpay_protocol::VerifyingKey;
use ocpay_store::conformance;
use ocpay_testkit::{Receiver, Reply};
use serde_json::Value;

use super::{OCPAY, create_participant, json, listen, ocpay, sandbox_merchant, serve, wait_healthy};

fn stdout(output: &Output) -> String {
    format!("{}\n{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr))
}

/// Pays a code as the sandbox payer would.
fn wallet_pay(code_value: &str) {
    let paid = ocpay(&["wallet", "pay", code_value]);
    assert!(paid.status.success(), "{}", stdout(&paid));
}

fn code_value(paid: &Value) -> String {
    paid["orderCodeForm"]["codeDetails"][0]["codeValue"].as_str().expect("a code value").to_owned()
}

#[test]
fn a_u_result_exits_with_3() {
    let (_dir, _data, _server, merchant) = sandbox_merchant();
    let profile = merchant["profile"].as_str().unwrap();
    let pay = |amount: &str, extra: &[&str]| {
        let mut args = vec!["pay", "--profile", profile, "--amount", amount, "--currency", "USD"];
        args.extend_from_slice(extra);
        ocpay(&args)
    };

    // Sandbox amount 9901: the first pay of a request id answers U, and without retries the
    // command exits 3; running it again is the retry, which pays.
    let unknown = pay("9901", &["--payment-request-id", "PR-U", "--attempts", "1"]);
    assert_eq!(unknown.status.code(), Some(3), "U exits 3: {}", stdout(&unknown));
    let answer = json(&unknown);
    assert_eq!(
        (answer["result"]["resultStatus"].as_str(), answer["result"]["resultCode"].as_str()),
        (Some("U"), Some("UNKNOWN_EXCEPTION"))
    );
    let retried = pay("9901", &["--payment-request-id", "PR-U", "--attempts", "1"]);
    assert_eq!(retried.status.code(), Some(0), "the retry succeeds: {}", stdout(&retried));
    // With its default attempts the command retries the U itself.
    let retrying = pay("9901", &["--payment-request-id", "PR-U-RETRIED"]);
    assert_eq!(retrying.status.code(), Some(0), "retried within the command: {}", stdout(&retrying));

    // Sandbox amount 9903: the first inquiry answers U, the next one S.
    let slow = json(&pay("9903", &["--payment-request-id", "PR-INQUIRE"]));
    let payment_id = slow["paymentId"].as_str().unwrap();
    let inquire = || ocpay(&["inquire", "--profile", profile, "--payment-id", payment_id, "--attempts", "1"]);
    let first = inquire();
    assert_eq!(first.status.code(), Some(3), "{}", stdout(&first));
    assert_eq!(json(&first)["result"]["resultCode"], "UNKNOWN_EXCEPTION");
    let second = inquire();
    assert_eq!(second.status.code(), Some(0), "{}", stdout(&second));

    // A refund the wallet completes later answers U / REFUND_IN_PROCESS, which is not retried.
    let paid = json(&pay("20000", &["--payment-request-id", "PR-REFUND"]));
    wallet_pay(&code_value(&paid));
    let refund = ocpay(&[
        "refund",
        "--profile",
        profile,
        "--payment-id",
        paid["paymentId"].as_str().unwrap(),
        "--amount",
        "9902",
        "--currency",
        "USD",
        "--refund-request-id",
        "RR-U",
    ]);
    assert_eq!(refund.status.code(), Some(3), "{}", stdout(&refund));
    assert_eq!(json(&refund)["result"]["resultCode"], "REFUND_IN_PROCESS");
    let found = ocpay(&["inquire-refund", "--profile", profile, "--refund-request-id", "RR-U"]);
    assert_eq!(found.status.code(), Some(0), "an S answer about a processing refund: {}", stdout(&found));
    assert_eq!(json(&found)["refundStatus"], "PROCESSING");
}

#[test]
fn the_platform_key_said_to_sign_is_the_one_that_signs_and_is_never_retired_while_it_does() {
    let (dir, data, server, merchant) = sandbox_merchant();
    let data = data.as_str();
    let profile = merchant["profile"].as_str().unwrap();
    let platform_key = |args: &[&str]| ocpay(&[&["platform-key", "--data-dir", data][..], args].concat());
    let signing = |listed: &Value| -> Vec<(u64, bool)> {
        let keys = listed["keys"].as_array().unwrap();
        keys.iter().map(|key| (key["keyVersion"].as_u64().unwrap(), key["signing"] == true)).collect()
    };
    // Pays, trusting only the platform key in `trusted` (a PEM file).
    let pay_trusting = |trusted: &Path| {
        let trusted = trusted.to_str().unwrap();
        ocpay(&[
            "pay",
            "--profile",
            profile,
            "--platform-key",
            trusted,
            "--amount",
            "500",
            "--currency",
            "USD",
            "--attempts",
            "1",
        ])
    };
    let first_pem = dir.path().join("merchant").join("platform-public-key.pem");

    // A rotation publishes version 2 but leaves version 1 signing, and says so.
    let rotated = platform_key(&["--rotate", "--all"]);
    assert!(rotated.status.success(), "{}", stdout(&rotated));
    assert_eq!(signing(&json(&rotated)), [(1, true), (2, false)]);
    assert!(String::from_utf8_lossy(&rotated.stderr).contains("--activate 2"), "{}", stdout(&rotated));
    assert_eq!(pay_trusting(&first_pem).status.code(), Some(0), "the server still signs with version 1");
    let refused = platform_key(&["--retire", "1"]);
    assert_eq!(refused.status.code(), Some(1), "{}", stdout(&refused));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("signing version"), "{}", stdout(&refused));
    assert_eq!(signing(&json(&platform_key(&["--all"]))), [(1, true), (2, false)], "nothing retired");

    // Activating version 2 makes the running server sign with it within a second.
    let activated = platform_key(&["--activate", "2", "--all"]);
    assert!(activated.status.success(), "{}", stdout(&activated));
    assert_eq!(signing(&json(&activated)), [(1, false), (2, true)]);
    let second_pem = dir.path().join("platform-key-2.pem");
    std::fs::write(&second_pem, platform_key(&[]).stdout).unwrap();
    std::thread::sleep(Duration::from_millis(1_200));
    assert_eq!(pay_trusting(&first_pem).status.code(), Some(1), "version 1 no longer signs");
    assert_eq!(pay_trusting(&second_pem).status.code(), Some(0), "version 2 signs");

    // Only now may version 1 be retired; the server goes on signing with what it publishes.
    let retired = platform_key(&["--retire", "1", "--all"]);
    assert!(retired.status.success(), "{}", stdout(&retired));
    assert_eq!(signing(&json(&retired)), [(2, true)]);
    assert_eq!(platform_key(&["--retire", "2"]).status.code(), Some(1), "the signing version stays");
    std::thread::sleep(Duration::from_millis(1_200));
    assert_eq!(pay_trusting(&second_pem).status.code(), Some(0));
    drop(server);
}

/// Waits until the payment's first notification has `n` recorded attempts, and returns it.
fn notification_after_attempts(data: &str, payment_id: &str, n: usize) -> Value {
    let started = Instant::now();
    loop {
        let listed = json(&ocpay(&["notifications", "list", payment_id, "--data-dir", data]));
        let notification = &listed["notifications"][0];
        if notification["attempts"].as_array().is_some_and(|attempts| attempts.len() >= n) {
            return notification.clone();
        }
        assert!(started.elapsed() < Duration::from_secs(15), "{n} attempts not recorded: {listed}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Kills a child process when dropped.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listen_forwards_and_the_applications_answer_is_the_acknowledgement() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let data = data.to_str().unwrap();
    let server = serve(Path::new(data));
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    // The receiver checks the signature over its own path, so listen is reached at the same one.
    let merchant_dir = dir.path().join("merchant");
    let notify_url = format!("http://127.0.0.1:{port}/merchant/notify");
    let merchant =
        create_participant(data, &merchant_dir, "merchant", &server.url, &["--notify-url", &notify_url]);
    let profile = merchant["profile"].as_str().unwrap().to_owned();
    let platform_pem = std::fs::read_to_string(merchant_dir.join("platform-public-key.pem")).unwrap();
    let application = Receiver::start(VerifyingKey::from_text(&platform_pem).unwrap()).await;
    application.reply_next([Reply::Status(503)]);
    let mut listen = Running(listen(port, &profile, &["--forward-to", &application.url]));
    // Read every line listen prints, so that it never writes to a closed pipe.
    let printed = {
        let stdout = listen.0.stdout.take().unwrap();
        let (sender, receiver) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in std::io::BufRead::lines(std::io::BufReader::new(stdout)).map_while(Result::ok) {
                let _ = sender.send(line);
            }
        });
        receiver
    };

    let paid = json(&ocpay(&["pay", "--profile", &profile, "--amount", "450", "--currency", "USD"]));
    let payment_id = paid["paymentId"].as_str().unwrap().to_owned();
    wallet_pay(&code_value(&paid));
    let printed: Value =
        serde_json::from_str(&printed.recv_timeout(Duration::from_secs(15)).unwrap()).unwrap();
    assert_eq!(
        (printed["verified"].as_bool(), printed["body"]["paymentId"].as_str()),
        (Some(true), Some(payment_id.as_str()))
    );

    // The application answered 503: listen passed it back, so the platform will retry.
    let refused = notification_after_attempts(data, &payment_id, 1);
    assert_eq!(refused["attempts"][0]["httpStatus"], 503, "{refused}");
    assert_eq!(refused["status"], "PENDING", "{refused}");
    let forwarded = application.wait_for(1).await;
    assert!(forwarded[0].verified, "forwarded with its signature headers: {:?}", forwarded[0]);
    assert_eq!(forwarded[0].notification.as_ref().unwrap().payment_id, payment_id);

    // Sent again, the application acknowledges, and so does listen.
    let resent = json(&ocpay(&["notifications", "resend", &payment_id, "--data-dir", data]));
    assert_eq!(resent["queued"], 1);
    let delivered = notification_after_attempts(data, &payment_id, 2);
    assert_eq!(delivered["attempts"][1]["httpStatus"], 200, "{delivered}");
    assert_eq!(delivered["status"], "DELIVERED", "{delivered}");
    let forwarded = application.wait_for(2).await;
    assert_eq!(forwarded[1].notify_id, forwarded[0].notify_id, "the same notification, sent again");
    assert_eq!(forwarded[1].reply, Reply::Ack);
}

/// An empty SQLite database file whose `PRAGMA user_version` is `version`: one 4096-byte page,
/// as `sqlite3 FILE "PRAGMA user_version = N"` writes it.
fn sqlite_file_at_version(version: u32) -> Vec<u8> {
    let mut file = vec![0u8; 4096];
    file[..16].copy_from_slice(b"SQLite format 3\0");
    file[16..24].copy_from_slice(&[0x10, 0x00, 1, 1, 0, 64, 32, 32]);
    file[24..28].copy_from_slice(&1u32.to_be_bytes());
    file[28..32].copy_from_slice(&1u32.to_be_bytes());
    file[60..64].copy_from_slice(&version.to_be_bytes());
    file[92..96].copy_from_slice(&1u32.to_be_bytes());
    file[96..100].copy_from_slice(&3_040_001u32.to_be_bytes());
    file[100..108].copy_from_slice(&[0x0d, 0, 0, 0, 0, 0x10, 0x00, 0]);
    file
}

/// Runs `ocpay serve` with `args`, which must exit on its own within 20 seconds; returns its
/// exit code and standard error.
fn serve_exits(args: &[&str]) -> (Option<i32>, String) {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let listen = format!("127.0.0.1:{port}");
    let mut child = Command::new(OCPAY)
        .arg("serve")
        .args(args)
        .args(["--listen", &listen])
        .env_remove("RUST_LOG")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            let mut stderr = String::new();
            std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
            return (status.code(), stderr);
        }
        if started.elapsed() > Duration::from_secs(20) {
            let _ = child.kill();
            let _ = child.wait();
            panic!("ocpay serve {args:?} kept running (healthy: {})", super::healthy(&listen));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn serve_refuses_a_sqlite_database_newer_than_it_knows() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir(&data).unwrap();
    let known = ocpay_store::sqlite::SCHEMA_VERSIONS.0;
    let newer = u32::try_from(known).unwrap() + 1;
    std::fs::write(data.join("ocpay.db"), sqlite_file_at_version(newer)).unwrap();
    let (code, stderr) = serve_exits(&["--data-dir", data.to_str().unwrap()]);
    assert!(code.is_some_and(|code| code != 0), "exit {code:?}: {stderr}");
    assert!(
        stderr.contains(&format!("schema version {newer}, newer than this ocpay knows ({known})")),
        "the error names both versions: {stderr}"
    );
}

/// Runs SQL on the database at `url`.
fn sql(url: &str, statements: &str) {
    let (url, statements) = (url.to_owned(), statements.to_owned());
    std::thread::spawn(move || {
        let mut client = postgres::Client::connect(&url, postgres::NoTls).expect("connect to PostgreSQL");
        client.batch_execute(&statements).expect("the statements run");
    })
    .join()
    .unwrap();
}

fn sql_count(url: &str, query: &'static str) -> i64 {
    let url = url.to_owned();
    std::thread::spawn(move || {
        let mut client = postgres::Client::connect(&url, postgres::NoTls).expect("connect to PostgreSQL");
        client.query_one(query, &[]).expect("the query runs").get(0)
    })
    .join()
    .unwrap()
}

#[test]
#[ignore = "needs PostgreSQL: scripts/test runs it"]
fn serve_refuses_a_postgres_database_newer_than_it_knows() {
    let url = conformance::postgres_test_url();
    let url = conformance::postgres_scratch_schema(&url);
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let data = data.to_str().unwrap();
    let migrated = ocpay(&["migrate", "--data-dir", data, "--database-url", &url]);
    assert!(migrated.status.success(), "{}", stdout(&migrated));
    let known = ocpay_store::postgres::SCHEMA_VERSION;
    let newer = known + 1;
    let version = i64::try_from(newer).unwrap();
    let insert = url.clone();
    std::thread::spawn(move || {
        let mut client = postgres::Client::connect(&insert, postgres::NoTls).unwrap();
        client.execute("INSERT INTO ocpay_schema (version) VALUES ($1)", &[&version]).unwrap();
    })
    .join()
    .unwrap();
    let (code, stderr) = serve_exits(&["--data-dir", data, "--database-url", &url]);
    assert!(code.is_some_and(|code| code != 0), "exit {code:?}: {stderr}");
    assert!(
        stderr.contains(&format!("schema version {newer}, newer than this ocpay knows ({known})")),
        "the error names both versions: {stderr}"
    );
    let again = ocpay(&["migrate", "--data-dir", data, "--database-url", &url]);
    assert!(!again.status.success(), "migrate refuses it too: {}", stdout(&again));
}

/// An `ocpay serve` on PostgreSQL with extra `OCPAY_*` settings; killed when dropped.
fn serve_postgres(data: &str, url: &str, settings: &[(&str, &str)]) -> (Running, String) {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let address = format!("127.0.0.1:{port}");
    let child = Command::new(OCPAY)
        .args(["serve", "--data-dir", data, "--database-url", url, "--listen", &address])
        .envs(settings.iter().copied())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let running = Running(child);
    wait_healthy(&address);
    (running, format!("http://{address}"))
}

#[test]
#[ignore = "needs PostgreSQL: scripts/test runs it"]
fn an_exhausted_postgres_pool_answers_unknown_exception_after_its_wait() {
    let url = conformance::postgres_test_url();
    let url = conformance::postgres_scratch_schema(&url);
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let data = data.to_str().unwrap();
    let settings = [
        ("OCPAY_POSTGRES_POOL_MAX", "1"),
        ("OCPAY_POSTGRES_POOL_WAIT_MS", "500"),
        ("OCPAY_POSTGRES_STATEMENT_TIMEOUT_MS", "20000"),
    ];
    let (_server, server_url) = serve_postgres(data, &url, &settings);
    let merchant_dir = dir.path().join("merchant");
    let merchant =
        create_participant(data, &merchant_dir, "merchant", &server_url, &["--database-url", &url]);
    let profile = merchant["profile"].as_str().unwrap().to_owned();
    let inquire = |request_id: &str| {
        Command::new(OCPAY)
            .args(["inquire", "--profile", &profile, "--payment-request-id", request_id, "--attempts", "1"])
            .env_remove("RUST_LOG")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };

    // Another session locks the participants table: the first request's read waits for it,
    // holding the pool's only connection.
    let (locked, release) = std::sync::mpsc::channel::<()>();
    let (unlock, released) = std::sync::mpsc::channel::<()>();
    let holder = {
        let url = url.clone();
        std::thread::spawn(move || {
            let mut client = postgres::Client::connect(&url, postgres::NoTls).unwrap();
            let mut transaction = client.transaction().unwrap();
            transaction.batch_execute("LOCK TABLE participant IN ACCESS EXCLUSIVE MODE").unwrap();
            locked.send(()).unwrap();
            let _ = released.recv();
            transaction.commit().unwrap();
        })
    };
    release.recv().unwrap();
    let first = inquire("PR-FIRST");
    let waiting = "SELECT COUNT(*) FROM pg_locks WHERE NOT granted AND relation = 'participant'::regclass";
    let started = Instant::now();
    while sql_count(&url, waiting) == 0 {
        assert!(started.elapsed() < Duration::from_secs(10), "the first request never waited for the lock");
        std::thread::sleep(Duration::from_millis(20));
    }

    let started = Instant::now();
    let second = inquire("PR-SECOND").wait_with_output().unwrap();
    let waited = started.elapsed();
    assert_eq!(second.status.code(), Some(3), "{}", stdout(&second));
    let answer = json(&second);
    assert_eq!(
        (answer["result"]["resultStatus"].as_str(), answer["result"]["resultCode"].as_str()),
        (Some("U"), Some("UNKNOWN_EXCEPTION"))
    );
    assert!(waited >= Duration::from_millis(500), "it waited postgres_pool_wait_ms first: {waited:?}");

    unlock.send(()).unwrap();
    holder.join().unwrap();
    let first = first.wait_with_output().unwrap();
    assert_eq!(
        json(&first)["result"]["resultCode"],
        "ORDER_NOT_EXIST",
        "the waiting request is answered: {}",
        stdout(&first)
    );
}

#[test]
#[ignore = "needs PostgreSQL: scripts/test runs it"]
fn a_postgres_write_that_never_serialises_answers_unknown_exception_after_its_retries() {
    let url = conformance::postgres_test_url();
    let url = conformance::postgres_scratch_schema(&url);
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let data = data.to_str().unwrap();
    let (_server, server_url) = serve_postgres(data, &url, &[("OCPAY_POSTGRES_SERIALIZATION_RETRIES", "3")]);
    let merchant_dir = dir.path().join("merchant");
    let merchant = create_participant(
        data,
        &merchant_dir,
        "merchant",
        &server_url,
        &["--database-url", &url, "--notify-url", "https://merchant.example/notify"],
    );
    let profile = merchant["profile"].as_str().unwrap().to_owned();
    // Every insert of a payment fails as PostgreSQL fails a transaction that cannot serialise;
    // a sequence, which no rollback undoes, counts the attempts.
    sql(
        &url,
        "CREATE SEQUENCE attempts; \
         CREATE FUNCTION never_serialises() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN \
           PERFORM nextval('attempts'); \
           RAISE EXCEPTION 'could not serialize access (forced)' USING ERRCODE = 'serialization_failure'; \
         END $$; \
         CREATE TRIGGER never_serialises BEFORE INSERT ON payment FOR EACH ROW EXECUTE FUNCTION never_serialises();",
    );
    let pay = || {
        ocpay(&[
            "pay",
            "--profile",
            &profile,
            "--amount",
            "1250",
            "--currency",
            "USD",
            "--payment-request-id",
            "PR-SERIAL",
            "--attempts",
            "1",
        ])
    };
    let failed = pay();
    assert_eq!(failed.status.code(), Some(3), "{}", stdout(&failed));
    let answer = json(&failed);
    assert_eq!(
        (answer["result"]["resultStatus"].as_str(), answer["result"]["resultCode"].as_str()),
        (Some("U"), Some("UNKNOWN_EXCEPTION"))
    );
    assert_eq!(sql_count(&url, "SELECT last_value FROM attempts"), 4, "run once and retried three times");
    assert_eq!(sql_count(&url, "SELECT COUNT(*) FROM payment"), 0);

    // Retried with the same request id once the database serialises again, it is paid.
    sql(&url, "DROP TRIGGER never_serialises ON payment");
    let paid = pay();
    assert_eq!(paid.status.code(), Some(0), "{}", stdout(&paid));
}
