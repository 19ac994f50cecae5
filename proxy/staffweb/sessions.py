"""Staff sessions: a record in the ledger database's `staff_sessions` table, named by a signed
cookie of its own.

They are kept apart from patrons' sessions on purpose: another table, another cookie name and
another signing salt, so a patron's cookie can never name a staff session (nor the reverse),
and a lifetime of their own, shorter than a patron's (PATRONPAY_STAFF_SESSION_IDLE_MINUTES and
..._MAX_MINUTES). As for patrons, only a SHA-256 of the session id is stored.
"""

from __future__ import annotations

import dataclasses
import hashlib
import secrets
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from itsdangerous import BadSignature

from proxy.db import Database
from proxy.patron_sessions import HOST_PREFIX, signer

COOKIE_NAME = "patronpay_staff"
SALT = "staff-session"  # patrons' cookies are signed with "session": neither verifies the other
TOUCH_EVERY_SECONDS = 30.0
KEEP_ENDED_SECONDS = 86400.0


@dataclass(frozen=True)
class StaffSession:
    id_hash: str
    user_id: str
    method: str      # sso or cas
    granted_by: str  # "user" (PATRONPAY_STAFF_USERS) or "group:<name>"
    csrf_token: str
    created_at: float
    last_seen_at: float
    expires_at: float


def cookie_name(https: bool) -> str:
    return HOST_PREFIX + COOKIE_NAME if https else COOKIE_NAME


class StaffSessionStore:
    def __init__(self, db: Database, secret_keys: Sequence[str], *, idle_seconds: float,
                 max_seconds: float, clock: Callable[[], float] = time.time) -> None:
        self.db = db
        self.idle_seconds = idle_seconds
        self.max_seconds = max_seconds
        self.clock = clock
        self._signer = signer(secret_keys, SALT)

    def create(self, user_id: str, method: str, granted_by: str) -> tuple[StaffSession, str]:
        """Start a staff session; returns it and the cookie value that names it."""
        session_id = secrets.token_urlsafe(32)
        now = self.clock()
        with self.db.write() as conn:
            conn.execute("DELETE FROM staff_sessions WHERE last_seen_at < ?",
                         (now - self.max_seconds - KEEP_ENDED_SECONDS,))
            conn.execute(
                "INSERT INTO staff_sessions (id, user_id, method, granted_by, csrf_token,"
                " created_at, last_seen_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (_hash(session_id), user_id, method, granted_by, secrets.token_urlsafe(32),
                 now, now))
        session = self._load(_hash(session_id))
        assert session is not None
        return session, self._signer.dumps(session_id)

    def load(self, cookie_value: str | None) -> StaffSession | None:
        """The live staff session a cookie names, or None (bad signature, ended, expired)."""
        if not cookie_value:
            return None
        try:
            session_id = self._signer.loads(cookie_value)
        except BadSignature:
            return None
        return self._load(_hash(session_id)) if isinstance(session_id, str) else None

    def touch(self, session: StaffSession) -> StaffSession:
        """Count this request as activity (written at most every TOUCH_EVERY_SECONDS)."""
        now = self.clock()
        if now - session.last_seen_at < TOUCH_EVERY_SECONDS:
            return session
        with self.db.write() as conn:
            conn.execute("UPDATE staff_sessions SET last_seen_at = ? WHERE id = ?",
                         (now, session.id_hash))
        return dataclasses.replace(
            session, last_seen_at=now,
            expires_at=min(now + self.idle_seconds, session.created_at + self.max_seconds))

    def end(self, session: StaffSession) -> None:
        with self.db.write() as conn:
            conn.execute("UPDATE staff_sessions SET ended_at = ? WHERE id = ?"
                         " AND ended_at IS NULL", (self.clock(), session.id_hash))

    def _load(self, id_hash: str) -> StaffSession | None:
        row = self.db.read_one(
            "SELECT * FROM staff_sessions WHERE id = ? AND ended_at IS NULL", (id_hash,))
        if row is None:
            return None
        expires_at = min(row["last_seen_at"] + self.idle_seconds,
                         row["created_at"] + self.max_seconds)
        if self.clock() >= expires_at:
            return None
        return StaffSession(id_hash, row["user_id"], row["method"], row["granted_by"],
                            row["csrf_token"], row["created_at"], row["last_seen_at"],
                            expires_at)


def _hash(session_id: str) -> str:
    return hashlib.sha256(session_id.encode()).hexdigest()
