"""`patronpay bursar holds`: who to hold at registration, and whose hold can be lifted.

A patron is held when they owe more than `PATRONPAY_BURSAR_HOLD_MIN` (from the fines report)
or, when `PATRONPAY_BURSAR_BLOCK_TYPES` names block types, when their Alma record carries an
active block of one of them. Blocks are read from the full user record of each patron in the
report and each patron held last time (so a lifted block lifts the hold); a patron blocked who
owes nothing and was never held is not seen (docs/bursar.md#holds).

Beyond the campus policy, the run is compared with the previous one (kept in the ledger): the
patrons held then and not now are the holds that can be lifted. An empty report when patrons
were held before is refused (it would lift every hold) unless staff say it is right.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal

from proxy.alma import AlmaClient, AlmaError, AlmaUserNotFound
from proxy.bursar.fines import Fines, totals
from proxy.bursar.store import Hold
from proxy.money import format_amount

MAX_BLOCK_LOOKUPS = 20_000  # one Alma call each: keep well inside the daily API quota


class HoldsError(Exception):
    """The holds cannot be worked out safely; nothing is written or recorded."""


@dataclass(frozen=True)
class HoldsResult:
    held: tuple[Hold, ...]
    placed: tuple[Hold, ...]  # held now, not last time
    lifted: tuple[Hold, ...]  # held last time, not now
    lookups: int  # Alma calls made for blocks


async def work_out_holds(fines: Fines, previous: list[Hold], *, hold_min: Decimal,
                         block_types: Iterable[str], alma: AlmaClient | None,
                         allow_empty: bool = False) -> HoldsResult:
    if not fines.fees and previous and not allow_empty:
        raise HoldsError(f"the report lists nobody, and {len(previous)} patrons were held last "
                         "time: refusing to lift every hold (use --allow-empty if it is right)")
    reasons: dict[str, list[str]] = {}
    campus_ids: dict[str, str] = {hold.primary_id: hold.campus_id for hold in previous}
    for primary_id, fees in fines.by_patron().items():
        campus_ids[primary_id] = fees[0].campus_id
        owed = totals(fees)
        if owed > hold_min:
            reasons.setdefault(primary_id, []).append(f"owes {format_amount(owed)}")
    wanted = {kind.upper() for kind in block_types}
    lookups = 0
    if wanted:
        if alma is None:
            raise HoldsError("block types are set but Alma is not available")
        candidates = sorted(campus_ids)
        if len(candidates) > MAX_BLOCK_LOOKUPS:
            raise HoldsError(f"{len(candidates)} patrons to look up for blocks: more than "
                             f"{MAX_BLOCK_LOOKUPS} Alma calls")
        for primary_id in candidates:
            lookups += 1
            for kind in await _active_blocks(alma, primary_id, wanted):
                reasons.setdefault(primary_id, []).append(f"block {kind}")
    held = tuple(Hold(primary_id, campus_ids[primary_id], "; ".join(why))
                 for primary_id, why in sorted(reasons.items(),
                                               key=lambda item: (campus_ids[item[0]], item[0])))
    held_ids = {hold.primary_id for hold in held}
    before = {hold.primary_id for hold in previous}
    return HoldsResult(
        held=held,
        placed=tuple(hold for hold in held if hold.primary_id not in before),
        lifted=tuple(hold for hold in previous if hold.primary_id not in held_ids),
        lookups=lookups)


async def _active_blocks(alma: AlmaClient, primary_id: str, wanted: set[str]) -> list[str]:
    try:
        user = await alma.get_user(primary_id, view="full")
    except AlmaUserNotFound:
        return []  # gone from Alma: nothing to hold them for
    except AlmaError as exc:
        # A partial list would lift the holds of everyone not yet read: stop instead.
        raise HoldsError(f"cannot read the blocks of {primary_id}: {exc}") from None
    blocks = user.get("user_block") or []
    found = []
    for block in blocks if isinstance(blocks, list) else []:
        kind = block.get("block_type") if isinstance(block, dict) else None
        code = str(kind.get("value", "") if isinstance(kind, dict) else kind or "").upper()
        status = str(block.get("block_status") or "ACTIVE").upper()
        if code in wanted and status == "ACTIVE" and code not in found:
            found.append(code)
    return sorted(found)


def ids_csv(holds: Iterable[Hold], header: str) -> bytes:
    """One campus id a line under one header: what PeopleSoft's mass assign and release of
    service indicators take as a population file."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow([header])
    for campus_id in sorted({hold.campus_id for hold in holds}):
        writer.writerow([campus_id])
    return buffer.getvalue().encode("utf-8")
