"""CashNet: the checkout URL answers as a store, the notification token and sender allow-list
are sound, and each payable fee seen on the test patron has its item code (by type and library)."""

from __future__ import annotations

import httpx

from proxy.check import readonly
from proxy.check.report import Result, fail, ok, warn
from proxy.checkout import item_code_rule
from proxy.config import PREFIX, Settings
from proxy.fees import FeeList

MIN_TOKEN_LENGTH = 32
# What CashNet's error page says when the store itself is the problem (its result codes).
STORE_ERRORS = {
    "improper merchant code": "CashNet does not know this store (702)",
    "web site disabled": "CashNet has this store disabled (701)",
}
# Not the settings' fault: the store is there but not taking payments for now.
MAINTENANCE = "site down for maintenance"
LATER = "run the check again later; if it persists, ask your campus's Transact contact"


async def check_checkout_url(settings: Settings, http: httpx.AsyncClient) -> Result:
    """A GET with no items: CashNet shows its page (or an error about the items) for a store it
    knows, and says so when it does not know the store."""
    url = settings.cashnet_checkout_url
    answer = await readonly.get(http, url)
    action = f"check {PREFIX}CASHNET_CHECKOUT_URL: the store name comes from CashNet"
    if isinstance(answer, str):
        return fail("cashnet.checkout", f"{url} cannot be reached ({answer})",
                    "check the URL, DNS, and that this machine may connect out to CashNet")
    if answer.status_code >= 500:  # CashNet's own trouble: the URL may well be right
        return fail("cashnet.checkout", f"{url} answers HTTP {answer.status_code}: CashNet's "
                    "checkout is failing", LATER)
    if answer.status_code == 404:
        return fail("cashnet.checkout", f"{url} answers HTTP {answer.status_code}", action)
    page = answer.text.lower()
    for phrase, problem in STORE_ERRORS.items():
        if phrase in page:
            return fail("cashnet.checkout", f"{problem} at {url}", action)
    if MAINTENANCE in page:
        return fail("cashnet.checkout", f"CashNet has this store down for maintenance (703) "
                    f"at {url}", LATER)
    return ok("cashnet.checkout", f"{url} answers (HTTP {answer.status_code})")


def check_token(settings: Settings) -> Result:
    token = settings.cashnet_postback_token
    if len(token) < MIN_TOKEN_LENGTH:  # start-up refuses these too; kept for completeness
        return fail("cashnet.token", f"the notification token has {len(token)} characters",
                    f"set {PREFIX}CASHNET_POSTBACK_TOKEN to 32+ random URL-safe characters")
    if settings.cashnet_postback_token_previous:
        return warn("cashnet.token", "the previous notification token is still accepted",
                    f"remove {PREFIX}CASHNET_POSTBACK_TOKEN_PREVIOUS once CashNet's store "
                    "sends the new one")
    return ok("cashnet.token", f"the notification token has {len(token)} characters")


def check_allowed_senders(settings: Settings) -> Result:
    networks = settings.cashnet_allowed_ips
    if not networks:
        return warn("cashnet.senders", "notifications are accepted from any address (the URL "
                    "token is the only guard)", f"set {PREFIX}CASHNET_ALLOWED_IPS to the "
                    "sender addresses CashNet gives you")
    everyone = [str(net) for net in networks if net.prefixlen == 0]
    if everyone:
        return fail("cashnet.senders", f"the sender allow-list includes {everyone[0]}, which "
                    "is everyone", f"list only CashNet's senders in {PREFIX}CASHNET_ALLOWED_IPS")
    return ok("cashnet.senders", "notifications are accepted only from "
              + ", ".join(str(net) for net in networks))


def check_item_codes(settings: Settings, fees: FeeList | None) -> list[Result]:
    """Fees without a rule of their own go to the default item code: right for a library that
    books every fee alike, an oversight for one that lists codes per type or library. Each fee
    is resolved as a checkout would (its type and owning library)."""
    seen = sorted({(fee.type_code.upper(), fee.library_code.upper())
                   for fee in fees.payable}) if fees else []
    if not seen:
        return []  # nothing seen: alma.patron says why
    codes = settings.cashnet_item_codes
    default = settings.cashnet_item_code
    if not codes:
        return [ok("cashnet.item_codes", f"every fee type goes to item code {default}")]
    rules = {(fee_type, library): item_code_rule(codes, fee_type, library)
             for fee_type, library in seen}
    missing = _uncovered(rules)
    if missing:
        return [warn("cashnet.item_codes", f"{', '.join(missing)} (seen on the test patron) "
                     f"would go to the default item code {default}", f"add TYPE=CODE (or "
                     f"LIBRARY/TYPE=CODE, LIBRARY/*=CODE) to {PREFIX}CASHNET_ITEM_CODES if the "
                     "bursar books them apart")]
    covered = dict.fromkeys(f"{fee_type}={codes[key]}" + ("" if key == fee_type else f" ({key})")
                            for (fee_type, _), key in rules.items() if key is not None)
    return [ok("cashnet.item_codes", ", ".join(covered))]


def _uncovered(rules: dict[tuple[str, str], str | None]) -> list[str]:
    """The fee types that fall to the default; "TYPE at LIBRARY" when a rule covers the same
    type elsewhere, so the gap is where it is."""
    missing = []
    for fee_type in sorted({fee_type for fee_type, _ in rules}):
        places = {library: key for (t, library), key in rules.items() if t == fee_type}
        uncovered = sorted(library for library, key in places.items() if key is None)
        if not uncovered:
            continue
        if len(uncovered) == len(places):
            missing.append(fee_type)
        else:
            missing.append(f"{fee_type} at {', '.join(lib or '(no library)' for lib in uncovered)}")
    return missing
