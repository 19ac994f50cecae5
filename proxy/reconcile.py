"""Reconciliation: does Alma show exactly what the ledger says? (`patronpay reconcile`)

For the payments created in a window, read the fees of their patrons from Alma (LIST ACTIVE,
LIST CLOSED, and FEE for any fee of ours in neither) and compare, per payment and fee, the
PAYMENT transactions carrying the payment's CashNet transaction number with what the ledger
posted. Alma is the reconciliation key's keeper: the number travels as
`external_transaction_id` (docs/alma.md#posting-exactly-once). Report only: nothing is changed.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal

from proxy.alma import AlmaClient, AlmaError, AlmaFeeNotFound
from proxy.fees import Fee, FeeRules, normalise_fee
from proxy.ledger import Ledger, PaymentRecord
from proxy.money import ZERO, format_amount
from proxy.states import OPEN_ALLOCATIONS, UNSETTLED, AllocationState, EventKind, PaymentState
from proxy.terminal import iso, printable, shorten, table, when

# Statuses, in the order the summary lists them; all but the FINE ones need staff.
STATUSES = ("ok", "posting", "resolved", "attention", "review", "mismatch", "unreadable",
            "check_cashnet")
FINE = ("ok", "posting", "resolved")
LISTED = ("ACTIVE", "CLOSED")
PATRONS_AT_ONCE = 4  # fee statuses read with LIST; others are read fee by fee


@dataclass(frozen=True)
class FeeCheck:
    """One fee of one payment: what the ledger posted, what Alma holds with the tx."""

    fee_id: str
    ledger: Decimal
    ledger_count: int
    alma: Decimal
    alma_count: int
    in_progress: bool

    def to_json(self) -> dict:
        return {"fee_id": self.fee_id, "ledger": format_amount(self.ledger),
                "ledger_postings": self.ledger_count, "alma": format_amount(self.alma),
                "alma_transactions": self.alma_count, "in_progress": self.in_progress}


@dataclass
class Finding:
    payment: PaymentRecord
    status: str
    fees: list[FeeCheck] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    advice: list[str] = field(default_factory=list)

    @property
    def alma_total(self) -> Decimal:
        return sum((f.alma for f in self.fees), ZERO)

    def to_json(self) -> dict:
        p = self.payment
        return {"id": p.id, "patron_id": p.patron_id, "cashnet_tx": p.cashnet_tx,
                "created_at": iso(p.created_at), "state": p.state,
                "amount": format_amount(p.amount), "ledger_applied": format_amount(p.applied),
                "alma_total": format_amount(self.alma_total), "status": self.status,
                "fees": [f.to_json() for f in self.fees], "problems": self.problems,
                "advice": self.advice}


@dataclass
class Report:
    since: float | None
    until: float | None
    findings: list[Finding]
    patrons: int
    alma_calls: int

    def counts(self) -> dict[str, int]:
        return {s: n for s in STATUSES
                if (n := sum(1 for f in self.findings if f.status == s))}

    @property
    def needs_staff(self) -> bool:
        return any(f.status not in FINE for f in self.findings)

    def to_json(self) -> dict:
        return {"since": iso(self.since), "until": iso(self.until), "patrons": self.patrons,
                "alma_calls": self.alma_calls, "counts": self.counts(),
                "needs_staff": self.needs_staff,
                "payments": [f.to_json() for f in self.findings]}


# --- reading Alma ---


async def patron_fees(alma: AlmaClient, patron_id: str, wanted: set[str]) -> dict[str, Fee]:
    """Every fee of the patron we can see (ACTIVE and CLOSED), plus each wanted fee by id
    (it may be in another status, or gone: then it is absent). Raises AlmaError."""
    rules = FeeRules()
    fees: dict[str, Fee] = {}
    for status in LISTED:
        raw = await alma.list_fees(patron_id, status)
        for item in raw.get("fee") or []:
            fee = normalise_fee(item, rules)
            if fee is None:
                raise AlmaError(f"fee {item.get('id')} has amounts that are not exact cents")
            fees[fee.id] = fee
    for fee_id in sorted(wanted - set(fees)):
        try:
            fee = normalise_fee(await alma.get_fee(patron_id, fee_id), rules)
        except AlmaFeeNotFound:
            continue
        if fee is None:
            raise AlmaError(f"fee {fee_id} has amounts that are not exact cents")
        fees[fee.id] = fee
    return fees


# --- comparing ---


def compare(payment: PaymentRecord, fees: dict[str, Fee]) -> Finding:
    """One payment with a CashNet transaction against the patron's fees in Alma."""
    tx = payment.cashnet_tx or ""
    posted: dict[str, Decimal] = defaultdict(lambda: ZERO)
    postings: dict[str, int] = defaultdict(int)
    open_fees = set()
    for a in payment.allocations:
        if a.state == AllocationState.POSTED and a.amount > 0:
            posted[a.fee_id] += a.amount
            postings[a.fee_id] += 1
        if a.state in OPEN_ALLOCATIONS:
            open_fees.add(a.fee_id)
    in_alma = {fee.id: (fee.paid_with(tx), sum(1 for x in fee.payments
                                                if x.external_transaction_id == tx))
               for fee in fees.values()}
    # The payment's own fees in allocation order, then any other fee carrying the tx.
    ours = [f for f in dict.fromkeys(a.fee_id for a in payment.allocations)
            if f in posted or f in open_fees]
    fee_ids = ours + sorted(f for f, (_, n) in in_alma.items() if n and f not in ours)
    finding = Finding(payment, "ok")
    for fee_id in fee_ids:
        alma_amount, alma_count = in_alma.get(fee_id, (ZERO, 0))
        check = FeeCheck(fee_id, posted[fee_id], postings[fee_id], alma_amount, alma_count,
                         fee_id in open_fees)
        finding.fees.append(check)
        if not check.in_progress:
            _judge(finding, check, fee_id in fees)
    finding.status = _status(finding)
    return finding


def _judge(finding: Finding, check: FeeCheck, fee_seen: bool) -> None:
    """Record the problem with one fee, if any, and what staff should do about it."""
    p, tx, fee = finding.payment, finding.payment.cashnet_tx, check.fee_id
    if check.alma == check.ledger and check.alma_count <= check.ledger_count:
        return
    shows = (f"Alma shows {format_amount(check.alma)} in {check.alma_count} PAYMENT "
             f"transaction(s) carrying {tx} on fee {fee}; patronpay posted "
             f"{format_amount(check.ledger)} in {check.ledger_count}")
    if not fee_seen and check.ledger > 0:
        finding.problems.append(f"fee {fee} is gone from Alma; patronpay posted "
                                f"{format_amount(check.ledger)} to it")
        finding.advice.append(f"Find out who deleted fee {fee} in Alma; the patron paid "
                              f"{format_amount(check.ledger)} for it (CashNet {tx}).")
        return
    finding.problems.append(shows)
    extra = check.alma - check.ledger
    if extra > 0 and p.state == PaymentState.ATTENTION and p.unapplied >= extra:
        finding.advice.append(
            f"Alma already has {format_amount(extra)} on fee {fee} that patronpay holds as "
            f"not applied: `patronpay payments retry {p.id}` finds it in Alma and records it.")
    elif extra > 0 and check.alma_count > check.ledger_count > 0:
        finding.advice.append(
            f"Posted more than once: reverse the extra {format_amount(extra)} on fee {fee} in "
            f"Alma (the PAYMENT transactions carrying {tx}), so the patron is not credited "
            "twice.")
    elif extra > 0:
        finding.advice.append(
            f"Alma has {format_amount(extra)} more on fee {fee} than patronpay posted (posted "
            "by hand?): check the fee's transactions in Alma and reverse what does not belong.")
    elif extra < 0:
        finding.advice.append(
            f"patronpay posted {format_amount(-extra)} to fee {fee} that Alma does not show "
            "(reversed or deleted in Alma?): if the payment stands, pay "
            f"{format_amount(-extra)} on fee {fee} in Alma with external transaction id {tx}.")
    else:
        finding.advice.append(
            f"The amounts agree but Alma splits them into {check.alma_count} transactions on "
            f"fee {fee}: check the fee's transactions in Alma.")


def _status(finding: Finding) -> str:
    p = finding.payment
    if p.review:
        finding.advice.append(f"Flagged for review: {p.review} (then `patronpay payments "
                              f"resolve {p.id} --note '...'`)")
    if p.state == PaymentState.RESOLVED:
        return "resolved"  # staff settled it by hand; differences are theirs, shown as found
    if finding.problems:
        return "mismatch"
    if p.review:
        return "review"
    if p.state == PaymentState.ATTENTION:
        finding.advice.append(f"{p.reason} (see `patronpay payments show {p.id}`)")
        return "attention"
    return "posting" if p.state == PaymentState.PAID else "ok"


def no_notice(payment: PaymentRecord) -> Finding:
    """A payment CashNet never confirmed although the patron's browser said it did."""
    return Finding(payment, "check_cashnet", problems=[
        "the patron's browser returned from CashNet with success, but no CashNet "
        "notification arrived"], advice=[
        f"Look the payment up in CashNet (reference {payment.id}). If CashNet took the money, "
        "have Transact re-send the store notification (patronpay then posts it to Alma), or "
        "pay the fees in Alma by hand with its transaction number and refund or record it; "
        "if not, nothing is owed."])


def to_check(ledger: Ledger, payments: Sequence[PaymentRecord]) -> list[PaymentRecord]:
    """Payments with money taken, and unsettled ones a returning browser claimed paid."""
    def claimed(p: PaymentRecord) -> bool:
        return p.state in UNSETTLED and any(e["kind"] == EventKind.RETURN_CLAIMS_SUCCESS
                                            for e in ledger.events(p.id))

    return [p for p in payments if p.cashnet_tx or claimed(p)]


async def reconcile(ledger: Ledger, alma: AlmaClient, *, since: float | None,
                    until: float | None) -> Report:
    """Compare the window's payments with Alma. Reads Alma; writes nothing anywhere."""
    payments = to_check(ledger, ledger.find_payments(since=since, until=until, limit=None))
    by_patron: dict[str, list[PaymentRecord]] = defaultdict(list)
    for p in payments:
        by_patron[p.patron_id].append(p)
    calls_before = alma.calls
    findings: list[Finding] = []
    # A few patrons at a time: Alma answers in parallel, the client keeps to its rate limit.
    gate = asyncio.Semaphore(PATRONS_AT_ONCE)

    async def one_patron(patron_id: str, mine: list[PaymentRecord]) -> None:
        with_tx = [p for p in mine if p.cashnet_tx]
        fees: dict[str, Fee] = {}
        error = ""
        if with_tx:
            wanted = {a.fee_id for p in with_tx for a in p.allocations}
            try:
                async with gate:
                    fees = await patron_fees(alma, patron_id, wanted)
            except AlmaError as exc:
                error = str(exc) or type(exc).__name__
        for p in mine:
            if not p.cashnet_tx:
                findings.append(no_notice(p))
            elif error:
                findings.append(Finding(p, "unreadable", problems=[
                    f"Alma could not be read for {patron_id}: {error}"], advice=[
                    "Run the reconciliation again later."]))
            else:
                findings.append(compare(p, fees))

    await asyncio.gather(*(one_patron(patron_id, mine) for patron_id, mine in
                           sorted(by_patron.items())))
    findings.sort(key=lambda f: (f.payment.created_at, f.payment.id))
    return Report(since, until, findings, len(by_patron), alma.calls - calls_before)


# --- output ---


def render(report: Report) -> str:
    span = f"{_day(report.since)} to {_day(report.until, end=True)}"
    lines = [f"Reconciliation of payments created {span} (UTC)",
             f"{len(report.findings)} payment(s) of {report.patrons} patron(s) checked against "
             f"Alma ({report.alma_calls} Alma calls)."]
    if not report.findings:
        return "\n".join(lines)
    rows = [[when(f.payment.created_at), f.payment.id, f.payment.patron_id,
             f.payment.cashnet_tx or "-", f.payment.state, format_amount(f.payment.amount),
             format_amount(f.payment.applied), format_amount(f.alma_total), f.status]
            for f in report.findings]
    lines += ["", table(["CREATED (UTC)", "PAYMENT", "PATRON", "CASHNET TX", "STATE", "AMOUNT",
                         "POSTED", "IN ALMA", "RESULT"], rows, right=[5, 6, 7])]
    lines += ["", ", ".join(f"{status} {n}" for status, n in report.counts().items())]
    staff = [f for f in report.findings if f.status not in FINE]
    if staff:
        lines += ["", "Needs staff:"]
        for f in staff:
            p = f.payment
            lines.append(f"- {p.id} ({printable(p.patron_id)}, CashNet "
                         f"{printable(p.cashnet_tx or '-')}): {f.status}")
            lines += [f"    {shorten(problem, 400)}" for problem in f.problems]
            lines += [f"    what to do: {shorten(advice, 400)}" for advice in f.advice]
    return "\n".join(lines)


def _day(moment: float | None, end: bool = False) -> str:
    if moment is None:
        return "now" if end else "the beginning"
    return when(moment - 1 if end else moment)[:10]
