/* Back from CashNet (/kiosk/return?p=<payment id>): show what the agent learns from the proxy
   about the session's payment, never anything about a `p` that is not that payment. A receipt
   stays for receipt_seconds (with "I need more time") or until "Done"; then the kiosk resets. */
"use strict";

const { POLL_EVERY_MS, POLL_FOR_MS, PAID, NOT_PAID } = PaymentStatus;
const shown = { guard: null, countdown: null, screen: "checking", data: null, printOffered: false,
  emailAsked: false, email: null };

function showScreen(screen) {
  for (const id of ["checking", "receipt", "not-paid"]) $(id).hidden = id !== screen;
  if (shown.screen !== screen) {
    shown.screen = screen;
    const heading = $(screen).querySelector("h1");
    heading.tabIndex = -1;
    heading.focus();
  }
}

async function initReturn() {
  startDisplayControls();
  await startI18n();
  for (const id of ["start-over", "done", "not-paid-done"]) $(id).addEventListener("click", resetKiosk);
  $("back-to-fees").addEventListener("click", () => leave("/kiosk/"));
  whenLanguageChanges(() => { if (shown.data && shown.screen === "receipt") renderReceipt(shown.data); });
  const data = await loadKioskSession();
  if (!data || !Kiosk.session) return patronGone();
  startWedge();
  listenToAgent(onAgentEvent);
  shown.guard = startIdleGuard();
  const asked = new URLSearchParams(location.search).get("p");
  const first = await apiCall("GET", withHandle("/api/payments/current"));
  if (!first.ok || first.data.payment.id !== asked) return leave("/kiosk/");
  await follow(first.data);
}

function onAgentEvent(event) {
  if (Kiosk.resetting) return;
  if (event.type === "session" || (event.type === "hello" && !event.session)) {
    patronGone();  // ended, or another patron scanned a card
  } else if (event.type === "scan" && event.result === "refused") {
    showRefusal(event.reason);
  }
}

async function follow(data) {
  const deadline = Date.now() + POLL_FOR_MS;
  render(data);
  while (!data.payment.final && !Kiosk.resetting) {
    if (Date.now() >= deadline) {
      say($(shown.screen === "receipt" ? "receipt-status" : "checking-text"), "kiosk.receipt.still_processing");
      return;
    }
    await sleep(POLL_EVERY_MS);
    const result = await apiCall("GET", withHandle("/api/payments/current"));
    if (result.status === 401 || result.status === 409) return patronGone();
    if (result.ok) {
      data = result.data;
      render(data);
    }
  }
}

function render(data) {
  const payment = data.payment;
  if (PAID.includes(payment.state)) return renderReceipt(data);
  if (NOT_PAID.includes(payment.state)) {
    showScreen("not-paid");
    say($("not-paid-heading"), `kiosk.state.${payment.state}`);
    return;
  }
  showScreen("checking");
  say($("checking-text"), `kiosk.state.${payment.state}`);
}

function renderReceipt(data) {
  shown.data = data;
  const payment = data.payment;
  const money = (amount) => formatMoney(amount, payment.currency);
  say($("receipt-heading"), "kiosk.receipt.thanks", { name: data.patron.first_name });
  say($("receipt-status"), `kiosk.state.${payment.state}`);
  $("r-amount").textContent = money(payment.amount);
  $("r-date").textContent = formatDate(payment.paid || payment.created);
  $("r-tx").textContent = payment.cashnet_tx || "—";
  $("r-ref").textContent = payment.id;
  const list = $("r-fees");
  list.replaceChildren();
  for (const allocation of payment.allocations) {
    const item = document.createElement("li");
    const type = FeeLabels.feeTypeLabel(allocation.fee_type, allocation.fee_label, I18N);
    item.textContent = t("kiosk.receipt.fee_line", { type, amount: money(allocation.amount) });
    list.appendChild(item);
  }
  showScreen("receipt");
  offerPrint();
  offerEmail();
  if (!shown.countdown) startReceiptCountdown();
}

/* "Print receipt" (docs/kiosk.md#receipt-printer): offered, never forced, when the kiosk has a
   printer and the payment is paid; one receipt per payment. Printer trouble is said plainly,
   with the web receipt's code for the patron's phone; the payment is never affected. */
const PRINT_TROUBLE = {
  paper_out: "kiosk.print.paper_out",
  cover_open: "kiosk.print.cover_open",
  offline: "kiosk.print.offline",
};

function offerPrint() {
  if (!Kiosk.settings.printer || shown.printOffered) return;
  shown.printOffered = true;
  $("print-receipt").hidden = false;
  $("print-receipt").addEventListener("click", printReceipt);
}

async function printReceipt() {
  const button = $("print-receipt");
  button.disabled = true;
  $("print-trouble").hidden = true;
  say($("print-status"), "kiosk.print.printing");
  touchAgent(true);
  const result = await apiCall("POST", "/api/receipt/print", { language: I18N.lang });
  if (result.status === 401 || (result.data.error || {}).code === "session_changed") return patronGone();
  const code = (result.data.error || {}).code;
  if ((result.ok && result.data.printed) || code === "already_printed") {
    say($("print-status"), "kiosk.print.done");
    button.hidden = true;
    $("done").focus();
    return;
  }
  clearText($("print-status"));
  // Not the printer's fault (the payment service did not answer): no blame on the printer.
  say($("print-problem"), result.ok ? PRINT_TROUBLE[result.data.printer] || "kiosk.print.offline"
    : "kiosk.print.failed");
  const webReceipt = result.ok && result.data.web_receipt;
  if (webReceipt) $("web-receipt-code").src = withHandle("/api/receipt/code.svg");
  $("web-receipt").hidden = !webReceipt;
  showEmailInstead();
  $("print-trouble").hidden = false;
  button.disabled = false;  // once the paper is in, the patron may try again
}

/* "E-mail receipt" (docs/kiosk.md#e-mailed-receipt): offered beside "Print receipt" when the
   proxy can mail this payment's receipt, never forced; the address shows only as a masked hint
   (m•••@example.edu), since others may read the screen. Asked once per payment: the proxy
   mails it when the payment is posted. */
async function offerEmail() {
  if (shown.emailAsked) return;
  shown.emailAsked = true;
  const result = await apiCall("GET", withHandle("/api/receipt/email"));
  if (!result.ok || Kiosk.resetting) return;
  showEmail(result.data.email);
}

function showEmail(email) {
  shown.email = email;
  const button = $("email-receipt");
  if (email.requested) say($("email-status"), "kiosk.email.done", { to: email.to });
  else if (email.automatic) say($("email-status"), "kiosk.email.automatic", { to: email.to });
  if (email.offered && button.hidden) {
    button.hidden = false;
    button.addEventListener("click", emailReceipt);
  }
  if (!email.offered) button.hidden = true;
  showEmailInstead();
}

/* After printer trouble: the e-mail is the other way to a receipt, when there is one. */
function showEmailInstead() {
  const offered = Boolean(shown.email && shown.email.offered);
  if (offered) say($("email-instead"), "kiosk.print.email_instead", { to: shown.email.to });
  $("email-instead").hidden = !offered;
}

async function emailReceipt() {
  const button = $("email-receipt");
  button.disabled = true;
  touchAgent(true);
  const result = await apiCall("POST", "/api/receipt/email");
  if (result.status === 401 || (result.data.error || {}).code === "session_changed") return patronGone();
  const code = (result.data.error || {}).code;
  if (result.ok) {
    showEmail(result.data.email);
    $("done").focus();
    return;
  }
  if (code === "already_requested") {
    showEmail({ ...shown.email, offered: false, requested: true });
    $("done").focus();
    return;
  }
  say($("email-status"), "kiosk.email.failed");
  button.disabled = false;
}

/* The receipt resets the kiosk after receipt_seconds, visibly; "I need more time" restarts
   the count, as often as the patron likes. It replaces the idle guard. */
function startReceiptCountdown() {
  if (shown.guard) shown.guard.stop();
  const { Countdown, secondsLeft } = KioskTimers;
  const countdown = new Countdown(Kiosk.settings.receipt_seconds * 1000, Date.now());
  shown.countdown = countdown;
  let lastSecond = null;
  $("receipt-more-time").addEventListener("click", () => {
    countdown.extend(Date.now());
    touchAgent(true);
    tick();
  });
  function tick() {
    const now = Date.now();
    if (countdown.expired(now)) {
      clearInterval(interval);
      resetKiosk();
      return;
    }
    const seconds = secondsLeft(countdown.remainingMs(now));
    if (seconds !== lastSecond) {
      lastSecond = seconds;
      say($("receipt-count"), "kiosk.receipt.countdown", { seconds });
    }
  }
  const interval = setInterval(tick, 250);
  tick();
}

document.addEventListener("DOMContentLoaded", initReturn);
