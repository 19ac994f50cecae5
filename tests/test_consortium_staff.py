"""Staff in a consortium (docs/consortium.md#staff-commands): the staff commands work on one
institution, named with --institution (required when there are several); the staff pages are
each institution's own, below its prefix, and let in only that institution's staff."""

from __future__ import annotations

import os
from collections.abc import Iterator

import httpx
import pytest
from support.consortium import ConsortiumDeployment, start_consortium

from patronpay.cli import main


@pytest.fixture(scope="module")
def d(tmp_path_factory) -> Iterator[ConsortiumDeployment]:
    deployment = start_consortium(tmp_path_factory.mktemp("consortium"),
                                  tables={"campus-b": {"staff_users": "bstaff"}})
    yield deployment
    deployment.stop()


@pytest.fixture
def cli(d, monkeypatch, capsys):
    """`patronpay ...` in-process with the consortium's configuration file."""
    for name in [n for n in os.environ if n.startswith("PATRONPAY_")]:
        monkeypatch.delenv(name)
    config = d.settings("campus-a").database.parent / "consortium.toml"
    monkeypatch.setenv("PATRONPAY_CONFIG", str(config))

    def run(*argv: str) -> tuple[int, str, str]:
        code = main(list(argv))
        out, err = capsys.readouterr()
        return code, out, err

    return run


def test_staff_commands_need_the_institution_when_there_are_several(d, cli):
    code, out, err = cli("payments", "list")
    assert (code, out) == (2, "")
    assert err == ("patronpay: configuration error: PATRONPAY_CONFIG has several institutions "
                   "(campus-a, campus-b): name one with --institution (or "
                   "PATRONPAY_INSTITUTION)\n")
    code, out, err = cli("payments", "list", "--institution", "campus-z")
    assert code == 2 and err.startswith("patronpay: configuration error: no institution "
                                        "'campus-z' in PATRONPAY_CONFIG: choose from campus-a, "
                                        "campus-b")
    assert "PATRONPAY_INSTITUTION" not in os.environ  # the command's choice does not linger


def test_each_institution_lists_its_own_payments(d, cli):
    a = d.start_payment("campus-a", d.sign_in_sso("campus-a", "jsmith"))["payment"]["id"]
    b = d.start_payment("campus-b", d.sign_in_sso("campus-b", "dokafor"))["payment"]["id"]
    code, out, err = cli("payments", "list", "--institution", "campus-a")
    assert (code, err) == (0, "")
    assert a in out and b not in out
    code, out, err = cli("payments", "show", b, "--institution", "campus-b")
    assert (code, err) == (0, "") and "dokafor" in out
    code, out, err = cli("payments", "show", b, "--institution", "campus-a")
    assert code == 2 and b not in out


def staff_sign_in(d: ConsortiumDeployment, code: str, user: str) -> httpx.Response:
    return d.browser().get(f"/{code}/staff/auth/sso?next=/staff/",
                           headers={"X-Remote-User": user})


def test_staff_pages_are_each_institutions_own(d):
    signed_in = staff_sign_in(d, "campus-a", "tlee")
    assert signed_in.status_code == 303 and signed_in.headers["location"] == "/campus-a/staff/"
    assert "Path=/campus-a;" in signed_in.headers["set-cookie"]
    # Campus B lets in its own staff only.
    assert staff_sign_in(d, "campus-b", "tlee").status_code == 403
    assert staff_sign_in(d, "campus-b", "bstaff").status_code == 303
    browser = d.browser()
    browser.get("/campus-b/staff/auth/sso?next=/staff/", headers={"X-Remote-User": "bstaff"})
    page = browser.get("/campus-b/staff/")
    assert page.status_code == 200
    assert 'href="/campus-b/staff/payments"' in page.text
    assert '<p class="brand">patronpay staff: Campus B Libraries</p>' in page.text
    assert 'href="/staff/' not in page.text
    # Campus B's staff session is not one at Campus A.
    assert browser.get("/campus-a/staff/", follow_redirects=False).status_code in (303, 401, 403)
