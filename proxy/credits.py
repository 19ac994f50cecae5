"""What a credit on the patron's account does to what paying here charges
(docs/alma.md#credits).

A credit is an ACTIVE fee with a negative balance (usually of type CREDIT): money the library
owes the patron. patronpay never posts anything against it; it only decides how much to charge.

- `show` (the default): the credit is shown and left for staff to apply in Alma; paying here
  charges the chosen fees' balances.
- `net`: the credit is taken off the charge. For chosen fees whose balances add up to T and
  credits adding up to C, paying here charges at most T - C (never below zero); the patron may
  still pay less. The amount charged is spread over the chosen fees oldest first and posted to
  them as usual, so the newest fees keep open balances that add up to at least C: exactly the
  part the credit covers. The credit stays in Alma, unspent, for staff to set against those
  balances; Alma's own total (`total_sum`, credits netted) reads zero after a full payment.
"""

from __future__ import annotations

from decimal import Decimal
from enum import StrEnum

from proxy.money import ZERO


class CreditPolicy(StrEnum):
    SHOW = "show"
    NET = "net"


def parse_credit_policy(value: object) -> CreditPolicy:
    """A setting's text as a policy; anything else is a ValueError naming the choices."""
    text = str(value).strip().lower()
    try:
        return CreditPolicy(text)
    except ValueError:
        raise ValueError("must be show or net") from None


def credit_taken_off(policy: CreditPolicy, credit_total: Decimal,
                     chosen_total: Decimal) -> Decimal:
    """How much of the credit the charge for `chosen_total` leaves out: none under `show`, and
    under `net` the credit up to the chosen total (a credit larger than the fees leaves a
    charge of zero, never a refund)."""
    if policy is not CreditPolicy.NET or credit_total <= ZERO:
        return ZERO
    return min(credit_total, max(chosen_total, ZERO))


def charge_for(policy: CreditPolicy, credit_total: Decimal, chosen_total: Decimal) -> Decimal:
    """The most that paying `chosen_total` of fees here charges."""
    return chosen_total - credit_taken_off(policy, credit_total, chosen_total)
