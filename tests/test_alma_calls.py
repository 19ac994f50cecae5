"""Alma calls per patron visit, counted exactly in the sandbox Alma's request log
(docs/alma.md#call-budget): Alma's per-second limit and daily quota are shared by every
integration of the institution, so each call patronpay makes is a cost the library feels.

A visit by single sign-on is one USER (sign-in), one LIST (the fees page), nothing to start the
payment (the list the page was drawn from is kept), then one LIST before posting and one PAY
per fee: 3 + N for N fees. A reload of the fees page within PATRONPAY_FEES_FRESH_SECONDS
costs nothing."""

from __future__ import annotations

from collections import Counter

import pytest

PAY_PATH = "/almaws/v1/users/*/fees/*"


def pay_rule(mode, **extra):
    return {"match": {"method": "POST", "path": PAY_PATH}, "mode": mode, **extra}


def add_patron(d, user_id: str, fees: int) -> None:
    d.alma.add_user({
        "primary_id": user_id, "first_name": "Call", "last_name": "Counter",
        "account_type": "EXTERNAL", "user_group": "UGRAD",
        "emails": [{"address": f"{user_id}@example.edu", "preferred": True}],
        "fees": [{"type": "OVERDUEFINE", "owner": "SCI", "original_amount": "10.00",
                  "creation_time": f"2025-01-01T00:00:{n:02d}.000Z"} for n in range(fees)],
    })


def kind(call: dict) -> str:
    """The call's name in docs/alma.md#calls."""
    parts = call["path"].removeprefix("/almaws/v1/").split("/")
    if call["query"].get("op") == ["pay"]:
        return "PAY"
    return {2: "USER", 3: "LIST", 4: "FEE"}.get(len(parts), call["path"])


def taken(d) -> Counter:
    """The Alma calls since the last look, by kind."""
    calls = Counter(kind(call) for call in d.alma_calls())
    d.alma.clear_requests()
    return calls


def visit(d, user_id: str, faults: list | None = None, **body) -> dict[str, Counter]:
    """One patron's whole visit, every Alma call charged to the step that made it."""
    d.alma.clear_requests()
    steps: dict[str, Counter] = {}
    patron = d.sign_in_sso(user_id)
    steps["sign_in"] = taken(d)
    assert patron.get("/api/fees").status_code == 200
    steps["fees_page"] = taken(d)
    created = d.start_payment(patron, **body)
    steps["start"] = taken(d)
    if faults:
        d.alma.set_faults({"rules": faults})
    d.cashnet.complete(d.hand_off(created["checkout"]))
    d.wait_for_state(created["payment"]["id"], "posted")
    steps["posting"] = taken(d)
    return steps


@pytest.mark.parametrize("fees", [1, 2, 5])
def test_a_visit_costs_three_calls_plus_one_per_fee(deploy, fees):
    d = deploy()
    add_patron(d, "counted", fees)
    steps = visit(d, "counted")
    assert steps == {"sign_in": Counter(USER=1), "fees_page": Counter(LIST=1),
                     "start": Counter(),
                     "posting": Counter(LIST=1, PAY=fees)}
    assert sum(sum(step.values()) for step in steps.values()) == 3 + fees


def test_a_partial_payment_pays_only_the_fees_it_covers(deploy):
    d = deploy()
    add_patron(d, "partial", 3)
    steps = visit(d, "partial", amount="15.00")  # 10.00 + 5.00 of three 10.00 fees
    assert steps["start"] == Counter()
    assert steps["posting"] == Counter(LIST=1, PAY=2)


def test_a_reload_within_the_fresh_window_costs_nothing(deploy):
    d = deploy(fees_fresh_seconds="30")
    add_patron(d, "reloads", 2)
    patron = d.sign_in_sso("reloads")
    first = patron.get("/api/fees").json()
    taken(d)
    for _ in range(3):
        assert patron.get("/api/fees").json() == first
    assert taken(d) == Counter()


def test_a_paid_payment_drops_the_kept_list(deploy):
    d = deploy()
    add_patron(d, "dropped", 2)
    steps = visit(d, "dropped", amount="10.00")
    assert steps["start"] == Counter()
    patron = d.clients[-1]
    after = patron.get("/api/fees").json()
    assert [fee["balance"] for fee in after["fees"]] == ["10.00"]
    assert taken(d) == Counter(LIST=1)


def test_a_5xx_on_pay_costs_one_read_and_one_pay_more(deploy):
    d = deploy()
    add_patron(d, "retried", 1)
    steps = visit(d, "retried", faults=[pay_rule("http_5xx", status=503, next=1)])
    assert steps["start"] == Counter()
    # Alma does not de-duplicate a payment: after a 5xx the worker reads before paying again.
    assert steps["posting"] == Counter(LIST=2, PAY=2)


def test_applied_then_5xx_is_found_without_paying_again(deploy):
    d = deploy()
    add_patron(d, "applied", 1)
    steps = visit(d, "applied", faults=[pay_rule("commit_then_500", next=1)])
    assert steps["start"] == Counter()
    assert steps["posting"] == Counter(FEE=1, LIST=2, PAY=1)
