"""The backends' errors, named once, so that callers catch them without importing a driver.

Each name below is usable in `except`:

    IntegrityError  a constraint refused the statement (a unique key already taken, ...)
    Error           any error of the database
    Unavailable     PostgreSQL cannot be reached, or the connection broke mid-way: the request
                    is answered 503 and tried again later; a write cut off at its commit may or
                    may not have landed, so whoever tries again reads before acting

SQLite raises its own `sqlite3` errors; the PostgreSQL backend turns psycopg's into the classes
here (proxy/database/postgres.py), so that SQLite-only processes never import psycopg.
"""

from __future__ import annotations

import sqlite3


class DatabaseError(Exception):
    """An error of the PostgreSQL database (the driver's error is its `__cause__`)."""


class ConstraintError(DatabaseError):
    """PostgreSQL refused a statement that breaks a constraint."""


class UnavailableError(DatabaseError):
    """PostgreSQL cannot be reached, or the connection broke (a restart, a failover)."""


class SchemaError(RuntimeError):
    """The database's schema is not the one this patronpay uses; the message says what to do."""


IntegrityError: tuple[type[Exception], ...] = (sqlite3.IntegrityError, ConstraintError)
Error: tuple[type[Exception], ...] = (sqlite3.Error, DatabaseError)
Unavailable: tuple[type[Exception], ...] = (UnavailableError,)
