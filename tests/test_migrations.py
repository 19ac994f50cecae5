"""The ledger's schema migrations and moving house (docs/deploy.md#schema-migrations,
docs/deploy.md#two-nodes): a ledger written before numbered migrations, with a payment in every
state, is refused at start-up until `patronpay migrate` has run, then reads back the same; step 6
gives the payments already there the institution whose ledger it is (docs/consortium.md), on
both backends; and `patronpay ledger copy` moves it into an empty PostgreSQL database,
verified."""

from __future__ import annotations

import os
import sqlite3
from decimal import Decimal
from pathlib import Path
from types import SimpleNamespace

import pytest

from patronpay.cli import main
from patronpay.demo import sandbox_environment
from proxy.consortium.ledger_owner import claim_ledger
from proxy.database import migrations
from proxy.db import SCHEMA_VERSION, Database, SchemaError
from proxy.ledger import Ledger
from proxy.states import PaymentState

SCHEMA_1 = Path(__file__).parent / "support" / "ledger_schema_1.sql"


@pytest.fixture
def old_ledger(tmp_path: Path) -> Path:
    """A ledger as patronpay wrote it before numbered migrations."""
    path = tmp_path / "ledger.sqlite3"
    with sqlite3.connect(path) as conn:
        conn.executescript(SCHEMA_1.read_text())
    return path


@pytest.fixture
def cli(monkeypatch, capsys):
    def run(database, *argv):
        for name in [n for n in os.environ if n.startswith("PATRONPAY_")]:
            monkeypatch.delenv(name)
        env = sandbox_environment("http://127.0.0.1:9", "http://127.0.0.1:9", database, "t" * 40)
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        code = main([str(a) for a in argv])
        out, err = capsys.readouterr()
        return code, out, err
    return run


def as_written(path: Path) -> dict[str, tuple]:
    """Each payment as its rows say, read with nothing of patronpay."""
    conn = sqlite3.connect(path)
    try:
        found = {}
        for pid, state, cents, tx in conn.execute(
                "SELECT id, state, amount_cents, cashnet_tx FROM payments"):
            shares = conn.execute("SELECT fee_id, amount_cents, state FROM allocations WHERE"
                                  " payment_id = ? ORDER BY id", (pid,)).fetchall()
            events = conn.execute("SELECT COUNT(*) FROM events WHERE payment_id = ?",
                                  (pid,)).fetchone()[0]
            found[pid] = (state, cents, tx, tuple(shares), events)
        return found
    finally:
        conn.close()


def as_read(ledger: Ledger) -> dict[str, tuple]:
    return {p.id: (p.state, int(p.amount * 100), p.cashnet_tx,
                   tuple((a.fee_id, int(a.amount * 100), a.state) for a in p.allocations),
                   len(ledger.events(p.id)))
            for p in ledger.find_payments(limit=None)}


def test_an_old_ledger_is_refused_until_migrated_then_reads_back_the_same(old_ledger, cli):
    before = as_written(old_ledger)
    assert {state for state, *_ in before.values()} == set(PaymentState)

    with pytest.raises(SchemaError, match="run `patronpay migrate`"):
        Database(old_ledger)
    code, out, err = cli(old_ledger, "serve", "--port", "9")  # refused before it listens
    assert (code, out) == (2, "")
    assert err == (f"patronpay: the ledger {old_ledger} has schema 1; this patronpay uses "
                   f"{SCHEMA_VERSION}: run `patronpay migrate` first\n")

    code, out, err = cli(old_ledger, "migrate")
    assert (code, err) == (0, "")
    assert out == (f"{old_ledger}: applied {', '.join(migrations.steps('sqlite'))}; "
                   f"schema {SCHEMA_VERSION}\n")
    assert as_read(Ledger(Database(old_ledger))) == before
    assert cli(old_ledger, "migrate")[1] == (f"{old_ledger}: already at schema "
                                             f"{SCHEMA_VERSION}, nothing to do\n")


def migrate_until(dialect: str, target: Path | str, last: int) -> None:
    """Apply the steps up to `last` only: a ledger as an older patronpay left it."""
    db = SimpleNamespace(dialect=dialect, path=str(target))
    backend = migrations._backend(db)
    try:
        with backend.lock():
            todo = backend.to_apply(migrations._read(db))
            backend.apply_migrations(type(todo)(m for m in todo if int(m.id[:4]) <= last))
    finally:
        backend.connection.close()


def institutions(ledger: Ledger) -> set[str]:
    return {p.institution for p in ledger.find_payments(limit=None)}


@pytest.mark.parametrize("owner", ["campus-a", None])
def test_step_6_gives_the_payments_there_their_ledgers_institution(old_ledger, cli, owner):
    migrate_until("sqlite", old_ledger, 5)
    before = as_written(old_ledger)
    if owner:  # a consortium's ledger, claimed at schema 5
        with sqlite3.connect(old_ledger) as conn:
            conn.execute("INSERT INTO ledger_owner (only_row, institution) VALUES (1, ?)",
                         (owner,))

    code, out, err = cli(old_ledger, "migrate")
    assert (code, err) == (0, "")
    assert out == f"{old_ledger}: applied 0006_payment_institution; schema {SCHEMA_VERSION}\n"
    db = Database(old_ledger)
    try:
        ledger = Ledger(db)
        assert as_read(ledger) == before
        # A single institution's payments name none ('', shown as nothing, as before).
        assert institutions(ledger) == {owner or ""}
        # The first institution of a consortium to start on the ledger takes them; a later
        # start of the same one changes nothing.
        claim_ledger(db, owner or "campus-b")
        claim_ledger(db, owner or "campus-b")
        assert institutions(ledger) == {owner or "campus-b"}
        assert as_read(ledger) == before
    finally:
        db.close()


@pytest.mark.parametrize("owner", ["campus-a", None])
def test_step_6_on_postgresql(postgres_cluster, owner):
    url = postgres_cluster.create_database()
    migrate_until("postgresql", url, 5)
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("INSERT INTO payments (id, patron_id, patron_name, channel, amount_cents,"
                     " currency, state, custcode, checkout, created_at, updated_at, paid_at,"
                     " cashnet_tx) VALUES ('p1', 'jsmith', 'Jo Smith', 'web', 1250, 'USD',"
                     " 'paid', 'jsmith', '{}', 1, 2, 2, '77')")
        if owner:
            conn.execute("INSERT INTO ledger_owner (only_row, institution) VALUES (1, %s)",
                         (owner,))
    assert migrations.apply(SimpleNamespace(dialect="postgresql", path=url)) == \
        ["0006_payment_institution"]
    db = Database(url)
    try:
        ledger = Ledger(db, institution="campus-b")
        payment = ledger.payment("p1")
        assert payment is not None
        assert (payment.amount, payment.state, payment.cashnet_tx, payment.institution) == \
            (Decimal("12.50"), PaymentState.PAID, "77", owner or "")
        claim_ledger(db, owner or "campus-b")
        assert institutions(ledger) == {owner or "campus-b"}
    finally:
        db.close()


@pytest.mark.parametrize("ledger_backend", ["postgresql"], indirect=True)
def test_copy_into_postgresql_is_verified_and_refuses_a_second_time(old_ledger, cli,
                                                                   ledger_target):
    cli(old_ledger, "migrate")
    before = as_written(old_ledger)
    target = ledger_target("target")  # a new database at the current schema, no ledger in it

    code, out, err = cli(old_ledger, "ledger", "copy", "--to", target)
    assert (code, err) == (0, "")
    assert out.startswith(f"copied {old_ledger} into {target}, verified:")
    assert "posted" in out and "62.00" in out and "payments" in out
    db = Database(target)
    try:
        assert as_read(Ledger(db)) == before
        # New rows take ids after the copied ones.
        with db.write() as tx:
            new_id = tx.execute("INSERT INTO events (payment_id, at, kind, source, detail)"
                                " VALUES (NULL, 0, 'note', 'test', '{}') RETURNING id"
                                ).fetchone()[0]
        assert new_id > max(r[0] for r in db.read("SELECT id FROM events WHERE source != ?",
                                                   ("test",)))
    finally:
        db.close()

    code, out, err = cli(old_ledger, "ledger", "copy", "--to", target)
    assert code == 2 and out == ""
    assert err.startswith("patronpay: ") and "is not empty" in err and err.count("\n") == 1
