/* The receipt: follows the payment until it is final (posted, declined, ...) by polling
   /api/receipts/{token}, with a deadline, then shows what happened.

   The page is reached with a receipt link (?r=token) or, back from CashNet without one, with
   the payment reference (?p=id): a reference alone shows the receipt only to the patron who
   paid, signed in on this browser; the page then puts a fresh receipt link in its address.
   A link too old to work asks for a new receipt. */
"use strict";

const RECEIPT = { data: null };

function byId(id) { return document.getElementById(id); }

function receiptStatus(key, params) { localize(byId("receipt-status"), key, params); }

function allocationLabel(allocation) {
  return FeeLabels.feeTypeLabel(allocation.fee_type, allocation.fee_label, I18N);
}

function renderReceipt(data) {
  RECEIPT.data = data;
  receiptStatus(`receipt.state.${data.payment.state}`);
  document.body.dataset.state = data.payment.state;
  renderDetails(data.payment);
}

/* Amounts, date and fee names: redone on a language switch (the status follows by itself). */
function renderDetails(payment) {
  const money = (amount) => formatMoney(amount, payment.currency);
  byId("r-amount").textContent = money(payment.amount);
  byId("r-date").textContent = formatDate(payment.paid || payment.created, true);
  byId("r-tx").textContent = payment.cashnet_tx || "—";
  byId("r-ref").textContent = payment.id;
  byId("r-fees").replaceChildren(...payment.allocations.map((allocation) => {
    const item = document.createElement("li");
    item.textContent = t("receipt.fee_line", { type: allocationLabel(allocation), amount: asMoney(allocation.amount, payment.currency) });
    return item;
  }));
  const paid = PaymentStatus.PAID.includes(payment.state);
  byId("receipt").hidden = !paid;
  byId("print").hidden = !paid;
  if (PaymentStatus.NOT_PAID.includes(payment.state)) localize(byId("back"), "receipt.try_again");
}

async function followReceipt(token) {
  const deadline = Date.now() + PaymentStatus.POLL_FOR_MS;
  while (true) {
    const result = await apiCall("GET", `/api/receipts/${encodeURIComponent(token)}`);
    if (result.ok) {
      renderReceipt(result.data);
      if (result.data.payment.final) return;
    } else if (result.status === 410) {
      const reference = result.data.reference || "";
      if (!(await receiptBySession(reference))) receiptStatus("receipt.expired", { reference });
      return;
    } else if (result.status === 404) {
      receiptStatus("receipt.unknown");
      return;
    }
    if (Date.now() >= deadline) {
      receiptStatus("receipt.still_processing");
      return;
    }
    await new Promise((resolve) => setTimeout(resolve, PaymentStatus.POLL_EVERY_MS));
  }
}

/* The patron's own payment, by their session: a fresh receipt link goes in the address (so the
   page can be kept after sign-out) and is followed. False when this browser is not theirs. */
async function receiptBySession(reference) {
  if (!/^[0-9a-f]{32}$/.test(reference)) return false;
  const result = await apiCall("GET", `/api/payments/${reference}`);
  if (!result.ok || !result.data.receipt_token) return false;
  const token = result.data.receipt_token;
  history.replaceState(null, "", `?${new URLSearchParams({ r: token })}`);
  await followReceipt(token);
  return true;
}

async function initReceipt() {
  await startI18n();
  onLanguageChange(() => { if (RECEIPT.data) renderDetails(RECEIPT.data.payment); });
  byId("print").addEventListener("click", () => window.print());
  const query = new URLSearchParams(location.search);
  const token = query.get("r"), reference = query.get("p") || "";
  if (token) return followReceipt(token);
  if (reference && await receiptBySession(reference)) return;
  if (/^[0-9a-f]{32}$/.test(reference)) receiptStatus("receipt.sign_in_to_see", { reference });
  else receiptStatus("receipt.unknown");
}

document.addEventListener("DOMContentLoaded", initReceipt);
