/* The fees page's own payments: those in progress, with "Go back to CashNet" and "Cancel
   this payment" (shown when the page loads, and when starting a payment is refused because
   one is under way), and the payments of the last twelve months, each linking to its receipt.
   Uses app.js's page helpers ($, announce, showAlert, showAlertFor, loadFees). */
"use strict";

const myPayments = { inProgress: [], history: null, currency: "USD" };

function moneyOf(payment) { return formatMoney(payment.amount, payment.currency || myPayments.currency); }

/* The payments in progress; an empty list hides the panel. */
function renderInProgress(list) {
  myPayments.inProgress = list || [];
  const panel = $("in-progress");
  panel.hidden = myPayments.inProgress.length === 0;
  $("in-progress-list").replaceChildren(...myPayments.inProgress.map(inProgressItem));
}

function inProgressItem(payment) {
  const item = document.createElement("li");
  const text = document.createElement("p");
  const [key, params] = MyPayments.where("payments.progress", payment);
  localize(text, key, Object.assign(params, { amount: moneyOf(payment), when: formatDate(payment.created, true) }));
  item.appendChild(text);
  const note = document.createElement("p");
  note.className = "hint";
  if (payment.state === "paid") localize(note, "payments.progress.recording");
  else if (!payment.can_resume) localize(note, "payments.progress.elsewhere");
  else localize(note, "payments.progress.waiting");
  item.appendChild(note);
  const actions = document.createElement("div");
  actions.className = "actions";
  if (payment.can_resume) actions.appendChild(actionButton("payments.resume", "primary", () => resumePayment(payment)));
  if (payment.can_cancel) actions.appendChild(actionButton("payments.cancel", "", () => cancelPayment(payment)));
  if (actions.childElementCount) item.appendChild(actions);
  return item;
}

function actionButton(key, kind, onClick) {
  const button = document.createElement("button");
  button.type = "button";
  button.className = `button ${kind}`.trim();
  localize(button, key);
  button.addEventListener("click", onClick);
  return button;
}

/* Starting a payment was refused: say why, show the payments in the way and their choices. */
function showConflict(result, payments) {
  showAlertFor(result);
  renderInProgress(payments);
  const heading = $("in-progress-heading");
  heading.tabIndex = -1;
  heading.focus();
}

async function resumePayment(payment) {
  showAlert("");
  announce("pay.working");
  const result = await apiCall("POST", `/api/payments/${encodeURIComponent(payment.id)}/resume`, {});
  if (!result.ok) {
    announce("");
    showAlertFor(result);
    return loadFees();
  }
  announce("pay.redirecting");
  submitCheckout(result.data.checkout);
}

async function cancelPayment(payment) {
  showAlert("");
  const result = await apiCall("POST", `/api/payments/${encodeURIComponent(payment.id)}/cancel`, {});
  if (!result.ok) showAlertFor(result);
  await loadFees();
  if (result.ok) announce("payments.cancelled", { amount: moneyOf(payment) });
}

/* The last twelve months, newest first. A failure here leaves the section hidden: paying
   matters more than the list. */
async function loadHistory() {
  const result = await apiCall("GET", "/api/payments");
  if (!result.ok) return;
  myPayments.history = result.data.payments || [];
  renderHistory();
}

function renderHistory() {
  const payments = myPayments.history;
  if (!payments) return;
  $("history").hidden = payments.length === 0;  // nothing to find again: no section
  $("history-rows").replaceChildren(...payments.map(historyRow));
}

function historyRow(payment) {
  const row = document.createElement("tr");
  const date = document.createElement("th");
  date.scope = "row";
  date.textContent = formatDate(payment.created, true);
  row.appendChild(date);
  const amount = document.createElement("td");
  amount.className = "num";
  amount.textContent = moneyOf(payment);
  row.appendChild(amount);
  const where = document.createElement("td");
  localize(where, ...MyPayments.where("payments.where", payment));
  row.appendChild(where);
  const state = document.createElement("td");
  localize(state, ...MyPayments.stateText(payment));
  row.appendChild(state);
  const receipt = document.createElement("td");
  const link = document.createElement("a");
  link.href = ownPath(`/receipt.html?r=${encodeURIComponent(payment.receipt_token)}`);
  localize(link, "payments.receipt");
  localizeAttr(link, "aria-label", "payments.receipt_for", { amount: moneyOf(payment), date: formatDate(payment.created, true) });
  receipt.appendChild(link);
  row.appendChild(receipt);
  return row;
}

/* Dates and amounts are formatted when drawn: draw again in the new language. */
function relabelMyPayments() {
  if (myPayments.inProgress.length) renderInProgress(myPayments.inProgress);
  renderHistory();
}
