/* Shared by the kiosk pages (index and return): the agent's session handle, reset, the idle
   guard with its full-screen "I need more time" warning, the agent's event stream,
   keyboard-wedge input, and the display controls (A+, contrast).

   The page keeps no patron data anywhere but in memory: no web storage, no patron cookies.
   Two cookies carry the patron's own choices (language; larger text and contrast) across the
   trip to CashNet and back, and are dropped whenever the patron is gone.
   Reset = tell the agent (POST /api/session/end), then location.replace("/kiosk/"), a full
   reload that Back cannot undo. */
"use strict";

const Kiosk = { session: null, settings: null, reader: "none", resetting: false, leaving: false, lastTouch: 0, audio: null };
const $ = (id) => document.getElementById(id);
const TOUCH_EVERY_MS = 2000;
const RESET_WAIT_MS = 3000;

const DISPLAY_COOKIE = "patronpay_kiosk_display";
const DISPLAY_CLASSES = { "bigger-text": "big-text", contrast: "high-contrast" };

/* A translated text that follows a language switch when i18n.js can do that. */
function say(el, key, params) {
  if (typeof localize === "function") localize(el, key, params);
  else el.textContent = t(key, params);
}

/* Empty a message. Its translation key goes too, or a language switch would bring it back
   (into a live region, which would announce it again). */
function clearText(el) {
  delete el.dataset.i18n;
  delete el.dataset.i18nArgs;
  el.textContent = "";
}

/* The agent's view: settings, reader state and the session (its handle names it in every
   later call: as the "CSRF token" on POSTs, as ?handle= on GETs). */
async function loadKioskSession() {
  const result = await apiCall("GET", "/api/session");
  if (!result.ok) return null;
  Kiosk.settings = result.data.settings;
  Kiosk.reader = result.data.reader;
  Kiosk.session = result.data.session;
  API.csrf = Kiosk.session ? Kiosk.session.handle : "";
  return result.data;
}

function withHandle(path) {
  if (!Kiosk.session) return path;
  return `${path}${path.includes("?") ? "&" : "?"}handle=${encodeURIComponent(Kiosk.session.handle)}`;
}

/* Leave this page for `url`, once: a second navigation (an agent event arriving during a
   reset, say) would abort the first. replace(): Back cannot return to a patron's page. */
function leave(url) {
  if (Kiosk.leaving) return;
  Kiosk.leaving = true;
  location.replace(url);
}

/* The next patron starts in the kiosk's own language and display, whatever this one chose. */
function forgetPatronChoices() {
  document.cookie = "patronpay_lang=; Max-Age=0; Path=/; SameSite=Lax";
  document.cookie = `${DISPLAY_COOKIE}=; Max-Age=0; Path=/kiosk/; SameSite=Strict`;
}

/* The session is over (ended, expired, or another patron's card): a fresh page. */
function patronGone() {
  forgetPatronChoices();
  leave("/kiosk/");
}

async function resetKiosk() {
  if (Kiosk.resetting || Kiosk.leaving) return;
  Kiosk.resetting = true;
  document.body.classList.add("resetting");
  const ended = apiCall("POST", "/api/session/end", {});
  await Promise.race([ended, new Promise((resolve) => setTimeout(resolve, RESET_WAIT_MS))]);
  patronGone();  // unless an agent event has already sent the page there
}

/* Tell the agent the patron is still here, so its own expiry (idle + warning + 5 s) does not
   end the session under them. At most every 2 s, unless forced (an extension). */
async function touchAgent(force) {
  const now = Date.now();
  if (!Kiosk.session || Kiosk.resetting || (!force && now - Kiosk.lastTouch < TOUCH_EVERY_MS)) return;
  Kiosk.lastTouch = now;
  const result = await apiCall("POST", "/api/session/touch", {});
  if (result.status === 401 || result.status === 409) patronGone();
}

/* Idle: after idle_seconds without a touch, key or scan, a full-screen warning counts down
   warning_seconds with a big "I need more time" button; then the kiosk resets. */
function startIdleGuard() {
  const { IdleTimer, secondsLeft } = KioskTimers;
  const timer = new IdleTimer(Kiosk.settings.idle_seconds * 1000, Kiosk.settings.warning_seconds * 1000, Date.now());
  const warning = $("warning");
  let shown = false;
  let lastSecond = null;
  const onActivity = () => { if (timer.activity(Date.now())) touchAgent(false); };
  const types = ["pointerdown", "keydown", "touchstart", "wheel"];
  for (const type of types) document.addEventListener(type, onActivity, { capture: true, passive: true });
  const moreTime = () => { timer.extend(Date.now()); touchAgent(true); tick(); };
  $("more-time").addEventListener("click", moreTime);
  $("warning-start-over").addEventListener("click", resetKiosk);

  function tick() {
    const state = timer.state(Date.now());
    if (state.phase === "expired") {
      stop();
      resetKiosk();
      return;
    }
    const warn = state.phase === "warning";
    if (warn !== shown) showWarning(warn);
    if (warn) {
      const seconds = secondsLeft(state.remainingMs);
      if (seconds !== lastSecond) {
        lastSecond = seconds;
        say($("warning-count"), "kiosk.warning.countdown", { seconds });
      }
    }
  }

  function showWarning(on) {
    shown = on;
    lastSecond = null;
    warning.hidden = !on;
    for (const el of document.querySelectorAll("[data-behind-warning]")) el.inert = on;
    if (on) {
      say($("warning-live"), "kiosk.warning.live", { seconds: Kiosk.settings.warning_seconds });
      beep();
      $("more-time").focus();
    } else {
      clearText($("warning-live"));
    }
  }

  const interval = setInterval(tick, 250);
  function stop() {
    clearInterval(interval);
    for (const type of types) document.removeEventListener(type, onActivity, { capture: true });
    $("more-time").removeEventListener("click", moreTime);
    if (shown) showWarning(false);
  }
  tick();
  return { timer, stop, activity: onActivity };
}

/* An audible cue with the warning (the speaker; nothing private is spoken). */
function beep() {
  try {
    Kiosk.audio = Kiosk.audio || new AudioContext();
    const oscillator = Kiosk.audio.createOscillator();
    const gain = Kiosk.audio.createGain();
    oscillator.frequency.value = 880;
    gain.gain.value = 0.1;
    oscillator.connect(gain).connect(Kiosk.audio.destination);
    oscillator.start();
    oscillator.stop(Kiosk.audio.currentTime + 0.25);
  } catch (error) { /* no audio device: the warning is still on screen */ }
}

/* Events from the agent: scans (a reason code when refused, never the read), the session
   opening and ending, the reader's state. EventSource reconnects by itself. */
function listenToAgent(onEvent) {
  const source = new EventSource("/api/events");
  source.onmessage = (message) => {
    let event;
    try { event = JSON.parse(message.data); } catch (error) { return; }
    onEvent(event);
  };
  return source;
}

/* Keyboard-wedge scanners type into the page: fast bursts ending in Enter go to the agent. */
function startWedge() {
  const wedge = new KioskWedge.WedgeBuffer({ maxGapMs: 100, minLen: 4 });
  document.addEventListener("keydown", (event) => {
    // A space never starts a read, so Space still presses the focused button.
    if (event.key === " " && !wedge.buffer) return;
    const outcome = wedge.key(event.key, Date.now(), event.ctrlKey || event.altKey || event.metaKey);
    if (outcome.action === "pass") return;
    event.preventDefault();
    event.stopPropagation();
    if (outcome.action === "submit") apiCall("POST", "/api/read", { source: "wedge", data: outcome.data });
  }, true);
}

function showReader(state) {
  const box = $("reader-status");
  if (!box) return;
  if (state === "disconnected") say(box, "kiosk.reader.unavailable");
  else clearText(box);
}

const SCAN_MESSAGES = {
  payment_card: "kiosk.scan.payment_card",
  unavailable: "kiosk.scan.unavailable",
  kiosk_unauthorized: "kiosk.scan.out_of_order",
  cooling_down: "kiosk.scan.cooling_down",
};

function showRefusal(reason) {
  say($("scan-message"), SCAN_MESSAGES[reason] || "kiosk.scan.not_recognised");
}

/* Larger text and high contrast, for this patron only: kept in a cookie while they pay on
   CashNet's page, dropped with the session. */
function displayChoices() {
  for (const part of document.cookie.split(";")) {
    const [name, value] = part.trim().split("=");
    if (name === DISPLAY_COOKIE) return value.split(".").filter((id) => id in DISPLAY_CLASSES);
  }
  return [];
}

function startDisplayControls() {
  const chosen = new Set(displayChoices());
  for (const [id, name] of Object.entries(DISPLAY_CLASSES)) {
    const button = $(id);
    if (!button) continue;
    document.documentElement.classList.toggle(name, chosen.has(id));
    button.setAttribute("aria-pressed", String(chosen.has(id)));
    button.addEventListener("click", () => {
      const on = document.documentElement.classList.toggle(name);
      button.setAttribute("aria-pressed", String(on));
      if (on) chosen.add(id); else chosen.delete(id);
      document.cookie = `${DISPLAY_COOKIE}=${[...chosen].join(".")}; Path=/kiosk/; SameSite=Strict`;
    });
  }
}

/* Re-render what a page built itself when the patron switches language. */
function whenLanguageChanges(callback) {
  if (typeof onLanguageChange === "function") onLanguageChange(callback);
}

function sleep(ms) { return new Promise((resolve) => setTimeout(resolve, ms)); }
