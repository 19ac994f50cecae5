"""Numbered, forward-only schema migrations for both backends, run with yoyo-migrations
(docs/deploy.md#schema-migrations).

Each change to the schema is one numbered step in migrations/sqlite/ and the same number in
migrations/postgresql/ (plain SQL where it can be; a Python step where SQLite needs one), so a
schema version means the same tables on both. `patronpay migrate` applies what a database
lacks, under yoyo's lock so two instances upgrading at once apply each step once. A new, empty
database is brought to the current schema when first opened; one at an older schema is refused
at start-up with one line saying to run `patronpay migrate`.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import TYPE_CHECKING, Any

from proxy.database.errors import SchemaError

if TYPE_CHECKING:
    from proxy.database.base import Database

FOLDER = Path(__file__).parent / "migrations"
TABLE = "_yoyo_migration"


def steps(dialect: str) -> list[str]:
    """The migrations' ids (file names without suffix), oldest first."""
    return sorted(p.stem for p in (FOLDER / dialect).iterdir()
                  if p.suffix in (".sql", ".py") and p.stem[:4].isdigit())


def _latest(dialect: str) -> int:
    return int(steps(dialect)[-1][:4])


SCHEMA_VERSION = _latest("sqlite")
if _latest("postgresql") != SCHEMA_VERSION:
    raise RuntimeError("a schema migration is missing for one of the backends")


def _backend(db: Database) -> Any:
    """yoyo's backend for the database, on our own connection settings: for SQLite the ledger's
    busy timeout and WAL (yoyo's own opens the file in shared-cache mode and gives up after
    5 s), for PostgreSQL the URL as it is (libpq reads it: sockets, sslmode, ...). Imported
    here: yoyo is needed only when a schema changes."""
    from yoyo.backends.core.postgresql import PostgresqlPsycopgBackend
    from yoyo.backends.core.sqlite3 import SQLiteBackend
    from yoyo.connections import DatabaseURI

    class Sqlite(SQLiteBackend):
        def connect(self, dburi: DatabaseURI) -> sqlite3.Connection:
            conn = sqlite3.connect(dburi.database, isolation_level=None, timeout=30.0)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=FULL")
            return conn

    class Postgres(PostgresqlPsycopgBackend):
        def connect(self, dburi: DatabaseURI) -> Any:
            import psycopg

            return psycopg.connect(dburi.database, autocommit=True)

    uri = DatabaseURI(db.dialect, None, None, None, None, db.path, {})
    backend = (Postgres if db.dialect == "postgresql" else Sqlite)(uri, TABLE)
    backend.init_database()
    return backend


def _read(db: Database) -> Any:
    from yoyo import read_migrations

    return read_migrations(str(FOLDER / db.dialect))


def pending(db: Database) -> list[str]:
    """The migrations this database has not had yet."""
    backend = _backend(db)
    try:
        return [m.id for m in backend.to_apply(_read(db))]
    finally:
        backend.connection.close()


def apply(db: Database) -> list[str]:
    """Apply what the database lacks, oldest first; the ids applied."""
    backend = _backend(db)
    try:
        with backend.lock():
            todo = backend.to_apply(_read(db))
            backend.apply_migrations(todo)
        return [m.id for m in todo]
    finally:
        backend.connection.close()


def require_current(db: Database, version: int) -> None:
    """Refuse a database whose schema is not this patronpay's, in one line."""
    if version < SCHEMA_VERSION:
        raise SchemaError(f"the ledger {db.describe()} has schema {version}; this patronpay "
                          f"uses {SCHEMA_VERSION}: run `patronpay migrate` first")
    if version > SCHEMA_VERSION:
        raise SchemaError(f"the ledger {db.describe()} has schema {version}; this patronpay "
                          f"uses {SCHEMA_VERSION}: run the patronpay version that wrote it")
