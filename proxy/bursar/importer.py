"""`patronpay bursar import`: each good row of a payments file becomes a paid ledger payment.

Per row: find the patron in Alma by the campus id (`PATRONPAY_BURSAR_ID_TYPE`), read their
active fees live (Analytics is a day old; a fee may have been paid at the desk since), take off
what the ledger is still about to post to them, and spread the amount oldest fee first (or over
the fee, or the fees of the item code, the row names). What the patron does not owe waits for
staff. The ledger writes the payment once per transaction id (proxy/ledger/external.py), so a
re-run, an overlapping file or a crash mid-file never makes two payments of one row; the
posting worker then applies it in Alma, exactly once, looking before it pays.

Alma being unreachable stops the import (the file stays where it is and a later run carries on):
the rows already recorded are kept and the rest are not judged on an outage.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal

from proxy.alma import AlmaClient, AlmaError, AlmaUnavailable, AlmaUserNotFound
from proxy.bursar.import_file import PaidRow, PaidsFile
from proxy.fees import Fee, FeeRules, normalise_fees, oldest_first
from proxy.ledger import Ledger
from proxy.ledger.external import ExternalShare, TransactionTaken, external_payment_id
from proxy.money import ZERO, format_amount
from proxy.states import OPEN_ALLOCATIONS, PaymentState

log = logging.getLogger("patronpay.bursar")

CHANNEL = "bursar"
# Events in the ledger's trail (no payment) that alert staff by e-mail (proxy/mail/alerts.py).
REFUSED_EVENT = "bursar_refused"  # a payments file refused whole
REJECTED_EVENT = "bursar_rejected"  # rows of a payments file refused
RECORDED, ALREADY, WOULD_POST, REJECTED = "recorded", "already", "would post", "rejected"


class ImportInterrupted(Exception):
    """Alma could not be asked (outage, throttling, configuration): stop, try again later."""


@dataclass(frozen=True)
class RowResult:
    line: int
    patron: str
    amount: Decimal | None
    transaction_id: str
    outcome: str
    payment_id: str = ""
    detail: str = ""
    shares: tuple[tuple[str, Decimal], ...] = ()
    unapplied: Decimal = ZERO


@dataclass
class ImportResult:
    name: str
    sha256: str
    rows: list[RowResult] = field(default_factory=list)
    interrupted: str = ""

    def count(self, outcome: str) -> int:
        return sum(1 for row in self.rows if row.outcome == outcome)

    @property
    def rejected(self) -> list[RowResult]:
        return [row for row in self.rows if row.outcome == REJECTED]

    def summary(self) -> dict:
        return {"rows": len(self.rows), RECORDED: self.count(RECORDED),
                ALREADY: self.count(ALREADY), WOULD_POST: self.count(WOULD_POST),
                REJECTED: self.count(REJECTED), "interrupted": self.interrupted}


@dataclass(frozen=True)
class Plan:
    shares: tuple[ExternalShare, ...]
    rest: Decimal
    reason: str


class BursarImporter:
    def __init__(self, ledger: Ledger, alma: AlmaClient, *, id_type: str, currency: str,
                 item_code_for: Callable[[str, str], str]) -> None:
        self.ledger = ledger
        self.alma = alma
        self.id_type = id_type
        self.currency = currency
        self.item_code_for = item_code_for

    async def run(self, paids: PaidsFile, *, dry_run: bool = False) -> ImportResult:
        result = ImportResult(paids.name, paids.sha256)
        result.rows += [RowResult(r.line, "", None, "", REJECTED, detail=r.reason)
                        for r in paids.rejects]
        for row in paids.rows:
            try:
                result.rows.append(await self._row(paids, row, dry_run))
            except ImportInterrupted as exc:
                result.interrupted = f"line {row.line}: {exc}"
                break
        result.rows.sort(key=lambda r: r.line)
        return result

    async def _row(self, paids: PaidsFile, row: PaidRow, dry_run: bool) -> RowResult:
        payment_id = external_payment_id(CHANNEL, row.transaction_id)

        def outcome(kind: str, detail: str = "", plan: Plan | None = None,
                    paid_id: str = payment_id) -> RowResult:
            shares = tuple((s.fee_id, s.amount) for s in plan.shares) if plan else ()
            return RowResult(row.line, row.patron, row.amount, row.transaction_id, kind,
                             paid_id, detail, shares, plan.rest if plan else ZERO)

        earlier = self.ledger.payment(payment_id)
        if earlier is not None:
            if earlier.amount != row.amount or earlier.custcode != row.patron:
                return outcome(REJECTED, f"transaction {row.transaction_id} was imported before "
                               f"for {earlier.custcode}, {format_amount(earlier.amount)}")
            return outcome(ALREADY, f"imported before ({earlier.state})")
        for other in self.ledger.find_payments(tx=row.transaction_id, limit=1):
            return outcome(ALREADY, f"recorded by {other.channel} payment {other.id}",
                           paid_id=other.id)
        patron = await self._patron(row.patron)
        if patron is None:
            return outcome(REJECTED, f"no patron {row.patron!r} in Alma "
                           f"(user_id_type {self.id_type})")
        primary_id, name = patron
        plan = self._plan(row, await self._fees(primary_id), self._pending(primary_id),
                          payment_id)
        if dry_run:
            return outcome(WOULD_POST, f"patron {primary_id}", plan)
        try:
            payment, created = self.ledger.record_external_payment(
                channel=CHANNEL, transaction_id=row.transaction_id, patron_id=primary_id,
                patron_name=name, custcode=row.patron, amount=row.amount,
                currency=self.currency, item_code=row.item_code,
                description=f"bursar file {paids.name} line {row.line}", shares=plan.shares,
                unapplied_reason=plan.reason,
                source={"file": paids.name, "line": row.line, "sha256": paids.sha256,
                        "stable_id": row.stable_id})
        except TransactionTaken as exc:
            return outcome(ALREADY, str(exc), paid_id=exc.payment_id)
        log.info("bursar payment recorded", extra={
            "event": "bursar_recorded" if created else "bursar_already",
            "payment_id": payment.id, "line": row.line})
        if not created:
            return outcome(ALREADY, "imported meanwhile by another run")
        detail = f"patron {primary_id}" + (
            f"; {format_amount(plan.rest)} waits for staff" if plan.rest else "")
        return outcome(RECORDED, detail, plan)

    async def _patron(self, campus_id: str) -> tuple[str, str] | None:
        """(Alma primary id, name) of the patron with that campus id, or None."""
        try:
            user = await self.alma.get_user(campus_id, self.id_type)
        except AlmaUserNotFound:
            return None
        except AlmaError as exc:
            raise ImportInterrupted(f"Alma: {exc}") from None
        primary_id = str(user.get("primary_id") or "")
        if not primary_id:
            raise ImportInterrupted("Alma sent a user without a primary id")
        name = " ".join(str(user.get(part) or "") for part in ("first_name", "last_name"))
        return primary_id, name.strip()

    async def _fees(self, primary_id: str) -> list[Fee]:
        """Every active fee with a balance: the bursar billed them all (the report's own
        filters chose which), so the portal's payable-type settings do not apply here."""
        try:
            raw = await self.alma.list_fees(primary_id)
            fees = normalise_fees(raw, FeeRules(), self.currency)
        except AlmaUnavailable as exc:
            raise ImportInterrupted(f"Alma: {exc}") from None
        except (AlmaError, ValueError) as exc:
            raise ImportInterrupted(f"cannot read the fees of {primary_id}: {exc}") from None
        return [fee for fee in fees.fees if fee.payable]

    def _pending(self, primary_id: str) -> dict[str, Decimal]:
        """What the ledger is still to post to each fee of this patron (not in Alma yet)."""
        pending: dict[str, Decimal] = {}
        for payment in self.ledger.find_payments(patron_id=primary_id,
                                                 state=PaymentState.PAID, limit=None):
            for allocation in payment.allocations:
                if allocation.state in OPEN_ALLOCATIONS:
                    pending[allocation.fee_id] = pending.get(allocation.fee_id, ZERO) \
                        + allocation.amount
        return pending

    def _plan(self, row: PaidRow, fees: list[Fee], pending: dict[str, Decimal],
              payment_id: str) -> Plan:
        if row.fee_id:
            targets = [fee for fee in fees if fee.id == row.fee_id]
            unmatched = f"fee {row.fee_id} named by the file is not open in Alma"
        elif row.item_code:
            targets = [fee for fee in fees if self.item_code_for(fee.type_code, fee.library_code)
                       == row.item_code]
            unmatched = f"no open fee of item code {row.item_code}"
        else:
            targets = fees
            unmatched = "the patron owes nothing in Alma"
        remaining = row.amount
        shares = []
        for fee in sorted(targets, key=oldest_first):
            available = fee.balance - pending.get(fee.id, ZERO)
            share = min(remaining, available)
            if share > ZERO:
                shares.append(ExternalShare(fee.id, fee.type_code, fee.type_label, share))
                remaining -= share
            if remaining <= ZERO:
                break
        cause = unmatched if not shares else "more than the patron owes in Alma"
        reason = (f"{cause}: refund the {format_amount(remaining)} through the bursar or apply "
                  f"it by hand, then `patronpay payments resolve {payment_id} --note '...'`")
        return Plan(tuple(shares), remaining, reason if remaining > ZERO else "")
