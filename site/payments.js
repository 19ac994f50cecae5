/* A patron's own payments, in words, the same on the web page and the kiosk: where a payment
   was started, what its state means, and whether an error answer is the "payment in progress"
   refusal (409 with the payments in the way). Pure: strings come back as [key, params] for
   the page's localize(). Loaded by the pages as a plain script (the global MyPayments) and by
   the tests with require(). */
"use strict";

(function (root) {
  const CONFLICTS = ["payment_in_progress", "too_many_open_payments"];
  // The states a patron is shown, in plain words (the page's `payments.state.*` strings).
  const STATES = ["pending", "paid", "posted", "declined", "cancelled", "expired", "attention", "resolved"];

  /* The page's string for a payment by where it was started: `${base}.web` or
     `${base}.kiosk` (with the kiosk's name as {kiosk}). */
  function where(base, payment) {
    if (payment.channel === "kiosk") return [`${base}.kiosk`, { kiosk: String(payment.kiosk || "") }];
    return [`${base}.web`, {}];
  }

  function stateText(payment) {
    return STATES.includes(payment.state) ? [`payments.state.${payment.state}`, {}] : ["payments.state.other", {}];
  }

  /* The payments in the way when `result` is the refusal to start one, else null. */
  function conflict(result) {
    if (!result || result.status !== 409 || !result.data || !result.data.error) return null;
    if (!CONFLICTS.includes(result.data.error.code)) return null;
    return Array.isArray(result.data.in_progress) ? result.data.in_progress : [];
  }

  /* The fee's note, counting a payment in progress (which the fee lists know nothing of). */
  function heldNote(fee) { return fee && fee.note === "in_progress" ? "in_progress" : null; }

  const api = { where, stateText, conflict, heldNote };
  if (typeof module === "object" && module.exports) module.exports = api;
  else root.MyPayments = api;
})(this);
