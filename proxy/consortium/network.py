"""Fees owed at sister institutions (docs/consortium.md#fees-at-sister-institutions).

Where two institutions both allow it (`pay_network_fees`), a patron signed in at one also sees
what they owe at the other, read from that institution's own Alma under the same user id, and
grouped by institution. Paying them happens at that institution, through its own app: a
hand-off, signed with the other institution's keys, good for a minute and for one use, opens
a session there for the same user id (read from that institution's Alma, as any sign-in),
and from then on it is that institution's fees page, its CashNet store and its Alma.

These routes live below each institution (`/<code>/consortium/...`) in a small app of their own
whose state holds that institution's services, so the web layer's session helpers work as they
do in the institution's own app.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, RedirectResponse, Response
from starlette.routing import Route

from proxy.alma_errors import AlmaError, AlmaUserNotFound
from proxy.app import request_guards
from proxy.consortium.institutions import Institution
from proxy.money import format_amount
from proxy.payments import read_fees
from proxy.runtime import Services
from proxy.signin.common import keep_sign_in_pace, read_patron, start_session
from proxy.spent_tokens import SpentTokens
from proxy.web.api import keep_pace
from proxy.web.common import redirect_with_error, require_session
from proxy.web.errors import EXCEPTION_HANDLERS, ApiError
from proxy.web.responses import JSONResponse

log = logging.getLogger("patronpay.consortium")

HANDOFF_SECONDS = 60
HANDOFF_SALT = "patronpay consortium hand-off"
SIGN_IN_METHOD = "network"  # what the session says about how it began
SCRIPT = Path(__file__).with_name("network.js")


@dataclass(frozen=True)
class Member:
    institution: Institution
    services: Services


class Network:
    """The institutions of one consortium that allow fees to be paid across them."""

    def __init__(self, members: dict[str, Member],
                 clock: Callable[[], float] | None = None) -> None:
        self.members = members
        self.clock = clock

    def open_to(self, code: str) -> bool:
        member = self.members.get(code)
        return member is not None and member.institution.pay_network_fees

    def sisters(self, code: str) -> list[Member]:
        """The other institutions a patron of `code` may see and pay fees at."""
        if not self.open_to(code):
            return []
        return [m for c, m in self.members.items() if c != code and self.open_to(c)]

    def signer(self, code: str) -> URLSafeTimedSerializer:
        keys = self.members[code].institution.settings.secret_keys
        return URLSafeTimedSerializer(list(reversed(keys)), salt=HANDOFF_SALT)


def network_app(network: Network, code: str) -> Starlette:
    """The routes below `/<code>/consortium/` (besides its stylesheet)."""
    member = network.members[code]
    app = Starlette(routes=[
        Route("/consortium/network-fees", _bound(network_fees, network, code), methods=["GET"]),
        Route("/consortium/handoff/{to}", _bound(handoff, network, code), methods=["POST"]),
        Route("/consortium/enter", _bound(enter, network, code), methods=["GET"]),
        Route("/consortium/network.js", script, methods=["GET"]),
    ], exception_handlers=EXCEPTION_HANDLERS,
        # The guards of every institution app (access log, security headers, body limit,
        # origin check): these routes answer a patron's browser too.
        middleware=[request_guards(member.services.settings)])
    app.state.services = member.services
    return app


def _bound(handler, network: Network, code: str):
    async def endpoint(request: Request) -> Response:
        return await handler(request, network, code)
    return endpoint


async def network_fees(request: Request, network: Network, code: str) -> Response:
    """What the signed-in patron owes at each sister institution that knows them."""
    session = require_session(request)
    if not network.open_to(code):
        raise ApiError(404, "not_found", "Fees at other libraries are not shown here.")
    # Each answer reads every sister's Alma: the same session and patron buckets as the fees
    # page (docs/security.md#rate-limits), so reloading it cannot burn the sisters' quota.
    keep_pace(request, session)
    patron_id = session.patron.primary_id
    # All at once: a slow Alma at one sister delays only this list, by its own timeout.
    entries = await asyncio.gather(*(_fees_at(s, patron_id) for s in network.sisters(code)))
    found = [entry for entry in entries if entry is not None]
    return JSONResponse({"institutions": found}, headers={"Cache-Control": "no-store"})


async def _fees_at(sister: Member, patron_id: str) -> dict | None:
    """The patron's payable fees at `sister`; None when that institution does not know them or
    they owe nothing there. An Alma that cannot answer now is said so, not hidden."""
    institution, services = sister.institution, sister.services
    base = {"code": institution.code, "name": institution.name,
            "currency": institution.settings.currency}
    try:
        fees = await read_fees(services.alma, institution.settings, patron_id)
    except AlmaUserNotFound:
        return None  # not their patron: nothing to show, and nothing said about it
    except AlmaError:
        log.warning("sister institution's fees unavailable", extra={
            "event": "network_fees_unavailable", "institution": institution.code})
        return base | {"available": False, "fees": [], "payable_total": "0.00"}
    payable = fees.payable
    if not payable:
        return None
    return base | {"available": True, "payable_total": format_amount(fees.payable_total),
                   "fees": [fee.to_json() for fee in payable]}


async def handoff(request: Request, network: Network, code: str) -> Response:
    """A signed, one-use, minute-long way into sister institution `to` for this patron."""
    session = require_session(request)  # a POST: its CSRF token too
    to = request.path_params["to"]
    if to == code or to not in {m.institution.code for m in network.sisters(code)}:
        raise ApiError(404, "not_found", "Fees there cannot be paid from here.")
    token = network.signer(to).dumps({"u": session.patron.primary_id, "from": code,
                                      "to": to, "n": secrets.token_urlsafe(16)})
    target = network.members[to].institution.settings.public_url
    # No patron id: the sister's `signed_in` line names who arrived (docs/security.md#logs).
    log.info("hand-off to a sister institution", extra={
        "event": "network_handoff", "institution": code, "to": to})
    return JSONResponse({"url": f"{target}/consortium/enter?t={token}"},
                        headers={"Cache-Control": "no-store"})


async def enter(request: Request, network: Network, code: str) -> Response:
    """The hand-off arrives: a session here for the same user id, then this fees page."""
    try:
        claims = network.signer(code).loads(request.query_params.get("t", ""),
                                            max_age=HANDOFF_SECONDS)
    except SignatureExpired:
        return redirect_with_error("handoff_expired")
    except BadSignature:
        return redirect_with_error("handoff_invalid")
    if not isinstance(claims, dict) or claims.get("to") != code or \
            code not in {m.institution.code for m in network.sisters(str(claims.get("from")))}:
        return redirect_with_error("handoff_invalid")
    services = network.members[code].services
    # As for a Primo token (proxy/signin/primo.py, which says why): signature and age first,
    # a used hand-off refused by a read, the user's sign-in pace, and only then the hand-off
    # spent, so one refused for pace still works within its minute once the bucket refills.
    spent, token_id = SpentTokens(services.db, services.ledger.clock), f"handoff:{claims.get('n')}"
    user_id = str(claims.get("u"))
    if spent.is_spent(token_id):
        return redirect_with_error("handoff_used")
    try:
        keep_sign_in_pace(request, user_id)
    except ApiError as exc:
        return redirect_with_error(exc.code)
    if not spent.spend(token_id, services.ledger.clock() + 2 * HANDOFF_SECONDS):
        return redirect_with_error("handoff_used")
    try:
        patron = await read_patron(request, user_id)
    except ApiError as exc:
        return redirect_with_error(exc.code)
    return start_session(request, patron, SIGN_IN_METHOD, RedirectResponse("/", status_code=303))


async def script(request: Request) -> Response:
    return FileResponse(SCRIPT, media_type="text/javascript",
                        headers={"Cache-Control": "no-cache"})
