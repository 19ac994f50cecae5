"""The sandbox CashNet's knobs for what real stores send that the well-behaved store does not
(docs/sandbox.md#cashnet-fault-knobs): fields the payer typed beside our echo, an upper-cased
custcode, amounts written for a person, an item code other than the one handed off,
windows-1252 bodies, and a sign-out URL that gets the result appended with a second `?`."""

from __future__ import annotations

from urllib.parse import parse_qsl, urlsplit

import httpx
import pytest
from support.cashnet import PAYMENT_ID, example, notifying

from sandbox.cashnet_store import StoreConfigError


@pytest.fixture
def sandbox(cashnet_server, receiver):
    return notifying(cashnet_server, receiver)


def open_checkout(sandbox, **changes: str | None) -> str:
    response = httpx.post(f"{sandbox.url}/LIBFINESTEST", data=example(**changes))
    assert "x-emulator-error" not in response.headers, response.text
    return response.headers["x-emulator-checkout"]


def pairs(body: bytes, encoding: str = "utf-8") -> list[tuple[str, str]]:
    return parse_qsl(body.decode("ascii"), keep_blank_values=True, encoding=encoding)


def test_typed_fields_come_beside_our_echo_under_upper_case_names(sandbox, receiver):
    result = sandbox.complete(open_checkout(sandbox), faults={"typed_fields": True})
    sent = pairs(receiver.bodies()[0])
    assert ("lname", "Rivera") in sent and ("LNAME", "Muñoz") in sent
    assert ("EMAIL", "typed.by.payer@example.org") in sent
    assert ["LNAME", "Muñoz"] in result["signout"]["fields"]  # the sign-out carries them too


def test_typed_fields_may_be_named(sandbox, receiver):
    sandbox.complete(open_checkout(sandbox), faults={"typed_fields": {"lname": "Rivera-Diaz"}})
    assert [value for name, value in pairs(receiver.bodies()[0]) if name == "lname"] == [
        "Rivera", "Rivera-Diaz"]


@pytest.mark.parametrize("echo, sent", [
    ("upper", "MKOWALSKI"), ("lower", "mkowalski"), ("padded", "  MKowalski "),
    ({"value": "900123456"}, "900123456"),
])
def test_the_custcode_echo_can_differ_from_what_was_sent(sandbox, receiver, echo, sent):
    sandbox.complete(open_checkout(sandbox, custcode="MKowalski"),
                     faults={"custcode_echo": echo})
    assert dict(pairs(receiver.bodies()[0]))["custcode"] == sent


@pytest.mark.parametrize("style, first, second", [
    ("plain", "12.50", "1080.00"), ("thousands", "12.50", "1,080.00"),
    ("dollar", "$12.50", "$1080.00"), ("dollar_thousands", "$12.50", "$1,080.00"),
])
def test_amounts_can_be_echoed_formatted_for_a_person(sandbox, receiver, style, first, second):
    sandbox.complete(open_checkout(sandbox), faults={"amount_format": style})
    sent = dict(pairs(receiver.bodies()[0]))
    assert (sent["amount1"], sent["amount2"]) == (first, second)
    assert b"%2C" in receiver.bodies()[0] or "thousands" not in style


def test_a_windows_1252_body_percent_encodes_what_the_payer_typed(sandbox, receiver):
    sandbox.complete(open_checkout(sandbox), faults={"typed_fields": True, "charset": "cp1252"})
    hit = receiver.hits[0]
    assert hit["headers"]["content-type"].endswith("charset=windows-1252")
    assert b"&LNAME=Mu%F1oz&" in hit["body"]
    assert ("LNAME", "Muñoz") in pairs(hit["body"], "cp1252")


@pytest.mark.parametrize("recode, first, second", [
    ("LIB-OTHER", "LIB-OTHER", "LIB-LOST"), ({"line": 2, "code": "LAW-FINES"}, "LIB-OVERDUE",
                                             "LAW-FINES"),
])
def test_an_item_code_can_be_echoed_other_than_handed_off(sandbox, receiver, recode, first,
                                                          second):
    sandbox.complete(open_checkout(sandbox), faults={"tamper_itemcode": recode})
    sent = dict(pairs(receiver.bodies()[0]))
    assert (sent["itemcode1"], sent["itemcode2"]) == (first, second)
    assert (sent["amount1"], sent["amount2"]) == ("12.50", "1080.00")


@pytest.mark.parametrize("method", ["POST", "GET"])
def test_the_sign_out_url_can_get_the_result_appended_with_a_second_question_mark(
        sandbox, method):
    sandbox.configure_store("LIBFINESTEST", signout_method=method)
    result = sandbox.complete(open_checkout(sandbox), faults={"signout_appends_query": True})
    url = result["signout"]["url"]
    assert url.endswith(f"/cashnet/return?p={PAYMENT_ID}?result=0&tx={result['tx']}")
    assert dict(parse_qsl(urlsplit(url).query))["p"] == f"{PAYMENT_ID}?result=0"


@pytest.mark.parametrize("faults", [
    {"typed_fields": "yes"}, {"typed_fields": {"": "x"}}, {"custcode_echo": "shout"},
    {"custcode_echo": {"value": 1}}, {"amount_format": "euro"},
    {"signout_appends_query": "true"}, {"tamper_itemcode": "two words"},
    {"tamper_itemcode": {"line": 0, "code": "X"}}, {"tamper_itemcode": {"item": "X"}},
])
def test_bad_knobs_are_refused(sandbox, faults):
    with pytest.raises(StoreConfigError):
        sandbox.set_faults("LIBFINESTEST", faults)
