"""The CashNet checkout hand-off: lines per item code and the form the browser posts to CashNet
(docs/cashnet.md#checkout-hand-off). The lines are frozen with the payment; the notification must
echo them.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from urllib.parse import urlencode

from proxy.allocation import Allocation
from proxy.money import ZERO, format_amount

DESCRIPTION_LIMIT = 100
VALUE_LIMIT = 255


class TooManyLines(ValueError):
    """The chosen fees need more CashNet lines than the store allows."""


@dataclass(frozen=True)
class Line:
    number: int
    item_code: str
    amount: Decimal
    description: str


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
    item_code_for: Callable[[str], str],
    labels: dict[str, str],
    max_lines: int,
) -> list[Line]:
    """One line per item code, in order of first appearance, carrying the sum of its fees."""
    sums: dict[str, Decimal] = {}
    names: dict[str, list[str]] = {}
    for allocation in allocations:
        code = item_code_for(allocation.fee_type)
        sums[code] = sums.get(code, ZERO) + allocation.amount
        label = labels.get(allocation.fee_type, allocation.fee_type)
        if label not in names.setdefault(code, []):
            names[code].append(label)
    if len(sums) > max_lines:
        raise TooManyLines(f"{len(sums)} kinds of fee need more than {max_lines} lines")
    return [
        Line(number, code, amount, ascii_text(", ".join(names[code]), DESCRIPTION_LIMIT))
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
) -> Checkout:
    """The hidden fields of the hand-off form, in the order CashNet's examples use."""
    fields: list[tuple[str, str]] = [("itemcnt", str(len(lines)))]
    for line in lines:
        n = line.number
        fields += [
            (f"itemcode{n}", line.item_code),
            (f"amount{n}", format_amount(line.amount)),
            (f"desc{n}", line.description),
            (f"qty{n}", "1"),
        ]
    fields += [
        ("custcode", ascii_text(payer.patron_id)),
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
