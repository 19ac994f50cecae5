"""Wire behaviour of the sandbox Alma emulator: documents, lookups, payments, errors, keys.

One emulator per module under uvicorn on a loopback port; each test starts from the seed with
the clock frozen, so every timestamp in a response is known.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.routing import Mount

from patronpay.serving import ServerThread
from sandbox.alma import AlmaSandbox, create_app

KEY = "sandbox-alma-key"
READ_ONLY_KEY = "sandbox-alma-readonly"
HEADERS = {"Authorization": f"apikey {KEY}", "Accept": "application/json"}
NOW = datetime(2025, 2, 14, 16, 3, 12, 118000, tzinfo=UTC)
NOW_TEXT = "2025-02-14T16:03:12.118Z"
TRACKING_RE = re.compile(r"^E01-\d{10}-[A-Z]{5}-AWAE\d{9}$")
USERS = "/almaws/v1/users"


@pytest.fixture
def alma(alma: AlmaSandbox) -> AlmaSandbox:
    """The sandbox from its seed (tests/conftest.py), with the clock frozen at NOW."""
    alma.set_clock(NOW)
    return alma


@pytest.fixture
def client(alma_server: ServerThread, alma: AlmaSandbox) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=alma_server.url, headers=HEADERS, timeout=10) as http:
        yield http


def body(response: httpx.Response) -> Any:
    return json.loads(response.text, parse_float=Decimal)


def error_code(response: httpx.Response) -> str:
    assert response.status_code == 400
    assert response.headers["content-type"] == "application/json;charset=UTF-8"
    errors = body(response)["errorList"]["error"]
    assert len(errors) == 1
    assert TRACKING_RE.match(errors[0]["trackingId"])
    return errors[0]["errorCode"]


def pay(client: httpx.Client, user: str, fee: str, **params: str) -> httpx.Response:
    return client.post(f"{USERS}/{user}/fees/{fee}", params=params)


def seed_fee_docs(base: str) -> list[dict[str, Any]]:
    """mkowalski's three seeded fees as LIST renders them, oldest first."""
    user = {"value": "mkowalski", "link": f"{base}{USERS}/mkowalski"}
    return [
        {
            "id": "7730018830004146",
            "type": {"value": "LOSTITEMREPLACEMENTFEE", "desc": "Lost item replacement fee"},
            "status": {"value": "ACTIVE", "desc": "Active"},
            "user_primary_id": user,
            "balance": 60, "remaining_vat_amount": 0, "original_amount": 75,
            "original_vat_amount": 0,
            "creation_time": "2024-11-04T10:40:00.000Z",
            "status_time": "2025-01-30T19:12:45.118Z",
            "comment": None,
            "owner": {"value": "MAIN", "desc": "Main Library"},
            "title": "The structure of scientific revolutions",
            "barcode": {"value": "31822017734410",
                        "link": f"{base}/almaws/v1/items?item_barcode=31822017734410"},
            "transaction": [{
                "type": {"value": "PAYMENT", "desc": "Payment"}, "amount": 15, "vat_amount": 0,
                "created_by": "Ex Libris", "external_transaction_id": "8801937",
                "transaction_time": "2025-01-30T19:12:45.118Z",
                "received_by": {"value": "Not At Desk", "desc": "Main Library"},
                "payment_method": {"value": "ONLINE", "desc": "Online"},
            }],
            "link": f"{base}{USERS}/mkowalski/fees/7730018830004146",
        },
        {
            "id": "7730012450004146",
            "type": {"value": "OVERDUEFINE", "desc": "Overdue fine"},
            "status": {"value": "ACTIVE", "desc": "Active"},
            "user_primary_id": user,
            "balance": Decimal("4.75"), "remaining_vat_amount": 0,
            "original_amount": Decimal("4.75"), "original_vat_amount": 0,
            "creation_time": "2025-01-21T15:02:11.420Z",
            "status_time": "2025-01-21T15:02:11.420Z",
            "comment": None,
            "owner": {"value": "SCI", "desc": "Science Library"},
            "title": "Principles of soil physics",
            "barcode": {"value": "31822041155208",
                        "link": f"{base}/almaws/v1/items?item_barcode=31822041155208"},
            "link": f"{base}{USERS}/mkowalski/fees/7730012450004146",
        },
        {
            "id": "7730020010004146",
            "type": {"value": "DAMAGEDITEMFINE", "desc": "Damaged item fine"},
            "status": {"value": "ACTIVE", "desc": "Active"},
            "user_primary_id": user,
            "balance": Decimal("12.5"), "remaining_vat_amount": 0,
            "original_amount": Decimal("12.5"), "original_vat_amount": 0,
            "creation_time": "2025-03-02T09:15:00.000Z",
            "status_time": "2025-03-02T09:15:00.000Z",
            "comment": None,
            "owner": {"value": "LAW", "desc": "Law Library"},
            "title": "Torts: cases and materials",
            "barcode": {"value": "31822050012874",
                        "link": f"{base}/almaws/v1/items?item_barcode=31822050012874"},
            "link": f"{base}{USERS}/mkowalski/fees/7730020010004146",
        },
    ]


# -- LIST ------------------------------------------------------------------------------------


def test_list_answers_the_whole_fees_document(client: httpx.Client, alma_server: ServerThread) -> None:
    response = client.get(f"{USERS}/mkowalski/fees")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json;charset=UTF-8"
    assert body(response) == {
        "fee": seed_fee_docs(alma_server.url),
        "total_record_count": 3,
        "total_sum": Decimal("77.25"),
        "currency": "USD",
    }
    # the float number style of recent real answers: every amount with a fraction, trimmed
    assert '"balance":60.0,"remaining_vat_amount":0.0,"original_amount":75.0,' in response.text
    assert '"balance":12.5,' in response.text


def test_list_without_fees_has_no_fee_key_and_null_currency(
    client: httpx.Client, alma: AlmaSandbox
) -> None:
    response = client.get(f"{USERS}/pchen/fees")
    assert response.text == '{"total_record_count":0,"total_sum":0.0,"currency":null}'
    alma.set_faults({"zero_fee_currency": "USD"})
    assert body(client.get(f"{USERS}/pchen/fees")) == {
        "total_record_count": 0, "total_sum": 0, "currency": "USD"}


def test_list_total_sum_nets_credits(client: httpx.Client) -> None:
    document = body(client.get(f"{USERS}/dokafor/fees"))
    assert [(f["id"], f["balance"]) for f in document["fee"]] == [
        ("7730040010004146", -5), ("7730040020004146", 8)]
    assert document["total_sum"] == 3
    assert document["fee"][0]["type"] == {"value": "CREDIT", "desc": "Credit"}


def test_list_orders_by_creation_time_then_numeric_id(
    client: httpx.Client, alma: AlmaSandbox
) -> None:
    same_time = "2025-01-01T00:00:00.000Z"
    for fee_id in ("10000000000004146", "9990000000004146"):
        alma.add_fee("pchen", {"id": fee_id, "type": "OTHER", "original_amount": "1.00",
                               "owner": "MAIN", "creation_time": same_time})
    alma.add_fee("pchen", {"id": "5550000000004146", "type": "OTHER", "original_amount": "2.00",
                           "owner": "MAIN", "creation_time": "2024-12-31T23:59:59.999Z"})
    ids = [f["id"] for f in body(client.get(f"{USERS}/pchen/fees"))["fee"]]
    assert ids == ["5550000000004146", "9990000000004146", "10000000000004146"]


def test_list_status_filter_and_its_validation(client: httpx.Client) -> None:
    assert pay(client, "mkowalski", "7730012450004146", op="pay", amount="4.75",
               method="ONLINE").status_code == 200
    closed = body(client.get(f"{USERS}/mkowalski/fees", params={"status": "CLOSED"}))
    assert [f["id"] for f in closed["fee"]] == ["7730012450004146"]
    assert closed["total_sum"] == 0
    active = body(client.get(f"{USERS}/mkowalski/fees"))
    assert [f["id"] for f in active["fee"]] == ["7730018830004146", "7730020010004146"]
    assert body(client.get(f"{USERS}/mkowalski/fees", params={"status": "INDISPUTE"})) == {
        "total_record_count": 0, "total_sum": 0, "currency": None}
    assert error_code(client.get(f"{USERS}/mkowalski/fees", params={"status": "OPEN"})) == "401666"
    listed = client.get(f"{USERS}/mkowalski/fees", params={"limit": "10", "offset": "0"})
    assert body(listed)["total_record_count"] == 2  # paging accepted and ignored


# -- user resolution -------------------------------------------------------------------------


@pytest.mark.parametrize(("user_id", "id_type"), [
    ("mkowalski", None),
    ("MKowalski", None),
    ("23191000105866", None),
    ("900123456", None),
    ("900123456", "UNIV_ID"),
    ("23191000105866", "BARCODE"),
])
def test_fees_resolve_any_active_identifier(
    client: httpx.Client, user_id: str, id_type: str | None
) -> None:
    params = {"user_id_type": id_type} if id_type else {}
    document = body(client.get(f"{USERS}/{user_id}/fees", params=params))
    assert document["total_record_count"] == 3
    assert {f["user_primary_id"]["value"] for f in document["fee"]} == {"mkowalski"}


@pytest.mark.parametrize(("user_id", "id_type"), [
    ("23191000200014", None),        # INACTIVE barcode (old card)
    ("23191000200014", "BARCODE"),
    ("900123456", "BARCODE"),        # right value, wrong type
    ("mkowalski", "BARCODE"),        # an explicit type never matches the primary ID
    ("nobody", None),
])
def test_fees_for_unknown_user_answer_401861(
    client: httpx.Client, user_id: str, id_type: str | None
) -> None:
    params = {"user_id_type": id_type} if id_type else {}
    assert error_code(client.get(f"{USERS}/{user_id}/fees", params=params)) == "401861"


def test_email_shaped_primary_id_in_a_percent_encoded_segment(
    client: httpx.Client, alma_server: ServerThread
) -> None:
    document = body(client.get(f"{USERS}/ana.rivera%40example.edu/fees"))
    assert [f["id"] for f in document["fee"]] == ["7730050010004146", "7730050020004146"]
    assert document["fee"][0]["link"] == (
        f"{alma_server.url}{USERS}/ana.rivera@example.edu/fees/7730050010004146")
    assert document["total_sum"] == Decimal("27.4")


# -- FEE -------------------------------------------------------------------------------------


def test_fee_answers_one_fee_document(client: httpx.Client, alma_server: ServerThread) -> None:
    response = client.get(f"{USERS}/mkowalski/fees/7730018830004146")
    assert response.status_code == 200
    assert body(response) == seed_fee_docs(alma_server.url)[0]


def test_fee_of_another_user_or_unknown_is_401665(client: httpx.Client) -> None:
    assert error_code(client.get(f"{USERS}/jsmith/fees/7730018830004146")) == "401665"
    assert error_code(client.get(f"{USERS}/mkowalski/fees/1230000000004146")) == "401665"
    assert error_code(client.get(f"{USERS}/nobody/fees/7730018830004146")) == "401861"


# -- PAY -------------------------------------------------------------------------------------


def test_partial_payment_lowers_balance_and_appends_a_transaction(
    client: httpx.Client, alma: AlmaSandbox, alma_server: ServerThread
) -> None:
    response = pay(client, "mkowalski", "7730012450004146", op="pay", amount="1.25",
                   method="CREDIT_CARD", external_transaction_id="8815502",
                   comment="CashNet payment")
    assert response.status_code == 200
    expected = seed_fee_docs(alma_server.url)[1] | {
        "balance": Decimal("3.5"),
        "status_time": NOW_TEXT,
        "transaction": [{
            "type": {"value": "PAYMENT", "desc": "Payment"}, "amount": Decimal("1.25"),
            "vat_amount": 0, "created_by": "Ex Libris", "external_transaction_id": "8815502",
            "transaction_time": NOW_TEXT,
            "received_by": {"value": "Not At Desk", "desc": "Science Library"},
            "payment_method": {"value": "CREDIT_CARD", "desc": "Credit card"},
        }],
    }
    expected["link"] = expected.pop("link")  # the transaction list comes before the link
    assert body(response) == expected
    assert list(body(response)) == list(expected)
    fee = alma.user_state("mkowalski")["fees"][1]
    assert (fee["balance"], fee["status"], fee["comment"]) == (Decimal("3.50"), "ACTIVE", None)


def test_full_payment_closes_the_fee(client: httpx.Client, alma: AlmaSandbox) -> None:
    response = pay(client, "mkowalski", "7730018830004146", op="pay", amount="60.00",
                   method="ONLINE", external_transaction_id="8815503")
    document = body(response)
    assert document["status"] == {"value": "CLOSED", "desc": "Closed"}
    assert document["balance"] == 0
    assert '"balance":0.0,' in response.text
    assert [(t["amount"], t["external_transaction_id"]) for t in document["transaction"]] == [
        (15, "8801937"), (60, "8815503")]
    listed = body(client.get(f"{USERS}/mkowalski/fees"))
    assert "7730018830004146" not in [f["id"] for f in listed["fee"]]
    again = body(client.get(f"{USERS}/mkowalski/fees/7730018830004146"))
    assert again["status"]["value"] == "CLOSED"  # FEE reads a fee in any status
    assert alma.user_state("mkowalski")["fees"][0]["status_time"] == NOW_TEXT


def test_pay_does_not_deduplicate_and_may_omit_the_external_id(client: httpx.Client) -> None:
    for _ in range(2):
        pay(client, "tlee", "7730060010004146", op="pay", amount="100.00", method="CASH",
            external_transaction_id="same")
    document = body(pay(client, "tlee", "7730060010004146", op="pay", amount="0.01",
                        method="CASH"))
    assert document["balance"] == Decimal("1049.99")
    assert [t.get("external_transaction_id") for t in document["transaction"]] == [
        "same", "same", None]
    assert "external_transaction_id" not in document["transaction"][2]


@pytest.mark.parametrize(("user", "fee", "params", "code"), [
    ("nobody", "7730012450004146", {"op": "pay", "amount": "1", "method": "ONLINE"}, "401861"),
    ("mkowalski", "999", {"op": "bogus", "amount": "x"}, "401665"),              # fee before op
    ("mkowalski", "7730012450004146", {"amount": "1", "method": "ONLINE"}, "401666"),
    ("mkowalski", "7730012450004146", {"op": "waive", "amount": "1", "method": "ONLINE"},
     "401666"),
    ("mkowalski", "7730012450004146", {"op": "pay", "amount": "1"}, "401666"),
    ("mkowalski", "7730012450004146", {"op": "pay", "amount": "1", "method": "CHEQUE"},
     "401666"),
    ("rgarcia", "7730070010004146", {"op": "pay", "amount": "1", "method": "BAD"},
     "401666"),                                                                  # method first
    ("rgarcia", "7730070010004146", {"op": "pay", "amount": "-1", "method": "ONLINE"},
     "60340"),                                                                  # then restricted
    ("mkowalski", "7730012450004146", {"op": "pay", "method": "ONLINE"}, "401666"),
    ("mkowalski", "7730012450004146", {"op": "pay", "amount": "0", "method": "ONLINE"},
     "401666"),
    ("mkowalski", "7730012450004146", {"op": "pay", "amount": "0.00", "method": "ONLINE"},
     "401666"),
    ("mkowalski", "7730012450004146", {"op": "pay", "amount": "-1.00", "method": "ONLINE"},
     "401666"),
    ("mkowalski", "7730012450004146", {"op": "pay", "amount": "1.234", "method": "ONLINE"},
     "401666"),
    ("mkowalski", "7730012450004146", {"op": "pay", "amount": "1e2", "method": "ONLINE"},
     "401666"),
    ("mkowalski", "7730012450004146", {"op": "pay", "amount": "4.76", "method": "ONLINE"},
     "401666"),                                                                 # above balance
    ("dokafor", "7730040010004146", {"op": "pay", "amount": "1.00", "method": "ONLINE"},
     "401666"),                                                                 # a credit
])
def test_pay_errors_change_nothing(
    client: httpx.Client, alma: AlmaSandbox, user: str, fee: str, params: dict[str, str],
    code: str,
) -> None:
    before = {pid: alma.user_state(pid) for pid in ("mkowalski", "rgarcia", "dokafor")}
    assert error_code(pay(client, user, fee, **params)) == code
    assert {pid: alma.user_state(pid) for pid in before} == before


def test_pay_on_a_closed_fee_is_refused(client: httpx.Client, alma: AlmaSandbox) -> None:
    alma.set_fee("mkowalski", "7730012450004146", balance="0", status="CLOSED")
    response = pay(client, "mkowalski", "7730012450004146", op="pay", amount="0.01",
                   method="ONLINE")
    assert error_code(response) == "401666"


def test_fee_waived_meanwhile_shows_in_fee_and_list(
    client: httpx.Client, alma: AlmaSandbox
) -> None:
    raw = alma.set_fee("mkowalski", "7730020010004146", balance=Decimal("0"), status="CLOSED")
    assert (raw["balance"], raw["status"], raw["status_time"]) == (Decimal("0.00"), "CLOSED",
                                                                    NOW_TEXT)
    document = body(client.get(f"{USERS}/mkowalski/fees/7730020010004146"))
    assert (document["balance"], document["status"]["value"]) == (0, "CLOSED")
    assert body(client.get(f"{USERS}/mkowalski/fees"))["total_sum"] == Decimal("64.75")


# -- PAYALL ----------------------------------------------------------------------------------


def payall(client: httpx.Client, user: str, **params: str) -> httpx.Response:
    return client.post(f"{USERS}/{user}/fees/all", params=params)


def test_payall_pays_the_oldest_fee_first(client: httpx.Client, alma: AlmaSandbox) -> None:
    response = payall(client, "mkowalski", op="pay", amount="20.00", method="ONLINE",
                      external_transaction_id="9900001")
    document = body(response)
    assert [(f["id"], f["balance"]) for f in document["fee"]] == [
        ("7730018830004146", 40), ("7730012450004146", Decimal("4.75")),
        ("7730020010004146", Decimal("12.5"))]
    assert (document["total_record_count"], document["total_sum"]) == (3, Decimal("57.25"))
    assert document["fee"][0]["transaction"][1]["external_transaction_id"] == "9900001"
    assert "transaction" not in document["fee"][1]


def test_payall_spreads_over_several_fees_with_one_external_id(
    client: httpx.Client, alma: AlmaSandbox
) -> None:
    document = body(payall(client, "mkowalski", op="pay", amount="70.00", method="ONLINE",
                           external_transaction_id="9900002"))
    assert [(f["id"], f["balance"]) for f in document["fee"]] == [
        ("7730020010004146", Decimal("7.25"))]
    assert document["total_sum"] == Decimal("7.25")
    fees = {f["id"]: f for f in alma.user_state("mkowalski")["fees"]}
    paid = [(fid, t["amount"], t["external_transaction_id"])
            for fid, fee in fees.items() for t in fee["transactions"]
            if t["external_transaction_id"] == "9900002"]
    assert paid == [("7730018830004146", Decimal("60.00"), "9900002"),
                    ("7730012450004146", Decimal("4.75"), "9900002"),
                    ("7730020010004146", Decimal("5.25"), "9900002")]
    assert [fees[f]["status"] for f in fees] == ["CLOSED", "CLOSED", "ACTIVE"]


def test_payall_ties_are_broken_by_numeric_id(client: httpx.Client, alma: AlmaSandbox) -> None:
    for fee_id in ("10000000000004146", "9990000000004146"):
        alma.add_fee("pchen", {"id": fee_id, "type": "OTHER", "original_amount": "3.00",
                               "owner": "MAIN", "creation_time": "2025-01-01T00:00:00.000Z"})
    document = body(payall(client, "pchen", op="pay", amount="4.00", method="ONLINE"))
    assert [(f["id"], f["balance"]) for f in document["fee"]] == [("10000000000004146", 2)]


def test_payall_all_leaves_credits_and_zero_fee_shape(
    client: httpx.Client, alma: AlmaSandbox
) -> None:
    response = payall(client, "ana.rivera@example.edu", op="pay", amount="ALL", method="ONLINE")
    assert response.text == '{"total_record_count":0,"total_sum":0.0,"currency":null}'
    document = body(payall(client, "dokafor", op="pay", amount="ALL", method="ONLINE"))
    assert document["total_sum"] == -5
    assert document["currency"] == "USD"
    assert [f["id"] for f in document["fee"]] == ["7730040010004146"]


def test_payall_skips_api_restricted_fees(client: httpx.Client, alma: AlmaSandbox) -> None:
    document = body(payall(client, "rgarcia", op="pay", amount="ALL", method="CASH"))
    assert [(f["id"], f["balance"]) for f in document["fee"]] == [("7730070010004146", 6)]
    assert alma.user_state("rgarcia")["fees"][1]["status"] == "CLOSED"


@pytest.mark.parametrize(("user", "params"), [
    ("mkowalski", {"op": "pay", "amount": "77.26", "method": "ONLINE"}),  # over-payment
    ("mkowalski", {"op": "pay", "amount": "0", "method": "ONLINE"}),
    ("mkowalski", {"op": "pay", "amount": "all", "method": "ONLINE"}),
    ("mkowalski", {"op": "waive", "amount": "1", "method": "ONLINE"}),
    ("mkowalski", {"op": "pay", "amount": "1"}),
    ("pchen", {"op": "pay", "amount": "ALL", "method": "ONLINE"}),        # nothing eligible
    ("rgarcia", {"op": "pay", "amount": "15.01", "method": "ONLINE"}),    # restricted excluded
])
def test_payall_errors_are_401666(
    client: httpx.Client, alma: AlmaSandbox, user: str, params: dict[str, str]
) -> None:
    before = alma.user_state(user)
    assert error_code(payall(client, user, **params)) == "401666"
    assert alma.user_state(user) == before


# -- USER and AUTH ---------------------------------------------------------------------------


def test_user_full_brief_and_expanded(client: httpx.Client) -> None:
    full = body(client.get(f"{USERS}/23191000105866"))
    assert full == {
        "primary_id": "mkowalski", "first_name": "Maria", "last_name": "Kowalski",
        "full_name": "Maria Kowalski",
        "account_type": {"value": "EXTERNAL", "desc": "External"},
        "record_type": {"value": "PUBLIC", "desc": "Public"},
        "status": {"value": "ACTIVE", "desc": "Active"},
        "user_group": {"value": "UGRAD", "desc": "Undergraduate"},
        "expiry_date": "2027-06-30Z",
        "contact_info": {"email": [{
            "email_address": "mkowalski@example.edu", "preferred": True,
            "segment_type": "External", "email_type": [{"value": "school", "desc": "School"}]}]},
        "user_identifier": [
            {"id_type": {"value": "BARCODE", "desc": "Barcode"}, "value": "23191000105866",
             "status": "ACTIVE", "segment_type": "External"},
            {"id_type": {"value": "UNIV_ID", "desc": "University ID"}, "value": "900123456",
             "status": "ACTIVE", "segment_type": "External"},
            {"id_type": {"value": "BARCODE", "desc": "Barcode"}, "value": "23191000200014",
             "status": "INACTIVE", "segment_type": "External"},
        ],
        "user_block": [], "user_note": [], "user_statistic": [], "user_role": [],
        "fees": None, "loans": None, "requests": None, "link": None,
    }
    brief = body(client.get(f"{USERS}/mkowalski", params={"view": "brief",
                                                            "expand": "fees"}))
    assert brief == {key: value for key, value in full.items()
                     if key not in ("user_block", "user_note", "user_statistic", "user_role")
                     } | {"fees": {"value": Decimal("77.25")}}


def test_user_misses(client: httpx.Client) -> None:
    assert error_code(client.get(f"{USERS}/nobody")) == "401861"
    assert error_code(client.get(f"{USERS}/23191000200014")) == "401861"
    response = client.get(f"{USERS}/900123456", params={"user_id_type": "BARCODE"})
    assert error_code(response) == "401890"
    assert body(response)["errorList"]["error"][0]["errorMessage"] == (
        "User with identifier 900123456 of type BARCODE was not found.")


def auth(client: httpx.Client, user: str, password: str | None, **params: str) -> httpx.Response:
    headers = {"Exl-User-Pw": password} if password is not None else {}
    return client.post(f"{USERS}/{user}", params={"op": "auth", **params}, headers=headers)


def test_auth_accepts_the_right_password_only(client: httpx.Client, alma: AlmaSandbox) -> None:
    ok = auth(client, "jsmith", "correct-horse-7")
    assert (ok.status_code, ok.content) == (204, b"")
    assert auth(client, "23191000200022", "correct-horse-7").status_code == 204
    assert error_code(auth(client, "jsmith", "wrong")) == "401866"
    assert error_code(auth(client, "jsmith", None)) == "401866"
    assert error_code(auth(client, "mkowalski", "anything")) == "401866"  # EXTERNAL
    assert error_code(auth(client, "nobody", "correct-horse-7")) == "401890"
    assert error_code(auth(client, "jsmith", "correct-horse-7", op="refresh")) == "401666"
    in_query = client.post(f"{USERS}/jsmith", params={"password": "correct-horse-7"})
    assert in_query.status_code == 204  # op defaults to auth; query password is documented
    log = alma.requests()
    assert [entry["committed"] for entry in log] == [False] * len(log)
    assert log[-1]["query"] == {"password": ["***"]}
    assert "correct-horse-7" not in json.dumps(log)


# -- keys, JSON-only rule, error styles, number styles ---------------------------------------


@pytest.mark.parametrize("headers", [
    {"Accept": "application/json"},
    {"Accept": "application/json", "Authorization": "apikey not-a-key"},
    {"Accept": "application/json", "Authorization": f"Bearer {KEY}"},
])
def test_missing_or_unknown_key_is_plain_text_400(
    alma_server: ServerThread, alma: AlmaSandbox, headers: dict[str, str]
) -> None:
    response = httpx.get(f"{alma_server.url}{USERS}/mkowalski/fees", headers=headers)
    assert (response.status_code, response.text) == (400, "Invalid API Key")
    assert response.headers["content-type"].startswith("text/plain")


def test_key_in_query_works_and_is_redacted_in_the_log(
    alma_server: ServerThread, alma: AlmaSandbox
) -> None:
    response = httpx.get(f"{alma_server.url}{USERS}/mkowalski/fees",
                         params={"apikey": KEY, "format": "json"})
    assert body(response)["total_record_count"] == 3
    entry = alma.requests()[-1]
    assert entry["query"] == {"apikey": ["***"], "format": ["json"]}
    assert KEY not in json.dumps(alma.requests())


def test_read_only_key_reads_but_every_post_is_unauthorized(
    alma_server: ServerThread, alma: AlmaSandbox
) -> None:
    headers = {"Authorization": f"apikey {READ_ONLY_KEY}", "Accept": "application/json"}
    with httpx.Client(base_url=alma_server.url, headers=headers) as read_only:
        assert read_only.get(f"{USERS}/mkowalski/fees").status_code == 200
        before = alma.user_state("mkowalski")
        posts = [
            pay(read_only, "mkowalski", "7730012450004146", op="pay", amount="1.00",
                method="ONLINE"),
            payall(read_only, "mkowalski", op="pay", amount="1.00", method="ONLINE"),
            auth(read_only, "jsmith", "correct-horse-7"),
            pay(read_only, "nobody", "1", op="pay"),  # read-only wins over a missing user
        ]
        assert [error_code(response) for response in posts] == ["UNAUTHORIZED"] * 4
        assert body(posts[0])["errorList"]["error"][0]["errorMessage"] == (
            "API-key not defined or not configured to allow this API.")
        assert alma.user_state("mkowalski") == before
        without_json = read_only.post(f"{USERS}/mkowalski/fees/all",
                                      headers={"Accept": "*/*"})
        assert error_code(without_json) == "UNAUTHORIZED"  # read-only comes before JSON


def test_json_only_rule(alma_server: ServerThread, alma: AlmaSandbox) -> None:
    key = {"Authorization": f"apikey {KEY}"}
    for headers in (key, key | {"Accept": "application/xml"}, key | {"Accept": "*/*"}):
        response = httpx.get(f"{alma_server.url}{USERS}/nobody/fees", headers=headers)
        assert (response.status_code, response.text) == (400, "emulator serves JSON only")
        assert response.headers["content-type"].startswith("text/plain")
    response = httpx.get(f"{alma_server.url}{USERS}/mkowalski/fees", headers=key,
                         params={"format": "json"})
    assert response.status_code == 200
    no_key = httpx.get(f"{alma_server.url}{USERS}/mkowalski/fees")
    assert no_key.text == "Invalid API Key"  # the key is checked before the JSON rule


@pytest.mark.parametrize(("style", "shape"), [
    ("plain", lambda e: {"errorsExist": True, "errorList": {"error": [e]}, "result": None}),
    ("wrapped", lambda e: {"web_service_result": {
        "errorsExist": True, "errorList": {"error": [e]}, "result": None}}),
    ("single_object", lambda e: {"errorsExist": True, "errorList": {"error": e},
                                 "result": None}),
])
def test_error_styles(client: httpx.Client, alma: AlmaSandbox, style: str, shape: Any) -> None:
    alma.set_faults({"error_style": style})
    response = client.get(f"{USERS}/zz9999/fees")
    assert response.status_code == 400
    document = body(response)
    root = document.get("web_service_result", document)
    error = root["errorList"]["error"]
    error = error if isinstance(error, dict) else error[0]
    assert TRACKING_RE.match(error["trackingId"])
    assert error["trackingId"].startswith("E01-1402160312-")  # day, month and time of NOW
    assert document == shape({"errorCode": "401861",
                              "errorMessage": "User with identifier zz9999 was not found.",
                              "trackingId": error["trackingId"]})


def test_float_number_style_is_the_default(client: httpx.Client, alma: AlmaSandbox) -> None:
    text = client.get(f"{USERS}/mkowalski/fees/7730018830004146").text
    assert '"balance":60.0,"remaining_vat_amount":0.0,"original_amount":75.0,' in text
    assert '"amount":15.0,"vat_amount":0.0,' in text
    fee = client.get(f"{USERS}/mkowalski/fees/7730012450004146").text
    assert '"balance":4.75,' in fee
    assert client.get(f"{USERS}/pchen/fees").text == (
        '{"total_record_count":0,"total_sum":0.0,"currency":null}')


def test_mixed_number_style_of_older_answers(client: httpx.Client, alma: AlmaSandbox) -> None:
    alma.set_faults({"number_style": "mixed"})
    text = client.get(f"{USERS}/mkowalski/fees/7730018830004146").text
    assert '"balance":60,"remaining_vat_amount":0,"original_amount":75,' in text
    assert '"balance":4.75,' in client.get(f"{USERS}/mkowalski/fees/7730012450004146").text
    assert client.get(f"{USERS}/pchen/fees").text == (
        '{"total_record_count":0,"total_sum":0,"currency":null}')


def test_unimplemented_paths_are_404_not_missing_users(client: httpx.Client) -> None:
    assert client.get("/almaws/v1/items/123").status_code == 404
    assert client.get(f"{USERS}/nobody/loans").status_code == 404


# -- request log and control endpoints -------------------------------------------------------


def test_request_log_entries(client: httpx.Client, alma: AlmaSandbox) -> None:
    client.get(f"{USERS}/mkowalski/fees")
    pay(client, "mkowalski", "7730012450004146", op="pay", amount="1.00", method="ONLINE",
        external_transaction_id="77", comment="CashNet payment")
    client.get("/_emulator/requests")
    client.get("/_emulator/state/users/mkowalski")
    log = alma.requests()
    assert log == [
        {"seq": log[0]["seq"], "time": NOW_TEXT, "method": "GET",
         "path": f"{USERS}/mkowalski/fees", "query": {}, "status": 200, "fault": None,
         "committed": False},
        {"seq": log[0]["seq"] + 1, "time": NOW_TEXT, "method": "POST",
         "path": f"{USERS}/mkowalski/fees/7730012450004146",
         "query": {"op": ["pay"], "amount": ["1.00"], "method": ["ONLINE"],
                   "external_transaction_id": ["77"], "comment": ["CashNet payment"]},
         "status": 200, "fault": None, "committed": True},
    ]
    assert client.get("/_emulator/requests").json() == log
    assert client.delete("/_emulator/requests").status_code == 204
    assert alma.requests() == []


def test_control_endpoints_over_http(client: httpx.Client, alma: AlmaSandbox) -> None:
    assert client.put("/_emulator/clock", json={"now": "2025-03-01T08:00:00.250Z"}).status_code \
        == 204
    new_user = {"primary_id": "guest1", "first_name": "Gus", "last_name": "Guest",
                "account_type": "INTERNAL", "user_group": "COMMUNITY", "password": "pw-1",
                "identifiers": [{"type": "BARCODE", "value": "23191000999999"}]}
    assert client.post("/_emulator/users", json=new_user).json() == {"primary_id": "guest1"}
    created = client.post("/_emulator/users/guest1/fees",
                          json={"type": "OVERDUEFINE", "original_amount": "2.50",
                                "owner": "LAW", "title": "Bleak House"})
    assert created.status_code == 201
    fee_id = created.json()["id"]
    assert re.fullmatch(r"\d{12}4146", fee_id)
    listed = body(client.get(f"{USERS}/23191000999999/fees"))
    assert [(f["id"], f["balance"], f["creation_time"]) for f in listed["fee"]] == [
        (fee_id, Decimal("2.5"), "2025-03-01T08:00:00.250Z")]
    patched = client.patch(f"/_emulator/users/guest1/fees/{fee_id}",
                           json={"api_restricted": True})
    assert patched.json()["api_restricted"] is True
    refused = pay(client, "guest1", fee_id, op="pay", amount="1.00", method="ONLINE")
    assert error_code(refused) == "60340"
    state = client.get("/_emulator/state/users/guest1").json()
    assert state["fees"][0]["balance"] == "2.50"
    assert state["has_password"] is True and "password" not in state
    assert client.get("/_emulator/state/users/nobody").status_code == 404
    assert client.put("/_emulator/faults", json={"latency": 5}).status_code == 400
    assert client.post("/_emulator/users", json=new_user).status_code == 400  # duplicate
    assert client.post("/_emulator/reset").status_code == 204
    assert alma.requests() == []
    assert error_code(client.get(f"{USERS}/guest1/fees")) == "401861"


def test_accessor_add_user_and_fee(client: httpx.Client, alma: AlmaSandbox) -> None:
    alma.add_user({"primary_id": "Zed", "first_name": "Zed", "last_name": "Zee",
                   "user_group": "GRAD", "fees": [
                       {"id": "1110000000004146", "type": "OTHER", "original_amount": "1.10",
                        "owner": "SCI", "creation_time": "2025-01-01T00:00:00.000Z"}]})
    fee_id = alma.add_fee("zed", {"type": "OTHER", "original_amount": "2", "balance": "0.90",
                                  "owner": "SCI"})
    document = body(client.get(f"{USERS}/zed/fees"))
    assert [(f["id"], f["balance"]) for f in document["fee"]] == [
        ("1110000000004146", Decimal("1.1")), (fee_id, Decimal("0.9"))]
    assert document["total_sum"] == 2
    with pytest.raises(ValueError, match="two decimal places"):
        alma.add_fee("zed", {"type": "OTHER", "original_amount": "1.005", "owner": "SCI"})
    with pytest.raises(KeyError):
        alma.add_fee("nobody", {"type": "OTHER", "original_amount": "1", "owner": "SCI"})


def test_reset_restores_the_seed(client: httpx.Client, alma: AlmaSandbox) -> None:
    seeded = alma.user_state("mkowalski")
    pay(client, "mkowalski", "7730012450004146", op="pay", amount="4.75", method="ONLINE")
    alma.set_faults({"error_style": "wrapped"})
    assert alma.user_state("mkowalski") != seeded
    alma.reset()
    assert alma.user_state("mkowalski") == seeded
    assert alma.requests() == []
    assert "web_service_result" not in body(client.get(f"{USERS}/nobody/fees"))


# -- mounted under a prefix ------------------------------------------------------------------


def test_mounted_under_a_prefix_links_carry_it() -> None:
    alma_app = create_app()
    combined = Starlette(routes=[Mount("/alma", app=alma_app)])
    with ServerThread(combined) as running, httpx.Client(
        base_url=f"{running.url}/alma", headers=HEADERS
    ) as http:
        document = body(http.get(f"{USERS}/mkowalski/fees"))
        assert document["total_record_count"] == 3
        assert document["fee"][0]["link"] == (
            f"{running.url}/alma{USERS}/mkowalski/fees/7730018830004146")
        assert document["fee"][0]["user_primary_id"]["link"] == (
            f"{running.url}/alma{USERS}/mkowalski")
        assert http.get("/_emulator/requests").json()[0]["path"] == f"{USERS}/mkowalski/fees"


# -- what real answers do (issue 12, item 10) ------------------------------------------------


def test_real_account_cases_are_seeded(client: httpx.Client) -> None:
    fees = {f["id"]: f for f in body(client.get(f"{USERS}/lnguyen/fees"))["fee"]}
    assert len(fees) == 5  # the EXPORTED fee is in its own list
    assert fees["7730080040004146"]["balance"] == Decimal("2.125")  # not whole cents
    assert fees["7730080050004146"]["owner"] == {"value": "01PATRON_INST",
                                                "desc": "Patronpay Sandbox University"}
    assert fees["7730080060004146"]["owner"] is None
    exported = body(client.get(f"{USERS}/lnguyen/fees", params={"status": "EXPORTED"}))["fee"]
    assert [(f["id"], f["bursar_transaction_id"]) for f in exported] == [
        ("7730080010004146", "BUR-2025-000871")]


def test_optional_keys_left_out_and_old_api_dates(client: httpx.Client, alma: AlmaSandbox) -> None:
    alma.set_faults({"omit_empty_keys": True, "date_style": "epoch_ms"})
    fees = {f["id"]: f for f in body(client.get(f"{USERS}/lnguyen/fees"))["fee"]}
    no_owner = fees["7730080060004146"]
    assert not {"owner", "title", "barcode", "comment"} & set(no_owner)
    assert fees["7730080030004146"]["comment"] == "Refund for a found item"  # kept: it has one
    assert no_owner["creation_time"] == 1744735500000  # 2025-04-15T16:45:00.000Z
    assert isinstance(fees["7730080020004146"]["status_time"], int)


def test_xml_error_bodies(client: httpx.Client, alma: AlmaSandbox) -> None:
    alma.set_faults({"error_style": "xml"})
    response = client.get(f"{USERS}/zz9999")
    assert (response.status_code, response.headers["content-type"]) == (
        400, "application/xml;charset=UTF-8")
    assert response.text.startswith('<?xml version="1.0" encoding="UTF-8" standalone="yes"?>')
    assert ('<web_service_result xmlns="http://com/exlibris/urm/general/xmlbeans">'
            "<errorsExist>true</errorsExist><errorList><error><errorCode>401861</errorCode>"
            "<errorMessage>User with identifier zz9999 was not found.</errorMessage>"
            "<trackingId>E01-") in response.text


def test_per_second_threshold_with_another_status(client: httpx.Client, alma: AlmaSandbox) -> None:
    alma.set_faults({"per_second_limit": 0, "throttle_status": 400})
    response = client.get(f"{USERS}/mkowalski/fees")
    assert response.status_code == 400
    assert body(response)["errorList"]["error"][0]["errorCode"] == "PER_SECOND_THRESHOLD"
