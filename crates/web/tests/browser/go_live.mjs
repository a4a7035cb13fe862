// The go-live page in headless Chromium: an integrator whose sandbox traffic passed every
// acceptance case (made by the Rust test with the SDK) signs in, opens Go live, sees the one item
// left open (the live notify URL), sends a test notification, reads the answer on the page, and
// sees every item of the checklist done; then follows a case's evidence into the API log. The
// page is photographed at a phone's width and a laptop's, before and after.
//
// Usage: node go_live.mjs <base-url> <email> <password> <screenshot-dir>
//
// The last line on stdout is the result, with "ok"; on any failure it says what went wrong on
// stderr, photographs the page when it can, and exits 1.

import { fail, photograph, run, walkAndReport } from "./common.mjs";

const stepTimeout = 15_000;
const overallTimeout = 90_000;

async function open(page, url, expectedPath) {
  const response = await page.goto(url, { waitUntil: "load" });
  if (!response || response.status() !== 200) fail(`GET ${url} answered ${response?.status()}`);
  if (new URL(page.url()).pathname !== expectedPath) fail(`GET ${url} landed on ${page.url()}, not ${expectedPath}`);
}

// Each item of the checklist: its name, whether it is done (by its colour's class), and its
// state in words.
async function checklist(page) {
  return page.locator("ul.checklist li").evaluateAll((items) =>
    items.map((item) => ({
      item: item.id.replace(/^item-/, ""),
      done: item.classList.contains("check-done"),
      state: item.querySelector(".check-state")?.textContent.trim(),
      detail: item.querySelector(".check-detail")?.textContent.trim(),
    })),
  );
}

async function walk(page, base, email, password, shots, report) {
  await open(page, `${base}/portal/login`, "/portal/login");
  await page.fill("#email", email);
  await page.fill("#password", password);
  await Promise.all([page.waitForURL(`${base}/portal/`), page.click('form[action="/portal/login"] button[type=submit]')]);

  // The section is in the navigation.
  await Promise.all([page.waitForURL(`${base}/portal/go-live`), page.click('nav.sections a[href="/portal/go-live"]')]);
  const before = await checklist(page);
  const left = before.filter((item) => !item.done).map((item) => item.item);
  if (left.join() !== "live-notify-url") fail(`before the test notification, the open items are ${JSON.stringify(before)}`);
  for (const item of before) {
    if (item.state !== (item.done ? "Done" : "Open")) fail(`item ${item.item} says ${item.state}`);
  }
  const cases = await page.locator("ol.cases li.case").count();
  const passed = await page.locator("ol.cases li.case.check-done").count();
  if (cases < 11 || passed !== cases) fail(`${passed} of ${cases} cases are shown passed`);
  await photograph(page, shots.directory, "go-live-open", shots.list);

  // The test notification, to the live twin's notify URL; its answer on the page.
  const send = page.locator('form[action="/portal/go-live/test-notification"]', {
    has: page.locator('input[name="to"][value="live"]'),
  });
  await Promise.all([page.waitForLoadState("load"), send.locator("button[type=submit]").click()]);
  const answer = (await page.locator("#test-answer").innerText()).replace(/\s+/g, " ").trim();
  if (!answer.startsWith("Acknowledged by the live notify URL of")) fail(`the test notification's answer reads ${answer}`);
  if (!answer.includes("HTTP status 200")) fail(`the answer shows no HTTP status: ${answer}`);
  const after = await checklist(page);
  if (!after.every((item) => item.done && item.state === "Done")) fail(`after it, the checklist is ${JSON.stringify(after)}`);
  if (!(await page.locator(".notice.ready").isVisible())) fail("the page does not say it is ready to go live");
  await photograph(page, shots.directory, "go-live-ready", shots.list);
  report.answer = answer;
  report.checklist = after;
  report.cases = cases;

  // A case's evidence opens the request in the API log.
  const evidence = page.locator("#case-payment-1 p.evidence a").first();
  const href = await evidence.getAttribute("href");
  if (!/^\/portal\/logs\/\d+$/.test(href ?? "")) fail(`Payment 1's evidence links to ${href}`);
  await Promise.all([page.waitForURL(`${base}${href}`), evidence.click()]);
  const heading = (await page.locator("h1").innerText()).trim();
  report.evidence = { href, heading };
}

async function main() {
  const [base, email, password, screenshots] = process.argv.slice(2);
  if (!base || !email || !password || !screenshots) {
    fail("usage: node go_live.mjs <base-url> <email> <password> <screenshot-dir>");
  }
  await walkAndReport(screenshots, "go-live-failure", stepTimeout, (page, shots, report) =>
    walk(page, base, email, password, shots, report),
  );
}

await run("go_live.mjs", overallTimeout, main);
