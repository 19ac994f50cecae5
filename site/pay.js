/* /pay/{id}: send the server-rendered hand-off form to CashNet at once; the visible button
   remains for browsers without JavaScript. */
"use strict";
document.addEventListener("DOMContentLoaded", () => {
  const form = document.getElementById("cashnet-form");
  if (form) form.submit();
});
