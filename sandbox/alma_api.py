"""What each emulated Alma call does to the state (docs/sandbox.md#patron-look-up-and-passwords,
docs/sandbox.md#fees-and-payments), free of HTTP.

Each function checks in the spec's order (user → fee → op → method → api_restricted → amount),
raises `AlmaError` at the first failure and otherwise returns the objects to render.
"""

from __future__ import annotations

import hmac
import re
from collections.abc import Mapping
from decimal import Decimal

from sandbox.alma_render import message_for
from sandbox.alma_state import FEE_STATUSES, AlmaState, Fee, Transaction, User

PAY_METHODS = ("CREDIT_CARD", "ONLINE", "CASH")
AMOUNT_RE = re.compile(r"^[0-9]+(\.[0-9]{1,2})?$")


class AlmaError(Exception):
    """A business error: answered as HTTP 400 with Alma's JSON error body."""

    def __init__(self, code: str, message: str | None = None, **details: str) -> None:
        self.code = code
        self.message = message or message_for(code, **details)
        super().__init__(f"{code}: {self.message}")


def _invalid(name: str) -> AlmaError:
    return AlmaError("401666", f"Request parameter '{name}' is not valid.")


# -- users -------------------------------------------------------------------------------------


def get_user(state: AlmaState, user_id: str, id_type: str | None) -> User:
    """USER: 401861 on a miss, 401890 when an explicit identifier type was given."""
    user = state.find_user(user_id, id_type)
    if user is not None:
        return user
    if id_type not in (None, "", "all_unique"):
        raise AlmaError("401890", user_id=user_id, id_type=str(id_type))
    raise AlmaError("401861", user_id=user_id)


def fees_user(state: AlmaState, user_id: str, id_type: str | None) -> User:
    """Fees calls answer 401861 for an unknown user whatever the identifier type."""
    user = state.find_user(user_id, id_type)
    if user is None:
        raise AlmaError("401861", user_id=user_id)
    return user


def authenticate(
    state: AlmaState, user_id: str, id_type: str | None, op: str | None, password: str | None
) -> None:
    """AUTH: only INTERNAL users with a seeded password; success means 204."""
    user = state.find_user(user_id, id_type)
    if user is None:
        raise AlmaError("401890", user_id=user_id, id_type=id_type or "all_unique")
    if (op or "auth") != "auth":  # `refresh` is not emulated
        raise _invalid("op")
    if user.account_type != "INTERNAL" or user.password is None or password is None:
        raise AlmaError("401866")
    if not hmac.compare_digest(user.password.encode(), password.encode()):
        raise AlmaError("401866")


# -- fees --------------------------------------------------------------------------------------


def list_fees(
    state: AlmaState, user_id: str, id_type: str | None, status: str | None
) -> tuple[User, list[Fee]]:
    user = fees_user(state, user_id, id_type)
    status = status or "ACTIVE"
    if status not in FEE_STATUSES:
        raise _invalid("status")
    return user, [fee for fee in user.fees if fee.status == status]


def get_fee(state: AlmaState, user_id: str, id_type: str | None, fee_id: str) -> tuple[User, Fee]:
    """FEE: any status; a fee of another user is 'not found' for this one."""
    user = fees_user(state, user_id, id_type)
    for fee in user.fees:
        if fee.id == fee_id:
            return user, fee
    raise AlmaError("401665", f"Fine/fee {fee_id} was not found.")


def _check_op_and_method(params: Mapping[str, str]) -> str:
    if params.get("op") != "pay":  # waive/dispute/restore are not emulated
        raise _invalid("op")
    method = params.get("method")
    if method not in PAY_METHODS:
        raise _invalid("method")
    return method


def _parse_amount(text: str | None) -> Decimal:
    if text is None or not AMOUNT_RE.match(text):
        raise _invalid("amount")
    amount = Decimal(text).quantize(Decimal("0.01"))
    if amount <= 0:
        raise _invalid("amount")
    return amount


def _apply_payment(fee: Fee, amount: Decimal, method: str, ext_id: str | None, now: str) -> None:
    fee.balance -= amount
    fee.transactions.append(Transaction(
        type="PAYMENT", amount=amount, transaction_time=now, payment_method=method,
        external_transaction_id=ext_id,
    ))
    fee.status_time = now
    if fee.balance == 0:
        fee.status = "CLOSED"


def pay_fee(
    state: AlmaState, user_id: str, fee_id: str, params: Mapping[str, str], now: str
) -> tuple[User, Fee]:
    """PAY one fee; no de-duplication on external_transaction_id
    (docs/alma.md#posting-exactly-once)."""
    user, fee = get_fee(state, user_id, params.get("user_id_type"), fee_id)
    method = _check_op_and_method(params)
    if fee.api_restricted:
        raise AlmaError("60340")
    amount = _parse_amount(params.get("amount"))
    if fee.status != "ACTIVE" or amount > fee.balance:
        raise _invalid("amount")
    _apply_payment(fee, amount, method, params.get("external_transaction_id"), now)
    return user, fee


def pay_all(
    state: AlmaState, user_id: str, params: Mapping[str, str], now: str
) -> tuple[User, list[Fee]]:
    """PAYALL: spread the amount oldest fee first (ties by numeric id); credits untouched.

    Returns the fees still ACTIVE afterwards, which is what Alma answers with.
    """
    user = fees_user(state, user_id, params.get("user_id_type"))
    method = _check_op_and_method(params)
    eligible = sorted(
        (f for f in user.fees if f.status == "ACTIVE" and f.balance > 0 and not f.api_restricted),
        key=Fee.sort_key,
    )
    if not eligible:
        raise _invalid("amount")
    payable = sum((f.balance for f in eligible), Decimal("0.00"))
    text = params.get("amount")
    amount = payable if text == "ALL" else _parse_amount(text)
    if amount > payable:
        raise _invalid("amount")
    remaining = amount
    ext_id = params.get("external_transaction_id")
    for fee in eligible:
        if remaining == 0:
            break
        share = min(remaining, fee.balance)
        _apply_payment(fee, share, method, ext_id, now)
        remaining -= share
    return user, [f for f in user.fees if f.status == "ACTIVE"]
