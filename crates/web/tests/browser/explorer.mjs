// The API explorer in headless Chromium: a developer signs in, pastes the merchant's private key
// as PKCS#1 PEM, and has the page sign and send a `pay` to the sandbox gateway; the answer must
// show HTTP 200, SUCCESS and a verified signature, and both strings-to-sign. Then it loads the
// key from its PKCS#8 file, inquires the payment the same way, and reads the page's `curl`
// command and Python script. Every request the page makes is recorded: none may carry the key.
// The page is photographed at a phone's width and a laptop's.
//
// Usage: node explorer.mjs <base-url> <email> <password> <pkcs8-key-file> <screenshot-dir>
//
// Prints one JSON line with "ok" and what it saw; on failure says why on stderr, photographs
// the page as explorer-failure.png and exits 1. Chromium and playwright-core come from
// OCPAY_CHROMIUM and OCPAY_NODE_MODULES, as for portal.mjs.

import { createPrivateKey } from "node:crypto";
import { readFile } from "node:fs/promises";
import path from "node:path";

import { fail, launch, photograph, run } from "./common.mjs";

const stepTimeout = 15_000;
const overallTimeout = 90_000;

// Sends what the explorer holds and waits for its verdict on the answer.
async function send(page, expectedStatus = "200") {
  await page.evaluate(() => {
    delete document.getElementById("answer-verified").dataset.verified;
  });
  await page.click("#send");
  await page.waitForSelector("#answer-verified[data-verified]");
  const error = await page.locator("#explorer-error").innerText();
  if (error.trim()) fail(`the explorer says: ${error}`);
  const answer = {
    status: (await page.locator("#answer-status").innerText()).trim(),
    verified: (await page.locator("#answer-verified").innerText()).trim(),
    body: JSON.parse(await page.locator("#answer-body").innerText()),
    requestString: await page.locator("#request-string").innerText(),
    answerString: await page.locator("#answer-string").innerText(),
  };
  if (!answer.status.startsWith(expectedStatus)) fail(`the gateway answered ${answer.status}`);
  if (!answer.verified.startsWith("verified with platform key")) fail(`the answer's signature: ${answer.verified}`);
  return answer;
}

async function walk(page, base, email, password, keyFile, directory, shots, sent, report) {
  await page.goto(`${base}/portal/login`);
  await page.fill("#email", email);
  await page.fill("#password", password);
  await Promise.all([page.waitForURL(`${base}/portal/`), page.click('form[action="/portal/login"] button[type=submit]')]);
  await page.click('nav.sections a[href="/portal/explorer"]');
  await page.waitForURL(`${base}/portal/explorer`);
  const clientId = await page.getAttribute("#explorer", "data-client-id");
  await photograph(page, directory, "explorer", shots);

  // 1. pay, signed with the key pasted as PKCS#1 ("BEGIN RSA PRIVATE KEY").
  const pkcs8 = await readFile(keyFile, "utf8");
  const pkcs1 = createPrivateKey(pkcs8).export({ type: "pkcs1", format: "pem" });
  report.keyBodies = [pkcs8, pkcs1].map((pem) => pem.split("\n").filter((line) => line && !line.startsWith("-----")).join(""));
  await page.selectOption("#api", "pay");
  await page.fill("#private-key", pkcs1);
  const payBody = JSON.parse(await page.inputValue("#body"));
  const paid = await send(page);
  if (paid.body.result?.resultCode !== "SUCCESS") fail(`pay answered ${JSON.stringify(paid.body.result)}`);
  if (!paid.requestString.startsWith(`POST /ams/sandbox/api/v1/payments/pay\n${clientId}.`)) {
    fail(`the request's string to sign reads ${JSON.stringify(paid.requestString.slice(0, 80))}`);
  }
  if (!paid.answerString.startsWith(`POST /ams/sandbox/api/v1/payments/pay\n${clientId}.`)) {
    fail(`the answer's string to sign reads ${JSON.stringify(paid.answerString.slice(0, 80))}`);
  }
  report.pay = {
    paymentRequestId: payBody.paymentRequestId,
    paymentId: paid.body.paymentId,
    verified: paid.verified,
    requestString: paid.requestString,
  };
  report.curl = await page.locator("#curl").innerText();
  report.python = await page.locator("#python").innerText();
  await photograph(page, directory, "explorer-sent", shots);
  // The request and its verified answer together, for the README.
  await page.screenshot({ path: path.join(directory, "explorer-answer.png"), fullPage: true, clip: { x: 0, y: 0, width: 1280, height: 1500 } });

  // 2. inquiryPayment of it, with the key loaded from its PKCS#8 file.
  await page.fill("#private-key", "");
  await page.setInputFiles("#key-file", keyFile);
  await page.waitForFunction(() => document.getElementById("private-key").value.includes("BEGIN PRIVATE KEY"));
  await page.selectOption("#api", "inquiryPayment");
  const inquiryBody = JSON.parse(await page.inputValue("#body"));
  if (inquiryBody.paymentRequestId !== payBody.paymentRequestId) fail("the inquiry sample does not name the pay");
  const inquired = await send(page);
  if (inquired.body.result?.resultCode !== "SUCCESS") fail(`the inquiry answered ${JSON.stringify(inquired.body.result)}`);
  report.inquiry = { paymentStatus: inquired.body.paymentStatus, verified: inquired.verified };

  // 3. A refused request is shown too, and still verified: a body the gateway cannot read.
  await page.fill("#body", "{\"paymentRequestId\": ");
  const refused = await send(page, "");
  report.refused = { status: refused.status, resultCode: refused.body.result?.resultCode, verified: refused.verified };

  // 4. New ids make a new pay.
  await page.selectOption("#api", "pay");
  await page.click("#new-ids");
  const fresh = JSON.parse(await page.inputValue("#body"));
  if (fresh.paymentRequestId === payBody.paymentRequestId) fail("New request ids kept the paymentRequestId");
  report.sent = sent.length;
}

async function main() {
  const [base, email, password, keyFile, directory] = process.argv.slice(2);
  if (!directory) fail("usage: node explorer.mjs <base-url> <email> <password> <key-file> <screenshot-dir>");
  const errors = [];
  const shots = [];
  // Every request the page sends, with its body, to look for the key in afterwards.
  const sent = [];
  const report = {};
  const { browser, page } = await launch(errors, stepTimeout);
  try {
    page.on("request", (request) => {
      sent.push({ method: request.method(), url: request.url(), headers: request.headers(), body: request.postData() || "" });
    });
    try {
      await walk(page, base, email, password, keyFile, directory, shots, sent, report);
      if (errors.length) fail(`the page had errors: ${errors.join("; ")}`);
    } catch (error) {
      await page.screenshot({ path: path.join(directory, "explorer-failure.png"), fullPage: true }).catch(() => {});
      throw error;
    }
    // The key, in either form, in no URL, header or body the page sent.
    const leaks = sent.filter((request) => {
      const text = `${request.url}\n${JSON.stringify(request.headers)}\n${request.body}`.replace(/\\n|\s/g, "");
      return report.keyBodies.some((body) => text.includes(body.slice(40, 120)));
    });
    if (leaks.length) fail(`the private key left the page: ${leaks.map((request) => request.url).join(", ")}`);
    report.gatewayRequests = sent.filter((request) => new URL(request.url).pathname.startsWith("/ams/")).length;
    delete report.keyBodies;
    process.stdout.write(`${JSON.stringify({ ok: true, ...report, screenshots: shots })}\n`);
  } finally {
    await browser.close();
  }
}

await run("explorer.mjs", overallTimeout, main);
