/* Translation for every page. Strings live in /locales/<lang>.json (English is the fallback
   for a key a language lacks). Markup carries data-i18n="key" (text) and
   data-i18n-attr="attr:key;attr:key" (attributes), with optional data-i18n-args (JSON); the
   page is re-translated in place when the patron switches language, so nothing typed is lost.

   Adding a language: its strings in /locales/<code>.json and its code and name in LANGUAGES
   (tests/test_locales.py checks that the two agree). */
"use strict";

const LANGUAGES = { en: "English", es: "Español" };
const LANG_COOKIE = "patronpay_lang";
const I18N = { lang: "en", strings: {}, fallback: {}, listeners: [] };

/* The languages this page offers, first the one it starts in: all of LANGUAGES, unless the page
   names fewer (<html data-languages="es en">: a consortium's institution offers only its own,
   docs/consortium.md#what-the-pages-show). */
function offeredLanguages() {
  const named = (document.documentElement.dataset.languages || "").split(/\s+/);
  const own = named.filter((code) => code in LANGUAGES);
  return own.length ? own : Object.keys(LANGUAGES);
}

/* The language: an explicit ?lang=, else the patron's earlier choice (cookie), else the first
   of the browser's languages we offer, else the first we offer (English). */
function pickLanguage() {
  const offered = offeredLanguages();
  const asked = new URLSearchParams(location.search).get("lang");
  if (asked && offered.includes(asked)) return asked;
  const saved = readLanguageCookie();
  if (saved) return saved;
  for (const tag of navigator.languages || [navigator.language || "en"]) {
    const base = String(tag).toLowerCase().split("-")[0];
    if (offered.includes(base)) return base;
  }
  return offered[0];
}

function readLanguageCookie() {
  for (const part of document.cookie.split(";")) {
    const [name, value] = part.trim().split("=");
    if (name === LANG_COOKIE && offeredLanguages().includes(value)) return value;
  }
  return "";
}

function saveLanguageCookie(lang) {
  // Not patron data, so readable by script; the server reads it for its own pages.
  const secure = location.protocol === "https:" ? "; Secure" : "";
  document.cookie = `${LANG_COOKIE}=${lang}; Path=/; Max-Age=31536000; SameSite=Lax${secure}`;
}

async function loadStrings(lang) {
  const response = await fetch(ownPath(`/locales/${lang}.json`), { credentials: "same-origin" });
  if (!response.ok) throw new Error(`no strings for ${lang}`);
  return response.json();
}

/* Values for t()'s placeholders: plain values, or money and dates that are formatted for the
   language at the moment of translation (so a language switch re-formats them too). */
function asMoney(amount, currency) { return { money: String(amount), currency: currency || "USD" }; }
function asDate(iso) { return { date: iso }; }

function formatArg(value) {
  if (value && typeof value === "object" && "money" in value) return formatMoney(value.money, value.currency);
  if (value && typeof value === "object" && "date" in value) return formatDate(value.date);
  return String(value);
}

function t(key, params) {
  let text = I18N.strings[key] ?? I18N.fallback[key] ?? key;
  for (const [name, value] of Object.entries(params || {})) {
    text = text.split(`{${name}}`).join(formatArg(value));
  }
  return text;
}

/* Whether the current language has its own text for `key` (not the English fallback). */
function hasTranslation(key) { return key in I18N.strings; }

function intlLocale() {
  const tag = t("lang.intl");
  try { return Intl.getCanonicalLocales(tag)[0]; } catch (error) { return "en-US"; }
}

/* An exact amount string ("12.50", "-5.25") in the page's language (money.js). */
function formatMoney(amount, currency) {
  return Money.formatAmount(String(amount), currency || "USD", intlLocale());
}

/* A sum in integer cents (money.js) in the page's language. */
function formatCents(value, currency) {
  return Money.formatCents(value, currency || "USD", intlLocale());
}

function formatDate(iso, withTime) {
  if (!iso) return "";
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return iso;
  const options = withTime
    ? { year: "numeric", month: "long", day: "numeric", hour: "numeric", minute: "2-digit" }
    : { year: "numeric", month: "short", day: "numeric" };
  return new Intl.DateTimeFormat(intlLocale(), options).format(date);
}

/* Put a translated text on an element and remember the key, so a language switch redoes it. */
function localize(el, key, params) {
  el.dataset.i18n = key;
  if (params) el.dataset.i18nArgs = JSON.stringify(params); else delete el.dataset.i18nArgs;
  el.textContent = t(key, params);
}

function localizeAttr(el, attr, key, params) {
  const others = (el.dataset.i18nAttr || "").split(";").filter((pair) => pair && !pair.startsWith(`${attr}:`));
  el.dataset.i18nAttr = [...others, `${attr}:${key}`].join(";");
  if (params) el.dataset.i18nArgs = JSON.stringify(params);
  el.setAttribute(attr, t(key, params));
}

/* A text that is not ours to translate (a server's message): shown as is. */
function plainText(el, text) {
  delete el.dataset.i18n;
  delete el.dataset.i18nArgs;
  el.textContent = text;
}

function translatePage(root) {
  const scope = root || document;
  const args = (el) => (el.dataset.i18nArgs ? JSON.parse(el.dataset.i18nArgs) : undefined);
  for (const el of scope.querySelectorAll("[data-i18n]")) el.textContent = t(el.dataset.i18n, args(el));
  for (const el of scope.querySelectorAll("[data-i18n-attr]")) {
    for (const pair of el.dataset.i18nAttr.split(";").filter(Boolean)) {
      const [attr, key] = pair.split(":");
      el.setAttribute(attr.trim(), t(key.trim(), args(el)));
    }
  }
}

/* This page's address as a path on this site. Built from the path alone, with leading
   slashes collapsed: a path such as //evil.example/ would otherwise make a link (or a
   history entry) that points at another host. */
function sitePath(url) { return "/" + url.pathname.replace(/^\/+/, "") + url.search; }

/* The visible language switch: every [data-language-switch] element gets one link per
   language, named in that language, marked with its lang; the current one is aria-current. */
function renderLanguageSwitch() {
  const offered = offeredLanguages();
  for (const box of document.querySelectorAll("[data-language-switch]")) {
    box.hidden = offered.length < 2; // one language: nothing to switch to
    const list = document.createElement("ul");
    for (const code of offered) {
      const name = LANGUAGES[code];
      const item = document.createElement("li");
      const link = document.createElement("a");
      const url = new URL(location.href);
      url.searchParams.set("lang", code);
      link.href = sitePath(url);
      link.lang = code;
      link.hreflang = code;
      link.textContent = name;
      link.dataset.lang = code;
      if (code === I18N.lang) link.setAttribute("aria-current", "true");
      link.addEventListener("click", (event) => {
        event.preventDefault();
        // The links are rebuilt in the new language: keep the focus on the chosen one.
        setLanguage(code).then(() => box.querySelector(`a[data-lang="${code}"]`).focus());
      });
      item.appendChild(link);
      list.appendChild(item);
    }
    box.replaceChildren(list);
  }
}

/* Pages re-render what they built themselves (tables, receipts) when the language changes. */
function onLanguageChange(callback) { I18N.listeners.push(callback); }

async function setLanguage(lang) {
  const offered = offeredLanguages();
  if (!offered.includes(lang)) lang = offered[0];
  let strings = I18N.fallback;
  if (lang !== "en") {
    try { strings = await loadStrings(lang); } catch (error) { lang = "en"; }
  }
  I18N.lang = lang;
  I18N.strings = strings;
  document.documentElement.lang = lang;
  const url = new URL(location.href);
  if (url.searchParams.has("lang")) {
    url.searchParams.set("lang", lang);
    history.replaceState(history.state, "", sitePath(url) + url.hash);
  }
  translatePage();
  renderLanguageSwitch();
  for (const callback of I18N.listeners) callback(lang);
}

async function startI18n() {
  const lang = pickLanguage();
  // Remembered only when honoured: an institution offering fewer languages may not have it.
  if (new URLSearchParams(location.search).get("lang") === lang) saveLanguageCookie(lang);
  I18N.fallback = await loadStrings("en");
  I18N.strings = I18N.fallback;
  await setLanguage(lang);
  // A switch made by the patron is remembered for later visits and the server's pages.
  I18N.listeners.push((current) => saveLanguageCookie(current));
}
