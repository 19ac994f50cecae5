"""The guest sign-in's lockout under abuse (issue 14): failures count per Alma account whatever
identifier was typed, per address (an IPv6 /64 as one), and a lockout anyone can trigger costs
the account's owner little. And /auth/alma reads only its own content type."""

import pytest

PASSWORD = "correct-horse-7"
BARCODE = "23191000200022"  # jsmith's library card
JSON_BODY = '{"user_id": "jsmith", "password": "correct-horse-7"}'


def attempt(d, user, password, address):
    """A guest sign-in from `address` (the campus web server in front says so)."""
    client = d.browser()
    return client.post("/auth/alma", json={"user_id": user, "password": password},
                       headers={"X-Forwarded-For": address})


def statuses(d, tries):
    return [attempt(d, *t).status_code for t in tries]


def test_failures_count_per_alma_account_whatever_identifier_was_typed(deploy):
    d = deploy(guest_max_failures="3")
    # Three guesses under three names of one account, from one address...
    assert statuses(d, [("jsmith", "x", "203.0.113.7"), (BARCODE, "y", "203.0.113.7"),
                        ("JSMITH", "z", "203.0.113.7")]) == [401, 401, 401]
    # ...lock that account for that address, whichever name comes next.
    for user in ("jsmith", BARCODE):
        answer = attempt(d, user, PASSWORD, "203.0.113.7")
        assert answer.status_code == 429 and int(answer.headers["Retry-After"]) > 0
    assert len(d.alma_calls("POST", "auth")) == 3


def test_addresses_are_counted_with_ipv6_by_its_64(deploy):
    d = deploy(guest_max_failures="3")
    for host in ("2001:db8:1:2::1", "2001:db8:1:2::2", "2001:db8:1:2:aaaa::3"):
        assert attempt(d, "nobody", "x", host).status_code == 401
    # Every address of that /64 is now one locked-out address, for every account.
    assert attempt(d, "mkowalski", "x", "2001:db8:1:2::ffff").status_code == 429
    # The neighbouring /64 is someone else.
    assert attempt(d, "mkowalski", "x", "2001:db8:1:3::1").status_code == 401


def test_a_lockout_anyone_can_trigger_costs_the_owner_little(deploy):
    d = deploy(guest_max_failures="3", guest_lockout_seconds="900")
    limiter = d.services.guest_failures
    real = limiter.clock
    start = real()
    limiter.clock = lambda: start
    try:
        # Someone types jsmith's name with wrong passwords until the account is locked.
        assert statuses(d, [("jsmith", "guess", "203.0.113.7")] * 4) == [401, 401, 401, 429]
        # jsmith, at home, from an address that has not failed: the right password works.
        assert attempt(d, "jsmith", PASSWORD, "198.51.100.2").status_code == 200
    finally:
        limiter.clock = real


def test_while_locked_fresh_addresses_go_at_the_accounts_slow_pace(deploy):
    d = deploy(guest_max_failures="3", guest_lockout_seconds="900")
    limiter = d.services.guest_failures
    pace = limiter.pace_seconds
    assert pace == 300  # the window spread over the failures it allows
    real = limiter.clock
    start = real()
    limiter.clock = lambda: start
    try:
        assert statuses(d, [("jsmith", "guess", "203.0.113.7")] * 3) == [401] * 3
        # A guesser with many addresses gets one try per pace for the account...
        assert attempt(d, "jsmith", "guess", "192.0.2.10").status_code == 401
        early = attempt(d, "jsmith", PASSWORD, "198.51.100.2")
        assert early.status_code == 429
        assert int(early.headers["Retry-After"]) == pace
        # ...an address that failed stays locked for the whole window...
        limiter.clock = lambda: start + pace
        assert attempt(d, "jsmith", PASSWORD, "192.0.2.10").status_code == 429
        # ...and the owner's turn comes after the pace, not after the window.
        assert attempt(d, "jsmith", PASSWORD, "198.51.100.2").status_code == 200
        # Signing in clears the account's count.
        assert attempt(d, "jsmith", "typo", "198.51.100.3").status_code == 401
    finally:
        limiter.clock = real
    assert len(d.alma_calls("POST", "auth")) == 6


@pytest.mark.parametrize("content_type, body", [
    ("text/plain", JSON_BODY),
    ("application/x-www-form-urlencoded", "user_id=jsmith&password=correct-horse-7"),
    ("multipart/form-data; boundary=x", "--x--"),
    (None, JSON_BODY),
])
def test_only_json_is_read(deploy, content_type, body):
    """A cross-site form can post text/plain that looks like JSON without asking the browser
    first; JSON needs the page's own script."""
    d = deploy()
    client = d.browser()
    headers = {"Content-Type": content_type} if content_type else {}
    answer = client.post("/auth/alma", content=body.encode(), headers=headers)
    assert answer.status_code == 415
    assert answer.json()["error"]["code"] == "unsupported_media_type"
    assert client.get("/api/session").status_code == 401
    assert d.alma_calls("POST", "auth") == []
    charset = client.post("/auth/alma", content=JSON_BODY.encode(),
                          headers={"Content-Type": "application/json; charset=utf-8"})
    assert charset.status_code == 200
