"""A patron's fees as patronpay sees them: Alma's Fee objects normalised, and which are payable.

Payable (docs/architecture.md#money-and-allocation): ACTIVE, balance above zero, and type and owning
library allowed by configuration. A fee with no owner is the institution's. Credits are never
paid; whether they lower the charge is the credit policy's business (proxy/credits.py). Fees
whose amounts are not exact cents are kept apart: shown, never in a total, never payable
(docs/alma.md#fees-patronpay-cannot-take).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal

from proxy.credits import CreditPolicy, charge_for
from proxy.money import ZERO, AmountError, format_amount, from_alma

log = logging.getLogger("patronpay.fees")

ACTIVE, EXPORTED = "ACTIVE", "EXPORTED"
# Old API answers carry epoch milliseconds; anything outside 1970..2100 is not a date.
_LATEST_EPOCH_MS = 4_102_444_800_000


@dataclass(frozen=True)
class FeeRules:
    """Which fees the library lets patrons pay here. `institution` is the Alma institution
    code: a fee with no owning library belongs to it."""

    fee_types: frozenset[str] = frozenset()
    libraries: frozenset[str] = frozenset()
    institution: str = ""

    @classmethod
    def from_lists(cls, fee_types: Iterable[str], libraries: Iterable[str],
                   institution: str = "") -> FeeRules:
        return cls(frozenset(t.upper() for t in fee_types), frozenset(libraries), institution)

    def allows(self, fee_type: str, library: str) -> bool:
        type_ok = not self.fee_types or fee_type.upper() in self.fee_types
        owner = library or self.institution
        library_ok = not self.libraries or (bool(owner) and owner in self.libraries)
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

    @property
    def note(self) -> str | None:
        """Why the fee cannot be paid here, for the pages: `billed` (sent to the bursar),
        `credit` (money owed to the patron) or `not_payable` (pay at the desk)."""
        if self.payable:
            return None
        if self.status == EXPORTED:
            return "billed"
        if self.balance < ZERO:
            return "credit"
        return "not_payable"

    def to_json(self) -> dict:
        return {
            "id": self.id,
            "type": {"code": self.type_code, "label": self.type_label},
            "library": {"code": self.library_code, "name": self.library_name},
            "title": self.title,
            "created": self.created,
            "status": self.status,
            "original": format_amount(self.original),
            "balance": format_amount(self.balance),
            "payable": self.payable,
            "note": self.note,
        }


@dataclass(frozen=True)
class InexactFee:
    """A fee whose amounts are not exact cents: shown with a note to pay at the desk, left out
    of every total, never paid (rounding someone else's money is not ours to do)."""

    id: str
    type_code: str
    type_label: str
    status: str
    library_code: str
    library_name: str
    title: str
    created: str

    def to_json(self) -> dict:
        return {
            "id": self.id,
            "type": {"code": self.type_code, "label": self.type_label},
            "library": {"code": self.library_code, "name": self.library_name},
            "title": self.title,
            "created": self.created,
            "status": self.status,
            "original": None,
            "balance": None,
            "payable": False,
            "note": "inexact",
        }


@dataclass(frozen=True)
class FeeList:
    """One or more of Alma's fee lists. Totals count ACTIVE fees with exact amounts only:
    billed (EXPORTED) fees are owed to the bursar now, inexact ones are the desk's."""

    currency: str | None
    total: Decimal
    fees: tuple[Fee, ...]
    inexact: tuple[InexactFee, ...] = ()

    @property
    def payable(self) -> tuple[Fee, ...]:
        return tuple(fee for fee in self.fees if fee.payable)

    @property
    def payable_total(self) -> Decimal:
        return sum((fee.balance for fee in self.payable), ZERO)

    @property
    def owed_total(self) -> Decimal:
        """What the patron owes the library: the ACTIVE balances above zero."""
        return sum((fee.balance for fee in self.fees
                    if fee.status == ACTIVE and fee.balance > ZERO), ZERO)

    @property
    def credit_total(self) -> Decimal:
        """What the library owes the patron, as a positive amount: the ACTIVE credits."""
        return -sum((fee.balance for fee in self.fees
                     if fee.status == ACTIVE and fee.balance < ZERO), ZERO)

    def by_id(self) -> dict[str, Fee]:
        return {fee.id: fee for fee in self.fees}

    def with_billed(self, billed: FeeList) -> FeeList:
        """This list and the fees of an EXPORTED list, oldest first; totals unchanged."""
        fees = sorted((*self.fees, *billed.fees), key=oldest_first)
        return FeeList(self.currency or billed.currency, self.total, tuple(fees),
                       (*self.inexact, *billed.inexact))

    def to_json(self, currency: str, policy: CreditPolicy = CreditPolicy.SHOW) -> dict:
        """The fees page's answer: each fee, and the figures a patron needs to read it: what
        is owed, the credit, what paying every payable fee here charges under the policy, and
        how many fees are in no total."""
        listed = sorted((*self.fees, *self.inexact), key=oldest_first)
        payable_total, credit_total = self.payable_total, self.credit_total
        return {
            "currency": currency,
            "total": format_amount(self.total),
            "payable_total": format_amount(payable_total),
            "owed_total": format_amount(self.owed_total),
            "credit_total": format_amount(credit_total),
            "credit_policy": str(policy),
            "charge_total": format_amount(charge_for(policy, credit_total, payable_total)),
            "inexact_count": len(self.inexact),
            "fees": [fee.to_json() for fee in listed],
        }


class CurrencyMismatch(ValueError):
    """Alma reports fees in another currency than the one configured."""


def normalise_fee(raw: dict, rules: FeeRules) -> Fee | None:
    """One Alma Fee object, or None (logged) when its amounts are not exact cents."""
    fee = read_fee(raw, rules)
    return fee if isinstance(fee, Fee) else None


def read_fee(raw: dict, rules: FeeRules) -> Fee | InexactFee:
    """One Alma Fee object: a Fee, or an InexactFee (logged) when its amounts are not exact
    cents."""
    type_code, type_label = _coded(raw.get("type"))
    status, _ = _coded(raw.get("status"))
    library_code, library_name = _coded(raw.get("owner"))
    described = {
        "id": str(raw.get("id", "")),
        "type_code": type_code,
        "type_label": type_label or type_code,
        "status": status,
        "library_code": library_code,
        "library_name": library_name or library_code,
        "title": str(raw.get("title") or ""),
        "created": alma_timestamp(raw.get("creation_time")),
    }
    try:
        balance = from_alma(raw.get("balance"))
        original = from_alma(raw.get("original_amount", raw.get("balance")))
        payments = tuple(_payments(raw.get("transaction") or []))
    except AmountError as exc:
        log.error("fee amount not exact cents", extra={
            "event": "fee_inexact", "fee_id": described["id"], "reason": str(exc)})
        return InexactFee(**described)
    payable = status == ACTIVE and balance > ZERO and rules.allows(type_code, library_code)
    return Fee(**described, original=original, balance=balance, payable=payable,
               payments=payments)


def normalise_fees(raw: dict, rules: FeeRules, currency: str) -> FeeList:
    """Alma's Fees object (from LIST) as a FeeList, oldest first. The total is computed from
    the fees (credits netted, as Alma's `total_sum` does), so a fee left out of it is left out
    of the total too."""
    reported = raw.get("currency")
    if reported and str(reported).upper() != currency:
        raise CurrencyMismatch(f"Alma reports {reported}, patronpay is set to {currency}")
    read = [read_fee(item, rules) for item in raw.get("fee") or [] if isinstance(item, dict)]
    fees = sorted((fee for fee in read if isinstance(fee, Fee)), key=oldest_first)
    inexact = tuple(fee for fee in read if isinstance(fee, InexactFee))
    total = sum((fee.balance for fee in fees if fee.status == ACTIVE), ZERO)
    return FeeList(currency=reported, total=total, fees=tuple(fees), inexact=inexact)


def alma_timestamp(value: object) -> str:
    """`creation_time` as Alma's ISO text. Old API answers send epoch milliseconds (a number,
    sometimes quoted): those become the same ISO form, so they sort and show as dates."""
    if isinstance(value, bool) or value is None:
        return ""
    millis: int | None = None
    if isinstance(value, int):
        millis = value
    elif isinstance(value, Decimal) and value == value.to_integral_value():
        millis = int(value)
    elif isinstance(value, str) and value.strip().isdigit() and len(value.strip()) > 8:
        millis = int(value.strip())
    if millis is None:
        return str(value)
    if not 0 <= millis < _LATEST_EPOCH_MS:
        return ""
    moment = datetime.fromtimestamp(millis // 1000, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{millis % 1000:03d}Z"


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
