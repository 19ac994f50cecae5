/* Kiosk timers, pure (no DOM, no clock of their own): the caller passes the wall-clock time in
   milliseconds (Date.now()). Deadlines, not counted ticks: a throttled or late timer callback
   cannot stretch a limit (docs/kiosk.md#session-reset). Loaded by the kiosk pages as a plain script
   and by the tests with node's require(). */
"use strict";

(function (root) {
  /* Idle for idleMs -> a warning for warningMs -> expired. Activity restarts the idle period
     only while no warning is showing; during the warning only extend() (the "I need more time"
     button) does, as often as the patron likes. Nothing restarts an expired timer. */
  class IdleTimer {
    constructor(idleMs, warningMs, now) {
      this.idleMs = idleMs;
      this.warningMs = warningMs;
      this.extensions = 0;
      this.lastActivity = now;
      this.expiredAt = null;
    }

    state(now) {
      if (this.expiredAt !== null) return { phase: "expired", remainingMs: 0 };
      const warnAt = this.lastActivity + this.idleMs;
      if (now < warnAt) return { phase: "active", remainingMs: warnAt - now };
      const resetAt = warnAt + this.warningMs;
      if (now < resetAt) return { phase: "warning", remainingMs: resetAt - now };
      this.expiredAt = resetAt;
      return { phase: "expired", remainingMs: 0 };
    }

    /* A touch, key or scan. True if it restarted the idle period. */
    activity(now) {
      if (this.state(now).phase !== "active") return false;
      this.lastActivity = now;
      return true;
    }

    /* "I need more time": a fresh idle period. False once expired. */
    extend(now) {
      if (this.state(now).phase === "expired") return false;
      this.lastActivity = now;
      this.extensions += 1;
      return true;
    }
  }

  /* A visible countdown (the receipt): expires durationMs after start or the last extend(). */
  class Countdown {
    constructor(durationMs, now) {
      this.durationMs = durationMs;
      this.deadline = now + durationMs;
    }

    remainingMs(now) { return Math.max(0, this.deadline - now); }

    expired(now) { return now >= this.deadline; }

    extend(now) {
      if (this.expired(now)) return false;
      this.deadline = now + this.durationMs;
      return true;
    }
  }

  /* Whole seconds to show for a remaining time: 29.2 s left shows 30, so the display reaches
     0 exactly when the time is up. */
  function secondsLeft(remainingMs) { return Math.max(0, Math.ceil(remainingMs / 1000)); }

  const api = { IdleTimer, Countdown, secondsLeft };
  if (typeof module === "object" && module.exports) module.exports = api;
  else root.KioskTimers = api;
})(this);
