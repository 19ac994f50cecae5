/* Calls to the proxy's JSON API. Every answer is {ok, status, data}; network failures become
   {ok: false, status: 0} so pages can say so instead of breaking. */
"use strict";

const API = { csrf: "" };

async function apiCall(method, path, body) {
  const headers = { Accept: "application/json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (method !== "GET" && API.csrf) headers["X-CSRF-Token"] = API.csrf;
  let response;
  try {
    response = await fetch(path, {
      method, headers, credentials: "same-origin",
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch (error) {
    return { ok: false, status: 0, data: { error: { code: "network", message: "" } } };
  }
  let data = {};
  try { data = await response.json(); } catch (error) { data = {}; }
  return { ok: response.ok, status: response.status, data };
}

function errorText(result) {
  const error = (result.data && result.data.error) || {};
  if (result.status === 0) return t("error.network");
  const key = `error.${error.code}`;
  const translated = t(key);
  if (translated !== key) return translated;
  return error.message || t("error.generic");
}

/* Submit a CashNet hand-off {action, method, fields} as a top-level form post. */
function submitCheckout(checkout) {
  const form = document.createElement("form");
  form.method = checkout.method || "POST";
  form.action = checkout.action;
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
