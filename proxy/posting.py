"""The posting worker: gets every paid payment into Alma, each allocation exactly once.

Alma does not de-duplicate payments, so before any payment call the worker reads the fee and
counts the PAYMENT transactions that carry the CashNet transaction number. If Alma already has
the money (a crash or a lost answer after Alma applied it), the allocation is marked posted and
nothing is sent. A lease taken in one `BEGIN IMMEDIATE` transaction keeps two workers (in one
process or several) off the same payment.

This module runs the lanes, claims and leases, sweeps and gives up; the conversation with Alma
about one payment (look before paying, pay, re-check) is proxy/allocation_posting.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass

from proxy import metrics
from proxy.allocation_posting import AllocationPoster, LeaseLost
from proxy.alma import AlmaClient
from proxy.fees import FeeRules
from proxy.ledger import Ledger
from proxy.states import OPEN_ALLOCATIONS, PaymentState

log = logging.getLogger("patronpay.posting")

EXPIRY_SWEEP_SECONDS = 60.0


def owner_name() -> str:
    """A worker's name: this host, this process, and a random part. Each claim of a payment
    adds its own random part (see `_drain_one_lane`), so two lanes of one worker never hold
    the same lease."""
    return f"{this_host()}:{os.getpid()}:{secrets.token_hex(4)}"


def this_host() -> str:
    """This host's name and, where Linux shows it, this process's pid namespace: two
    containers that share a host name cannot see each other's processes, so neither may
    judge the other's process ids (`owner_is_dead`)."""
    try:
        namespace = os.readlink("/proc/self/ns/pid")  # 'pid:[4026531836]'
    except OSError:
        return socket.gethostname()
    return f"{socket.gethostname()}/{namespace.removeprefix('pid:[').removesuffix(']')}"


def owner_is_dead(owner: str) -> bool:
    """True only when the owner is certainly gone: a process of this host that no longer
    exists (killed, crashed). Anything else (another host, a live or unknown process, a
    reused process id) counts as alive, and its lease runs its course."""
    host, _, rest = owner.partition(":")
    pid, _, _ = rest.partition(":")
    if host != this_host() or not pid.isascii() or not pid.isdigit():
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
        # Tells the other instances too (proxy/work_signal.py, PostgreSQL); None: nobody else.
        self.announce: Callable[[], None] | None = None
        self.poster = AllocationPoster(ledger, alma, policy, clock=lambda: self.clock(),
                                       stopping=lambda: self._stopping)

    def wake(self) -> None:
        """A payment became due (a notification arrived): look now, not at the next poll."""
        self.woken_elsewhere()
        if self.announce is not None:
            self.announce()

    def woken_elsewhere(self) -> None:
        """Another instance announced due work (or this one did): look now."""
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
                self.ledger.mark_retry(allocation.id, self.poster.retry_at(allocation), outcome)

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
            await self.poster.post(payment, due, lease)
        state = self.ledger.settle_if_done(payment.id)
        if state != PaymentState.PAID:
            log.info("payment settled", extra={"event": state, "payment_id": payment.id})
        if state == PaymentState.POSTED:
            metrics.payment_posted(payment.paid_at, self.clock())

