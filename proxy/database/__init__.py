"""The database behind the ledger and the sessions: SQLite (a path, the default) or
PostgreSQL (a `postgresql://` URL). See base.py for what both give, migrations.py for the
schema, errors.py for what to catch."""

from __future__ import annotations

from proxy.database.base import Database, is_postgres_url, ledger_exists
from proxy.database.errors import SchemaError
from proxy.database.migrations import SCHEMA_VERSION

__all__ = ["SCHEMA_VERSION", "Database", "SchemaError", "is_postgres_url", "ledger_exists"]
