"""Smoke test of patronpay installed from its wheel (not editable), as a library would install it.

.ci/run builds the wheel, installs it into a fresh venv outside the clone, and runs this script
with that venv's Python from a folder outside the clone, so nothing can be imported from the
working tree by accident:

    cd /tmp/elsewhere && /tmp/venv/bin/python $CLONE/.ci/wheel_smoke.py --site $CLONE/site

It checks that the code and the static site come from the installation, that every file of the
clone's site/ was installed, that `patronpay demo --kiosk` serves the web page, a locale and the
kiosk page from the installed files, and that a payment made over HTTP (guest sign-in, the
sandbox CashNet's Pay button) reaches `posted`. Each check prints one line; the first failure
prints the demo's output and exits 1. Traffic goes to loopback only.
"""

from __future__ import annotations

import argparse
import ipaddress
import os
import re
import subprocess
import sys
import sysconfig
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit

import httpx

TIMEOUT = 15.0
START_SECONDS = 60.0
POSTED_SECONDS = 60.0
GUEST = ("jsmith", "correct-horse-7")  # a demo account the demo prints


class SmokeFailure(Exception):
    pass


def check(condition: object, what: str) -> None:
    if not condition:
        raise SmokeFailure(what)
    print(f"  ok  {what}", flush=True)


def installed(path: str | Path) -> bool:
    purelib = Path(sysconfig.get_paths()["purelib"]).resolve()
    return Path(path).resolve().is_relative_to(purelib)


def wait_for(probe: Callable[[], Any], what: str, seconds: float) -> Any:
    """The first truthy answer of `probe`, polled until a deadline."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        answer = probe()
        if answer:
            return answer
        time.sleep(0.1)
    raise SmokeFailure(f"timed out after {seconds:g} s waiting for {what}")


def files_below(folder: Path) -> set[str]:
    return {str(path.relative_to(folder)) for path in folder.rglob("*")
            if path.is_file() and "__pycache__" not in path.parts}


def check_installation(source_site: Path | None) -> Path:
    import kiosk
    import patronpay
    import proxy
    import sandbox
    from patronpay.site_files import SiteFilesError, packaged_site

    for module in (patronpay, proxy, kiosk, sandbox):
        check(installed(module.__file__), f"{module.__name__} is imported from the venv "
                                          f"({Path(module.__file__).parent})")
    try:
        site = packaged_site()
    except SiteFilesError as exc:
        raise SmokeFailure(f"no static site is installed: {exc}") from None
    check(installed(site), f"the static site is the installed one ({site})")
    if source_site is not None:
        missing = sorted(files_below(source_site) - files_below(site))
        check(not missing, f"every file of {source_site} is installed"
                           + (f" (missing: {', '.join(missing)})" if missing else ""))
    return site


class Demo:
    """`patronpay demo --kiosk` as a newcomer runs it, its output collected as it comes."""

    def __init__(self, process: subprocess.Popen) -> None:
        self.process = process
        self.lines: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.process.stdout:
            self.lines.append(line.rstrip("\n"))

    def url(self, pattern: str) -> str:
        def printed() -> str | None:
            if self.process.poll() is not None:
                raise SmokeFailure(f"the demo exited with {self.process.returncode}")
            for line in list(self.lines):
                if re.search(pattern, line) and (found := re.search(r"http://[^\s/]+", line)):
                    return found.group(0)
            return None
        return wait_for(printed, f"the demo to print {pattern!r}", START_SECONDS)


@contextmanager
def running_demo(workdir: Path) -> Iterator[Demo]:
    command = [str(Path(sys.executable).parent / "patronpay"), "demo", "--kiosk", "--port", "0"]
    # No PYTHONPATH (it could reach the clone) and no PATRONPAY_* setting from the caller.
    env = {name: value for name, value in os.environ.items()
           if name != "PYTHONPATH" and not name.startswith("PATRONPAY_")}
    process = subprocess.Popen(command, cwd=workdir, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True,
                               env=env | {"PYTHONUNBUFFERED": "1"})
    demo = Demo(process)
    try:
        yield demo
    except BaseException:
        print("--- the demo's output:\n" + "\n".join(demo.lines), file=sys.stderr)
        raise
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


def check_pages(proxy_url: str, kiosk_url: str, site: Path) -> None:
    page = httpx.get(proxy_url + "/", timeout=TIMEOUT)
    check(page.status_code == 200 and page.content == (site / "index.html").read_bytes(),
          f"GET {proxy_url}/ serves the installed index.html")
    locale = httpx.get(proxy_url + "/locales/en.json", timeout=TIMEOUT)
    check(locale.status_code == 200 and locale.json(), "GET /locales/en.json serves a locale")
    kiosk_page = httpx.get(kiosk_url + "/kiosk/", timeout=TIMEOUT)
    check(kiosk_page.status_code == 200
          and kiosk_page.content == (site / "kiosk" / "index.html").read_bytes(),
          f"GET {kiosk_url}/kiosk/ serves the installed kiosk page")


def loopback_only(url: str) -> str:
    host = urlsplit(url).hostname or ""
    if host != "localhost" and not ipaddress.ip_address(host).is_loopback:
        raise SmokeFailure(f"refusing to send anything to {url}: not a loopback address")
    return url


def check_payment(proxy_url: str) -> None:
    with httpx.Client(base_url=proxy_url, headers={"Origin": proxy_url},
                      timeout=TIMEOUT) as browser:
        user, password = GUEST
        signed_in = browser.post("/auth/alma", json={"user_id": user, "password": password})
        check(signed_in.status_code == 200, f"guest sign-in as {user}")
        browser.headers["X-CSRF-Token"] = browser.get("/api/session").json()["csrf_token"]
        started = browser.post("/api/payments", json={"amount": "5.00"})
        check(started.status_code == 201, "a payment of 5.00 is started")
    payment, checkout = started.json()["payment"], started.json()["checkout"]

    # The browser's part on CashNet's (sandbox) pages: the hand-off form, then Pay.
    card_page = httpx.post(loopback_only(checkout["action"]), data=checkout["fields"],
                           timeout=TIMEOUT)
    check(card_page.status_code == 200 and "X-Emulator-Error" not in card_page.headers,
          "the sandbox CashNet takes the hand-off")
    action = re.search(r'<form method="post" action="([^"]+)"', card_page.text)
    check(action, "the sandbox's card page has its payment form")
    pay_url = loopback_only(urljoin(str(card_page.url), action.group(1)))
    paid = httpx.post(pay_url, data={"action": "pay", "card_number": "4111111111111111"},
                      timeout=TIMEOUT)
    check(paid.status_code in (200, 303), "Pay on the sandbox's card page")

    receipt = f"{proxy_url}/api/receipts/{payment['receipt_token']}"

    def posted() -> dict | None:
        state = httpx.get(receipt, timeout=TIMEOUT).json()["payment"]
        return state if state["state"] == "posted" else None

    final = wait_for(posted, f"payment {payment['id']} to be posted", POSTED_SECONDS)
    check(final["amount"] == "5.00", f"payment {payment['id']} reaches posted (5.00 to Alma)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--site", type=Path, help="the clone's site/ folder, to compare with")
    args = parser.parse_args()
    print("wheel smoke test: patronpay installed from its wheel", flush=True)
    try:
        site = check_installation(args.site)
        with tempfile.TemporaryDirectory(prefix="patronpay-smoke-") as workdir, \
                running_demo(Path(workdir)) as demo:
            proxy_url = demo.url(r"pay library fines at")
            kiosk_url = demo.url(r"^\s*kiosk: ")
            check_pages(proxy_url, kiosk_url, site)
            check_payment(proxy_url)
    except (SmokeFailure, httpx.HTTPError, ImportError) as exc:
        print(f"wheel smoke test FAILED: {exc}", file=sys.stderr)
        return 1
    print("wheel smoke test: all checks passed", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
