"""The real browser for the benchmarks that time what a patron sees: Debian's Chromium,
headless, driven by Playwright the way the browser tests drive it (tests/browser/).

Each page gets an init script that stamps, with the page's own wall clock (`Date.now()`, the
same clock as the benchmark's `time.time()`), the moment a fees table is first shown: when its
screen loses `hidden` with fee rows in it, then after the next animation frame (the frame that
paints it). It also notes when the kiosk page's event stream from the agent has said hello,
so a scan is never sent before the page is listening.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from bench.harness import BenchError

CHROMIUM = "/usr/bin/chromium"
# The last rule keeps every request on loopback: any other host fails to resolve (and is
# still seen, and counted, by the page benchmark).
LAUNCH_ARGS = ["--headless=new", "--disable-gpu", "--disable-background-networking",
               "--disable-component-update", "--no-first-run", "--disable-dev-shm-usage",
               "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1, EXCLUDE localhost"]
WAIT_MS = 30_000

SHOWN_SCRIPT = """
(() => {
  window.__feesShown = null;
  window.__agentHello = false;
  const Source = window.EventSource;
  if (Source) {
    window.EventSource = class extends Source {
      constructor(...args) {
        super(...args);
        this.addEventListener("message", () => { window.__agentHello = true; }, { once: true });
      }
    };
  }
  // The kiosk's and the web page's fees screens are both #fees: a fee row in it, visible.
  const ROWS = "#fee-list .fee-row, #fee-rows tr";
  document.addEventListener("DOMContentLoaded", () => {
    const screen = document.getElementById("fees");
    if (!screen) return;
    const seen = () => {
      const row = screen.querySelector(ROWS);
      return row !== null && row.checkVisibility();
    };
    const observer = new MutationObserver(() => {
      if (window.__feesShown !== null || !seen()) return;
      observer.disconnect();
      const dom = Date.now(), domSinceNavigation = performance.now();
      requestAnimationFrame(() => setTimeout(() => {
        window.__feesShown = { dom, frame: Date.now(), domSinceNavigation,
                               frameSinceNavigation: performance.now() };
      }, 0));
    });
    observer.observe(screen, { attributes: true, attributeFilter: ["hidden"], childList: true,
                               subtree: true });
  });
})();
"""


@contextlib.contextmanager
def chromium() -> Iterator[Any]:
    """Headless Chromium under Playwright; BenchError when either is missing."""
    if not Path(CHROMIUM).exists():
        raise BenchError(f"{CHROMIUM} is missing: install Debian's chromium (bash .ci/run does)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError as exc:
        raise BenchError("Playwright is missing: install the test tools (bash .ci/run)") from exc
    args = LAUNCH_ARGS + (["--no-sandbox"] if os.geteuid() == 0 else [])
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=args)
        try:
            yield browser
        finally:
            browser.close()


def new_page(browser: Any, viewport: dict[str, int]) -> tuple[Any, Any]:
    """A fresh context (no cache, no cookies) and its page, with the stamping script."""
    context = browser.new_context(viewport=viewport, locale="en-US")
    context.set_default_timeout(WAIT_MS)
    context.add_init_script(SHOWN_SCRIPT)
    return context, context.new_page()


def fees_shown(page: Any) -> dict[str, float]:
    """Wait for the stamps of the fees table shown: `dom` and `frame` in Unix milliseconds,
    and the same as milliseconds since the page's navigation began."""
    page.wait_for_function("() => window.__feesShown !== null", timeout=WAIT_MS, polling=5)
    return page.evaluate("() => window.__feesShown")
