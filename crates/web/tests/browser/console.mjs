// The operator's console in headless Chromium: an operator signs in with a password and is
// sent to turn on two-factor sign-in first; it scans nothing but reads the key, types the
// code an authenticator would show, signs out and signs in again with the next code; then it
// approves the registration waiting in the review queue, suspends a participant (confirming
// the dialog) and finds the suspension in the audit trail. Every page is photographed at a
// phone's width and a laptop's.
//
// Usage: node console.mjs <base-url> <email> <password> <server-clock-ms> <participant-client-id> <screenshot-dir>
//
// The server's clock is a test's manual clock, which stands still during the walk: the codes
// are worked out for its time (RFC 6238, as an authenticator app does).
//
// The last line on stdout is the result, with "ok"; on any failure it says what went wrong on
// stderr, photographs the page when it can, and exits 1.

import { createHmac } from "node:crypto";

import { fail, photograph, run, walkAndReport } from "./common.mjs";

const stepTimeout = 15_000;
const overallTimeout = 90_000;

// The six-digit TOTP code of a base32 key for a 30-second step.
function totp(secret, step) {
  const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
  let bits = "";
  for (const char of secret.replace(/=+$/, "")) {
    const value = alphabet.indexOf(char);
    if (value < 0) fail(`the key ${secret} is not base32`);
    bits += value.toString(2).padStart(5, "0");
  }
  const key = Buffer.from(bits.match(/.{8}/g).map((byte) => parseInt(byte, 2)));
  const counter = Buffer.alloc(8);
  counter.writeBigInt64BE(BigInt(step));
  const tag = createHmac("sha1", key).update(counter).digest();
  const offset = tag[19] & 0x0f;
  const binary = tag.readUInt32BE(offset) & 0x7fffffff;
  return String(binary % 1_000_000).padStart(6, "0");
}

async function submit(page, button) {
  await Promise.all([page.waitForLoadState("load"), page.waitForNavigation(), button.click()]);
}

async function text(page, selector) {
  return (await page.locator(selector).first().innerText()).replace(/\s+/g, " ").trim();
}

async function signIn(page, base, email, password, code) {
  await page.goto(`${base}/console/login`, { waitUntil: "load" });
  await page.fill("#email", email);
  await page.fill("#password", password);
  await page.fill("#totp", code);
  await submit(page, page.locator('form[action="/console/login"] button[type=submit]'));
}

async function walk(page, base, email, password, clockMs, clientId, shots, report) {
  const step = Math.floor(clockMs / 30_000);
  await page.goto(`${base}/console/login`, { waitUntil: "load" });
  await photograph(page, shots.directory, "operator-login", shots.list);

  // Without the second factor, the console opens only its setup.
  await signIn(page, base, email, password, "");
  if (page.url() !== `${base}/console/account/totp`) fail(`a new operator landed on ${page.url()}`);
  await photograph(page, shots.directory, "operator-totp", shots.list);
  const secret = (await text(page, "code.secret")).replace(/\s/g, "");
  await page.fill("#code", totp(secret, step));
  await page.fill("#current_password", password);
  await submit(page, page.locator('form[action="/console/account/totp"] button.primary'));
  if (page.url() !== `${base}/console/`) fail(`turning on TOTP led to ${page.url()}`);
  await submit(page, page.locator('form[action="/console/logout"] button'));
  await signIn(page, base, email, password, totp(secret, step + 1));
  if (page.url() !== `${base}/console/`) fail(`signing in with a code led to ${page.url()}`);
  report.waiting = await text(page, "dl.facts");
  await photograph(page, shots.directory, "operator-home", shots.list);

  // The review queue: one registration under review, approved.
  await Promise.all([
    page.waitForURL(`${base}/console/registrations`),
    page.click('nav.sections a[href="/console/registrations"]'),
  ]);
  const queued = await page.locator("table.stack tbody tr").count();
  if (queued !== 1) fail(`${queued} registrations are under review, not 1`);
  report.registration = await text(page, "table.stack tbody tr dl.facts");
  if (!report.registration.includes("Corner Bakery")) fail(`the queue shows ${report.registration}`);
  await photograph(page, shots.directory, "operator-registrations", shots.list);
  await submit(page, page.locator('form[action$="/approve"] button[type=submit]'));
  report.approved = await text(page, ".notice");
  if (!report.approved.startsWith("Approved")) fail(`after approving the page says ${report.approved}`);

  // Participants: found by text, opened, suspended after the confirmation.
  await Promise.all([
    page.waitForURL(`${base}/console/participants`),
    page.click('nav.sections a[href="/console/participants"]'),
  ]);
  await page.fill("#q", clientId.slice(-6));
  await submit(page, page.locator('form.filters button[type=submit]'));
  await photograph(page, shots.directory, "operator-participants", shots.list);
  await submit(page, page.locator(`a[href="/console/participants/${clientId}"]`));
  await photograph(page, shots.directory, "operator-participant", shots.list);
  page.once("dialog", (dialog) => {
    report.confirmation = dialog.message();
    dialog.accept();
  });
  await submit(page, page.locator('form[action$="/suspend"] button[type=submit]'));
  report.suspended = await text(page, ".notice");
  if (!report.suspended.startsWith("Suspended")) fail(`after suspending the page says ${report.suspended}`);

  // The audit trail across participants: the suspension, with who did it.
  await Promise.all([page.waitForURL(`${base}/console/audit`), page.click('nav.sections a[href="/console/audit"]')]);
  await page.fill("#api", "console.suspend");
  await submit(page, page.locator('form.filters button[type=submit]'));
  report.audit = await text(page, "table.stack tbody tr");
  await photograph(page, shots.directory, "operator-audit", shots.list);
}

async function main() {
  const [base, email, password, clockMs, clientId, screenshots] = process.argv.slice(2);
  if (!base || !email || !password || !clockMs || !clientId || !screenshots) {
    fail("usage: node console.mjs <base-url> <email> <password> <server-clock-ms> <client-id> <screenshot-dir>");
  }
  await walkAndReport(screenshots, "operator-failure", stepTimeout, (page, shots, report) =>
    walk(page, base, email, password, Number(clockMs), clientId, shots, report),
  );
}

await run("console.mjs", overallTimeout, main);
