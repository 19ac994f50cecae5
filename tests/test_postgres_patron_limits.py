"""Per-session and per-patron request limits held across instances (docs/security.md#rate-limits,
docs/deploy.md#two-nodes): two proxy instances on one PostgreSQL ledger, as behind a load
balancer without sticky sessions, give a patron one budget between them, not one each."""

from __future__ import annotations

from collections import Counter

import httpx
import pytest

from patronpay.serving import ServerThread
from proxy.app import create_app

ON_POSTGRES = pytest.mark.parametrize("ledger_backend", ["postgresql"], indirect=True)


def at(instance_url: str, browser: httpx.Client) -> httpx.Client:
    """The same browser (cookies, Origin, CSRF token) sent to another instance."""
    return httpx.Client(base_url=instance_url, headers=browser.headers, cookies=browser.cookies,
                        timeout=15.0)


@ON_POSTGRES
def test_a_patron_gets_one_budget_across_two_instances(deploy):
    # A session's burst is 4, a patron's 8; one token a minute after that (the test is quicker).
    d = deploy(session_burst="4", session_requests_per_minute="1",
               patron_requests_per_minute="1")
    second = ServerThread(create_app(d.settings, run_worker=False)).start()
    try:
        phone, laptop, kiosk = (d.sign_in_sso("mkowalski") for _ in range(3))
        with at(second.url, phone) as phone_b, at(second.url, laptop) as laptop_b:
            first_session = [client.get("/api/fees").status_code
                             for client in (phone, phone_b) * 3]
            assert Counter(first_session) == {200: 4, 429: 2}  # the session's 4, not 4 each
            assert {laptop_b.get("/api/fees").status_code for _ in range(4)} == {200}
            # The patron's 8 are spent, across both instances: a third session gets none.
            refused = kiosk.get("/api/fees")
            assert refused.status_code == 429
            assert refused.json()["error"]["code"] == "rate_limited"
            assert int(refused.headers["Retry-After"]) >= 1
        other = d.sign_in_sso("tlee")  # another patron keeps their own budget
        assert other.get("/api/fees").status_code == 200
    finally:
        second.stop()
