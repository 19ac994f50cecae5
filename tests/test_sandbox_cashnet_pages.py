"""CashNet sandbox: the patron's pages driven through real HTTP with the pages' own forms.

Checkout page -> Pay / Decline / Cancel -> receipt -> "Sign out" form, as a browser would do it:
every request below goes to an action URL read out of the previous page's HTML.
"""

from __future__ import annotations

import json
from html.parser import HTMLParser
from urllib.parse import parse_qsl, urlencode, urljoin

import httpx
import pytest
from starlette.applications import Starlette
from starlette.routing import Mount
from support.cashnet import PAYMENT_ID, TOKEN, Receiver, example, notifying

from patronpay.serving import ServerThread
from sandbox.cashnet import create_app

CARD = {"card_number": "4000056655665556", "card_expiry": "EXPSENTINEL",
        "card_cvv": "CVVSENTINEL", "payer_name": "NAMESENTINEL"}


# ----- an HTML form reader -------------------------------------------------------------------


class Page(HTMLParser):
    """The forms, scripts, links and data attributes of one page."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.forms: list[dict] = []
        self.scripts: list[dict] = []
        self.links: list[dict] = []
        self.data: dict[str, list[str]] = {}
        self.rows: list[list[str]] = []
        self._form = self._select = self._script = self._cell = None
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        a = {name: value or "" for name, value in attrs}
        for name, value in a.items():
            if name.startswith("data-"):
                self.data.setdefault(name, []).append(value)
        if tag == "form":
            self._form = {"attrs": a, "action": a.get("action", ""),
                          "method": a.get("method", "get").upper(), "inputs": [], "buttons": [],
                          "selects": {}}
            self.forms.append(self._form)
        elif tag == "input" and self._form is not None:
            self._form["inputs"].append(a)
        elif tag == "button" and self._form is not None:
            self._form["buttons"].append(a)
        elif tag == "select" and self._form is not None:
            self._select = a["name"]
            self._form["selects"][self._select] = {"options": [], "selected": None}
        elif tag == "option" and self._select:
            select = self._form["selects"][self._select]
            select["options"].append(a["value"])
            if "selected" in a or select["selected"] is None:
                select["selected"] = a["value"]
        elif tag == "script":
            self._script = {"attrs": a, "text": ""}
            self.scripts.append(self._script)
        elif tag == "link":
            self.links.append(a)
        elif tag == "tr":
            self.rows.append([])
        elif tag in ("td", "th"):
            self._cell = ""

    def handle_endtag(self, tag):
        if tag == "form":
            self._form = None
        elif tag == "select":
            self._select = None
        elif tag == "script":
            self._script = None
        elif tag in ("td", "th") and self._cell is not None:
            self.rows[-1].append(self._cell.strip())
            self._cell = None

    def handle_data(self, data):
        if self._script is not None:
            self._script["text"] += data
        if self._cell is not None:
            self._cell += data

    def form(self, **attrs: str) -> dict:
        [form] = [f for f in self.forms if all(f["attrs"].get(k) == v for k, v in attrs.items())]
        return form


def fields_of(form: dict, button: str | None = None, typed: dict | None = None,
              select: dict | None = None) -> list[tuple[str, str]]:
    """What a browser submits: inputs (typed text over defaults), selects, the clicked button."""
    typed, select = typed or {}, select or {}
    pairs = [(i["name"], typed.get(i["name"], i.get("value", ""))) for i in form["inputs"]
             if i.get("name")]
    pairs += [(name, select.get(name, s["selected"])) for name, s in form["selects"].items()]
    if button is not None:
        [clicked] = [b for b in form["buttons"] if b.get("value") == button]
        pairs.append((clicked["name"], clicked["value"]))
    return pairs


def submit(base: str, form: dict, **kwargs) -> httpx.Response:
    url = urljoin(base, form["action"])
    pairs = fields_of(form, **kwargs)
    if form["method"] == "GET":
        return httpx.get(url, params=pairs)
    return httpx.post(url, content=urlencode(pairs).encode(),
                      headers={"Content-Type": "application/x-www-form-urlencoded"})


# ----- fixtures -------------------------------------------------------------------------------


@pytest.fixture
def sandbox(cashnet_server, receiver):
    """The sandbox with LIBFINESTEST notifying the receiver, on a pinned business day."""
    return notifying(cashnet_server, receiver)


def checkout_page(sandbox, receiver, **changes) -> tuple[str, httpx.Response]:
    response = httpx.post(f"{sandbox.url}/LIBFINESTEST", data=example(receiver.url, **changes))
    assert response.status_code == 200 and "x-emulator-error" not in response.headers
    return response.headers["x-emulator-checkout"], response


def notified_results(receiver) -> list[str]:
    return [dict(parse_qsl(hit["body"].decode()))["result"] for hit in receiver.snapshot()
            if "/postback/" in hit["path"]]


# ----- the checkout page ----------------------------------------------------------------------


def test_checkout_page_shows_lines_total_prefill_and_three_buttons(sandbox, receiver):
    cid, response = checkout_page(sandbox, receiver)
    page = Page(response.text)
    assert page.rows == [
        ["Item code", "Description", "Qty", "Amount"],
        ["LIB-OVERDUE", "Overdue fine", "1", "$12.50"],
        ["LIB-LOST", "Lost item replacement", "1", "$1080.00"],
        ["Total", "$1092.50"],
    ]
    form = page.form(method="post")
    assert form["action"] == f"/_checkout/{cid}/action"
    assert [(b["name"], b["value"]) for b in form["buttons"]] == [
        ("action", "pay"), ("action", "decline"), ("action", "cancel")]
    assert form["selects"] == {"code": {"options": ["7", "209", "232"], "selected": "209"}}
    values = {i["name"]: i.get("value", "") for i in form["inputs"]}
    assert values == {"payer_name": "Ana Rivera", "payer_email": "ana.rivera@example.edu",
                      "card_number": "", "card_expiry": "", "card_cvv": ""}
    assert 'for="card-number"' in response.text and 'id="card-number"' in response.text
    assert "<main" in response.text and "<h1>Checkout for LIBFINESTEST</h1>" in response.text


def test_prefill_from_globals(sandbox, receiver):
    cid, response = checkout_page(sandbox, receiver, fname=None, lname=None, email=None,
                                  ref2type1="NAME_G", ref2val1="A. Rivera",
                                  ref3type1="EMAIL_G", ref3val1="ar@example.edu")
    values = {i["name"]: i.get("value") for i in Page(response.text).forms[0]["inputs"]}
    assert (values["payer_name"], values["payer_email"]) == ("A. Rivera", "ar@example.edu")


def test_pay_through_the_page_notifies_before_the_receipt(sandbox, receiver):
    cid, response = checkout_page(sandbox, receiver)
    action = submit(sandbox.url, Page(response.text).forms[0], button="pay", typed=CARD)
    assert action.status_code == 303
    assert action.headers["location"] == f"/_checkout/{cid}/receipt"
    assert notified_results(receiver) == ["0"]  # already delivered when the redirect came back
    receipt = httpx.get(urljoin(sandbox.url, action.headers["location"]))
    page = Page(receipt.text)
    assert "<h1>Payment received</h1>" in receipt.text
    assert page.data["data-tx"] == ["100000"] and page.data["data-result-code"] == ["0"]
    assert "<dd>3/14/2025</dd>" in receipt.text and "SUCCESS" in receipt.text
    assert page.rows[-1] == ["Total", "$1092.50"]
    assert ["LIB-LOST", "Lost item replacement", "1", "$1080.00"] in page.rows


def test_get_handoff_then_pay(sandbox, receiver):
    response = httpx.get(f"{sandbox.url}/libfinestest", params=example(receiver.url))
    action = submit(sandbox.url, Page(response.text).forms[0], button="pay")
    assert action.status_code == 303 and notified_results(receiver) == ["0"]


def test_decline_comes_back_with_the_error_and_allows_another_try(sandbox, receiver):
    cid, response = checkout_page(sandbox, receiver)
    declined = submit(sandbox.url, Page(response.text).forms[0], button="decline", typed=CARD)
    assert declined.status_code == 200
    page = Page(declined.text)
    assert (page.data["data-result-code"], page.data["data-failedtx"]) == (["209"], ["100000"])
    assert 'role="alert"' in declined.text and "Error 209: Credit card error" in declined.text
    again = submit(sandbox.url, page.forms[0], button="decline", select={"code": "7"})
    page = Page(again.text)
    assert (page.data["data-result-code"], page.data["data-failedtx"]) == (["7"], ["100001"])
    paid = submit(sandbox.url, page.forms[0], button="pay")
    assert paid.status_code == 303
    assert notified_results(receiver) == ["209", "7", "0"]
    checkout = sandbox.checkout(cid)
    assert (checkout["status"], checkout["tx"], checkout["failedtx"]) == (
        "PAID", "100002", ["100000", "100001"])


def test_cancel_through_the_page(sandbox, receiver):
    cid, response = checkout_page(sandbox, receiver)
    cancelled = submit(sandbox.url, Page(response.text).forms[0], button="cancel")
    receipt = httpx.get(urljoin(sandbox.url, cancelled.headers["location"]))
    page = Page(receipt.text)
    assert "<h1>Payment cancelled</h1>" in receipt.text
    assert (page.data["data-result-code"], page.data["data-failedtx"]) == (["902"], ["100000"])
    assert notified_results(receiver) == ["902"]
    assert sandbox.checkout(cid)["status"] == "CANCELLED"


def test_a_paid_checkout_is_final(sandbox, receiver):
    cid, response = checkout_page(sandbox, receiver)
    form = Page(response.text).forms[0]
    submit(sandbox.url, form, button="pay")
    again = submit(sandbox.url, form, button="cancel")
    assert (again.status_code, again.headers["location"]) == (303, f"/_checkout/{cid}/receipt")
    assert notified_results(receiver) == ["0"]
    assert sandbox.checkout(cid)["status"] == "PAID"


def test_posting_the_same_handoff_again_makes_a_new_checkout(sandbox, receiver):
    first, response1 = checkout_page(sandbox, receiver)
    second, response2 = checkout_page(sandbox, receiver)
    submit(sandbox.url, Page(response1.text).forms[0], button="pay")
    submit(sandbox.url, Page(response2.text).forms[0], button="pay")
    assert first != second
    assert [c["tx"] for c in sandbox.checkouts(ref=PAYMENT_ID)] == ["100000", "100001"]
    assert notified_results(receiver) == ["0", "0"]


def test_page_errors(sandbox, receiver):
    cid, response = checkout_page(sandbox, receiver)
    form = Page(response.text).forms[0]
    receipt = httpx.get(f"{sandbox.url}/_checkout/{cid}/receipt")
    assert receipt.status_code == 404 and "No receipt yet" in receipt.text
    bad = submit(sandbox.url, form, button="decline", select={"code": "999"})
    assert bad.status_code == 400
    assert httpx.post(f"{sandbox.url}/_checkout/cn0000/action", data={"action": "pay"}
                      ).status_code == 404
    rejected = httpx.post(f"{sandbox.url}/LIBFINESTEST", data={"itemcode1": "NOPE"})
    rejected_cid = rejected.headers["x-emulator-checkout"]
    assert httpx.post(f"{sandbox.url}/_checkout/{rejected_cid}/action",
                      data={"action": "pay"}).status_code == 409
    assert notified_results(receiver) == []


# ----- the receipt's sign-out form ------------------------------------------------------------


def test_signout_form_posts_the_field_set_to_signouturl(sandbox, receiver):
    cid, response = checkout_page(sandbox, receiver, payment_ref=PAYMENT_ID)
    action = submit(sandbox.url, Page(response.text).forms[0], button="pay")
    receipt = Page(httpx.get(urljoin(sandbox.url, action.headers["location"])).text)
    form = receipt.form(id="signout")
    assert form["method"] == "POST"
    assert form["action"] == f"{receiver.url}/cashnet/return?p={PAYMENT_ID}"
    expected = [
        ("result", "0"), ("respmessage", "SUCCESS"), ("tx", "100000"), ("batchno", "1"),
        ("effdate", "3/14/2025"), ("merchant", "LIBFINES"), ("station", "WEB"),
        ("operator", "WEBUSER"), ("pmtcode", "CC"), ("pmttype", "CC"),
        ("custcode", "0012345678"), ("lname", "Rivera"), ("itemcnt", "2"),
        ("itemcode1", "LIB-OVERDUE"), ("amount1", "12.50"), ("qty1", "1"),
        ("itemcode2", "LIB-LOST"), ("amount2", "1080.00"), ("qty2", "1"),
        ("ref1type1", "PAYMENT_ID"), ("ref1val1", PAYMENT_ID), ("PAYMENT_REF", PAYMENT_ID),
    ]
    assert fields_of(form) == expected
    assert all(i["type"] == "hidden" for i in form["inputs"])
    assert [b.get("type") for b in form["buttons"]] == ["submit"]
    assert sandbox.signouts(cid) == [{
        "id": 1, "cid": cid, "store": "LIBFINESTEST",
        "url": f"{receiver.url}/cashnet/return?p={PAYMENT_ID}", "method": "POST",
        "fields": [list(pair) for pair in expected],
        "rendered_at": sandbox.signouts(cid)[0]["rendered_at"],
    }]
    returned = submit(sandbox.url, form)
    assert returned.status_code == 200
    hit = receiver.snapshot()[-1]
    assert (hit["method"], hit["path"], hit["query"]) == ("POST", "/cashnet/return",
                                                          f"p={PAYMENT_ID}")
    assert parse_qsl(hit["body"].decode()) == expected


def test_signout_with_get_keeps_the_p_parameter(sandbox, receiver):
    sandbox.configure_store("LIBFINESTEST", signout_method="GET")
    cid, response = checkout_page(sandbox, receiver)
    action = submit(sandbox.url, Page(response.text).forms[0], button="pay")
    form = Page(httpx.get(urljoin(sandbox.url, action.headers["location"])).text).form(id="signout")
    assert (form["method"], form["action"]) == ("GET", f"{receiver.url}/cashnet/return")
    assert fields_of(form)[:3] == [("p", PAYMENT_ID), ("result", "0"), ("respmessage", "SUCCESS")]
    submit(sandbox.url, form)
    hit = receiver.snapshot()[-1]
    assert (hit["method"], hit["path"]) == ("GET", "/cashnet/return")
    assert hit["query"].startswith(f"p={PAYMENT_ID}&result=0&respmessage=SUCCESS&tx=100000")
    assert sandbox.signouts(cid)[0]["method"] == "GET"


def test_store_signout_urls_for_success_and_failure(sandbox, receiver):
    sandbox.configure_store("LIBFINESTEST", signout_url="http://127.0.0.1:9/ok",
                            signout_failure_url="http://127.0.0.1:9/failed")
    urls = []
    for button in ("pay", "cancel"):
        cid, response = checkout_page(sandbox, receiver, signouturl=None)
        action = submit(sandbox.url, Page(response.text).forms[0], button=button)
        receipt = Page(httpx.get(urljoin(sandbox.url, action.headers["location"])).text)
        urls.append(receipt.form(id="signout")["action"])
    assert urls == ["http://127.0.0.1:9/ok", "http://127.0.0.1:9/failed"]


def test_no_signout_url_means_no_signout_button(sandbox, receiver):
    cid, response = checkout_page(sandbox, receiver, signouturl=None)
    action = submit(sandbox.url, Page(response.text).forms[0], button="pay")
    receipt = httpx.get(urljoin(sandbox.url, action.headers["location"]))
    assert Page(receipt.text).forms == []
    assert "no sign-out address" in receipt.text
    assert sandbox.signouts(cid) == []


def test_auto_signout_uses_a_served_script_not_an_inline_one(sandbox, receiver):
    sandbox.configure_store("LIBFINESTEST", auto_signout_s=2)
    cid, response = checkout_page(sandbox, receiver)
    action = submit(sandbox.url, Page(response.text).forms[0], button="pay")
    receipt = Page(httpx.get(urljoin(sandbox.url, action.headers["location"])).text)
    assert receipt.form(id="signout")["attrs"]["data-auto-signout"] == "2"
    [script] = receipt.scripts
    assert script["attrs"]["src"] == "/_emulator/static/cashnet-signout.js"
    assert script["text"].strip() == ""
    js = httpx.get(sandbox.url + script["attrs"]["src"])
    assert js.headers["content-type"].startswith("text/javascript")
    assert "form.submit()" in js.text and "data-auto-signout" in js.text


def test_pages_load_nothing_external_and_run_no_inline_script(sandbox, receiver):
    cid, response = checkout_page(sandbox, receiver)
    declined = submit(sandbox.url, Page(response.text).forms[0], button="decline")
    error = httpx.post(f"{sandbox.url}/NOPE", data={})
    action = submit(sandbox.url, Page(declined.text).forms[0], button="pay")
    receipt = httpx.get(urljoin(sandbox.url, action.headers["location"]))
    for page_response in (response, declined, error, receipt):
        page = Page(page_response.text)
        csp = page_response.headers["content-security-policy"]
        assert "script-src 'self'" in csp and "default-src 'none'" in csp
        assert all(s["attrs"].get("src", "").startswith("/") and not s["text"].strip()
                   for s in page.scripts)
        assert [link["href"] for link in page.links] == ["/_emulator/static/cashnet.css"]
        assert 'style="' not in page_response.text and "<style" not in page_response.text
        assert page_response.headers["cache-control"] == "no-store"
    css = httpx.get(sandbox.url + "/_emulator/static/cashnet.css")
    assert css.status_code == 200 and css.headers["content-type"].startswith("text/css")


def test_card_fields_never_appear_in_any_record(sandbox, receiver):
    cid, response = checkout_page(sandbox, receiver)
    declined = submit(sandbox.url, Page(response.text).forms[0], button="decline", typed=CARD)
    action = submit(sandbox.url, Page(declined.text).forms[0], button="pay", typed=CARD)
    httpx.get(urljoin(sandbox.url, action.headers["location"]))
    everything = json.dumps([
        sandbox.checkouts(), sandbox.notifications(), sandbox.signouts(), sandbox.stores(),
        httpx.get(f"{sandbox.url}/_emulator/checkouts").json(),
        httpx.get(f"{sandbox.url}/_emulator/notifications").json(),
        httpx.get(f"{sandbox.url}/_emulator/signouts").json(),
        [hit["body"].decode() + hit["query"] for hit in receiver.snapshot()],
    ], default=repr)
    assert notified_results(receiver) == ["209", "0"]
    for secret in CARD.values():
        assert secret not in everything


# ----- mounted under a prefix, sharing one event loop with the "proxy" --------------------------


def test_mounted_under_cashnet_in_the_same_loop_as_the_proxy():
    """A blocking client would deadlock here: the receiver shares the sandbox's event loop."""
    cashnet = create_app()
    receiver = Receiver()
    combined = Starlette(routes=[Mount("/cashnet", app=cashnet), Mount("/proxy", app=receiver.app)])
    sandbox = cashnet.state.cashnet
    with ServerThread(combined) as server:
        sandbox.configure_store("LIBFINESTEST",
                                notify_success_url=f"{server.url}/proxy/cashnet/postback/{TOKEN}",
                                signout_url=f"{server.url}/proxy/cashnet/return")
        entry = httpx.post(f"{server.url}/cashnet/LibFinesTest",
                           data={"itemcode1": "LIB-FINE", "amount1": "4.00"})
        cid = entry.headers["x-emulator-checkout"]
        page = Page(entry.text)
        assert page.links[0]["href"] == "/cashnet/_emulator/static/cashnet.css"
        assert httpx.get(server.url + page.links[0]["href"]).status_code == 200
        form = page.forms[0]
        assert form["action"] == f"/cashnet/_checkout/{cid}/action"
        declined = submit(server.url, form, button="decline")
        assert Page(declined.text).forms[0]["action"] == f"/cashnet/_checkout/{cid}/action"
        action = submit(server.url, Page(declined.text).forms[0], button="pay", typed=CARD)
        assert action.headers["location"] == f"/cashnet/_checkout/{cid}/receipt"
        assert [hit["path"] for hit in receiver.snapshot()] == [
            f"/proxy/cashnet/postback/{TOKEN}"]  # failure URL unset: decline not sent
        receipt = Page(httpx.get(server.url + action.headers["location"]).text)
        signout = receipt.form(id="signout")
        assert signout["action"] == f"{server.url}/proxy/cashnet/return"
        submit(server.url, signout)
        assert receiver.snapshot()[-1]["path"] == "/proxy/cashnet/return"
        api = httpx.get(f"{server.url}/cashnet/_emulator/checkouts/{cid}").json()
        assert (api["status"], api["tx"]) == ("PAID", "100001")
        assert [r["skipped"] for r in sandbox.notifications(cid)] == ["no_url", None]


def test_held_notification_released_from_a_test_thread_while_serving(sandbox, receiver):
    sandbox.set_faults("LIBFINESTEST", {"hold": True})
    cid, response = checkout_page(sandbox, receiver)
    action = submit(sandbox.url, Page(response.text).forms[0], button="pay")
    receipt = httpx.get(urljoin(sandbox.url, action.headers["location"]))
    assert receipt.status_code == 200 and notified_results(receiver) == []
    sandbox.release(cid)
    assert notified_results(receiver) == ["0"]


def test_delayed_notification_does_not_block_the_receipt(sandbox, receiver):
    sandbox.set_faults("LIBFINESTEST", {"delay_s": 300})
    cid, response = checkout_page(sandbox, receiver)
    action = submit(sandbox.url, Page(response.text).forms[0], button="pay")
    receipt = httpx.get(urljoin(sandbox.url, action.headers["location"]))
    assert receipt.status_code == 200 and notified_results(receiver) == []
    assert sandbox.checkout(cid)["pending_notifications"] == 1
    sandbox.release(cid)  # instead of waiting five minutes
    assert notified_results(receiver) == ["0"]
    assert sandbox.checkout(cid)["pending_notifications"] == 0
