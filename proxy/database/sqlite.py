"""The SQLite ledger: one file, WAL, `synchronous=FULL`, so a committed notification survives
a power cut. Each thread gets its own connection; transactions are explicit (`BEGIN IMMEDIATE`
takes the write lock up front, so two processes never interleave a read-then-write).
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path

from proxy.database import legacy, migrations
from proxy.database.base import Database
from proxy.database.errors import SchemaError


class SqliteDatabase(Database):
    """Per-thread connections to one SQLite file, made at the current schema on first use."""

    dialect = "sqlite"

    def __init__(self, path: Path | str, *, check: bool = True) -> None:
        self.path = str(path)
        self._local = threading.local()
        if check:
            self._check_schema()

    def connection(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, isolation_level=None, timeout=30.0,
                                   check_same_thread=False)
            conn.row_factory = sqlite3.Row
            conn.execute("PRAGMA busy_timeout=30000")
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=FULL")
            conn.execute("PRAGMA foreign_keys=ON")
            self._local.conn = conn
        return conn

    @contextlib.contextmanager
    def write(self) -> Iterator[sqlite3.Connection]:
        """A write transaction holding the database's write lock from its first statement."""
        conn = self.connection()
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    def read(self, sql: str, params: tuple | dict = ()) -> list[sqlite3.Row]:
        return self.connection().execute(sql, params).fetchall()

    def read_one(self, sql: str, params: tuple | dict = ()) -> sqlite3.Row | None:
        return self.connection().execute(sql, params).fetchone()

    def writable(self) -> bool:
        """Readiness: can we take the write lock and commit?"""
        try:
            with self.write() as conn:
                conn.execute("SELECT 1")
            return True
        except sqlite3.Error:
            return False

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None

    def schema_version(self) -> int:
        return self.connection().execute("PRAGMA user_version").fetchone()[0]

    def is_empty(self) -> bool:
        return self.connection().execute("SELECT count(*) FROM sqlite_master").fetchone()[0] == 0

    def _check_schema(self) -> None:
        """A new file gets the current schema; a ledger at an older one is refused until
        `patronpay migrate` has run (each migration sets `user_version` to its number)."""
        Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        version = self.schema_version()
        if version == 0 and self.is_empty():
            migrations.apply(self)
            version = self.schema_version()
        migrations.require_current(self, version)
        with self.write() as conn:
            legacy.complete(conn)


__all__ = ["SchemaError", "SqliteDatabase"]
