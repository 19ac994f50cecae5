"""Whose ledger it is (docs/consortium.md#configuration): payment rows name no institution, so
two institutions on one ledger would each post the other's payments to its own Alma. The
start-up check compares the settings (clashes.py), but two spellings of one database, a link to
the same file or a second deployment can still meet in one ledger; so each ledger records the
institution that first started on it, and any other institution is refused there. Outside a
consortium nothing is recorded or checked."""

from __future__ import annotations

from proxy.config import PREFIX, ConfigError
from proxy.db import Database

CLAIM = "INSERT INTO ledger_owner (only_row, institution) VALUES (1, ?) ON CONFLICT DO NOTHING"
OWNER = "SELECT institution FROM ledger_owner WHERE only_row = 1"


def claim_ledger(db: Database, code: str) -> None:
    """Record `code` as the ledger's institution if none is, else refuse a ledger that is
    another institution's. In one transaction, so two instances starting at once agree."""
    with db.write() as conn:
        conn.execute(CLAIM, (code,))
        owner = conn.execute(OWNER).fetchone()[0]
    if owner != code:
        raise ConfigError(f"{PREFIX}CONFIG [institutions.{code}] database is the ledger of "
                          f"institution {owner!r}, not {code!r}: each institution needs its "
                          "own database")
