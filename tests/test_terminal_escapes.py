"""Control characters never reach a staff member's terminal (issue 14 item 3): values from
Alma (a patron's name), from CashNet's notifications (batch, date, payment code) and from a
returning browser are printed by `payments list`, `payments show` and `reconcile` with every
escape sequence and newline shown escaped, so they can neither clear the screen nor forge a
"what to do" line. JSON output stays exact (it is safe already)."""

from __future__ import annotations

import json
import os

import httpx
import pytest

from patronpay.cli import main
from patronpay.demo import sandbox_environment
from proxy.terminal import printable, shorten, table

CLEAR = "\x1b[2J\x1b[H"
TITLE = "\x1b]0;owned\x07"
FORGED = "\nwhat to do\n  patronpay payments resolve all --note ok"
EVIL_NAME = f"Eve{CLEAR}{FORGED}"


@pytest.fixture
def cli(monkeypatch, capsys):
    def run(d, *argv):
        for name in [n for n in os.environ if n.startswith("PATRONPAY_")]:
            monkeypatch.delenv(name)
        env = sandbox_environment(d.settings.public_url, d.sandbox.url, d.settings.database,
                                  d.settings.cashnet_postback_token)
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        code = main([str(a) for a in argv])
        out, err = capsys.readouterr()
        return code, out, err

    return run


def assert_harmless(text: str) -> None:
    assert "\x1b" not in text and "\x07" not in text
    assert "\\x1b[2J" in text  # shown, escaped, for staff to see


def evil_payment(d, waived: bool = False) -> str:
    """A patron whose Alma name carries escape sequences and a forged block pays; CashNet's
    notification carries more in its batch number and date. `waived`: the fee is closed at
    the desk before the money arrives, so the payment needs staff."""
    d.alma.add_user({"primary_id": "eve", "first_name": EVIL_NAME, "last_name": f"X{TITLE}",
                     "fees": [{"type": "OVERDUEFINE", "owner": "MAIN", "original_amount": "5.00",
                               "creation_time": "2025-01-01T10:00:00.000Z"}]})
    patron = d.sign_in_sso("eve")
    created = d.start_payment(patron)
    payment = d.ledger.payment(created["payment"]["id"])
    fields = {"result": "0", "respmessage": "SUCCESS", "tx": "777001",
              "batchno": f"1{CLEAR}", "effdate": f"2025-01-01{FORGED}",
              "itemcnt": str(len(payment.lines)), "custcode": payment.custcode,
              "ref1type1": "PAYMENT_ID", "ref1val1": payment.id}
    for line in payment.lines:
        fields[f"itemcode{line.number}"] = line.item_code
        fields[f"amount{line.number}"] = f"{line.amount:.2f}"
    if waived:
        fee_id = d.alma.user_state("eve")["fees"][0]["id"]
        d.alma.set_fee("eve", fee_id, balance="0.00", status="CLOSED")
    url = f"{d.url}/cashnet/postback/{d.settings.cashnet_postback_token}"
    assert httpx.post(url, data=fields, timeout=15.0).status_code == 200
    return payment.id


def test_payments_show_and_list_escape_what_came_from_alma_and_cashnet(deploy, cli):
    d = deploy()
    payment_id = evil_payment(d)
    d.wait_for_state(payment_id, "posted")

    code, out, _ = cli(d, "payments", "show", payment_id)
    assert code == 0
    assert_harmless(out)
    assert "\\nwhat to do\\n" in out  # the forged block is one visible line
    assert sum(line.startswith("what to do") for line in out.splitlines()) == 0  # no advice due
    assert out.splitlines()[1].startswith("patron    eve (Eve\\x1b[2J\\x1b[H\\nwhat to do")

    code, out, _ = cli(d, "payments", "list")
    assert code == 0 and "\x1b" not in out
    assert len(out.splitlines()) == 3  # header, one row, count: no forged rows

    code, out, _ = cli(d, "payments", "show", payment_id, "--json")
    shown = json.loads(out)
    assert shown["patron_name"].startswith(EVIL_NAME)  # JSON carries the value exactly
    assert shown["batchno"] == f"1{CLEAR}"


def test_reconcile_escapes_what_it_prints(deploy, cli):
    d = deploy()
    payment_id = evil_payment(d, waived=True)
    d.wait_for_state(payment_id, "attention")
    with d.ledger.db.write() as conn:  # a transaction number as a hostile store could echo it
        conn.execute("UPDATE payments SET cashnet_tx = ? WHERE id = ?",
                     (f"777001{CLEAR}{FORGED}", payment_id))
    code, out, _ = cli(d, "reconcile", "--since", "2000-01-01")
    assert code == 1
    assert "\x1b" not in out and "\x07" not in out
    staff_lines = [line for line in out.splitlines() if line.startswith(f"- {payment_id}")]
    assert len(staff_lines) == 1 and "777001\\x1b[2J\\x1b[H\\nwhat to do" in staff_lines[0]
    assert not any(line.startswith("  patronpay payments resolve all") for line in
                   out.splitlines())


@pytest.mark.parametrize("hostile", [
    "\x1b[31mred", "a\rb", "tab\there", "bell\x07", "del\x7f", "c1\x9b31m", "rtl\u202eevil",
    "line\u2028sep", "nul\x00",
])
def test_every_terminal_control_is_shown_escaped(hostile):
    for text in (printable(hostile), shorten(hostile), table(["H"], [[hostile]])):
        assert all(ch.isprintable() or ch == "\n" for ch in text), repr(text)
        assert "\n" not in text.replace(table(["H"], [["x"]]).split("\n")[0] + "\n", "", 1)


def test_bursar_commands_escape_the_words_alma_refused_with(tmp_path):
    """`patronpay bursar export` quotes Alma's errorMessage when the Analytics report is
    refused; an Alma (or a man in the middle) sending C1 controls, a right-to-left override or
    a newline there cannot act on the terminal or forge a line."""
    from starlette.applications import Starlette
    from starlette.responses import Response
    from starlette.routing import Route
    from support.bursar import BursarRig

    from patronpay.serving import ServerThread

    hostile = "bad path\u009b2J\u202e\nwhat to do\n  patronpay payments resolve all"

    async def refuse(request):
        body = ("<?xml version=\"1.0\" encoding=\"UTF-8\"?><web_service_result><errorsExist>"
                "true</errorsExist><errorList><error><errorCode>INTERNAL_SERVER_ERROR"
                f"</errorCode><errorMessage>{hostile}</errorMessage></error></errorList>"
                "</web_service_result>")
        return Response(body, status_code=400, media_type="application/xml")

    alma = ServerThread(Starlette(routes=[Route("/almaws/v1/analytics/reports", refuse)])).start()
    rig = BursarRig(tmp_path, run_worker=False)
    try:
        rig.env["PATRONPAY_ALMA_API_URL"] = alma.url + "/almaws/v1"
        status, out, err = rig.cli("export", "--day", "2025-03-01")
    finally:
        rig.close()
        alma.stop()
    assert status == 75 and out == ""
    assert "\u009b" not in err and "\u202e" not in err
    assert err.count("\n") == 1  # one line: the forged block stays inside it, escaped
    assert "Alma answered 400: INTERNAL_SERVER_ERROR: bad path\\x9b2J\\u202e\\nwhat to do\\n" in err
