"""Fault injection of the sandbox Alma emulator over a real loopback socket: dropped
connections, commit-then-fail, latency past the client's timeout, thresholds and rules."""

from __future__ import annotations

import json
import random
import time
from collections.abc import Iterator
from decimal import Decimal
from email.utils import parsedate_to_datetime
from typing import Any

import httpx
import pytest
from support.alma import payments_carrying
from support.waiting import wait_for

from patronpay.serving import ServerThread
from sandbox.alma import AlmaSandbox, create_app
from sandbox.alma_faults import FaultSettings, Gate

HEADERS = {"Authorization": "apikey sandbox-alma-key", "Accept": "application/json"}
OVERDUE = "7730012450004146"
FEE_URL = f"/almaws/v1/users/mkowalski/fees/{OVERDUE}"
LIST_URL = "/almaws/v1/users/mkowalski/fees"
PAY = {"op": "pay", "amount": "1.00", "method": "ONLINE", "external_transaction_id": "4242"}
PAY_RULE = {"method": "POST", "path": "/almaws/v1/users/*/fees/*"}


@pytest.fixture
def client(alma_server: ServerThread, alma: AlmaSandbox) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=alma_server.url, headers=HEADERS, timeout=10) as http:
        yield http


def payments(alma: AlmaSandbox) -> list[Decimal]:
    """The amounts PAY has paid on the overdue fine."""
    return payments_carrying(alma, PAY["external_transaction_id"]).get(OVERDUE, [])


def faults_of(alma: AlmaSandbox) -> list[tuple[Any, ...]]:
    return [(e["method"], e["status"], e["fault"], e["committed"]) for e in alma.requests()]


# -- hanging up --------------------------------------------------------------------------------


def test_drop_closes_the_connection_without_applying(
    client: httpx.Client, alma: AlmaSandbox
) -> None:
    alma.set_faults({"rules": [{"match": PAY_RULE, "mode": "drop", "next": 1}]})
    with pytest.raises(httpx.TransportError) as caught:
        client.post(FEE_URL, params=PAY)
    assert isinstance(caught.value, httpx.RemoteProtocolError | httpx.ReadError)
    assert payments(alma) == []
    again = client.post(FEE_URL, params=PAY)  # `next: 1` is used up: the retry goes through
    assert again.status_code == 200
    assert payments(alma) == [Decimal("1.00")]
    assert faults_of(alma) == [("POST", None, "drop", False), ("POST", 200, None, True)]


def test_commit_then_drop_applies_then_hangs_up(client: httpx.Client, alma: AlmaSandbox) -> None:
    alma.set_faults({"rules": [{"match": PAY_RULE, "mode": "commit_then_drop"}]})
    with pytest.raises(httpx.TransportError):
        client.post(FEE_URL, params=PAY)
    assert payments(alma) == [Decimal("1.00")]
    assert faults_of(alma) == [("POST", None, "commit_then_drop", True)]
    fee = client.get(FEE_URL).json()  # reads are not matched by the POST rule
    assert fee["balance"] == 3.75


def test_commit_then_500_applies_then_answers_500(
    client: httpx.Client, alma: AlmaSandbox
) -> None:
    alma.set_faults({"rules": [{"match": PAY_RULE, "mode": "commit_then_500", "next": 1}]})
    response = client.post(FEE_URL, params=PAY)
    assert (response.status_code, response.text) == (500, "500 Internal Server Error")
    assert response.headers["content-type"].startswith("text/plain")
    assert payments(alma) == [Decimal("1.00")]
    assert faults_of(alma) == [("POST", 500, "commit_then_500", True)]


def test_commit_then_500_on_payall(client: httpx.Client, alma: AlmaSandbox) -> None:
    alma.set_faults({"rules": [{"match": {"path": "*/fees/all"}, "mode": "commit_then_500"}]})
    response = client.post("/almaws/v1/users/mkowalski/fees/all",
                           params=PAY | {"amount": "61.00"})
    assert response.status_code == 500
    fees = alma.user_state("mkowalski")["fees"]
    assert [(f["id"], f["balance"]) for f in fees] == [
        ("7730018830004146", Decimal("0.00")), ("7730012450004146", Decimal("3.75")),
        ("7730020010004146", Decimal("12.50"))]


def test_http_5xx_and_alma_error_leave_state_alone(
    client: httpx.Client, alma: AlmaSandbox
) -> None:
    alma.set_faults({"rules": [
        {"match": PAY_RULE, "mode": "http_5xx", "status": 503, "next": 1},
        {"match": PAY_RULE, "mode": "alma_error", "code": "402119", "next": 1},
        {"match": PAY_RULE, "mode": "alma_error", "code": "60340", "next": 1},
    ]})
    unavailable = client.post(FEE_URL, params=PAY)
    assert (unavailable.status_code, unavailable.text) == (503, "503 Service Unavailable")
    codes = []
    for _ in range(2):
        response = client.post(FEE_URL, params=PAY)
        assert response.status_code == 400
        codes.append(response.json()["errorList"]["error"][0]["errorCode"])
    assert codes == ["402119", "60340"]
    assert payments(alma) == []
    assert client.post(FEE_URL, params=PAY).status_code == 200
    assert [e["fault"] for e in alma.requests()] == ["http_5xx", "alma_error", "alma_error", None]


# -- latency -----------------------------------------------------------------------------------


def test_latency_past_the_client_timeout_still_applies(
    alma_server: ServerThread, alma: AlmaSandbox
) -> None:
    alma.set_faults({"latency_ms": 1500, "latency_jitter_ms": 100})
    with (
        httpx.Client(base_url=alma_server.url, headers=HEADERS, timeout=0.3) as impatient,
        pytest.raises(httpx.ReadTimeout),
    ):
        impatient.post(FEE_URL, params=PAY)
    wait_for(lambda: payments(alma) == [Decimal("1.00")])
    wait_for(lambda: faults_of(alma) == [("POST", 200, None, True)])


# -- thresholds ----------------------------------------------------------------------------------


def test_per_second_threshold_then_ok_after_the_window(
    client: httpx.Client, alma: AlmaSandbox
) -> None:
    alma.set_faults({"per_second_limit": 3})
    statuses: list[int] = []
    for _ in range(50):  # bounded: a slow machine may let a request slip out of the window
        statuses.append(client.post(FEE_URL, params=PAY | {"amount": "0.01"}).status_code)
        if statuses[-1] == 429:
            break
    assert statuses[-1] == 429
    assert statuses[:3] == [200, 200, 200]
    throttled = alma.requests()[-1]
    assert (throttled["status"], throttled["fault"], throttled["committed"]) == (
        429, "per_second_limit", False)
    assert len(payments(alma)) == statuses.count(200)  # the throttled PAY was not applied
    wait_for(lambda: client.get(LIST_URL).status_code == 200, timeout=5)


def test_per_second_threshold_body(client: httpx.Client, alma: AlmaSandbox) -> None:
    alma.set_faults({"per_second_limit": 0})
    response = client.get(LIST_URL)
    assert response.status_code == 429
    error = {"errorCode": "PER_SECOND_THRESHOLD",
             "errorMessage": "HTTP requests are more than allowed per second"}
    assert json.loads(response.text) == {
        "errorsExist": True, "errorList": {"error": [error]}, "result": None}
    jwks = client.get("/auth/01PATRON_INST/jwks.json")
    assert jwks.status_code == 200  # the public key set is not an API call


def test_sliding_window_is_exact() -> None:
    now = [100.0]
    gate = Gate(FaultSettings.parse({"per_second_limit": 3}), clock=lambda: now[0])
    decisions = []
    for moment in (100.0, 100.2, 100.4, 100.9, 101.0, 101.1, 101.2, 101.3):
        now[0] = moment
        decisions.append(gate.admit("GET", "/almaws/v1/users/x/fees", throttled=True).fault)
    assert decisions == [None, None, None, "per_second_limit", None, "per_second_limit",
                         None, "per_second_limit"]


def test_daily_threshold_until_reset(client: httpx.Client, alma: AlmaSandbox) -> None:
    alma.set_faults({"daily_limit": 2})
    statuses = [client.get(LIST_URL).status_code for _ in range(3)]
    assert statuses == [200, 200, 429]
    error = client.get(LIST_URL).json()["errorList"]["error"][0]
    assert error == {"errorCode": "DAILY_THRESHOLD",
                     "errorMessage": "Daily API request threshold has been reached."}
    client.post("/_emulator/reset")
    assert client.get(LIST_URL).status_code == 200


def test_throttling_is_checked_before_rules(client: httpx.Client, alma: AlmaSandbox) -> None:
    alma.set_faults({"per_second_limit": 0,
                     "rules": [{"match": {"path": "*"}, "mode": "drop", "next": 1}]})
    assert client.get(LIST_URL).status_code == 429
    alma_state = alma.requests()
    assert [e["fault"] for e in alma_state] == ["per_second_limit"]


# -- rules ---------------------------------------------------------------------------------------


def test_rule_next_counts_down_and_method_filters(
    client: httpx.Client, alma: AlmaSandbox
) -> None:
    alma.set_faults({"rules": [
        {"match": {"method": "GET", "path": "/almaws/v1/users/*/fees"}, "mode": "http_5xx",
         "status": 502, "next": 2},
    ]})
    assert client.post(FEE_URL, params=PAY).status_code == 200
    assert [client.get(LIST_URL).status_code for _ in range(3)] == [502, 502, 200]
    assert client.get(FEE_URL).status_code == 200  # the glob does not reach one fee


def test_rule_probability_is_reproducible_with_a_seed(
    client: httpx.Client, alma: AlmaSandbox
) -> None:
    rule = {"match": {"path": "*"}, "mode": "http_5xx", "probability": 0.5}
    runs = []
    for _ in range(2):
        alma.set_faults({"seed": 7, "rules": [rule]})
        runs.append([client.get(LIST_URL).status_code for _ in range(16)])
    draws = random.Random(7)
    expected = [500 if draws.random() < 0.5 else 200 for _ in range(16)]
    assert runs == [expected, expected]
    assert {500, 200} <= set(expected)


def test_control_endpoints_are_neither_throttled_nor_logged(
    client: httpx.Client, alma: AlmaSandbox
) -> None:
    client.put("/_emulator/faults", json={"per_second_limit": 0, "latency_ms": 0,
                                          "rules": [{"match": {"path": "*"}, "mode": "drop"}]})
    for _ in range(3):
        assert client.get("/_emulator/state/users/pchen").status_code == 200
    assert client.get("/_emulator/requests").json() == []


@pytest.mark.parametrize("faults", [
    {"per_second": 3},
    {"rules": [{"match": {"path": "*"}, "mode": "explode"}]},
    {"rules": [{"match": {"path": "*"}, "mode": "drop", "probability": 2}]},
    {"rules": [{"match": {"path": "*"}, "mode": "drop", "next": -1}]},
    {"error_style": "html"},
    {"throttle_status": 503},
    {"omit_empty_keys": "yes"},
    {"date_style": "epoch_s"},
    {"number_style": "scientific"},
    {"latency_ms": -5},
    {"key_refusal_status": 500},
    {"api_keys": {"k": "superuser"}},
    {"api_keys": ["k"]},
    {"date_offset_seconds": "90"},
    {"date_text": ""},
    {"date_text": "Thu\r\nX-Injected: 1"},
    {"date_text": "x" * 101},
    {"date_text": 1700000000},
    {"jwks_es256": "no"},
])
def test_bad_fault_settings_are_refused(
    client: httpx.Client, alma: AlmaSandbox, faults: dict[str, Any]
) -> None:
    with pytest.raises(ValueError):
        alma.set_faults(faults)
    assert client.put("/_emulator/faults", json=faults).status_code == 400


def test_slow_rule_delays_only_matching_calls_and_still_applies(alma_server, alma, client):
    """A `slow` rule: the matching PAY times out at the client and is applied anyway; the
    LIST before it is not delayed."""
    alma.set_faults({"rules": [{"match": PAY_RULE, "mode": "slow", "latency_ms": 600, "next": 1}]})
    assert client.get(LIST_URL).status_code == 200
    with pytest.raises(httpx.ReadTimeout):
        client.post(FEE_URL, params=PAY, timeout=0.2)
    wait_for(lambda: payments(alma) == [Decimal("1.00")])
    assert faults_of(alma) == [("GET", 200, None, False), ("POST", 200, "slow", True)]


# -- what a go-live check must tell apart ------------------------------------------------------


def alma_error_code(response: httpx.Response) -> str:
    return response.json()["errorList"]["error"][0]["errorCode"]


@pytest.mark.parametrize("status", [401, 403])
def test_key_refusals_can_answer_401_or_403(client: httpx.Client, alma: AlmaSandbox,
                                            status: int) -> None:
    alma.set_faults({"key_refusal_status": status})
    unknown = client.get("/almaws/v1/users/mkowalski", headers={"Authorization": "apikey nope"})
    assert (unknown.status_code, unknown.text) == (status, "Invalid API Key")
    read_only = client.post(FEE_URL, params=PAY,
                            headers={"Authorization": "apikey sandbox-alma-readonly"})
    assert read_only.status_code == status
    assert alma_error_code(read_only) == "UNAUTHORIZED"
    assert client.get(LIST_URL).status_code == 200  # the good key is untouched


def test_a_key_without_the_users_area_is_unauthorized_even_to_read(
    client: httpx.Client, alma: AlmaSandbox
) -> None:
    alma.set_faults({"api_keys": {"catalog-only-key": "no_users"}})
    response = client.get(LIST_URL, headers={"Authorization": "apikey catalog-only-key"})
    assert response.status_code == 400
    assert alma_error_code(response) == "UNAUTHORIZED"
    alma.reset()
    gone = client.get(LIST_URL, headers={"Authorization": "apikey catalog-only-key"})
    assert gone.text == "Invalid API Key"


def test_a_key_of_another_institution_finds_none_of_these_patrons(
    client: httpx.Client, alma: AlmaSandbox
) -> None:
    alma.set_faults({"api_keys": {"other-campus-key": "other_institution"}})
    response = client.get("/almaws/v1/users/mkowalski",
                          headers={"Authorization": "apikey other-campus-key"})
    assert response.status_code == 400
    assert alma_error_code(response) == "401861"
    assert client.get("/almaws/v1/users/mkowalski").status_code == 200


def test_date_header_can_be_off_by_n_seconds() -> None:
    app = create_app()
    app.state.alma.set_faults({"date_offset_seconds": -600})
    with ServerThread(app, date_header=False) as running, \
            httpx.Client(base_url=running.url, headers=HEADERS, timeout=10) as http:
        before = time.time()
        response = http.get(LIST_URL)
        after = time.time()
    dates = response.headers.get_list("date")
    assert len(dates) == 1
    sent = parsedate_to_datetime(dates[0]).timestamp()
    assert before - 600 - 1 <= sent <= after - 600 + 1


def test_date_header_that_is_not_a_date() -> None:
    """`date_text` replaces the date, whatever the offset; without it and without the server's
    own header, an answer carries no `Date` at all."""
    app = create_app()
    with ServerThread(app, date_header=False) as running, \
            httpx.Client(base_url=running.url, headers=HEADERS, timeout=10) as http:
        assert http.get(LIST_URL).headers.get_list("date") == []
        app.state.alma.set_faults({"date_text": "yesterday, around noon",
                                   "date_offset_seconds": 120})
        response = http.get(LIST_URL)
    assert response.status_code == 200
    assert response.headers.get_list("date") == ["yesterday, around noon"]


def test_key_set_without_es256_keys(client: httpx.Client, alma: AlmaSandbox) -> None:
    url = "/auth/01PATRON_INST/jwks.json"
    assert "EC" in {key["kty"] for key in client.get(url).json()["keys"]}
    alma.set_faults({"jwks_es256": False})
    kinds = {key["kty"] for key in client.get(url).json()["keys"]}
    assert kinds == {"RSA"}
