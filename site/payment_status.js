/* Following a payment after CashNet, the same on the web receipt and the kiosk: how often and
   how long to ask, and which states mean the money was taken. Loaded by the pages as a plain
   script (the global PaymentStatus) and by the tests with require(). */
"use strict";

(function (root) {
  const api = Object.freeze({
    POLL_EVERY_MS: 2000,
    // After this the page says "still being processed" and stops asking; the server goes on.
    POLL_FOR_MS: 120000,
    // Money taken: a receipt is shown (posting to Alma may still be under way).
    PAID: Object.freeze(["paid", "posted", "attention", "resolved"]),
    // Final, nothing taken: the patron may try again.
    NOT_PAID: Object.freeze(["declined", "cancelled", "expired"]),
  });
  if (typeof module === "object" && module.exports) module.exports = api;
  else root.PaymentStatus = api;
})(this);
