"""The institution on a consortium's payment records (docs/consortium.md#staff-commands): each
institution has its own ledger, every payment row records the institution it was made for, and
what patrons and staff see of a payment names it (its code): the answer that starts it, the
payment and receipt JSON, `patronpay payments` (list, show, --json, export), the staff payment
page, and the bursar's export file, in a folder of its own. Outside a consortium nothing
changes (tests/test_staff_cli.py)."""

from __future__ import annotations

import csv
import io
import json
import os
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path

import httpx
import pytest
from support.consortium import ConsortiumDeployment, start_consortium

from patronpay.bursar_commands import _export_path
from patronpay.cli import main
from proxy.db import Database


@pytest.fixture(scope="module")
def d(tmp_path_factory) -> Iterator[ConsortiumDeployment]:
    folder = tmp_path_factory.mktemp("records")
    deployment = start_consortium(folder, bursar_outbox=str(folder / "outbox"),
                                  bursar_inbox=str(folder / "inbox"))
    yield deployment
    deployment.stop()


@pytest.fixture(scope="module")
def started(d) -> dict[str, dict]:
    """`POST /api/payments`'s answer for a payment at each institution, by code, each paid
    and posted."""
    answers = {}
    for code, patron in (("campus-a", "jsmith"), ("campus-b", "dokafor")):
        created, _ = d.pay(code, d.sign_in_sso(code, patron))
        answers[code] = created
        d.wait_for_state(code, created["payment"]["id"], "posted")
    return answers


@pytest.fixture(scope="module")
def paid(started) -> dict[str, str]:
    """A posted payment at each institution, by code."""
    return {code: created["payment"]["id"] for code, created in started.items()}


def test_each_payment_records_its_own_institution(d, started):
    for code, created in started.items():
        assert created["payment"]["institution"] == code
        db = Database(d.settings(code).database)
        try:
            rows = db.read("SELECT id, institution FROM payments")
        finally:
            db.close()
        # Each institution's ledger holds its own payments, each naming it.
        assert (created["payment"]["id"], code) in {(r["id"], r["institution"]) for r in rows}
        assert {r["institution"] for r in rows} == {code}
        assert d.ledger(code).payment(created["payment"]["id"]).institution == code


def test_the_staff_payment_page_names_the_institution(d, paid):
    browser = d.browser()
    signed_in = browser.get("/campus-b/staff/auth/sso?next=/staff/",
                            headers={"X-Remote-User": "tlee"})
    assert signed_in.status_code == 303
    page = browser.get(f"/campus-b/staff/payments/{paid['campus-b']}")
    assert page.status_code == 200
    assert '<dt>Institution</dt><dd id="institution">campus-b</dd>' in page.text


@pytest.fixture
def cli(d, monkeypatch, capsys):
    for name in [n for n in os.environ if n.startswith("PATRONPAY_")]:
        monkeypatch.delenv(name)
    config = d.settings("campus-a").database.parent / "consortium.toml"
    monkeypatch.setenv("PATRONPAY_CONFIG", str(config))

    def run(*argv: str) -> str:
        code = main(list(argv))
        out, err = capsys.readouterr()
        assert (code, err) == (0, ""), err
        return out

    return run


def test_the_patrons_payment_and_receipt_name_the_institution(d, paid):
    browser = d.sign_in_sso("campus-b", "dokafor")
    mine = browser.get(f"/campus-b/api/payments/{paid['campus-b']}").json()
    assert mine["payment"]["institution"] == "campus-b"
    receipt = httpx.get(f"{d.url}/campus-b/api/receipts/{mine['receipt_token']}").json()
    assert receipt["payment"]["institution"] == "campus-b"
    assert receipt["payment"]["id"] == paid["campus-b"]


def test_payments_list_and_show_name_the_institution(d, paid, cli):
    listed = json.loads(cli("payments", "list", "--json", "--institution", "campus-a"))
    assert paid["campus-a"] in {p["id"] for p in listed}
    assert {p["institution"] for p in listed} == {"campus-a"}
    text = cli("payments", "list", "--institution", "campus-b").splitlines()
    assert text[0].split()[0] == "INSTITUTION"
    row = next(line for line in text if paid["campus-b"] in line)
    assert row.split()[0] == "campus-b"
    shown = cli("payments", "show", paid["campus-b"], "--institution", "campus-b")
    assert shown.splitlines()[0].split() == ["institution", "campus-b"]
    detail = json.loads(cli("payments", "show", paid["campus-a"], "--json",
                            "--institution", "campus-a"))
    assert detail["institution"] == "campus-a" and detail["id"] == paid["campus-a"]


def test_the_money_export_names_the_institution_on_every_row(d, paid, cli):
    today = datetime.now(UTC).date().isoformat()
    for options in ([], ["--lines"]):
        out = cli("payments", "export", "--since", today, "--until", today, *options,
                  "--institution", "campus-b")
        rows = list(csv.DictReader(io.StringIO(out)))
        assert paid["campus-b"] in {r["payment_id"] for r in rows}
        assert {r["institution"] for r in rows} == {"campus-b"}


def test_each_institution_has_its_own_bursar_folders_and_file_name(d):
    outbox = Path(d.settings("campus-a").database).parent / "outbox"
    day = date(2026, 12, 2)
    for code in ("campus-a", "campus-b"):
        settings = d.settings(code)
        assert settings.institution == code
        assert Path(settings.bursar_outbox) == outbox / code
        assert Path(settings.bursar_inbox) == outbox.with_name("inbox") / code
        assert _export_path(None, settings, day) == \
            outbox / code / f"library-fines-{code}-2026-12-02.csv"
