"""Which sign-in choices the fees page draws (site/signin_choices.js), run in node: the server's
`signin` list in its order, the same list built from `methods`/`links` by a server that does
not send it yet, and entries the page cannot draw safely left out."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

CHOICES_JS = Path(__file__).resolve().parent.parent / "site" / "signin_choices.js"
PAGE = "https://fines.example.edu/?lang=es"


@pytest.fixture(autouse=True)
def node_installed():
    if shutil.which("node") is None:
        pytest.fail("node is missing: install Debian's nodejs (bash .ci/run does)")


def choices(body: dict, page: str = PAGE) -> list[dict]:
    script = (f"const {{ signinChoices }} = require({json.dumps(str(CHOICES_JS))});\n"
              f"const result = signinChoices({json.dumps(body)}, {json.dumps(page)});\n"
              "process.stdout.write(JSON.stringify(result));\n")
    done = subprocess.run(["node", "-e", script], capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


SSO = {"method": "sso", "kind": "link", "href": "https://idp.example.edu/login?target=%2Fauth%2Fsso"}
CAS = {"method": "cas", "kind": "link", "href": "/auth/cas?next=/"}
PRIMO = {"method": "primo", "kind": "notice"}
ALMA = {"method": "alma", "kind": "form", "action": "/auth/alma"}


def test_the_servers_list_is_drawn_in_its_order_and_wins_over_methods():
    body = {"methods": ["sso"], "links": {"sso": "/auth/sso"}, "signin": [ALMA, PRIMO, CAS, SSO]}
    assert choices(body) == [ALMA, PRIMO, CAS, SSO]


def test_links_are_used_as_they_are():
    # The server's href is final: nothing is added, even to our own /auth/sso.
    own = {"method": "sso", "kind": "link", "href": "/auth/sso"}
    assert choices({"signin": [own, SSO]})[0] == own


def test_without_signin_the_same_list_comes_from_methods_and_links():
    body = {"methods": ["alma", "primo", "cas", "sso"],
            "links": {"sso": "/auth/sso", "cas": "/auth/cas", "alma": "/auth/alma"}}
    assert choices(body) == [{"method": "sso", "kind": "link", "href": "/auth/sso?next=/"},
                             CAS, PRIMO, ALMA]
    external = {"methods": ["sso"], "links": {"sso": SSO["href"]}}
    assert choices(external) == [SSO]
    assert choices({"methods": ["sso"]}) == [
        {"method": "sso", "kind": "link", "href": "/auth/sso?next=/"}]
    assert choices({"methods": [], "links": {}}) == []
    assert choices({"error": {"code": "not_signed_in"}}) == []


def test_unknown_kinds_and_broken_entries_are_skipped():
    body = {"signin": [
        {"method": "passkey", "kind": "webauthn"},
        None, "sso", {"kind": "link", "href": "/x"}, {"method": "cas", "kind": "link"},
        {"method": "<img src=x>", "kind": "notice"},
        PRIMO,
        {"method": "primo", "kind": "notice"},  # a method is drawn once: its ids must be unique
        ALMA,
    ]}
    assert choices(body) == [PRIMO, ALMA]


def test_no_script_links_and_no_forms_posting_elsewhere():
    body = {"signin": [
        {"method": "sso", "kind": "link", "href": "javascript:alert(1)"},
        {"method": "cas", "kind": "link", "href": "data:text/html,hi"},
        {"method": "alma", "kind": "form", "action": "https://elsewhere.example.com/auth/alma"},
        {"method": "alma", "kind": "form", "action": "//elsewhere.example.com/auth/alma"},
        {"method": "alma", "kind": "form", "action": "https://fines.example.edu/auth/alma?x=1"},
    ]}
    assert choices(body) == [{"method": "alma", "kind": "form", "action": "/auth/alma?x=1"}]


def test_a_form_action_never_becomes_a_path_that_names_another_host():
    """"/.//host/x" is same-origin, but resolves to the path "//host/x": as an action, that
    would post the guest's password to another host."""
    body = {"signin": [{"method": "alma", "kind": "form", "action": "/.//elsewhere.example.com/x"}]}
    assert choices(body) == [{"method": "alma", "kind": "form", "action": "/elsewhere.example.com/x"}]
