/* The kiosk's main page: "Scan your ID card", then the patron's fees in large type, the choice
   of fees and amount, and the hand-off to CashNet (docs/kiosk.md#how-a-kiosk-payment-flows). The
   agent holds the session; this page only shows it. */
"use strict";

const view = { fees: null, chosen: new Set(), showTitles: false, typed: "", guard: null };
const SCREENS = ["idle", "working", "fees", "amount", "nothing", "progress", "redirecting", "offline"];

function show(screen) {
  for (const id of SCREENS) $(id).hidden = id !== screen;
  $("start-over").hidden = !Kiosk.session || screen === "redirecting";
  const heading = $(screen).querySelector("h1");
  if (heading && screen !== "idle") {
    heading.tabIndex = -1;
    heading.focus();
  }
}

async function initKiosk() {
  startDisplayControls();
  await startI18n();
  $("start-over").addEventListener("click", resetKiosk);
  $("nothing-done").addEventListener("click", resetKiosk);
  $("pay-all").addEventListener("click", () => pay(view.chargeCents));
  $("pay-part").addEventListener("click", showAmount);
  $("amount-back").addEventListener("click", () => show("fees"));
  $("pay-amount").addEventListener("click", payTyped);
  $("keypad").addEventListener("click", keypad);
  $("titles-toggle").addEventListener("click", toggleTitles);
  $("progress-back").addEventListener("click", loadFees);
  whenLanguageChanges(() => {
    if (view.fees && !$("fees").hidden) renderFees();
    if (view.fees && !$("amount").hidden) renderTyped();
    renderRecent();
  });
  const data = await loadKioskSession();
  if (!data) {
    show("offline");
    setTimeout(() => leave("/kiosk/"), 5000);
    return;
  }
  say($("idle-limit"), "kiosk.idle.limit", { seconds: Kiosk.settings.idle_seconds });
  showReader(Kiosk.reader);
  startWedge();
  listenToAgent(onAgentEvent);
  if (!Kiosk.session) return show("idle");
  if (Kiosk.session.payment) {
    // On CashNet, then back some other way than its sign-out: the return page asks the agent.
    leave(`/kiosk/return?p=${encodeURIComponent(Kiosk.session.payment)}`);
    return;
  }
  await openSession();
}

async function openSession() {
  view.guard = startIdleGuard();
  await loadFees();
}

function onAgentEvent(event) {
  if (event.type === "hello") {
    showReader(event.reader);
    if (event.session !== Boolean(Kiosk.session)) onSessionChanged();
  } else if (event.type === "reader") {
    showReader(event.state);
  } else if (event.type === "scan") {
    if (view.guard) view.guard.activity();
    if (event.result === "accepted") {
      clearText($("scan-message"));
      if (!Kiosk.session) show("working");
    } else {
      showRefusal(event.reason);
      if (!Kiosk.session) show("idle");
    }
  } else if (event.type === "session") {
    onSessionChanged();
  }
}

/* A session opened or ended on the agent. A different patron always gets a fresh page. */
async function onSessionChanged() {
  if (Kiosk.resetting) return;
  const before = Kiosk.session ? Kiosk.session.handle : null;
  const result = await apiCall("GET", "/api/session");
  if (!result.ok) return;
  const now = result.data.session;
  if (before) {
    if (!now || now.handle !== before) patronGone();
    return;
  }
  if (now) {
    await loadKioskSession();
    await openSession();
  }
}

async function loadFees() {
  show("working");
  const result = await apiCall("GET", withHandle("/api/fees"));
  if (!result.ok) {
    if (result.status === 401 || result.status === 409) return patronGone();
    show("nothing");
    say($("nothing-heading"), "kiosk.fees.hello", { name: Kiosk.session.first_name });
    localizeError($("nothing-text"), result);
    return;
  }
  view.fees = result.data;
  loadRecent();
  const payable = view.fees.fees.filter((fee) => fee.payable);
  view.chosen = new Set(payable.map((fee) => fee.id));
  const inProgress = view.fees.in_progress || [];
  if (payable.length === 0 && inProgress.length) return showProgress(inProgress);
  if (payable.length === 0) {
    show("nothing");
    say($("nothing-heading"), "kiosk.fees.hello", { name: Kiosk.session.first_name });
    say($("nothing-text"), view.fees.fees.length ? "kiosk.fees.none_payable" : "kiosk.fees.none");
    return;
  }
  renderFees();
  show("fees");
}

function renderFees() {
  const { fees, currency } = view.fees;
  say($("fees-heading"), "kiosk.fees.hello", { name: Kiosk.session.first_name });
  say($("fees-intro"), "kiosk.fees.intro");
  const privacy = Kiosk.settings.privacy;
  $("titles-toggle").hidden = !privacy || !fees.some((fee) => fee.title);
  const list = $("fee-list");
  list.replaceChildren();
  for (const fee of fees) list.appendChild(feeItem(fee, currency, !privacy || view.showTitles));
  $("fees-progress").hidden = !(view.fees.in_progress || []).length;
  renderProgressList($("fees-progress-list"), view.fees.in_progress);
  renderSummary();
  updateTotal();
}

const SUMMARY_KEYS = {
  owed: "kiosk.fees.total_owed", credit_show: "kiosk.fees.credit_show", credit_net: "kiosk.fees.credit_net",
  inexact_one: "kiosk.fees.inexact_one", inexact_many: "kiosk.fees.inexact_many",
};

/* What is owed, the credit and what it does here, and the fees in no total
   (FeeLabels.summaryLines). */
function renderSummary() {
  const currency = view.fees.currency;
  const lines = FeeLabels.summaryLines(view.fees, SUMMARY_KEYS, (amount) => formatMoney(amount, currency));
  for (const [id, line] of [["fees-owed", lines.owed], ["fees-credit", lines.credit], ["fees-inexact", lines.inexact]]) {
    $(id).hidden = !line;
    if (line) say($(id), ...line); else clearText($(id));
  }
}

// Why a fee cannot be chosen here (FeeLabels.feeNote), in the kiosk's words.
const FEE_NOTES = {
  in_progress: "kiosk.fees.in_progress", credit: "kiosk.fees.credit", billed: "kiosk.fees.billed", inexact: "kiosk.fees.at_desk",
  not_payable: "kiosk.fees.at_desk",
};

function feeItem(fee, currency, withTitle) {
  const item = document.createElement("li");
  item.className = "fee";
  const label = document.createElement(fee.payable ? "label" : "div");
  label.className = "fee-row";
  if (fee.payable) {
    const box = document.createElement("input");
    box.type = "checkbox";
    box.checked = view.chosen.has(fee.id);
    box.value = fee.id;
    box.addEventListener("change", () => {
      if (box.checked) view.chosen.add(fee.id); else view.chosen.delete(fee.id);
      updateTotal();
    });
    label.appendChild(box);
  }
  const text = document.createElement("span");
  text.className = "fee-text";
  const type = document.createElement("span");
  type.className = "fee-type";
  type.textContent = FeeLabels.feeTypeLabel(fee.type.code, fee.type.label, I18N);
  const date = document.createElement("span");
  date.className = "fee-date";
  date.textContent = formatDate(fee.created);
  text.append(type, date);
  if (withTitle && fee.title) {
    const title = document.createElement("span");
    title.className = "fee-title";
    title.textContent = fee.title;
    text.appendChild(title);
  }
  if (!fee.payable) {
    const note = document.createElement("span");
    note.className = "fee-note";
    say(note, FEE_NOTES[MyPayments.heldNote(fee) || FeeLabels.feeNote(fee)]);
    text.appendChild(note);
  }
  const amount = document.createElement("span");
  amount.className = "fee-amount";
  amount.textContent = formatMoney(fee.balance, currency);
  label.append(text, amount);
  item.appendChild(label);
  return item;
}

function toggleTitles() {
  view.showTitles = !view.showTitles;
  $("titles-toggle").setAttribute("aria-pressed", String(view.showTitles));
  say($("titles-toggle"), view.showTitles ? "kiosk.fees.hide_titles" : "kiosk.fees.show_titles");
  renderFees();
}

function chosenCents() {
  return view.fees.fees.filter((fee) => view.chosen.has(fee.id)).reduce((sum, fee) => sum + Money.cents(fee.balance), 0);
}

/* The chosen fees and what paying them charges: less the credit under the "net" policy
   (Money.chargeCents). */
function updateTotal() {
  const currency = view.fees.currency;
  view.chosenCents = chosenCents();
  const credit = Money.cents(view.fees.credit_total || "0.00") || 0;
  view.chargeCents = Money.chargeCents(view.chosenCents, credit, view.fees.credit_policy);
  const money = (value) => formatCents(value, currency);
  if (view.chargeCents !== view.chosenCents) {
    say($("fees-total"), "kiosk.fees.total_net", {
      chosen: money(view.chosenCents), credit: money(view.chosenCents - view.chargeCents),
      amount: money(view.chargeCents) });
  } else {
    say($("fees-total"), "kiosk.fees.total", { amount: money(view.chosenCents) });
  }
  const none = view.chosen.size === 0;
  const covered = !none && view.chargeCents === 0;
  $("pay-all").disabled = none || covered;
  $("pay-part").disabled = none || covered;
  const label = none ? "kiosk.pay.choose" : covered ? "kiosk.pay.credit_covers" : "kiosk.pay.all";
  say($("pay-all"), label, { amount: money(view.chargeCents) });
}

/* The partial amount: an on-screen keypad (a kiosk has no keyboard). */
function limits() {
  const max = view.chargeCents;
  const min = Math.min(Money.cents(view.fees.min_payment || "1.00"), max);
  return { min, max };
}

function showAmount() {
  view.typed = "";
  const { min, max } = limits();
  const currency = view.fees.currency;
  say($("amount-help"), "kiosk.amount.help", {
    min: formatCents(min, currency), max: formatCents(max, currency),
  });
  clearText($("amount-error"));
  renderTyped();
  show("amount");
}

function keypad(event) {
  const key = event.target.closest("[data-key]");
  if (!key) return;
  const value = key.dataset.key;
  let typed = view.typed;
  if (value === "back") typed = typed.slice(0, -1);
  else if (value === ".") { if (!typed.includes(".")) typed = (typed || "0") + "."; }
  else if (!/\.\d\d$/.test(typed) && typed.replace(".", "").length < 7) typed = typed === "0" ? value : typed + value;
  view.typed = typed;
  clearText($("amount-error"));
  renderTyped();
}

/* The keypad's amount in cents, or null. "12." is 12.00 (the cents not typed yet). */
function typedCents() {
  return Money.cents(view.typed.replace(/\.$/, ""));
}

function renderTyped() {
  const currency = view.fees.currency;
  const value = typedCents();
  $("amount-display").textContent = formatCents(value === null ? 0 : value, currency);
  const { min, max } = limits();
  const ok = value !== null && value >= min && value <= max;
  $("pay-amount").disabled = !ok;
  // Too much cannot be mended by typing on: say why "Pay" is off (too little can, so not yet).
  if (value !== null && value > max) say($("amount-error"), "kiosk.amount.out_of_range");
  say($("pay-amount"), ok ? "kiosk.pay.amount" : "kiosk.pay.amount_plain", { amount: formatCents(value || 0, currency) });
}

function payTyped() {
  const value = typedCents();
  const { min, max } = limits();
  if (value === null || value < min || value > max) {
    say($("amount-error"), "kiosk.amount.out_of_range");
    return;
  }
  pay(value);
}

async function pay(amountCents) {
  clearText($("fees-error"));
  for (const id of ["pay-all", "pay-part", "pay-amount"]) $(id).disabled = true;
  const result = await apiCall("POST", "/api/payments", {
    fee_ids: [...view.chosen], amount: Money.amountText(amountCents),
  });
  if (!result.ok) {
    const inTheWay = MyPayments.conflict(result);
    if (inTheWay) return showProgress(inTheWay, result);
    if (result.status === 401 || result.status === 409) return patronGone();
    show("fees");
    localizeError($("fees-error"), result);
    updateTotal();
    return;
  }
  if (view.guard) view.guard.stop();
  show("redirecting");
  submitCheckout(result.data.checkout);
}

document.addEventListener("DOMContentLoaded", initKiosk);
