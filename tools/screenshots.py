"""Screenshots of the patron's pages for the README, in every language, at phone and desktop
width: `.venv/bin/python tools/screenshots.py [--out docs/screenshots]`.

Runs the sandbox and the proxy on loopback (as `patronpay demo` does), drives Debian's
Chromium with Playwright through sign-in, the fees, a field error, a payment and a decline on
the sandbox CashNet pages, and writes `<page>-<lang>-<phone|desktop>.png`. With Debian's
`pngquant` installed the PNGs are quantised to keep the repository small.
"""

from __future__ import annotations

import argparse
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from playwright.sync_api import Browser, Page, expect, sync_playwright  # noqa: E402

from patronpay.demo import point_store_at, sandbox_environment  # noqa: E402
from patronpay.serving import ServerThread, bind  # noqa: E402
from proxy.app import create_app  # noqa: E402
from proxy.config import load_settings  # noqa: E402
from proxy.i18n import available_languages  # noqa: E402
from sandbox.app import create_sandbox_app  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
LAUNCH_ARGS = ["--headless=new", "--disable-gpu", "--disable-background-networking",
               "--disable-component-update", "--no-first-run", "--disable-dev-shm-usage"]
SIZES = {"phone": {"width": 390, "height": 844}, "desktop": {"width": 1280, "height": 900}}
INTL = {"en": "en-US", "es": "es-US"}
PATRON = "mkowalski"  # three fees in three libraries
WAIT_MS = 15_000


@dataclass
class Site:
    url: str
    sandbox: object


@contextmanager
def running_site(folder: Path) -> Iterator[Site]:
    """The sandbox and a proxy configured against it, on loopback ports."""
    sandbox_app = create_sandbox_app()
    sandbox = ServerThread(sandbox_app).start()
    sock = bind("127.0.0.1", 0)
    url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    settings = load_settings(sandbox_environment(
        url, sandbox.url, folder / "ledger.sqlite3", secrets.token_urlsafe(32),
        log_level="WARNING"))
    point_store_at(sandbox_app, settings)
    proxy = ServerThread(create_app(settings), sock=sock).start()
    try:
        yield Site(url, sandbox_app)
    finally:
        proxy.stop()
        sandbox.stop()


def new_page(browser: Browser, lang: str, size: str, signed_in: bool) -> Page:
    context = browser.new_context(
        viewport=SIZES[size], locale=INTL.get(lang, lang),
        extra_http_headers={"X-Remote-User": PATRON} if signed_in else {})
    context.set_default_timeout(WAIT_MS)
    return context.new_page()


def shoot(page: Page, out: Path, name: str) -> None:
    path = out / f"{name}.png"
    page.evaluate("document.activeElement && document.activeElement.blur()")
    page.screenshot(path=str(path), full_page=True, animations="disabled", caret="hide")
    if shutil.which("pngquant"):  # Debian's pngquant, when installed, makes them ~3x smaller
        subprocess.run(["pngquant", "--force", "--skip-if-larger", "--strip", "--quality=70-95",
                        "--output", str(path), str(path)], check=False)
    print(f"  {path.name} ({path.stat().st_size // 1024} KiB)")


def pay_on_cashnet(page: Page, site: Site, amount: str, outcome: str) -> str:
    """From the fees page: pay `amount` and finish on the sandbox CashNet page; the receipt URL."""
    page.goto(f"{site.url}/auth/sso?next=/")
    page.locator("#amount").fill(amount)
    created: dict = {}

    def remember(route) -> None:  # read the new payment's id on its way to the page
        response = route.fetch()
        created.update(response.json()["payment"])
        route.fulfill(response=response)

    page.route("**/api/payments", remember)
    page.locator("#pay-button").click()
    page.locator("#card-number").fill("4111 1111 1111 1111")
    if outcome == "pay":
        page.get_by_role("button", name=f"Pay ${amount}").click()
        page.get_by_role("button", name="Sign out").click()
    else:
        page.get_by_role("button", name="Decline").click()
        expect(page.get_by_role("alert")).to_contain_text("Payment declined")
        # The declined checkout page offers no sign-out: leave by the store's sign-out URL.
        page.goto(f"{site.url}/cashnet/return?p={created['id']}")
    expect(page.locator("body")).to_have_attribute("data-state", "posted" if outcome == "pay"
                                                   else "declined")
    return page.url


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "screenshots")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    languages = available_languages(ROOT / "site" / "locales")
    launch = LAUNCH_ARGS + (["--no-sandbox"] if os.geteuid() == 0 else [])
    with tempfile.TemporaryDirectory() as folder, running_site(Path(folder)) as site, \
            sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=launch)
        for lang in languages:
            for size in SIZES:
                print(f"{lang} {size}")
                page = new_page(browser, lang, size, signed_in=False)
                page.goto(f"{site.url}/")
                expect(page.locator("#signin")).to_be_visible()
                shoot(page, args.out, f"signin-{lang}-{size}")
                page = new_page(browser, lang, size, signed_in=True)
                page.goto(f"{site.url}/auth/sso?next=/")
                expect(page.locator("#fee-rows tr")).to_have_count(3)
                shoot(page, args.out, f"fees-{lang}-{size}")
                page.locator("#amount").fill("500")
                page.locator("#pay-button").click()
                expect(page.locator("#amount-error")).to_be_visible()
                shoot(page, args.out, f"fees-error-{lang}-{size}")
        # One payment and one decline, shown in every language and size (no session needed).
        payer = new_page(browser, "en", "desktop", signed_in=True)
        receipts = {"posted": pay_on_cashnet(payer, site, "62.00", "pay"),
                    "declined": pay_on_cashnet(payer, site, "10.00", "decline")}
        for state, url in receipts.items():
            for lang in languages:
                for size in SIZES:
                    page = new_page(browser, lang, size, signed_in=False)
                    page.goto(url)
                    expect(page.locator("body")).to_have_attribute("data-state", state)
                    shoot(page, args.out, f"receipt-{state}-{lang}-{size}")
        browser.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
