/* The kiosk's view of the patron's own payments: a payment in progress (on the fees screen,
   and its own screen when paying is refused because one is under way) with "Go back to
   CashNet" for this kiosk's own and "Cancel this payment", and the last three payments.
   Uses kiosk.js (view, show, loadFees) and common.js (say, clearText, withHandle). */
"use strict";

/* Fill `list` with the payments in progress and their choices. */
function renderProgressList(list, payments) {
  list.replaceChildren(...(payments || []).map(progressItem));
}

function progressItem(payment) {
  const item = document.createElement("li");
  item.className = "fee-row progress-item";
  const text = document.createElement("span");
  text.className = "fee-text";
  const what = document.createElement("span");
  const [key, params] = MyPayments.where("payments.progress", payment);
  const currency = payment.currency || (view.fees && view.fees.currency);
  say(what, key, Object.assign(params, { amount: formatMoney(payment.amount, currency), when: formatDate(payment.created, true) }));
  const hint = document.createElement("span");
  hint.className = "fee-note";
  if (payment.state === "paid") say(hint, "payments.progress.recording");
  else if (!payment.can_resume) say(hint, "payments.progress.elsewhere");
  else say(hint, "payments.progress.waiting");
  text.append(what, hint);
  item.appendChild(text);
  const actions = document.createElement("span");
  actions.className = "actions";
  if (payment.can_resume) actions.appendChild(kioskButton("payments.resume", "primary", () => resumeKioskPayment(payment)));
  if (payment.can_cancel) actions.appendChild(kioskButton("payments.cancel", "", () => cancelKioskPayment(payment)));
  if (actions.childElementCount) item.appendChild(actions);
  return item;
}

function kioskButton(key, kind, onClick) {
  const button = document.createElement("button");
  button.type = "button";
  button.className = `button ${kind}`.trim();
  say(button, key);
  button.addEventListener("click", onClick);
  return button;
}

/* Starting a payment was refused (`refusal`), or every fee is held: the payments in the way. */
function showProgress(payments, refusal) {
  if (refusal) localizeError($("progress-error"), refusal); else clearText($("progress-error"));
  $("progress-back").hidden = !refusal;  // with every fee held, there are no fees to go back to
  renderProgressList($("progress-list"), payments);
  show("progress");
}

async function resumeKioskPayment(payment) {
  const result = await apiCall("POST", `/api/payments/${encodeURIComponent(payment.id)}/resume`, {});
  if (!result.ok) {
    if (result.status === 401) return patronGone();
    return loadFees();
  }
  if (view.guard) view.guard.stop();
  show("redirecting");
  submitCheckout(result.data.checkout);
}

async function cancelKioskPayment(payment) {
  const result = await apiCall("POST", `/api/payments/${encodeURIComponent(payment.id)}/cancel`, {});
  if (result.status === 401) return patronGone();
  await loadFees();
}

/* The last three payments, on the fees and "nothing to pay" screens. A failure leaves them
   out: paying matters more. */
async function loadRecent() {
  const result = await apiCall("GET", withHandle("/api/payments"));
  view.recent = result.ok ? (result.data.payments || []) : [];
  renderRecent();
}

function renderRecent() {
  const payments = view.recent || [];
  for (const box of document.querySelectorAll("[data-recent]")) {
    box.hidden = payments.length === 0;
    box.querySelector("ul").replaceChildren(...payments.map(recentItem));
  }
}

function recentItem(payment) {
  const item = document.createElement("li");
  const first = document.createElement("span");
  say(first, "kiosk.history.item", { date: formatDate(payment.created, true), amount: formatMoney(payment.amount, payment.currency) });
  const where = document.createElement("span");
  where.className = "fee-note";
  say(where, ...MyPayments.where("payments.where", payment));
  const state = document.createElement("span");
  state.className = "fee-type";
  say(state, ...MyPayments.stateText(payment));
  item.append(first, " · ", where, " · ", state);
  return item;
}
