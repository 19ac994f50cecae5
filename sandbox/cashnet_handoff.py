"""Parse and validate a checkout hand-off the way the emulated CashNet does
(docs/cashnet.md#hand-off-fields, docs/cashnet.md#hand-off-errors,
docs/sandbox.md#hand-off-validation).

Names are case-insensitive; query and form fields are merged (form wins). Checks run in the
spec's order — store (702, 701, 703), items (4, 25, 5, 704, 706), refs (705), limits — and the
first error wins.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from sandbox.cashnet_store import find_store

ERROR_MESSAGES = {
    4: "Invalid or missing item code",
    5: "Negative amount not allowed",
    25: "Invalid or missing amount",
    701: "Web site disabled",
    702: "Improper merchant code",
    703: "Site down for maintenance",
    704: "Duplicate item violation",
    705: "Invalid reference type",
    706: "Items violate unique selection",
}

_LINE_KEY = re.compile(r"^(itemcode|amount|desc|qty|gl)([1-9][0-9]*)$")
_REF_KEY = re.compile(r"^ref([1-9][0-9]*)(type|val)([1-9][0-9]*)$")
_AMOUNT = re.compile(r"^-?[0-9]+(\.[0-9]{1,2})?$")
_QTY = re.compile(r"^[0-9]+$")
CENT = Decimal("0.01")


class HandoffError(Exception):
    """A hand-off CashNet refuses; `code` is the CashNet result code shown on the error page."""

    def __init__(self, code: int, detail: str) -> None:
        super().__init__(f"{code} {ERROR_MESSAGES[code]}: {detail}")
        self.code = code
        self.message = ERROR_MESSAGES[code]
        self.detail = detail


@dataclass
class Handoff:
    """A validated hand-off: what the checkout page shows and what the results echo."""

    store: str
    lines: list[dict[str, Any]]
    refs: list[dict[str, Any]]
    txn_refs: list[dict[str, str]]
    params: dict[str, str] = field(default_factory=dict)  # lower-cased name -> value

    @property
    def total(self) -> Decimal:
        return sum((Decimal(line["amount"]) for line in self.lines), Decimal("0.00"))

    def get(self, name: str) -> str:
        return self.params.get(name, "").strip()


def merge_params(*sources: Iterable[tuple[str, str]]) -> dict[str, str]:
    """Lower-case every name; a later source (the form) overrides an earlier one (the query)."""
    merged: dict[str, str] = {}
    for source in sources:
        for name, value in source:
            merged[name.strip().lower()] = value
    return merged


def resolve_store(stores: dict[str, dict[str, Any]], name: str) -> tuple[str, dict[str, Any]]:
    """Store checks: unknown or empty name 702, disabled 701, maintenance fault 703."""
    canonical = find_store(stores, name.strip()) if name.strip() else None
    if canonical is None:
        raise HandoffError(702, f"no store named {name.strip()!r}")
    config = stores[canonical]
    if not config["enabled"]:
        raise HandoffError(701, f"store {canonical} is disabled")
    if config["faults"].get("status") == 703:
        raise HandoffError(703, f"store {canonical} is down for maintenance (fault)")
    return canonical, config


def validate(store: str, config: dict[str, Any], params: dict[str, str]) -> Handoff:
    """Item, ref and limit checks, in the spec's order."""
    raw_lines = _collect_lines(params)
    lines = _check_items(config, raw_lines)
    refs = _check_refs(config, params, len(lines))
    txn_refs = _txn_refs(config, params)
    _check_limits(config, params, lines, refs)
    return Handoff(store=store, lines=lines, refs=refs, txn_refs=txn_refs, params=params)


def _collect_lines(params: dict[str, str]) -> list[dict[str, str]]:
    """Lines 1..itemcnt (or the highest N seen); an un-indexed itemcode/amount is line 1."""
    by_number: dict[int, dict[str, str]] = {}
    for name, value in params.items():
        match = _LINE_KEY.match(name)
        if match:
            by_number.setdefault(int(match.group(2)), {})[match.group(1)] = value
    for key in ("itemcode", "amount", "desc", "qty", "gl"):
        if key in params:
            by_number.setdefault(1, {}).setdefault(key, params[key])
    declared = params.get("itemcnt", "").strip()
    if declared and not _QTY.match(declared):
        raise HandoffError(4, f"itemcnt {declared!r} is not a number")
    count = max([int(declared or 0), *by_number])
    if count == 0:
        raise HandoffError(4, "the hand-off has no items")
    lines = []
    for number in range(1, count + 1):
        if number not in by_number:  # a gap: stop at once, however large itemcnt claims to be
            raise HandoffError(4, f"line {number} has no item code")
        lines.append({"n": number, **by_number[number]})
    return lines


def _check_items(config: dict[str, Any], raw: list[dict[str, str]]) -> list[dict[str, Any]]:
    items = config["item_codes"]
    for line in raw:  # 4: every line names a configured item code
        code = line.get("itemcode", "").strip()
        if not code:
            raise HandoffError(4, f"line {line['n']} has no item code")
        if code not in items:
            raise HandoffError(4, f"line {line['n']}: item code {code!r} is not in the store")
    amounts = [_amount(line, items[line["itemcode"].strip()]) for line in raw]  # 25
    for line, amount in zip(raw, amounts, strict=True):  # 5
        if amount <= 0:
            raise HandoffError(5, f"line {line['n']}: amount {format(amount, 'f')} is not > 0")
    _check_unique(raw, items)
    return [
        {
            "n": line["n"],
            "itemcode": line["itemcode"].strip(),
            "desc": line.get("desc", ""),
            "qty": int(line.get("qty", "").strip() or 1),
            "gl": line.get("gl", "").strip() or items[line["itemcode"].strip()]["gl"],
            "amount": format(amount, "f"),
        }
        for line, amount in zip(raw, amounts, strict=True)
    ]


def _amount(line: dict[str, str], item: dict[str, Any]) -> Decimal:
    """The posted amount, or the stored price times qty when the amount is left out."""
    qty = line.get("qty", "").strip() or "1"
    if not _QTY.match(qty) or int(qty) < 1:
        raise HandoffError(25, f"line {line['n']}: quantity {qty!r} is not a whole number >= 1")
    text = line.get("amount")
    if text is None or text == "":
        if item["price"] is None:
            raise HandoffError(25, f"line {line['n']} has no amount and the item has no price")
        return (item["price"] * int(qty)).quantize(CENT)
    if not _AMOUNT.match(text):  # ",", "$", spaces, letters, more than two decimals
        raise HandoffError(25, f"line {line['n']}: amount {text!r} is not a plain amount")
    return Decimal(text).quantize(CENT)


def _check_unique(raw: list[dict[str, str]], items: dict[str, Any]) -> None:
    seen_codes: set[str] = set()
    for line in raw:  # 704
        code = line["itemcode"].strip()
        if code in seen_codes and items[code]["unique"]:
            raise HandoffError(704, f"line {line['n']}: item {code} may appear only once")
        seen_codes.add(code)
    seen_groups: dict[str, str] = {}
    for line in raw:  # 706
        code = line["itemcode"].strip()
        group = items[code]["exclusive_group"]
        if group is not None and group in seen_groups:
            raise HandoffError(
                706, f"line {line['n']}: {code} and {seen_groups[group]} share group {group}")
        if group is not None:
            seen_groups[group] = code


def _check_refs(config: dict[str, Any], params: dict[str, str], count: int) -> list[dict]:
    """Item-level refs: configured type, existing item, numbered 1..k with no gaps."""
    slots: dict[tuple[int, int], dict[str, str]] = {}
    for name, value in params.items():
        match = _REF_KEY.match(name)
        if match:
            slot, kind, item = int(match.group(1)), match.group(2), int(match.group(3))
            slots.setdefault((item, slot), {})[kind] = value
    allowed = {ref_type.casefold() for ref_type in config["ref_types"]}
    refs = []
    for (item, slot), pair in sorted(slots.items()):
        label = f"ref{slot}type{item}"
        if item > count:
            raise HandoffError(705, f"{label} refers to item {item}, which does not exist")
        if (item, slot - 1) not in slots and slot > 1:
            raise HandoffError(705, f"{label}: references on item {item} must be numbered from 1")
        ref_type = pair.get("type", "").strip()
        if not ref_type:
            raise HandoffError(705, f"{label} is missing")
        if ref_type.casefold() not in allowed:
            raise HandoffError(705, f"{label}: {ref_type!r} is not a reference type of the store")
        refs.append({"item": item, "slot": slot, "type": ref_type, "value": pair.get("val", "")})
    return refs


def _txn_refs(config: dict[str, Any], params: dict[str, str]) -> list[dict[str, str]]:
    """Transaction-level refs use the type name as the parameter name; echoed upper-cased."""
    return [
        {"name": ref_type.upper(), "value": params[ref_type.lower()]}
        for ref_type in config["txn_ref_types"]
        if ref_type.lower() in params
    ]


def _check_limits(config: dict[str, Any], params: dict[str, str], lines: list[dict],
                  refs: list[dict]) -> None:
    limits = config["limits"]
    if len(lines) > limits["items"]:
        raise HandoffError(4, f"{len(lines)} lines; the store accepts at most {limits['items']}")
    for line in lines:
        count = sum(1 for ref in refs if ref["item"] == line["n"])
        if count > limits["refs_per_item"]:
            raise HandoffError(
                705, f"item {line['n']} has {count} references; at most {limits['refs_per_item']}")
    for name, value in params.items():
        if len(value) > limits["value_len"]:
            raise HandoffError(25, f"{name} is longer than {limits['value_len']} characters")
    for line in lines:
        if len(line["desc"]) > limits["desc_len"]:
            raise HandoffError(
                25, f"desc{line['n']} is longer than {limits['desc_len']} characters")
