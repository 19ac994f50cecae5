"""A patron's fees as patronpay sees them: Alma's Fee objects normalised, and which are payable.

Payable (docs/architecture.md#money-and-allocation): ACTIVE, balance above zero, and type and owning
library allowed by configuration. Credits are shown, never netted, never paid.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal

from proxy.money import ZERO, AmountError, format_amount, from_alma

log = logging.getLogger("patronpay.fees")


@dataclass(frozen=True)
class FeeRules:
    """Which fees the library lets patrons pay here."""

    fee_types: frozenset[str] = frozenset()
    libraries: frozenset[str] = frozenset()

    @classmethod
    def from_lists(cls, fee_types: Iterable[str], libraries: Iterable[str]) -> FeeRules:
        return cls(frozenset(t.upper() for t in fee_types), frozenset(libraries))

    def allows(self, fee_type: str, library: str) -> bool:
        type_ok = not self.fee_types or fee_type.upper() in self.fee_types
        library_ok = not self.libraries or library in self.libraries
        return type_ok and library_ok


@dataclass(frozen=True)
class Payment:
    """One PAYMENT transaction already on a fee."""

    amount: Decimal
    external_transaction_id: str


@dataclass(frozen=True)
class Fee:
    id: str
    type_code: str
    type_label: str
    status: str
    library_code: str
    library_name: str
    title: str
    created: str
    original: Decimal
    balance: Decimal
    payable: bool
    payments: tuple[Payment, ...] = field(default=())

    def paid_with(self, external_transaction_id: str) -> Decimal:
        """The sum this fee received from payments carrying that external transaction id."""
        return sum(
            (p.amount for p in self.payments
             if p.external_transaction_id == external_transaction_id), ZERO)

    def to_json(self) -> dict:
        return {
            "id": self.id,
            "type": {"code": self.type_code, "label": self.type_label},
            "library": {"code": self.library_code, "name": self.library_name},
            "title": self.title,
            "created": self.created,
            "original": format_amount(self.original),
            "balance": format_amount(self.balance),
            "payable": self.payable,
        }


@dataclass(frozen=True)
class FeeList:
    currency: str | None
    total: Decimal
    fees: tuple[Fee, ...]

    @property
    def payable(self) -> tuple[Fee, ...]:
        return tuple(fee for fee in self.fees if fee.payable)

    @property
    def payable_total(self) -> Decimal:
        return sum((fee.balance for fee in self.payable), ZERO)

    def by_id(self) -> dict[str, Fee]:
        return {fee.id: fee for fee in self.fees}

    def to_json(self, currency: str) -> dict:
        return {
            "currency": currency,
            "total": format_amount(self.total),
            "payable_total": format_amount(self.payable_total),
            "fees": [fee.to_json() for fee in self.fees],
        }


class CurrencyMismatch(ValueError):
    """Alma reports fees in another currency than the one configured."""


def normalise_fee(raw: dict, rules: FeeRules) -> Fee | None:
    """One Alma Fee object, or None (logged) when its amounts are not exact cents."""
    try:
        balance = from_alma(raw.get("balance"))
        original = from_alma(raw.get("original_amount", raw.get("balance")))
        payments = tuple(_payments(raw.get("transaction") or []))
    except AmountError as exc:
        log.error("fee skipped", extra={"event": "fee_skipped", "fee_id": raw.get("id"),
                                        "reason": str(exc)})
        return None
    type_code, type_label = _coded(raw.get("type"))
    status, _ = _coded(raw.get("status"))
    library_code, library_name = _coded(raw.get("owner"))
    payable = status == "ACTIVE" and balance > ZERO and rules.allows(type_code, library_code)
    return Fee(
        id=str(raw.get("id", "")),
        type_code=type_code,
        type_label=type_label or type_code,
        status=status,
        library_code=library_code,
        library_name=library_name or library_code,
        title=str(raw.get("title") or ""),
        created=str(raw.get("creation_time") or ""),
        original=original,
        balance=balance,
        payable=payable,
        payments=payments,
    )


def normalise_fees(raw: dict, rules: FeeRules, currency: str) -> FeeList:
    """Alma's Fees object (from LIST) as a FeeList, oldest first."""
    reported = raw.get("currency")
    if reported and str(reported).upper() != currency:
        raise CurrencyMismatch(f"Alma reports {reported}, patronpay is set to {currency}")
    fees = [fee for fee in (normalise_fee(item, rules) for item in raw.get("fee") or []) if fee]
    fees.sort(key=oldest_first)
    try:
        total = from_alma(raw.get("total_sum", 0))
    except AmountError:
        total = sum((fee.balance for fee in fees), ZERO)
    return FeeList(currency=reported, total=total, fees=tuple(fees))


def oldest_first(fee: Fee) -> tuple[str, int, str]:
    """Creation time, then id (numerically, as Alma's ids are digit strings)."""
    numeric = int(fee.id) if fee.id.isdigit() else 0
    return (fee.created, numeric, fee.id)


def _coded(value: object) -> tuple[str, str]:
    if isinstance(value, dict):
        return str(value.get("value") or ""), str(value.get("desc") or "")
    return (str(value), "") if value else ("", "")


def _payments(transactions: list) -> Iterable[Payment]:
    for item in transactions:
        if not isinstance(item, dict) or _coded(item.get("type"))[0] != "PAYMENT":
            continue
        yield Payment(
            amount=from_alma(item.get("amount", 0)),
            external_transaction_id=str(item.get("external_transaction_id") or ""),
        )
