"""Patron sessions: a server-side record named by an itsdangerous-signed cookie.

The record lives in the ledger database, so logout, idle expiry and a kiosk reset really end
it, in every proxy process. Only a SHA-256 of the session id is stored: a copy of the database
does not let anyone take a session over. Keys rotate: the first key signs, every key verifies.
"""

from __future__ import annotations

import dataclasses
import hashlib
import secrets
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from itsdangerous import BadSignature, URLSafeSerializer

from proxy.db import Database
from proxy.patrons import Patron

COOKIE_NAME = "patronpay_session"
# Over https the cookie is `__Host-patronpay_session`: browsers accept that name only when it
# is Secure, has Path=/ and no Domain, so no other host of the campus domain can set or shadow
# it (docs/security.md#sessions).
HOST_PREFIX = "__Host-"
TOUCH_EVERY_SECONDS = 30.0  # a write per request would cost an fsync each
VERIFIED_COOKIES_KEPT = 4096  # bounded memory: past this many cookies, start again
PURGE_EVERY_SECONDS = 3600.0
KEEP_ENDED_SECONDS = 86400.0  # a day of ended sessions, for questions about yesterday


@dataclass(frozen=True)
class Session:
    id_hash: str
    patron: Patron
    method: str
    channel: str
    csrf_token: str
    created_at: float
    last_seen_at: float
    expires_at: float

    def to_json(self) -> dict:
        return {
            "patron": {"id": self.patron.primary_id, "name": self.patron.name,
                       "first_name": self.patron.first_name,
                       "account_type": self.patron.account_type},
            "csrf_token": self.csrf_token,
            "expires_at": iso_time(self.expires_at),
            "method": self.method,
        }


def cookie_name(https: bool) -> str:
    return HOST_PREFIX + COOKIE_NAME if https else COOKIE_NAME


def signer(secret_keys: Sequence[str], salt: str) -> URLSafeSerializer:
    """itsdangerous signs with the last key of its list; ours signs with the first."""
    return URLSafeSerializer(list(reversed(secret_keys)), salt=salt)


class SessionStore:
    def __init__(
        self,
        db: Database,
        secret_keys: Sequence[str],
        *,
        idle_seconds: float,
        max_seconds: float,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.db = db
        self.idle_seconds = idle_seconds
        self.max_seconds = max_seconds
        self.clock = clock
        self._signer = signer(secret_keys, "session")
        # Cookie values whose signature checked out, and the hash of the session id each names:
        # the check (key derivation and HMAC) was about 5% of the CPU of a fees-page request
        # served from the kept list. Whether the session is live is still read every time.
        self._verified: dict[str, str] = {}
        self._last_purge = float("-inf")

    def create(self, patron: Patron, method: str, channel: str = "web",
               cas_ticket_hash: str = "") -> tuple[Session, str]:
        """Start a session; returns it and the cookie value that names it. A CAS session
        keeps its ticket's hash, so the CAS server's single logout can end it."""
        session_id = secrets.token_urlsafe(32)
        now = self.clock()
        if now - self._last_purge >= PURGE_EVERY_SECONDS:
            self._last_purge = now
            self.purge(self.max_seconds + KEEP_ENDED_SECONDS)
        with self.db.write() as conn:
            conn.execute(
                "INSERT INTO sessions (id, patron_id, first_name, last_name, email, account_type,"
                " method, channel, csrf_token, created_at, last_seen_at, cas_ticket_hash)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (_hash(session_id), patron.primary_id, patron.first_name, patron.last_name,
                 patron.email, patron.account_type, method, channel, secrets.token_urlsafe(32),
                 now, now, cas_ticket_hash))
        session = self._load(_hash(session_id))
        assert session is not None
        return session, self._signer.dumps(session_id)

    def load(self, cookie_value: str | None) -> Session | None:
        """The live session a cookie names, or None (bad signature, ended or expired). Loading
        is not activity: call `touch` once the request has passed its guards."""
        if not cookie_value:
            return None
        id_hash = self._verified.get(cookie_value)
        if id_hash is None:
            try:
                session_id = self._signer.loads(cookie_value)
            except BadSignature:
                return None
            if not isinstance(session_id, str):
                return None
            if len(self._verified) >= VERIFIED_COOKIES_KEPT:
                self._verified.clear()
            id_hash = self._verified[cookie_value] = _hash(session_id)
        return self._load(id_hash)

    def end(self, session: Session) -> None:
        with self.db.write() as conn:
            conn.execute("UPDATE sessions SET ended_at = ? WHERE id = ? AND ended_at IS NULL",
                         (self.clock(), session.id_hash))

    def end_by_cas_ticket(self, cas_ticket_hash: str) -> int:
        """End the live sessions started with this CAS ticket; how many there were."""
        if not cas_ticket_hash:
            return 0
        with self.db.write() as conn:
            return conn.execute(
                "UPDATE sessions SET ended_at = ? WHERE cas_ticket_hash = ? AND ended_at IS NULL",
                (self.clock(), cas_ticket_hash)).rowcount

    def purge(self, older_than_seconds: float) -> int:
        """Forget sessions that ended or expired long ago."""
        cutoff = self.clock() - older_than_seconds
        with self.db.write() as conn:
            return conn.execute("DELETE FROM sessions WHERE last_seen_at < ?",
                                (cutoff,)).rowcount

    def touch(self, session: Session) -> Session:
        """Count this request as activity (written at most every TOUCH_EVERY_SECONDS)."""
        now = self.clock()
        if now - session.last_seen_at < TOUCH_EVERY_SECONDS:
            return session
        with self.db.write() as conn:
            conn.execute("UPDATE sessions SET last_seen_at = ? WHERE id = ?",
                         (now, session.id_hash))
        return dataclasses.replace(
            session, last_seen_at=now,
            expires_at=min(now + self.idle_seconds, session.created_at + self.max_seconds))

    def _load(self, id_hash: str) -> Session | None:
        row = self.db.read_one("SELECT * FROM sessions WHERE id = ? AND ended_at IS NULL",
                               (id_hash,))
        if row is None:
            return None
        now = self.clock()
        expires_at = min(row["last_seen_at"] + self.idle_seconds,
                         row["created_at"] + self.max_seconds)
        if now >= expires_at:
            return None
        patron = Patron(row["patron_id"], row["first_name"], row["last_name"], row["email"],
                        row["account_type"])
        return Session(id_hash, patron, row["method"], row["channel"], row["csrf_token"],
                       row["created_at"], row["last_seen_at"], expires_at)


def _hash(session_id: str) -> str:
    return hashlib.sha256(session_id.encode()).hexdigest()


def iso_time(epoch: float) -> str:
    """UTC time as the JSON we send shows it: 2026-11-22T14:05:09Z."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))
