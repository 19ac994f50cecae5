"""What real campuses' CashNet stores send, over loopback against the sandbox's modes
(docs/cashnet.md#notification-checks, docs/deploy.md#cashnet-store-set-up): item codes by owning
library, the custcode the bursar wants and its echo in another case, fields the payer typed
beside our echo, amounts written for a person, windows-1252 bodies, and a sign-out whose `p`
arrives with CashNet's own query glued on."""

from __future__ import annotations

import csv
import io
import os
from datetime import UTC, datetime
from decimal import Decimal
from urllib.parse import parse_qs, parse_qsl, urlencode, urlsplit

import httpx
import pytest

from patronpay.cli import main
from patronpay.demo import ITEM_CODES, sandbox_environment

D = Decimal
LAW_RULES = ITEM_CODES + ",LAW/*=LAW-FINES"
DAMAGED_AT_LAW = "7730020010004146"


@pytest.fixture
def export(monkeypatch, capsys):
    """`patronpay payments export` of today, in-process, against a deployment's ledger."""

    def run(d, *options):
        for name in [n for n in os.environ if n.startswith("PATRONPAY_")]:
            monkeypatch.delenv(name)
        env = sandbox_environment(d.settings.public_url, d.sandbox.url, d.settings.database,
                                  d.settings.cashnet_postback_token)
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        day = datetime.now(UTC).date().isoformat()
        assert main(["payments", "export", "--since", day, "--until", day, *options]) == 0
        return list(csv.DictReader(io.StringIO(capsys.readouterr().out)))

    return run


def sandbox_lines(d, payment_id):
    (checkout,) = d.cashnet.checkouts(ref=payment_id)
    return [(line["itemcode"], line["amount"]) for line in checkout["lines"]]


# --- item 3: item codes by owning library and fee type ---


def test_a_law_library_fee_is_charged_under_its_own_item_code(deploy, export):
    d = deploy(cashnet_item_codes=LAW_RULES)
    payment_id, cid = d.checkout("mkowalski")  # lost (MAIN), overdue (SCI), damaged (LAW)
    assert sandbox_lines(d, payment_id) == [
        ("LIB-LOST", "60.00"), ("LIB-OVERDUE", "4.75"), ("LAW-FINES", "12.50")]
    d.cashnet.complete(cid)
    payment = d.wait_for_state(payment_id, "posted")
    assert [(a.fee_id, a.state) for a in payment.allocations if a.fee_id == DAMAGED_AT_LAW] == [
        (DAMAGED_AT_LAW, "posted")]
    rows = export(d, "--lines")
    assert [(r["line"], r["item_code"], r["library"], r["amount"]) for r in rows] == [
        ("1", "LIB-LOST", "MAIN", "60.00"), ("2", "LIB-OVERDUE", "SCI", "4.75"),
        ("3", "LAW-FINES", "LAW", "12.50")]
    assert {r["payment_id"] for r in rows} == {payment_id}
    assert {r["cashnet_tx"] for r in rows} == {payment.cashnet_tx}
    assert [r["payment_id"] for r in export(d)] == [payment_id]  # per payment, as before


def test_a_library_and_type_rule_beats_the_library_rule_and_gl_is_sent(deploy):
    d = deploy(cashnet_item_codes=LAW_RULES + ",LAW/DAMAGEDITEMFINE=LIB-DAMAGE",
               cashnet_gl_codes="LIB-DAMAGE=1-2345-LAW")
    payment_id, cid = d.checkout("mkowalski")
    assert sandbox_lines(d, payment_id)[2] == ("LIB-DAMAGE", "12.50")
    (checkout,) = d.cashnet.checkouts(ref=payment_id)
    assert checkout["request"]["gl3"] == "1-2345-LAW"
    assert "gl1" not in checkout["request"]
    d.cashnet.complete(cid)
    d.wait_for_state(payment_id, "posted")


def test_lines_of_several_libraries_sharing_a_code_export_one_row_per_library(deploy, export):
    d = deploy(cashnet_item_codes="LAW/*=LAW-FINES")  # everything else: LIB-FINE
    payment_id, cid = d.checkout("mkowalski")
    assert sandbox_lines(d, payment_id) == [("LIB-FINE", "64.75"), ("LAW-FINES", "12.50")]
    d.cashnet.complete(cid)
    d.wait_for_state(payment_id, "posted")
    rows = export(d, "--lines")
    assert [(r["line"], r["item_code"], r["library"], r["amount"]) for r in rows] == [
        ("1", "LIB-FINE", "MAIN", "60.00"), ("1", "LIB-FINE", "SCI", "4.75"),
        ("2", "LAW-FINES", "LAW", "12.50")]


# --- item 4: custcode ---


def test_the_custcode_can_be_the_campus_id(deploy):
    d = deploy(cashnet_custcode="UNIV_ID")
    payment_id, cid = d.checkout("mkowalski")
    assert d.cashnet.checkout(cid)["custcode"] == "900123456"
    assert d.ledger.payment(payment_id).custcode == "900123456"
    d.cashnet.complete(cid)
    assert d.wait_for_state(payment_id, "posted").review == ""


def test_a_patron_without_that_identifier_sends_the_primary_id_and_none_sends_nothing(deploy):
    d = deploy(cashnet_custcode="UNIV_ID")
    _, cid = d.checkout("jsmith")  # only a barcode
    assert d.cashnet.checkout(cid)["custcode"] == "jsmith"
    d = deploy(cashnet_custcode="none")
    payment_id, cid = d.checkout("jsmith")
    assert d.cashnet.checkout(cid)["custcode"] is None
    d.cashnet.complete(cid, faults={"custcode_echo": {"value": "typed-by-someone"}})
    assert d.wait_for_state(payment_id, "posted").review == ""


@pytest.mark.parametrize("echo", ["upper", "padded"])
def test_an_upper_cased_or_padded_custcode_echo_still_posts(deploy, echo):
    d = deploy()
    payment_id, cid = d.checkout("mkowalski")
    completion = d.cashnet.complete(cid, faults={"custcode_echo": echo})
    assert dict(completion["fields"])["custcode"].strip() == "MKOWALSKI" or echo == "padded"
    payment = d.wait_for_state(payment_id, "posted")
    assert (payment.reason, payment.review) == ("", "")
    assert len(d.alma_calls("POST", "pay")) == 3


def test_a_custcode_echo_that_still_differs_posts_and_is_flagged_for_review(deploy):
    d = deploy()
    payment_id, cid = d.checkout("mkowalski")
    d.cashnet.complete(cid, faults={"custcode_echo": {"value": "900999999"}})
    payment = d.wait_for_state(payment_id, "posted")
    assert payment.review == "custcode '900999999' echoed, 'mkowalski' issued"
    assert len(d.alma_calls("POST", "pay")) == 3


# --- item 5: repeated fields ---


def test_fields_the_payer_typed_beside_our_echo_do_not_stop_posting(deploy):
    d = deploy()
    payment_id, cid = d.checkout("mkowalski")
    d.cashnet.complete(cid, faults={"typed_fields": True})
    payment = d.wait_for_state(payment_id, "posted")
    assert (payment.reason, payment.review) == ("", "")
    (notice,) = d.ledger.notifications(payment_id)
    assert not {"lname", "email"} & set(notice["fields"])  # never recorded


def test_a_conflicting_decision_field_stops_posting_and_says_which(deploy):
    d = deploy()
    payment_id, _ = d.checkout("mkowalski", amount="62.00")
    payment = d.ledger.payment(payment_id)
    pairs = [("result", "0"), ("tx", "515151"), ("itemcnt", str(len(payment.lines))),
             ("custcode", "mkowalski"), ("ref1type1", "PAYMENT_ID"), ("ref1val1", payment_id)]
    for line in payment.lines:
        pairs += [(f"itemcode{line.number}", line.item_code),
                  (f"amount{line.number}", f"{line.amount:.2f}")]
    pairs += [("LNAME", "Kowalska"), ("AMOUNT1", "0.01")]
    url = f"{d.url}/cashnet/postback/{d.settings.cashnet_postback_token}"
    response = httpx.post(url, content=urlencode(pairs),
                          headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert response.status_code == 200
    assert d.ledger.payment(payment_id).reason == "conflicting values for amount1"
    assert d.alma_calls("POST") == []


def test_an_item_code_mismatch_is_not_called_an_amount_mismatch(deploy):
    d = deploy(cashnet_item_codes=LAW_RULES)
    payment_id, cid = d.checkout("mkowalski")
    d.cashnet.complete(cid, faults={"custcode_echo": "upper", "uppercase_names": True,
                                    "tamper_amount": {"line": 3, "amount": "12.49"}})
    assert d.wait_for_state(payment_id, "attention").reason == \
        "amount mismatch: line 3: amount 12.49, issued 12.50"


def test_an_echoed_item_code_that_differs_is_called_an_item_code_mismatch(deploy):
    d = deploy(cashnet_item_codes=LAW_RULES)
    payment_id, cid = d.checkout("mkowalski")
    d.cashnet.complete(cid, faults={"tamper_itemcode": {"line": 3, "code": "LIB-FINE"}})
    assert d.wait_for_state(payment_id, "attention").reason == \
        "item code mismatch: line 3: item code 'LIB-FINE', issued 'LAW-FINES'"
    assert d.alma_calls("POST") == []


# --- item 7: echo formats ---


def test_amounts_echoed_with_separators_and_dollar_signs_post(deploy):
    d = deploy()
    payment_id, cid = d.checkout("tlee")  # 1250.00
    completion = d.cashnet.complete(cid, faults={"amount_format": "dollar_thousands"})
    assert dict(completion["fields"])["amount1"] == "$1,250.00"
    assert d.wait_for_state(payment_id, "posted").amount == D("1250.00")


def test_a_windows_1252_body_with_a_typed_name_posts(deploy):
    d = deploy()
    payment_id, cid = d.checkout("mkowalski")
    completion = d.cashnet.complete(cid, faults={"charset": "cp1252", "typed_fields": True})
    assert b"LNAME=Mu%F1oz" in d.cashnet.notifications(cid)[0]["body"]
    assert completion["notifications"][0]["status"] == 200
    d.wait_for_state(payment_id, "posted")


@pytest.mark.parametrize("method", ["POST", "GET"])
def test_a_sign_out_whose_p_carries_cashnets_query_still_finds_the_payment(deploy, method):
    d = deploy()
    d.cashnet.configure_store("LIBFINESTEST", signout_method=method)
    payment_id, cid = d.checkout("mkowalski")
    completion = d.cashnet.complete(cid, faults={"signout_appends_query": True,
                                                 "missing_refs": True, "apply_to": "signout"})
    assert f"p={payment_id}?result=0" in completion["signout"]["url"]
    signout = completion["signout"]
    if method == "GET":  # as a browser submits the receipt's GET form: the URL's query as fields
        parts = urlsplit(signout["url"])
        query = parse_qsl(parts.query) + [tuple(pair) for pair in signout["fields"]]
        response = httpx.get(f"{parts.scheme}://{parts.netloc}{parts.path}?{urlencode(query)}")
    else:
        response = d.follow_signout(completion)
    assert found_by_return(d, response) == payment_id


def found_by_return(d, response) -> str:
    """The payment the return's redirect shows (by receipt token, or named outright)."""
    assert response.status_code == 303, response.text
    location = response.headers["location"]
    if location.startswith("/receipt.html?r="):
        return d.receipt(response)["id"]
    return parse_qs(urlsplit(location).query).get("p", [""])[0]
