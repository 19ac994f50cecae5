"""Schema 1: made in an empty file, or completed in a ledger written by any patronpay before
numbered migrations (proxy/database/legacy.py)."""

from yoyo import step

from proxy.database import legacy

steps = [step(legacy.create_or_complete)]
