/* Translation for every page: strings live in /locales/<lang>.json; elements carry
   data-i18n="key" (text) or data-i18n-attr="attr:key" (attributes). Adding a language is one
   file in /locales plus its code in LANGUAGES. */
"use strict";

const LANGUAGES = ["en"];
const I18N = { lang: "en", strings: {}, fallback: {} };

function pickLanguage() {
  const asked = new URLSearchParams(location.search).get("lang");
  if (asked && LANGUAGES.includes(asked)) return asked;
  for (const tag of navigator.languages || [navigator.language || "en"]) {
    const base = tag.toLowerCase().split("-")[0];
    if (LANGUAGES.includes(base)) return base;
  }
  return "en";
}

async function loadStrings(lang) {
  const response = await fetch(`/locales/${lang}.json`, { credentials: "same-origin" });
  if (!response.ok) throw new Error(`no strings for ${lang}`);
  return response.json();
}

function t(key, params) {
  let text = I18N.strings[key] ?? I18N.fallback[key] ?? key;
  for (const [name, value] of Object.entries(params || {})) {
    text = text.split(`{${name}}`).join(String(value));
  }
  return text;
}

function translatePage(root) {
  for (const el of (root || document).querySelectorAll("[data-i18n]")) {
    el.textContent = t(el.dataset.i18n);
  }
  for (const el of (root || document).querySelectorAll("[data-i18n-attr]")) {
    for (const pair of el.dataset.i18nAttr.split(";")) {
      const [attr, key] = pair.split(":");
      el.setAttribute(attr.trim(), t(key.trim()));
    }
  }
}

function formatMoney(amount, currency) {
  // Amounts arrive as exact strings ("12.50"); Intl only formats them for display.
  return new Intl.NumberFormat(I18N.lang === "es" ? "es-US" : "en-US", {
    style: "currency", currency: currency || "USD",
  }).format(Number(amount));
}

function formatDate(iso) {
  if (!iso) return "";
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return iso;
  return new Intl.DateTimeFormat(I18N.lang === "es" ? "es-US" : "en-US", {
    year: "numeric", month: "short", day: "numeric",
  }).format(date);
}

async function startI18n() {
  I18N.lang = pickLanguage();
  I18N.fallback = await loadStrings("en");
  try {
    I18N.strings = I18N.lang === "en" ? I18N.fallback : await loadStrings(I18N.lang);
  } catch (error) {
    I18N.lang = "en";
    I18N.strings = I18N.fallback;
  }
  document.documentElement.lang = I18N.lang;
  translatePage();
}
