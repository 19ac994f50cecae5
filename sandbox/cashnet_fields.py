"""The result field set CashNet sends back (docs/cashnet.md#notification-fields,
docs/cashnet.md#sample-notifications, docs/sandbox.md#checkout-page-and-completion) and the faults
that bend it.

The same ordered field list feeds the store notification and the sign-out form; the ref and
amount faults (and the name-shape faults) are applied per target according to `apply_to`.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any
from urllib.parse import quote_plus

from sandbox.cashnet_handoff import CENT, Handoff

# Card outcomes: code -> (respmessage, ccerrormessage). The page offers 7, 209 and 232.
DECLINES = {
    7: ("Invalid or missing expiry date", "Invalid expiry date"),
    209: ("Credit card error", "Declined"),
    211: ("Credit card error", "Card error"),
    222: ("Card processor error", "Processor error"),
    230: ("Host error", "Host error"),
    232: ("Address verification failure", "AVS mismatch"),
    999: ("Unexpected error", "Unexpected error"),
}
PAGE_DECLINE_CODES = (7, 209, 232)
DEFAULT_DECLINE = 209
CANCEL_CODE = 902
CANCEL_MESSAGE = "Customer cancelled before payment was processed"

# Faults that change the field set; the rest act on the wire and only touch the notification.
FIELD_FAULTS = ("ref_slot", "missing_refs", "tamper_amount", "uppercase_names", "omit_itemcnt",
                "typed_fields", "custcode_echo", "amount_format", "tamper_itemcode")

# What a payer types on the card form, echoed beside our own `lname`/`email` under upper-case
# names, as real stores do (`typed_fields: true`).
TYPED_FIELDS = {"LNAME": "Mu\u00f1oz", "EMAIL": "typed.by.payer@example.org"}

Pairs = list[tuple[str, str]]


@dataclass(frozen=True)
class Outcome:
    """What happened at the card form, with the numbers the store counters gave it."""

    kind: str  # pay | decline | cancel
    result: int
    respmessage: str
    batchno: str
    effdate: str
    tx: str | None = None
    failedtx: str | None = None
    ccerror: tuple[int, str] | None = None

    @property
    def success(self) -> bool:
        return self.result == 0


def decline_messages(code: int) -> tuple[str, str]:
    return DECLINES.get(code, ("Transaction declined", "Declined"))


def faults_for(target: str, faults: dict[str, Any]) -> dict[str, Any]:
    """The field faults that apply to `notify` or `signout` (apply_to defaults to both)."""
    apply_to = faults.get("apply_to", "both")
    if apply_to not in ("both", target):
        return {}
    return {key: value for key, value in faults.items() if key in FIELD_FAULTS}


def result_fields(config: dict[str, Any], handoff: Handoff, outcome: Outcome,
                  faults: dict[str, Any]) -> Pairs:
    """Build the fields in the order of the store's `fields` list, then apply field faults."""
    lines = _recoded(_tampered(handoff.lines, faults.get("tamper_amount")),
                     faults.get("tamper_itemcode"))
    refs = [] if faults.get("missing_refs") else _moved(handoff.refs, faults.get("ref_slot"))
    txn_refs = [] if faults.get("missing_refs") else handoff.txn_refs
    pairs: Pairs = []
    for group in config["fields"]:
        pairs.extend(_group(group, config, handoff, outcome, lines, refs, txn_refs))
    if faults.get("omit_itemcnt"):
        pairs = [(name, value) for name, value in pairs if name != "itemcnt"]
    pairs = [(name, _bent(name, value, faults)) for name, value in pairs]
    typed = faults.get("typed_fields")
    if typed:
        pairs += list((TYPED_FIELDS if typed is True else typed).items())
    if faults.get("uppercase_names"):
        pairs = [(name.upper(), value) for name, value in pairs]
    return pairs


def _group(group: str, config: dict[str, Any], handoff: Handoff, outcome: Outcome,
           lines: list[dict], refs: list[dict], txn_refs: list[dict]) -> Pairs:
    """The pairs of one field group; an absent value leaves its field out."""
    simple = {
        "result": str(outcome.result),
        "respmessage": outcome.respmessage,
        "tx": outcome.tx,
        "failedtx": outcome.failedtx,
        "batchno": outcome.batchno,
        "effdate": outcome.effdate,
        "merchant": config["merchant"],
        "station": config["station"],
        "operator": config["operator"],
        # A failed attempt took no payment, so it carries no payment code or type
        # (docs/cashnet.md#sample-notifications).
        "pmtcode": config["pmtcode"] if outcome.success else None,
        "pmttype": config["pmttype"] if outcome.success else None,
        "cctype": config["cctype"] if outcome.success else None,
        "custcode": handoff.get("custcode"),
        "lname": handoff.get("lname"),
        "itemcnt": str(len(lines)),
    }
    if group in simple:
        return [(group, simple[group])] if simple[group] else []
    if group == "lines":
        return _line_pairs(lines, outcome.success)
    if group == "refs":
        return [pair for ref in refs for pair in (
            (f"ref{ref['slot']}type{ref['item']}", ref["type"]),
            (f"ref{ref['slot']}val{ref['item']}", ref["value"]),
        )]
    if group == "txn_refs":
        return [(ref["name"], ref["value"]) for ref in txn_refs]
    if group == "ccerror" and outcome.ccerror:
        return [("ccerrorcode", str(outcome.ccerror[0])), ("ccerrormessage", outcome.ccerror[1])]
    return []


def _line_pairs(lines: list[dict], success: bool) -> Pairs:
    """itemcodeN, amountN; qtyN and glN only on success, as in the sample bodies of
    docs/cashnet.md#sample-notifications."""
    pairs: Pairs = []
    for line in lines:
        n = line["n"]
        pairs += [(f"itemcode{n}", line["itemcode"]), (f"amount{n}", line["amount"])]
        if success:
            pairs.append((f"qty{n}", str(line["qty"])))
            if line["gl"]:
                pairs.append((f"gl{n}", line["gl"]))
    return pairs


def _bent(name: str, value: str, faults: dict[str, Any]) -> str:
    """The custcode echoed in another case or padded, amounts written for a person."""
    echo = faults.get("custcode_echo")
    if name == "custcode" and echo:
        return {"upper": value.upper(), "lower": value.lower(),
                "padded": f"  {value} "}.get(echo) if isinstance(echo, str) else echo["value"]
    style = faults.get("amount_format", "plain")
    if name.startswith("amount") and name[6:].isdigit() and style != "plain":
        amount = Decimal(value)
        text = f"{amount:,.2f}" if "thousands" in style else f"{amount:.2f}"
        return "$" + text if style.startswith("dollar") else text
    return value


def _tampered(lines: list[dict], tamper: dict[str, Any] | None) -> list[dict]:
    """`+1.00`/`-0.50` shift the line's amount; a bare amount replaces it."""
    if not tamper:
        return lines
    changed = [dict(line) for line in lines]
    for line in changed:
        if line["n"] == tamper["line"]:
            text = tamper["amount"]
            delta = Decimal(text)
            amount = Decimal(line["amount"]) + delta if text[0] in "+-" else delta
            line["amount"] = format(amount.quantize(CENT), "f")
    return changed


def _recoded(lines: list[dict], recode: dict[str, Any] | None) -> list[dict]:
    """The line's item code replaced, as a store echoing another item would."""
    if not recode:
        return lines
    return [dict(line, itemcode=recode["code"]) if line["n"] == recode["line"] else line
            for line in lines]


def _moved(refs: list[dict], ref_slot: str | None) -> list[dict]:
    """Move the payment ref (ref1type1/ref1val1) to another slot, swapping with any occupant."""
    if not ref_slot:
        return refs
    slot_text, item_text = ref_slot[3:].split("val")
    target = (int(item_text), int(slot_text))
    moved = []
    for ref in refs:
        where = (ref["item"], ref["slot"])
        if where == (1, 1):
            where = target
        elif where == target:
            where = (1, 1)
        moved.append({**ref, "item": where[0], "slot": where[1]})
    return sorted(moved, key=lambda ref: (ref["item"], ref["slot"]))


def encode_body(pairs: Pairs, faults: dict[str, Any]) -> tuple[bytes, str]:
    """Form-urlencode the pairs (UTF-8, or windows-1252 for `charset: cp1252`)."""
    charset = faults.get("charset", "utf-8")
    text = "&".join(
        f"{quote_plus(name, encoding=charset, errors='replace')}="
        f"{quote_plus(value, encoding=charset, errors='replace')}"
        for name, value in pairs
    )
    if faults.get("leading_ampersand"):
        text = "&" + text
    content_type = "application/x-www-form-urlencoded"
    if charset == "cp1252":
        content_type += "; charset=windows-1252"
    return text.encode("ascii"), content_type
