//! The audit trail through a crash: a state change's event commits with the change, so a
//! server killed with SIGKILL right after acknowledging payments has every one of them in the
//! trail, however long the queue of the other events waits to be written.

use ocpay_protocol::ResultStatus;
use ocpay_protocol::payments::InquiryPaymentRequest;
use ocpay_server::config::Config;
use ocpay_server::data_dir::DataDir;
use ocpay_testkit::{Receiver, pay_request};

use super::kill::merchant;
use super::serve_with;

/// Payments acknowledged before the kill.
const PAYS: usize = 20;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_pay_acknowledged_before_a_sigkill_is_in_the_audit_trail() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let data_dir = DataDir::open(&data).unwrap();
    let platform_key = data_dir.platform_key().unwrap().verifying_key();
    let receiver = Receiver::start(platform_key.clone()).await;
    // The queued events wait an hour: only an event that commits with its change survives.
    let mut server = serve_with(&data, &[("OCPAY_AUDIT_FLUSH_INTERVAL_MS", "3600000")]);
    let client = {
        let store = data_dir.open_store(&Config::default()).await.unwrap();
        let clients =
            merchant(&*store, Some(&receiver.url), &platform_key, std::slice::from_ref(&server.url)).await;
        clients.into_iter().next().unwrap()
    };
    let mut acknowledged = Vec::new();
    for n in 0..PAYS {
        let request_id = format!("CRASH-PAY-{n}");
        let payment =
            client.pay(&pay_request(&request_id, "USD", 1_000 + n as i64)).await.expect("pay answers");
        assert_eq!(payment.result.result_status, ResultStatus::S, "{:?}", payment.result);
        acknowledged.push(request_id);
    }
    // A read changes nothing: its event stays queued, and the crash may lose it.
    let inquiry =
        InquiryPaymentRequest { payment_request_id: Some(acknowledged[0].clone()), ..Default::default() };
    client.inquire_payment(&inquiry).await.expect("the inquiry answers");

    server.child.kill().expect("SIGKILL the server");
    server.child.wait().expect("the server is gone");

    let store = data_dir.open_store(&Config::default()).await.unwrap();
    let merchant_id = ocpay_core::ids::ClientId::parse(client.client_id()).unwrap();
    let events = store.audit_events(&merchant_id, 1_000).await.unwrap();
    for request_id in &acknowledged {
        let found: Vec<_> = events
            .iter()
            .filter(|event| event.api == "pay" && event.idempotency_key.as_deref() == Some(request_id))
            .collect();
        assert_eq!(found.len(), 1, "{request_id}: one audit event, committed with the payment: {events:?}");
        assert_eq!((found[0].result_status.as_str(), found[0].result_code.as_str()), ("S", "SUCCESS"));
        assert_eq!(found[0].key_version, Some(1));
    }
}
