"""What a patron asked to pay, checked against Alma's fees and spread over them
(docs/architecture.md#money-and-allocation).

The patron names fees (default: every payable fee) and may lower the amount. Under the `net`
credit policy the most that can be charged is the chosen total less the credit
(docs/alma.md#credits). The amount is spread oldest fee first, each fee taking
min(remaining, balance); nothing is ever allocated to a credit.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from proxy.fees import Fee, FeeList, oldest_first
from proxy.money import ZERO, AmountError, format_amount, parse_typed


class PaymentRequestError(ValueError):
    """The patron's choice cannot be paid; `code` and `field` let the page point at the cause."""

    def __init__(self, code: str, message: str, field: str = "") -> None:
        super().__init__(message)
        self.code = code
        self.field = field


@dataclass(frozen=True)
class Allocation:
    fee_id: str
    fee_type: str
    amount: Decimal

    def to_json(self) -> dict:
        return {"fee_id": self.fee_id, "fee_type": self.fee_type,
                "amount": format_amount(self.amount)}


def choose_fees(fees: FeeList, fee_ids: object) -> list[Fee]:
    """The payable fees the patron picked, oldest first; None means all of them."""
    payable = fees.payable
    if not payable:
        raise PaymentRequestError("nothing_to_pay", "There are no fees to pay online.")
    if fee_ids is None:
        return sorted(payable, key=oldest_first)
    if not isinstance(fee_ids, list) or not all(isinstance(i, str) for i in fee_ids):
        raise PaymentRequestError("invalid_fee_ids", "fee_ids must be a list of fee ids.",
                                  "fee_ids")
    if not fee_ids:
        raise PaymentRequestError("no_fees_chosen", "Choose at least one fee to pay.", "fee_ids")
    if len(set(fee_ids)) != len(fee_ids):
        raise PaymentRequestError("duplicate_fee_ids", "Each fee can be chosen only once.",
                                  "fee_ids")
    by_id = {fee.id: fee for fee in payable}
    unknown = [fee_id for fee_id in fee_ids if fee_id not in by_id]
    if unknown:
        raise PaymentRequestError(
            "unknown_fee", "One of the chosen fees is not open for online payment any more. "
            "Reload the page to see your current fees.", "fee_ids")
    return sorted((by_id[fee_id] for fee_id in fee_ids), key=oldest_first)


def choose_amount(chosen: Sequence[Fee], amount: object, min_payment: Decimal,
                  credit: Decimal = ZERO) -> Decimal:
    """The amount to pay: the chosen total less `credit` (what the credit policy takes off)
    unless the patron lowered it, within the limits."""
    total = sum((fee.balance for fee in chosen), ZERO) - credit
    if total <= ZERO:
        raise PaymentRequestError(
            "credit_covers", "Your credit covers the chosen fees. Ask at the library desk to "
            "have it applied.", "fee_ids")
    if amount is None or amount == "":
        return total
    try:
        value = parse_typed(amount)
    except AmountError:
        raise PaymentRequestError(
            "invalid_amount", "Enter the amount in dollars and cents, like 12.50.",
            "amount") from None
    smallest = min(min_payment, total)
    if value < smallest or value <= ZERO:
        raise PaymentRequestError(
            "amount_too_small", f"The smallest payment is {format_amount(smallest)}.", "amount")
    if value > total:
        raise PaymentRequestError(
            "amount_too_large",
            f"The most you can pay for the chosen fees is {format_amount(total)}.", "amount")
    return value


def allocate(chosen: Sequence[Fee], amount: Decimal) -> list[Allocation]:
    """Spread `amount` over the fees, oldest first; fees left with nothing are omitted."""
    remaining = amount
    allocations = []
    for fee in sorted(chosen, key=oldest_first):
        if remaining <= ZERO:
            break
        share = min(remaining, fee.balance)
        allocations.append(Allocation(fee.id, fee.type_code, share))
        remaining -= share
    if remaining > ZERO:
        raise ValueError("amount exceeds the balances")  # choose_amount rules this out
    return allocations
