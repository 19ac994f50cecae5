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

  /* Why a fee has no checkbox: "credit" (a negative balance: money owed to the patron) or
     "not_payable" (to be paid at the library desk); null for a fee that can be paid here. */
  function feeNote(fee) {
    if (fee.payable) return null;
    const balance = Money.cents(fee.balance);
    return balance !== null && balance < 0 ? "credit" : "not_payable";
  }

  const api = { feeTypeLabel, feeNote };
  if (typeof module === "object" && module.exports) module.exports = api;
  else root.FeeLabels = api;
})(this);
