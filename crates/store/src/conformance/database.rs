//! The PostgreSQL server the tests run against, and a scratch schema per test.

/// The PostgreSQL server the tests run against: `OCPAY_TEST_DATABASE_URL`, or the local server
/// on 127.0.0.1:5432. A test that needs it is `#[ignore]`d (so that a run without it shows it
/// as skipped) and asks for it only when run on purpose: then a missing server fails it.
pub fn postgres_test_url() -> String {
    let url = std::env::var("OCPAY_TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned());
    let reachable = {
        let url = url.clone();
        // The synchronous client runs its own runtime: keep it off the caller's.
        std::thread::spawn(move || postgres::Client::connect(&url, postgres::NoTls).map(drop))
            .join()
            .expect("the connection thread")
    };
    if let Err(error) = reachable {
        panic!("this test needs PostgreSQL at {url} (set OCPAY_TEST_DATABASE_URL): {error}");
    }
    url
}

/// A new, empty schema in the database at `url`, and a URL whose connections use it: each test
/// gets a database of its own without the cost of creating one. Schemas that earlier runs left
/// behind for over an hour are dropped.
pub fn postgres_scratch_schema(url: &str) -> String {
    let url = url.to_owned();
    std::thread::spawn(move || {
        let mut client = postgres::Client::connect(&url, postgres::NoTls).expect("connect to PostgreSQL");
        let now = jiff::Timestamp::now().as_second();
        let stale: Vec<String> = client
            .query("SELECT nspname::text FROM pg_namespace WHERE nspname LIKE 'ocpay\\_t\\_%'", &[])
            .expect("list the scratch schemas")
            .iter()
            .map(|row| row.get::<_, String>(0))
            .filter(|name| {
                name.split('_')
                    .nth(2)
                    .and_then(|at| at.parse::<i64>().ok())
                    .is_some_and(|at| at < now - 3_600)
            })
            .collect();
        for name in stale {
            let _ = client.batch_execute(&format!("DROP SCHEMA IF EXISTS \"{name}\" CASCADE"));
        }
        let schema = format!("ocpay_t_{now}_{}", random_suffix());
        client.batch_execute(&format!("CREATE SCHEMA \"{schema}\"")).expect("create a scratch schema");
        let separator = if url.contains('?') { '&' } else { '?' };
        format!("{url}{separator}options=-csearch_path%3D{schema}")
    })
    .join()
    .expect("the schema thread")
}

fn random_suffix() -> u64 {
    use std::hash::{BuildHasher, RandomState};
    RandomState::new().hash_one(std::process::id()) % 1_000_000_000
}
