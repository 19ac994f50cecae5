/* Fees owed at sister institutions (docs/consortium.md#fees-at-sister-institutions): added by
   the consortium to the fees page of an institution that allows them. Lists, by institution,
   what the signed-in patron owes at the others, and hands them over to pay there, through that
   institution's own pages and CashNet store. Uses api.js (apiCall, API), i18n.js (I18N,
   onLanguageChange) and money.js (Money). */
"use strict";

const NETWORK_WORDS = {
  en: {
    heading: "Fees at other libraries",
    lead: "You also owe fees at these libraries of the system. Each is paid on its own pages, through its own payment service.",
    caption: "Fees at {name}",
    item: "Item", type: "Type", balance: "Balance",
    pay: "Pay {amount} at {name}",
    unavailable: "{name} cannot be reached right now; try again later.",
    failed: "That did not work. Please try again.",
  },
  es: {
    heading: "Cargos en otras bibliotecas",
    lead: "También debe cargos en estas bibliotecas del sistema. Cada una se paga en sus propias páginas, con su propio servicio de pago.",
    caption: "Cargos en {name}",
    item: "Artículo", type: "Tipo", balance: "Saldo",
    pay: "Pagar {amount} en {name}",
    unavailable: "No se puede contactar con {name} ahora; inténtelo más tarde.",
    failed: "No funcionó. Inténtelo de nuevo.",
  },
};

const Network = { institutions: [] };

function networkWord(key, params) {
  const words = NETWORK_WORDS[I18N.lang] || NETWORK_WORDS.en;
  let text = words[key] || NETWORK_WORDS.en[key];
  for (const [name, value] of Object.entries(params || {})) text = text.replace(`{${name}}`, value);
  return text;
}

function networkCell(tag, text, className) {
  const cell = document.createElement(tag);
  cell.textContent = text;
  if (className) cell.className = className;
  return cell;
}

function networkTable(institution) {
  const table = document.createElement("table");
  table.className = "fees";
  const caption = document.createElement("caption");
  caption.textContent = networkWord("caption", { name: institution.name });
  table.appendChild(caption);
  const head = document.createElement("tr");
  for (const [key, className] of [["item", ""], ["type", ""], ["balance", "num"]]) {
    const th = networkCell("th", networkWord(key), className);
    th.scope = "col";
    head.appendChild(th);
  }
  table.appendChild(document.createElement("thead")).appendChild(head);
  const body = table.appendChild(document.createElement("tbody"));
  for (const fee of institution.fees) {
    const row = document.createElement("tr");
    row.appendChild(networkCell("td", fee.title || fee.type.label));
    row.appendChild(networkCell("td", fee.type.label));
    row.appendChild(networkCell("td", Money.formatAmount(fee.balance, institution.currency, I18N.lang), "num"));
    body.appendChild(row);
  }
  const scroll = document.createElement("div");
  scroll.className = "table-scroll";
  scroll.appendChild(table);
  return scroll;
}

function networkInstitution(institution) {
  const box = document.createElement("div");
  box.className = "card";
  const heading = networkCell("h3", institution.name);
  heading.id = `network-${institution.code}`;
  box.setAttribute("role", "region");
  box.setAttribute("aria-labelledby", heading.id);
  box.appendChild(heading);
  if (!institution.available) {
    box.appendChild(networkCell("p", networkWord("unavailable", { name: institution.name })));
    return box;
  }
  box.appendChild(networkTable(institution));
  const error = networkCell("p", "", "field-error");
  error.setAttribute("role", "alert");
  const button = networkCell("button", networkWord("pay", {
    amount: Money.formatAmount(institution.payable_total, institution.currency, I18N.lang),
    name: institution.name,
  }), "button primary");
  button.type = "button";
  button.addEventListener("click", () => networkHandOff(institution, error));
  box.appendChild(button);
  box.appendChild(error);
  return box;
}

function drawNetwork() {
  let section = document.getElementById("network-fees");
  if (!Network.institutions.length) { if (section) section.remove(); return; }
  if (!section) {
    section = document.createElement("section");
    section.id = "network-fees";
    section.setAttribute("aria-labelledby", "network-heading");
    const after = document.getElementById("fees");
    after.parentNode.insertBefore(section, after.nextSibling);
  }
  const heading = networkCell("h2", networkWord("heading"));
  heading.id = "network-heading";
  section.replaceChildren(heading, networkCell("p", networkWord("lead")),
    ...Network.institutions.map(networkInstitution));
}

async function networkHandOff(institution, error) {
  error.textContent = "";
  if (!API.csrf) {
    const session = await apiCall("GET", "/api/session");
    if (session.ok) API.csrf = session.data.csrf_token;
  }
  const result = await apiCall("POST", `/consortium/handoff/${encodeURIComponent(institution.code)}`, {});
  if (result.ok && typeof result.data.url === "string") { location.assign(result.data.url); return; }
  error.textContent = networkWord("failed");
}

async function loadNetwork() {
  const result = await apiCall("GET", "/consortium/network-fees");
  if (!result.ok || !Array.isArray(result.data.institutions)) return;
  Network.institutions = result.data.institutions;
  drawNetwork();
}

document.addEventListener("DOMContentLoaded", () => {
  onLanguageChange(drawNetwork);
  loadNetwork();
});
