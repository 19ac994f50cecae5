/* The fees page: sign-in methods, the fees table, the amount, and the hand-off to CashNet. */
"use strict";

const state = { session: null, fees: null };
const $ = (id) => document.getElementById(id);

function announce(text) { $("status").textContent = text; }

function showAlert(text) {
  const alert = $("alert");
  alert.textContent = text;
  alert.hidden = !text;
}

function cents(amount) {
  // "12.50" -> 1250 exactly: amounts never pass through floating point arithmetic here.
  const [whole, frac = ""] = String(amount).split(".");
  return Number(whole) * 100 + Number((frac + "00").slice(0, 2));
}

function amountText(centsValue) {
  const whole = Math.floor(centsValue / 100);
  return `${whole}.${String(centsValue % 100).padStart(2, "0")}`;
}

async function init() {
  await startI18n();
  const error = new URLSearchParams(location.search).get("error");
  if (error) showAlert(t(`error.${error}`) === `error.${error}` ? t("error.generic") : t(`error.${error}`));
  const result = await apiCall("GET", "/api/session");
  if (result.status === 401) return showSignIn(result.data.methods || []);
  if (!result.ok) return showAlert(errorText(result));
  state.session = result.data;
  API.csrf = result.data.csrf_token;
  showAccount();
  await loadFees();
}

function showSignIn(methods) {
  $("signin").hidden = false;
  for (const method of ["sso", "cas", "primo"]) $(`method-${method}`).hidden = !methods.includes(method);
  $("guest-form").hidden = !methods.includes("alma");
  $("guest-form").addEventListener("submit", guestSignIn);
}

async function guestSignIn(event) {
  event.preventDefault();
  const userField = $("guest-user"), passwordField = $("guest-password"), errorBox = $("guest-error");
  errorBox.hidden = true;
  for (const field of [userField, passwordField]) field.removeAttribute("aria-invalid");
  announce(t("signin.working"));
  const result = await apiCall("POST", "/auth/alma", {
    user_id: userField.value.trim(), password: passwordField.value,
  });
  passwordField.value = "";
  if (result.ok) { location.replace("/"); return; }
  announce("");
  errorBox.textContent = errorText(result);
  errorBox.hidden = false;
  const field = result.data.error && result.data.error.field === "user_id" ? userField : passwordField;
  field.setAttribute("aria-invalid", "true");
  field.focus();
}

function showAccount() {
  $("account").hidden = false;
  $("signed-in-as").textContent = t("nav.signed_in_as", { name: state.session.patron.name });
  $("signout").addEventListener("click", async () => {
    await apiCall("POST", "/auth/logout", {});
    location.replace("/");
  });
}

async function loadFees() {
  $("fees").hidden = false;
  announce(t("fees.loading"));
  const result = await apiCall("GET", "/api/fees");
  announce("");
  if (!result.ok) {
    if (result.status === 401) { showAlert(errorText(result)); $("fees").hidden = true; return; }
    return showAlert(errorText(result));
  }
  state.fees = result.data;
  state.minPayment = result.data.min_payment;
  renderFees();
}

function renderFees() {
  const { fees, currency } = state.fees;
  const payable = fees.filter((fee) => fee.payable);
  if (fees.length === 0 || payable.length === 0) {
    $("fees-empty").textContent = t(fees.length === 0 ? "fees.none" : "fees.none_payable");
    $("fees-empty").hidden = false;
    if (fees.length === 0) return;
  }
  const rows = $("fee-rows");
  rows.replaceChildren();
  for (const fee of fees) rows.appendChild(feeRow(fee, currency));
  $("total-owed").textContent = t("fees.total_owed", { amount: formatMoney(state.fees.total, currency) });
  $("pay-form").hidden = false;
  $("pay-form").addEventListener("submit", pay);
  $("pay-form").addEventListener("change", (event) => { if (event.target.type === "checkbox") updateChosen(true); });
  $("amount").addEventListener("input", () => clearAmountError());
  updateChosen(true);
  if (payable.length === 0) $("pay-form").querySelector("fieldset").hidden = true;
}

function feeRow(fee, currency) {
  const row = document.createElement("tr");
  const payCell = document.createElement("td");
  if (fee.payable) {
    const box = document.createElement("input");
    box.type = "checkbox";
    box.checked = true;
    box.value = fee.id;
    box.name = "fee_ids";
    box.id = `fee-${fee.id}`;
    box.setAttribute("aria-label", t("fees.select", { type: fee.type.label, amount: formatMoney(fee.balance, currency) }));
    payCell.appendChild(box);
  } else {
    payCell.textContent = cents(fee.balance) < 0 ? t("fees.credit") : t("fees.not_payable");
    payCell.className = "hint";
  }
  row.appendChild(payCell);
  const cells = [fee.type.label, fee.library.name, fee.title || t("fees.no_title"), formatDate(fee.created)];
  for (const text of cells) {
    const cell = document.createElement("td");
    cell.textContent = text;
    row.appendChild(cell);
  }
  for (const amount of [fee.original, fee.balance]) {
    const cell = document.createElement("td");
    cell.className = "num";
    cell.textContent = formatMoney(amount, currency);
    row.appendChild(cell);
  }
  return row;
}

function chosenIds() {
  return [...document.querySelectorAll("#fee-rows input[type=checkbox]:checked")].map((box) => box.value);
}

function updateChosen(resetAmount) {
  const ids = new Set(chosenIds());
  const total = state.fees.fees.filter((fee) => ids.has(fee.id)).reduce((sum, fee) => sum + cents(fee.balance), 0);
  const currency = state.fees.currency;
  state.chosenCents = total;
  $("selected-total").textContent = t("pay.selected_total", { amount: formatMoney(amountText(total), currency) });
  if (resetAmount) $("amount").value = amountText(total);
  const minimum = Math.min(cents(state.minPayment || "1.00"), total);
  $("amount-help").textContent = total > minimum
    ? t("pay.amount.help", { min: formatMoney(amountText(minimum), currency), max: formatMoney(amountText(total), currency) })
    : t("pay.amount.help_exact", { max: formatMoney(amountText(total), currency) });
  $("pay-button").disabled = ids.size === 0;
  $("pay-button").textContent = ids.size ? t("pay.submit", { amount: formatMoney(amountText(total), currency) }) : t("pay.submit_plain");
}

function clearAmountError() {
  $("amount-error").hidden = true;
  $("amount").removeAttribute("aria-invalid");
}

function amountError(text) {
  $("amount-error").textContent = text;
  $("amount-error").hidden = false;
  $("amount").setAttribute("aria-invalid", "true");
  $("amount").focus();
}

async function pay(event) {
  event.preventDefault();
  showAlert("");
  clearAmountError();
  const feeIds = chosenIds();
  if (feeIds.length === 0) return showAlert(t("pay.nothing_chosen"));
  const amount = $("amount").value.trim().replace(/^\$/, "");
  if (!/^\d+(\.\d{1,2})?$/.test(amount)) return amountError(t("error.invalid_amount"));
  $("pay-button").disabled = true;
  announce(t("pay.working"));
  const result = await apiCall("POST", "/api/payments", { fee_ids: feeIds, amount });
  if (!result.ok) {
    $("pay-button").disabled = false;
    announce("");
    const error = result.data.error || {};
    if (error.field === "amount") return amountError(errorText(result));
    if (error.code === "unknown_fee") await loadFees();
    return showAlert(errorText(result));
  }
  announce(t("pay.redirecting"));
  submitCheckout(result.data.checkout);
}

document.addEventListener("DOMContentLoaded", init);
