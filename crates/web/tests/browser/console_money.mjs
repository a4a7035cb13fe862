// The operator's console in headless Chromium, where money is looked after: an operator signs
// in with a password and an authenticator code, funds a new sandbox payer (typing the amount
// in major units) and sees its balance and entry, runs the ledger check and sees it sound,
// finds the failing notification endpoint the test set up and resends its newest
// notification, opens a settled batch and marks it paid out. Every page is photographed at a
// phone's width and a laptop's.
//
// Usage: node console_money.mjs <base-url> <email> <password> <totp-code> <screenshot-dir>
//
// The last line on stdout is the result, with "ok"; on any failure it says what went wrong on
// stderr, photographs the page when it can, and exits 1.

import { fail, photograph, run, walkAndReport } from "./common.mjs";

const stepTimeout = 15_000;
const overallTimeout = 90_000;

// Submits the form that holds `button`, and waits for the page it leads to.
async function submit(page, button) {
  await Promise.all([page.waitForLoadState("load"), page.waitForNavigation(), button.click()]);
}

async function text(page, selector) {
  return (await page.locator(selector).first().innerText()).replace(/\s+/g, " ").trim();
}

async function walk(page, base, email, password, code, shots, report) {
  await page.goto(`${base}/console/login`, { waitUntil: "load" });
  await page.fill("#email", email);
  await page.fill("#password", password);
  await page.fill("#totp", code);
  await Promise.all([page.waitForURL(`${base}/console/`), page.click('form[action="/console/login"] button[type=submit]')]);
  const charts = await page.locator(".charts figure svg").count();
  if (charts !== 4) fail(`the console home shows ${charts} charts, not 4`);
  await photograph(page, shots.directory, "console-home", shots.list);

  // Funds a payer: created, then topped up in major units.
  await Promise.all([page.waitForURL(`${base}/console/payers`), page.click('nav.sections a[href="/console/payers"]')]);
  await page.fill("#payer_id", "sandbox-browser-payer");
  await page.selectOption("#environment", "sandbox");
  await page.fill("#currency", "USD");
  await submit(page, page.locator('form[method=post][action="/console/payers"] button[type=submit]'));
  if (!page.url().includes("/console/payers/sandbox-browser-payer")) fail(`creating the payer led to ${page.url()}`);
  await page.fill("#amount", "25.50");
  await submit(page, page.locator('form[action$="/top-up"] button[type=submit]'));
  const notice = await text(page, ".notice");
  if (!notice.includes("USD 25.50")) fail(`after the top-up the page says ${notice}`);
  const entry = await text(page, "table.stack tbody tr");
  if (!entry.includes("TOPUP") || !entry.includes("USD +25.50")) fail(`the payer's entry reads ${entry}`);
  report.funded = notice;
  await photograph(page, shots.directory, "console-payer", shots.list);

  // The ledger: balances by account, and the check, sound.
  await Promise.all([page.waitForURL(`${base}/console/ledger`), page.click('nav.sections a[href="/console/ledger"]')]);
  await submit(page, page.locator('section[aria-labelledby=check] form button[type=submit]'));
  const check = await text(page, "section[aria-labelledby=check] .notice, section[aria-labelledby=check] .error");
  if (!check.startsWith("Sound:")) fail(`the ledger check says ${check}`);
  report.ledger = check;
  await photograph(page, shots.directory, "console-ledger", shots.list);

  // Notifications: the failing endpoint, and a resend of its newest notification.
  await Promise.all([
    page.waitForURL(`${base}/console/notifications`),
    page.click('nav.sections a[href="/console/notifications"]'),
  ]);
  const failing = await page.locator("section[aria-labelledby=failing] tbody tr").count();
  if (failing !== 1) fail(`${failing} failing endpoints are shown, not 1`);
  await photograph(page, shots.directory, "console-notifications", shots.list);
  await submit(page, page.locator("section[aria-labelledby=failing] tbody tr button[type=submit]"));
  report.resent = await text(page, ".notice");
  if (!report.resent.includes("queued")) fail(`after the resend the page says ${report.resent}`);

  // Settlement: the batch, marked paid out.
  await Promise.all([
    page.waitForURL(`${base}/console/settlement`),
    page.click('nav.sections a[href="/console/settlement"]'),
  ]);
  await photograph(page, shots.directory, "console-settlement", shots.list);
  await submit(page, page.locator("section[aria-labelledby=batches] tbody tr a").first());
  await page.fill("#reference", "WIRE-BROWSER");
  await photograph(page, shots.directory, "console-batch", shots.list);
  await submit(page, page.locator('form[action$="/mark-paid"] button[type=submit]'));
  report.paid = await text(page, ".notice");
  if (!report.paid.startsWith("Paid out")) fail(`after marking it paid the page says ${report.paid}`);
}

async function main() {
  const [base, email, password, code, screenshots] = process.argv.slice(2);
  if (!base || !email || !password || !code || !screenshots) {
    fail("usage: node console_money.mjs <base-url> <email> <password> <totp-code> <screenshot-dir>");
  }
  await walkAndReport(screenshots, "console-money-failure", stepTimeout, (page, shots, report) =>
    walk(page, base, email, password, code, shots, report),
  );
}

await run("console_money.mjs", overallTimeout, main);
