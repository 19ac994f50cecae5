"""CashNet sandbox: hand-off entry points, parameter parsing and validation error codes
(docs/cashnet.md#checkout-hand-off, docs/sandbox.md#hand-off-validation).

Real loopback HTTP: the sandbox runs under uvicorn in a thread; each test starts from reset().
"""

from __future__ import annotations

from html.parser import HTMLParser

import httpx
import pytest
from support.cashnet import PAYMENT_ID, example

from patronpay.serving import ServerThread
from sandbox.cashnet import check_bind, is_loopback_host
from sandbox.cashnet_store import StoreConfigError

ONE_LINE = {"itemcnt": "1", "itemcode2": None, "amount2": None, "desc2": None, "qty2": None}


@pytest.fixture
def server(cashnet_server: ServerThread) -> ServerThread:
    """The sandbox CashNet, reset."""
    cashnet_server.cashnet.reset()  # type: ignore[attr-defined]
    return cashnet_server


@pytest.fixture
def sandbox(cashnet_server: ServerThread):
    return cashnet_server.cashnet  # type: ignore[attr-defined]


class _Attrs(HTMLParser):
    """Collect every value of one attribute in a page."""

    def __init__(self, attribute: str) -> None:
        super().__init__()
        self.attribute = attribute
        self.values: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.values += [value for name, value in attrs if name == self.attribute]


def attr_values(html: str, attribute: str) -> list[str]:
    parser = _Attrs(attribute)
    parser.feed(html)
    return parser.values


def assert_rejected(response: httpx.Response, sandbox, code: int) -> dict:
    """An error page: HTTP 200, exact code in header and attribute, checkout REJECTED."""
    assert response.status_code == 200
    assert response.headers["x-emulator-error"] == str(code)
    assert attr_values(response.text, "data-error-code") == [str(code)]
    checkout = sandbox.checkout(response.headers["x-emulator-checkout"])
    assert checkout["status"] == "REJECTED"
    assert checkout["error"]["code"] == code
    return checkout


# ----- entry points and parameter names -------------------------------------------------------


def test_post_handoff_opens_a_checkout_with_parsed_lines(server, sandbox):
    response = httpx.post(f"{server.url}/LIBFINESTEST", data=example())
    assert response.status_code == 200
    assert "x-emulator-error" not in response.headers
    cid = response.headers["x-emulator-checkout"]
    checkout = sandbox.checkout(cid)
    assert checkout["status"] == "OPEN"
    assert checkout["store"] == "LIBFINESTEST"
    assert checkout["entry"] == {"method": "POST", "path": "/LIBFINESTEST"}
    assert checkout["lines"] == [
        {"n": 1, "itemcode": "LIB-OVERDUE", "desc": "Overdue fine", "qty": 1, "gl": None,
         "amount": "12.50"},
        {"n": 2, "itemcode": "LIB-LOST", "desc": "Lost item replacement", "qty": 1, "gl": None,
         "amount": "1080.00"},
    ]
    assert checkout["total"] == "1092.50"
    assert checkout["refs"] == [{"item": 1, "slot": 1, "type": "PAYMENT_ID", "value": PAYMENT_ID}]
    assert checkout["custcode"] == "0012345678"
    assert checkout["prefill"] == {"name": "Ana Rivera", "email": "ana.rivera@example.edu"}
    assert checkout["signouturl"] == f"http://127.0.0.1:9/cashnet/return?p={PAYMENT_ID}"
    assert [c["cid"] for c in sandbox.checkouts(ref=PAYMENT_ID)] == [cid]
    assert sandbox.checkouts(ref="nothing") == []


def test_get_handoff_with_query_string(server, sandbox):
    response = httpx.get(f"{server.url}/LIBFINESTEST", params=example())
    checkout = sandbox.checkout(response.headers["x-emulator-checkout"])
    assert (checkout["status"], checkout["total"]) == ("OPEN", "1092.50")
    assert checkout["entry"]["method"] == "GET"


def test_store_names_and_paths_are_case_insensitive(server, sandbox):
    for path in ("/libfinestest", "/LibFinesTest", "/LIBFINESTEST/"):
        response = httpx.post(server.url + path, data=example())
        assert sandbox.checkout(response.headers["x-emulator-checkout"])["store"] == "LIBFINESTEST"
        assert "x-emulator-error" not in response.headers


@pytest.mark.parametrize("path", [
    "/404Handler/pageredirpost.aspx?virtual=LIBFINESTEST",
    "/404handler/pageredirpost.aspx?virtual=libfinestest",
    "/404HANDLER/PAGEREDIRPOST.ASPX?VIRTUAL=LibFinesTest",
])
def test_pageredir_entry_takes_virtual_from_the_query(server, sandbox, path):
    response = httpx.post(server.url + path, data=example())
    checkout = sandbox.checkout(response.headers["x-emulator-checkout"])
    assert (checkout["store"], checkout["status"]) == ("LIBFINESTEST", "OPEN")


def test_pageredir_entry_takes_virtual_from_the_form(server, sandbox):
    response = httpx.post(f"{server.url}/404Handler/pageredirpost.aspx",
                          data=example(virtual="libfinestest"))
    assert sandbox.checkout(response.headers["x-emulator-checkout"])["status"] == "OPEN"


def test_parameter_names_are_case_insensitive(server, sandbox):
    data = {"ITEMCNT": "1", "ItemCode1": "LIB-FINE", "AMOUNT1": "3.00", "Ref1Type1": "payment_id",
            "REF1VAL1": PAYMENT_ID, "signoutURL": "http://127.0.0.1:9/r", "LNAME": "Rivera",
            "payment_ref": PAYMENT_ID}
    response = httpx.post(f"{server.url}/LIBFINESTEST", data=data)
    checkout = sandbox.checkout(response.headers["x-emulator-checkout"])
    assert checkout["status"] == "OPEN"
    assert checkout["lines"][0]["itemcode"] == "LIB-FINE"
    assert checkout["refs"] == [{"item": 1, "slot": 1, "type": "payment_id", "value": PAYMENT_ID}]
    assert checkout["signouturl"] == "http://127.0.0.1:9/r"
    assert checkout["lname"] == "Rivera"
    assert checkout["txn_refs"] == [{"name": "PAYMENT_REF", "value": PAYMENT_ID}]


def test_unindexed_itemcode_and_amount_are_line_one(server, sandbox):
    response = httpx.post(f"{server.url}/LIBFINESTEST",
                          data={"itemcode": "LIB-DAMAGE", "amount": "7.25", "uid": "ignored"})
    checkout = sandbox.checkout(response.headers["x-emulator-checkout"])
    assert checkout["lines"] == [{"n": 1, "itemcode": "LIB-DAMAGE", "desc": "", "qty": 1,
                                  "gl": None, "amount": "7.25"}]
    assert checkout["total"] == "7.25"


def test_form_overrides_query_and_each_post_is_a_new_checkout(server, sandbox):
    url = f"{server.url}/LIBFINESTEST?amount1=99.00"
    first = httpx.post(url, data=example(**ONE_LINE))
    second = httpx.post(url, data=example(**ONE_LINE))
    assert first.headers["x-emulator-checkout"] != second.headers["x-emulator-checkout"]
    assert [c["total"] for c in sandbox.checkouts(ref=PAYMENT_ID)] == ["12.50", "12.50"]


def test_stored_price_is_used_when_the_amount_is_left_out(server, sandbox):
    sandbox.configure_store("LIBFINESTEST", item_codes={"LIB-CARD": {"price": "5.00"}})
    response = httpx.post(f"{server.url}/LIBFINESTEST", data={"itemcode1": "LIB-CARD", "qty1": "2"})
    checkout = sandbox.checkout(response.headers["x-emulator-checkout"])
    assert (checkout["lines"][0]["amount"], checkout["total"]) == ("10.00", "10.00")


# ----- validation error codes -----------------------------------------------------------------


def test_702_unknown_store(server, sandbox):
    checkout = assert_rejected(httpx.post(f"{server.url}/NOSUCHSTORE", data=example()), sandbox,
                               702)
    assert (checkout["store"], checkout["requested_store"]) == (None, "NOSUCHSTORE")


@pytest.mark.parametrize("query", ["", "?virtual="])
def test_702_pageredir_without_virtual(server, sandbox, query):
    response = httpx.post(f"{server.url}/404Handler/pageredirpost.aspx{query}", data=example())
    assert_rejected(response, sandbox, 702)


def test_701_disabled_store(server, sandbox):
    response = httpx.post(f"{server.url}/disabledstore", data=example(itemcode2="NOPE"))
    assert_rejected(response, sandbox, 701)  # the store check comes before the item check


def test_703_maintenance_fault(server, sandbox):
    sandbox.set_faults("libfinestest", {"status": 703})
    assert_rejected(httpx.post(f"{server.url}/LIBFINESTEST", data=example()), sandbox, 703)
    sandbox.set_faults("LIBFINESTEST", {})
    response = httpx.post(f"{server.url}/LIBFINESTEST", data=example())
    assert "x-emulator-error" not in response.headers


@pytest.mark.parametrize("status", [500, 503, "502"])
def test_5xx_outage_fault(server, sandbox, status):
    """The entry point itself fails: a bare 5xx (no page, no checkout), by either entry."""
    sandbox.set_faults("libfinestest", {"status": status})
    direct = httpx.get(f"{server.url}/LIBFINESTEST")
    redirected = httpx.post(f"{server.url}/404Handler/pageredirpost.aspx?virtual=libfinestest",
                            data=example())
    for response in (direct, redirected):
        assert response.status_code == int(status)
        assert "x-emulator-checkout" not in response.headers
    assert sandbox.checkouts() == []
    assert httpx.get(f"{server.url}/OTHERSTORE").status_code == 200  # other stores answer
    sandbox.set_faults("LIBFINESTEST", {})
    assert httpx.post(f"{server.url}/LIBFINESTEST", data=example()).status_code == 200


@pytest.mark.parametrize("status", [404, 200, 599, True, "x"])
def test_status_fault_takes_only_703_or_a_5xx(sandbox, status):
    with pytest.raises(StoreConfigError, match="status is one of 703, 500, 502, 503, 504"):
        sandbox.set_faults("LIBFINESTEST", {"status": status})


@pytest.mark.parametrize("changes", [
    {"itemcode2": "NOT-A-CODE"},
    {"itemcode2": "lib-lost"},  # codes are exact
    {"itemcode2": None},  # amount2 present without itemcode2
    {"itemcnt": "3"},  # line 3 missing
    {"itemcnt": "two"},
    {"itemcode2": None, "amount2": None, "desc2": None, "qty2": None, "itemcnt": None,
     "itemcode3": "LIB-FINE", "amount3": "1.00"},  # a gap at line 2
])
def test_4_invalid_or_missing_item_code(server, sandbox, changes):
    assert_rejected(httpx.post(f"{server.url}/LIBFINESTEST", data=example(**changes)), sandbox, 4)


def test_4_no_items_at_all(server, sandbox):
    assert_rejected(httpx.post(f"{server.url}/LIBFINESTEST", data={"custcode": "1"}), sandbox, 4)


@pytest.mark.parametrize("amount", ["", "1,250.00", "$5.00", "5.001", "abc", "5 .00", " 5.00"])
def test_25_invalid_or_missing_amount(server, sandbox, amount):
    response = httpx.post(f"{server.url}/LIBFINESTEST", data=example(amount2=amount))
    assert_rejected(response, sandbox, 25)


def test_25_amount_left_out_without_a_stored_price(server, sandbox):
    response = httpx.post(f"{server.url}/LIBFINESTEST", data=example(amount2=None))
    assert_rejected(response, sandbox, 25)


@pytest.mark.parametrize("amount", ["0.00", "0", "-5.00"])
def test_5_amount_not_positive(server, sandbox, amount):
    response = httpx.post(f"{server.url}/LIBFINESTEST", data=example(amount1=amount))
    assert_rejected(response, sandbox, 5)


def test_704_duplicate_unique_item(server, sandbox):
    sandbox.configure_store("LIBFINESTEST", item_codes={
        "LIB-FINE": {"unique": True}, "LIB-LOST": {}, "LIB-OVERDUE": {}})
    data = example(itemcode1="LIB-FINE", itemcode2="LIB-FINE")
    assert_rejected(httpx.post(f"{server.url}/LIBFINESTEST", data=data), sandbox, 704)
    data = example(itemcode1="LIB-LOST", itemcode2="LIB-LOST")  # not unique: fine
    assert "x-emulator-error" not in httpx.post(f"{server.url}/LIBFINESTEST", data=data).headers


def test_706_items_from_one_exclusive_group(server, sandbox):
    sandbox.configure_store("LIBFINESTEST", item_codes={
        "LIB-OVERDUE": {"exclusive_group": "fines"}, "LIB-LOST": {"exclusive_group": "fines"}})
    assert_rejected(httpx.post(f"{server.url}/LIBFINESTEST", data=example()), sandbox, 706)


@pytest.mark.parametrize("changes", [
    {"ref1type1": "NOT_A_TYPE"},
    {"ref1type2": "PAYMENT_ID", "ref1val2": "x", **ONE_LINE},  # a ref on a missing item
    {"ref1type1": None, "ref1val1": None, "ref2type1": "PAYMENT_ID", "ref2val1": "x"},  # gap
    {"ref1type1": None},  # a value without a type
])
def test_705_invalid_reference(server, sandbox, changes):
    response = httpx.post(f"{server.url}/LIBFINESTEST", data=example(**changes))
    assert_rejected(response, sandbox, 705)


def test_first_error_wins_in_spec_order(server, sandbox):
    data = example(itemcode1="NOPE", amount2="abc", ref1type1="NOT_A_TYPE")
    assert_rejected(httpx.post(f"{server.url}/LIBFINESTEST", data=data), sandbox, 4)
    data = example(amount2="abc", ref1type1="NOT_A_TYPE")
    assert_rejected(httpx.post(f"{server.url}/LIBFINESTEST", data=data), sandbox, 25)
    data = example(ref1type1="NOT_A_TYPE", custcode="9" * 300)
    assert_rejected(httpx.post(f"{server.url}/LIBFINESTEST", data=data), sandbox, 705)


def test_limits(server, sandbox):
    sandbox.configure_store("LIBFINESTEST", limits={"items": 1, "refs_per_item": 1})
    assert sandbox.store("LIBFINESTEST")["limits"] == {
        "items": 1, "refs_per_item": 1, "value_len": 255, "desc_len": 100}
    assert_rejected(httpx.post(f"{server.url}/LIBFINESTEST", data=example()), sandbox, 4)
    data = example(**ONE_LINE, ref2type1="NAME_G", ref2val1="Ana Rivera")
    assert_rejected(httpx.post(f"{server.url}/LIBFINESTEST", data=data), sandbox, 705)
    sandbox.reset()
    data = example(custcode="1" * 256)
    assert_rejected(httpx.post(f"{server.url}/LIBFINESTEST", data=data), sandbox, 25)
    data = example(desc1="d" * 101)
    assert_rejected(httpx.post(f"{server.url}/LIBFINESTEST", data=data), sandbox, 25)
    data = example(desc1="d" * 100, custcode="1" * 255)
    assert "x-emulator-error" not in httpx.post(f"{server.url}/LIBFINESTEST", data=data).headers


def test_error_page_escapes_and_explains(server, sandbox):
    response = httpx.post(f"{server.url}/LIBFINESTEST", data=example(itemcode1="<b>x</b>"))
    assert_rejected(response, sandbox, 4)
    assert "Error 4: Invalid or missing item code" in response.text
    assert "&lt;b&gt;x&lt;/b&gt;" in response.text and "<b>x</b>" not in response.text


# ----- store configuration and binding --------------------------------------------------------


def test_seed_stores(sandbox):
    store = sandbox.store("libfinestest")
    assert sorted(store["item_codes"]) == ["LAW-FINES", "LIB-DAMAGE", "LIB-FINE", "LIB-LOST",
                                           "LIB-OVERDUE"]
    assert all(item["price"] is None for item in store["item_codes"].values())
    assert (store["merchant"], store["station"], store["operator"]) == ("LIBFINES", "WEB",
                                                                        "WEBUSER")
    assert (store["pmtcode"], store["pmttype"], store["signout_method"]) == ("CC", "CC", "POST")
    assert store["ref_types"] == ["PAYMENT_ID", "NAME_G", "EMAIL_G"]
    assert store["txn_ref_types"] == ["PAYMENT_REF"]
    assert (store["notify_success_url"], store["notify_failure_url"]) == ("", "")
    assert (store["notify_on_cancel"], store["failedtx_on_cancel"]) == (True, True)
    assert store["fields"] == [
        "result", "respmessage", "tx", "failedtx", "batchno", "effdate", "merchant", "station",
        "operator", "pmtcode", "pmttype", "custcode", "lname", "itemcnt", "lines", "refs",
        "txn_refs", "ccerror"]
    assert store["limits"] == {"items": 9, "refs_per_item": 9, "value_len": 255, "desc_len": 100}
    assert store["tx_start"] == 100000
    assert sandbox.store("DISABLEDSTORE")["enabled"] is False


def test_store_api_creates_merges_and_refuses_bad_settings(server, sandbox):
    response = httpx.put(f"{server.url}/_emulator/stores/PSYCHCONF",
                         json={"merchant": "PSYCH", "item_codes": ["PSYCH-CONF"]})
    assert response.status_code == 200
    assert response.json()["item_codes"] == {"PSYCH-CONF": {
        "price": None, "gl": None, "unique": False, "exclusive_group": None}}
    httpx.put(f"{server.url}/_emulator/stores/psychconf", json={"signout_method": "get"})
    assert sandbox.store("PSYCHCONF")["signout_method"] == "GET"
    assert sandbox.store("PSYCHCONF")["merchant"] == "PSYCH"
    response = httpx.post(f"{server.url}/psychconf", data={"itemcode1": "PSYCH-CONF",
                                                           "amount1": "40.00"})
    assert sandbox.checkout(response.headers["x-emulator-checkout"])["store"] == "PSYCHCONF"
    bad = httpx.put(f"{server.url}/_emulator/stores/PSYCHCONF", json={"signout_method": "PUT"})
    assert bad.status_code == 400
    assert bad.json()["error"]["code"] == "bad_request"
    unknown = httpx.put(f"{server.url}/_emulator/stores/PSYCHCONF", json={"colour": "red"})
    assert unknown.json() == {"error": {"code": "bad_request",
                                        "message": "store PSYCHCONF: unknown setting(s) colour"}}
    with pytest.raises(StoreConfigError):
        sandbox.configure_store("_emulator", merchant="X")
    with pytest.raises(StoreConfigError):
        sandbox.set_faults("LIBFINESTEST", {"explode": True})
    faults = httpx.put(f"{server.url}/_emulator/stores/LIBFINESTEST/faults",
                       json={"duplicate": 2, "source_address": "8.8.8.8"})
    assert faults.status_code == 400
    assert httpx.get(f"{server.url}/_emulator/stores/NOPE").status_code == 404


ANY_ADDRESS = "0.0.0.0"  # noqa: S104 - the address under test, never bound here


def test_bind_check_refuses_non_loopback_unless_allowed():
    assert is_loopback_host("127.0.0.1") and is_loopback_host("::1")
    assert is_loopback_host("localhost") and is_loopback_host("127.0.0.2")
    assert not is_loopback_host(ANY_ADDRESS) and not is_loopback_host("example.edu")
    check_bind("127.0.0.1")
    check_bind(ANY_ADDRESS, allow_remote=True)
    with pytest.raises(ValueError, match="--allow-remote"):
        check_bind(ANY_ADDRESS)
