//! The refunds page: the participant's refunds, of one status when asked, in keyset pages,
//! each linking to its payment; never another participant's.

use ocpay_core::portal::Role;
use ocpay_testkit::{TestApp, unique_id};
use reqwest::StatusCode;

use crate::browser::Browser;
use crate::payments::{all_between, next_link, pay, signed_in};

/// The refund rows of a list page, as (refund id, payment id).
fn rows(body: &str) -> Vec<(String, String)> {
    let payments = all_between(body, "<td data-label=\"Payment\"><a href=\"/portal/payments/", "\"");
    let refunds = all_between(body, "<td data-label=\"Refund\">", "</td>");
    refunds.into_iter().zip(payments).collect()
}

async fn walk(browser: &Browser, first: &str) -> Vec<Vec<(String, String)>> {
    let mut pages = Vec::new();
    let mut path = Some(first.to_owned());
    while let Some(current) = path {
        let page = browser.get(&current).await;
        assert_eq!(page.status, StatusCode::OK, "{current}: {}", page.body);
        pages.push(rows(&page.body));
        path = next_link(&page);
        assert!(pages.len() < 20, "the pages end");
    }
    pages
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_list_pages_by_keyset_filters_by_status_and_links_each_payment() {
    let app = TestApp::spawn_with(|config| config.portal_page_size = 2).await;
    let merchant = app.merchant().await;
    let other = app.merchant().await;
    let owner = signed_in(&app, &merchant.client_id, "owner@shop.example", Role::Owner).await;
    let viewer = signed_in(&app, &merchant.client_id, "viewer@shop.example", Role::Viewer).await;
    let mut payments = Vec::new();
    for n in 0..2 {
        let id = pay(&merchant, &unique_id("PR-REFUNDS"), 10_000).await;
        let path = format!("/portal/payments/{id}");
        let csrf = owner.get(&path).await.csrf();
        owner.post(&format!("{path}/pay"), &[("csrf", &csrf), ("outcome", "SUCCESS")]).await;
        for m in 0..(2 + n) {
            let csrf = owner.get(&path).await.csrf();
            let request_id = format!("RR-{n}-{m}");
            let answer = owner
                .post(
                    &format!("{path}/refund"),
                    &[("csrf", &csrf), ("amount", "1.00"), ("refund_request_id", &request_id)],
                )
                .await;
            assert_eq!(answer.status, StatusCode::SEE_OTHER, "{}", answer.body);
            app.clock.advance(jiff::SignedDuration::from_millis(5));
        }
        payments.push(id);
    }
    // Another merchant's refund is never listed.
    let foreign = pay(&other, &unique_id("PR-FOREIGN"), 10_000).await;
    let other_owner = signed_in(&app, &other.client_id, "owner@other.example", Role::Owner).await;
    let path = format!("/portal/payments/{foreign}");
    let csrf = other_owner.get(&path).await.csrf();
    other_owner.post(&format!("{path}/pay"), &[("csrf", &csrf), ("outcome", "SUCCESS")]).await;
    let csrf = other_owner.get(&path).await.csrf();
    other_owner
        .post(&format!("{path}/refund"), &[("csrf", &csrf), ("amount", "1"), ("refund_request_id", "RR-X")])
        .await;

    let pages = walk(&viewer, "/portal/refunds").await;
    assert_eq!(pages.iter().map(Vec::len).collect::<Vec<_>>(), [2, 2, 1], "five refunds, pages of two");
    let listed = pages.concat();
    let payment_of: Vec<&str> = listed.iter().map(|(_, payment)| payment.as_str()).collect();
    assert_eq!(
        payment_of,
        [&payments[1], &payments[1], &payments[1], &payments[0], &payments[0]],
        "newest first"
    );
    let mut refund_ids: Vec<&String> = listed.iter().map(|(refund, _)| refund).collect();
    refund_ids.dedup();
    assert_eq!(refund_ids.len(), 5, "each refund once");
    assert!(listed.iter().all(|(_, payment)| *payment != foreign));
    let page = viewer.get("/portal/refunds").await;
    assert!(page.body.contains("USD 1.00") && page.body.contains("status-SUCCESS"), "{}", page.body);
    assert!(
        page.body.contains(&format!("<a href=\"/portal/payments/{}\">", payments[1])),
        "links its payment"
    );

    assert_eq!(walk(&viewer, "/portal/refunds?status=SUCCESS").await.concat().len(), 5);
    assert!(walk(&viewer, "/portal/refunds?status=PROCESSING").await.concat().is_empty());
    assert!(walk(&viewer, "/portal/refunds?status=FAIL").await.concat().is_empty());
    let refused = viewer.get("/portal/refunds?status=DONE").await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST);
    assert!(refused.body.contains("status: must be PROCESSING, SUCCESS or FAIL"));
    let refused = viewer.get("/portal/refunds?after=1.%3Cscript%3E").await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST);
    assert!(refused.body.contains("after: not a page of this list") && !refused.body.contains("<script>"));

    assert_eq!(Browser::new(&app).get("/portal/refunds").await.location.as_deref(), Some("/portal/login"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn asynchronous_refunds_show_as_processing_until_they_complete() {
    let app = TestApp::spawn_with(|config| config.refund_async = true).await;
    let merchant = app.merchant().await;
    let owner = signed_in(&app, &merchant.client_id, "owner@shop.example", Role::Owner).await;
    let id = pay(&merchant, &unique_id("PR-ASYNC"), 5_000).await;
    let path = format!("/portal/payments/{id}");
    let csrf = owner.get(&path).await.csrf();
    owner.post(&format!("{path}/pay"), &[("csrf", &csrf), ("outcome", "SUCCESS")]).await;
    let answer = owner
        .post(
            &format!("{path}/refund"),
            &[("csrf", &csrf), ("amount", "50"), ("refund_request_id", "RR-ASYNC")],
        )
        .await;
    assert_eq!(answer.location.as_deref(), Some(format!("{path}?done=refund-processing").as_str()));
    let processing = owner.get("/portal/refunds?status=PROCESSING").await;
    assert_eq!(rows(&processing.body).len(), 1, "{}", processing.body);
    assert!(processing.body.contains("due "), "says when it completes");
    // Due after `refund_async_delay_seconds` (60), well within the session's idle limit.
    app.clock.advance(jiff::SignedDuration::from_secs(61));
    app.background_rounds().await;
    assert!(rows(&owner.get("/portal/refunds?status=PROCESSING").await.body).is_empty());
    assert_eq!(rows(&owner.get("/portal/refunds?status=SUCCESS").await.body).len(), 1);
}
