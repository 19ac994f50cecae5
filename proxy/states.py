"""The names of payment and allocation states, of ledger events and of notification effects.

They are `StrEnum`s so that each member *is* its string: what SQLite stores, what JSON carries
and what staff type stays exactly the text below, and a member compares equal to that text.

Payment states:

    pending --success--> paid --all allocations applied--> posted
    pending --failure--> declined | cancelled (902)
    pending --no notice in N hours--> expired
    paid --cannot apply automatically--> attention --staff--> paid (retry) | resolved

A verified success always wins over declined, cancelled and expired: the money was taken.

Allocation states: planned (payment not paid yet) -> queued -> sending (a payment call may be
in Alma) -> posted | failed | moved (its money went to other fees).
"""

from __future__ import annotations

from enum import StrEnum


class PaymentState(StrEnum):
    # Declared in the order staff see them listed (`--state` help and its error message).
    PENDING = "pending"
    PAID = "paid"
    POSTED = "posted"
    DECLINED = "declined"
    CANCELLED = "cancelled"
    EXPIRED = "expired"
    ATTENTION = "attention"
    RESOLVED = "resolved"


class AllocationState(StrEnum):
    PLANNED = "planned"
    QUEUED = "queued"
    SENDING = "sending"
    POSTED = "posted"
    FAILED = "failed"
    MOVED = "moved"


class EventKind(StrEnum):
    """Kinds in a payment's event trail. A change of payment state is recorded under the new
    state's own name (a `PaymentState`), so `paid` is both."""

    CREATED = "created"
    PAID = "paid"
    NOTIFICATION = "notification"
    NEEDS_REVIEW = "needs_review"
    FAILURE_IGNORED = "failure_ignored"
    REVIEW_CLEARED = "review_cleared"
    RETURN_CLAIMS_SUCCESS = "return_claims_success"
    LEASE_BROKEN = "lease_broken"
    ALLOCATION_POSTED = "allocation_posted"
    ALLOCATION_RETRY = "allocation_retry"
    ALLOCATION_FAILED = "allocation_failed"
    ALLOCATION_REDUCED = "allocation_reduced"
    # Not about a payment (no payment id): a kiosk stopped looking up cards after too many
    # that Alma did not know (docs/security.md#kiosk-card-lookups); for staff alerts.
    KIOSK_COOLDOWN = "kiosk_cooldown"
    # The patron's e-mailed receipt went to the mail server, or why none was sent.
    RECEIPT_SENT = "receipt_sent"
    RECEIPT_NOT_SENT = "receipt_not_sent"
    # The patron asked for the e-mailed receipt on a kiosk's receipt screen (once): the
    # receipt is mailed when the payment is posted (docs/kiosk.md#e-mailed-receipt).
    RECEIPT_REQUESTED = "receipt_requested"
    # A success that named no payment may be this one's / staff attached it to this one.
    UNMATCHED_CANDIDATE = "unmatched_candidate"
    ATTACHED = "attached"


class NoticeKind(StrEnum):
    """What a stored CashNet notification was (the `kind` of a notifications row)."""

    SUCCESS = "success"
    FAILURE = "failure"
    DUPLICATE = "duplicate"
    UNMATCHED = "unmatched"


class NoticeEffect(StrEnum):
    """What recording a CashNet notification did to its payment."""

    PAID = "paid"
    ATTENTION = "attention"
    DECLINED = "declined"
    CANCELLED = "cancelled"
    RECORDED = "recorded"
    DUPLICATE = "duplicate"
    DOUBLE_CHARGE = "double_charge"
    UNMATCHED = "unmatched"


STATES: tuple[PaymentState, ...] = tuple(PaymentState)
# No money taken (yet): a verified success may still arrive and settle these.
UNSETTLED = frozenset({PaymentState.PENDING, PaymentState.DECLINED, PaymentState.CANCELLED,
                       PaymentState.EXPIRED})
# Failure notices may still move these; later states are about money already taken.
FAILURE_APPLIES = frozenset({PaymentState.PENDING, PaymentState.DECLINED,
                             PaymentState.CANCELLED})
# The patron's receipt keeps refreshing while the payment is in one of these.
IN_PROGRESS = frozenset({PaymentState.PENDING, PaymentState.PAID})
# Allocations the posting worker still has to finish.
OPEN_ALLOCATIONS = (AllocationState.QUEUED, AllocationState.SENDING)
# Allocations staff's retry queues again (with their unapplied money).
RETRYABLE_ALLOCATIONS = (AllocationState.FAILED, AllocationState.PLANNED)
