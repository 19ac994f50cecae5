"""Starting a payment: re-read the patron's fees from Alma (amounts from the browser are never
trusted), check the choice, allocate, freeze the CashNet lines and write a pending payment."""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from proxy.allocation import allocate, choose_amount, choose_fees
from proxy.alma import AlmaClient
from proxy.checkout import (
    CUSTCODE_NONE,
    CUSTCODE_PRIMARY_ID,
    Checkout,
    Payer,
    build_checkout,
    build_lines,
    custcode_for,
    line_libraries,
)
from proxy.config import Settings
from proxy.credits import credit_taken_off
from proxy.fees import EXPORTED, FeeList, FeeRules, normalise_fees
from proxy.in_progress import hold_rules
from proxy.ledger import Ledger, LineRecord, PaymentRecord
from proxy.money import ZERO
from proxy.patrons import Patron


def fee_rules(settings: Settings) -> FeeRules:
    return FeeRules.from_lists(settings.payable_fee_types, settings.payable_libraries,
                               settings.institution_code)


async def read_fees(alma: AlmaClient, settings: Settings, patron_id: str) -> FeeList:
    """The patron's ACTIVE fees, normalised; raises the Alma client's errors."""
    return normalise_fees(await alma.list_fees(patron_id), fee_rules(settings),
                          settings.currency)


async def read_fees_page(alma: AlmaClient, settings: Settings, patron_id: str) -> FeeList:
    """What the fees page shows: the ACTIVE fees and, when `PATRONPAY_SHOW_EXPORTED_FEES` is
    on, the fees Alma has sent to the bursar (one more LIST)."""
    fees = await read_fees(alma, settings, patron_id)
    if not settings.show_exported_fees:
        return fees
    billed = normalise_fees(await alma.list_fees(patron_id, EXPORTED), fee_rules(settings),
                            settings.currency)
    return fees.with_billed(billed)


def new_payment_id() -> str:
    """128 random bits as 32 hex characters: unguessable, ASCII, safe in any CashNet field."""
    return secrets.token_hex(16)


@dataclass(frozen=True)
class StartedPayment:
    payment: PaymentRecord
    checkout: Checkout


async def start_payment(
    *,
    alma: AlmaClient,
    ledger: Ledger,
    settings: Settings,
    patron: Patron,
    channel: str,
    session_id: str,
    fee_ids: object,
    amount: object,
    fees: FeeList | None = None,
) -> StartedPayment:
    """Raises PaymentRequestError (the patron's choice), TooManyLines, PaymentInProgress (the
    choice overlaps a payment in progress, or too many are open), or Alma errors."""
    # `fees`: the list the patron's page was drawn from, when the caller kept it (a few
    # seconds old at most); the posting worker reads each fee again before paying.
    if fees is None:
        fees = await read_fees(alma, settings, patron.primary_id)
    chosen = choose_fees(fees, fee_ids)
    chosen_total = sum((fee.balance for fee in chosen), ZERO)
    credit = credit_taken_off(settings.credit_policy, fees.credit_total, chosen_total)
    total = choose_amount(chosen, amount, settings.min_payment, credit)
    allocations = allocate(chosen, total)
    labels = {fee.type_code: fee.type_label for fee in chosen}
    owners = {fee.id: fee.library_code for fee in chosen}
    lines = build_lines(allocations, settings.item_code_for, labels, settings.cashnet_max_lines,
                        owners, settings.cashnet_gl_codes)
    user = None
    if settings.cashnet_custcode not in (CUSTCODE_PRIMARY_ID, CUSTCODE_NONE):
        user = await alma.get_user(patron.primary_id)  # the session keeps no campus id
    custcode = custcode_for(settings.cashnet_custcode, patron.primary_id, user)
    payment_id = new_payment_id()
    payer = Payer(patron.primary_id, patron.first_name, patron.last_name, patron.email)
    checkout = build_checkout(
        action=settings.cashnet_checkout_url,
        payment_id=payment_id,
        lines=lines,
        payer=payer,
        # A kiosk's return says so: if the payment cannot be found, the kiosk still goes home.
        return_url=settings.public_url + "/cashnet/return"
        + ("?kiosk=1" if channel.startswith("kiosk:") else ""),
        ref_type=settings.cashnet_ref_type,
        txn_ref_name=settings.cashnet_txn_ref_name,
        custcode=custcode,
    )
    payment = ledger.start_payment(
        rules=hold_rules(settings),
        payment_id=payment_id,
        patron_id=patron.primary_id,
        patron_name=patron.name,
        channel=channel,
        session_id=session_id,
        amount=total,
        currency=settings.currency,
        custcode=custcode,
        lines=[LineRecord(line.number, line.item_code, line.amount, line.description)
               for line in lines],
        allocations=[(a.fee_id, a.fee_type, labels.get(a.fee_type, a.fee_type), a.amount)
                     for a in allocations],
        checkout=checkout.to_json() | {"line_libraries": line_libraries(lines)},
    )
    return StartedPayment(payment, checkout)
