"""Waking every instance's posting worker when work becomes due (docs/deploy.md#two-nodes).

With several instances on one PostgreSQL ledger, CashNet's notification lands on one of them;
its own worker is woken at once, the others would only see the payment at their next poll
(`idle_poll_seconds`, 5 s). On PostgreSQL the woken instance also sends `NOTIFY` on one
channel, and each instance LISTENs on it with a connection of its own and wakes its worker:
a busy or dying instance's work is picked up by another without waiting for a poll. The
message carries nothing; the worker finds the work in the ledger as always, so a lost or
extra wake-up changes nothing but timing. On SQLite (one machine) there is nothing to signal.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

import psycopg
from psycopg_pool import PoolTimeout

from proxy.database.postgres import PostgresDatabase

log = logging.getLogger("patronpay.posting")

CHANNEL = "patronpay_work"
RECONNECT_SECONDS = 5.0  # after the database went away; the poll covers the gap meanwhile


class WorkSignal:
    def __init__(self, db: PostgresDatabase) -> None:
        self.db = db

    def announce(self) -> None:
        """Tell every instance that work is due (blocking: call it off the event loop)."""
        # If it fails, the other instances' poll still finds the work.
        with contextlib.suppress(psycopg.Error, PoolTimeout):
            self.db.autocommit(lambda conn: conn.execute(f"NOTIFY {CHANNEL}"))

    def announce_soon(self) -> None:
        """`announce` on a thread: for the event loop, which must not wait for the database."""
        asyncio.get_running_loop().run_in_executor(None, self.announce)

    async def listen(self, wake: Callable[[], None]) -> None:
        """Call `wake` for every announcement until cancelled (at shutdown); reconnects after
        the database went away."""
        lost = False
        while True:
            try:
                async with await psycopg.AsyncConnection.connect(
                        self.db.path, autocommit=True) as conn:
                    await conn.execute(f"LISTEN {CHANNEL}")
                    lost = False
                    while True:  # notifies() ends each second: a cut connection is noticed
                        async for _ in conn.notifies(timeout=1.0):
                            wake()
            except psycopg.Error as exc:
                if not lost:  # one line per outage, not one per attempt
                    log.warning("work signal connection lost; polling meanwhile",
                                extra={"event": "work_signal_lost",
                                       "error": type(exc).__name__})
                    lost = True
                await asyncio.sleep(RECONNECT_SECONDS)  # a back-off, not a wait for a result


def work_signal(db: object) -> WorkSignal | None:
    """A WorkSignal on PostgreSQL; None on SQLite."""
    return WorkSignal(db) if isinstance(db, PostgresDatabase) else None
