// The payer page: counts down to the code's expiry and pays through the wallet's JSON API.
"use strict";

const order = document.getElementById("order");
const token = order.dataset.token;
const result = document.getElementById("result");
const pay = document.getElementById("pay");
const expiry = document.getElementById("expiry");
let secondsLeft = Number(order.dataset.secondsLeft);

function show(text, kind) {
  result.textContent = text;
  result.className = kind;
}

function tick() {
  if (order.dataset.status !== "PROCESSING") {
    expiry.textContent = "";
    return;
  }
  if (secondsLeft <= 0) {
    expiry.textContent = "";
    pay.hidden = true;
    show("This order code has expired.", "failure");
    return;
  }
  const minutes = Math.floor(secondsLeft / 60);
  const seconds = String(secondsLeft % 60).padStart(2, "0");
  expiry.textContent = `Expires in ${minutes}:${seconds}`;
  secondsLeft -= 1;
  setTimeout(tick, 1000);
}

async function submit(outcome) {
  const body = {};
  const payer = document.getElementById("payer");
  const pin = document.getElementById("pin");
  if (payer && payer.value) body.payerId = payer.value;
  if (pin) body.pin = pin.value;
  if (outcome) body.outcome = outcome;
  for (const button of pay.querySelectorAll("button")) button.disabled = true;
  show("Paying…", "");
  try {
    const response = await fetch(`/wallet/api/codes/${encodeURIComponent(token)}/pay`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(body),
    });
    const answer = await response.json();
    if (answer.status === "SUCCESS") {
      order.dataset.status = "SUCCESS";
      pay.hidden = true;
      expiry.textContent = "";
      const charged = answer.charged ? ` (${answer.charged.text})` : "";
      show(`Payment successful${charged}`, "success");
    } else if (answer.status === "FAIL") {
      order.dataset.status = "FAIL";
      pay.hidden = true;
      expiry.textContent = "";
      show(`Payment failed: ${answer.resultCode}`, "failure");
    } else {
      show(answer.message || "The payment did not go through.", "failure");
      const final = ["ALREADY_PAID", "CANCELLED", "FAILED", "EXPIRED"].includes(answer.error);
      if (final) pay.hidden = true;
      for (const button of pay.querySelectorAll("button")) button.disabled = final;
    }
  } catch (error) {
    show("No connection; try again.", "failure");
    for (const button of pay.querySelectorAll("button")) button.disabled = false;
  }
}

for (const button of pay.querySelectorAll("button")) {
  button.addEventListener("click", () => submit(button.dataset.outcome));
}
tick();
