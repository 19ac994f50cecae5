"""Every instance's posting worker hears of new work at once (docs/deploy.md#two-nodes): with
two instances on one PostgreSQL ledger, CashNet's notification lands on one that runs no
worker, and the other's worker, set to poll only once a minute, posts the payment within
seconds because the first announced it (LISTEN/NOTIFY)."""

from __future__ import annotations

import time

import pytest
from support.waiting import wait_for

from patronpay.serving import ServerThread
from proxy.app import create_app
from proxy.runtime import build_services
from proxy.work_signal import CHANNEL

ON_POSTGRES = pytest.mark.parametrize("ledger_backend", ["postgresql"], indirect=True)


@ON_POSTGRES
def test_a_notification_on_one_instance_wakes_the_other_instances_worker(deploy):
    d = deploy(run_worker=False)  # the instance CashNet's notification reaches
    services = build_services(d.settings)
    services.worker.idle_poll_seconds = 60.0  # it would look for work once a minute
    second = ServerThread(create_app(d.settings, services, run_worker=True)).start()
    try:
        wait_for(lambda: d.ledger.db.read_one(
            "SELECT count(*) FROM pg_stat_activity WHERE query = ?", (f"LISTEN {CHANNEL}",))[0],
            "the second instance listening", timeout=15)
        patron = d.sign_in_sso("mkowalski")
        created = d.start_payment(patron)
        payment_id = created["payment"]["id"]
        cid = d.hand_off(created["checkout"])
        # Both workers' lanes are idle now, waiting out their minute.
        assert d.ledger.payment(payment_id).state == "pending"
        began = time.monotonic()
        d.cashnet.complete(cid)
        d.wait_for_state(payment_id, "posted", timeout=20)
        assert time.monotonic() - began < 20  # far less than the minute's poll
    finally:
        second.stop()
