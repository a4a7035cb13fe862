// Pays a sandbox order code the way a payer does: opens the code's page in headless Chromium,
// checks that it shows the amount, clicks the Pay button and waits for the success message.
//
// Usage: node pay.mjs <code-url> <screenshot.png> [expected amount, e.g. "USD 12.50"]
//
// Chromium is Debian's (OCPAY_CHROMIUM, default /usr/bin/chromium) because this machine cannot
// download Playwright's own browsers; playwright-core comes from OCPAY_NODE_MODULES (default:
// the node_modules beside this script, which `npm ci` fills). On success it prints one JSON line
// and exits 0; on any failure it says what went wrong on stderr, saves a screenshot when it
// can, and exits 1, so that the Rust test that runs it can show why.

import { existsSync } from "node:fs";
import { mkdir } from "node:fs/promises";
import { createRequire } from "node:module";
import path from "node:path";
import { fileURLToPath } from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));
const chromium = process.env.OCPAY_CHROMIUM || "/usr/bin/chromium";
const nodeModules = process.env.OCPAY_NODE_MODULES || path.join(here, "node_modules");
// Each step waits at most this long; the whole run is cut off well before a test would hang.
const stepTimeout = 15_000;
const overallTimeout = 60_000;
// Without the background-networking flags Chromium calls home at start, and this machine's
// network refuses those connections; the sandbox needs kernel features containers lack.
const chromiumArgs = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
  "--no-first-run",
];

class Failure extends Error {}

function fail(message) {
  throw new Failure(message);
}

function loadPlaywright() {
  // Resolving from a file inside the node_modules folder makes Node look in that folder itself.
  const require = createRequire(path.join(path.resolve(nodeModules), "resolve-from-here.js"));
  try {
    return require("playwright-core");
  } catch (error) {
    fail(`cannot load playwright-core from ${nodeModules} (run npm ci in ${here}): ${error.message}`);
  }
}

async function pay(page, url, expectedAmount, diagnostics) {
  const response = await page.goto(url, { waitUntil: "load" });
  if (!response) fail(`no response for ${url}`);
  if (response.status() !== 200) fail(`GET ${url} answered ${response.status()}`);

  const amount = (await page.locator("#amount").innerText()).trim();
  if (!amount) fail("the page shows no amount");
  if (expectedAmount && amount !== expectedAmount) {
    fail(`the page shows the amount ${JSON.stringify(amount)}, expected ${JSON.stringify(expectedAmount)}`);
  }
  const status = await page.locator("#order").getAttribute("data-status");
  if (status !== "PROCESSING") fail(`the order is ${status}, not PROCESSING`);

  const button = page.locator('#pay button.primary[data-outcome="SUCCESS"]');
  if ((await button.count()) !== 1) fail("the page has no sandbox Pay button");
  const label = (await button.innerText()).trim();
  if (label !== `Pay ${amount}`) fail(`the Pay button says ${JSON.stringify(label)}, not "Pay ${amount}"`);
  if (!(await button.isVisible()) || !(await button.isEnabled())) fail("the Pay button cannot be clicked");

  const answered = page.waitForResponse(
    (answer) => answer.request().method() === "POST" && new URL(answer.url()).pathname.endsWith("/pay"),
  );
  await button.click();
  const answer = await answered;
  diagnostics.payStatus = answer.status();
  try {
    await page.waitForFunction(
      () => document.getElementById("result")?.textContent.trim().startsWith("Payment successful"),
      null,
      { timeout: stepTimeout },
    );
  } catch {
    const shown = (await page.locator("#result").innerText()).trim();
    fail(`#result says ${JSON.stringify(shown)} instead of "Payment successful…" (POST answered ${answer.status()})`);
  }
  const result = (await page.locator("#result").innerText()).trim();
  if (await page.locator("#pay").isVisible()) fail("the Pay buttons are still shown after paying");
  return { amount, result };
}

async function main() {
  const [url, screenshot, expectedAmount] = process.argv.slice(2);
  if (!url || !screenshot) fail("usage: node pay.mjs <code-url> <screenshot.png> [expected amount]");
  if (!existsSync(chromium)) fail(`no Chromium at ${chromium} (apt-get install chromium, or set OCPAY_CHROMIUM)`);
  const { chromium: launcher } = loadPlaywright();
  await mkdir(path.dirname(path.resolve(screenshot)), { recursive: true });

  const browser = await launcher.launch({ executablePath: chromium, headless: true, args: chromiumArgs });
  const diagnostics = { errors: [] };
  try {
    const page = await browser.newPage({ viewport: { width: 480, height: 720 } });
    page.setDefaultTimeout(stepTimeout);
    // Script errors on the page are failures even when the flow happens to succeed.
    page.on("pageerror", (error) => diagnostics.errors.push(`page error: ${error.message}`));
    page.on("console", (message) => {
      // Chromium logs each failed load without its address, the favicon it guesses at too;
      // the response handler below names the page's own failed loads instead.
      if (message.type() === "error" && !message.text().startsWith("Failed to load resource")) {
        diagnostics.errors.push(`console error: ${message.text()}`);
      }
    });
    // A missing stylesheet or script breaks the page for payers, so it fails the run.
    page.on("response", (answer) => {
      if (answer.status() >= 400) {
        const address = new URL(answer.url());
        diagnostics.errors.push(`${answer.request().method()} ${address.pathname} answered ${answer.status()}`);
      }
    });
    page.on("requestfailed", (request) => {
      diagnostics.errors.push(`${request.method()} ${request.url()} failed: ${request.failure()?.errorText}`);
    });
    try {
      const paid = await pay(page, url, expectedAmount, diagnostics);
      await page.screenshot({ path: screenshot, fullPage: true });
      if (diagnostics.errors.length) fail(`the page had errors: ${diagnostics.errors.join("; ")}`);
      console.log(JSON.stringify({ ok: true, ...paid, payStatus: diagnostics.payStatus, screenshot }));
    } catch (error) {
      // A picture of the page as it failed is the quickest way to see why.
      await page.screenshot({ path: screenshot, fullPage: true }).catch(() => {});
      if (diagnostics.errors.length && !error.message.startsWith("the page had errors")) {
        error.message += ` (the page also had errors: ${diagnostics.errors.join("; ")})`;
      }
      throw error;
    }
  } finally {
    await browser.close();
  }
}

const watchdog = setTimeout(() => {
  console.error(`pay.mjs: gave up after ${overallTimeout / 1000} s`);
  process.exit(1);
}, overallTimeout);
watchdog.unref();

try {
  await main();
} catch (error) {
  const message = error instanceof Failure ? error.message : error.stack || String(error);
  console.error(`pay.mjs: ${message}`);
  process.exitCode = 1;
}
