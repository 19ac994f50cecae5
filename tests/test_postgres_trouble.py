"""PostgreSQL restarting under a running service (docs/deploy.md#two-nodes): requests get a
clean 503, CashNet's notification is not acknowledged so CashNet sends it again, and once the
database is back the pool reconnects, the notification is recorded once and the worker posts
the payment once."""

from __future__ import annotations

import threading

import httpx
import pytest
from support.alma import payments_carrying
from support.waiting import wait_for

from sandbox.app import CASHNET_STORE

ON_POSTGRES = pytest.mark.parametrize("ledger_backend", ["postgresql"], indirect=True)


@ON_POSTGRES
@pytest.mark.timeout(120)
def test_a_restart_mid_payment_answers_503_then_the_payment_is_posted_once(deploy,
                                                                          postgres_cluster):
    d = deploy()
    d.cashnet.configure_store(CASHNET_STORE, retries=5, retry_delay_s=2.0, notify_timeout_s=10)
    patron = d.sign_in_sso("mkowalski")
    created = d.start_payment(patron)
    payment_id = created["payment"]["id"]
    cid = d.hand_off(created["checkout"])

    postgres_cluster.stop()
    try:
        ready = httpx.get(d.url + "/readyz", timeout=30)
        assert ready.status_code == 503
        answer = patron.get(f"/api/payments/{payment_id}")
        assert answer.status_code == 503
        assert answer.json()["error"]["code"] == "unavailable"
        assert answer.headers["Retry-After"] == "5"
        paying = threading.Thread(target=d.cashnet.complete, args=(cid,), daemon=True)
        paying.start()
        first = wait_for(lambda: [r for r in d.cashnet.notifications(cid) if r["status"]],
                         "CashNet's first delivery answered", timeout=30)
        assert first[0]["status"] == 503  # not acknowledged: CashNet sends it again
    finally:
        postgres_cluster.start()

    # The pool reconnects on its own: the service is ready again, then CashNet's next try lands.
    wait_for(lambda: httpx.get(d.url + "/readyz", timeout=30).status_code == 200,
             "the service ready again", timeout=60)
    paying.join(60)
    d.wait_for_state(payment_id, "posted", timeout=60)
    delivered = d.cashnet.notifications(cid)
    assert delivered[-1]["status"] == 200
    assert [n["outcome"] for n in d.ledger.notifications(payment_id)] == ["paid"]
    payment = d.ledger.payment(payment_id)
    carried = payments_carrying(d.alma, payment.cashnet_tx)
    assert {fee: len(amounts) for fee, amounts in carried.items()} == {
        a.fee_id: 1 for a in payment.allocations}
    assert httpx.get(d.url + "/readyz", timeout=30).status_code == 200
