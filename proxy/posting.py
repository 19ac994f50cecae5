"""The posting worker: gets every paid payment into Alma, each allocation exactly once.

Alma does not de-duplicate payments, so before any payment call the worker reads the fee and
counts the PAYMENT transactions that carry the CashNet transaction number. If Alma already has
the money (a crash or a lost answer after Alma applied it), the allocation is marked posted and
nothing is sent. A lease taken in one `BEGIN IMMEDIATE` transaction keeps two workers (in one
process or several) off the same payment.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import secrets
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal

from proxy import metrics
from proxy.alma import (
    AlmaClient,
    AlmaError,
    AlmaFeeNotFound,
    AlmaOutcomeUnknown,
    AlmaUnavailable,
)
from proxy.fees import Fee, FeeRules, normalise_fee, normalise_fees, oldest_first
from proxy.ledger import AllocationRecord, Ledger, PaymentRecord
from proxy.money import ZERO, format_amount
from proxy.states import OPEN_ALLOCATIONS, AllocationState, PaymentState

log = logging.getLogger("patronpay.posting")

BACKOFF_BASE_SECONDS = 1.0
EXPIRY_SWEEP_SECONDS = 60.0
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


def owner_name() -> str:
    """A worker's name: this host, this process, and a random part. Each claim of a payment
    adds its own random part (see `_drain_one_lane`), so two lanes of one worker never hold
    the same lease."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"


def owner_is_dead(owner: str) -> bool:
    """True only when the owner is certainly gone: a process of this host that no longer
    exists (killed, crashed). Anything else (another host, a live or unknown process, a
    reused process id) counts as alive, and its lease runs its course."""
    host, _, rest = owner.partition(":")
    pid, _, _ = rest.partition(":")
    if host != socket.gethostname() or not pid.isascii() or not pid.isdigit():
        return False
    if int(pid) == os.getpid():
        return False  # another worker of this very process: alive
    try:
        os.kill(int(pid), 0)  # signal 0: only asks whether the process exists
    except ProcessLookupError:
        return True
    except (OverflowError, OSError):  # not ours to signal (it exists), or no such pid range
        return False
    return False


@dataclass(frozen=True)
class PostingPolicy:
    method: str = "ONLINE"
    comment: str = "CashNet payment"
    currency: str = "USD"
    rules: FeeRules = FeeRules()
    reallocate_remainder: bool = False
    give_up_seconds: float = 72 * 3600
    backoff_cap_seconds: float = 300.0
    recheck_seconds: float = 25.0
    lease_seconds: float = 120.0
    expiry_seconds: float = 24 * 3600


class PostingWorker:
    def __init__(
        self,
        ledger: Ledger,
        alma: AlmaClient,
        policy: PostingPolicy,
        *,
        concurrency: int = 4,
        idle_poll_seconds: float = 5.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.ledger = ledger
        self.alma = alma
        self.policy = policy
        self.concurrency = concurrency
        self.idle_poll_seconds = idle_poll_seconds
        self.clock = clock
        self.owner = owner_name()
        self._wake = asyncio.Event()
        self._stopping = False
        self._last_sweep = 0.0

    def wake(self) -> None:
        """A payment became due (a notification arrived): look now, not at the next poll."""
        self._wake.set()
        self._wake = asyncio.Event()  # lanes busy right now find the one they hold set

    def stop(self) -> None:
        self._stopping = True
        self._wake.set()

    async def run(self) -> None:
        """Post until stopped: `concurrency` lanes, each taking due payments one after another
        and, when none is due, waiting for a wake-up or the next due time on its own, so a
        notification is picked up by any idle lane at once. (Lanes of one `drain()` that found
        nothing stop, and while one lane keeps finding work the drain never ends: under steady
        load posting ran on a single lane.)"""
        await asyncio.gather(*(self._lane() for _ in range(self.concurrency)))

    async def _lane(self) -> None:
        while not self._stopping:
            woken = self._wake  # set by every wake() from now on, even while this lane works
            try:
                self._sweep()
                self._break_dead_leases()
                await self._drain_one_lane()
            except Exception:  # one bad round must not stop the money
                log.exception("posting round failed", extra={"event": "posting_error"})
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(woken.wait(), timeout=self._idle_wait())

    async def drain(self) -> int:
        """Process every payment due now; return how many rounds ran."""
        results = await asyncio.gather(*(self._drain_one_lane() for _ in range(self.concurrency)))
        return sum(results)

    async def _drain_one_lane(self) -> int:
        rounds = 0
        while not self._stopping:
            lease = f"{self.owner}:{secrets.token_hex(4)}"
            payment_id = self.ledger.claim_due_payment(lease, self.policy.lease_seconds)
            if payment_id is None:
                return rounds
            rounds += 1
            try:
                await self.process(payment_id, lease)
            except LeaseLost:
                log.warning("lease lost; another worker continues",
                            extra={"event": "lease_lost", "payment_id": payment_id})
            except Exception:
                # Whatever went wrong, try this payment again later, not in a tight loop
                # that would spend the institution's Alma quota.
                log.exception("posting a payment failed", extra={
                    "event": "posting_error", "payment_id": payment_id})
                self._defer(payment_id, "internal error; will try again")
            finally:
                self.ledger.release(payment_id, lease)
        return rounds

    def _defer(self, payment_id: str, outcome: str) -> None:
        payment = self.ledger.payment(payment_id)
        for allocation in payment.allocations if payment else ():
            if allocation.state in OPEN_ALLOCATIONS:
                self.ledger.mark_retry(allocation.id, self._backoff(allocation), outcome)

    def _idle_wait(self) -> float:
        due = self.ledger.next_due_at()
        if due is None:
            return self.idle_poll_seconds
        return max(0.05, min(self.idle_poll_seconds, due - self.clock()))

    def _break_dead_leases(self) -> None:
        """After a crash and restart on this host, take the dead process's work over now
        rather than when its leases run out (minutes)."""
        for payment_id in self.ledger.break_leases(owner_is_dead):
            log.warning("lease of a dead worker broken",
                        extra={"event": "lease_broken", "payment_id": payment_id})

    def _sweep(self) -> None:
        """Once a minute (and at start): expire pending payments past their time, and settle
        paid payments with nothing left to post (a crash can fall between the last posting
        and the settling)."""
        now = self.clock()
        if now - self._last_sweep < EXPIRY_SWEEP_SECONDS:
            return
        self._last_sweep = now
        for payment_id in self.ledger.expire_pending(self.policy.expiry_seconds):
            log.info("payment expired", extra={"event": PaymentState.EXPIRED,
                                               "payment_id": payment_id})
        for payment_id in self.ledger.paid_with_nothing_left():
            state = self.ledger.settle_if_done(payment_id)
            log.info("payment settled", extra={"event": state, "payment_id": payment_id})

    # --- one payment ---

    async def process(self, payment_id: str, lease: str) -> None:
        """One round for one payment, under `lease`."""
        payment = self.ledger.payment(payment_id)
        if payment is None or payment.state != PaymentState.PAID:
            return
        now = self.clock()
        due = [a for a in payment.allocations if a.state in OPEN_ALLOCATIONS
               and (a.next_attempt_at or 0) <= now]
        started = self.ledger.posting_started_at(payment.id) or payment.paid_at or now
        if due and now - started > self.policy.give_up_seconds:
            for allocation in due:
                self.ledger.mark_failed(allocation.id, "gave up: Alma could not be reached "
                                        f"({allocation.outcome or 'no answer'})")
            due = []
        if due:
            await self._post(payment, due, lease)
        state = self.ledger.settle_if_done(payment.id)
        if state != PaymentState.PAID:
            log.info("payment settled", extra={"event": state, "payment_id": payment.id})
        if state == PaymentState.POSTED:
            metrics.payment_posted(payment.paid_at, self.clock())

    async def _post(self, payment: PaymentRecord, due: list[AllocationRecord],
                    lease: str) -> None:
        try:
            fees = normalise_fees(await self.alma.list_fees(payment.patron_id),
                                  self.policy.rules, self.policy.currency)
        except AlmaUnavailable as exc:
            for allocation in due:
                self.ledger.mark_retry(allocation.id, self._backoff(allocation), str(exc))
            return
        except (AlmaError, ValueError) as exc:
            for allocation in due:
                self.ledger.mark_failed(allocation.id, f"cannot read the patron's fees: {exc}")
            return
        by_id = fees.by_id()
        for due_allocation in due:
            if self._stopping:
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
            self.ledger.mark_retry(allocation.id, self._backoff(allocation), str(exc))
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
            self.ledger.mark_retry(allocation.id, self._backoff(allocation, wait), str(exc))
            return None
        except AlmaUnavailable as exc:
            self.ledger.mark_not_sent(allocation.id, self._backoff(allocation), str(exc))
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

    def _backoff(self, allocation: AllocationRecord, at_least: float | None = None) -> float:
        delay = min(self.policy.backoff_cap_seconds,
                    BACKOFF_BASE_SECONDS * 2 ** min(allocation.attempts, 20))
        delay *= random.uniform(0.8, 1.2)
        if at_least is not None:
            delay = max(delay, at_least)
        return self.clock() + delay
