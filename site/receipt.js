/* The receipt: follows the payment until it is final (posted, declined, ...) by polling
   /api/receipts/{token}, with a deadline, then shows what happened. */
"use strict";

const POLL_EVERY_MS = 2000;
const POLL_FOR_MS = 120000;

function renderReceipt(data) {
  const payment = data.payment;
  document.getElementById("receipt-status").textContent = t(`receipt.state.${payment.state}`);
  document.body.dataset.state = payment.state;
  const money = (amount) => formatMoney(amount, payment.currency);
  document.getElementById("r-amount").textContent = money(payment.amount);
  document.getElementById("r-date").textContent = formatDate(payment.paid || payment.created);
  document.getElementById("r-tx").textContent = payment.cashnet_tx || "—";
  document.getElementById("r-ref").textContent = payment.id;
  const list = document.getElementById("r-fees");
  list.replaceChildren();
  for (const allocation of payment.allocations) {
    const item = document.createElement("li");
    item.textContent = t("receipt.fee_line", { type: allocation.fee_label, amount: money(allocation.amount) });
    list.appendChild(item);
  }
  const paid = ["paid", "posted", "attention", "resolved"].includes(payment.state);
  document.getElementById("receipt").hidden = !paid;
  document.getElementById("print").hidden = !paid;
  if (["declined", "cancelled", "expired"].includes(payment.state)) {
    document.getElementById("back").textContent = t("receipt.try_again");
  }
}

async function followReceipt(token) {
  const deadline = Date.now() + POLL_FOR_MS;
  while (true) {
    const result = await apiCall("GET", `/api/receipts/${encodeURIComponent(token)}`);
    if (result.ok) {
      renderReceipt(result.data);
      if (result.data.payment.final || result.data.payment.state === "posted") return;
    } else if (result.status === 404) {
      document.getElementById("receipt-status").textContent = t("receipt.unknown");
      return;
    }
    if (Date.now() >= deadline) {
      document.getElementById("receipt-status").textContent = t("receipt.still_processing");
      return;
    }
    await new Promise((resolve) => setTimeout(resolve, POLL_EVERY_MS));
  }
}

async function initReceipt() {
  await startI18n();
  document.getElementById("print").addEventListener("click", () => window.print());
  const params = new URLSearchParams(location.search);
  const token = params.get("r");
  if (!token) {
    document.getElementById("receipt-status").textContent = t("receipt.unknown");
    return;
  }
  await followReceipt(token);
}

document.addEventListener("DOMContentLoaded", initReceipt);
