"""Review: a fee list kept from before one share of a paid payment reached Alma must not be
used once that share's hold is released (it would offer the fee again at its old balance)."""

from __future__ import annotations

import asyncio
from decimal import Decimal

from proxy.db import Database
from proxy.fee_cache import FeeCache
from proxy.ledger import HoldRules, Ledger, LineRecord

LOST, OVERDUE = "7730018830004146", "7730012450004146"
RULES = HoldRules(pending_hold_seconds=20 * 60, max_open=3)


def test_a_share_posted_while_the_payment_stays_paid_drops_the_kept_fee_list(tmp_path):
    now = [1_760_000_000.0]
    ledger = Ledger(Database(tmp_path / "ledger.sqlite3"), lambda: now[0])
    ledger.start_payment(
        rules=RULES, payment_id="a" * 32, patron_id="mkowalski", patron_name="Maria",
        channel="web", session_id="s", amount=Decimal("2.00"), currency="USD",
        custcode="mkowalski", lines=[LineRecord(1, "LIB", Decimal("2.00"), "Fees")],
        allocations=[(fee, "OVERDUEFINE", "Overdue fine", Decimal("1.00"))
                     for fee in (LOST, OVERDUE)],
        checkout={"action": "x", "method": "POST", "fields": {}})
    ledger.record_paid("a" * 32, cashnet_tx="9001", amount=Decimal("2.00"), note="seen",
                       actor="t")
    reads = []

    async def read():
        reads.append(1)
        return f"list {len(reads)}"

    cache = FeeCache(30, ledger.patron_marker, clock=lambda: 0.0)

    async def scenario():
        assert await cache.get("mkowalski", read) == "list 1"
        # Both fees are held: the kept list may be shown.
        assert await cache.get("mkowalski", read) == "list 1"
        now[0] += 1
        first = ledger.payment("a" * 32).allocations[0]
        ledger.mark_posted(first.id, "applied")
        [held] = ledger.in_progress("mkowalski", RULES)
        assert held.fee_ids == {OVERDUE}  # LOST is payable again: its balance must be re-read
        return await cache.get("mkowalski", read)

    assert asyncio.run(scenario()) == "list 2"
