"""What travels to Alma (proxy/alma_http.py), seen by a loopback server that records every
request: the key and our name in the headers, no cookie carried from one call to the next, a
PAY comment's reserved characters quoted, redirects not followed, and the proxy the environment
names (HTTP_PROXY, NO_PROXY) used as httpx.AsyncClient used it, by the service and by
`patronpay check`."""

from __future__ import annotations

import asyncio
import json
from decimal import Decimal
from urllib.parse import parse_qs

import pytest

from patronpay.serving import ServerThread
from proxy.alma import AlmaClient, AlmaError
from proxy.alma_http import environment_proxy
from proxy.check import readonly
from proxy.check.readonly import NotARead, ReadOnlyTransport

PROXY_VARIABLES = ("http_proxy", "https_proxy", "all_proxy", "no_proxy",
                   "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY")


class Recorder:
    """An ASGI app that keeps each request's target, query and headers, and answers every call
    with `status`, a JSON `body` and `headers`."""

    def __init__(self, status: int = 200, body: dict | None = None,
                 headers: dict[str, str] | None = None) -> None:
        self.status, self.body = status, body if body is not None else {"fee": [], "id": "1"}
        self.headers = headers or {}
        self.requests: list[dict] = []

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            return
        self.requests.append({
            "method": scope["method"],
            "target": scope["raw_path"].decode("latin-1"),
            "query": scope["query_string"].decode("latin-1"),
            "headers": {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]},
        })
        headers = [(b"content-type", b"application/json")] + [
            (k.encode(), v.encode()) for k, v in self.headers.items()]
        await send({"type": "http.response.start", "status": self.status, "headers": headers})
        await send({"type": "http.response.body", "body": json.dumps(self.body).encode()})


@pytest.fixture
def no_proxies(monkeypatch):
    for name in PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def run(base_url: str, *calls):
    """Each of `calls` (a function of the client giving a coroutine), in order, on one client."""
    async def go():
        client = AlmaClient(base_url, "the-key")
        try:
            return [await make(client) for make in calls]
        finally:
            await client.aclose()
    return asyncio.run(go())


def test_every_call_carries_the_key_and_our_name_and_no_cookie(no_proxies):
    recorder = Recorder(headers={"set-cookie": "AWSALB=sticky-for-patron-one; Path=/"})
    with ServerThread(recorder) as alma:
        run(alma.url + "/almaws/v1", lambda c: c.list_fees("patron-one"),
            lambda c: c.list_fees("patron-two"))
    assert [r["target"] for r in recorder.requests] == [
        "/almaws/v1/users/patron-one/fees", "/almaws/v1/users/patron-two/fees"]
    for request in recorder.requests:
        headers = request["headers"]
        assert headers["authorization"] == "apikey the-key"
        assert headers["accept"] == "application/json"
        assert headers["user-agent"].startswith("patronpay")
        assert "cookie" not in headers  # Alma's cookie for one patron's call is not kept


def test_a_payment_comment_arrives_exactly_as_written(no_proxies):
    comment = "Paid online: tx 5; ref a+b&c=d web|kiosk:lib1 é"
    recorder = Recorder()
    with ServerThread(recorder) as alma:
        run(alma.url + "/almaws/v1", lambda c: c.pay_fee(
            "p@example.edu", "77/1", Decimal("12.50"), method="ONLINE",
            external_transaction_id="5", comment=comment))
    [request] = recorder.requests
    assert (request["method"], request["target"]) == (
        "POST", "/almaws/v1/users/p%40example.edu/fees/77%2F1")
    assert parse_qs(request["query"]) == {
        "op": ["pay"], "amount": ["12.50"], "method": ["ONLINE"],
        "external_transaction_id": ["5"], "comment": [comment]}
    assert " " not in request["query"] and ";" not in request["query"]


def test_a_redirect_is_an_error_and_is_not_followed(no_proxies):
    recorder = Recorder(302, {}, {"location": "http://127.0.0.1:9/elsewhere"})
    with ServerThread(recorder) as alma, pytest.raises(AlmaError):
        run(alma.url + "/almaws/v1", lambda c: c.list_fees("p"))
    assert len(recorder.requests) == 1


def test_the_proxy_the_environment_names_carries_the_calls(no_proxies):
    proxy = Recorder(body={"fee": [], "total_sum": 0})
    with ServerThread(proxy) as server:
        no_proxies.setenv("HTTP_PROXY", server.url)
        [fees] = run("http://alma.example.edu/almaws/v1", lambda c: c.list_fees("p"))
    assert fees == {"fee": [], "total_sum": 0}
    [request] = proxy.requests
    # A forward proxy is asked for the absolute URL, and the Host is Alma's.
    assert request["headers"]["host"] == "alma.example.edu"
    assert request["target"].endswith("alma.example.edu/almaws/v1/users/p/fees")


def test_which_proxy_the_environment_names(no_proxies):
    assert environment_proxy("https://api-eu.hosted.exlibrisgroup.com/almaws/v1") is None
    no_proxies.setenv("HTTPS_PROXY", "http://proxy.campus.edu:3128")
    no_proxies.setenv("ALL_PROXY", "http://all.campus.edu:3128")
    assert environment_proxy("https://api-eu.hosted.exlibrisgroup.com/almaws/v1") == (
        "http://proxy.campus.edu:3128")
    assert environment_proxy("http://127.0.0.1:8001/almaws/v1") == "http://all.campus.edu:3128"
    no_proxies.setenv("https_proxy", "http://lower.campus.edu:3128")  # the lower case wins
    assert environment_proxy("https://api-eu.hosted.exlibrisgroup.com/x") == (
        "http://lower.campus.edu:3128")
    no_proxies.setenv("NO_PROXY", ".exlibrisgroup.com,localhost")
    assert environment_proxy("https://api-eu.hosted.exlibrisgroup.com/x") is None
    assert environment_proxy("https://alma.campus.edu/x") == "http://lower.campus.edu:3128"


def test_the_check_goes_through_the_same_proxy_and_still_only_reads(no_proxies):
    proxy = Recorder(body={})

    async def visit(method: str):
        async with readonly.client(ReadOnlyTransport()) as http:
            return await http.request(method, "http://cashnet.example.edu/check")

    with ServerThread(proxy) as server:
        no_proxies.setenv("HTTP_PROXY", server.url)
        assert asyncio.run(visit("GET")).status_code == 200
        # A client that mounted the environment's proxy itself would have sent this around
        # the read-only guard.
        with pytest.raises(NotARead):
            asyncio.run(visit("POST"))
    assert [(r["method"], r["headers"]["host"]) for r in proxy.requests] == [
        ("GET", "cashnet.example.edu")]
