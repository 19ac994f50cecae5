"""Where a patron lands after signing in (`next`, issue 14): a path on this site, resolved as a
browser resolves it, so `/.//evil.example/` cannot become the path `//evil.example/`, which a
page building links from its own path would turn into a link to another host."""

import pytest
from support.signin import cas_round_trip, location

from proxy.signin.next_page import safe_next


@pytest.mark.parametrize("asked, landed", [
    ("/receipt.html?r=1", "/receipt.html?r=1"),
    ("/.//evil.example/", "/evil.example/"),
    ("/%2e//evil.example/x", "/evil.example/x"),
    ("/%2E%2E//evil.example", "/evil.example"),
    ("/a/../..//evil.example/?lang=es", "/evil.example/?lang=es"),
    ("/fees//list/", "/fees/list/"),
    ("//evil.example/", "/"), ("/\\evil.example", "/"), ("https://evil.example/", "/"),
    ("/\x7f", "/"), ("", "/"), (None, "/"),
])
def test_next_is_resolved_to_a_path_on_this_site(asked, landed):
    assert safe_next(asked) == landed


def test_sso_next_with_dot_segments_stays_on_this_site(deploy):
    d = deploy()
    answer = d.browser().get("/auth/sso", params={"next": "/.//evil.example/"},
                             headers={"X-Remote-User": "mkowalski"})
    assert location(answer) == "/evil.example/"


def test_cas_next_with_dot_segments_stays_on_this_site(deploy):
    d = deploy()
    _, landed = cas_round_trip(d.browser(), "mkowalski", "student-pass", "/./%2e//evil.example/")
    assert location(landed) == "/evil.example/"
