"""The pages' words for a patron's own payments (site/payments.js), run in node: where a
payment was started, its state in plain words, and which error answers are the "payment in
progress" refusal that brings up the payments in the way."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

SITE = Path(__file__).resolve().parent.parent / "site"
ENGLISH = json.loads((SITE / "locales" / "en.json").read_text(encoding="utf-8"))


@pytest.fixture(autouse=True)
def node_installed():
    if shutil.which("node") is None:
        pytest.fail("node is missing: install Debian's nodejs (bash .ci/run does)")


def run_js(body: str):
    script = (f"const MyPayments = require({json.dumps(str(SITE / 'payments.js'))});\n"
              f"process.stdout.write(JSON.stringify((() => {{ {body} }})()));\n")
    done = subprocess.run(["node", "-e", script], capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_where_a_payment_was_started():
    assert run_js('return [MyPayments.where("payments.where", {channel: "web", kiosk: null}),'
                  ' MyPayments.where("payments.where", {channel: "kiosk", kiosk: "lib1"})];') == [
        ["payments.where.web", {}], ["payments.where.kiosk", {"kiosk": "lib1"}]]


def test_every_state_has_plain_words():
    states = ["pending", "paid", "posted", "declined", "cancelled", "expired", "attention",
              "resolved", "something_new"]
    keys = run_js(f"return {json.dumps(states)}.map((state) => MyPayments.stateText({{state}})[0]);")
    assert keys[-1] == "payments.state.other"
    assert all(key in ENGLISH for key in keys)
    assert ENGLISH["payments.state.paid"] == "Being recorded in your library account"
    assert (ENGLISH["payments.state.posted"], ENGLISH["payments.state.declined"]) == (
        "Complete", "Declined")


def test_only_the_in_progress_refusals_bring_up_the_payments_in_the_way():
    answers = [
        {"status": 409, "data": {"error": {"code": "payment_in_progress"}, "in_progress": [{"id": "a"}]}},
        {"status": 409, "data": {"error": {"code": "too_many_open_payments"}, "in_progress": []}},
        {"status": 409, "data": {"error": {"code": "other_session"}}},
        {"status": 422, "data": {"error": {"code": "payment_in_progress"}}},
        {"status": 0, "data": {}},
    ]
    assert run_js(f"return {json.dumps(answers)}.map(MyPayments.conflict);") == [
        [{"id": "a"}], [], None, None, None]
