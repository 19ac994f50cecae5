"""Figures for monitoring, read from the ledger in one go: how many payments are in each state
on each channel, how many need staff, how long the oldest paid payment has waited for Alma,
and the kiosks' sessions. Read only; every process sharing the ledger reads the same figures
(docs/operations.md#metrics)."""

from __future__ import annotations

from dataclasses import dataclass

from proxy.db import Database
from proxy.states import PaymentState

KIOSK_CHANNELS = "kiosk:%"


@dataclass(frozen=True)
class LedgerFigures:
    payments: dict[tuple[str, str], int]  # (state, channel) -> how many
    needs_review: int
    oldest_paid_at: float | None  # paid_at of the oldest payment still waiting for Alma
    kiosk_sessions_open: dict[str, int]  # channel (`kiosk:<id>`) -> live sessions
    kiosk_last_session_at: dict[str, float]  # channel -> when its last session started


def read_figures(db: Database, now: float, *, session_idle_seconds: float,
                 session_max_seconds: float) -> LedgerFigures:
    """The figures as of `now`. A session counts as open until it ends, idles out or reaches
    its maximum age, as the session store decides."""
    conn = db.connection()
    payments = {(row["state"], row["channel"]): row["n"] for row in conn.execute(
        "SELECT state, channel, COUNT(*) AS n FROM payments GROUP BY state, channel")}
    review = conn.execute("SELECT COUNT(*) FROM payments WHERE review != ''").fetchone()[0]
    oldest = conn.execute("SELECT MIN(paid_at) FROM payments WHERE state = ?",
                          (PaymentState.PAID,)).fetchone()[0]
    open_sessions = {row["channel"]: row["n"] for row in conn.execute(
        "SELECT channel, COUNT(*) AS n FROM sessions WHERE channel LIKE ? AND ended_at IS NULL "
        "AND last_seen_at > ? AND created_at > ? GROUP BY channel",
        (KIOSK_CHANNELS, now - session_idle_seconds, now - session_max_seconds))}
    last_session = {row["channel"]: row["at"] for row in conn.execute(
        "SELECT channel, MAX(created_at) AS at FROM sessions WHERE channel LIKE ? "
        "GROUP BY channel", (KIOSK_CHANNELS,))}
    return LedgerFigures(payments=payments, needs_review=review, oldest_paid_at=oldest,
                         kiosk_sessions_open=open_sessions, kiosk_last_session_at=last_session)

