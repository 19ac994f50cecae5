"""The ledger: payments, their allocations to Alma fees, CashNet notifications and an
append-only event trail (docs/architecture.md#the-ledger). The states are named in proxy/states.py.

`Ledger` is the one object the service, the posting worker and the staff tools hold. It keeps
no logic of its own: each method hands over to the module doing that job, so a change to,
say, the notification state machine is read and reviewed in one file.

    records      the snapshots handed out (PaymentRecord, ...) and their rows
    store        the database, the clock and the one write transaction
    reads        payments, event trails, notifications
    changes      a marker that moves when any payment of a patron changes state
    entries      a new payment; audit notes
    claims       what a returning browser claims (one note per payment)
    holds        one payment at a time for the same fees; a patron cancelling a payment
    notices      CashNet notifications (the state machine)
    unmatched    successes that named no payment, and staff attaching them
    expiry       pending payments nobody confirmed
    queue        which payment a posting worker takes next, and its lease
    allocations  what the worker records per allocation; settling a payment
    staff        retry, resolve, and recording a payment CashNet never confirmed
    external     money taken elsewhere (the bursar's payments file), entered once
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from decimal import Decimal
from pathlib import Path

from proxy.database import ledger_exists
from proxy.db import Database
from proxy.ledger.allocations import Allocations
from proxy.ledger.changes import PatronChanges
from proxy.ledger.claims import ReturnClaims
from proxy.ledger.entries import Entries
from proxy.ledger.expiry import Expiry
from proxy.ledger.external import ExternalPayments, ExternalShare
from proxy.ledger.holds import HoldRules, InProgress, PaymentInProgress
from proxy.ledger.holds import Holds as _Holds
from proxy.ledger.notices import Notices
from proxy.ledger.queue import Queue
from proxy.ledger.reads import Reads
from proxy.ledger.receipt_requests import ReceiptRequests
from proxy.ledger.records import AllocationRecord, LineRecord, NoticeOutcome, PaymentRecord
from proxy.ledger.staff import StaffActions
from proxy.ledger.store import Store
from proxy.ledger.unmatched import Unmatched, UnmatchedSuccess
from proxy.notification import Message
from proxy.states import OPEN_ALLOCATIONS, STATES, UNSETTLED

__all__ = ["OPEN_ALLOCATIONS", "STATES", "UNSETTLED", "AllocationRecord", "HoldRules",
           "InProgress", "Ledger", "LineRecord", "NoticeOutcome", "PaymentInProgress",
           "PaymentRecord", "UnmatchedSuccess"]


class Ledger:
    def __init__(self, db: Database, clock: Callable[[], float] = time.time,
                 institution: str = "") -> None:
        """`institution`: the consortium institution's code that every payment written here
        records (PATRONPAY_INSTITUTION; '' outside a consortium)."""
        self._store = Store(db, clock, institution)
        self._reads = Reads(self._store)
        self._changes = PatronChanges(self._store)
        self._entries = Entries(self._store, self._reads)
        self._claims = ReturnClaims(self._store)
        self._receipt_requests = ReceiptRequests(self._store)
        self._notices = Notices(self._store)
        self._holds = _Holds(self._store, self._reads)
        self._unmatched = Unmatched(self._store, self._reads, self._notices)
        self._expiry = Expiry(self._store)
        self._queue = Queue(self._store)
        self._allocations = Allocations(self._store)
        self._staff = StaffActions(self._store, self._reads)
        self._external = ExternalPayments(self._store, self._reads)

    @classmethod
    def open_existing(cls, path: Path | str) -> Ledger:
        """The ledger a running service writes. Raises FileNotFoundError rather than create
        an empty ledger at a mistyped path (a PostgreSQL URL is checked when connecting)."""
        if not ledger_exists(path):
            raise FileNotFoundError(path)
        return cls(Database(path))

    # The database and clock live in the shared store, so that every job sees a clock
    # swapped on a live ledger (tests move time that way).

    @property
    def db(self) -> Database:
        return self._store.db

    @property
    def clock(self) -> Callable[[], float]:
        return self._store.clock

    @clock.setter
    def clock(self, clock: Callable[[], float]) -> None:
        self._store.clock = clock

    # --- creating and reading payments ---

    def create_payment(
        self,
        *,
        payment_id: str,
        patron_id: str,
        patron_name: str,
        channel: str,
        session_id: str,
        amount: Decimal,
        currency: str,
        custcode: str,
        lines: Iterable[LineRecord],
        allocations: Iterable[tuple[str, str, str, Decimal]],
        checkout: dict,
    ) -> PaymentRecord:
        return self._entries.create_payment(
            payment_id=payment_id, patron_id=patron_id, patron_name=patron_name,
            channel=channel, session_id=session_id, amount=amount, currency=currency,
            custcode=custcode, lines=lines, allocations=allocations, checkout=checkout)

    def start_payment(
        self,
        *,
        rules: HoldRules,
        payment_id: str,
        patron_id: str,
        patron_name: str,
        channel: str,
        session_id: str,
        amount: Decimal,
        currency: str,
        custcode: str,
        lines: Iterable[LineRecord],
        allocations: Iterable[tuple[str, str, str, Decimal]],
        checkout: dict,
    ) -> PaymentRecord:
        """`create_payment`, unless it overlaps a payment in progress (PaymentInProgress)."""
        return self._holds.start(
            rules, payment_id=payment_id, patron_id=patron_id, patron_name=patron_name,
            channel=channel, session_id=session_id, amount=amount, currency=currency,
            custcode=custcode, lines=list(lines), allocations=list(allocations),
            checkout=checkout)

    def in_progress(self, patron_id: str, rules: HoldRules) -> list[InProgress]:
        return self._holds.in_progress(patron_id, rules)

    def cancel_payment(self, payment_id: str, patron_id: str, source: str) -> PaymentRecord:
        return self._holds.cancel(payment_id, patron_id, source)

    def add_event(self, payment_id: str | None, kind: str, source: str, detail: dict) -> None:
        self._entries.add_event(payment_id, kind, source, detail)

    def record_return_claim(self, payment_id: str, detail: dict) -> bool:
        return self._claims.record(payment_id, detail)

    def request_receipt_email(self, payment_id: str, source: str, detail: dict) -> bool:
        return self._receipt_requests.request(payment_id, source, detail)

    def receipt_email_requested(self, payment_id: str) -> bool:
        return self._receipt_requests.requested(payment_id)

    def payment(self, payment_id: str) -> PaymentRecord | None:
        return self._reads.payment(payment_id)

    def find_payments(
        self,
        *,
        state: str | None = None,
        patron_id: str | None = None,
        tx: str | None = None,
        since: float | None = None,
        until: float | None = None,
        needs_review: bool = False,
        by: str = "created_at",
        limit: int | None = 1000,
    ) -> list[PaymentRecord]:
        return self._reads.find_payments(
            state=state, patron_id=patron_id, tx=tx, since=since, until=until,
            needs_review=needs_review, by=by, limit=limit)

    def recent_payments(self, patron_id: str, *, since: float, states: Iterable[str],
                        limit: int) -> list[PaymentRecord]:
        return self._reads.recent_payments(patron_id, since=since, states=states, limit=limit)

    def events(self, payment_id: str) -> list[dict]:
        return self._reads.events(payment_id)

    def notifications(self, payment_id: str | None = None) -> list[dict]:
        return self._reads.notifications(payment_id)

    def patron_marker(self, patron_id: str) -> tuple[int, float, int]:
        """Changes whenever any payment of the patron changes state (proxy/fee_cache.py)."""
        return self._changes.marker(patron_id)

    # --- CashNet notifications and timers ---

    def record_notification(
        self, message: Message, *, peer: str, ref_type: str, txn_ref_name: str = ""
    ) -> NoticeOutcome:
        return self._notices.record_notification(message, peer=peer, ref_type=ref_type,
                                                 txn_ref_name=txn_ref_name)

    def unmatched_successes(self) -> list[UnmatchedSuccess]:
        return self._unmatched.waiting()

    def attach_notification(self, notice_id: int, payment_id: str, actor: str) -> PaymentRecord:
        return self._unmatched.attach(notice_id, payment_id, actor)

    def expire_pending(self, older_than_seconds: float) -> list[str]:
        return self._expiry.expire_pending(older_than_seconds)

    # --- the posting queue (used by the posting worker) ---

    def claim_due_payment(self, owner: str, lease_seconds: float) -> str | None:
        return self._queue.claim_due_payment(owner, lease_seconds)

    def break_leases(self, owner_is_dead: Callable[[str], bool]) -> list[str]:
        return self._queue.break_leases(owner_is_dead)

    def release(self, payment_id: str, owner: str) -> None:
        self._queue.release(payment_id, owner)

    def posting_started_at(self, payment_id: str) -> float | None:
        return self._queue.posting_started_at(payment_id)

    def next_due_at(self) -> float | None:
        return self._queue.next_due_at()

    def paid_with_nothing_left(self) -> list[str]:
        return self._queue.paid_with_nothing_left()

    # --- allocations as they are posted ---

    def mark_sending(self, allocation_id: int, owner: str, lease_seconds: float,
                     recheck_seconds: float) -> bool:
        return self._allocations.mark_sending(allocation_id, owner, lease_seconds,
                                              recheck_seconds)

    def mark_posted(self, allocation_id: int, outcome: str) -> None:
        self._allocations.mark_posted(allocation_id, outcome)

    def mark_retry(self, allocation_id: int, next_attempt_at: float, outcome: str) -> None:
        self._allocations.mark_retry(allocation_id, next_attempt_at, outcome)

    def mark_not_sent(self, allocation_id: int, next_attempt_at: float, outcome: str) -> None:
        self._allocations.mark_not_sent(allocation_id, next_attempt_at, outcome)

    def mark_failed(self, allocation_id: int, outcome: str) -> None:
        self._allocations.mark_failed(allocation_id, outcome)

    def reduce_allocation(self, allocation_id: int, applicable: Decimal, reason: str,
                          moves: list[tuple[str, str, str, Decimal]], *, lease: str) -> bool:
        return self._allocations.reduce_allocation(allocation_id, applicable, reason, moves,
                                                   lease=lease)

    def settle_if_done(self, payment_id: str) -> str:
        return self._allocations.settle_if_done(payment_id)

    # --- staff actions ---

    def retry(self, payment_id: str, actor: str) -> PaymentRecord:
        return self._staff.retry(payment_id, actor)

    def resolve(self, payment_id: str, note: str, actor: str) -> PaymentRecord:
        return self._staff.resolve(payment_id, note, actor)

    def record_paid(self, payment_id: str, *, cashnet_tx: str, amount: Decimal, note: str,
                    actor: str, amount_differs: bool = False) -> PaymentRecord:
        return self._staff.record_paid(payment_id, cashnet_tx=cashnet_tx, amount=amount,
                                       note=note, actor=actor, amount_differs=amount_differs)

    # --- money taken elsewhere ---

    def record_external_payment(self, *, channel: str, transaction_id: str, patron_id: str,
                                patron_name: str, custcode: str, amount: Decimal,
                                currency: str, item_code: str, description: str,
                                shares: Iterable[ExternalShare], unapplied_reason: str,
                                source: dict) -> tuple[PaymentRecord, bool]:
        return self._external.record(
            channel=channel, transaction_id=transaction_id, patron_id=patron_id,
            patron_name=patron_name, custcode=custcode, amount=amount, currency=currency,
            item_code=item_code, description=description, shares=list(shares),
            unapplied_reason=unapplied_reason, source=source)
