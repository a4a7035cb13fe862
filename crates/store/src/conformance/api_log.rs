//! The API log: pages by participant (newest first, by keyset) and after an id (oldest first),
//! filters, the bound on each participant's unverified entries, the daily counts, and pruning by
//! age in bounded batches. Another participant's entries are never returned.

use std::sync::Arc;

use ocpay_core::Timestamp;

use crate::{ApiLogEntry, ApiLogFilter, Store};

use super::{at, client};

/// An entry of `client_id` received at `second`, verified or not, with a result code.
fn entry(client_id: &str, second: i64, api: &str, result_code: &str, verified: bool) -> ApiLogEntry {
    ApiLogEntry {
        id: 0,
        request_id: format!("{second:016x}"),
        client_id: client(client_id),
        at: at(second),
        api: api.into(),
        path: format!("/ams/api/v1/payments/{api}"),
        verified,
        key_version: verified.then_some(1),
        agent: (client_id == "ISV1").then(|| client("ISV1")),
        result_status: if result_code == "SUCCESS" { "S" } else { "F" }.into(),
        result_code: result_code.into(),
        http_status: 200,
        latency_micros: 1_500 + second,
        request_headers: format!(r#"{{"client-id":"{client_id}","agent-token":"[redacted]"}}"#),
        request_body: format!(r#"{{"paymentRequestId":"PR-{second}"}}"#),
        response_headers: r#"{"content-type":"application/json; charset=UTF-8"}"#.into(),
        response_body: format!(r#"{{"result":{{"resultCode":"{result_code}"}}}}"#),
        diagnosis: (!verified).then(|| r#"{"cause":"BODY_CHANGED"}"#.to_owned()),
    }
}

/// What was recorded, as a read returns it: with the id the database gave it.
fn with_id(entry: &ApiLogEntry, id: i64) -> ApiLogEntry {
    ApiLogEntry { id, ..entry.clone() }
}

fn ids(entries: &[ApiLogEntry]) -> Vec<i64> {
    entries.iter().map(|entry| entry.id).collect()
}

async fn all(store: &dyn Store, name: &str) -> Vec<ApiLogEntry> {
    store.api_log(&client(name), &ApiLogFilter::default(), None, 1_000).await.unwrap()
}

pub async fn the_api_log_pages_by_participant_and_filters(store: Arc<dyn Store>) {
    let recorded = [
        entry("ALICE", 1, "pay", "SUCCESS", true),
        entry("BOB", 2, "pay", "SUCCESS", true),
        entry("ALICE", 3, "inquiryPayment", "ORDER_NOT_EXIST", true),
        entry("ALICE", 4, "pay", "SIGNATURE_INVALID", false),
        entry("ISV1", 5, "refund", "SUCCESS", true),
        entry("ALICE", 6, "pay", "SUCCESS", true),
    ];
    store.record_api_log(&recorded[..3], 10).await.unwrap();
    store.record_api_log(&recorded[3..], 10).await.unwrap();
    store.record_api_log(&[], 10).await.unwrap();

    let alice = all(&*store, "ALICE").await;
    let apis: Vec<_> = alice.iter().map(|entry| (entry.api.as_str(), entry.at)).collect();
    assert_eq!(
        apis,
        [("pay", at(6)), ("pay", at(4)), ("inquiryPayment", at(3)), ("pay", at(1))],
        "newest first, only ALICE's"
    );
    assert!(alice.windows(2).all(|pair| pair[0].id > pair[1].id), "ids grow in the order recorded");
    assert_eq!(alice[0], with_id(&recorded[5], alice[0].id), "every field reads back as recorded");
    assert_eq!(alice[1], with_id(&recorded[3], alice[1].id), "an unverified entry with its diagnosis");
    let isv = all(&*store, "ISV1").await;
    assert_eq!(isv, vec![with_id(&recorded[4], isv[0].id)], "the agent reads back");
    assert!(all(&*store, "NOBODY").await.is_empty());

    // Keyset pages: each continues below the last id of the one before.
    let alice_ids = ids(&alice);
    let none = ApiLogFilter::default();
    let first = store.api_log(&client("ALICE"), &none, None, 2).await.unwrap();
    assert_eq!(ids(&first), alice_ids[..2]);
    let second = store.api_log(&client("ALICE"), &none, Some(first[1].id), 2).await.unwrap();
    assert_eq!(ids(&second), alice_ids[2..]);
    let past_the_end = store.api_log(&client("ALICE"), &none, Some(second[1].id), 2).await.unwrap();
    assert!(past_the_end.is_empty());

    // Following the log: oldest first after an id.
    let mut oldest_first = alice_ids.clone();
    oldest_first.reverse();
    let after = store.api_log_after(&client("ALICE"), &none, 0, 100).await.unwrap();
    assert_eq!(ids(&after), oldest_first);
    let after = store.api_log_after(&client("ALICE"), &none, oldest_first[1], 1).await.unwrap();
    assert_eq!(ids(&after), oldest_first[2..3], "after an id, at most the limit");
    let bobs = all(&*store, "BOB").await;
    assert!(
        store
            .api_log_after(&client("ALICE"), &none, bobs[0].id - 1, 100)
            .await
            .unwrap()
            .iter()
            .all(|entry| entry.client_id == client("ALICE")),
        "never another participant's"
    );

    // Filters, alone and together, on both reads.
    let filtered = |filter: ApiLogFilter| {
        let store = store.clone();
        async move {
            let newest = store.api_log(&client("ALICE"), &filter, None, 100).await.unwrap();
            let oldest = store.api_log_after(&client("ALICE"), &filter, 0, 100).await.unwrap();
            let mut reversed = ids(&oldest);
            reversed.reverse();
            assert_eq!(ids(&newest), reversed, "both reads see the same entries: {filter:?}");
            newest.iter().map(|entry| entry.at).collect::<Vec<Timestamp>>()
        }
    };
    let pay = ApiLogFilter { api: Some("pay".into()), ..ApiLogFilter::default() };
    assert_eq!(filtered(pay.clone()).await, [at(6), at(4), at(1)]);
    let success = ApiLogFilter { result_code: Some("SUCCESS".into()), ..ApiLogFilter::default() };
    assert_eq!(filtered(success).await, [at(6), at(1)]);
    let window = ApiLogFilter { from: Some(at(3)), to: Some(at(6)), ..ApiLogFilter::default() };
    assert_eq!(filtered(window).await, [at(4), at(3)], "from is inclusive, to exclusive");
    let both = ApiLogFilter { from: Some(at(2)), result_code: Some("SIGNATURE_INVALID".into()), ..pay };
    assert_eq!(filtered(both).await, [at(4)]);
    let nothing = ApiLogFilter { api: Some("cancel".into()), ..ApiLogFilter::default() };
    assert!(filtered(nothing).await.is_empty());
    let late_success =
        ApiLogFilter { result_code: Some("SUCCESS".into()), from: Some(at(2)), ..ApiLogFilter::default() };
    assert_eq!(filtered(late_success).await, [at(6)]);
    // A page of one API continues below the last id of the one before, as unfiltered ones do.
    let pay = ApiLogFilter { api: Some("pay".into()), ..ApiLogFilter::default() };
    let first = store.api_log(&client("ALICE"), &pay, None, 2).await.unwrap();
    let rest = store.api_log(&client("ALICE"), &pay, Some(first[1].id), 2).await.unwrap();
    let times = |page: &[ApiLogEntry]| page.iter().map(|entry| entry.at).collect::<Vec<_>>();
    assert_eq!((times(&first), times(&rest)), (vec![at(6), at(4)], vec![at(1)]));

    // One entry, by its id: only its own participant finds it.
    let mine = &alice[2];
    assert_eq!(store.api_log_entry(&client("ALICE"), mine.id).await.unwrap().as_ref(), Some(mine));
    assert_eq!(store.api_log_entry(&client("BOB"), mine.id).await.unwrap(), None, "another's is never found");
    assert_eq!(store.api_log_entry(&client("ALICE"), bobs[0].id).await.unwrap(), None);
    assert_eq!(store.api_log_entry(&client("ALICE"), i64::MAX).await.unwrap(), None);
}

pub async fn unverified_api_log_entries_are_bounded_per_participant(store: Arc<dyn Store>) {
    let unverified = |name: &str, second: i64| entry(name, second, "pay", "SIGNATURE_INVALID", false);
    let mut batch: Vec<ApiLogEntry> = (1..=5).map(|second| unverified("ALICE", second)).collect();
    batch.insert(2, entry("ALICE", 2, "pay", "SUCCESS", true));
    batch.push(entry("ALICE", 6, "pay", "SUCCESS", true));
    batch.push(unverified("BOB", 7));
    store.record_api_log(&batch, 3).await.unwrap();
    let kept = |entries: &[ApiLogEntry]| {
        let mut kept: Vec<(i64, bool)> =
            entries.iter().map(|entry| (entry.at.as_second() - at(0).as_second(), entry.verified)).collect();
        kept.sort();
        kept
    };
    assert_eq!(
        kept(&all(&*store, "ALICE").await),
        [(2, true), (3, false), (4, false), (5, false), (6, true)],
        "the newest three unverified entries stay, and every verified one"
    );
    assert_eq!(kept(&all(&*store, "BOB").await), [(7, false)], "another participant's bound is its own");

    // A later batch pushes the oldest unverified ones out; verified entries never count.
    store.record_api_log(&[unverified("ALICE", 8), unverified("ALICE", 9)], 3).await.unwrap();
    assert_eq!(
        kept(&all(&*store, "ALICE").await),
        [(2, true), (5, false), (6, true), (8, false), (9, false)]
    );
    let flood: Vec<_> = (10..40).map(|second| unverified("ALICE", second)).collect();
    store.record_api_log(&flood, 3).await.unwrap();
    let alice = all(&*store, "ALICE").await;
    assert_eq!(alice.iter().filter(|entry| !entry.verified).count(), 3, "a flood keeps the bound");
    assert_eq!(alice.iter().filter(|entry| entry.verified).count(), 2, "and leaves verified entries");
    assert_eq!(kept(&all(&*store, "BOB").await), [(7, false)], "nor touches another participant's");

    // With no room for unverified entries, none is kept.
    store
        .record_api_log(&[unverified("BOB", 50), entry("BOB", 51, "pay", "SUCCESS", true)], 0)
        .await
        .unwrap();
    assert_eq!(kept(&all(&*store, "BOB").await), [(51, true)]);
}

pub async fn the_api_log_counts_results_by_day_and_prunes_by_age(store: Arc<dyn Store>) {
    const DAY: i64 = 86_400;
    let day_of = |second: i64| at(second).as_millisecond() / 86_400_000;
    // Entries on three days, seconds after the first day's start.
    let start = DAY - at(0).as_second().rem_euclid(DAY);
    let batch = [
        entry("ALICE", start + 10, "pay", "SUCCESS", true),
        entry("ALICE", start + 20, "pay", "SUCCESS", true),
        entry("ALICE", start + 30, "pay", "PARAM_ILLEGAL", true),
        entry("ALICE", start + DAY + 5, "pay", "SUCCESS", true),
        entry("ALICE", start + 2 * DAY + 5, "pay", "SIGNATURE_INVALID", false),
        entry("BOB", start + DAY + 6, "pay", "SUCCESS", true),
    ];
    store.record_api_log(&batch, 100).await.unwrap();
    let first_day = day_of(start + 10);
    assert_eq!(
        store.api_results_by_day(&client("ALICE"), at(start)).await.unwrap(),
        vec![
            (first_day, "PARAM_ILLEGAL".to_owned(), 1),
            (first_day, "SUCCESS".to_owned(), 2),
            (first_day + 1, "SUCCESS".to_owned(), 1),
            (first_day + 2, "SIGNATURE_INVALID".to_owned(), 1),
        ],
        "by day, then result code; only ALICE's"
    );
    assert_eq!(
        store.api_results_by_day(&client("ALICE"), at(start + DAY)).await.unwrap(),
        vec![(first_day + 1, "SUCCESS".to_owned(), 1), (first_day + 2, "SIGNATURE_INVALID".to_owned(), 1)],
        "from the instant given"
    );
    assert!(store.api_results_by_day(&client("NOBODY"), at(0)).await.unwrap().is_empty());

    // Pruning takes the oldest first, at most the limit at a time, and only what is old enough.
    let newest_id = all(&*store, "ALICE").await[0].id;
    let cutoff = at(start + DAY + 5);
    assert_eq!(store.prune_api_log(cutoff, 2).await.unwrap(), 2);
    assert_eq!(store.prune_api_log(cutoff, 2).await.unwrap(), 1);
    assert_eq!(store.prune_api_log(cutoff, 2).await.unwrap(), 0, "nothing older is left");
    let left: Vec<_> = all(&*store, "ALICE").await.iter().map(|entry| entry.at).collect();
    assert_eq!(left, [at(start + 2 * DAY + 5), at(start + DAY + 5)], "the cutoff's own instant stays");
    assert_eq!(all(&*store, "BOB").await.len(), 1);

    // Pruned to nothing, the log never gives an id again: followers read on by id.
    assert_eq!(store.prune_api_log(at(start + 10 * DAY), 100).await.unwrap(), 3);
    store.record_api_log(&[entry("ALICE", start + 11 * DAY, "pay", "SUCCESS", true)], 100).await.unwrap();
    let again = all(&*store, "ALICE").await;
    assert_eq!(again.len(), 1);
    assert!(again[0].id > newest_id, "id {} after {newest_id}", again[0].id);
}
