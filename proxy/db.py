"""Where the rest of the code imports the database from (now the package proxy/database/)."""

from __future__ import annotations

from proxy.database import (
    SCHEMA_VERSION,
    Database,
    SchemaError,
    is_postgres_url,
    ledger_exists,
)

__all__ = ["SCHEMA_VERSION", "Database", "SchemaError", "is_postgres_url", "ledger_exists"]
