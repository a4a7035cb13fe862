//! Table-driven checks of `pay` validation: each bad field gets `PARAM_ILLEGAL` with a message
//! that names it, and nothing is stored.

use ocpay_protocol::Api;
use ocpay_protocol::payments::InquiryPaymentRequest;
use ocpay_testkit::{TestApp, pay_request, unique_id};
use serde_json::{Value, json};

/// Applies `change` to a valid pay body: `(JSON pointer, Some(value))` sets, `None` removes.
fn body_with(request_id: &str, pointer: &str, value: Option<Value>) -> Vec<u8> {
    let mut body = serde_json::to_value(pay_request(request_id, "USD", 1000)).unwrap();
    let (parent, key) = pointer.rsplit_once('/').unwrap();
    let object = body.pointer_mut(parent).unwrap().as_object_mut().unwrap();
    match value {
        Some(value) => {
            object.insert(key.to_owned(), value);
        }
        None => {
            object.remove(key);
        }
    }
    serde_json::to_vec(&body).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_bad_field_is_named() {
    let app = TestApp::spawn().await;
    let merchant = app.merchant().await;
    let long = |n: usize| Some(json!("x".repeat(n)));
    let cases: Vec<(&str, Option<Value>, &str)> = vec![
        ("/productCode", None, "productCode: is required"),
        ("/productCode", Some(json!("ONLINE_PAYMENT")), "productCode: must be IN_STORE_PAYMENT"),
        ("/paymentRequestId", None, "paymentRequestId: is required"),
        ("/paymentRequestId", Some(json!("a b")), "paymentRequestId: must be printable ASCII without spaces"),
        ("/paymentRequestId", long(65), "paymentRequestId: must be at most 64 characters"),
        ("/paymentRequestId", Some(json!({"id": 1})), "paymentRequestId: invalid type: map"),
        ("/paymentFactor", None, "paymentFactor: is required"),
        (
            "/paymentFactor/inStorePaymentScenario",
            Some(json!("PaymentCode")),
            "paymentFactor.inStorePaymentScenario: must be OrderCode",
        ),
        (
            "/paymentMethod/paymentMethodType",
            Some(json!("ALIPAY_CN")),
            "paymentMethod.paymentMethodType: must be CONNECT_WALLET",
        ),
        ("/paymentAmount", None, "paymentAmount: is required"),
        (
            "/paymentAmount/currency",
            Some(json!("XXX")),
            "paymentAmount.currency: must be a three-letter ISO 4217",
        ),
        (
            "/paymentAmount/currency",
            Some(json!("usd")),
            "paymentAmount.currency: must be a three-letter ISO 4217",
        ),
        ("/paymentAmount/currency", None, "paymentAmount.currency: is required"),
        ("/paymentAmount/value", None, "paymentAmount.value: is required"),
        (
            "/paymentAmount/value",
            Some(json!("-5")),
            "paymentAmount.value: must be a whole number of minor units",
        ),
        (
            "/paymentAmount/value",
            Some(json!("10.00")),
            "paymentAmount.value: must be a whole number of minor units",
        ),
        (
            "/paymentAmount/value",
            Some(json!("1e3")),
            "paymentAmount.value: must be a whole number of minor units",
        ),
        ("/paymentAmount/value", Some(json!(12.5)), "paymentAmount.value: invalid type: floating point"),
        ("/paymentAmount/value", Some(json!("0")), "paymentAmount.value: must be greater than zero"),
        (
            "/paymentAmount/value",
            Some(json!("9999999999999999999")),
            "paymentAmount.value: must be a whole number",
        ),
        (
            "/paymentAmount/value",
            Some(json!("1001")),
            "paymentAmount.value: must not exceed order.orderAmount.value",
        ),
        ("/order", None, "order: is required"),
        ("/order/orderDescription", None, "order.orderDescription: is required"),
        ("/order/orderDescription", long(257), "order.orderDescription: must be at most 256 characters"),
        (
            "/order/orderDescription",
            Some(json!("a\u{0}b")),
            "order.orderDescription: must not contain control characters",
        ),
        // Bidirectional controls would make what the payer's page shows read otherwise.
        (
            "/order/orderDescription",
            Some(json!("Coffee \u{202E}00.001 DSU")),
            "order.orderDescription: must not contain bidirectional control characters",
        ),
        (
            "/order/merchant/merchantName",
            Some(json!("\u{2067}Cafe")),
            "order.merchant.merchantName: must not contain bidirectional control characters",
        ),
        (
            "/order/merchant/merchantDisplayName",
            Some(json!("Cafe\u{202A}")),
            "order.merchant.merchantDisplayName: must not contain bidirectional control characters",
        ),
        (
            "/order/merchant/store/storeName",
            Some(json!("Store \u{2069}")),
            "order.merchant.store.storeName: must not contain bidirectional control characters",
        ),
        ("/order/orderAmount", None, "order.orderAmount: is required"),
        (
            "/order/orderAmount/currency",
            Some(json!("EUR")),
            "order.orderAmount.currency: must equal paymentAmount.currency",
        ),
        ("/order/referenceOrderId", long(65), "order.referenceOrderId: must be at most 64 characters"),
        ("/order/merchant", None, "order.merchant: is required"),
        ("/order/merchant/referenceMerchantId", None, "order.merchant.referenceMerchantId: is required"),
        ("/order/merchant/merchantName", None, "order.merchant.merchantName: is required"),
        ("/order/merchant/merchantMCC", Some(json!("58a2")), "order.merchant.merchantMCC: must be 4 digits"),
        ("/order/merchant/store", None, "order.merchant.store: is required"),
        (
            "/order/merchant/store/referenceStoreId",
            None,
            "order.merchant.store.referenceStoreId: is required",
        ),
        (
            "/order/merchant/store/storeName",
            Some(json!("")),
            "order.merchant.store.storeName: must not be empty",
        ),
        (
            "/order/merchant/store/storeMCC",
            Some(json!("123")),
            "order.merchant.store.storeMCC: must be 4 digits",
        ),
        (
            "/paymentNotifyUrl",
            Some(json!("ftp://merchant.example/")),
            "paymentNotifyUrl: must be an http or https URL",
        ),
        ("/paymentRedirectUrl", Some(json!("not a url")), "paymentRedirectUrl: must be an absolute URL"),
        ("/paymentExpiryTime", Some(json!("tomorrow")), "paymentExpiryTime: must be ISO 8601 with an offset"),
        (
            "/settlementStrategy",
            Some(json!({"settlementCurrency": "usd"})),
            "settlementStrategy.settlementCurrency: must be a three-letter",
        ),
        ("/merchantRegion", Some(json!("sg")), "merchantRegion: must be a two-letter upper-case"),
        ("/extendInfo", long(2049), "extendInfo: must be at most 2048 characters"),
    ];
    for (pointer, value, expected) in cases {
        let request_id = unique_id("PR");
        let body = body_with(&request_id, pointer, value);
        let answer: Value =
            serde_json::from_str(&merchant.client.call_raw(Api::Pay, body).await.unwrap()).unwrap();
        assert_eq!(answer["result"]["resultCode"], "PARAM_ILLEGAL", "{pointer}: {answer}");
        assert_eq!(answer["result"]["resultStatus"], "F", "{pointer}");
        let message = answer["result"]["resultMessage"].as_str().unwrap();
        assert!(message.starts_with(expected), "{pointer}: got {message:?}, expected {expected:?}");
        let inquiry = InquiryPaymentRequest { payment_id: None, payment_request_id: Some(request_id) };
        let stored = merchant.client.inquire_payment(&inquiry).await.unwrap();
        assert_eq!(stored.result.result_code, "ORDER_NOT_EXIST", "{pointer}: nothing is stored");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bodies_that_are_not_json_objects() {
    let app = TestApp::spawn().await;
    let merchant = app.merchant().await;
    for body in ["", "not json", "{", "[]", "null", "{\"paymentRequestId\": \"x\"} trailing"] {
        let answer: Value = serde_json::from_str(
            &merchant.client.call_raw(Api::Pay, body.as_bytes().to_vec()).await.unwrap(),
        )
        .unwrap();
        assert_eq!(answer["result"]["resultCode"], "PARAM_ILLEGAL", "{body:?}");
        let message = answer["result"]["resultMessage"].as_str().unwrap();
        assert!(message.starts_with("request body: is not a valid JSON object"), "{body:?}: {message}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_the_python_sdk_sends_is_accepted() {
    let app = TestApp::spawn().await;
    let merchant = app.merchant().await;
    // Numbers where the docs say strings, an integer request id, three-space indentation.
    let body = r#"{
   "productCode": "IN_STORE_PAYMENT",
   "paymentRequestId": 1764204526,
   "paymentAmount": {
      "currency": "USD",
      "value": 1231
   },
   "paymentMethod": {
      "paymentMethodType": "CONNECT_WALLET"
   },
   "paymentFactor": {
      "inStorePaymentScenario": "OrderCode"
   },
   "order": {
      "orderDescription": "This is an order.",
      "orderAmount": {
         "currency": "USD",
         "value": 1231
      },
      "merchant": {
         "referenceMerchantId": "seller2322174590000",
         "merchantMCC": "7011",
         "merchantName": "Some_Mer",
         "store": {
            "referenceStoreId": "store232217459000011",
            "storeName": "Some_Store",
            "storeMCC": "7011"
         }
      }
   },
   "paymentNotifyUrl": "https://www.yourNotifyUrl.com"
}"#;
    let answer: Value =
        serde_json::from_str(&merchant.client.call_raw(Api::Pay, body.as_bytes().to_vec()).await.unwrap())
            .unwrap();
    assert_eq!(answer["result"]["resultCode"], "SUCCESS", "{answer}");
    assert_eq!(answer["paymentRequestId"], "1764204526", "always answered as a string");
    assert_eq!(answer["paymentAmount"], json!({"currency": "USD", "value": "1231"}));
}
