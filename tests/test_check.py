"""`patronpay check` against the sandbox over loopback: a sound installation passes, and each
fault that would stop it taking money turns the right line to fail (or warn), saying what to
do. The check only ever reads: the sandbox's request log proves it."""

from __future__ import annotations

import asyncio
import copy
import json
import os
import re
import secrets
import shutil
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from email.utils import formatdate
from pathlib import Path
from types import SimpleNamespace

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.routing import Route

from patronpay.demo import point_store_at, sandbox_environment
from patronpay.serving import ServerThread
from proxy.check import passed, render_json, render_text, run_checks
from proxy.check.cashnet import check_item_codes, check_token
from proxy.check.installation import check_site
from proxy.check.kiosks import check_kiosks
from proxy.check.readonly import NotARead, ReadOnlyTransport
from proxy.check.report import Result
from proxy.check.signin import check_public_url
from proxy.config import load_settings
from proxy.db import SCHEMA_VERSION, Database
from sandbox.alma import load_seed
from sandbox.app import create_sandbox_app

ROOT = Path(__file__).resolve().parent.parent
PUBLIC_URL = "http://127.0.0.1:8000"
SITE = str(ROOT / "site")


@pytest.fixture(scope="module")
def sandbox() -> Iterator[ServerThread]:
    app = create_sandbox_app()
    with ServerThread(app) as running:
        running.app = app  # type: ignore[attr-defined]
        yield running


@pytest.fixture
def env(sandbox: ServerThread, tmp_path: Path) -> dict[str, str]:
    """The demo's own configuration pointed at the sandbox (it names a test patron and
    CashNet's senders: everything a go-live needs)."""
    sandbox.app.state.alma.reset()  # type: ignore[attr-defined]
    environment = sandbox_environment(
        PUBLIC_URL, sandbox.url, tmp_path / "ledger.sqlite3", secrets.token_urlsafe(32),
        site_dir=SITE)
    point_store_at(sandbox.app, load_settings(environment))  # type: ignore[attr-defined]
    return environment


def alma(sandbox: ServerThread):
    return sandbox.app.state.alma  # type: ignore[attr-defined]


def lines(results: list[Result]) -> dict[str, Result]:
    return {result.check: result for result in results}


def failed(results: list[Result]) -> dict[str, str]:
    return {r.check: r.message for r in results if r.status == "fail"}


def closed_port_url(path: str = "") -> str:
    """A loopback URL nobody listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}{path}"


# -- a sound installation --------------------------------------------------------------------


def test_a_sound_installation_passes_with_every_line_ok(env, sandbox):
    results = run_checks(env)
    assert passed(results)
    assert [r.check for r in results if r.status != "ok"] == []
    assert "on this machine only" in lines(results)["signin.public_url"].message
    assert list(lines(results)) == [
        "settings", "ledger", "site", "alma.api", "alma.key", "alma.clock", "alma.patron",
        "cashnet.checkout", "cashnet.token", "cashnet.senders", "cashnet.item_codes",
        "signin.public_url", "signin.trusted_proxies", "signin.sso", "signin.cas",
        "signin.primo", "kiosks"]
    assert "3 payable, 77.25 USD" in lines(results)["alma.patron"].message


def test_the_check_only_reads_alma(env, sandbox):
    before = alma(sandbox).user_state("mkowalski")
    alma(sandbox).clear_requests()
    run_checks(env)
    requests = alma(sandbox).requests()
    assert requests and {r["method"] for r in requests} == {"GET"}
    assert not any(r["committed"] for r in requests)
    assert alma(sandbox).user_state("mkowalski") == before


def test_the_transport_refuses_anything_but_a_get():
    async def post() -> None:
        async with httpx.AsyncClient(transport=ReadOnlyTransport()) as http:
            await http.post(closed_port_url("/almaws/v1/users/x"), params={"op": "pay"})

    with pytest.raises(NotARead):
        asyncio.run(post())


def test_the_command_prints_one_line_per_check_and_exits_0(env):
    clean = {k: v for k, v in os.environ.items() if not k.startswith("PATRONPAY_")}
    done = subprocess.run([sys.executable, "-m", "patronpay", "check"], env=clean | env,
                          capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stderr == ""
    out = done.stdout.splitlines()
    assert out[0].split()[:2] == ["ok", "settings"]
    assert out[-1] == "ready to take payments: 17 ok, 0 warnings, 0 failed"
    as_json = subprocess.run([sys.executable, "-m", "patronpay", "check", "--json"],
                             env=clean | env, capture_output=True, text=True, timeout=60,
                             cwd=ROOT)
    document = json.loads(as_json.stdout)
    assert as_json.returncode == 0 and document["ok"] is True
    assert document["checks"][0] == {"check": "settings", "status": "ok", "action": "",
                                     "message": "every setting is valid (read from the "
                                                "environment)"}


def test_a_failure_exits_1(env):
    clean = {k: v for k, v in os.environ.items() if not k.startswith("PATRONPAY_")}
    env["PATRONPAY_ALMA_API_KEY"] = "not-a-key"
    done = subprocess.run([sys.executable, "-m", "patronpay", "check", "--json"],
                          env=clean | env, capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert done.returncode == 1 and done.stderr == ""
    assert json.loads(done.stdout)["ok"] is False


# -- settings, ledger, site ------------------------------------------------------------------


@pytest.mark.parametrize("change, expected", [
    ({"PATRONPAY_CHECK_PATRONS": "mkowalski"},
     "PATRONPAY_CHECK_PATRONS is not a patronpay setting (did you mean PATRONPAY_CHECK_PATRON?)"),
    ({"PATRONPAY_CASHNET_POSTBACK_TOKEN": "short"},
     "PATRONPAY_CASHNET_POSTBACK_TOKEN is not valid: needs at least 32"),
    ({"PATRONPAY_KIOSK_KEYS": "lib1=tooshort"},
     "PATRONPAY_KIOSK_KEYS is not valid: each kiosk secret needs at least 32 characters"),
    ({"PATRONPAY_PUBLIC_URL": "http://pay.library.example.edu"},
     "PATRONPAY_PUBLIC_URL is not valid: must use https"),
    ({"PATRONPAY_SITE_DIR": "/nonexistent/site"}, "PATRONPAY_SITE_DIR is not valid"),
])
def test_a_bad_setting_is_the_one_failing_line(env, change, expected):
    results = run_checks(env | change)
    assert [(r.check, r.status) for r in results] == [("settings", "fail")]
    assert results[0].message.startswith(expected)
    secrets_given = [v for k, v in change.items() if k.endswith(("_TOKEN", "_KEYS"))]
    assert not any(value in results[0].message for value in secrets_given)


def test_ledger_that_cannot_be_created(env, tmp_path):
    (tmp_path / "file").write_text("")
    results = lines(run_checks(env | {"PATRONPAY_DATABASE": str(tmp_path / "file" / "l.db")}))
    assert results["ledger"].status == "fail"
    assert "is not a folder" in results["ledger"].message


def test_ledger_of_another_schema_or_not_a_ledger(env, tmp_path):
    path = tmp_path / "ledger.sqlite3"
    Database(path).close()
    assert lines(run_checks(env))["ledger"].message.endswith(f"is writable, schema {SCHEMA_VERSION}")
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA user_version = 99")
    ledger = lines(run_checks(env))["ledger"]
    assert (ledger.status, ledger.message) == ("fail", f"{path} has schema 99; this patronpay "
                                                       f"uses {SCHEMA_VERSION}")
    path.unlink()
    path.write_bytes(b"not a database at all" * 100)
    ledger = lines(run_checks(env))["ledger"]
    assert ledger.status == "fail" and "cannot be used" in ledger.message
    assert path.read_bytes() == b"not a database at all" * 100  # looked at, not touched


# -- Alma ------------------------------------------------------------------------------------


def test_alma_unreachable(env):
    results = run_checks(env | {"PATRONPAY_ALMA_API_URL": closed_port_url("/almaws/v1")})
    assert failed(results).keys() == {"alma.api"}
    assert "cannot be reached" in failed(results)["alma.api"]
    assert not {"alma.key", "alma.clock", "alma.patron"} & lines(results).keys()


def test_alma_down(env, sandbox):
    alma(sandbox).set_faults({"rules": [{"match": {"path": "/almaws/*"}, "mode": "http_5xx",
                                         "status": 503}]})
    assert failed(run_checks(env)) == {"alma.api": "Alma answered HTTP 503"}


def test_alma_url_that_is_not_the_api(env, sandbox):
    results = run_checks(env | {"PATRONPAY_ALMA_API_URL": sandbox.url + "/alma/almaws/v2"})
    assert "not as the Alma API does" in failed(results)["alma.api"]
    assert "/almaws/v1" in lines(results)["alma.api"].action


@pytest.mark.parametrize("status", [400, 401, 403])
def test_a_wrong_key(env, sandbox, status):
    alma(sandbox).set_faults({"key_refusal_status": status})
    results = run_checks(env | {"PATRONPAY_ALMA_API_KEY": "l7xx-mistyped"})
    assert failed(results) == {"alma.key": "Alma does not know this API key (Invalid API Key)"}
    assert lines(results)["alma.api"].status == "ok"


@pytest.mark.parametrize("status", [400, 403])
def test_a_key_without_users_permission(env, sandbox, status):
    alma(sandbox).set_faults({"key_refusal_status": status,
                              "api_keys": {"l7xx-bibs-only": "no_users"}})
    results = run_checks(env | {"PATRONPAY_ALMA_API_KEY": "l7xx-bibs-only"})
    assert failed(results) == {
        "alma.key": "Alma knows the API key but refuses it for the Users API (UNAUTHORIZED)"}
    assert "Users area with read/write" in lines(results)["alma.key"].action


def test_the_api_url_of_another_region(env):
    """Another region's host knows neither our key nor our institution."""
    seed = copy.deepcopy(load_seed())
    seed["institution"]["code"] = "01OTHER_INST"
    seed["api_keys"] = [{"key": "other-region-key", "label": "theirs", "read_only": False}]
    with ServerThread(create_sandbox_app(alma_seed=seed)) as other_region:
        results = run_checks(env | {"PATRONPAY_ALMA_API_URL":
                                    other_region.url + "/alma/almaws/v1"})
    message = failed(results)["alma.key"]
    assert message.endswith("does not serve institution 01PATRON_INST: PATRONPAY_ALMA_API_URL "
                            "is another region's host")
    assert "api-eu" in lines(results)["alma.key"].action


def test_a_key_of_another_institution(env, sandbox):
    alma(sandbox).set_faults({"api_keys": {"l7xx-other-campus": "other_institution"}})
    results = run_checks(env | {"PATRONPAY_ALMA_API_KEY": "l7xx-other-campus"})
    assert lines(results)["alma.key"].status == "ok"
    assert failed(results) == {"alma.patron": "Alma has no patron 'mkowalski'"}
    assert "another institution" in lines(results)["alma.patron"].action


@pytest.mark.parametrize("offset, status, fragment", [
    (120, "fail", "s behind Alma's"),
    (-3600, "fail", "s ahead of Alma's"),
    (-30, "ok", "agrees with Alma's"),
])
def test_clock_against_alma_date(env, sandbox, offset, status, fragment):
    alma(sandbox).set_faults({"date_offset_seconds": offset})
    clock = lines(run_checks(env))["alma.clock"]
    assert clock.status == status and fragment in clock.message
    seconds = int(re.search(r"(\d+) s", clock.message).group(1))
    assert abs(seconds - abs(offset)) <= 2  # Date has whole seconds
    if status == "fail":
        assert "timedatectl" in clock.action


def test_no_test_patron_or_one_without_payable_fees(env):
    unset = lines(run_checks({k: v for k, v in env.items() if k != "PATRONPAY_CHECK_PATRON"}))
    assert unset["alma.patron"].status == "warn"
    assert "PATRONPAY_CHECK_PATRON is not set" in unset["alma.patron"].message
    assert "cashnet.item_codes" not in unset
    no_fees = lines(run_checks(env | {"PATRONPAY_CHECK_PATRON": "pchen"}))
    assert no_fees["alma.patron"].status == "warn"
    assert no_fees["alma.patron"].message == ("pchen has no fee patronpay may take payment for "
                                              "(0 active)")


def test_currency_other_than_alma(env):
    results = run_checks(env | {"PATRONPAY_CURRENCY": "EUR"})
    assert failed(results) == {"alma.patron": "Alma reports USD, patronpay is set to EUR"}


# -- CashNet ---------------------------------------------------------------------------------


def test_fee_type_without_its_item_code(env):
    item_codes = lines(run_checks(env | {"PATRONPAY_CHECK_PATRON": "jsmith"}))["cashnet.item_codes"]
    assert item_codes.status == "warn"
    assert item_codes.message.startswith("CARDRENEWAL (seen on the test patron) would go to the "
                                         "default item code LIB-FINE")


def test_a_library_rule_covers_the_fees_of_that_library(env):
    # mkowalski owes a damaged-item fine to the Law library: no DAMAGEDITEMFINE rule, but LAW/*.
    codes = "OVERDUEFINE=LIB-OVERDUE,LOSTITEMREPLACEMENTFEE=LIB-LOST,LAW/*=LAW-FINES"
    item_codes = lines(run_checks(env | {"PATRONPAY_CASHNET_ITEM_CODES": codes}))[
        "cashnet.item_codes"]
    assert item_codes.status == "ok"
    assert "DAMAGEDITEMFINE=LAW-FINES (LAW/*)" in item_codes.message
    # rgarcia: an overdue fine at MAIN, a damaged-item fine at SCI.
    elsewhere = lines(run_checks(env | {"PATRONPAY_CASHNET_ITEM_CODES": "SCI/*=SCI-FINES",
                                        "PATRONPAY_CHECK_PATRON": "rgarcia"}))
    assert elsewhere["cashnet.item_codes"].status == "warn"
    assert elsewhere["cashnet.item_codes"].message.startswith(
        "OVERDUEFINE (seen on the test patron) would go to the default item code LIB-FINE")


def test_a_fee_type_covered_at_one_library_only_names_the_other():
    fees = SimpleNamespace(payable=[SimpleNamespace(type_code="OVERDUEFINE", library_code=lib)
                                    for lib in ("LAW", "MAIN")])
    settings = SimpleNamespace(cashnet_item_codes={"LAW/OVERDUEFINE": "LAW-OVERDUE"},
                               cashnet_item_code="LIB-FINE")
    [result] = check_item_codes(settings, fees)
    assert result.status == "warn"
    assert result.message.startswith("OVERDUEFINE at MAIN (seen on the test patron) would go")


def test_cashnet_unreachable_or_unknown_store(env, sandbox):
    gone = run_checks(env | {"PATRONPAY_CASHNET_CHECKOUT_URL": closed_port_url("/LIBFINES")})
    assert "cannot be reached" in failed(gone)["cashnet.checkout"]
    unknown = run_checks(env | {"PATRONPAY_CASHNET_CHECKOUT_URL":
                                sandbox.url + "/cashnet/NOSUCHSTORE"})
    assert failed(unknown)["cashnet.checkout"].startswith(
        "CashNet does not know this store (702)")


def test_senders_and_previous_token(env):
    results = lines(run_checks(env | {"PATRONPAY_CASHNET_ALLOWED_IPS": "",
                                      "PATRONPAY_CASHNET_POSTBACK_TOKEN_PREVIOUS": "p" * 40}))
    assert results["cashnet.senders"].status == "warn"
    assert "any address" in results["cashnet.senders"].message
    assert results["cashnet.token"].status == "warn"
    everyone = run_checks(env | {"PATRONPAY_CASHNET_ALLOWED_IPS": "0.0.0.0/0"})
    assert "which is everyone" in failed(everyone)["cashnet.senders"]


# -- sign-in and kiosks ----------------------------------------------------------------------


def test_public_url_on_https_is_ok(env):
    result = lines(run_checks(env | {"PATRONPAY_PUBLIC_URL": "https://pay.library.example.edu"}))
    assert result["signin.public_url"].status == "ok"


@pytest.mark.parametrize("proxies, status", [
    ("0.0.0.0/0", "fail"), ("::/0", "fail"), ("10.0.0.0/8", "warn"),
    ("192.0.2.10/32,127.0.0.1/32", "ok"),
])
def test_who_may_set_the_sso_header(env, proxies, status):
    result = lines(run_checks(env | {"PATRONPAY_TRUSTED_PROXIES": proxies}))
    assert result["signin.trusted_proxies"].status == status
    if status != "ok":
        assert "may set the SSO header" in result["signin.trusted_proxies"].message


def test_cas_unreachable_or_not_cas(env, sandbox):
    gone = run_checks(env | {"PATRONPAY_CAS_URL": closed_port_url("/cas")})
    assert "cannot be reached" in failed(gone)["signin.cas"]
    wrong = run_checks(env | {"PATRONPAY_CAS_URL": sandbox.url + "/sso"})
    assert failed(wrong)["signin.cas"].endswith("answers HTTP 404")


def test_primo_key_set_without_es256_or_missing(env, sandbox):
    alma(sandbox).set_faults({"jwks_es256": False})
    assert "has no ES256 key" in failed(run_checks(env))["signin.primo"]
    alma(sandbox).reset()
    wrong = run_checks(env | {"PATRONPAY_PRIMO_JWKS_URL":
                              sandbox.url + "/alma/auth/01WRONG_INST/jwks.json"})
    assert failed(wrong)["signin.primo"].endswith("answers HTTP 404")


def test_sso_login_page_unreachable(env):
    results = run_checks(env | {"PATRONPAY_SSO_LOGIN_URL": closed_port_url("/login")})
    assert "cannot be reached" in failed(results)["signin.sso"]


def test_kiosks(env):
    one = lines(run_checks(env | {"PATRONPAY_KIOSK_KEYS": "lib1=" + "a" * 40}))
    assert one["kiosks"].status == "ok"
    shared = lines(run_checks(env | {"PATRONPAY_KIOSK_KEYS":
                                     f"lib1={'a' * 40},lib2={'a' * 40}"}))
    assert shared["kiosks"].status == "warn"
    assert shared["kiosks"].message == "kiosks lib1 and lib2 share a secret"


# -- output ------------------------------------------------------------------------------------


def test_values_from_outside_cannot_drive_the_terminal(env, sandbox):
    alma(sandbox).add_fee("pchen", {"type": "LOCKER\x1b[2J\u202eKEY", "status": "ACTIVE",
                                    "original_amount": "5.00", "balance": "5.00",
                                    "owner": "MAIN"})
    results = run_checks(env | {"PATRONPAY_CHECK_PATRON": "pchen"})
    text = render_text(results)
    assert "\x1b" not in text and "\u202e" not in text
    assert "LOCKER\\x1b[2J\\u202eKEY" in text
    document = render_json(results)
    assert "\x1b" not in document and json.loads(document)["ok"] is True


# -- every other failure line, each with the fault that causes it ------------------------------


def test_a_ledger_of_an_older_schema_says_migrate(env, tmp_path):
    path = tmp_path / "ledger.sqlite3"
    Database(path).close()
    with sqlite3.connect(path) as conn:
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION - 1}")
    ledger = lines(run_checks(env))["ledger"]
    assert (ledger.status, ledger.message) == (
        "fail", f"{path} has schema {SCHEMA_VERSION - 1}; this patronpay uses {SCHEMA_VERSION}")
    assert "patronpay migrate" in ledger.action


def test_a_postgresql_ledger_that_cannot_be_reached(env):
    url = closed_port_url().replace("http://", "postgresql://patronpay:s3cret@") + "/patronpay"
    ledger = lines(run_checks(env | {"PATRONPAY_DATABASE": url}))["ledger"]
    assert ledger.status == "fail" and "cannot be used" in ledger.message
    assert "s3cret" not in ledger.message  # the URL is shown without its password


def run_as_another_user(env: dict[str, str]) -> dict[str, Result]:
    """`patronpay check --json` as a user who is not the folder's owner (root may write
    anywhere, so as root the check runs as nobody, the way a service user would see it)."""
    command = [sys.executable, "-m", "patronpay", "check", "--json"]
    if os.geteuid() == 0:
        if shutil.which("setpriv") is None:
            pytest.skip("running as root without setpriv: cannot drop to another user")
        command = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", *command]
    clean = {k: v for k, v in os.environ.items() if not k.startswith("PATRONPAY_")}
    done = subprocess.run(command, env=clean | env, capture_output=True, text=True,
                          timeout=60, cwd=ROOT)
    assert done.returncode == 1, done.stdout + done.stderr
    return {c["check"]: Result(**c) for c in json.loads(done.stdout)["checks"]}


def test_a_ledger_folder_the_service_may_not_write(env):
    folder = Path(tempfile.mkdtemp(prefix="patronpay-check-"))  # not below pytest's 0700 folder
    try:
        Database(folder / "ledger.sqlite3").close()
        (folder / "ledger.sqlite3").chmod(0o644)
        folder.chmod(0o555)  # SQLite could not write its journal beside the ledger
        existing = run_as_another_user(env | {"PATRONPAY_DATABASE":
                                              str(folder / "ledger.sqlite3")})["ledger"]
        assert existing.status == "fail"
        assert existing.message == f"the folder {folder} is not writable (SQLite keeps its " \
                                   "journal beside the ledger)"
        new = run_as_another_user(env | {"PATRONPAY_DATABASE": str(folder / "new.sqlite3")})
        assert new["ledger"].status == "fail"
        assert new["ledger"].message.endswith(f"cannot be created: {folder} is not writable")
        assert not (folder / "new.sqlite3").exists()
    finally:
        folder.chmod(0o755)
        shutil.rmtree(folder)


def test_alma_throttling_the_institution(env, sandbox):
    alma(sandbox).set_faults({"daily_limit": 0})  # the day's API calls are used up
    results = run_checks(env)
    assert failed(results) == {"alma.api": "Alma is throttling this institution's calls (HTTP "
                                           "429)"}
    assert "run the check again later" in lines(results)["alma.api"].action


def test_an_alma_error_the_check_does_not_know(env, sandbox):
    alma(sandbox).set_faults({"rules": [{"match": {"path": "/almaws/v1/users/*"},
                                         "mode": "alma_error", "code": "401129",
                                         "status": 400}]})
    results = run_checks(env)
    assert failed(results).keys() == {"alma.key"}
    assert failed(results)["alma.key"].startswith("Alma answered 401129: ")
    assert "Alma's API documentation" in lines(results)["alma.key"].action


def test_the_test_patrons_fees_cannot_be_read(env, sandbox):
    alma(sandbox).set_faults({"rules": [{"match": {"method": "GET",
                                                   "path": "/almaws/v1/users/*/fees"},
                                         "mode": "http_5xx", "status": 503}]})
    results = run_checks(env)
    assert failed(results) == {"alma.patron": "mkowalski's fees cannot be read: Alma answered "
                                              "503"}
    assert "cashnet.item_codes" not in lines(results)


def test_a_cashnet_url_that_is_no_store_page_or_a_disabled_store(env, sandbox):
    missing = run_checks(env | {"PATRONPAY_CASHNET_CHECKOUT_URL": sandbox.url + "/no-such-page"})
    assert failed(missing) == {"cashnet.checkout": f"{sandbox.url}/no-such-page answers HTTP 404"}
    cashnet = sandbox.app.state.cashnet  # type: ignore[attr-defined]
    store = env["PATRONPAY_CASHNET_CHECKOUT_URL"].rsplit("/", 1)[1]
    cashnet.configure_store(store, enabled=False)
    try:
        disabled = run_checks(env)
    finally:
        cashnet.configure_store(store, enabled=True)
    assert failed(disabled)["cashnet.checkout"].startswith(
        "CashNet has this store disabled (701)")


@pytest.fixture(scope="module")
def campus_portal() -> Iterator[ServerThread]:
    """A web page that answers 200 to every path: what a CAS or key-set setting pointing at
    the campus portal instead of the service finds."""
    async def page(request: Request) -> HTMLResponse:
        return HTMLResponse("<!doctype html><title>Campus portal</title><h1>Welcome</h1>")

    with ServerThread(Starlette(routes=[Route("/{path:path}", page)])) as running:
        yield running


def test_a_cas_url_that_is_not_a_cas_server(env, campus_portal):
    results = run_checks(env | {"PATRONPAY_CAS_URL": campus_portal.url + "/cas"})
    assert failed(results) == {"signin.cas": f"{campus_portal.url}/cas/p3/serviceValidate does "
                                             "not answer as CAS 3.0 does"}


def test_a_primo_key_set_unreachable_or_not_a_key_set(env, campus_portal):
    gone = run_checks(env | {"PATRONPAY_PRIMO_JWKS_URL": closed_port_url("/jwks.json")})
    assert failed(gone)["signin.primo"].startswith("Primo's key set cannot be fetched (")
    page = run_checks(env | {"PATRONPAY_PRIMO_JWKS_URL": campus_portal.url + "/jwks.json"})
    assert failed(page) == {"signin.primo": f"{campus_portal.url}/jwks.json is not a key set "
                                            "(JSON with `keys`)"}


def test_an_sso_login_page_that_is_not_there(env, sandbox):
    results = run_checks(env | {"PATRONPAY_SSO_LOGIN_URL": sandbox.url + "/sso/no-such-login"})
    assert failed(results) == {"signin.sso": "the single sign-on login page answers HTTP 404"}


def test_warnings_alone_exit_0(env):
    clean = {k: v for k, v in os.environ.items() if not k.startswith("PATRONPAY_")}
    unset = {k: v for k, v in env.items() if k != "PATRONPAY_CHECK_PATRON"}
    done = subprocess.run([sys.executable, "-m", "patronpay", "check"], env=clean | unset,
                          capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.splitlines()[-1] == "ready to take payments: 15 ok, 1 warnings, 0 failed"


# -- the clock when Alma's Date cannot be compared, and CashNet failing ---------------------------

CLOCK_ACTION = ("turn on time synchronisation (timedatectl set-ntp true): kiosks' signed "
                "requests and Primo tokens are refused on a wrong clock")
CASHNET_LATER = ("run the check again later; if it persists, ask your campus's Transact "
                 "contact")


@pytest.fixture(scope="module")
def dateless_sandbox() -> Iterator[ServerThread]:
    """A second sandbox whose server adds no `Date` of its own (the shared one's server does):
    Alma's answers carry only what the fault knobs put there, and by default nothing."""
    app = create_sandbox_app()
    with ServerThread(app, date_header=False) as running:
        running.app = app  # type: ignore[attr-defined]
        yield running


@pytest.fixture
def dateless_env(env: dict[str, str], dateless_sandbox: ServerThread) -> dict[str, str]:
    """The sound installation, with Alma (only) at the dateless sandbox (the same seed)."""
    alma(dateless_sandbox).reset()
    return env | {"PATRONPAY_ALMA_API_URL": dateless_sandbox.url + "/alma/almaws/v1"}


def run_command(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("PATRONPAY_")}
    return subprocess.run([sys.executable, "-m", "patronpay", "check"], env=clean | env,
                          capture_output=True, text=True, timeout=60, cwd=ROOT)


def test_alma_without_a_date_header_warns_and_the_check_still_passes(dateless_env):
    """Nothing to compare is no proof of a wrong clock: a warning, not a failure."""
    results = run_checks(dateless_env)
    assert lines(results)["alma.clock"] == Result(
        "alma.clock", "warn", "Alma sent no Date header: the clock is not compared", CLOCK_ACTION)
    assert [r.check for r in results if r.status != "ok"] == ["alma.clock"]
    done = run_command(dateless_env)
    assert done.returncode == 0, done.stdout + done.stderr
    warnings = [" ".join(line.split()) for line in done.stdout.splitlines()
                if line.startswith("warn")]
    assert warnings == ["warn alma.clock Alma sent no Date header: the clock is not compared -- "
                        + CLOCK_ACTION]
    assert done.stdout.splitlines()[-1] == "ready to take payments: 16 ok, 1 warnings, 0 failed"


def test_alma_date_header_that_is_not_a_date(dateless_env, dateless_sandbox):
    alma(dateless_sandbox).set_faults({"date_text": "yesterday, around noon"})
    results = run_checks(dateless_env)
    assert lines(results)["alma.clock"] == Result(
        "alma.clock", "warn", "Alma's Date header is not a date: 'yesterday, around noon'",
        CLOCK_ACTION)
    assert passed(results)
    assert [r.check for r in results if r.status != "ok"] == ["alma.clock"]


def test_the_date_that_is_not_a_date_is_named_beside_a_good_one(env, sandbox):
    """The shared sandbox's server sends its own (right) `Date` first, the knob's second: the
    line quotes the one that is not a date, not simply the first."""
    alma(sandbox).set_faults({"date_text": "Thu, 32 Foo 2026 99:99:99 GMT"})
    clock = lines(run_checks(env))["alma.clock"]
    assert clock == Result("alma.clock", "warn", "Alma's Date header is not a date: "
                           "'Thu, 32 Foo 2026 99:99:99 GMT'", CLOCK_ACTION)


def test_a_date_without_a_zone_is_utc_not_local_time(dateless_env, dateless_sandbox):
    """`-0000` (RFC 5322: UTC, zone not said) must not be read as this machine's local time."""
    alma(dateless_sandbox).set_faults({"date_text": formatdate(time.time())})  # "... -0000"
    before = os.environ.get("TZ")
    os.environ["TZ"] = "America/New_York"
    time.tzset()
    try:
        clock = lines(run_checks(dateless_env))["alma.clock"]
    finally:
        if before is None:
            del os.environ["TZ"]
        else:
            os.environ["TZ"] = before
        time.tzset()
    assert clock.status == "ok", clock


@pytest.mark.parametrize("status", [500, 503])
def test_cashnet_checkout_answering_5xx_fails_and_says_try_later(env, sandbox, status):
    cashnet = sandbox.app.state.cashnet  # type: ignore[attr-defined]
    url = env["PATRONPAY_CASHNET_CHECKOUT_URL"]
    store = url.rsplit("/", 1)[1]
    cashnet.set_faults(store, {"status": status})
    try:
        results = run_checks(env)
        done = run_command(env) if status == 503 else None
    finally:
        cashnet.set_faults(store, {})
    assert lines(results)["cashnet.checkout"] == Result(
        "cashnet.checkout", "fail", f"{url} answers HTTP {status}: CashNet's checkout is failing",
        CASHNET_LATER)
    assert failed(results).keys() == {"cashnet.checkout"}
    if done is not None:
        assert done.returncode == 1, done.stdout + done.stderr
        assert done.stdout.splitlines()[-1] == ("NOT ready to take payments: 16 ok, 0 warnings, "
                                                "1 failed")


def test_cashnet_store_down_for_maintenance(env, sandbox):
    cashnet = sandbox.app.state.cashnet  # type: ignore[attr-defined]
    url = env["PATRONPAY_CASHNET_CHECKOUT_URL"]
    store = url.rsplit("/", 1)[1]
    cashnet.set_faults(store, {"status": 703})
    try:
        results = run_checks(env)
    finally:
        cashnet.set_faults(store, {})
    assert lines(results)["cashnet.checkout"] == Result(
        "cashnet.checkout", "fail", f"CashNet has this store down for maintenance (703) at {url}",
        CASHNET_LATER)
    assert failed(results).keys() == {"cashnet.checkout"}


def test_lines_start_up_refuses_first_still_say_what_to_do(tmp_path):
    """No fault reaches these through `run_checks`: start-up refuses the setting first, and the
    `settings` line says so (test_a_bad_setting_is_the_one_failing_line). They are kept for a
    settings object made some other way; their words are pinned here."""
    token = check_token(SimpleNamespace(cashnet_postback_token="short",
                                        cashnet_postback_token_previous=""))
    assert token == Result("cashnet.token", "fail", "the notification token has 5 characters",
                           "set PATRONPAY_CASHNET_POSTBACK_TOKEN to 32+ random URL-safe "
                           "characters")
    [kiosks] = check_kiosks(SimpleNamespace(kiosk_keys={"lib2": "a" * 40, "lib1": "short"}))
    assert kiosks == Result("kiosks", "fail", "kiosk lib1's secret is shorter than 32 "
                            "characters", "give it a new secret (openssl rand -hex 32) in "
                            "PATRONPAY_KIOSK_KEYS and on the kiosk")
    public = check_public_url(SimpleNamespace(public_url="http://pay.library.example.edu",
                                              is_https=lambda: False))
    assert public == Result("signin.public_url", "fail", "http://pay.library.example.edu is "
                            "plain http", "serve patronpay behind https and set "
                            "PATRONPAY_PUBLIC_URL to that URL")
    site = check_site(SimpleNamespace(site_dir=tmp_path))
    assert site == Result("site", "fail", f"{tmp_path} has no index.html: it is not "
                          "patronpay's site folder", "set PATRONPAY_SITE_DIR to patronpay's "
                          "site folder, or reinstall")
