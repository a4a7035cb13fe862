"""Makes one sandbox order-code `pay` with Alipay's official Python SDK and a private key file,
for the developer center's browser test: the key is the one the browser generated at sign-up.

As in crates/server/tests/interop/alipay_python_sdk.py, only the SDK's connection factory is
replaced (plain HTTP to the test server's port instead of HTTPS to 443); signing, the request
model and the verification of the answer are the SDK's own.

Inputs (environment): OCPAY_GATEWAY, OCPAY_CLIENT_ID, OCPAY_PRIVATE_KEY_FILE (PKCS#8 PEM),
OCPAY_PLATFORM_KEY (base64 SubjectPublicKeyInfo), OCPAY_NOTIFY_URL, OCPAY_PAYMENT_REQUEST_ID.
Prints the answer's JSON on stdout; exits non-zero when the SDK fails or the pay is refused.
"""

import http.client
import json
import os
import sys
import urllib.parse

from cryptography.hazmat.primitives import serialization

import com.alipay.ams.api.net.default_http_rpc as rpc
from com.alipay.ams.api.default_alipay_client import DefaultAlipayClient
from com.alipay.ams.api.model.amount import Amount
from com.alipay.ams.api.model.merchant import Merchant
from com.alipay.ams.api.model.order import Order
from com.alipay.ams.api.model.store import Store
from com.alipay.ams.api.request.pay.order_code_payment_request import OrderCodePaymentRequest


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


setattr(rpc, "__get_http_connection", plain_http_connection)

with open(os.environ["OCPAY_PRIVATE_KEY_FILE"], encoding="ascii") as file:
    private_key = pkcs1_body(file.read())
client = DefaultAlipayClient(
    os.environ["OCPAY_GATEWAY"], os.environ["OCPAY_CLIENT_ID"], private_key, os.environ["OCPAY_PLATFORM_KEY"]
)

order = Order()
order.order_description = "Two flat whites"
order.order_amount = Amount("USD", 1250)
merchant = Merchant()
merchant.reference_merchant_id = "M0001"
merchant.merchant_mcc = "5812"
merchant.merchant_name = "Browser Test Cafe"
store = Store()
store.store_mcc = "5812"
store.store_name = "Browser Test Cafe Orchard"
store.reference_store_id = "S0001"
merchant.store = store
order.merchant = merchant
request = OrderCodePaymentRequest(
    payment_request_id=os.environ["OCPAY_PAYMENT_REQUEST_ID"],
    order=order,
    currency="USD",
    amount_in_cents=1250,
    payment_notify_url=os.environ["OCPAY_NOTIFY_URL"],
)

# execute() verifies the answer's signature against the platform key and raises if it fails.
body = client.execute(request)
answer = json.loads(body)
print(json.dumps(answer))
if answer.get("result", {}).get("resultCode") != "SUCCESS":
    print("the pay was refused: " + body, file=sys.stderr)
    sys.exit(1)
