"""Alma misbehaving while we post a paid payment (docs/alma.md#posting-exactly-once): retries,
exactly once through applied-then-failed answers, throttling, and permanent refusals."""

from decimal import Decimal

from support.alma import payments_carrying

D = Decimal
PAY_PATH = "/almaws/v1/users/*/fees/*"
LOST, OVERDUE, DAMAGED = "7730018830004146", "7730012450004146", "7730020010004146"


def pay_rule(mode, **extra):
    return {"match": {"method": "POST", "path": PAY_PATH}, "mode": mode, **extra}


EXPECTED_62 = {LOST: [D("60.00")], OVERDUE: [D("2.00")]}


def test_5xx_then_success(deploy):
    d = deploy()
    payment_id, cid = d.checkout(amount="62.00")
    d.alma.set_faults({"rules": [pay_rule("http_5xx", status=503, next=2)]})
    tx = d.cashnet.complete(cid)["tx"]
    payment = d.wait_for_state(payment_id, "posted")
    assert payments_carrying(d.alma, tx) == EXPECTED_62
    assert [a.state for a in payment.allocations] == ["posted", "posted"]
    # Two answers lost to 503: each retried only after reading Alma, never blindly.
    assert len(d.alma_calls("POST", "pay")) == 4


def test_applied_then_500_is_not_posted_twice(deploy):
    d = deploy()
    payment_id, cid = d.checkout(amount="62.00")
    d.alma.set_faults({"rules": [pay_rule("commit_then_500", next=1)]})
    tx = d.cashnet.complete(cid)["tx"]
    payment = d.wait_for_state(payment_id, "posted")
    assert payments_carrying(d.alma, tx) == EXPECTED_62
    assert len(d.alma_calls("POST", "pay")) == 2
    assert [a.outcome for a in payment.allocations] == ["found in Alma", "applied"]


def test_applied_then_dropped_connection_is_not_posted_twice(deploy):
    d = deploy()
    payment_id, cid = d.checkout(amount="62.00")
    d.alma.set_faults({"rules": [pay_rule("commit_then_drop", next=2)]})
    tx = d.cashnet.complete(cid)["tx"]
    d.wait_for_state(payment_id, "posted")
    assert payments_carrying(d.alma, tx) == EXPECTED_62
    assert len(d.alma_calls("POST", "pay")) == 2


def test_dropped_before_applying_is_sent_again_once(deploy):
    d = deploy()
    payment_id, cid = d.checkout(amount="62.00")
    d.alma.set_faults({"rules": [pay_rule("drop", next=1)]})
    tx = d.cashnet.complete(cid)["tx"]
    d.wait_for_state(payment_id, "posted")
    assert payments_carrying(d.alma, tx) == EXPECTED_62
    assert len(d.alma_calls("POST", "pay")) == 3


def test_timeout_while_alma_applies_is_found_by_reading_back(deploy):
    d = deploy(alma_read_timeout="0.5", alma_recheck_seconds="3")
    payment_id, cid = d.checkout(amount="62.00")
    d.alma.set_faults({"rules": [pay_rule("slow", latency_ms=1000, next=1)]})
    tx = d.cashnet.complete(cid)["tx"]
    d.wait_for_state(payment_id, "posted", timeout=30)
    assert payments_carrying(d.alma, tx) == EXPECTED_62
    assert len(d.alma_calls("POST", "pay")) == 2


def test_throttled_by_alma_then_posted(deploy):
    d = deploy()
    payment_id, cid = d.checkout()
    d.alma.set_faults({"per_second_limit": 1})
    tx = d.cashnet.complete(cid)["tx"]
    d.wait_for_state(payment_id, "posted", timeout=60)
    assert payments_carrying(d.alma, tx) == {LOST: [D("60.00")], OVERDUE: [D("4.75")], DAMAGED: [D("12.50")]}
    assert any(r["status"] == 429 for r in d.alma.requests())


def test_read_only_key_goes_to_attention_with_the_unapplied_amount(deploy):
    d = deploy(alma_api_key="sandbox-alma-readonly")
    payment_id, cid = d.checkout(amount="62.00")
    d.cashnet.complete(cid)
    payment = d.wait_for_state(payment_id, "attention")
    assert payment.unapplied == D("62.00")
    assert payment.reason.startswith("62.00 not applied in Alma: Alma refused the payment")
    assert [a.state for a in payment.allocations] == ["failed", "failed"]
    assert len(d.alma_calls("POST", "pay")) == 2  # each refused once, never retried


def test_fee_waived_meanwhile_holds_the_money_for_staff(deploy):
    d = deploy()
    payment_id, cid = d.checkout(amount="62.00")
    d.alma.set_fee("mkowalski", OVERDUE, balance="0.00", status="CLOSED")
    tx = d.cashnet.complete(cid)["tx"]
    payment = d.wait_for_state(payment_id, "attention")
    assert payments_carrying(d.alma, tx) == {LOST: [D("60.00")]}
    assert payment.unapplied == D("2.00")
    assert payment.reason == f"2.00 not applied in Alma: fee {OVERDUE} is closed"


def test_fee_partly_paid_meanwhile_applies_what_fits(deploy):
    d = deploy()
    payment_id, cid = d.checkout(amount="62.00")
    d.alma.set_fee("mkowalski", LOST, balance="50.00")
    tx = d.cashnet.complete(cid)["tx"]
    payment = d.wait_for_state(payment_id, "attention")
    assert payments_carrying(d.alma, tx) == {LOST: [D("50.00")], OVERDUE: [D("2.00")]}
    assert payment.unapplied == D("10.00")


def test_remainder_moves_to_other_fees_when_configured(deploy):
    d = deploy(reallocate_remainder="true")
    payment_id, cid = d.checkout(fee_ids=[LOST, OVERDUE], amount="62.00")
    d.alma.set_fee("mkowalski", OVERDUE, balance="0.00", status="CLOSED")
    tx = d.cashnet.complete(cid)["tx"]
    payment = d.wait_for_state(payment_id, "posted")
    assert payments_carrying(d.alma, tx) == {LOST: [D("60.00")], DAMAGED: [D("2.00")]}
    moved = [a for a in payment.allocations if a.origin.startswith("moved")]
    assert [(a.fee_id, a.amount, a.state) for a in moved] == [(DAMAGED, D("2.00"), "posted")]
    assert payment.applied == D("62.00") and payment.unapplied == D("0.00")


def test_alma_call_budget_for_a_payment(deploy):
    d = deploy()
    payment_id, cid = d.checkout(amount="62.00")
    d.alma.clear_requests()
    d.cashnet.complete(cid)
    d.wait_for_state(payment_id, "posted")
    # One LIST to check balances and earlier postings, then one PAY per fee; no USER, no LIST after.
    assert [(r["method"], r["path"].rsplit("/", 1)[-1]) for r in d.alma_calls()] == [
        ("GET", "fees"), ("POST", LOST), ("POST", OVERDUE)]


def test_two_shortfalls_moved_into_one_fee_are_both_posted(deploy):
    """Two fees waived meanwhile, their money moved into the same third fee: Alma must get
    both shares (the second is not 'found' in the first)."""
    d = deploy(reallocate_remainder="true")
    d.alma.add_user({"primary_id": "mover", "first_name": "Mo", "last_name": "Ver",
                     "account_type": "EXTERNAL", "status": "ACTIVE", "user_group": "UGRAD"})
    first = d.alma.add_fee("mover", {"type": "OVERDUEFINE", "owner": "MAIN", "original_amount": "5.00",
                                     "balance": "5.00", "creation_time": "2025-01-01T00:00:00.000Z"})
    second = d.alma.add_fee("mover", {"type": "OVERDUEFINE", "owner": "MAIN", "original_amount": "5.00",
                                      "balance": "5.00", "creation_time": "2025-01-02T00:00:00.000Z"})
    third = d.alma.add_fee("mover", {"type": "LOCKERKEY", "owner": "MAIN", "original_amount": "20.00",
                                     "balance": "20.00", "creation_time": "2025-01-03T00:00:00.000Z"})
    patron = d.sign_in_sso("mover")
    created = d.start_payment(patron, fee_ids=[first, second])
    cid = d.hand_off(created["checkout"])
    for fee_id in (first, second):
        d.alma.set_fee("mover", fee_id, balance="0.00", status="CLOSED")
    tx = d.cashnet.complete(cid)["tx"]
    payment = d.wait_for_state(created["payment"]["id"], "posted")
    fees = {f["id"]: f for f in d.alma.user_state("mover")["fees"]}
    assert payments_carrying(d.alma, tx, "mover") == {third: [D("5.00"), D("5.00")]}
    assert fees[third]["balance"] == D("10.00")
    assert payment.applied == D("10.00") and payment.unapplied == D("0.00")
    assert len(d.alma_calls("POST", "pay")) == 2


def test_a_worker_settles_payments_left_paid_by_a_crash(deploy):
    """The last allocation was posted, then the process died before settling: the next
    worker's first sweep settles it."""
    d = deploy(run_worker=False)
    payment_id, cid = d.checkout(amount="62.00")
    d.cashnet.complete(cid)
    for allocation in d.ledger.payment(payment_id).allocations:
        d.ledger.mark_posted(allocation.id, "applied")
    assert d.ledger.payment(payment_id).state == "paid"
    from proxy.posting import PostingWorker
    from proxy.runtime import posting_policy
    PostingWorker(d.ledger, d.services.alma, posting_policy(d.settings))._sweep()
    assert d.ledger.payment(payment_id).state == "posted"
