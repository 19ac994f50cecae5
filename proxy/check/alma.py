"""Alma: the API answers, it accepts the key for the Users API, this machine's clock agrees
with Alma's, and the test patron's fees can be read. Reads only (see readonly.py)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC
from email.utils import parsedate_to_datetime
from urllib.parse import quote, urlsplit

import httpx

from proxy.alma import AlmaClient, AlmaConfigError, AlmaError, AlmaUnavailable, AlmaUserNotFound
from proxy.check import readonly
from proxy.check.readonly import ReadOnlyTransport
from proxy.check.report import Result, fail, ok, warn
from proxy.config import PREFIX, Settings
from proxy.fees import CurrencyMismatch, FeeList, normalise_fees
from proxy.money import format_amount
from proxy.payments import fee_rules
from proxy.runtime import alma_client

# Asked for when no test patron is set: "not found" proves the key is accepted just as well.
PROBE_ID = "patronpay-check-no-such-patron"
MAX_CLOCK_SKEW_SECONDS = 60
REGIONAL_HOSTS = ("api-na, api-eu, api-ap, api-aps, api-ca .hosted.exlibrisgroup.com, or "
                  "api-cn.hosted.exlibrisgroup.com.cn")


@dataclass
class AlmaFindings:
    results: list[Result] = field(default_factory=list)
    fees: FeeList | None = None  # the test patron's fees, when they could be read


async def check_alma(settings: Settings, transport: ReadOnlyTransport,
                     http: httpx.AsyncClient) -> AlmaFindings:
    alma = alma_client(settings, transport)
    try:
        return await _check(settings, alma, transport, http)
    finally:
        await alma.aclose()


async def _check(settings: Settings, alma: AlmaClient, transport: ReadOnlyTransport,
                 http: httpx.AsyncClient) -> AlmaFindings:
    found = AlmaFindings()
    patron = settings.check_patron
    try:
        user = await alma.get_user(patron or PROBE_ID)
    except AlmaUserNotFound:
        user = None
    except AlmaUnavailable as exc:
        found.results.append(_unreachable(settings, exc, transport))
        return found
    except AlmaConfigError as exc:
        found.results += [_answers(settings), await _key_refused(settings, exc, http),
                          _clock(transport)]
        return found
    except AlmaError as exc:
        found.results += [_answers(settings), fail(
            "alma.key", f"Alma answered {exc.code or exc.status}: {exc}",
            "look the code up in Alma's API documentation")]
        return found
    found.results += [_answers(settings), ok(
        "alma.key", "Alma accepts the API key for reading users (paying also needs read/write "
        "on Users, which only a payment could prove)"), _clock(transport)]
    if not patron:
        found.results.append(warn(
            "alma.patron", f"{PREFIX}CHECK_PATRON is not set: reading a patron's fees is not "
            "checked", f"set {PREFIX}CHECK_PATRON to a test patron who has a fee"))
    elif user is None:
        found.results.append(fail(
            "alma.patron", f"Alma has no patron {patron!r}",
            f"check {PREFIX}CHECK_PATRON (a primary id); if it is right, the API key belongs "
            "to another institution"))
    else:
        primary_id = str(user.get("primary_id") or patron)
        result, found.fees = await _patron_fees(settings, alma, primary_id)
        found.results.append(result)
    return found


def _answers(settings: Settings) -> Result:
    return ok("alma.api", f"{settings.alma_api_url} answers")


def _unreachable(settings: Settings, exc: AlmaUnavailable,
                 transport: ReadOnlyTransport) -> Result:
    url = settings.alma_api_url
    if not transport.answers:
        host = urlsplit(url).hostname
        return fail("alma.api", f"{url} cannot be reached ({exc})",
                    f"check {PREFIX}ALMA_API_URL, DNS, and that this machine may connect out "
                    f"to {host}")
    status = transport.answers[-1].status
    if status == 429:
        return fail("alma.api", "Alma is throttling this institution's calls (HTTP 429)",
                    "other integrations use up the shared limit: run the check again later")
    if status >= 500:
        return fail("alma.api", f"Alma answered HTTP {status}",
                    "Alma may be down: see Ex Libris' system status, run the check again later")
    return fail("alma.api", f"{url} answers HTTP {status}, not as the Alma API does",
                f"{PREFIX}ALMA_API_URL is your region's host followed by /almaws/v1")


async def _key_refused(settings: Settings, exc: AlmaConfigError,
                       http: httpx.AsyncClient) -> Result:
    """Name the cause plainly. Alma's answer alone does not tell a key of another region from
    a wrong key, so ask the host for the institution's public key set as well."""
    served = await _institution_served(settings, http)
    if served is False:
        host = urlsplit(settings.alma_api_url).hostname
        return fail("alma.key", f"{host} does not serve institution "
                    f"{settings.primo_institution}: {PREFIX}ALMA_API_URL is another region's "
                    "host", f"use your institution's regional host ({REGIONAL_HOSTS})")
    if exc.code == "Invalid API Key":
        return fail("alma.key", "Alma does not know this API key (Invalid API Key)",
                    "copy the key again from the Developer Network, whole; a key works only "
                    "on its own region's host and in its own environment (production or "
                    "sandbox)")
    return fail("alma.key", f"Alma knows the API key but refuses it for the Users API "
                f"({exc.code})", "in the Developer Network, give the key the Users area with "
                "read/write, in this environment (production and sandbox keys differ)")


async def _institution_served(settings: Settings, http: httpx.AsyncClient) -> bool | None:
    """Whether Alma's host serves the institution's Primo key set (it does only in the
    institution's own region); None when that cannot be asked or told."""
    if not settings.primo_institution:
        return None
    base = settings.alma_api_url
    root = base.removesuffix("/almaws/v1") if base.endswith("/almaws/v1") else \
        "{0.scheme}://{0.netloc}".format(urlsplit(base))
    answer = await readonly.get(http, f"{root}/auth/{quote(settings.primo_institution)}"
                                      "/jwks.json")
    if isinstance(answer, str) or answer.status_code not in (200, 404):
        return None
    return answer.status_code == 200


def _clock(transport: ReadOnlyTransport) -> Result:
    """Signed kiosk requests, Primo tokens and the ledger's times need a right clock."""
    answer = next((a for a in transport.answers if a.dates), None)
    action = ("turn on time synchronisation (timedatectl set-ntp true): kiosks' signed "
              "requests and Primo tokens are refused on a wrong clock")
    if answer is None:
        return warn("alma.clock", "Alma sent no Date header: the clock is not compared", action)
    skews = []
    for date in answer.dates:
        sent = _http_date(date)
        if sent is None:  # name the one that is not a date (a server may send two)
            return warn("alma.clock", f"Alma's Date header is not a date: {date[:80]!r}",
                        action)
        skews.append(sent - answer.received_at)
    skew = max(skews, key=abs)  # should a server send two, the one further off counts
    seconds = round(abs(skew))
    if seconds > MAX_CLOCK_SKEW_SECONDS:
        side = "behind" if skew > 0 else "ahead of"
        return fail("alma.clock", f"this machine's clock is {seconds} s {side} Alma's", action)
    return ok("alma.clock", f"this machine's clock agrees with Alma's (within {seconds} s)")


def _http_date(text: str) -> float | None:
    """A `Date` header as a POSIX time, or None when it is not a date. `-0000` (no zone said)
    is still UTC (RFC 5322), not this machine's local time."""
    try:
        sent = parsedate_to_datetime(text)
        if sent.tzinfo is None:
            sent = sent.replace(tzinfo=UTC)
        return sent.timestamp()
    except (TypeError, ValueError, OverflowError):
        return None


async def _patron_fees(settings: Settings, alma: AlmaClient,
                       patron: str) -> tuple[Result, FeeList | None]:
    try:
        fees = normalise_fees(await alma.list_fees(patron), fee_rules(settings),
                              settings.currency)
    except CurrencyMismatch as exc:
        return fail("alma.patron", str(exc), f"set {PREFIX}CURRENCY to Alma's currency"), None
    except AlmaError as exc:
        return fail("alma.patron", f"{patron}'s fees cannot be read: {exc}",
                    "run the check again; if it persists, look the answer up in Alma's API "
                    "documentation"), None
    payable = fees.payable
    if not payable:
        return warn("alma.patron", f"{patron} has no fee patronpay may take payment for "
                    f"({len(fees.fees)} active)", "give the test patron a payable fee, so "
                    "the check sees one and its item code"), fees
    return ok("alma.patron", f"read {patron}'s fees: {len(fees.fees)} active, {len(payable)} "
              f"payable, {format_amount(fees.payable_total)} {settings.currency}"), fees
