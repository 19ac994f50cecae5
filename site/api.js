/* Calls to the proxy's JSON API. Every answer is {ok, status, data, retryAfter}; network
   failures become {ok: false, status: 0} so pages can say so instead of breaking. */
"use strict";

const API = { csrf: "" };

/* The site's own folder: "/" as a rule, "/<code>/" below a consortium's path prefix
   (docs/consortium.md#routing). Taken from where this script was loaded: every page of the
   site sits in that folder. */
const SITE_ROOT = typeof document === "object" && document.currentScript
  ? new URL("./", document.currentScript.src).pathname : "/";

/* One of our paths ("/api/fees") below the site's own folder. */
function ownPath(path) {
  return path.startsWith("/") && !path.startsWith("//") ? SITE_ROOT + path.slice(1) : path;
}

async function apiCall(method, path, body) {
  const headers = { Accept: "application/json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (method !== "GET" && API.csrf) headers["X-CSRF-Token"] = API.csrf;
  let response;
  try {
    response = await fetch(ownPath(path), {
      method, headers, credentials: "same-origin",
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch (error) {
    return { ok: false, status: 0, data: { error: { code: "network", message: "" } }, retryAfter: "" };
  }
  let data = {};
  try { data = await response.json(); } catch (error) { data = {}; }
  return { ok: response.ok, status: response.status, data, retryAfter: response.headers.get("Retry-After") || "" };
}

/* What to tell the patron about a failed call: our own text for the error code (error.<code>
   in the locale files) when we have one, else the server's English message. */
function errorMessage(result, params) {
  const error = (result.data && result.data.error) || {};
  if (result.status === 0) return { key: "error.network" };
  const key = `error.${error.code}`;
  const args = Object.assign({ seconds: result.retryAfter || "60" }, params || {});
  if (error.code && t(key) !== key) return { key, params: args };
  if (error.message) return { text: error.message };
  return { key: "error.generic" };
}

function errorText(result, params) {
  const message = errorMessage(result, params);
  return message.key ? t(message.key, message.params) : message.text;
}

/* Show an error on an element so that it follows a language switch when it is ours. */
function localizeError(el, result, params) {
  const message = errorMessage(result, params);
  if (message.key) localize(el, message.key, message.params); else plainText(el, message.text);
}

/* Submit a CashNet hand-off {action, method, fields} as a top-level form post. */
function submitCheckout(checkout) {
  const form = document.createElement("form");
  form.method = checkout.method || "POST";
  form.action = checkout.action;
  form.hidden = true;
  for (const [name, value] of Object.entries(checkout.fields)) {
    const input = document.createElement("input");
    input.type = "hidden";
    input.name = name;
    input.value = value;
    form.appendChild(input);
  }
  document.body.appendChild(form);
  form.submit();
}
