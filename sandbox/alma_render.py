"""Turn emulator state into Alma's JSON documents (docs/alma.md#calls, docs/alma.md#errors) as plain
dicts.

Amounts stay Decimal here; `alma_json.dumps` writes them. Key order follows the captured
samples in the spec so a diff against a real response reads naturally.
"""

from __future__ import annotations

import random
import string
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any
from urllib.parse import quote
from xml.sax.saxutils import escape

from sandbox.alma_state import Fee, Institution, Transaction, User

ERROR_STYLES: tuple[str, ...] = ("plain", "wrapped", "single_object", "xml")
DATE_STYLES: tuple[str, ...] = ("iso", "epoch_ms")
# Keys of a Fee that real answers leave out, rather than write as null, when there is no value.
OPTIONAL_FEE_KEYS = ("comment", "owner", "title", "barcode")
XML_NAMESPACE = "http://com/exlibris/urm/general/xmlbeans"


@dataclass(frozen=True)
class FeeStyle:
    """How fees are written: `omit_empty` leaves out the optional keys that have no value
    (as real answers do) instead of writing null; `date_style` `epoch_ms` writes
    `creation_time` and `status_time` as epoch milliseconds, as the old API did."""

    omit_empty: bool = False
    date_style: str = "iso"

# Small built-in code tables: Alma's `desc` texts are institution-configurable
# (docs/alma.md#where-the-real-behaviour-is-unknown).
DESCRIPTIONS: dict[str, dict[str, str]] = {
    "account_type": {"INTERNAL": "Internal", "EXTERNAL": "External"},
    "record_type": {"PUBLIC": "Public", "STAFF": "Staff", "CONTACT": "Contact"},
    "user_status": {"ACTIVE": "Active", "INACTIVE": "Inactive"},
    "user_group": {
        "UGRAD": "Undergraduate", "GRAD": "Graduate", "FACULTY": "Faculty", "STAFF": "Staff",
        "COMMUNITY": "Community borrower",
    },
    "id_type": {"BARCODE": "Barcode", "UNIV_ID": "University ID"},
    "email_type": {"school": "School", "personal": "Personal", "work": "Work"},
    "fee_type": {
        "OVERDUEFINE": "Overdue fine", "RECALLEDOVERDUEFINE": "Recalled overdue fine",
        "LOSTITEMREPLACEMENTFEE": "Lost item replacement fee",
        "LOSTITEMPROCESSFEE": "Lost item process fee", "DAMAGEDITEMFINE": "Damaged item fine",
        "CARDRENEWAL": "Card renewal", "LOCKERKEY": "Locker key",
        "DOCUMENTDELIVERYSERVICE": "Document delivery service", "OTHER": "Other",
        "CREDIT": "Credit",
    },
    "fee_status": {
        "ACTIVE": "Active", "CLOSED": "Closed", "INDISPUTE": "In dispute", "EXPORTED": "Exported",
    },
    "transaction_type": {"PAYMENT": "Payment", "WAIVE": "Waive"},
    "payment_method": {"ONLINE": "Online", "CREDIT_CARD": "Credit card", "CASH": "Cash"},
}

# Alma's documented wording (paraphrased where the docs give only a title).
MESSAGES: dict[str, str] = {
    "401651": "Identifier not found.",
    "401665": "Fine not found.",
    "401666": "Parameter value is not valid.",
    "401861": "User with identifier {user_id} was not found.",
    "401866": "User authentication failed.",
    "401890": "User with identifier {user_id} of type {id_type} was not found.",
    "402119": "General Error - An error has occurred while processing the request.",
    "60101": "General Error - An error has occurred while processing the request.",
    "60258": "Restricted profile is not valid.",
    "60340": "The fine/fee is API restricted by the library.",
    "UNAUTHORIZED": "API-key not defined or not configured to allow this API.",
    "PER_SECOND_THRESHOLD": "HTTP requests are more than allowed per second",
    "DAILY_THRESHOLD": "Daily API request threshold has been reached.",
}


def coded(table: str, value: str) -> dict[str, str]:
    """Alma's `{value, desc}` pair; unknown codes describe themselves."""
    return {"value": value, "desc": DESCRIPTIONS[table].get(value, value)}


def message_for(code: str, **details: str) -> str:
    template = MESSAGES.get(code, "Error {code}.")
    return template.format(code=code, **details)


def user_link(base: str, primary_id: str) -> str:
    return f"{base}/almaws/v1/users/{quote(primary_id, safe='@')}"


def render_transaction(txn: Transaction, inst: Institution,
                       owner: str | None) -> dict[str, Any]:
    document: dict[str, Any] = {
        "type": coded("transaction_type", txn.type),
        "amount": txn.amount,
        "vat_amount": txn.vat_amount,
        "created_by": txn.created_by,
    }
    if txn.external_transaction_id is not None:
        document["external_transaction_id"] = txn.external_transaction_id
    document["transaction_time"] = txn.transaction_time
    document["received_by"] = {"value": txn.received_by, "desc": library_name(inst, owner)}
    if txn.payment_method is not None:
        document["payment_method"] = coded("payment_method", txn.payment_method)
    return document


def library_name(inst: Institution, code: str | None) -> str | None:
    """A library's name; the institution's for an institution-level fee; None for no owner."""
    if code is None:
        return None
    if code == inst.code and inst.name:
        return inst.name
    return inst.libraries.get(code, code)


def epoch_ms(timestamp: str) -> int:
    """Alma's `2025-01-21T15:02:11.420Z` as epoch milliseconds."""
    moment = datetime.strptime(timestamp, "%Y-%m-%dT%H:%M:%S.%f%z")
    return int(moment.timestamp()) * 1000 + moment.microsecond // 1000


def render_fee(fee: Fee, user: User, inst: Institution, base: str,
               style: FeeStyle = FeeStyle()) -> dict[str, Any]:
    barcode = None
    if fee.item_barcode is not None:
        barcode = {
            "value": fee.item_barcode,
            "link": f"{base}/almaws/v1/items?item_barcode={quote(fee.item_barcode, safe='')}",
        }
    document: dict[str, Any] = {
        "id": fee.id,
        "type": coded("fee_type", fee.type),
        "status": coded("fee_status", fee.status),
        "user_primary_id": {"value": user.primary_id, "link": user_link(base, user.primary_id)},
        "balance": fee.balance,
        "remaining_vat_amount": Decimal("0.00"),
        "original_amount": fee.original_amount,
        "original_vat_amount": Decimal("0.00"),
        "creation_time": fee.creation_time,
        "status_time": fee.status_time,
        "comment": fee.comment,
        "owner": ({"value": fee.owner, "desc": library_name(inst, fee.owner)}
                  if fee.owner is not None else None),
        "title": fee.title,
        "barcode": barcode,
    }
    if style.date_style == "epoch_ms":
        document["creation_time"] = epoch_ms(fee.creation_time)
        document["status_time"] = epoch_ms(fee.status_time)
    if style.omit_empty:
        for key in OPTIONAL_FEE_KEYS:
            if document[key] is None:
                del document[key]
    if fee.bursar_transaction_id is not None:
        document["bursar_transaction_id"] = fee.bursar_transaction_id
    if fee.transactions:  # present only after some activity [OBS]
        document["transaction"] = [render_transaction(t, inst, fee.owner) for t in fee.transactions]
    document["link"] = f"{user_link(base, user.primary_id)}/fees/{fee.id}"
    return document


def render_fees(
    fees: list[Fee], user: User, inst: Institution, base: str, zero_fee_currency: str | None,
    style: FeeStyle = FeeStyle(),
) -> dict[str, Any]:
    """The Fees object: no `fee` key at all when nothing matches
    (docs/alma.md#fees-and-transactions)."""
    ordered = sorted(fees, key=Fee.sort_key)
    document: dict[str, Any] = {}
    if ordered:
        document["fee"] = [render_fee(fee, user, inst, base, style) for fee in ordered]
    document["total_record_count"] = len(ordered)
    document["total_sum"] = sum((fee.balance for fee in ordered), Decimal("0.00"))
    document["currency"] = inst.currency if ordered else zero_fee_currency
    return document


def render_user(user: User, *, brief: bool, expand: set[str]) -> dict[str, Any]:
    segment = "Internal" if user.account_type == "INTERNAL" else "External"
    document: dict[str, Any] = {
        "primary_id": user.primary_id,
        "first_name": user.first_name,
        "last_name": user.last_name,
        "full_name": f"{user.first_name} {user.last_name}".strip(),
        "account_type": coded("account_type", user.account_type),
        "record_type": coded("record_type", user.record_type),
        "status": coded("user_status", user.status),
        "user_group": coded("user_group", user.user_group),
        "expiry_date": user.expiry_date,
        "contact_info": {
            "email": [
                {"email_address": e.address, "preferred": e.preferred, "segment_type": segment,
                 "email_type": [coded("email_type", e.type)]}
                for e in user.emails
            ],
        },
        "user_identifier": [
            {"id_type": coded("id_type", i.type), "value": i.value, "status": i.status,
             "segment_type": segment}
            for i in user.identifiers
        ],
    }
    if not brief:  # `view=brief` keeps core data, e-mails and identifiers only
        document.update({"user_block": [render_block(block) for block in user.blocks],
                         "user_note": [], "user_statistic": [], "user_role": []})
    active = sum((f.balance for f in user.fees if f.status == "ACTIVE"), Decimal("0.00"))
    document["fees"] = {"value": active} if "fees" in expand else None
    document["loans"] = {"value": 0} if "loans" in expand else None
    document["requests"] = {"value": 0} if "requests" in expand else None
    document["link"] = None
    return document


def render_block(block: dict[str, Any]) -> dict[str, Any]:
    """A user block as Alma shows it in the full user record."""
    kind = str(block.get("type", "GENERAL"))
    return {
        "block_type": {"value": kind, "desc": kind.title()},
        "block_description": {"value": str(block.get("description", kind)),
                              "desc": str(block.get("description", kind))},
        "block_status": str(block.get("status", "ACTIVE")),
        "block_note": block.get("note"),
        "created_by": "System",
        "created_date": block.get("created_date"),
        "expiry_date": block.get("expiry_date"),
        "segment_type": "Internal",
    }


def error_document(
    code: str, message: str, tracking_id: str | None, style: str = "plain"
) -> dict[str, Any]:
    """Form A (`plain`), B (`wrapped` in web_service_result) or C (`single_object`),
    docs/alma.md#error-bodies; form D (`xml`) is `error_xml`."""
    error: dict[str, Any] = {"errorCode": code, "errorMessage": message}
    if tracking_id is not None:
        error["trackingId"] = tracking_id
    body = {
        "errorsExist": True,
        "errorList": {"error": error if style == "single_object" else [error]},
        "result": None,
    }
    return {"web_service_result": body} if style == "wrapped" else body


def error_xml(code: str, message: str, tracking_id: str | None) -> str:
    """Form D: the same fields as XML, as Alma answers when JSON was not asked for (and, on
    some error paths, even when it was)."""
    tracking = f"<trackingId>{escape(tracking_id)}</trackingId>" if tracking_id else ""
    return ('<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
            f'<web_service_result xmlns="{XML_NAMESPACE}"><errorsExist>true</errorsExist>'
            f"<errorList><error><errorCode>{escape(code)}</errorCode>"
            f"<errorMessage>{escape(message)}</errorMessage>{tracking}</error></errorList>"
            "</web_service_result>")


def tracking_id(now: datetime, rng: random.Random) -> str:
    """Shaped like Alma's: E01-<10 digits>-<5 letters>-AWAE<9 digits>."""
    stamp = now.astimezone(UTC).strftime("%d%m%H%M%S")
    letters = "".join(rng.choice(string.ascii_uppercase) for _ in range(5))
    digits = "".join(rng.choice(string.digits) for _ in range(9))
    return f"E01-{stamp}-{letters}-AWAE{digits}"
