"""The sandbox's side of the bursar models: the campus bursar page (reads the fines file, writes
a payments file into the drop folder), the Analytics endpoint's answers and knobs, blocks in
the full user record, and the systemd units that run the bursar commands."""

from __future__ import annotations

import configparser
import re
import shutil
import subprocess
from decimal import Decimal
from pathlib import Path

import httpx
import pytest

from patronpay.serving import ServerThread
from sandbox.alma_analytics import REPORT_PATH
from sandbox.app import ALMA_API_KEY, create_sandbox_app, urls

D = Decimal
SYSTEMD = Path(__file__).resolve().parent.parent / "systemd"
UNITS = sorted(p.name for p in SYSTEMD.glob("patronpay-bursar-*"))


@pytest.fixture
def sandbox(tmp_path):
    app = create_sandbox_app()
    (tmp_path / "outbox").mkdir()
    (tmp_path / "inbox").mkdir()
    app.state.bursar.configure(outbox=tmp_path / "outbox", inbox=tmp_path / "inbox")
    with ServerThread(app) as running:
        running.app = app
        running.folder = tmp_path
        yield running


def fines_file(sandbox, text: str, name: str = "library-fines-2025-03-14.csv") -> Path:
    path = sandbox.folder / "outbox" / name
    path.write_text(text, encoding="utf-8")
    return path


def test_the_page_says_when_there_is_no_file_yet(sandbox):
    page = httpx.get(urls(sandbox.url)["bursar_page"])
    assert page.status_code == 200
    assert "No fines file from the library yet" in page.text
    assert page.headers["Content-Security-Policy"].startswith("default-src 'none'")


def test_the_page_shows_the_balances_escaped_and_writes_a_payments_file(sandbox):
    fines_file(sandbox, "campus_id,name,amount\r\n900123456,\"<b>Kowalski</b>, M\",77.25\r\n"
                        "900200030,\"Chen, P\",10.00\r\n900200030,\"Chen, P\",2.50\r\n")
    page = httpx.get(urls(sandbox.url)["bursar_page"])
    assert "&lt;b&gt;Kowalski&lt;/b&gt;, M" in page.text and "<b>Kowalski" not in page.text
    assert "12.50" in page.text  # a file with a row per fee is summed per patron
    token = re.search(r'name="form_token" value="([^"]+)"', page.text).group(1)
    index = re.search(r'name="pay_(\d+)"[^>]*value="900123456"', page.text).group(1)
    written = httpx.post(urls(sandbox.url)["bursar_page"] + "pay", data={
        "form_token": token, f"pay_{index}": "900123456", f"amount_{index}": "70.00"})
    assert written.status_code == 303
    name = written.headers["location"].split("written=")[1]
    lines = (sandbox.folder / "inbox" / name).read_text().splitlines()
    assert lines[0] == "patron_id,amount,transaction_id,date"
    campus_id, amount, tx, _ = lines[1].split(",")
    assert (campus_id, amount, len(lines)) == ("900123456", "70.00", 2)
    assert re.fullmatch(r"CB[0-9A-F]{10}", tx)
    assert [p.name for p in (sandbox.folder / "inbox").iterdir()] == [name]  # no temp left
    again = httpx.get(sandbox.url + written.headers["location"])
    assert f"Wrote {name}" in again.text and "7.25" in again.text  # what is left to pay


def test_a_payments_file_without_transaction_ids(sandbox):
    fines_file(sandbox, "campus_id,name,amount\r\njsmith,\"Smith, J\",13.25\r\n")
    source, _ = sandbox.app.state.bursar.balances()
    path = sandbox.app.state.bursar.pay([("jsmith", D("13.25"))], transaction_ids=False,
                                        source=source)
    assert path.read_text().splitlines()[0] == "patron_id,amount,date"


def test_the_page_refuses_a_form_without_its_token_and_a_bad_amount(sandbox):
    fines_file(sandbox, "campus_id,name,amount\r\njsmith,\"Smith, J\",13.25\r\n")
    pay = urls(sandbox.url)["bursar_page"] + "pay"
    assert httpx.post(pay, data={"pay_0": "jsmith", "amount_0": "1.00"}).status_code == 400
    token = re.search(r'name="form_token" value="([^"]+)"',
                      httpx.get(urls(sandbox.url)["bursar_page"]).text).group(1)
    bad = httpx.post(pay, data={"form_token": token, "pay_0": "jsmith", "amount_0": "1.005"})
    assert bad.status_code == 400 and "in cents" in bad.text
    assert list((sandbox.folder / "inbox").iterdir()) == []


def test_the_analytics_endpoint_answers_xml_rounds_limits_and_refuses_bad_tokens(sandbox):
    api = urls(sandbox.url)["alma_api"] + "/analytics/reports"
    headers = {"Authorization": f"apikey {ALMA_API_KEY}"}
    first = httpx.get(api, params={"path": REPORT_PATH, "limit": "30"}, headers=headers)
    assert first.headers["content-type"].startswith("application/xml")
    assert "<IsFinished>true</IsFinished>" in first.text  # 18 fees fit a page of 50
    assert first.text.count("<Row>") == 18 and "saw-sql:columnHeading=\"Fine Fee Id\"" in first.text
    bad = httpx.get(api, params={"token": "NOPE"}, headers=headers)
    assert bad.status_code == 400 and "INVALID_TOKEN" in bad.text
    assert httpx.get(api, params={"path": REPORT_PATH}).status_code == 400  # no key
    with pytest.raises(ValueError, match="unknown analytics knobs"):
        sandbox.app.state.alma_analytics.configure(stil_loading=1)


def test_blocks_show_in_the_full_user_record_only(sandbox):
    sandbox.app.state.alma.set_blocks("jsmith", [{"type": "CASH", "note": "owes"}])
    user = urls(sandbox.url)["alma_api"] + "/users/jsmith"
    headers = {"Authorization": f"apikey {ALMA_API_KEY}", "Accept": "application/json"}
    full = httpx.get(user, params={"view": "full"}, headers=headers).json()
    assert [(b["block_type"]["value"], b["block_status"]) for b in full["user_block"]] == [
        ("CASH", "ACTIVE")]
    brief = httpx.get(user, params={"view": "brief"}, headers=headers).json()
    assert "user_block" not in brief


# --- the systemd units ---


def test_the_bursar_units_are_all_there_and_parse():
    assert UNITS == [
        "patronpay-bursar-export.service", "patronpay-bursar-export.timer",
        "patronpay-bursar-holds.service", "patronpay-bursar-holds.timer",
        "patronpay-bursar-import.path", "patronpay-bursar-import.service",
        "patronpay-bursar-import.timer"]
    for unit in UNITS:
        parser = configparser.ConfigParser(strict=False, interpolation=None)
        parser.optionxform = str
        parser.read_string((SYSTEMD / unit).read_text())
    path = (SYSTEMD / "patronpay-bursar-import.path").read_text()
    assert "PathChanged=/srv/patronpay-bursar/inbox" in path
    service = (SYSTEMD / "patronpay-bursar-import.service").read_text()
    assert "bursar import --inbox" in service and "User=patronpay" in service
    assert "StateDirectory=patronpay" in service and "Type=oneshot" in service


@pytest.mark.parametrize("unit", UNITS)
def test_systemd_analyze_verify_is_clean(unit):
    if shutil.which("systemd-analyze") is None:
        pytest.fail("systemd-analyze is missing: install Debian's systemd")
    result = subprocess.run(["systemd-analyze", "verify", str(SYSTEMD / unit)],
                            capture_output=True, text=True, timeout=60, cwd=SYSTEMD)
    output = [line for line in (result.stdout + result.stderr).splitlines() if line.strip()]
    assert output == [] and result.returncode == 0, "\n".join(output)
