"""The kiosk's fee list, read by the scanned card at the same time as the card lookup
(docs/performance.md#the-kiosk-from-scan-to-fees-on-screen).

A scan would otherwise cost two Alma round trips one after the other: USER, to learn whose card
it is and open the session, then the page's LIST. Alma's fees call takes any unique identifier,
so the proxy asks for the card's fees beside USER, with the same identifier type, and offers the
list to the kept fee lists (proxy/fee_cache.py, keyed by the patron's primary ID as always), so
the page's `GET /api/fees` finds it there.

The list is the patron's only once USER has said whose card it is: if USER fails or does not
know the card, the read is cancelled and nothing is kept. Once USER has answered, the list is
kept only if every fee in it names that patron (`user_primary_id`), and only if none of the
patron's payments could have moved while it was read (one moved since the read started, one is
paid and still posting, or the marker moves before the read ends); otherwise the page reads the
fees by the patron's primary ID as it always did. With no kept lists
(`PATRONPAY_FEES_FRESH_SECONDS=0`) nothing is read ahead.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from proxy.alma import AlmaClient
from proxy.config import Settings
from proxy.fees import EXPORTED, FeeList, normalise_fees
from proxy.in_progress import hold_rules
from proxy.payments import fee_rules

if TYPE_CHECKING:
    from proxy.runtime import Services

log = logging.getLogger("patronpay.kiosk")


class CardFees:
    """One scan's fee read by the card, started before anyone knows whose card it is. Used as
    a context manager around USER: leaving it without `keep_for` (USER failed, refused the
    card, or the request was cancelled) discards the read."""

    def __init__(self, svc: Services, card: str, id_type: str) -> None:
        self._svc = svc
        self._started_at = svc.ledger.clock()
        self._read: asyncio.Future[tuple[dict, dict | None]] | None = None
        if svc.fee_cache.fresh_seconds > 0:  # else nothing is kept: the page reads as before
            self._read = asyncio.ensure_future(_read_raw(svc.alma, svc.settings, card, id_type))

    def __enter__(self) -> CardFees:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.discard()

    def discard(self) -> None:
        """Nothing read by the card may be shown or kept (cancels the read if it is on)."""
        if self._read is not None:
            _drop(self._read)
            self._read = None

    def keep_for(self, patron_id: str) -> None:
        """USER says the card is `patron_id`'s: offer the list for them, if it is theirs."""
        svc, read = self._svc, self._read
        if read is None:
            return
        self._read = None  # handed on: leaving the context no longer cancels it
        marker = svc.ledger.patron_marker(patron_id)
        held = svc.ledger.in_progress(patron_id, hold_rules(svc.settings))
        if marker[1] >= self._started_at or any(not item.open for item in held):
            _drop(read)  # a payment moved (or may yet) while the card's list was read
            return
        svc.fee_cache.offer(patron_id, marker, self._owned_by(read, patron_id))

    async def _owned_by(self, read: asyncio.Future[tuple[dict, dict | None]],
                        patron_id: str) -> FeeList | None:
        active, exported = await read
        strangers = [raw for raw in (active, exported) if raw is not None
                     and not _all_owned_by(raw, patron_id)]
        if strangers:
            log.warning("the card's fee list names another patron; not kept",
                        extra={"event": "kiosk_fees_discarded"})
            return None
        settings = self._svc.settings
        fees = normalise_fees(active, fee_rules(settings), settings.currency)
        if exported is None:
            return fees
        return fees.with_billed(normalise_fees(exported, fee_rules(settings), settings.currency))


def _drop(read: asyncio.Future) -> None:
    if not read.done():
        read.cancel()
    elif not read.cancelled():
        read.exception()  # retrieved, so that a failed read nobody wants is not reported


async def _read_raw(alma: AlmaClient, settings: Settings, card: str,
                    id_type: str) -> tuple[dict, dict | None]:
    """What the fees page reads (proxy/payments.py's read_fees_page), by the card."""
    active = await alma.list_fees(card, id_type=id_type)
    if not settings.show_exported_fees:
        return active, None
    return active, await alma.list_fees(card, EXPORTED, id_type=id_type)


def _all_owned_by(raw: dict, patron_id: str) -> bool:
    """Every fee names `patron_id` as its user. A fee without `user_primary_id` (some older
    answers) is taken on the identifier's uniqueness: USER and LIST were asked the same one."""
    for fee in raw.get("fee") or []:
        owner = fee.get("user_primary_id") if isinstance(fee, dict) else None
        value = owner.get("value") if isinstance(owner, dict) else None
        if value is not None and str(value) != patron_id:
            return False
    return True
