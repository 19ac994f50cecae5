"""What the browser tests share besides fixtures: the site's strings, the axe-core check,
the Chromium launch settings.

axe-core comes from npm (tests/browser/package.json; `npm ci --prefix tests/browser`). It is
evaluated in the page rather than added as a <script> tag: our pages' Content-Security-Policy
(script-src 'self') rightly refuses inline scripts, and the tests keep that policy on.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, sync_playwright

CHROMIUM = "/usr/bin/chromium"
HERE = Path(__file__).resolve().parent
AXE_JS = HERE / "node_modules" / "axe-core" / "axe.min.js"
LOCALES = HERE.parent.parent / "site" / "locales"
LAUNCH_ARGS = ["--headless=new", "--disable-gpu", "--disable-background-networking",
               "--disable-component-update", "--no-first-run", "--disable-dev-shm-usage"]
INTL = {"en": "en-US", "es": "es-US"}
LANGS = ["en", "es"]
WAIT_MS = 15_000
BLOCKING_IMPACTS = ("serious", "critical")


@contextlib.contextmanager
def launched_chromium() -> Iterator[Browser]:
    """Debian's Chromium under Playwright, headless; a missing Chromium or axe-core fails the
    test with how to install it."""
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: install Debian's chromium (bash .ci/run does)")
    if not AXE_JS.exists():
        pytest.fail(f"{AXE_JS} is missing: run `npm ci --prefix tests/browser` (bash .ci/run does)")
    args = LAUNCH_ARGS + (["--no-sandbox"] if os.geteuid() == 0 else [])
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=args)
        yield browser
        browser.close()


def strings(lang: str) -> dict[str, str]:
    """The site's strings in `lang`, English where a key is missing (as the site does)."""
    english = json.loads((LOCALES / "en.json").read_text(encoding="utf-8"))
    return english | json.loads((LOCALES / f"{lang}.json").read_text(encoding="utf-8"))


def text(template: str, **params: str) -> str:
    """A locale string with its placeholders filled, as the site's t() does."""
    for name, value in params.items():
        template = template.replace("{" + name + "}", value)
    return template


def axe_violations(page: Page) -> list[dict]:
    if not page.evaluate("() => typeof window.axe === 'object'"):
        page.evaluate(AXE_JS.read_text(encoding="utf-8") + "\n;0")
    result = page.evaluate("""async () => {
        const result = await axe.run(document, { resultTypes: ["violations"] });
        return result.violations.map((v) => ({
            id: v.id, impact: v.impact, help: v.help,
            nodes: v.nodes.map((n) => n.target.join(" ") + ": " + n.failureSummary),
        }));
    }""")
    return result


def assert_accessible(page: Page, state: str) -> None:
    """axe-core on the page as it is now: no serious or critical violation."""
    blocking = [v for v in axe_violations(page) if v["impact"] in BLOCKING_IMPACTS]
    assert blocking == [], f"axe, {state} ({page.url}):\n" + json.dumps(blocking, indent=2)


def assert_kiosk_accessible(page: Page, state: str) -> None:
    """axe-core on a kiosk screen as it is now, AAA rules included (7:1 contrast: docs/kiosk.md):
    no serious or critical violation. Colour transitions (0.15 s on buttons) finish first: axe
    would measure a colour half way."""
    page.evaluate("() => Promise.all(document.getAnimations().map((a) => a.finished))")
    if not page.evaluate("() => typeof window.axe === 'object'"):
        page.evaluate(AXE_JS.read_text(encoding="utf-8") + "\n;0")
    violations = page.evaluate("""async () => (await axe.run(document, { resultTypes: ["violations"],
        runOnly: ["wcag2a", "wcag2aa", "wcag2aaa", "wcag21a", "wcag21aa", "wcag22aa", "best-practice"] }))
        .violations.filter((v) => ["serious", "critical"].includes(v.impact))
        .map((v) => ({ id: v.id, nodes: v.nodes.map((n) =>
            `${n.target.join(" ")} ${JSON.stringify(n.any.map((check) => check.data))}`) }))""")
    assert violations == [], f"axe, {state}: {violations}"


def off_the_loop(function, *args, **kwargs):
    """Call a sandbox helper that runs its own event loop (d.pay, ...) from a thread: the
    Playwright sync API keeps an event loop running on the test's own thread."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(function, *args, **kwargs).result(timeout=60)


def luminance(hex_colour: str) -> float:
    channels = [int(hex_colour[i:i + 2], 16) / 255 for i in (1, 3, 5)]
    linear = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def contrast(a: str, b: str) -> float:
    """WCAG's contrast ratio of two "#rrggbb" colours."""
    high, low = sorted((luminance(a), luminance(b)), reverse=True)
    return (high + 0.05) / (low + 0.05)
