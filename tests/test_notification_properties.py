"""Property-based tests of CashNet's notification endpoint (docs/cashnet.md#notification-checks):
arbitrary bodies, and arbitrary orders of duplicate, late, out-of-order, tampered and failed
notifications, mixed with posting rounds, the expiry timer and staff actions. Whatever comes:
never a 5xx, every notification recorded once, only the transitions the state machine allows,
and never more in Alma than the ledger posted.

The proxy app and the sandbox Alma run in-process through httpx's ASGI transport (nothing
network-shaped is under test here), with a fresh ledger for every example."""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
from collections import defaultdict
from decimal import Decimal
from urllib.parse import quote_plus

import httpx
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from patronpay.demo import sandbox_environment
from proxy.app import create_app
from proxy.config import load_settings
from proxy.patrons import Patron
from proxy.payments import start_payment
from proxy.runtime import build_services
from sandbox.app import create_sandbox_app

D = Decimal
TOKEN = "p" * 40
LOST, OVERDUE, DAMAGED = "7730018830004146", "7730012450004146", "7730020010004146"
PATRON = Patron("mkowalski", "Maria", "Kowalski", "mkowalski@example.edu", "EXTERNAL")
# Payment 0 pays the lost-item fee, payment 1 the two fines: their postings never compete.
CHOICES = [{"fee_ids": [LOST], "amount": None}, {"fee_ids": [OVERDUE, DAMAGED], "amount": "10.00"}]

# Every state a payment may move to from each state, by notification, posting round, expiry
# timer or staff action (docs/cashnet.md#what-a-notification-does). Staying put is always allowed.
ALLOWED = {
    "pending": {"paid", "declined", "cancelled", "expired", "attention"},
    "declined": {"paid", "declined", "cancelled", "attention"},
    "cancelled": {"paid", "declined", "cancelled", "attention"},
    "expired": {"paid", "attention"},
    "paid": {"posted", "attention"},
    "posted": set(),
    "attention": {"paid", "resolved"},  # paid again only by a staff retry
    "resolved": set(),
}
FIELD_NAMES = ["result", "respmessage", "tx", "failedtx", "itemcnt", "itemcode1", "amount1",
               "itemcode2", "amount2", "itemcode", "amount", "custcode", "ref1type1", "ref1val1",
               "ref1type2", "ref1val2", "batchno", "effdate", "pmtcode", "payment_ref"]
# Values that look like numbers to some parsers and not to others.
ODD_VALUES = ["", "0", "²", "①", "١٢", "1e3", "-1", "NaN", "Infinity", "0x10", " 2 ", "2.005",
              "99999999999999999999", "12,50", "\x00", "%", "ref1val1", "PAYMENT_ID"]
NUMBER_FIELDS = ["itemcnt", "amount1", "amount2", "amount", "result", "tx"]

which = st.sampled_from([0, 1, "unknown", "both", "none"])
success = st.fixed_dictionaries({
    "kind": st.just("success"), "payment": which, "tx": st.sampled_from(["500001", "500002",
                                                                       "500003", ""]),
    "tamper": st.sampled_from([None, None, None, "amount", "itemcode", "lines", "custcode",
                               "conflict"]),
    "style": st.sampled_from(["plain", "ampersand", "upper", "slot2", "cp1252"])})
failure = st.fixed_dictionaries({
    "kind": st.just("failure"), "payment": which,
    "result": st.sampled_from(["209", "902", "7", "232", "abc", " 0 1", ""]),
    "failedtx": st.sampled_from(["600001", "600002", None]),
    "style": st.sampled_from(["plain", "upper"])})
fuzzed = st.fixed_dictionaries({
    "kind": st.just("fuzz"), "payment": st.sampled_from([0, 1]),
    "tx": st.sampled_from(["500001", "500004"]),
    "changes": st.one_of(
        st.dictionaries(st.sampled_from(FIELD_NAMES) | st.text(max_size=8),
                        st.sampled_from(ODD_VALUES) | st.text(max_size=12), max_size=5),
        st.dictionaries(st.sampled_from(NUMBER_FIELDS), st.sampled_from(ODD_VALUES),
                        min_size=1, max_size=3))})
raw = st.fixed_dictionaries({"kind": st.just("raw"), "body": st.binary(max_size=300)})
step = st.one_of(
    st.tuples(st.just("notify"), st.one_of(success, success, failure, fuzzed, raw)),
    st.tuples(st.just("repeat")),
    st.tuples(st.just("drain")),
    st.tuples(st.just("expire")),
    st.tuples(st.just("retry"), st.sampled_from([0, 1])),
    st.tuples(st.just("resolve"), st.sampled_from([0, 1])))


@pytest.fixture
def world(tmp_path):
    """One sandbox Alma and base settings for the whole test; a ledger per example."""
    sandbox_app = create_sandbox_app()
    env = sandbox_environment("http://127.0.0.1:9", "http://127.0.0.1:8",
                              tmp_path / "unused.sqlite3", TOKEN, log_level="WARNING")
    base = load_settings(env)
    counter = itertools.count()

    def fresh_settings():
        return dataclasses.replace(base, database=str(tmp_path / f"ex{next(counter)}.sqlite3"))

    return sandbox_app, fresh_settings


def body_for(spec: dict, payments: list) -> bytes:
    """A notification as CashNet (or something posing as it) would send it."""
    if spec["kind"] == "raw":
        return spec["body"]
    target = spec["payment"]
    payment = payments[target] if isinstance(target, int) else payments[0]
    pairs = []
    if spec["kind"] in ("success", "fuzz"):
        pairs += [("result", "0"), ("respmessage", "SUCCESS"), ("tx", spec["tx"]),
                  ("batchno", "7")]
    else:
        pairs += [("result", spec["result"]), ("respmessage", "DECLINED")]
        if spec["failedtx"]:
            pairs.append(("failedtx", spec["failedtx"]))
    lines = [(line.item_code, f"{line.amount:.2f}") for line in payment.lines]
    tamper = spec.get("tamper")
    if tamper == "amount":
        lines[-1] = (lines[-1][0], f"{D(lines[-1][1]) - D('0.01'):.2f}")
    elif tamper == "itemcode":
        lines[0] = ("LIB-OTHER", lines[0][1])
    elif tamper == "lines":
        lines = lines[:-1] + [("LIB-FINE", "0.01")] * (2 if len(lines) == 1 else 0)
    pairs.append(("itemcnt", str(len(lines))))
    for number, (code, amount) in enumerate(lines, start=1):
        pairs += [(f"itemcode{number}", code), (f"amount{number}", amount)]
    pairs.append(("custcode", "someone-else" if tamper == "custcode" else payment.custcode))
    if tamper == "conflict":
        pairs.append(("batchno", "8"))
    slot = 2 if spec.get("style") == "slot2" else 1
    if target == "unknown":
        pairs += [(f"ref1type{slot}", "PAYMENT_ID"), (f"ref1val{slot}", "f" * 32)]
    elif target == "both":
        pairs += [("ref1type1", "PAYMENT_ID"), ("ref1val1", payments[0].id),
                  ("ref1type2", "PAYMENT_ID"), ("ref1val2", payments[1].id)]
    elif target != "none":
        pairs += [(f"ref1type{slot}", "PAYMENT_ID"), (f"ref1val{slot}", payment.id)]
    if spec["kind"] == "fuzz":
        changed = dict(pairs) | spec["changes"]
        pairs = list(changed.items())
    style = spec.get("style", "plain")
    if style == "upper":
        pairs = [(name.upper(), value) for name, value in pairs]
    charset = "cp1252" if style == "cp1252" else "utf-8"
    text = "&".join(f"{quote_plus(name, encoding=charset, errors='replace')}="
                    f"{quote_plus(value, encoding=charset, errors='replace')}"
                    for name, value in pairs)
    return (("&" if style == "ampersand" else "") + text).encode("ascii")


async def run_example(sandbox_app, app_settings, steps) -> None:
    sandbox_app.state.alma.reset()
    alma_transport = httpx.ASGITransport(app=sandbox_app)
    services = build_services(app_settings, alma_transport=alma_transport)
    app = create_app(app_settings, services, run_worker=False)
    ledger = services.ledger
    # A crash must show as what CashNet would get, a 500, not as an exception in the test.
    transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 40000),
                                    raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1:9") as cashnet:
        try:
            payments = [(await start_payment(
                alma=services.alma, ledger=ledger, settings=app_settings, patron=PATRON,
                channel="web", session_id="s", **choice)).payment for choice in CHOICES]
            ids = [p.id for p in payments]
            states = [p.state for p in payments]
            txs: list[str | None] = [None, None]
            sent, last = 0, None
            for action, *args in steps:
                if action == "repeat":
                    if last is None:
                        continue
                    action, args = "notify", [last]
                if action == "notify":
                    last = args[0]
                    response = await cashnet.post(
                        f"/cashnet/postback/{TOKEN}", content=body_for(args[0], payments),
                        headers={"Content-Type": "application/x-www-form-urlencoded"})
                    sent += 1
                    assert (response.status_code, response.text) == (200, "OK")
                elif action == "drain":
                    await services.worker.drain()
                elif action == "expire":
                    ledger.expire_pending(-1)  # the timer, with every pending payment overdue
                else:
                    staff_action(ledger, action, ledger.payment(ids[args[0]]))
                for index, payment_id in enumerate(ids):
                    now = ledger.payment(payment_id)
                    before = states[index]
                    assert now.state == before or now.state in ALLOWED[before], (
                        f"{before} -> {now.state} on {action}")
                    if before == "attention" and now.state == "paid":
                        assert action == "retry"
                    if txs[index] is not None:
                        assert now.cashnet_tx == txs[index]  # a settled tx never changes
                    txs[index] = now.cashnet_tx
                    states[index] = now.state
            await services.worker.drain()  # let everything due reach Alma
            assert len(ledger.notifications()) == sent  # each recorded, once
            for payment_id in ids:  # what the examples reached (--hypothesis-show-statistics)
                event(f"ended {ledger.payment(payment_id).state}")
            assert_alma_matches_ledger(sandbox_app, [ledger.payment(i) for i in ids])
        finally:
            await services.aclose()


def staff_action(ledger, action: str, payment) -> None:
    """A staff retry or resolve: done exactly when the ledger's rules allow it, refused
    (ValueError) otherwise."""
    try:
        if action == "retry":
            ledger.retry(payment.id, "prop")
        else:
            ledger.resolve(payment.id, "settled by hand", "prop")
        done = True
    except ValueError:
        done = False
    if action == "retry":
        assert done == (payment.state == "attention" and payment.cashnet_tx is not None)
    else:
        assert done == (payment.state == "attention" or bool(payment.review))


def assert_alma_matches_ledger(sandbox_app, payments) -> None:
    """For every PAYMENT in Alma carrying one of our transaction numbers: a posted allocation
    of the payment holding that number, on that fee, for that amount; nothing else, no twice."""
    posted = defaultdict(list)
    for payment in payments:
        for a in payment.allocations:
            if a.state == "posted" and a.amount > 0:
                posted[(payment.cashnet_tx, a.fee_id)].append(a.amount)
    in_alma = defaultdict(list)
    for fee in sandbox_app.state.alma.user_state("mkowalski")["fees"]:
        for t in fee.get("transactions", []):
            if t["type"] == "PAYMENT" and t.get("external_transaction_id") != "8801937":
                in_alma[(t.get("external_transaction_id"), fee["id"])].append(t["amount"])
    assert {k: sorted(v) for k, v in in_alma.items()} == {k: sorted(v)
                                                          for k, v in posted.items()}


@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(steps=st.lists(step, min_size=1, max_size=14))
def test_any_order_of_notifications_keeps_the_state_machine_and_posts_once(world, steps):
    sandbox_app, fresh_settings = world
    asyncio.run(run_example(sandbox_app, fresh_settings(), steps))


@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(bodies=st.lists(st.one_of(raw, fuzzed, success, failure), min_size=1, max_size=6))
def test_arbitrary_bodies_never_cause_a_server_error(world, bodies):
    sandbox_app, fresh_settings = world
    asyncio.run(run_example(sandbox_app, fresh_settings(),
                            [("notify", body) for body in bodies] + [("drain",)]))
