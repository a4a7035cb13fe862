// What the developer center's browser scripts share: Chromium's flags, loading playwright-core
// from OCPAY_NODE_MODULES, failing with a message, photographing a page at a phone's width and
// a laptop's, and running a script's main under a watchdog that reports on stderr.

import { existsSync } from "node:fs";
import { mkdir } from "node:fs/promises";
import path from "node:path";
import { createRequire } from "node:module";

export const chromium = process.env.OCPAY_CHROMIUM || "/usr/bin/chromium";
const nodeModules = process.env.OCPAY_NODE_MODULES;

// No calls home, no sandbox inside a container (the payer page's script uses the same).
export const chromiumArgs = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
  "--no-first-run",
];
// A phone and a laptop: every page is photographed at both.
export const widths = [375, 1280];

export class Failure extends Error {}

export function fail(message) {
  throw new Failure(message);
}

export function loadPlaywright() {
  if (!nodeModules) fail("OCPAY_NODE_MODULES must name the node_modules folder that holds playwright-core");
  const require = createRequire(path.join(path.resolve(nodeModules), "resolve-from-here.js"));
  try {
    return require("playwright-core");
  } catch (error) {
    fail(`cannot load playwright-core from ${nodeModules}: ${error.message}`);
  }
}

/// Photographs the page at each width, full length, as `<name>-<width>.png`, and notes in
/// `shots` how far it is wider than the window (on a phone, a page that scrolls sideways is
/// unusable).
export async function photograph(page, directory, name, shots) {
  for (const width of widths) {
    await page.setViewportSize({ width, height: 800 });
    const file = path.join(directory, `${name}-${width}.png`);
    await page.screenshot({ path: file, fullPage: true });
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    shots.push({ page: name, width, file, overflowPx: Math.max(0, overflow) });
  }
  await page.setViewportSize({ width: widths[widths.length - 1], height: 800 });
}

/// Starts Chromium and opens a page of a new context (`options`, at 1280 px unless they say
/// otherwise) whose steps time out after `stepMs`; the page's script errors and console errors
/// (but not the console's note of a 4xx answer, which a test may ask for) go into `errors`.
/// Returns the browser, to close, and the page.
export async function launch(errors, stepMs, options = {}) {
  if (!existsSync(chromium)) fail(`no Chromium at ${chromium} (apt-get install chromium, or set OCPAY_CHROMIUM)`);
  const { chromium: launcher } = loadPlaywright();
  const browser = await launcher.launch({ executablePath: chromium, headless: true, args: chromiumArgs });
  try {
    const context = await browser.newContext({ viewport: { width: 1280, height: 800 }, ...options });
    const page = await context.newPage();
    page.setDefaultTimeout(stepMs);
    page.on("pageerror", (error) => errors.push(`page error: ${error.message}`));
    page.on("console", (message) => {
      if (message.type() === "error" && !message.text().startsWith("Failed to load resource")) {
        errors.push(`console error: ${message.text()}`);
      }
    });
    return { browser, page };
  } catch (error) {
    await browser.close();
    throw error;
  }
}

/// Walks a new page (see `launch`) with `walk(page, shots, report)`, and fails when a page had
/// a script or console error or answered 400 or more (the browser's own `favicon.ico` aside).
/// Prints the result line `{"ok": true, ...report, "screenshots": [...]}`; on a failure it
/// photographs the page as `<failure>.png` and throws.
export async function walkAndReport(screenshots, failure, stepMs, walk) {
  await mkdir(screenshots, { recursive: true });
  const errors = [];
  const shots = { directory: screenshots, list: [] };
  const report = {};
  const { browser, page } = await launch(errors, stepMs);
  try {
    page.on("response", (answer) => {
      const address = new URL(answer.url());
      if (answer.status() >= 400 && address.pathname !== "/favicon.ico") {
        errors.push(`${answer.request().method()} ${address.pathname} answered ${answer.status()}`);
      }
    });
    try {
      await walk(page, shots, report);
      if (errors.length) fail(`the pages had errors: ${errors.join("; ")}`);
      process.stdout.write(`${JSON.stringify({ ok: true, ...report, screenshots: shots.list })}\n`);
    } catch (error) {
      await page.screenshot({ path: path.join(screenshots, `${failure}.png`), fullPage: true }).catch(() => {});
      if (errors.length && !error.message.startsWith("the pages had errors")) {
        error.message += ` (the pages also had errors: ${errors.join("; ")})`;
      }
      throw error;
    }
  } finally {
    await browser.close();
  }
}

/// Runs `main`, giving up after `limitMs`; a failure is said on stderr as `<name>: <why>` and
/// the exit code is 1.
export async function run(name, limitMs, main) {
  const watchdog = setTimeout(() => {
    console.error(`${name}: gave up after ${limitMs / 1000} s`);
    process.exit(1);
  }, limitMs);
  watchdog.unref();
  try {
    await main();
  } catch (error) {
    const message = error instanceof Failure ? error.message : error.stack || String(error);
    console.error(`${name}: ${message}`);
    process.exitCode = 1;
  }
}
