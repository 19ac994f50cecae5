"""What a patron is shown of their own payments: the ones in progress, which hold their fees
(docs/architecture.md#payments-in-progress), and those of the last twelve months.

A held fee is shown with the note `in_progress` and is not payable, so every payable total on
the page leaves it out. The ledger decides whether a new payment may start (proxy/ledger/
holds.py); this module only says it to the patron.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from proxy.config import Settings
from proxy.fees import FeeList
from proxy.ledger import HoldRules, InProgress, PaymentInProgress, PaymentRecord
from proxy.money import format_amount
from proxy.patron_sessions import iso_time
from proxy.states import PaymentState

HISTORY_DAYS = 365
HISTORY_LIMIT = 50
# What a patron's history lists: payments CashNet took or declined, and those still at CashNet.
# Expired and cancelled ones took no money and no decision: listing them only confuses.
HISTORY_STATES = (PaymentState.PENDING, PaymentState.PAID, PaymentState.POSTED,
                  PaymentState.DECLINED, PaymentState.ATTENTION, PaymentState.RESOLVED)
IN_PROGRESS_NOTE = "in_progress"

CONFLICT_TEXT = {
    "overlap": ("payment_in_progress", "A payment for some of these fees is already in "
                "progress. Go back to CashNet to finish it, or cancel it first."),
    "too_many": ("too_many_open_payments", "You have too many payments waiting at CashNet. "
                 "Finish or cancel one of them first."),
}


def hold_rules(settings: Settings) -> HoldRules:
    return HoldRules(pending_hold_seconds=float(settings.pending_hold_minutes) * 60,
                     max_open=settings.max_open_payments)


def where(channel: str) -> dict:
    """`web`, or `kiosk` and which one."""
    kind, _, kiosk_id = channel.partition(":")
    if kind == "kiosk":
        return {"channel": "kiosk", "kiosk": kiosk_id}
    return {"channel": "web", "kiosk": None}


def without_held(fees: FeeList, held: Sequence[InProgress]) -> tuple[FeeList, set[str]]:
    """The fees with every payable fee that a payment in progress holds made unpayable, and
    the ids of those fees."""
    holding = {fee_id for item in held for fee_id in item.fee_ids}
    taken = {fee.id for fee in fees.fees if fee.payable and fee.id in holding}
    if not taken:  # the usual case: nothing to change
        return fees, taken
    shown = tuple(dataclasses.replace(fee, payable=False) if fee.id in taken else fee
                  for fee in fees.fees)
    return dataclasses.replace(fees, fees=shown), taken


def mark_held(body: dict, held: Sequence[InProgress], taken: set[str], channel: str) -> dict:
    """The fees page's answer with each held fee naming its payment, and the payments in
    progress (what the page offers for each)."""
    holder = {fee_id: item.payment.id for item in held for fee_id in item.fee_ids}
    for fee in body.get("fees", []):
        if fee.get("id") in taken:
            fee["note"] = IN_PROGRESS_NOTE
            fee["in_progress"] = holder[fee["id"]]
    body["in_progress"] = [summary(item, channel) for item in held]
    return body


def summary(item: InProgress, channel: str) -> dict:
    """One payment in progress as the patron sees it: amount, when, where, and what they may
    do (go back to CashNet only from where it started: CashNet's sign-out returns there)."""
    payment = item.payment
    return {
        "id": payment.id,
        "state": payment.state,
        "amount": format_amount(payment.amount),
        "currency": payment.currency,
        "created": iso_time(payment.created_at),
        **where(payment.channel),
        "fee_ids": sorted(item.fee_ids),
        "can_resume": item.open and payment.channel == channel,
        "can_cancel": item.open,
    }


def conflict(exc: PaymentInProgress, channel: str) -> tuple[str, str, dict]:
    """The 409's code, message and body extra for a refused payment."""
    code, message = CONFLICT_TEXT[exc.reason]
    return code, message, {"in_progress": [summary(item, channel) for item in exc.payments]}


def history_entry(payment: PaymentRecord, receipt_token: str) -> dict:
    return {
        "id": payment.id,
        "state": payment.state,
        "amount": format_amount(payment.amount),
        "currency": payment.currency,
        "created": iso_time(payment.created_at),
        **where(payment.channel),
        "receipt_token": receipt_token,
    }
