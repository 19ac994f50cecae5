"""One pipeline for every read, serial or keyboard wedge (docs/kiosk.md#reader-input,
docs/kiosk.md#card-rules, docs/kiosk.md#bank-cards-and-card-numbers): ignore reads while a payment
is in progress, normalise (the PCI guard comes first), ignore a repeat of the same card within 2 s,
then hand the credential on.

Reads are handled one at a time, in arrival order. A raw read never leaves this module except
to `kiosk.cards.normalise`: logs and events name only the reason code and the reader, and an
accepted credential only by its fingerprint (HMAC with the install key).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from kiosk.cards import CardRules, Credential, Rejection, credential_fingerprint, normalise

log = logging.getLogger("patronpay.kiosk.scan_pipeline")

REPEAT_SECONDS = 2.0


@dataclass(frozen=True)
class ReadOutcome:
    """What became of a read: accepted, refused (with a reason code) or ignored."""

    result: str
    reason: str = ""

    def to_json(self) -> dict:
        return {"result": self.result, "reason": self.reason} if self.reason else \
            {"result": self.result}


CredentialHandler = Callable[[Credential, str], Awaitable[ReadOutcome]]


class ReadPipeline:
    def __init__(self, rules: CardRules, install_key: bytes, *,
                 on_credential: CredentialHandler, on_refused: Callable[[str, str], None],
                 busy: Callable[[], bool],
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        """`on_credential(credential, fingerprint)` opens the patron's session; `on_refused(
        reason, source)` tells the page; `busy()` is true while a payment is in progress."""
        self._rules = rules
        self._install_key = install_key
        self._on_credential = on_credential
        self._on_refused = on_refused
        self._busy = busy
        self._monotonic = monotonic
        self._lock = asyncio.Lock()
        self._last: tuple[str, float] | None = None

    async def submit(self, raw: bytes | str, source: str) -> ReadOutcome:
        async with self._lock:
            return await self._handle(raw, source)

    def refuse_overflow(self, source: str) -> ReadOutcome:
        """The framer discarded an over-long frame: report `too_long` (no bytes to look at)."""
        return self._refuse("too_long", source)

    async def _handle(self, raw: bytes | str, source: str) -> ReadOutcome:
        if self._busy():
            log.info("read ignored", extra={"event": "read_ignored",
                                            "reason": "payment_in_progress", "reader": source})
            return ReadOutcome("ignored", "payment_in_progress")
        result = normalise(raw, self._rules, source)
        del raw  # nothing below may see the read
        if isinstance(result, Rejection):
            return self._refuse(result.reason, source)
        fingerprint = credential_fingerprint(self._install_key, result)
        now = self._monotonic()
        if self._last is not None and self._last[0] == fingerprint and \
                now - self._last[1] < REPEAT_SECONDS:
            log.info("read ignored", extra={"event": "read_ignored", "reason": "repeat",
                                            "reader": source, "credential": fingerprint})
            return ReadOutcome("ignored", "repeat")
        self._last = (fingerprint, now)
        log.info("read accepted", extra={"event": "read_accepted", "kind": result.kind,
                                         "reader": source, "credential": fingerprint})
        return await self._on_credential(result, fingerprint)

    def _refuse(self, reason: str, source: str) -> ReadOutcome:
        log.info("read rejected", extra={"event": "read_rejected", "reason": reason,
                                         "reader": source})
        self._on_refused(reason, source)
        return ReadOutcome("refused", reason)
