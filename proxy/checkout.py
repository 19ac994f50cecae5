"""The CashNet checkout hand-off: lines per item code and the form the browser posts to CashNet
(docs/cashnet.md#checkout-hand-off). The lines are frozen with the payment; the notification must
echo them.

Item codes follow the fee's owning library and type (docs/deploy.md#cashnet-store-set-up):
`LIBRARY/FEETYPE=CODE`, then `LIBRARY/*=CODE`, then `FEETYPE=CODE`, then the default code. The
custcode is the patron's primary id, one of their Alma identifiers, or nothing.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from urllib.parse import urlencode

from proxy.allocation import Allocation
from proxy.money import ZERO, format_amount

DESCRIPTION_LIMIT = 100
VALUE_LIMIT = 255


CUSTCODE_PRIMARY_ID = "primary_id"
CUSTCODE_NONE = "none"
_NAME = re.compile(r"[A-Za-z0-9_.-]+")


class TooManyLines(ValueError):
    """The chosen fees need more CashNet lines than the store allows."""


@dataclass(frozen=True)
class Line:
    number: int
    item_code: str
    amount: Decimal
    description: str
    # The owning libraries of the fees on this line, with their part of its amount.
    libraries: tuple[tuple[str, Decimal], ...] = field(default=())
    gl: str = ""


def parse_item_code_rules(pairs: Mapping[str, str]) -> dict[str, str]:
    """`FEETYPE`, `LIBRARY/FEETYPE` or `LIBRARY/*` keys (upper-cased) to item codes. Raises
    ValueError naming a key of another shape."""
    rules = {}
    for key, code in pairs.items():
        library, slash, fee_type = key.strip().upper().rpartition("/")
        type_ok = bool(_NAME.fullmatch(fee_type)) or (bool(slash) and fee_type == "*")
        library_ok = not slash or bool(_NAME.fullmatch(library))
        if not (type_ok and library_ok):
            raise ValueError(f"{key!r} is not FEETYPE, LIBRARY/FEETYPE or LIBRARY/*")
        rules[f"{library}/{fee_type}" if slash else fee_type] = code.strip()
    return rules


def item_code_rule(rules: Mapping[str, str], fee_type: str, library: str) -> str | None:
    """The key of the rule that names the fee's code, or None when the default does. The
    most specific rule wins: library and type, the library's `*`, the type. Codes are
    compared without regard to case."""
    fee_type, library = fee_type.strip().upper(), library.strip().upper()
    keys = ([f"{library}/{fee_type}", f"{library}/*"] if library else []) + [fee_type]
    return next((key for key in keys if key in rules), None)


def item_code_for(rules: Mapping[str, str], default: str, fee_type: str, library: str) -> str:
    """The fee's item code: its most specific rule's (`item_code_rule`), else the default."""
    key = item_code_rule(rules, fee_type, library)
    return default if key is None else rules[key]


def parse_custcode_choice(value: str) -> str:
    """`primary_id`, `none`, or an Alma user identifier type such as `UNIV_ID`."""
    text = value.strip()
    if text.lower() in (CUSTCODE_PRIMARY_ID, CUSTCODE_NONE):
        return text.lower()
    if not _NAME.fullmatch(text):
        raise ValueError("choose primary_id, none, or an Alma identifier type such as UNIV_ID")
    return text.upper()


def custcode_for(choice: str, primary_id: str, user: Mapping | None = None) -> str:
    """The custcode to send: the primary id, nothing, or the patron's active identifier of the
    chosen type from Alma's user record (the primary id when they have none)."""
    if choice == CUSTCODE_NONE:
        return ""
    if choice != CUSTCODE_PRIMARY_ID:
        for identifier in (user or {}).get("user_identifier") or []:
            if not isinstance(identifier, Mapping):
                continue
            id_type = identifier.get("id_type")
            kind = id_type.get("value") if isinstance(id_type, Mapping) else id_type
            active = str(identifier.get("status") or "ACTIVE").upper() == "ACTIVE"
            if str(kind or "").upper() == choice and active and identifier.get("value"):
                return ascii_text(str(identifier["value"]))
    return ascii_text(primary_id)


@dataclass(frozen=True)
class Payer:
    patron_id: str
    first_name: str
    last_name: str
    email: str


@dataclass(frozen=True)
class Checkout:
    action: str
    method: str
    fields: tuple[tuple[str, str], ...]

    def to_json(self) -> dict:
        return {"action": self.action, "method": self.method, "fields": dict(self.fields)}


def ascii_text(text: str, limit: int = VALUE_LIMIT) -> str:
    """CashNet's charset is undocumented: send plain ASCII (Zoë -> Zoe)."""
    folded = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    return " ".join(folded.split())[:limit]


def build_lines(
    allocations: Sequence[Allocation],
    item_code_for: Callable[[str, str], str],
    labels: dict[str, str],
    max_lines: int,
    libraries: Mapping[str, str] | None = None,
    gl_codes: Mapping[str, str] | None = None,
) -> list[Line]:
    """One line per item code, in order of first appearance, carrying the sum of its fees.
    `item_code_for(fee_type, library)` names the code; `libraries` gives each fee's owning
    library (by fee id), `gl_codes` a GL string per item code (upper-cased) where the store
    wants one."""
    libraries = libraries or {}
    sums: dict[str, Decimal] = {}
    names: dict[str, list[str]] = {}
    parts: dict[str, dict[str, Decimal]] = {}
    for allocation in allocations:
        library = libraries.get(allocation.fee_id, "")
        code = item_code_for(allocation.fee_type, library)
        sums[code] = sums.get(code, ZERO) + allocation.amount
        by_library = parts.setdefault(code, {})
        by_library[library] = by_library.get(library, ZERO) + allocation.amount
        label = labels.get(allocation.fee_type, allocation.fee_type)
        if label not in names.setdefault(code, []):
            names[code].append(label)
    if len(sums) > max_lines:
        raise TooManyLines(f"{len(sums)} kinds of fee need more than {max_lines} lines")
    return [
        Line(number, code, amount, ascii_text(", ".join(names[code]), DESCRIPTION_LIMIT),
             tuple(parts[code].items()), (gl_codes or {}).get(code.upper(), ""))
        for number, (code, amount) in enumerate(sums.items(), start=1)
    ]


def build_checkout(
    *,
    action: str,
    payment_id: str,
    lines: Sequence[Line],
    payer: Payer,
    return_url: str,
    ref_type: str,
    txn_ref_name: str = "",
    custcode: str | None = None,
) -> Checkout:
    """The hidden fields of the hand-off form, in the order CashNet's examples use. `custcode`
    None sends the payer's patron id, "" sends none."""
    fields: list[tuple[str, str]] = [("itemcnt", str(len(lines)))]
    for line in lines:
        n = line.number
        fields += [
            (f"itemcode{n}", line.item_code),
            (f"amount{n}", format_amount(line.amount)),
            (f"desc{n}", line.description),
            (f"qty{n}", "1"),
        ]
        if line.gl:
            fields.append((f"gl{n}", line.gl))
    custcode = ascii_text(payer.patron_id) if custcode is None else custcode
    if custcode:
        fields.append(("custcode", custcode))
    fields += [
        ("fname", ascii_text(payer.first_name)),
        ("lname", ascii_text(payer.last_name)),
    ]
    if payer.email:
        fields.append(("email", ascii_text(payer.email)))
    separator = "&" if "?" in return_url else "?"
    fields += [
        ("signouturl", f"{return_url}{separator}{urlencode({'p': payment_id})}"),
        ("ref1type1", ref_type),
        ("ref1val1", payment_id),
    ]
    if txn_ref_name:
        fields.append((txn_ref_name, payment_id))
    return Checkout(action=action, method="POST", fields=tuple(fields))


def line_libraries(lines: Sequence[Line]) -> dict[str, dict[str, str]]:
    """Which libraries' fees each line carries, stored with the payment for the bursar's
    export by line: {"1": {"LAW": "12.50"}, ...}."""
    return {str(line.number): {library: format_amount(amount)
                               for library, amount in line.libraries}
            for line in lines}
