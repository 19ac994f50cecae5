/* The fees page: the session (its sign-in section is signin.js), the fees table, the amount,
   and the hand-off to CashNet. Every message the patron sees goes through localize(), so a
   language switch redoes it. */
"use strict";

const state = { session: null, fees: null, unchecked: new Set() };
const $ = (id) => document.getElementById(id);

/* Status changes go to the polite live region; problems to the alert. */
function announce(key, params) {
  if (key) localize($("status"), key, params); else plainText($("status"), "");
}

function showAlert(key, params) {
  if (key) localize($("alert"), key, params); else plainText($("alert"), "");
}

function showAlertFor(result) { localizeError($("alert"), result); }

/* A field's error: shown by its label, tied to the field (aria-describedby in the markup,
   aria-invalid here), and the field gets focus so screen readers read it at once. */
function fieldError(field, errorBox, message) {
  if (message.result) localizeError(errorBox, message.result, message.params);
  else localize(errorBox, message.key, message.params);
  errorBox.hidden = false;
  field.setAttribute("aria-invalid", "true");
  field.focus();
}

function clearFieldError(field, errorBox) {
  plainText(errorBox, "");
  errorBox.hidden = true;
  field.removeAttribute("aria-invalid");
}

async function init() {
  // The session is asked for while the strings load (the page preloads both), and the fees as
  // soon as the session says someone is signed in: one wait after the scripts, not three.
  const sessionRead = apiCall("GET", "/api/session");
  const feesRead = sessionRead.then((result) => (result.ok && !switchAsked() ? apiCall("GET", "/api/fees") : null));
  await startI18n();
  onLanguageChange(relabel);
  const error = new URLSearchParams(location.search).get("error");
  if (error) showAlertFor({ status: 400, data: { error: { code: error } } });
  const result = await sessionRead;
  if (result.status === 401) return showSignIn(result.data);
  if (!result.ok) return showAlertFor(result);
  state.session = result.data;
  API.csrf = result.data.csrf_token;
  showAccount();
  if (await offerSwitch()) return;
  await loadFees(await feesRead);
}

/* The page came back from Primo to offer a change of patron (signin.js's offerSwitch): the
   fees wait for the answer. */
function switchAsked() { return new URLSearchParams(location.search).get("switch") === "primo"; }

function showAccount() {
  $("account").hidden = false;
  localize($("signed-in-as"), "nav.signed_in_as", { name: state.session.patron.name });
  $("signout").addEventListener("click", signOut);
}

/* `read`: the answer of a request already made (init's), else the fees are asked for now. */
async function loadFees(read) {
  $("fees").hidden = false;
  announce("fees.loading");
  const result = read || await apiCall("GET", "/api/fees");
  announce("");
  if (!result.ok) {
    if (result.status === 401) $("fees").hidden = true;
    return showAlertFor(result);
  }
  state.fees = result.data;
  state.minPayment = result.data.min_payment || "1.00";
  renderFees();
}

function renderFees() {
  const { fees } = state.fees;
  const payable = fees.filter((fee) => fee.payable);
  renderInProgress(state.fees.in_progress);
  loadHistory();
  $("fees-empty").hidden = payable.length > 0;
  if (payable.length === 0) {
    const held = fees.some((fee) => MyPayments.heldNote(fee));
    localize($("fees-empty"), fees.length === 0 ? "fees.none" : held ? "fees.none_payable_in_progress" : "fees.none_payable");
    if (fees.length === 0) return;
  }
  renderRows();
  $("pay-form").hidden = false;
  if (!state.bound) bindPayForm();
  updateChosen(true);
  $("payment-fields").hidden = payable.length === 0;
}

function bindPayForm() {
  state.bound = true;
  $("pay-form").addEventListener("submit", pay);
  $("pay-form").addEventListener("change", (event) => {
    if (event.target.type !== "checkbox") return;
    if (event.target.checked) state.unchecked.delete(event.target.value); else state.unchecked.add(event.target.value);
    clearFeesError();
    updateChosen(true);
  });
  $("amount").addEventListener("input", () => clearFieldError($("amount"), $("amount-error")));
}

function renderRows() {
  const { fees, currency } = state.fees;
  $("fee-rows").replaceChildren(...fees.map((fee) => feeRow(fee, currency)));
  renderSummary();
}

const SUMMARY_KEYS = {
  owed: "fees.total_owed", credit_show: "fees.credit_show", credit_net: "fees.credit_net",
  inexact_one: "fees.inexact_one", inexact_many: "fees.inexact_many",
};

/* What is owed, the credit and what it does here, and the fees in no total
   (FeeLabels.summaryLines). */
function renderSummary() {
  const lines = FeeLabels.summaryLines(state.fees, SUMMARY_KEYS, (amount) => asMoney(amount, state.fees.currency));
  for (const [id, line] of [["total-owed", lines.owed], ["credit-line", lines.credit], ["inexact-line", lines.inexact]]) {
    $(id).hidden = !line;
    if (line) localize($(id), ...line); else plainText($(id), "");
  }
}

// Why a fee has no checkbox (FeeLabels.feeNote), in this page's words.
const FEE_NOTES = {
  in_progress: "fees.in_progress",
  credit: "fees.credit", billed: "fees.billed", inexact: "fees.inexact", not_payable: "fees.not_payable",
};

function typeLabel(fee) { return FeeLabels.feeTypeLabel(fee.type.code, fee.type.label, I18N); }

function feeRow(fee, currency) {
  const row = document.createElement("tr");
  const payCell = document.createElement("td");
  if (fee.payable) {
    const box = document.createElement("input");
    box.type = "checkbox";
    box.checked = !state.unchecked.has(fee.id);
    box.value = fee.id;
    box.name = "fee_ids";
    box.id = `fee-${fee.id}`;
    box.setAttribute("aria-describedby", "fees-error");
    box.setAttribute("aria-label", t("fees.select", { type: typeLabel(fee), amount: asMoney(fee.balance, currency) }));
    payCell.appendChild(box);
  } else {
    payCell.textContent = t(FEE_NOTES[MyPayments.heldNote(fee) || FeeLabels.feeNote(fee)]);
    payCell.className = "hint";
  }
  row.appendChild(payCell);
  const typeCell = document.createElement("th");
  typeCell.scope = "row";
  typeCell.textContent = typeLabel(fee);
  row.appendChild(typeCell);
  for (const text of [fee.library.name, fee.title || t("fees.no_title"), formatDate(fee.created)]) {
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

/* On a language switch: rebuild the rows (checked boxes kept) and the amount texts, but
   leave the amount the patron typed alone. */
function relabel() {
  if (state.session) localize($("signed-in-as"), "nav.signed_in_as", { name: state.session.patron.name });
  relabelMyPayments();
  if (!state.fees || state.fees.fees.length === 0) return;
  renderRows();
  updateChosen(false);
}

function chosenIds() {
  return [...document.querySelectorAll("#fee-rows input[type=checkbox]:checked")].map((box) => box.value);
}

/* The most and least this payment can be: the chosen fees, less the credit under the "net"
   policy (Money.chargeCents). */
function limits() {
  const total = state.chargeCents;
  return { min: Math.min(Money.cents(state.minPayment), total), max: total };
}

function updateChosen(resetAmount) {
  const ids = new Set(chosenIds());
  const currency = state.fees.currency;
  state.chosenCents = state.fees.fees.filter((fee) => ids.has(fee.id)).reduce((sum, fee) => sum + Money.cents(fee.balance), 0);
  const credit = Money.cents(state.fees.credit_total || "0.00") || 0;
  state.chargeCents = Money.chargeCents(state.chosenCents, credit, state.fees.credit_policy);
  const { min, max } = limits();
  const money = (value) => asMoney(Money.amountText(value), currency);
  if (state.chargeCents !== state.chosenCents) {
    localize($("selected-total"), "pay.selected_total_net", {
      chosen: money(state.chosenCents), credit: money(state.chosenCents - state.chargeCents), amount: money(max) });
  } else {
    localize($("selected-total"), "pay.selected_total", { amount: money(max) });
  }
  const covered = ids.size > 0 && max === 0;
  $("pay-button").disabled = covered;
  $("amount").disabled = covered;
  if (resetAmount) {
    $("amount").value = Money.amountText(max);
    clearFieldError($("amount"), $("amount-error"));
  }
  if (covered) localize($("amount-help"), "pay.credit_covers");
  else if (max > min) localize($("amount-help"), "pay.amount.help", { min: money(min), max: money(max) });
  else localize($("amount-help"), "pay.amount.help_exact", { max: money(max) });
  if (ids.size) localize($("pay-button"), "pay.submit", { amount: money(max) });
  else localize($("pay-button"), "pay.submit_plain");
}

function clearFeesError() {
  plainText($("fees-error"), "");
  $("fees-error").hidden = true;
}

/* The amount problem, if any, checked here first so the patron hears it at once; the proxy
   checks it again against Alma. */
function amountProblem(value) {
  const currency = state.fees.currency;
  const { min, max } = limits();
  if (value === null) return { key: "error.invalid_amount" };
  if (value < min || value <= 0) return { key: "error.amount_too_small", params: { amount: asMoney(Money.amountText(min), currency) } };
  if (value > max) return { key: "error.amount_too_large", params: { amount: asMoney(Money.amountText(max), currency) } };
  return null;
}

async function pay(event) {
  event.preventDefault();
  showAlert("");
  clearFeesError();
  const amountField = $("amount"), amountBox = $("amount-error");
  clearFieldError(amountField, amountBox);
  const feeIds = chosenIds();
  const firstBox = document.querySelector("#fee-rows input[type=checkbox]");
  if (feeIds.length === 0) {
    localize($("fees-error"), "pay.nothing_chosen");
    $("fees-error").hidden = false;
    if (firstBox) firstBox.focus();
    return;
  }
  const value = Money.typedCents(amountField.value);
  const problem = amountProblem(value);
  if (problem) return fieldError(amountField, amountBox, problem);
  $("pay-button").disabled = true;
  announce("pay.working");
  const result = await apiCall("POST", "/api/payments", { fee_ids: feeIds, amount: Money.amountText(value) });
  if (!result.ok) {
    $("pay-button").disabled = false;
    announce("");
    const error = result.data.error || {};
    const { min, max } = limits();
    const bound = error.code === "amount_too_small" ? min : max;
    if (error.field === "amount") {
      return fieldError(amountField, amountBox, { result, params: { amount: asMoney(Money.amountText(bound), state.fees.currency) } });
    }
    if (error.code === "unknown_fee") { state.fees = null; await loadFees(); }
    const inTheWay = MyPayments.conflict(result);
    if (inTheWay) { await loadFees(); return showConflict(result, inTheWay); }
    return showAlertFor(result);
  }
  announce("pay.redirecting");
  submitCheckout(result.data.checkout);
}

document.addEventListener("DOMContentLoaded", init);
