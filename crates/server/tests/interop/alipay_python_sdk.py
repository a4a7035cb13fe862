"""Drives an ocpay server with Alipay's official Python SDK (global-alipay-sdk-python).

The SDK's transport is hard-wired to HTTPS on port 443 of the gateway URL's host. With an
https:// gateway (the server on port 443 with a test certificate) the SDK runs exactly as
installed, its transport included; version 1.0.1 does not check the server's certificate, but
this script's own HTTPS calls do, against the test authority in OCPAY_CA_FILE, and a check
against the system's authorities must fail. With an http:// gateway (a test server on a free
port) only the SDK's connection factory is replaced, by plain HTTP to that port. Signing,
verification, request models and JSON are the SDK's own, untouched, either way.

It also plays the merchant's notify endpoint: a paid order's notifyPayment, and its refund's
notifyRefund, must pass the SDK's own webhook check (`webhook_tool.check_signature`) before
they are acknowledged.

With OCPAY_ROLE=acceptance it makes the traffic of three go-live acceptance cases (Payment 1,
Refund 1, and a U answer to pay retried with the same paymentRequestId) and nothing else.

With OCPAY_ROLE=acquirer it plays an acquirer instead: it registers a secondary merchant and
its store with the SDK's merchant registration request, waits until the registration is
approved (the test advances the server's clock past the sandbox's review), reads it back with
the SDK's inquiry requests, and pays for the store.

Inputs (environment): OCPAY_GATEWAY, OCPAY_CA_FILE (with an https:// gateway), OCPAY_CLIENT_ID, OCPAY_PRIVATE_KEY_PEM (PKCS#8 PEM),
OCPAY_PLATFORM_KEY (base64 SubjectPublicKeyInfo), OCPAY_ROLE (merchant by default, acquirer or
acceptance). Exits non-zero on the first failure.
"""

import http.client
import http.server
import json
import os
import queue
import ssl
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request

from cryptography.hazmat.primitives import serialization

import com.alipay.ams.api.net.default_http_rpc as rpc
from com.alipay.ams.api.default_alipay_client import DefaultAlipayClient
from com.alipay.ams.api.model.amount import Amount
from com.alipay.ams.api.model.contact_info import ContactInfo
from com.alipay.ams.api.model.merchant_registration_info import MerchantRegistrationInfo
from com.alipay.ams.api.model.registration_detail import RegistrationDetail
from com.alipay.ams.api.model.merchant import Merchant
from com.alipay.ams.api.model.order import Order
from com.alipay.ams.api.model.store import Store
from com.alipay.ams.api.request.merchant.alipay_merchant_registration_info_query_request import (
    AlipayMerchantRegistrationInfoQueryRequest,
)
from com.alipay.ams.api.request.merchant.alipay_merchant_registration_request import AlipayMerchantRegistrationRequest
from com.alipay.ams.api.request.merchant.alipay_merchant_registration_status_query_request import (
    AlipayMerchantRegistrationStatusQueryRequest,
)
from com.alipay.ams.api.request.pay.alipay_pay_cancel_request import AlipayPayCancelRequest
from com.alipay.ams.api.model.transaction_status_type import TransactionStatusType
from com.alipay.ams.api.model.transaction_type import TransactionType
from com.alipay.ams.api.request.pay.alipay_pay_query_request import AlipayPayQueryRequest
from com.alipay.ams.api.request.pay.alipay_refund_query_request import AlipayRefundQueryRequest
from com.alipay.ams.api.request.pay.alipay_refund_request import AlipayRefundRequest
from com.alipay.ams.api.request.pay.order_code_payment_request import OrderCodePaymentRequest
from com.alipay.ams.api.response.merchant.alipay_merchant_registration_info_query_response import (
    AlipayMerchantRegistrationInfoQueryResponse,
)
from com.alipay.ams.api.response.merchant.alipay_merchant_registration_response import (
    AlipayMerchantRegistrationResponse,
)
from com.alipay.ams.api.response.merchant.alipay_merchant_registration_status_query_response import (
    AlipayMerchantRegistrationStatusQueryResponse,
)
from com.alipay.ams.api.response.pay.alipay_pay_query_response import AlipayPayQueryResponse
from com.alipay.ams.api.response.pay.alipay_pay_response import AlipayPayResponse
from com.alipay.ams.api.response.pay.alipay_refund_query_response import AlipayRefundQueryResponse
from com.alipay.ams.api.response.pay.alipay_refund_response import AlipayRefundResponse
from com.alipay.ams.api.tools.webhook_tool import check_signature

GATEWAY = os.environ["OCPAY_GATEWAY"]
CLIENT_ID = os.environ["OCPAY_CLIENT_ID"]
PLATFORM_KEY = os.environ["OCPAY_PLATFORM_KEY"]


def pkcs1_body(pkcs8_pem):
    """The SDK wants the base64 body of a PKCS#1 key (it adds the RSA PRIVATE KEY armour)."""
    key = serialization.load_pem_private_key(pkcs8_pem.encode(), password=None)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    ).decode()
    return "".join(line for line in pem.splitlines() if not line.startswith("-----"))


def plain_http_connection(url, timeout=15):
    parsed = urllib.parse.urlparse(url)
    return http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=timeout)


if GATEWAY.startswith("https://"):
    # The SDK as installed. This script's own calls trust the test authority alone.
    TRANSPORT = "the SDK's own"
    HTTPS_CONTEXT = ssl.create_default_context(cafile=os.environ["OCPAY_CA_FILE"])
else:
    # The one replacement: plain HTTP to the test server's port instead of HTTPS to 443.
    TRANSPORT = "plain HTTP"
    HTTPS_CONTEXT = None
    setattr(rpc, "__get_http_connection", plain_http_connection)

client = DefaultAlipayClient(GATEWAY, CLIENT_ID, pkcs1_body(os.environ["OCPAY_PRIVATE_KEY_PEM"]), PLATFORM_KEY)


def check(condition, message, body):
    if not condition:
        print("FAILED: " + message + "\n" + body, file=sys.stderr)
        sys.exit(1)


def order_code(payment_request_id, cents, notify_url="https://merchant.example/notify",
               merchant_id="seller2322174590000", store_id="store232217459000011"):
    order = Order()
    order.order_description = "Two flat whites"
    order.order_amount = Amount("USD", cents)
    merchant = Merchant()
    merchant.reference_merchant_id = merchant_id
    merchant.merchant_mcc = "5812"
    merchant.merchant_name = "Demo Cafe"
    store = Store()
    store.store_mcc = "5812"
    store.store_name = "Demo Cafe Orchard"
    store.reference_store_id = store_id
    merchant.store = store
    order.merchant = merchant
    # An integer request id and integer amounts, exactly as the SDK's own example sends them.
    return OrderCodePaymentRequest(
        payment_request_id=payment_request_id,
        order=order,
        currency="USD",
        amount_in_cents=cents,
        payment_notify_url=notify_url,
    )


def inquire(payment_request_id):
    request = AlipayPayQueryRequest()
    request.payment_request_id = payment_request_id
    return json.loads(client.execute(request))


class InStoreRegistrationRequest(AlipayMerchantRegistrationRequest):
    """The SDK's registration request, plus the storeInfo that IN_STORE_PAYMENT needs and the SDK
    does not model (its own fields are serialized by the SDK's own code)."""

    store_info = None

    def to_ams_json(self):
        params = self._AlipayMerchantRegistrationRequest__to_ams_dict()
        params["storeInfo"] = self.store_info
        return json.dumps(obj=params, default=lambda o: o.to_ams_dict(), indent=10)


def act_as_acquirer():
    merchant_id, store_id = "bakery-%d" % int(time.time() * 1000), "tp-01"
    registration = InStoreRegistrationRequest()
    registration.registration_request_id = "reg-" + merchant_id
    registration.product_codes = ["IN_STORE_PAYMENT"]
    registration.pass_through_info = "echo me"
    info = MerchantRegistrationInfo()
    info.reference_merchant_id = merchant_id
    info.merchant_display_name = "Corner Bakery"
    info.merchant_mcc = "5462"
    detail = RegistrationDetail()
    detail.legal_name = "Corner Bakery Pte Ltd"
    contact = ContactInfo()
    contact.contact_no = "6512345678"
    contact.contact_type = "MOBILE_PHONE"
    detail.contact_info = contact
    info.registration_detail = detail
    registration.merchant_info = info
    store = Store()
    store.reference_store_id = store_id
    store.store_name = "Corner Bakery Tanjong Pagar"
    store.store_mcc = "5462"
    registration.store_info = store

    body = client.execute(order_code(int(time.time() * 1000), 800, merchant_id=merchant_id, store_id=store_id))
    check(json.loads(body)["result"]["resultCode"] == "MERCHANT_NOT_REGISTERED", "no pay before registering", body)
    body = client.execute(registration)
    registered = AlipayMerchantRegistrationResponse(body)
    check(registered.result.result_status.name == "S", "the registration is accepted", body)
    check(json.loads(body).get("passThroughInfo") == "echo me", "passThroughInfo is echoed", body)
    check(json.loads(client.execute(registration))["result"]["resultStatus"] == "S", "a replay is accepted", body)

    query = AlipayMerchantRegistrationStatusQueryRequest()
    query.registration_request_id = registration.registration_request_id
    query.reference_merchant_id = merchant_id
    deadline = time.time() + 15
    while True:
        body = client.execute(query)
        status = AlipayMerchantRegistrationStatusQueryResponse(body).registration_result
        check(status is not None, "the status is read", body)
        if status["registrationStatus"] != "PROCESSING" or time.time() > deadline:
            break
        time.sleep(0.05)
    check(status["registrationStatus"] == "APPROVED", "the sandbox approves the registration", body)

    info_query = AlipayMerchantRegistrationInfoQueryRequest()
    info_query.reference_merchant_id = merchant_id
    body = client.execute(info_query)
    found = AlipayMerchantRegistrationInfoQueryResponse(body)
    check(found.merchant_info["merchantDisplayName"] == "Corner Bakery", "the registered merchant is read back", body)
    check(found.product_codes == ["IN_STORE_PAYMENT"], "for in-store payments", body)

    payment_request_id = int(time.time() * 1000)
    body = client.execute(order_code(payment_request_id, 800, merchant_id=merchant_id, store_id=store_id))
    check(json.loads(body)["result"]["resultStatus"] == "S", "the acquirer pays for its approved store", body)
    body = json.dumps(inquire(str(payment_request_id)))
    check(json.loads(body)["paymentStatus"] == "PROCESSING", "the payment is found", body)
    print(json.dumps({"registered": merchant_id, "approved": True, "paid": True}))


def pay_by_wallet(pay_body):
    """Pays an order code as the sandbox's test payer does, through the payer page's JSON API."""
    token = AlipayPayResponse(pay_body).order_code_form.code_details[0].code_value.rsplit("/", 1)[1]
    wallet = urllib.request.Request(
        GATEWAY + "/wallet/api/codes/" + token + "/pay", data=b"{}", headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(wallet, timeout=15, context=HTTPS_CONTEXT) as answer:
        check(json.loads(answer.read())["status"] == "SUCCESS", "the wallet pays", "")


def act_for_acceptance():
    """The traffic of three go-live acceptance cases, made as a till would: Payment 1 (an order
    code paid, and the success seen by inquiring), Refund 1 (a full refund) and a U answer to pay
    retried with the same paymentRequestId (sandbox amount 9901)."""
    first_id = int(time.time() * 1000)
    body = client.execute(order_code(first_id, 1500))
    paid = json.loads(body)
    check(paid["result"]["resultStatus"] == "S", "pay succeeds", body)
    pay_by_wallet(body)
    body = json.dumps(inquire(str(first_id)))
    check(json.loads(body)["paymentStatus"] == "SUCCESS", "the till sees the success", body)

    refund = AlipayRefundRequest()
    refund.refund_request_id = "RR-%d" % first_id
    refund.payment_id = paid["paymentId"]
    refund.refund_amount = Amount("USD", 1500)
    body = client.execute(refund)
    check(AlipayRefundResponse(body).result.result_status.name == "S", "the full refund succeeds", body)

    unknown_id = first_id + 1
    body = client.execute(order_code(unknown_id, 9901))
    check(json.loads(body)["result"]["resultCode"] == "UNKNOWN_EXCEPTION", "9901 answers U first", body)
    body = client.execute(order_code(unknown_id, 9901))
    check(json.loads(body)["result"]["resultStatus"] == "S", "the retry with the same id pays", body)
    print(json.dumps({"acceptance": ["payment-1", "refund-1", "pay-unknown-retried"]}))


if os.environ.get("OCPAY_ROLE") == "acquirer":
    act_as_acquirer()
    sys.exit(0)

if os.environ.get("OCPAY_ROLE") == "acceptance":
    act_for_acceptance()
    sys.exit(0)

if HTTPS_CONTEXT is not None:
    # This script's HTTPS calls really check the server's certificate: against the system's
    # authorities, which never signed the test certificate, the check fails.
    try:
        urllib.request.urlopen(GATEWAY + "/healthz", timeout=15, context=ssl.create_default_context())
        check(False, "the test certificate is refused without the test authority", "")
    except urllib.error.URLError as error:
        check(isinstance(error.reason, ssl.SSLCertVerificationError), "a certificate check fails", str(error))
    with urllib.request.urlopen(GATEWAY + "/healthz", timeout=15, context=HTTPS_CONTEXT) as answer:
        check(answer.read() == b"ok", "the server's certificate passes against the test authority", "")

payment_request_id = int(time.time() * 1000)
body = client.execute(order_code(payment_request_id, 1231))
paid = json.loads(body)
check(paid["result"]["resultStatus"] == "S", "pay succeeds", body)
response = AlipayPayResponse(body)
code_value = response.order_code_form.code_details[0].code_value
check(code_value.startswith(GATEWAY + "/c/"), "the order code points at the server", body)

again = json.loads(client.execute(order_code(payment_request_id, 1231)))
check(again["paymentId"] == paid["paymentId"], "a repeated pay returns the same payment", json.dumps(again))

body = json.dumps(inquire(str(payment_request_id)))
inquiry = json.loads(body)
check(inquiry["paymentStatus"] == "PROCESSING", "the new payment is processing", body)
check(inquiry["paymentId"] == paid["paymentId"], "inquiry finds the payment", body)

cancel = AlipayPayCancelRequest()
cancel.payment_id = paid["paymentId"]
body = client.execute(cancel)
cancelled = json.loads(body)
check(cancelled["result"]["resultStatus"] == "S" and cancelled.get("cancelTime"), "cancel succeeds", body)

body = json.dumps(inquire(str(payment_request_id)))
check(json.loads(body)["paymentStatus"] == "CANCELLED", "the payment is cancelled", body)

body = json.dumps(inquire("no-such-payment"))
check(json.loads(body)["result"]["resultCode"] == "ORDER_NOT_EXIST", "an unknown payment is not found", body)

# A paid order: the notification must pass the SDK's webhook check.
notifications = queue.Queue()


class NotifyEndpoint(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"])).decode("utf-8")
        verified = check_signature(
            "POST", self.path, self.headers["client-id"], self.headers["request-time"], body,
            self.headers["signature"], PLATFORM_KEY,
        )
        notifications.put((verified, json.loads(body)))
        answer = b'{"result":{"resultCode":"SUCCESS","resultStatus":"S","resultMessage":"success"}}' if verified else b"{}"
        self.send_response(200 if verified else 400)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, *args):
        pass


endpoint = http.server.HTTPServer(("127.0.0.1", 0), NotifyEndpoint)
threading.Thread(target=endpoint.serve_forever, daemon=True).start()
notify_url = "http://127.0.0.1:%d/merchant/notify" % endpoint.server_address[1]

paid_request_id = payment_request_id + 1
body = client.execute(order_code(paid_request_id, 2500, notify_url))
paid = json.loads(body)
check(paid["result"]["resultStatus"] == "S", "pay with a notify URL succeeds", body)
pay_by_wallet(body)

def next_notification(notify_type):
    """The next delivery, which the SDK's webhook check must have accepted."""
    try:
        verified, notification = notifications.get(timeout=15)
    except queue.Empty:
        check(False, "a notification arrives", notify_type)
    check(verified, "the SDK's webhook check accepts the platform's signature", json.dumps(notification))
    check(notification["notifyType"] == notify_type, "a " + notify_type, json.dumps(notification))
    return notification


notification = next_notification("PAYMENT_RESULT")
check(notification["result"]["resultStatus"] == "S", "the payment succeeded", json.dumps(notification))
check(notification["paymentId"] == paid["paymentId"], "it is about the paid order", json.dumps(notification))

body = json.dumps(inquire(str(paid_request_id)))
inquiry = json.loads(body)
check(inquiry["paymentStatus"] == "SUCCESS", "the paid order inquires as SUCCESS", body)
check(inquiry["pspCustomerInfo"]["pspName"] == "OCPAY", "who paid is reported", body)

# Refunds of the paid order, through the SDK's own request and response models.
refund_request_id = "RR-%d" % paid_request_id
refund = AlipayRefundRequest()
refund.refund_request_id = refund_request_id
refund.payment_id = paid["paymentId"]
refund.refund_amount = Amount("USD", 1000)
refund.refund_reason = "one coffee was cold"
refund.refund_notify_url = notify_url
body = client.execute(refund)
refunded = AlipayRefundResponse(body)
check(refunded.result.result_status.name == "S", "a partial refund succeeds", body)
check(refunded.refund_id and refunded.refund_time, "the refund has an id and a time", body)
again = json.loads(client.execute(refund))
check(again["refundId"] == refunded.refund_id and again["refundTime"] == refunded.refund_time,
      "a repeated refund is the same refund", json.dumps(again))

notification = next_notification("REFUND_RESULT")
check(notification["refundStatus"] == "SUCCESS", "the refund succeeded", json.dumps(notification))
check(notification["refundId"] == refunded.refund_id, "it is about the refund", json.dumps(notification))

query = AlipayRefundQueryRequest()
query.refund_request_id = refund_request_id
body = client.execute(query)
found = AlipayRefundQueryResponse(body)
check(found.refund_status == "SUCCESS" and found.refund_id == refunded.refund_id, "inquiryRefund finds it", body)
check(found.refund_time == refunded.refund_time, "with the time it succeeded", body)

excess = AlipayRefundRequest()
excess.refund_request_id = refund_request_id + "-2"
excess.payment_id = paid["paymentId"]
excess.refund_amount = Amount("USD", 1501)
body = client.execute(excess)
check(json.loads(body)["result"]["resultCode"] == "REFUND_AMOUNT_EXCEED", "no refund beyond the payment", body)

query = AlipayPayQueryRequest()
query.payment_id = paid["paymentId"]
body = client.execute(query)
transactions = AlipayPayQueryResponse(body).transactions
check(len(transactions) == 1, "the payment lists its refund", body)
check(transactions[0].transaction_type == TransactionType.REFUND, "as a refund", body)
check(transactions[0].transaction_status == TransactionStatusType.SUCCESS, "that succeeded", body)
check(transactions[0].transaction_amount.value == "1000", "of USD 10.00", body)

print(json.dumps({"paymentId": paid["paymentId"], "codeValue": code_value, "status": "CANCELLED", "notified": True,
                  "refunded": True, "transport": TRANSPORT}))
