"""What the rest of patronpay sees of the database, whichever backend holds it.

`Database(target)` opens an SQLite file when `target` is a path (the default, one machine)
and PostgreSQL when it is a `postgresql://` URL (several instances sharing one database,
docs/deploy.md#two-nodes). Both give the same four things, and the SQL the code writes is the
same on both: `?` placeholders, rows readable by index and by column name.

    write()       a transaction that holds the database's write lock from its first
                  statement: two writers (threads, processes, hosts) never interleave a
                  read-then-write, so a decision taken inside it is taken once
    read()        rows of one statement, outside any transaction (or inside the thread's
    read_one()    open write, which it then sees)
    connection()  something with `execute()` for a few reads in a row

A statement that only one backend understands is written in the dialect both share
(`INSERT ... ON CONFLICT DO NOTHING`, `RETURNING id`), never by asking which backend runs.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

POSTGRES_SCHEMES = ("postgresql://", "postgres://")

# What a backend hands out, for type hints: a connection or open transaction (its `execute`
# returns a cursor: fetchone, fetchall, rowcount, iteration) and a row (by index and by name).
Connection = Any
Row = Any


def is_postgres_url(target: object) -> bool:
    return isinstance(target, str) and target.startswith(POSTGRES_SCHEMES)


def ledger_exists(target: Path | str) -> bool:
    """Whether a staff command may open the ledger: an SQLite file must be there already (a
    mistyped path must not create an empty ledger); a PostgreSQL URL is tried when opened."""
    return is_postgres_url(target) or Path(target).is_file()


class Database:
    """Base of the two backends; `Database(target)` picks one (see the module's doc)."""

    dialect = ""
    path: str  # the SQLite file, or the PostgreSQL URL

    def __new__(cls, target: Path | str, *args: Any, **kwargs: Any) -> Database:
        if cls is Database:
            if is_postgres_url(target):
                from proxy.database.postgres import PostgresDatabase
                cls = PostgresDatabase
            else:
                from proxy.database.sqlite import SqliteDatabase
                cls = SqliteDatabase
        return super().__new__(cls)

    @classmethod
    def unchecked(cls, target: Path | str) -> Database:
        """Opened without the schema check (for `patronpay migrate`)."""
        return cls(target, check=False)

    def connection(self) -> Any:
        raise NotImplementedError

    @contextlib.contextmanager
    def write(self) -> Iterator[Any]:
        raise NotImplementedError
        yield

    def read(self, sql: str, params: tuple | dict = ()) -> list[Any]:
        raise NotImplementedError

    def read_one(self, sql: str, params: tuple | dict = ()) -> Any | None:
        raise NotImplementedError

    def writable(self) -> bool:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    def describe(self) -> str:
        """Where the ledger is, for people: the file, or the URL without its password."""
        return self.path
