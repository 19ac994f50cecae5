"""Each institution's ledger remembers whose it is (docs/consortium.md#configuration): payment
rows name no institution, so a ledger another institution started on is refused at start-up,
however its settings spell it (a second deployment, a renamed table, another URL for the same
PostgreSQL database); outside a consortium nothing is recorded or checked."""

from pathlib import Path

import pytest
from support.consortium_tables import CAMPUS_A, CAMPUS_B, DEFAULTS, write

from proxy.app import create_app
from proxy.config import ConfigError, load_settings
from proxy.consortium.app import create_consortium_app
from proxy.consortium.config import load_consortium
from proxy.consortium.ledger_owner import OWNER
from proxy.db import Database

REFUSED = ("PATRONPAY_CONFIG [institutions.campus-b] database is the ledger of institution "
           "'campus-a', not 'campus-b': each institution needs its own database")


def start(environ: dict[str, str]) -> None:
    """Build the consortium's apps (what `patronpay serve` does first), then close them."""
    app = create_consortium_app(load_consortium(environ), run_worker=False)
    for inner in app.inner.values():
        inner.state.services.db.close()


def owner(target: Path | str) -> str | None:
    db = Database(target)
    try:
        row = db.read_one(OWNER)
        return row[0] if row else None
    finally:
        db.close()


def test_each_ledger_records_its_institution_and_starts_again(tmp_path):
    environ = write(tmp_path, DEFAULTS, CAMPUS_A, CAMPUS_B)
    start(environ)
    start(environ)
    assert owner(tmp_path / "ledger-campus-a.sqlite3") == "campus-a"
    assert owner(tmp_path / "ledger-campus-b.sqlite3") == "campus-b"


def test_another_institutions_ledger_is_refused(tmp_path):
    start(write(tmp_path, DEFAULTS, CAMPUS_A))
    # Later, a configuration that gives campus-a's ledger to campus-b (the settings alone
    # cannot tell: campus-a has moved to a new file).
    environ = write(tmp_path, DEFAULTS, CAMPUS_A + 'database = "{folder}/new-a.sqlite3"',
                    CAMPUS_B + 'database = "{folder}/ledger-campus-a.sqlite3"')
    with pytest.raises(ConfigError) as caught:
        start(environ)
    assert str(caught.value) == REFUSED
    assert owner(tmp_path / "ledger-campus-a.sqlite3") == "campus-a"


def test_outside_a_consortium_nothing_is_recorded_or_checked(tmp_path):
    start(write(tmp_path, DEFAULTS, CAMPUS_A))
    for ledger in ("ledger-campus-a.sqlite3", "alone.sqlite3"):
        settings = load_settings(write(tmp_path, DEFAULTS.replace(
            "ledger.sqlite3", ledger), 'alma_api_key = "l7xx"\ncashnet_checkout_url = '
            '"https://commerce.cashnet.com/X"\ncashnet_postback_token = "' + "t" * 40 + '"'))
        create_app(settings, run_worker=False).state.services.db.close()
    assert owner(tmp_path / "ledger-campus-a.sqlite3") == "campus-a"
    assert owner(tmp_path / "alone.sqlite3") is None


def test_one_postgresql_database_under_two_spellings_is_refused(tmp_path, postgres_cluster):
    url = postgres_cluster.create_database(template="patronpay_template")
    # Another host name that libpq connects to the same server (hostaddr): the settings name
    # two databases, the server has one.
    same = url.replace("@127.0.0.1:", "@ledger.invalid:") + "?hostaddr=127.0.0.1"
    shared = DEFAULTS.replace('database = "{folder}/ledger.sqlite3"', f'database = "{url}"')
    environ = write(tmp_path, shared, CAMPUS_A + f'database = "{url}"',
                    CAMPUS_B + f'database = "{same}"')
    with pytest.raises(ConfigError) as caught:
        start(environ)
    assert str(caught.value) == REFUSED
    assert owner(url) == "campus-a"
