/* The receipt: follows the payment until it is final (posted, declined, ...) by polling
   /api/receipts/{token}, with a deadline, then shows what happened. */
"use strict";

const RECEIPT = { data: null };

function byId(id) { return document.getElementById(id); }

function receiptStatus(key) { localize(byId("receipt-status"), key); }

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

async function initReceipt() {
  await startI18n();
  onLanguageChange(() => { if (RECEIPT.data) renderDetails(RECEIPT.data.payment); });
  byId("print").addEventListener("click", () => window.print());
  const token = new URLSearchParams(location.search).get("r");
  if (!token) {
    receiptStatus("receipt.unknown");
    return;
  }
  await followReceipt(token);
}

document.addEventListener("DOMContentLoaded", initReceipt);
