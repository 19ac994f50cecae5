"""Whose ledger it is (docs/consortium.md#configuration): two institutions on one ledger would
each post the other's payments to its own Alma. The
start-up check compares the settings (clashes.py), but two spellings of one database, a link to
the same file or a second deployment can still meet in one ledger; so each ledger records the
institution that first started on it, and any other institution is refused there. Outside a
consortium nothing is recorded or checked."""

from __future__ import annotations

from proxy.config import PREFIX, ConfigError
from proxy.db import Database

CLAIM = ("INSERT INTO ledger_owner (only_row, institution) VALUES (1, ?) ON CONFLICT DO NOTHING"
         " RETURNING institution")
OWNER = "SELECT institution FROM ledger_owner WHERE only_row = 1"


def claim_ledger(db: Database, code: str) -> None:
    """Record `code` as the ledger's institution if none is, else refuse a ledger that is
    another institution's. In one transaction, so two instances starting at once agree.

    The first claim also gives the ledger's payments that name no institution (written before
    schema 6, or while it served one institution alone) to `code`: the ledger is that
    institution's, so their money went to its store and is posted to its Alma. Once only,
    so that a start does not scan every payment."""
    with db.write() as conn:
        if conn.execute(CLAIM, (code,)).fetchone() is not None:
            conn.execute("UPDATE payments SET institution = ? WHERE institution = ''", (code,))
        owner = conn.execute(OWNER).fetchone()[0]
    if owner != code:
        raise ConfigError(f"{PREFIX}CONFIG [institutions.{code}] database is the ledger of "
                          f"institution {owner!r}, not {code!r}: each institution needs its "
                          "own database")
