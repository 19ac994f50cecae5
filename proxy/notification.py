"""CashNet's messages: tolerant parsing and the content checks of
docs/cashnet.md#notification-checks.

The checks themselves, in order and with what each failure does, are listed in
proxy/cashnet_checks.py.

Both the store notification (which moves money state) and the browser's sign-out data (which
never does) are parsed here. Reading the raw bytes ourselves means a wrong Content-Type, a
windows-1252 body, upper-case names or a leading `&` cannot hide a payment.
"""

from __future__ import annotations

import codecs
import re
from dataclasses import dataclass, field
from decimal import Decimal
from urllib.parse import unquote_to_bytes

from proxy import cashnet_checks
from proxy.money import parse_echoed

_INDEXED = re.compile(r"(itemcode|amount)([0-9]+)")
_ITEM_REF = re.compile(r"ref([0-9]+)type([0-9]+)")
_CHARSET = re.compile(r";\s*charset\s*=\s*\"?([A-Za-z0-9._:-]+)", re.IGNORECASE)
# A payment id as patronpay makes them (proxy/payments.py): 32 lower-case hex characters.
PAYMENT_ID = re.compile(r"[0-9a-f]{32}")

# The fields that decide what a notification does: two differing values for one of them make
# the message unable to settle a payment. Anything else (a name the payer typed beside our
# echo, such as LNAME or EMAIL) may repeat with any value.
_DECISION = re.compile(r"result|tx|failedtx|itemcnt|(itemcode|amount)[0-9]*"
                       r"|ref[0-9]+(type|val)[0-9]+|custcode")
# The fields patronpay keeps of a notification, because it uses them: an allow-list, so a
# store that echoes the payer's address, card name or e-mail under any name keeps them out.
# Reference values are kept only when they are ours (see Message.recordable).
_KEPT = re.compile(r"result|respmessage|tx|failedtx|batchno|effdate|merchant|station|operator"
                   r"|pmtcode|pmttype|cctype|custcode|itemcnt|(itemcode|amount|qty|gl)[0-9]*"
                   r"|ref[0-9]+type[0-9]+|ccerrorcode|ccerrormessage")


@dataclass(frozen=True)
class Message:
    """A parsed CashNet message: lower-case names, values decoded once. A name sent more than
    once keeps its first value in `fields`; every value it came with is in `repeats`."""

    fields: dict[str, str]
    repeats: dict[str, tuple[str, ...]] = field(default_factory=dict)

    def get(self, name: str) -> str:
        return self.fields.get(name, "").strip()

    @property
    def result(self) -> str:
        return self.get("result")

    @property
    def succeeded(self) -> bool:
        return self.result == "0"

    @property
    def cancelled(self) -> bool:
        return self.result == "902"

    @property
    def tx(self) -> str:
        return self.get("tx")

    @property
    def failedtx(self) -> str:
        return self.get("failedtx")

    @property
    def conflicts(self) -> tuple[str, ...]:
        """Every name sent twice with different values, decision field or not."""
        return tuple(sorted(self.repeats))

    def decision_conflicts(self, txn_ref_name: str = "") -> tuple[str, ...]:
        """The decision fields sent twice with values that do not mean the same (`1,080.00`
        and `1080.00` do; `mkowalski` and `MKOWALSKI` do for custcode)."""
        reference = txn_ref_name.lower()
        return tuple(name for name in self.conflicts
                     if (_DECISION.fullmatch(name) or (reference and name == reference))
                     and len({_meaning(name, value) for value in self.repeats[name]}) > 1)

    def lines(self) -> list[tuple[str, Decimal | None]]:
        """(item code, amount) for lines 1..itemcnt; an un-indexed pair is line 1."""
        numbers = {int(m.group(2)) for name in self.fields if (m := _INDEXED.fullmatch(name))}
        count = _int(self.get("itemcnt"))
        if count is None:
            count = max(numbers, default=1 if "itemcode" in self.fields else 0)
        lines = []
        for n in range(1, min(count, 99) + 1):
            code = self.fields.get(f"itemcode{n}")
            amount = self.fields.get(f"amount{n}")
            if n == 1:
                code = self.fields.get("itemcode") if code is None else code
                amount = self.fields.get("amount") if amount is None else amount
            lines.append(((code or "").strip(), parse_echoed(amount or "")))
        return lines

    def recordable(self) -> dict[str, str]:
        """The fields patronpay uses, to keep in the audit trail: an allow-list. References are
        kept where they hold one of our payment ids (under whatever name the store echoes
        them); other reference values (a store may pass the payer's name or e-mail as one)
        are left out."""
        return {name: value for name, value in self.fields.items()
                if _KEPT.fullmatch(name) or PAYMENT_ID.fullmatch(value.strip().lower())}


def parse_message(body: bytes, query: str = "", content_type: str = "") -> Message:
    """Parse a form-urlencoded body (or, when the body is empty, the query string). Values are
    decoded with the charset the Content-Type names; without one, as UTF-8, or windows-1252
    when they are not UTF-8."""
    if not body.strip():
        body = query.encode("latin-1", "replace")
    charset = _declared_charset(content_type)
    fields: dict[str, str] = {}
    repeats: dict[str, list[str]] = {}
    for pair in body.strip().lstrip(b"?&").split(b"&"):
        if not pair.strip():
            continue
        raw_name, _, raw_value = pair.partition(b"=")
        name = _decoded(raw_name, charset).strip().lstrip("&?").lower()
        value = _decoded(raw_value, charset)
        if not name:
            continue
        if name in fields:
            if value != fields[name] and value not in repeats.setdefault(name, [fields[name]]):
                repeats[name].append(value)
            continue
        fields[name] = value
    return Message(fields, {name: tuple(values) for name, values in repeats.items()
                            if len(values) > 1})


def payment_ids(message: Message, ref_type: str, txn_ref_name: str = "") -> set[str]:
    """Our payment id(s) in the message: by reference type name on any item, then the
    transaction-level name, then by position (safe only because a 128-bit id is itself
    strong evidence)."""
    ref_type = ref_type.lower()
    found = set()
    for name, value in message.fields.items():
        match = _ITEM_REF.fullmatch(name)
        if match and value.strip().lower() == ref_type:
            ref_value = message.get(f"ref{match.group(1)}val{match.group(2)}")
            if ref_value:
                found.add(ref_value)
    if not found and txn_ref_name and message.get(txn_ref_name.lower()):
        found.add(message.get(txn_ref_name.lower()))
    if not found:
        for slot in ("ref1val1", "ref1val2"):
            if message.get(slot):
                found.add(message.get(slot))
                break
    return found


def returned_payment_id(p: str) -> str:
    """The payment id in the `p` we put in `signouturl`, or "". CashNet has been seen to add
    its own query to that URL with a second `?`, which leaves `p` as `<id>?result=0`."""
    candidate = p.partition("?")[0].strip().lower()
    return candidate if PAYMENT_ID.fullmatch(candidate) else ""


@dataclass(frozen=True)
class StoredLine:
    item_code: str
    amount: Decimal


def line_mismatch(message: Message, stored: list[StoredLine], custcode: str,
                  txn_ref_name: str = "") -> str:
    """Why the echo must stop the payment from being posted, or "" when it may be posted: the
    first failing attention check of proxy/cashnet_checks.py."""
    return cashnet_checks.echo_mismatch(
        cashnet_checks.Echo(message, stored, custcode, txn_ref_name))


def echo_review(message: Message, stored: list[StoredLine], custcode: str,
                txn_ref_name: str = "") -> str:
    """What staff should look at although the payment may be posted (a custcode that differs),
    or "": the first failing review check of proxy/cashnet_checks.py."""
    return cashnet_checks.echo_review(cashnet_checks.Echo(message, stored, custcode, txn_ref_name))


def _meaning(name: str, value: str) -> object:
    """What a decision field's value means, for comparing two of them."""
    if name.startswith("amount"):
        amount = parse_echoed(value)
        return value.strip() if amount is None else amount
    if name.startswith(("itemcode", "ref", "custcode")):
        return value.strip().casefold()
    return value.strip()


def _declared_charset(content_type: str) -> str:
    match = _CHARSET.search(content_type)
    if not match:
        return ""
    try:
        return codecs.lookup(match.group(1)).name
    except LookupError:  # a charset nobody knows: decode as if none were named
        return ""


def _decoded(raw: bytes, charset: str) -> str:
    """Percent-decode once (`+` is a space), then turn the bytes into text."""
    octets = unquote_to_bytes(raw.replace(b"+", b" "))
    if charset and charset != "utf-8":
        return octets.decode(charset, errors="replace")
    try:
        return octets.decode("utf-8")
    except UnicodeDecodeError:
        return octets.decode("cp1252", errors="replace")


def _int(text: str) -> int | None:
    # isdigit() alone accepts '²', which int() refuses.
    return int(text) if text.isascii() and text.isdigit() else None
