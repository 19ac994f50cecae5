/* Money on every page (web and kiosk). Amounts arrive from the server as exact strings
   ("12.50", "-5.25" for a credit) and are added up here as integer cents, so no total ever
   passes through floating point. Intl only formats an exact amount for display.
   Loaded by the pages as a plain script (the global Money) and by the tests with require(). */
"use strict";

(function (root) {
  // An amount as the server writes it: optional minus, digits, at most two decimals.
  const AMOUNT = /^(-?)(\d+)(?:\.(\d{1,2}))?$/;
  // An amount as a patron types it on the web page: "12.50", "$12.50", "1,250", "12".
  const TYPED = /^(\d{1,3}(?:,\d{3})+|\d+)(\.\d{1,2})?$/;

  /* "12.50" -> 1250, "-5.25" -> -525, "0.5" -> 50, "12" -> 1200. Anything else is null
     ("1e3", "12.345", "", " 1", "+1", ".5", "1,250", a number): a malformed amount is never
     guessed at. */
  function cents(amount) {
    if (typeof amount !== "string") return null;
    const match = AMOUNT.exec(amount);
    if (!match) return null;
    const [, sign, whole, fraction = ""] = match;
    const value = Number(whole) * 100 + Number(fraction.padEnd(2, "0"));
    if (!Number.isSafeInteger(value)) return null;
    return sign && value ? -value : value;
  }

  /* 1250 -> "12.50", -525 -> "-5.25": the exact string the server reads. */
  function amountText(centsValue) {
    if (!Number.isSafeInteger(centsValue)) throw new RangeError(`not a whole number of cents: ${centsValue}`);
    const size = Math.abs(centsValue);
    const sign = centsValue < 0 ? "-" : "";
    return `${sign}${Math.floor(size / 100)}.${String(size % 100).padStart(2, "0")}`;
  }

  /* What a patron typed in the amount field, in cents, or null when it is not an amount.
     A leading "$" and thousands commas are allowed; a minus never is. */
  function typedCents(text) {
    const cleaned = String(text).trim().replace(/^\$\s*/, "");
    return TYPED.test(cleaned) ? cents(cleaned.replace(/,/g, "")) : null;
  }

  /* Cents for display in `locale` ("en-US", "es-US"): a credit shows with its minus sign. */
  function formatCents(centsValue, currency, locale) {
    const format = new Intl.NumberFormat(locale, { style: "currency", currency: currency || "USD" });
    // Given the exact decimal string, Intl formats it without a detour through a float.
    return format.format(amountText(centsValue));
  }

  /* A server amount ("12.50") for display; a malformed one shows as a dash, never as NaN. */
  function formatAmount(amount, currency, locale) {
    const value = cents(amount);
    return value === null ? "—" : formatCents(value, currency, locale);
  }

  /* What paying `chosenCents` of fees here charges, by the server's credit policy
     (docs/alma.md#credits): "show" charges the chosen fees in full; "net" takes the credit
     off, never below zero (a credit larger than the fees is not paid out). */
  function chargeCents(chosenCents, creditCents, policy) {
    if (policy !== "net" || !(creditCents > 0)) return chosenCents;
    return Math.max(chosenCents - creditCents, 0);
  }

  const api = { cents, amountText, typedCents, formatCents, formatAmount, chargeCents };
  if (typeof module === "object" && module.exports) module.exports = api;
  else root.Money = api;
})(this);
