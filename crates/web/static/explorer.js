// The API explorer's script (same origin, loaded by /portal/explorer only; no inline code under
// the page's CSP).
// - Signs the edited request in the browser with WebCrypto (RSASSA-PKCS1-v1_5 over SHA-256)
//   exactly as the protocol asks: `POST <path>\n<client-id>.<Request-Time>.<body>`, the
//   signature base64 and URL-encoded in `Signature: algorithm=RSA256,keyVersion=N,signature=...`.
//   The private key (PKCS#8, or PKCS#1 wrapped into PKCS#8 here) is read from the page's field
//   or a local file and never sent anywhere: only the signed request leaves the page.
// - Sends it to this server's gateway (sandbox participants only) and shows the answer's status,
//   headers and body, and whether its signature verifies with the platform key it names
//   (`POST <path>\n<client-id>.<Response-Time>.<body>`, over the body's bytes as received).
// - Writes the same request as a `curl` command and as a script for Alipay's Python SDK.
"use strict";

(() => {
  const root = document.getElementById("explorer");
  if (!root) return;
  const $ = (id) => document.getElementById(id);
  const encoder = new TextEncoder();
  const algorithm = { name: "RSASSA-PKCS1-v1_5", hash: "SHA-256" };
  let token = root.dataset.token;

  function showError(message) {
    const line = $("explorer-error");
    line.textContent = message;
    line.hidden = !message;
  }

  function base64(bytes) {
    let binary = "";
    for (const byte of new Uint8Array(bytes)) binary += String.fromCharCode(byte);
    return btoa(binary);
  }

  function unbase64(text) {
    const binary = atob(text.replace(/\s+/g, ""));
    return Uint8Array.from(binary, (char) => char.charCodeAt(0));
  }

  // Form-style URL encoding of base64, as Alipay's SDKs write it.
  function urlEncode(text) {
    return text.replace(/\+/g, "%2B").replace(/\//g, "%2F").replace(/=/g, "%3D");
  }

  // A DER length, short or long form.
  function derLength(length) {
    if (length < 0x80) return [length];
    const bytes = [];
    for (let rest = length; rest > 0; rest >>= 8) bytes.unshift(rest & 0xff);
    return [0x80 | bytes.length, ...bytes];
  }

  function der(tag, content) {
    return Uint8Array.from([tag, ...derLength(content.length), ...content]);
  }

  // PKCS#8 PrivateKeyInfo around a PKCS#1 RSAPrivateKey: version 0, rsaEncryption with NULL
  // parameters, the key as an OCTET STRING.
  function pkcs8FromPkcs1(pkcs1) {
    const version = [0x02, 0x01, 0x00];
    const rsaEncryption = [0x30, 0x0d, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01, 0x05, 0x00];
    return der(0x30, [...version, ...rsaEncryption, ...der(0x04, pkcs1)]);
  }

  async function importPrivateKey(text) {
    const trimmed = text.trim();
    if (!trimmed) throw new Error("paste your private key or load it from a file");
    const pkcs1 = /-----BEGIN RSA PRIVATE KEY-----/.test(trimmed);
    if (/-----BEGIN ENCRYPTED PRIVATE KEY-----/.test(trimmed)) {
      throw new Error("the key is encrypted: export it without a passphrase (PKCS#8 or PKCS#1 PEM)");
    }
    const body = trimmed.split("\n").filter((line) => !line.startsWith("-----")).join("");
    let bytes;
    try {
      bytes = unbase64(body);
    } catch {
      throw new Error("the private key is not PEM or base64");
    }
    const tries = pkcs1 ? [pkcs8FromPkcs1(bytes)] : [bytes, pkcs8FromPkcs1(bytes)];
    for (const candidate of tries) {
      try {
        return await crypto.subtle.importKey("pkcs8", candidate, algorithm, false, ["sign"]);
      } catch {
        // Bare base64 may be either form: try the next.
      }
    }
    throw new Error("the private key is not an RSA key in PKCS#8 or PKCS#1");
  }

  async function importPlatformKey(version) {
    const element = document.querySelector(`[data-platform-key="${CSS.escape(version)}"]`);
    if (!element) return null;
    const body = element.textContent.split("\n").filter((line) => !line.startsWith("-----")).join("");
    return crypto.subtle.importKey("spki", unbase64(body), algorithm, false, ["verify"]);
  }

  function selected() {
    return $("api").selectedOptions[0];
  }

  function shellQuote(text) {
    return `'${text.replace(/'/g, "'\\''")}'`;
  }

  function platformKeyBase64(version) {
    const element = document.querySelector(`[data-platform-key="${CSS.escape(version)}"]`)
      || document.querySelector("[data-platform-key]");
    return element ? element.textContent.split("\n").filter((line) => line && !line.startsWith("-----")).join("") : "";
  }

  // The same request as a runnable script for Alipay's official Python SDK.
  function pythonScript(sdkPath, body, keyVersion) {
    const gateway = root.dataset.gateway;
    const signing = document.querySelector("details[open] [data-platform-key]");
    const platformVersion = signing ? signing.dataset.platformKey : "1";
    return [
      "# pip install global-alipay-sdk-python cryptography (Alipay's official SDK, unchanged)",
      "import http.client",
      "import urllib.parse",
      "",
      "from cryptography.hazmat.primitives import serialization as s",
      "import com.alipay.ams.api.net.default_http_rpc as rpc",
      "from com.alipay.ams.api.default_alipay_client import DefaultAlipayClient",
      "from com.alipay.ams.api.request.alipay_request import AlipayRequest",
      "",
      `GATEWAY = ${JSON.stringify(gateway)}`,
      `CLIENT_ID = ${JSON.stringify(root.dataset.clientId)}`,
      `PLATFORM_KEY = ${JSON.stringify(platformKeyBase64(platformVersion))}  # platform key ${platformVersion}`,
      `BODY = ${JSON.stringify(body)}`,
      "",
      "if GATEWAY.startswith(\"http://\"):  # the SDK speaks HTTPS only; let it reach a plain-HTTP sandbox",
      "    def plain(url, timeout=15):",
      "        address = urllib.parse.urlparse(url)",
      "        return http.client.HTTPConnection(address.hostname, address.port, timeout=timeout)",
      "    setattr(rpc, \"__get_http_connection\", plain)",
      "",
      "",
      "class Request(AlipayRequest):  # this body, byte for byte",
      "    def __init__(self):",
      `        super().__init__(key_version=${JSON.stringify(String(keyVersion))})`,
      `        self.path = ${JSON.stringify(sdkPath)}`,
      "",
      "    def to_ams_json(self):",
      "        return BODY",
      "",
      "",
      "def bare(pem):  # the SDK takes keys as bare base64",
      "    return \"\".join(line for line in pem.splitlines() if not line.startswith(\"-----\"))",
      "",
      "",
      "key = s.load_pem_private_key(open(\"private-key.pem\", \"rb\").read(), None)",
      "pkcs1 = key.private_bytes(s.Encoding.PEM, s.PrivateFormat.TraditionalOpenSSL, s.NoEncryption())",
      "client = DefaultAlipayClient(GATEWAY, CLIENT_ID, bare(pkcs1.decode()), PLATFORM_KEY)",
      "# execute() verifies the answer's signature with PLATFORM_KEY and raises if it fails.",
      "print(client.execute(Request()))",
    ].join("\n");
  }

  // Signs the request as it stands; returns what was signed and the headers to send.
  async function sign() {
    const option = selected();
    const path = option.dataset.path;
    const body = $("body").value;
    const keyVersion = $("key-version").value;
    const clientId = root.dataset.clientId;
    const key = await importPrivateKey($("private-key").value);
    const requestTime = String(Date.now());
    const content = `POST ${path}\n${clientId}.${requestTime}.${body}`;
    const signature = await crypto.subtle.sign(algorithm, key, encoder.encode(content));
    const headers = {
      "Content-Type": "application/json; charset=UTF-8",
      "Client-Id": clientId,
      "Request-Time": requestTime,
      "Signature": `algorithm=RSA256,keyVersion=${keyVersion},signature=${urlEncode(base64(signature))}`,
    };
    const agent = $("agent-token");
    if (agent && agent.value.trim()) headers["Agent-Token"] = agent.value.trim();
    $("request-string").textContent = content;
    $("request-headers").textContent = Object.entries(headers).map(([name, value]) => `${name}: ${value}`).join("\n");
    const url = `${root.dataset.gateway}${path}`;
    $("curl").textContent = [
      `curl -sS -i -X POST ${shellQuote(url)}`,
      ...Object.entries(headers).map(([name, value]) => `  -H ${shellQuote(`${name}: ${value}`)}`),
      `  --data-binary ${shellQuote(body)}`,
    ].join(" \\\n");
    $("python").textContent = pythonScript(option.dataset.sdkPath, body, keyVersion);
    return { path, body, headers };
  }

  // Verifies an answer's signature over its body's bytes; says what happened in words.
  async function verifyAnswer(path, response, bytes) {
    const header = response.headers.get("signature");
    const responseTime = response.headers.get("response-time");
    const clientId = response.headers.get("client-id");
    if (!header || !responseTime || !clientId) {
      return { ok: false, text: "not signed: the answer has no Signature, Response-Time or Client-Id header", content: "" };
    }
    const prefix = encoder.encode(`POST ${path}\n${clientId}.${responseTime}.`);
    const content = new Uint8Array(prefix.length + bytes.length);
    content.set(prefix);
    content.set(bytes, prefix.length);
    const shown = `POST ${path}\n${clientId}.${responseTime}.${new TextDecoder().decode(bytes)}`;
    const version = (header.match(/keyVersion=(\d+)/) || [])[1] || "1";
    const encoded = header.split("signature=")[1] || "";
    let signature;
    try {
      signature = unbase64(decodeURIComponent(encoded.trim()));
    } catch {
      return { ok: false, text: "the Signature header is not URL-encoded base64", content: shown };
    }
    const key = await importPlatformKey(version);
    if (!key) return { ok: false, text: `no published platform key has version ${version}`, content: shown };
    const ok = await crypto.subtle.verify(algorithm, key, signature, content);
    return {
      ok,
      text: ok ? `verified with platform key ${version}` : `does NOT verify with platform key ${version}`,
      content: shown,
    };
  }

  async function send() {
    const { path, body, headers } = await sign();
    $("answer-status").textContent = "sending …";
    $("answer-verified").textContent = "";
    // The session cookie stays home: the gateway is authorised by the signature alone.
    const response = await fetch(path, { method: "POST", headers, body, credentials: "omit", cache: "no-store" });
    const bytes = new Uint8Array(await response.arrayBuffer());
    $("answer-status").textContent = `${response.status} ${response.statusText}`.trim();
    $("answer-headers").textContent = [...response.headers].map(([name, value]) => `${name}: ${value}`).join("\n");
    const text = new TextDecoder().decode(bytes);
    let pretty = text;
    try {
      pretty = JSON.stringify(JSON.parse(text), null, 2);
    } catch {
      // Not JSON: shown as it came.
    }
    $("answer-body").textContent = pretty;
    const verdict = await verifyAnswer(path, response, bytes);
    const status = document.createElement("span");
    status.className = `status status-${verdict.ok ? "S" : "F"}`;
    status.textContent = verdict.text;
    $("answer-verified").replaceChildren(status);
    $("answer-verified").dataset.verified = verdict.ok ? "yes" : "no";
    $("answer-string").textContent = verdict.content;
    $("answer-section").scrollIntoView({ block: "start" });
  }

  function run(action) {
    return async () => {
      showError("");
      try {
        await action();
      } catch (error) {
        showError(`Not done: ${error.message || error}`);
      }
    };
  }

  $("api").addEventListener("change", () => {
    $("body").value = selected().dataset.body;
  });
  $("reset-body").addEventListener("click", () => {
    $("body").value = selected().dataset.body;
  });
  // Every request id of the samples ends with the page's token: a new token makes new requests.
  $("new-ids").addEventListener("click", () => {
    const next = `explorer-${Date.now().toString(16)}`;
    $("body").value = $("body").value.split(token).join(next);
    for (const option of $("api").options) option.dataset.body = option.dataset.body.split(token).join(next);
    token = next;
  });
  $("key-file").addEventListener("change", async () => {
    const file = $("key-file").files[0];
    if (file) $("private-key").value = await file.text();
  });
  $("sign").addEventListener("click", run(sign));
  if ($("send")) $("send").addEventListener("click", run(send));
})();
