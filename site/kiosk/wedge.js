/* Keyboard-wedge input (docs/kiosk.md#reader-input): a scanner in keyboard mode "types" a read fast
   and ends it with Enter. A burst counts when every gap between keys is at most maxGapMs, it ends
   with a terminator key, and it has at least minLen characters; a slower key starts over.
   Pure: the caller passes each keydown's key and time and acts on the answer:
   "capture" (preventDefault, keep it), "pass" (leave the key alone) or "submit" (with the
   read, which the caller POSTs to /api/read and forgets). The read is never shown, logged,
   put in a URL or stored. */
"use strict";

(function (root) {
  class WedgeBuffer {
    constructor(options) {
      const settings = options || {};
      this.maxGapMs = settings.maxGapMs ?? 100;
      this.minLen = settings.minLen ?? 4;
      this.maxLen = settings.maxLen ?? 300;
      this.terminators = settings.terminators || ["Enter"];
      this.clear();
    }

    clear() {
      this.buffer = "";
      this.last = -Infinity;
    }

    key(key, now, modifiers) {
      if (modifiers) return { action: "pass" };  // Ctrl/Alt/Meta combinations are not reads
      if (this.buffer && now - this.last > this.maxGapMs) this.clear();  // too slow: a person
      if (this.terminators.includes(key)) {
        if (!this.buffer) return { action: "pass" };
        const data = this.buffer;
        this.clear();
        return data.length >= this.minLen ? { action: "submit", data } : { action: "capture" };
      }
      if (key.length !== 1) return { action: "pass" };  // Shift, arrows, Tab, ...
      // Anything else typed is part of a possible read (non-ASCII too: the agent refuses it
      // as bad_charset). Past maxLen the rest is dropped; the agent refuses it as too long.
      if (this.buffer.length < this.maxLen) this.buffer += key;
      this.last = now;
      return { action: "capture" };
    }
  }

  const api = { WedgeBuffer };
  if (typeof module === "object" && module.exports) module.exports = api;
  else root.KioskWedge = api;
})(this);
