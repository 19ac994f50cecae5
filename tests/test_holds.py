"""One payment at a time for the same fees (docs/architecture.md#payments-in-progress): held
fees, the 409 with the payment in the way, going back to CashNet or cancelling, the most open
payments, and races (two tabs, web and kiosk, two `serve` processes) that yield one payment."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal

import httpx
import pytest
from support.kiosk import MARIA
from support.postgres import BOTH
from support.rig import ProxyProcess, Rig, free_port

from proxy.db import Database
from proxy.ledger import HoldRules, Ledger, LineRecord, PaymentInProgress

LOST, OVERDUE = "7730018830004146", "7730012450004146"
RULES = HoldRules(pending_hold_seconds=20 * 60, max_open=3)


class Clock:
    def __init__(self):
        self.now = 1_760_000_000.0

    def __call__(self):
        return self.now


def start(ledger, payment_id, fees=(LOST,), patron="mkowalski", channel="web",
          rules=RULES):
    return ledger.start_payment(
        rules=rules, payment_id=payment_id, patron_id=patron, patron_name="Maria Kowalski",
        channel=channel, session_id="s", amount=Decimal("1.00") * len(fees), currency="USD",
        custcode=patron, lines=[LineRecord(1, "LIB", Decimal("1.00") * len(fees), "Fees")],
        allocations=[(fee, "OVERDUEFINE", "Overdue fine", Decimal("1.00")) for fee in fees],
        checkout={"action": "x", "method": "POST", "fields": {}})


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def ledger(tmp_path, clock):
    return Ledger(Database(tmp_path / "ledger.sqlite3"), clock)


# --- the ledger's decision ---


def test_a_pending_payment_holds_its_fees_until_the_hold_runs_out(ledger, clock):
    first = start(ledger, "a" * 32, fees=(LOST, OVERDUE))
    with pytest.raises(PaymentInProgress) as refused:
        start(ledger, "b" * 32, fees=(OVERDUE,))
    assert refused.value.reason == "overlap"
    assert [item.payment.id for item in refused.value.payments] == [first.id]
    assert ledger.payment("b" * 32) is None
    clock.now += 20 * 60 + 1
    assert start(ledger, "b" * 32, fees=(OVERDUE,)).state == "pending"


def test_other_fees_and_other_patrons_are_not_held(ledger):
    start(ledger, "a" * 32, fees=(LOST,))
    start(ledger, "b" * 32, fees=(OVERDUE,))
    start(ledger, "c" * 32, fees=(LOST,), patron="jsmith")
    assert {i.payment.id for i in ledger.in_progress("mkowalski", RULES)} == {"a" * 32, "b" * 32}


def test_a_paid_payment_holds_its_fees_until_each_share_is_in_alma(ledger):
    start(ledger, "a" * 32, fees=(LOST, OVERDUE))
    ledger.record_paid("a" * 32, cashnet_tx="9001", amount=Decimal("2.00"), note="seen",
                       actor="t")
    payment = ledger.payment("a" * 32)
    [held] = ledger.in_progress("mkowalski", RULES)
    assert held.fee_ids == {LOST, OVERDUE} and not held.open
    ledger.mark_posted(payment.allocations[0].id, "applied")
    [held] = ledger.in_progress("mkowalski", RULES)
    assert held.fee_ids == {OVERDUE}
    assert start(ledger, "b" * 32, fees=(LOST,)).state == "pending"


def test_declined_cancelled_and_expired_payments_hold_nothing(ledger):
    start(ledger, "a" * 32)
    ledger.cancel_payment("a" * 32, "mkowalski", "patron")
    assert ledger.in_progress("mkowalski", RULES) == []
    assert start(ledger, "b" * 32).state == "pending"


def test_at_most_max_open_payments_per_patron(ledger):
    for n, fee in enumerate(("1", "2", "3")):
        start(ledger, str(n) * 32, fees=(fee,))
    with pytest.raises(PaymentInProgress) as refused:
        start(ledger, "9" * 32, fees=("4",))
    assert refused.value.reason == "too_many"
    assert len(refused.value.payments) == 3


def test_cancel_is_the_patrons_own_and_only_while_pending(ledger):
    start(ledger, "a" * 32)
    with pytest.raises(LookupError):
        ledger.cancel_payment("a" * 32, "jsmith", "patron")
    cancelled = ledger.cancel_payment("a" * 32, "mkowalski", "patron")
    assert (cancelled.state, cancelled.reason) == ("cancelled", "cancelled by the patron")
    with pytest.raises(ValueError):
        ledger.cancel_payment("a" * 32, "mkowalski", "patron")


@BOTH  # SQLite's BEGIN IMMEDIATE, PostgreSQL's write lock
def test_threads_on_separate_connections_start_one_payment(ledger_target):
    path = ledger_target("ledger")
    ledgers = [Ledger(Database(path)) for _ in range(8)]
    barrier = threading.Barrier(len(ledgers))

    def attempt(n: int) -> str:
        barrier.wait()
        try:
            start(ledgers[n], f"{n:032x}", fees=(LOST,))
            return "won"
        except PaymentInProgress:
            return "refused"

    with ThreadPoolExecutor(len(ledgers)) as pool:
        results = list(pool.map(attempt, range(len(ledgers))))
    assert sorted(results) == ["refused"] * 7 + ["won"]
    assert len(ledgers[0].find_payments(patron_id="mkowalski")) == 1


# --- over HTTP ---


def race(*calls):
    """Run the calls at the same instant, each on its own thread; their results in order."""
    barrier = threading.Barrier(len(calls))

    def run(call):
        barrier.wait()
        return call()

    with ThreadPoolExecutor(len(calls)) as pool:
        return list(pool.map(run, calls))


def test_fees_in_progress_are_shown_and_left_out_of_the_payable_total(deploy):
    d = deploy()
    tab = d.sign_in_sso("mkowalski")
    before = tab.get("/api/fees").json()
    d.start_payment(tab, fee_ids=[OVERDUE])
    fees = tab.get("/api/fees").json()
    overdue = next(f for f in fees["fees"] if f["id"] == OVERDUE)
    assert (overdue["payable"], overdue["note"]) == (False, "in_progress")
    balance = next(f for f in before["fees"] if f["id"] == OVERDUE)["balance"]
    assert Decimal(fees["payable_total"]) == Decimal(before["payable_total"]) - Decimal(balance)
    [shown] = fees["in_progress"]
    assert (shown["amount"], shown["channel"], shown["kiosk"], shown["fee_ids"],
            shown["can_resume"], shown["can_cancel"]) == (balance, "web", None, [OVERDUE],
                                                          True, True)


def test_two_tabs_at_once_start_one_payment_and_the_other_hears_which(deploy):
    d = deploy()
    tab = d.sign_in_sso("mkowalski")
    answers = race(*[lambda: tab.post("/api/payments", json={})] * 2)
    assert sorted(a.status_code for a in answers) == [201, 409]
    won = next(a for a in answers if a.status_code == 201).json()["payment"]
    refused = next(a for a in answers if a.status_code == 409).json()
    assert refused["error"]["code"] == "payment_in_progress"
    [shown] = refused["in_progress"]
    assert (shown["id"], shown["amount"], shown["channel"]) == (won["id"], won["amount"], "web")
    assert len(d.ledger.find_payments(patron_id="mkowalski")) == 1


def test_going_back_to_cashnet_hands_off_the_same_payment(deploy):
    d = deploy()
    tab = d.sign_in_sso("mkowalski")
    created = d.start_payment(tab, fee_ids=[OVERDUE])
    again = tab.post(f"/api/payments/{created['payment']['id']}/resume", json={})
    assert again.status_code == 200, again.text
    assert again.json()["checkout"] == created["checkout"]
    completion = d.cashnet.complete(d.hand_off(again.json()["checkout"]))
    assert completion
    d.wait_for_state(created["payment"]["id"], "posted")


def test_cancel_frees_the_fees_and_a_later_success_still_posts(deploy):
    d = deploy()
    tab = d.sign_in_sso("mkowalski")
    created = d.start_payment(tab, fee_ids=[OVERDUE])
    payment_id = created["payment"]["id"]
    cid = d.hand_off(created["checkout"])
    refused = tab.post("/api/payments", json={"fee_ids": [OVERDUE]})
    assert refused.status_code == 409
    cancelled = tab.post(f"/api/payments/{payment_id}/cancel", json={})
    assert cancelled.json()["payment"]["state"] == "cancelled"
    assert tab.post(f"/api/payments/{payment_id}/cancel", json={}).status_code == 404
    fees = tab.get("/api/fees").json()
    assert next(f for f in fees["fees"] if f["id"] == OVERDUE)["payable"] is True
    d.cashnet.complete(cid)  # the patron paid in the CashNet tab after all
    paid = d.wait_for_state(payment_id, "posted")
    assert paid.cashnet_tx
    assert len(d.alma_calls("POST", "pay")) == 1


def test_another_patron_cannot_resume_or_cancel(deploy):
    d = deploy()
    created = d.start_payment(d.sign_in_sso("mkowalski"), fee_ids=[OVERDUE])
    other = d.sign_in_sso("jsmith")
    payment_id = created["payment"]["id"]
    for action in ("resume", "cancel"):
        assert other.post(f"/api/payments/{payment_id}/{action}", json={}).status_code == 404
    assert d.ledger.payment(payment_id).state == "pending"


def test_too_many_open_payments_answers_409_with_them(deploy):
    d = deploy(max_open_payments="1")
    tab = d.sign_in_sso("mkowalski")
    first = d.start_payment(tab, fee_ids=[OVERDUE])
    answer = tab.post("/api/payments", json={"fee_ids": [LOST]})
    assert answer.status_code == 409
    assert answer.json()["error"]["code"] == "too_many_open_payments"
    assert [p["id"] for p in answer.json()["in_progress"]] == [first["payment"]["id"]]


def test_web_and_kiosk_at_the_same_instant_start_one_payment(kiosk):
    k = kiosk()
    web = k.d.sign_in_sso("mkowalski")
    k.scan(MARIA)
    page = k.page()
    page.headers["X-CSRF-Token"] = k.handle()
    answers = race(lambda: web.post("/api/payments", json={}),
                   lambda: page.post("/api/payments", json={}))
    assert sorted(a.status_code for a in answers) == [201, 409], [a.text for a in answers]
    refused = next(a for a in answers if a.status_code == 409).json()
    won = next(a for a in answers if a.status_code == 201).json()["payment"]
    [shown] = refused["in_progress"]
    assert shown["id"] == won["id"]
    assert len(k.d.ledger.find_payments(patron_id="mkowalski")) == 1
    if shown["channel"] == "kiosk":
        assert (shown["kiosk"], shown["can_resume"]) == ("lib1", False)


def test_the_kiosk_offers_its_own_payment_back(kiosk):
    k = kiosk()
    k.scan(MARIA)
    page = k.page()
    page.headers["X-CSRF-Token"] = k.handle()
    created = page.post("/api/payments", json={"fee_ids": [OVERDUE]})
    assert created.status_code == 201, created.text
    fees = page.get("/api/fees", params={"handle": k.handle()}).json()
    [shown] = fees["in_progress"]
    assert (shown["channel"], shown["kiosk"], shown["can_resume"]) == ("kiosk", "lib1", True)
    again = page.post(f"/api/payments/{shown['id']}/resume", json={})
    assert again.status_code == 200, again.text
    assert again.json()["checkout"] == created.json()["checkout"]
    assert k.session()["payment"] == shown["id"]
    cancelled = page.post(f"/api/payments/{shown['id']}/cancel", json={})
    assert cancelled.json()["payment"]["state"] == "cancelled"


@pytest.mark.slow
def test_two_serve_processes_at_the_same_instant_start_one_payment(tmp_path):
    rig = Rig(tmp_path)
    second = ProxyProcess(rig.proxy.env, free_port(), tmp_path / "proxy2.log")
    try:
        rig.proxy.start()
        second.start()

        def tab(url: str) -> httpx.Client:
            client = httpx.Client(base_url=url, headers={"Origin": rig.proxy.url}, timeout=15)
            assert client.get("/auth/sso", headers={"X-Remote-User": "mkowalski"}).status_code \
                == 303
            client.headers["X-CSRF-Token"] = client.get("/api/session").json()["csrf_token"]
            return client

        tabs = [tab(rig.proxy.url), tab(second.url)]
        answers = race(*[lambda c=c: c.post("/api/payments", json={}) for c in tabs])
        for client in tabs:
            client.close()
        assert sorted(a.status_code for a in answers) == [201, 409], [a.text for a in answers]
        assert len(rig.ledger.find_payments(patron_id="mkowalski")) == 1
    finally:
        second.stop()
        rig.close()


def test_the_payments_of_the_last_year_with_their_receipts(deploy):
    d = deploy()
    tab = d.sign_in_sso("mkowalski")
    posted, _ = d.pay(tab, fee_ids=[OVERDUE])
    d.wait_for_state(posted["payment"]["id"], "posted")
    declined, _ = d.pay(tab, outcome="decline", fee_ids=[LOST])
    d.wait_for_state(declined["payment"]["id"], "declined")
    cancelled = d.start_payment(tab, fee_ids=[LOST])["payment"]["id"]
    tab.post(f"/api/payments/{cancelled}/cancel", json={})
    pending = d.start_payment(tab, fee_ids=[LOST])["payment"]["id"]
    listed = tab.get("/api/payments").json()["payments"]
    assert [(p["id"], p["state"], p["channel"]) for p in listed] == [
        (pending, "pending", "web"), (declined["payment"]["id"], "declined", "web"),
        (posted["payment"]["id"], "posted", "web")]  # newest first; the cancelled one left out
    receipt = httpx.get(f"{d.url}/api/receipts/{listed[2]['receipt_token']}").json()
    assert receipt["payment"]["state"] == "posted"
    assert [p["id"] for p in tab.get("/api/payments?limit=1").json()["payments"]] == [pending]
    assert tab.get("/api/payments?limit=0").status_code == 400
    assert d.sign_in_sso("jsmith").get("/api/payments").json() == {"payments": []}


def test_the_kiosk_lists_the_last_three_without_receipt_links(kiosk):
    k = kiosk()
    web = k.d.sign_in_sso("mkowalski")
    for fee in (OVERDUE, LOST, "7730020010004146"):
        created, _ = k.d.pay(web, fee_ids=[fee], outcome="decline")
        k.d.wait_for_state(created["payment"]["id"], "declined")
    k.d.start_payment(web, fee_ids=[OVERDUE])
    k.scan(MARIA)
    listed = k.page().get("/api/payments", params={"handle": k.handle()}).json()["payments"]
    assert [p["state"] for p in listed] == ["pending", "declined", "declined"]
    assert all("receipt_token" not in p for p in listed)
