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

import { existsSync } from "node:fs";
import { mkdir } from "node:fs/promises";
import path from "node:path";

import { chromium, chromiumArgs, fail, loadPlaywright, photograph, run } from "./common.mjs";

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
  if (!existsSync(chromium)) fail(`no Chromium at ${chromium} (apt-get install chromium, or set OCPAY_CHROMIUM)`);
  const { chromium: launcher } = loadPlaywright();
  await mkdir(screenshots, { recursive: true });

  const browser = await launcher.launch({ executablePath: chromium, headless: true, args: chromiumArgs });
  const errors = [];
  const shots = { directory: screenshots, list: [] };
  const report = {};
  try {
    const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
    const page = await context.newPage();
    page.setDefaultTimeout(stepTimeout);
    page.on("pageerror", (error) => errors.push(`page error: ${error.message}`));
    page.on("console", (message) => {
      // A failed load is reported by its response below (the browser's own favicon.ico aside).
      if (message.type() === "error" && !message.text().startsWith("Failed to load resource")) {
        errors.push(`console error: ${message.text()}`);
      }
    });
    page.on("response", (answer) => {
      const address = new URL(answer.url());
      if (answer.status() >= 400 && address.pathname !== "/favicon.ico") {
        errors.push(`${answer.request().method()} ${address.pathname} answered ${answer.status()}`);
      }
    });
    try {
      await walk(page, base, email, password, shots, report);
      if (errors.length) fail(`the pages had errors: ${errors.join("; ")}`);
      process.stdout.write(`${JSON.stringify({ ok: true, ...report, screenshots: shots.list })}\n`);
    } catch (error) {
      await page.screenshot({ path: path.join(screenshots, "go-live-failure.png"), fullPage: true }).catch(() => {});
      if (errors.length && !error.message.startsWith("the pages had errors")) {
        error.message += ` (the pages also had errors: ${errors.join("; ")})`;
      }
      throw error;
    }
  } finally {
    await browser.close();
  }
}

await run("go_live.mjs", overallTimeout, main);
