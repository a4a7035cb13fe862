// Walks the developer center the way a new developer does, in headless Chromium: signs up for a
// sandbox merchant with a key pair generated in the browser (saving the private key the page
// offers as a download), signs in, turns on two-factor sign-in, signs out and in again with a
// code, and has the Rust test make signed requests with the downloaded key. Every page it
// visits is photographed at a phone's width and a laptop's.
//
// Usage: node portal.mjs <base-url> <work-dir> <screenshot-dir>
//
// It talks to the Rust test that runs it in JSON lines: a line with "ask" on stdout is a
// question (the server's clock, moving that clock on, making a signed request with the key),
// answered by one JSON line on stdin; the last line, with "ok", is the result. The server's
// clock is the test's manual one, so TOTP codes are worked out here (RFC 6238, HMAC-SHA1) for
// the time the test says, not the machine's.
//
// Chromium and playwright-core come from OCPAY_CHROMIUM and OCPAY_NODE_MODULES, as for the
// payer page's script (crates/server/tests/browser/pay.mjs). On any failure it says what went
// wrong on stderr, photographs the page when it can, and exits 1.

import { createHmac } from "node:crypto";
import { mkdir, readFile } from "node:fs/promises";
import path from "node:path";
import readline from "node:readline";

import { fail, launch, photograph, run } from "./common.mjs";

const stepTimeout = 15_000;
const overallTimeout = 150_000;
const password = "a long sandbox passphrase for the browser test";

// Questions to the Rust side, one JSON line each way.
const answers = readline.createInterface({ input: process.stdin })[Symbol.asyncIterator]();
async function ask(question) {
  process.stdout.write(`${JSON.stringify({ ask: question.ask, ...question })}\n`);
  const { value, done } = await answers.next();
  if (done) fail(`no answer to ${question.ask}`);
  const answer = JSON.parse(value);
  if (answer.error) fail(`${question.ask}: ${answer.error}`);
  return answer;
}

// RFC 4648 base32 without padding, as authenticator apps read the key.
function base32(text) {
  const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
  let bits = 0;
  let value = 0;
  const bytes = [];
  for (const char of text.replace(/=+$/, "").toUpperCase()) {
    const index = alphabet.indexOf(char);
    if (index < 0) fail(`the TOTP key ${JSON.stringify(text)} is not base32`);
    value = (value << 5) | index;
    bits += 5;
    if (bits >= 8) {
      bytes.push((value >>> (bits - 8)) & 0xff);
      bits -= 8;
    }
  }
  return Buffer.from(bytes);
}

// RFC 6238: HOTP (RFC 4226) of the 30-second step `nowMs` falls in, six digits.
function totp(secret, nowMs) {
  const counter = Buffer.alloc(8);
  counter.writeBigUInt64BE(BigInt(Math.floor(nowMs / 30_000)));
  const tag = createHmac("sha1", base32(secret)).update(counter).digest();
  const offset = tag[19] & 0x0f;
  const binary = tag.readUInt32BE(offset) & 0x7fffffff;
  return String(binary % 1_000_000).padStart(6, "0");
}

async function open(page, url, expectedPath) {
  const response = await page.goto(url, { waitUntil: "load" });
  if (!response || response.status() !== 200) fail(`GET ${url} answered ${response?.status()}`);
  if (expectedPath && new URL(page.url()).pathname !== expectedPath) {
    fail(`GET ${url} landed on ${page.url()}, not ${expectedPath}`);
  }
}

async function signIn(page, base, email, code) {
  await open(page, `${base}/portal/login`, "/portal/login");
  await page.fill("#email", email);
  await page.fill("#password", password);
  if (code) await page.fill("#totp", code);
  await Promise.all([page.waitForURL(`${base}/portal/`), page.click('form[action="/portal/login"] button[type=submit]')]);
}

async function signOut(page, base) {
  await Promise.all([page.waitForURL(/\/portal\/login$/), page.click("form.logout button")]);
  if (new URL(page.url()).pathname !== "/portal/login") fail(`signing out landed on ${page.url()}`);
  // Signed out, the home page sends the browser back to sign in.
  await page.goto(`${base}/portal/`);
  if (new URL(page.url()).pathname !== "/portal/login") fail("the home page is still shown after signing out");
}

async function walk(page, base, work, shots, report) {
  const email = `dev-${Date.now()}@shop.example`;

  // 1. Sign up, with a key pair made in this browser.
  await open(page, `${base}/portal/signup`, "/portal/signup");
  await photograph(page, shots.directory, "signup", shots.list);
  await page.fill("#email", email);
  await page.fill("#password", password);
  await page.fill("#name", "Browser Test Cafe");
  const [download] = await Promise.all([
    page.waitForEvent("download"),
    page.click('[data-generate-key="public_key"]'),
  ]);
  if (download.suggestedFilename() !== "private-key.pem") {
    fail(`the private key downloads as ${download.suggestedFilename()}, not private-key.pem`);
  }
  const privateKeyFile = path.join(work, "private-key.pem");
  await download.saveAs(privateKeyFile);
  const privateKey = await readFile(privateKeyFile, "utf8");
  if (!privateKey.startsWith("-----BEGIN PRIVATE KEY-----")) fail("the download is not a PKCS#8 PEM private key");
  const publicKey = await page.inputValue("#public_key");
  if (!publicKey.startsWith("-----BEGIN PUBLIC KEY-----")) fail("the public key field was not filled");
  if (!(await page.locator("#private-key-download").isVisible())) fail("no link to download the key again");
  await photograph(page, shots.directory, "signup-key", shots.list);
  await Promise.all([page.waitForLoadState("load"), page.click('#signup button[type=submit]')]);
  await page.waitForSelector("h1");
  const heading = (await page.locator("h1").innerText()).trim();
  if (heading !== "Your sandbox merchant is ready") {
    const error = await page.locator(".error").innerText().catch(() => "");
    fail(`signing up shows ${JSON.stringify(heading)} ${error}`);
  }
  const clientId = (await page.locator("main, body").first().innerText()).match(/Client id (\S+?)\./)?.[1];
  if (!clientId) fail("the sign-up page does not say the client id");
  await photograph(page, shots.directory, "signup-done", shots.list);
  report.clientId = clientId;

  // Signed in, the home page shows the same client id.
  await open(page, `${base}/portal/login`, "/portal/login");
  await photograph(page, shots.directory, "login", shots.list);
  await signIn(page, base, email, null);
  const shown = (await page.locator("code[data-copy]").first().innerText()).trim();
  if (shown !== clientId) fail(`the home page shows client id ${shown}, signed up as ${clientId}`);
  await photograph(page, shots.directory, "home", shots.list);

  // 2. Two-factor sign-in: the key read from the page, the code worked out here.
  await open(page, `${base}/portal/account/totp`, "/portal/account/totp");
  const secret = (await page.locator("code.secret").innerText()).trim();
  if (secret !== (await page.inputValue('input[name="secret"]'))) fail("the key shown is not the key sent");
  await photograph(page, shots.directory, "totp-enrol", shots.list);
  const { nowMs } = await ask({ ask: "clock" });
  await page.fill("#code", totp(secret, nowMs));
  await page.fill("#current_password", password);
  await Promise.all([page.waitForLoadState("load"), page.click('form[action="/portal/account/totp"] button.primary')]);
  await open(page, `${base}/portal/account/totp`, "/portal/account/totp");
  if (!(await page.locator("strong", { hasText: "on" }).count())) fail("two-factor sign-in is not on after enrolling");
  await photograph(page, shots.directory, "totp-on", shots.list);

  await signOut(page, base);
  // A code works once: the next one is thirty seconds later on the server's clock.
  const later = await ask({ ask: "advance", seconds: 30 });
  await open(page, `${base}/portal/login`, "/portal/login");
  await page.fill("#email", email);
  await page.fill("#password", password);
  await Promise.all([page.waitForLoadState("load"), page.click('form[action="/portal/login"] button[type=submit]')]);
  if (new URL(page.url()).pathname === "/portal/") fail("signed in without the authenticator code");
  await photograph(page, shots.directory, "login-refused", shots.list);
  await signIn(page, base, email, totp(secret, later.nowMs));
  report.totp = true;

  // 3. The downloaded key signs real requests.
  const paid = await ask({ ask: "pay", clientId, privateKeyFile });
  report.pay = paid;
  const forged = await ask({ ask: "forge", clientId });
  report.forged = forged;

  // 4. The pages that show those requests, as far as the developer center has them: a page
  // that answers 404 is not written yet, and its step is reported as skipped.
  report.skipped = [];
  if (await exists(page, base, "/portal/logs")) {
    report.apiLog = await apiLog(page, base, shots, clientId);
  } else {
    report.skipped.push("API log and signature debugger: no page yet");
  }

  if (await exists(page, base, "/portal/payments")) {
    await open(page, `${base}/portal/payments`, "/portal/payments");
    const link = page.locator(`a[href="/portal/payments/${paid.paymentId}"]`);
    if ((await link.count()) !== 1) fail(`the payments list has no link to ${paid.paymentId}`);
    await photograph(page, shots.directory, "payments", shots.list);
    await Promise.all([page.waitForURL(`${base}/portal/payments/${paid.paymentId}`), link.click()]);
    await photograph(page, shots.directory, "payment-unpaid", shots.list);

    // Pay it as the sandbox's test payer, then wait until the notifier has delivered it.
    const form = page.locator("form.test-pay");
    if ((await form.count()) !== 1) fail("the unpaid payment offers no test payer");
    await form.locator('input[name="outcome"]').first().check();
    await Promise.all([page.waitForLoadState("load"), form.locator("button[type=submit]").click()]);
    const notified = await ask({ ask: "notified" });
    await open(page, `${base}/portal/payments/${paid.paymentId}`, `/portal/payments/${paid.paymentId}`);
    const status = (await page.locator("dl.facts .status").first().innerText()).trim();
    if (status !== "SUCCESS") fail(`the paid payment shows status ${status}`);
    const timeline = (await page.locator("ol.timeline").innerText()).trim();
    if (!timeline.includes("Paid (SUCCESS)")) fail(`the timeline does not show the payment: ${timeline}`);
    if (!/Notification attempt 1 \(payment SUCCESS\)/.test(timeline)) {
      fail(`the timeline does not show the notification attempt: ${timeline}`);
    }
    report.timeline = { notifications: notified.count, attempts: (timeline.match(/Notification attempt/g) || []).length };
    await photograph(page, shots.directory, "payment-paid", shots.list);
  } else {
    report.skipped.push("payments: no page yet");
  }

  if (await exists(page, base, "/portal/grants")) {
    const { isv } = await ask({ ask: "isv" });
    await open(page, `${base}/portal/grants`, "/portal/grants");
    await photograph(page, shots.directory, "grants", shots.list);
    await page.fill("#isv", isv);
    const scopes = page.locator('input[name="scope"]');
    if (!(await scopes.count())) fail("the grants form offers no scopes");
    if (!(await page.locator('input[name="scope"]:checked').count())) await scopes.first().check();
    await Promise.all([page.waitForLoadState("load"), page.click('form[action="/portal/grants"] button[type=submit]')]);
    await open(page, `${base}/portal/grants`, "/portal/grants");
    const given = page.locator("section[aria-labelledby=given] tbody tr", { hasText: isv });
    if ((await given.count()) !== 1) fail(`the grants page does not list the grant to ${isv}`);
    const grantStatus = (await given.locator(".status").innerText()).trim();
    if (grantStatus !== "ACTIVE") fail(`the grant to ${isv} is ${grantStatus}`);
    report.grant = { isv, status: grantStatus };
    await photograph(page, shots.directory, "grants-given", shots.list);
  } else {
    report.skipped.push("grants: no page yet");
  }

  // The other sections, photographed as they are.
  for (const [name, address] of [["keys", "/portal/keys"], ["settings", "/portal/settings"], ["team", "/portal/team"], ["refunds", "/portal/refunds"]]) {
    if (await exists(page, base, address)) {
      await open(page, `${base}${address}`, address);
      await photograph(page, shots.directory, name, shots.list);
    } else {
      report.skipped.push(`${name}: no page yet`);
    }
  }
  await open(page, `${base}/portal/`, "/portal/");
  await photograph(page, shots.directory, "home-after-pay", shots.list);
}

/// The API log: the pay above listed as verified, its bodies on its page; the forged request
/// listed as refused, its page showing the signature debugger's diagnosis; and the pasted
/// check, prefilled from it, naming no key of the merchant's.
async function apiLog(page, base, shots, clientId) {
  // The gateway's writer commits entries a moment after the answers: reload until both show.
  const rows = page.locator("table tbody tr");
  for (let tries = 0; ; tries += 1) {
    await open(page, `${base}/portal/logs`, "/portal/logs");
    if ((await rows.count()) >= 2) break;
    if (tries >= 50) fail(`the API log lists ${await rows.count()} requests, not the pay and the forged one`);
    await page.waitForTimeout(200);
  }
  const paid = rows.filter({ hasText: "S SUCCESS" });
  const refused = rows.filter({ hasText: "F SIGNATURE_INVALID" });
  if ((await paid.count()) !== 1) fail(`the API log does not list the pay once: ${await page.locator("table").innerText()}`);
  if ((await refused.count()) !== 1) fail(`the API log does not list the forged request once`);
  const listed = await rows.count();
  const paidRow = (await paid.innerText()).replace(/\s+/g, " ");
  if (!paidRow.includes("pay") || !paidRow.includes("yes (key 1)")) fail(`the pay's row reads ${paidRow}`);
  await photograph(page, shots.directory, "logs", shots.list);

  await Promise.all([page.waitForURL(/\/portal\/logs\/\d+$/), paid.locator("a").first().click()]);
  const body = await page.locator("section[aria-labelledby=request] pre").innerText();
  if (!body.includes('"paymentRequestId"')) fail(`the pay's page does not show its body: ${body}`);
  if (await page.locator("section.debugger").count()) fail("a verified request shows a diagnosis");
  await photograph(page, shots.directory, "log-entry", shots.list);

  await open(page, `${base}/portal/logs`, "/portal/logs");
  await Promise.all([page.waitForURL(/\/portal\/logs\/\d+$/), refused.locator("a").first().click()]);
  const debuggerSection = page.locator("section.debugger");
  if ((await debuggerSection.count()) !== 1) fail("the forged request's page has no signature debugger");
  const cause = (await debuggerSection.locator("p.error strong").innerText()).trim();
  // Signed with a key that is not the merchant's: no variant verifies.
  if (cause !== "BODY_CHANGED") fail(`the diagnosis names ${cause}, not BODY_CHANGED`);
  const advice = await debuggerSection.locator("p.error").innerText();
  const verified = await debuggerSection.locator("pre.string-to-sign").innerText();
  if (!verified.startsWith("POST /ams/sandbox/api/v1/payments/pay\\n") || !verified.includes(`${clientId}.`)) {
    fail(`the string verified reads ${JSON.stringify(verified)}`);
  }
  const ruledOut = await debuggerSection.locator("ul.ruled-out li").count();
  if (ruledOut < 1) fail("the diagnosis names no cause it ruled out");
  await photograph(page, shots.directory, "log-entry-failed", shots.list);

  // The pasted check, filled in from the request: the stranger's signature verifies with no key.
  await Promise.all([page.waitForURL(/\/portal\/logs\/check\?entry=\d+$/), page.click("a[href^='/portal/logs/check?entry=']")]);
  if (!(await page.inputValue("#string_to_sign")).startsWith("POST /ams/")) fail("the check is not filled in");
  await Promise.all([page.waitForLoadState("load"), page.click('form.check button[type=submit]')]);
  const answer = (await page.locator("section.check-answer").innerText()).replace(/\s+/g, " ");
  if (!answer.includes("none of your keys")) fail(`the check answers ${answer}`);
  await photograph(page, shots.directory, "log-check", shots.list);
  return { listed, cause, advice: advice.trim(), ruledOut, check: "none of your keys" };
}

/// Whether the developer center has a page at `address` yet (asked beside the page, with its
/// cookies, so that a missing page's 404 is not one of the page's own errors).
async function exists(page, base, address) {
  const answer = await page.request.get(`${base}${address}`, { maxRedirects: 0 });
  return answer.status() !== 404;
}

async function main() {
  const [base, work, screenshots] = process.argv.slice(2);
  if (!base || !work || !screenshots) fail("usage: node portal.mjs <base-url> <work-dir> <screenshot-dir>");
  await mkdir(screenshots, { recursive: true });
  const errors = [];
  const shots = { directory: screenshots, list: [] };
  const report = {};
  const { browser, page } = await launch(errors, stepTimeout, { acceptDownloads: true });
  try {
    // Refusals the walk asks for on purpose answer 4xx; anything else that does is a fault.
    page.on("response", (answer) => {
      const address = new URL(answer.url());
      const expected = answer.status() === 401 && address.pathname === "/portal/login";
      if (answer.status() >= 400 && !expected && address.pathname !== "/favicon.ico") {
        errors.push(`${answer.request().method()} ${address.pathname} answered ${answer.status()}`);
      }
    });
    try {
      await walk(page, base, work, shots, report);
      if (errors.length) fail(`the pages had errors: ${errors.join("; ")}`);
      process.stdout.write(`${JSON.stringify({ ok: true, ...report, screenshots: shots.list })}\n`);
    } catch (error) {
      await page.screenshot({ path: path.join(screenshots, "failure.png"), fullPage: true }).catch(() => {});
      if (errors.length && !error.message.startsWith("the pages had errors")) {
        error.message += ` (the pages also had errors: ${errors.join("; ")})`;
      }
      throw error;
    }
  } finally {
    await browser.close();
  }
}

await run("portal.mjs", overallTimeout, main);
process.stdin.destroy();
