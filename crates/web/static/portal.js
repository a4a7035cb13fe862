// The developer center's only script (same origin, no inline code under the page's CSP).
// - Generates an RSA-2048 key pair in the browser with WebCrypto for `[data-generate-key]`
//   buttons: the public key (SubjectPublicKeyInfo PEM) fills the named field; the private key
//   (PKCS#8 PEM) is offered as a download and never sent anywhere.
// - Copies the text of `[data-copy]` elements on a click of the button it adds beside them.
// - Asks for confirmation before `form[data-confirm]` is sent.
"use strict";

function pem(label, buffer) {
  const bytes = new Uint8Array(buffer);
  let binary = "";
  for (const byte of bytes) binary += String.fromCharCode(byte);
  const base64 = btoa(binary).replace(/(.{64})/g, "$1\n");
  return `-----BEGIN ${label}-----\n${base64}\n-----END ${label}-----\n`;
}

async function generateKey(button) {
  const field = document.getElementById(button.dataset.generateKey);
  const status = button.parentElement.querySelector(".download");
  button.disabled = true;
  try {
    const pair = await crypto.subtle.generateKey(
      { name: "RSASSA-PKCS1-v1_5", modulusLength: 2048, publicExponent: new Uint8Array([1, 0, 1]), hash: "SHA-256" },
      true,
      ["sign", "verify"],
    );
    const publicPem = pem("PUBLIC KEY", await crypto.subtle.exportKey("spki", pair.publicKey));
    const privatePem = pem("PRIVATE KEY", await crypto.subtle.exportKey("pkcs8", pair.privateKey));
    field.value = publicPem;
    const link = document.createElement("a");
    link.href = URL.createObjectURL(new Blob([privatePem], { type: "application/x-pem-file" }));
    link.download = "private-key.pem";
    link.textContent = "Download your private key (private-key.pem)";
    link.id = "private-key-download";
    status.replaceChildren(
      link,
      document.createTextNode(" — keep it safe: it is shown only here, and the platform never sees it."),
    );
    status.hidden = false;
    link.click();
  } catch (error) {
    status.textContent = "This browser could not generate a key: " + error;
    status.hidden = false;
  } finally {
    button.disabled = false;
  }
}

function addCopyButtons() {
  for (const element of document.querySelectorAll("[data-copy]")) {
    const button = document.createElement("button");
    button.type = "button";
    button.className = "secondary copy";
    button.textContent = "Copy";
    button.addEventListener("click", async () => {
      try {
        await navigator.clipboard.writeText(element.textContent.trim());
        button.textContent = "Copied";
      } catch {
        button.textContent = "Select and copy by hand";
      }
    });
    element.after(button);
  }
}

document.addEventListener("DOMContentLoaded", () => {
  for (const button of document.querySelectorAll("[data-generate-key]")) {
    button.addEventListener("click", () => generateKey(button));
  }
  for (const form of document.querySelectorAll("form[data-confirm]")) {
    form.addEventListener("submit", (event) => {
      if (!window.confirm(form.dataset.confirm)) event.preventDefault();
    });
  }
  addCopyButtons();
});
