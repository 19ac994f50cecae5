"""In-memory model of the emulated Alma institution: users, their identifiers and their fees.

Built from the seed document (docs/sandbox.md#seed-and-rendering; `sandbox/seed/alma.json`). Amounts
are Decimal with two places; timestamps are kept as Alma writes them (`YYYY-MM-DDThh:mm:ss.sssZ`,
which also sorts chronologically as text). Nothing here is thread-safe: `AlmaSandbox` holds the
lock.
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

CENT = Decimal("0.01")
TIMESTAMP_RE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")
FEE_STATUSES = ("ACTIVE", "INDISPUTE", "EXPORTED", "CLOSED")


class SeedError(ValueError):
    """The seed (or a user/fee added through the control API) is not well formed."""


def format_timestamp(moment: datetime) -> str:
    """Alma's timestamp form, always UTC with milliseconds."""
    moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def parse_money(value: Any, what: str = "amount", *, sub_cent: bool = False) -> Decimal:
    """A seed amount (string, int or Decimal; never float or bool) as an exact two-place Decimal.
    A fee marked `sub_cent` may carry more places (real Alma data has been seen with amounts
    that are not whole cents): those are kept exactly as given."""
    if isinstance(value, bool) or not isinstance(value, str | int | Decimal):
        raise SeedError(f"{what} must be a string, int or Decimal, got {value!r}")
    try:
        amount = Decimal(value)
    except InvalidOperation as exc:
        raise SeedError(f"{what} is not a number: {value!r}") from exc
    if not amount.is_finite():
        raise SeedError(f"{what} is not a finite number: {value!r}")
    if amount != amount.quantize(CENT):
        if sub_cent:
            return amount
        raise SeedError(f"{what} must have at most two decimal places: {value!r}")
    return amount.quantize(CENT)


def _timestamp(value: Any, what: str) -> str:
    if not isinstance(value, str) or not TIMESTAMP_RE.match(value):
        raise SeedError(f"{what} must look like 2025-01-21T15:02:11.420Z, got {value!r}")
    return value


@dataclass
class Transaction:
    type: str
    amount: Decimal
    transaction_time: str
    payment_method: str | None
    external_transaction_id: str | None = None
    vat_amount: Decimal = Decimal("0.00")
    created_by: str = "Ex Libris"
    received_by: str = "Not At Desk"


@dataclass
class Fee:
    id: str
    type: str
    status: str
    original_amount: Decimal
    balance: Decimal
    creation_time: str
    status_time: str
    owner: str | None  # None: no owning library (an institution-level fee, in some answers)
    title: str | None = None
    item_barcode: str | None = None
    comment: str | None = None
    api_restricted: bool = False
    bursar_transaction_id: str | None = None
    transactions: list[Transaction] = field(default_factory=list)
    sub_cent: bool = False  # amounts may have more than two decimal places

    def sort_key(self) -> tuple[str, int]:
        """Oldest first, ties broken by the numeric id (docs/sandbox.md#fees-and-payments)."""
        return (self.creation_time, int(self.id))


@dataclass
class Identifier:
    type: str
    value: str
    status: str = "ACTIVE"


@dataclass
class Email:
    address: str
    preferred: bool = False
    type: str = "school"


@dataclass
class User:
    primary_id: str
    first_name: str
    last_name: str
    account_type: str
    status: str
    user_group: str
    expiry_date: str | None
    internal_id: str
    record_type: str = "PUBLIC"
    password: str | None = None
    emails: list[Email] = field(default_factory=list)
    identifiers: list[Identifier] = field(default_factory=list)
    fees: list[Fee] = field(default_factory=list)
    blocks: list[dict[str, Any]] = field(default_factory=list)  # {type, status, note}


@dataclass
class ApiKey:
    key: str
    label: str
    read_only: bool


@dataclass
class Institution:
    code: str
    id_suffix: str
    currency: str
    libraries: dict[str, str]
    name: str = ""


class AlmaState:
    """Every user and fee of the emulated institution, plus the id generator."""

    def __init__(self, seed: dict[str, Any], now: str) -> None:
        seed = copy.deepcopy(seed)
        inst = seed["institution"]
        suffix = str(inst["id_suffix"])
        if not re.fullmatch(r"\d{4}", suffix):
            raise SeedError(f"id_suffix must be 4 digits, got {suffix!r}")
        self.institution = Institution(
            code=inst["code"], id_suffix=suffix, currency=inst["currency"],
            libraries=dict(inst.get("libraries", {})), name=str(inst.get("name") or ""),
        )
        self.api_keys = {
            k["key"]: ApiKey(k["key"], k.get("label", ""), bool(k.get("read_only", False)))
            for k in seed.get("api_keys", [])
        }
        self.users: list[User] = []
        self._counter = 880000000
        for user in seed.get("users", []):
            self.add_user(user, now)

    # -- ids -----------------------------------------------------------------------------------

    def new_id(self) -> str:
        """A fresh Alma-shaped id: digits ending in the institution's suffix, never reused."""
        taken = {fee.id for user in self.users for fee in user.fees}
        taken |= {user.internal_id for user in self.users}
        while True:  # terminates: each turn moves the counter past one of finitely many ids
            self._counter += 1
            candidate = f"{self._counter:09d}000{self.institution.id_suffix}"
            if candidate not in taken:
                return candidate

    # -- lookups -------------------------------------------------------------------------------

    def find_user(self, user_id: str, id_type: str | None) -> User | None:
        """Resolve any unique identifier (docs/sandbox.md#patron-look-up-and-passwords); INACTIVE
        identifiers never match."""
        wanted = user_id.casefold()
        explicit = id_type not in (None, "", "all_unique")
        for user in self.users:
            if not explicit and user.primary_id.casefold() == wanted:
                return user
            for ident in user.identifiers:
                if ident.status != "ACTIVE" or ident.value.casefold() != wanted:
                    continue
                if not explicit or ident.type == id_type:
                    return user
        return None

    def user_by_primary_id(self, primary_id: str) -> User:
        """The user whose primary ID this is (case-insensitive); KeyError if none."""
        for user in self.users:
            if user.primary_id.casefold() == primary_id.casefold():
                return user
        raise KeyError(primary_id)

    # -- building from seed-shaped dicts ---------------------------------------------------------

    def add_user(self, data: dict[str, Any], now: str) -> User:
        primary_id = data.get("primary_id")
        if not isinstance(primary_id, str) or not primary_id:
            raise SeedError("a user needs a primary_id")
        if any(u.primary_id.casefold() == primary_id.casefold() for u in self.users):
            raise SeedError(f"user {primary_id!r} already exists")
        user = User(
            primary_id=primary_id,
            first_name=data.get("first_name", ""),
            last_name=data.get("last_name", ""),
            account_type=data.get("account_type", "EXTERNAL"),
            status=data.get("status", "ACTIVE"),
            user_group=data.get("user_group", ""),
            expiry_date=data.get("expiry_date"),
            internal_id=data.get("internal_id") or self.new_id(),
            record_type=data.get("record_type", "PUBLIC"),
            password=data.get("password"),
            emails=[
                Email(e["address"], bool(e.get("preferred", False)), e.get("type", "school"))
                for e in data.get("emails", [])
            ],
            identifiers=[
                Identifier(i["type"], i["value"], i.get("status", "ACTIVE"))
                for i in data.get("identifiers", [])
            ],
            blocks=[dict(block) for block in data.get("blocks", [])],
        )
        self.users.append(user)
        try:
            for fee in data.get("fees", []):
                self.add_fee(user, fee, now)
        except SeedError:
            self.users.remove(user)
            raise
        return user

    def add_fee(self, user: User, data: dict[str, Any], now: str) -> Fee:
        fee_id = str(data.get("id") or self.new_id())
        if not fee_id.isdigit():
            raise SeedError(f"fee id must be digits, got {fee_id!r}")
        if any(f.id == fee_id for u in self.users for f in u.fees):
            raise SeedError(f"fee {fee_id} already exists")
        status = data.get("status", "ACTIVE")
        if status not in FEE_STATUSES:
            raise SeedError(f"fee status must be one of {FEE_STATUSES}, got {status!r}")
        sub_cent = bool(data.get("sub_cent", False))
        original = parse_money(data["original_amount"], "original_amount", sub_cent=sub_cent)
        balance = parse_money(data.get("balance", data["original_amount"]), "balance",
                              sub_cent=sub_cent)
        owner = data.get("owner")
        if owner is not None and (not isinstance(owner, str) or not owner):
            raise SeedError(f"fee owner must be a library code or null, got {owner!r}")
        created = _timestamp(data.get("creation_time", now), "creation_time")
        transactions = [self._transaction(t) for t in data.get("transactions", [])]
        last_activity = max([created] + [t.transaction_time for t in transactions])
        fee = Fee(
            id=fee_id,
            type=data["type"],
            status=status,
            original_amount=original,
            balance=balance,
            creation_time=created,
            status_time=_timestamp(data.get("status_time", last_activity), "status_time"),
            owner=owner,
            title=data.get("title"),
            item_barcode=data.get("item_barcode"),
            comment=data.get("comment"),
            api_restricted=bool(data.get("api_restricted", False)),
            bursar_transaction_id=data.get("bursar_transaction_id"),
            transactions=transactions,
            sub_cent=sub_cent,
        )
        user.fees.append(fee)
        return fee

    @staticmethod
    def _transaction(data: dict[str, Any]) -> Transaction:
        return Transaction(
            type=data.get("type", "PAYMENT"),
            amount=parse_money(data["amount"], "transaction amount"),
            vat_amount=parse_money(data.get("vat_amount", "0"), "vat_amount"),
            transaction_time=_timestamp(data["transaction_time"], "transaction_time"),
            payment_method=data.get("payment_method"),
            external_transaction_id=data.get("external_transaction_id"),
            created_by=data.get("created_by", "Ex Libris"),
            received_by=data.get("received_by", "Not At Desk"),
        )


def fee_to_raw(fee: Fee) -> dict[str, Any]:
    """A fee as plain data (Decimal amounts kept), shaped like the seed."""
    return {
        "id": fee.id,
        "type": fee.type,
        "status": fee.status,
        "original_amount": fee.original_amount,
        "balance": fee.balance,
        "creation_time": fee.creation_time,
        "status_time": fee.status_time,
        "owner": fee.owner,
        "title": fee.title,
        "item_barcode": fee.item_barcode,
        "comment": fee.comment,
        "api_restricted": fee.api_restricted,
        "bursar_transaction_id": fee.bursar_transaction_id,
        "transactions": [
            {
                "type": t.type,
                "amount": t.amount,
                "vat_amount": t.vat_amount,
                "external_transaction_id": t.external_transaction_id,
                "payment_method": t.payment_method,
                "transaction_time": t.transaction_time,
                "created_by": t.created_by,
                "received_by": t.received_by,
            }
            for t in fee.transactions
        ],
    }


def user_to_raw(user: User) -> dict[str, Any]:
    """A user as plain data for test assertions; the password itself is never handed out."""
    return {
        "primary_id": user.primary_id,
        "first_name": user.first_name,
        "last_name": user.last_name,
        "account_type": user.account_type,
        "status": user.status,
        "user_group": user.user_group,
        "expiry_date": user.expiry_date,
        "record_type": user.record_type,
        "internal_id": user.internal_id,
        "has_password": user.password is not None,
        "emails": [{"address": e.address, "preferred": e.preferred, "type": e.type}
                   for e in user.emails],
        "identifiers": [{"type": i.type, "value": i.value, "status": i.status}
                        for i in user.identifiers],
        "fees": [fee_to_raw(fee) for fee in sorted(user.fees, key=Fee.sort_key)],
        "blocks": copy.deepcopy(user.blocks),
    }
