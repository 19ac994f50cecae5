/* What a patron reads about a fee, on every page (web, receipt, kiosk): its type's name and,
   when it cannot be paid here, why. Pure: the page passes its language state (I18N from
   i18n.js: the language and its strings). Loaded by the pages as a plain script (the global
   FeeLabels) and by the tests with require(); load it after money.js. */
"use strict";

(function (root) {
  const Money = root.Money || (typeof require === "function" ? require("./money.js") : null);

  /* Alma's own label in English (the library may have renamed a type); our translation of
     the standard Alma fee types in other languages. A type without a label shows its code. */
  function feeTypeLabel(code, label, i18n) {
    const key = `feetype.${code}`;
    if (i18n && i18n.lang !== "en" && i18n.strings && key in i18n.strings) return i18n.strings[key];
    return label || String(code || "");
  }

  const NOTES = ["credit", "billed", "inexact", "not_payable"];

  /* Why a fee has no checkbox, as the server says (its `note`): "credit" (money owed to the
     patron), "billed" (sent to the student account), "inexact" (an amount not in whole cents:
     the desk takes it) or "not_payable" (to be paid at the library desk); null for a fee
     that can be paid here. Without a note, a negative balance is a credit. */
  function feeNote(fee) {
    if (fee.payable) return null;
    if (NOTES.includes(fee.note)) return fee.note;
    const balance = Money.cents(fee.balance);
    return balance !== null && balance < 0 ? "credit" : "not_payable";
  }

  /* The lines under the fees that say what the figures mean: what is owed, the credit and
     what it does here, and how many fees are in no total. Each is [key, params] or null.
     `keys` names the page's strings ({owed, credit_show, credit_net, inexact_one,
     inexact_many}); `money(amountString)` formats an amount for the page. */
  function summaryLines(fees, keys, money) {
    const credit = Money.cents(fees.credit_total || "0.00") || 0;
    const count = Number(fees.inexact_count) || 0;
    const creditKey = fees.credit_policy === "net" ? keys.credit_net : keys.credit_show;
    return {
      owed: [keys.owed, { amount: money(fees.owed_total || "0.00") }],
      credit: credit > 0 ? [creditKey, { amount: money(fees.credit_total) }] : null,
      inexact: count > 0
        ? [count === 1 ? keys.inexact_one : keys.inexact_many, { count: String(count) }]
        : null,
    };
  }

  const api = { feeTypeLabel, feeNote, summaryLines };
  if (typeof module === "object" && module.exports) module.exports = api;
  else root.FeeLabels = api;
})(this);
