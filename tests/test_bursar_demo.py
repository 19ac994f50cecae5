"""`patronpay demo --bursar` (docs/bursar.md#try-it-the-sandbox-and-the-demo), run as a newcomer
runs it: a real demo process exports the fines file at start, the sandbox's campus bursar page
turns it into a payments file in the inbox, the demo imports it and its worker posts it to the
sandbox's Alma; and the commands it prints work from another shell with its settings file."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from support.demo_process import DemoProcess, running_demo
from support.waiting import wait_for

from sandbox.app import ALMA_API_KEY, urls

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def demo() -> Iterator[DemoProcess]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PATRONPAY_")}
    with running_demo("--bursar", env=env) as running:
        yield running


def settings_of(env_file: Path) -> dict[str, str]:
    """The demo's settings file (`export NAME=value` lines, shell-quoted) as a dict."""
    found = {}
    for line in env_file.read_text(encoding="utf-8").splitlines():
        name, _, value = line.removeprefix("export ").partition("=")
        found[name] = shlex.split(value)[0] if value else ""
    return found


def patronpay(settings: dict[str, str], *argv: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PATRONPAY_")}
    return subprocess.run([sys.executable, "-m", "patronpay", *argv], cwd=ROOT,
                          env=env | settings, capture_output=True, text=True, timeout=60)


def test_the_bursar_demo_exports_takes_the_bursars_payments_and_posts_them(demo):
    sandbox = demo.after(r"sandbox Alma and CashNet at (http://\S+)/ ", "the sandbox URL")[1]
    page = demo.after(r"campus bursar page: (http://\S+) ", "the bursar page")[1]
    outbox = Path(demo.after(r"fines file for the bursar in (\S+)", "the outbox")[1])
    env_file = Path(demo.after(r"^\s+\. (\S+patronpay\.env)$", "the settings file")[1])
    for command in ("bursar export", "bursar holds --dry-run",
                    "bursar import --inbox --dry-run", "payments list --state posted"):
        assert f"patronpay {command}" in demo.printed()
    demo.after(r"patronpay bursar export:\n\s+\| wrote \S+library-fines-[\d-]+\.csv: 7 rows",
               "the export at start")
    [fines_file] = outbox.glob("library-fines-*.csv")
    assert "\"Kowalski, Maria\",77.25" in fines_file.read_text(encoding="utf-8")

    alma = urls(sandbox)["alma_api"]

    def owed() -> str:
        answer = httpx.get(f"{alma}/users/mkowalski/fees", params={"format": "json"},
                           headers={"Authorization": f"apikey {ALMA_API_KEY}",
                                    "Accept": "application/json"})
        assert answer.status_code == 200, answer.text
        return str(answer.json().get("total_sum"))
    assert owed() == "77.25"

    # The campus bursar page shows the file's balances; the tester marks one paid in full.
    shown = httpx.get(page)
    assert shown.status_code == 200 and "mkowalski" in shown.text
    token = re.search(r'name="form_token" value="([^"]+)"', shown.text)[1]
    index = re.search(r'name="pay_(\d+)"[^>]*value="mkowalski"', shown.text)[1]
    written = httpx.post(page + "pay", data={"form_token": token, f"pay_{index}": "mkowalski",
                                             f"amount_{index}": "77.25"})
    assert written.status_code == 303, written.text

    # The demo takes the file from its inbox as the path unit would; its worker posts it.
    demo.after(r"import --inbox:\n(\s+\|.*\n)*?\s+\|\s+1 rows: 1 recorded", "the import")
    wait_for(lambda: owed() in ("0", "0.0", "0.00"), "mkowalski's fees paid in Alma",
             timeout=30)

    # The printed commands work from another shell with the demo's settings file.
    settings = settings_of(env_file)
    posted = patronpay(settings, "payments", "list", "--state", "posted")
    assert posted.returncode == 0, posted.stderr
    assert "mkowalski" in posted.stdout and "77.25" in posted.stdout
    holds = patronpay(settings, "bursar", "holds", "--dry-run")
    assert holds.returncode == 0, holds.stderr
    assert "hold  mkowalski" not in holds.stdout and "hold  jsmith" in holds.stdout
