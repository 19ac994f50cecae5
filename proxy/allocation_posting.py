"""One payment's conversation with Alma, allocation by allocation: read the patron's fees, look
before paying (Alma does not de-duplicate payments: the PAYMENT transactions that carry the
CashNet transaction number say whether Alma already has the money), pay, and read the answer.
Money that no longer fits its fee is applied in part and the rest moved or held for staff.

The posting worker (proxy/posting.py) decides which payment is due and holds its lease; this
module does the talking, and raises LeaseLost when the lease ran out under it.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable
from decimal import Decimal
from typing import TYPE_CHECKING

from proxy.alma import (
    AlmaClient,
    AlmaError,
    AlmaFeeNotFound,
    AlmaOutcomeUnknown,
    AlmaUnavailable,
)
from proxy.fees import Fee, normalise_fee, normalise_fees, oldest_first
from proxy.ledger import AllocationRecord, Ledger, PaymentRecord
from proxy.money import ZERO, format_amount
from proxy.states import OPEN_ALLOCATIONS, AllocationState

if TYPE_CHECKING:
    from proxy.posting import PostingPolicy

log = logging.getLogger("patronpay.posting")

BACKOFF_BASE_SECONDS = 1.0
# Alma documents no maximum length for a payment's `comment` (docs/alma.md#paying-a-fee): keep
# to a conservative 255 characters until a library's own sandbox settles it.
ALMA_COMMENT_LIMIT = 255


class LeaseLost(Exception):
    """Another worker took this payment over (our lease ran out): send nothing more."""


def alma_comment(prefix: str, payment: PaymentRecord) -> str:
    """The `comment` of each Alma payment: the configured text, then CashNet's transaction,
    our payment reference and where it was paid (`web` or `kiosk:<id>`), so a desk can trace a
    payment from Alma alone. Over the limit, the configured text gives way first."""
    facts = f"tx {payment.cashnet_tx or '-'}; ref {payment.id}; {payment.channel}"
    head = prefix.strip()[:max(0, ALMA_COMMENT_LIMIT - len(facts) - 2)].rstrip()
    return (f"{head}: {facts}" if head else facts)[:ALMA_COMMENT_LIMIT]


class AllocationPoster:
    """Posts a payment's due allocations to Alma. `clock` and `stopping` are the worker's, read
    at each use (a test may swap the worker's clock)."""

    def __init__(self, ledger: Ledger, alma: AlmaClient, policy: PostingPolicy, *,
                 clock: Callable[[], float], stopping: Callable[[], bool]) -> None:
        self.ledger = ledger
        self.alma = alma
        self.policy = policy
        self.clock = clock
        self.stopping = stopping

    async def post(self, payment: PaymentRecord, due: list[AllocationRecord],
                   lease: str) -> None:
        """Post the `due` allocations of `payment`, each by the look-before-pay rule, under
        `lease`; what Alma says is recorded on each allocation."""
        try:
            fees = normalise_fees(await self.alma.list_fees(payment.patron_id),
                                  self.policy.rules, self.policy.currency)
        except AlmaUnavailable as exc:
            for allocation in due:
                self.ledger.mark_retry(allocation.id, self.retry_at(allocation), str(exc))
            return
        except (AlmaError, ValueError) as exc:
            for allocation in due:
                self.ledger.mark_failed(allocation.id, f"cannot read the patron's fees: {exc}")
            return
        by_id = fees.by_id()
        for due_allocation in due:
            if self.stopping():
                return
            # Read the payment again: an allocation posted earlier in this round counts in
            # what Alma should already show for the same fee.
            current = self.ledger.payment(payment.id)
            allocation = next(a for a in current.allocations if a.id == due_allocation.id)
            fee = by_id.get(allocation.fee_id) or await self._closed_fee(current, allocation)
            if fee is None:
                continue
            updated = await self._post_one(current, allocation, fee, by_id, lease)
            if updated is not None:
                by_id[updated.id] = updated

    async def _closed_fee(self, payment: PaymentRecord, allocation: AllocationRecord) -> Fee | None:
        """A fee missing from the ACTIVE list: read it by id (it may be CLOSED, or gone)."""
        try:
            raw = await self.alma.get_fee(payment.patron_id, allocation.fee_id)
        except AlmaFeeNotFound:
            return Fee(allocation.fee_id, allocation.fee_type, "", "GONE", "", "", "", "",
                       ZERO, ZERO, False)
        except AlmaUnavailable as exc:
            self.ledger.mark_retry(allocation.id, self.retry_at(allocation), str(exc))
            return None
        except AlmaError as exc:
            self.ledger.mark_failed(allocation.id, f"cannot read fee: {exc}")
            return None
        fee = normalise_fee(raw, self.policy.rules)
        if fee is None:
            self.ledger.mark_failed(allocation.id, "fee has amounts that are not exact cents")
        return fee

    async def _post_one(self, payment: PaymentRecord, allocation: AllocationRecord, fee: Fee,
                        fees: dict[str, Fee], lease: str) -> Fee | None:
        tx = payment.cashnet_tx or ""
        already = sum((a.amount for a in payment.allocations
                       if a.fee_id == fee.id and a.state == AllocationState.POSTED), ZERO)
        in_alma = fee.paid_with(tx)
        if in_alma == already + allocation.amount:
            self.ledger.mark_posted(allocation.id, "found in Alma")
            return None
        if in_alma != already:
            self.ledger.mark_failed(
                allocation.id, f"Alma shows {format_amount(in_alma)} from transaction {tx} on "
                f"fee {fee.id}, the ledger expected {format_amount(already)}")
            return None
        amount = allocation.amount
        if fee.status != "ACTIVE" or fee.balance < amount:
            amount = self._shrink(payment, allocation, fee, fees, lease)
            if amount <= ZERO:
                return None
        if not self.ledger.mark_sending(allocation.id, lease, self.policy.lease_seconds,
                                        self.policy.recheck_seconds):
            raise LeaseLost(payment.id)
        return await self._pay(payment, allocation, fee, amount)

    async def _pay(self, payment: PaymentRecord, allocation: AllocationRecord, fee: Fee,
                   amount: Decimal) -> Fee | None:
        try:
            raw = await self.alma.pay_fee(
                payment.patron_id, fee.id, amount, method=self.policy.method,
                external_transaction_id=payment.cashnet_tx or "",
                comment=alma_comment(self.policy.comment, payment))
        except AlmaOutcomeUnknown as exc:
            wait = self.policy.recheck_seconds if exc.in_flight else None
            self.ledger.mark_retry(allocation.id, self.retry_at(allocation, wait), str(exc))
            return None
        except AlmaUnavailable as exc:
            self.ledger.mark_not_sent(allocation.id, self.retry_at(allocation), str(exc))
            return None
        except AlmaError as exc:
            self.ledger.mark_failed(allocation.id, f"Alma refused the payment: {exc}")
            return None
        self.ledger.mark_posted(allocation.id, "applied")
        log.info("allocation posted", extra={"event": "allocation_posted",
                                             "payment_id": payment.id, "fee_id": fee.id})
        return normalise_fee(raw, self.policy.rules)

    def _shrink(self, payment: PaymentRecord, allocation: AllocationRecord, fee: Fee,
                fees: dict[str, Fee], lease: str) -> Decimal:
        """The fee holds less than we meant to pay (paid, waived or gone meanwhile): apply what
        fits, move the rest to other payable fees when configured, hold the rest for staff."""
        applicable = min(fee.balance, allocation.amount) if fee.status == "ACTIVE" else ZERO
        applicable = max(applicable, ZERO)
        surplus = allocation.amount - applicable
        reason = (f"fee {fee.id} is {fee.status.lower()}" if fee.status != "ACTIVE"
                  else f"fee {fee.id} balance is only {format_amount(fee.balance)}")
        moves = self._moves(payment, surplus, fees) if self.policy.reallocate_remainder else []
        if not self.ledger.reduce_allocation(allocation.id, applicable, reason, moves,
                                             lease=lease):
            raise LeaseLost(payment.id)
        return applicable

    def _moves(self, payment: PaymentRecord, surplus: Decimal,
               fees: dict[str, Fee]) -> list[tuple[str, str, str, Decimal]]:
        """Where the surplus can go: the patron's payable fees, oldest first, each taking what
        its balance leaves after this payment's shares still waiting to be posted to it."""
        moves = []
        for fee in sorted((f for f in fees.values() if f.payable), key=oldest_first):
            if surplus <= ZERO:
                break
            pending = sum((a.amount for a in payment.allocations
                           if a.fee_id == fee.id and a.state in OPEN_ALLOCATIONS), ZERO)
            share = min(surplus, fee.balance - pending)
            if share > ZERO:
                moves.append((fee.id, fee.type_code, fee.type_label, share))
                surplus -= share
        return moves

    def retry_at(self, allocation: AllocationRecord, at_least: float | None = None) -> float:
        """When to try `allocation` again: exponential backoff with jitter, capped."""
        delay = min(self.policy.backoff_cap_seconds,
                    BACKOFF_BASE_SECONDS * 2 ** min(allocation.attempts, 20))
        delay *= random.uniform(0.8, 1.2)
        if at_least is not None:
            delay = max(delay, at_least)
        return self.clock() + delay
