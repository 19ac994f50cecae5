"""The kiosk API: a kiosk agent opens and ends a patron session for a scanned card.

Every request under `/api/kiosk/`, and every request that carries `X-Kiosk-*` headers, is
checked by `check_signature` (called by RequestGuards, proxy/web/security.py) before any route
sees it (proxy/kiosk_auth.py does the checking).
A request that passes carries the kiosk's id in its scope; the session guard in
proxy/web/common.py lets a `kiosk:<id>` session be used only with that kiosk's signature.
"""

from __future__ import annotations

import logging
import time
from urllib.parse import quote

from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import Message, Receive, Scope, Send

from proxy import kiosk_auth, kiosk_fleet
from proxy.alma import AlmaError, AlmaUserNotFound
from proxy.kiosk_fees import CardFees
from proxy.logs import redact_path
from proxy.patron_sessions import iso_time
from proxy.patrons import patron_from_alma
from proxy.rate_limit import retry_after
from proxy.states import EventKind
from proxy.web.common import alma_failure, current_session, read_json_object, services
from proxy.web.errors import ApiError, error_response
from proxy.web.responses import JSONResponse
from proxy.web.security import client_address

log = logging.getLogger("patronpay.kiosk")

MAX_CREDENTIAL_LENGTH = 255
MAX_KIND_LENGTH = 64
NOT_RECOGNISED = "Card not recognised, please see staff."


async def check_signature(scope: Scope, receive: Receive, send: Send) -> Receive | None:
    """Verify a kiosk request's signature before routing (RequestGuards in
    proxy/web/security.py calls this for every path under /api/kiosk/ and every request with
    `X-Kiosk-*` headers). Needs the whole body (it is signed), so it reads it here: returns the
    receive that hands it on unchanged, or None when the request was refused here or its client
    went away before sending its body. The body limit, outside this, bounds its size."""
    body, receive = await _buffer_body(receive)
    if body is None:  # the client went away before sending its body
        return None
    svc = scope["app"].state.services
    settings = svc.settings
    try:
        kiosk_id = kiosk_auth.verify_request(
            keys=settings.kiosk_keys, headers=Headers(scope=scope), method=scope["method"],
            path_with_query=_path_with_query(scope), body=body, db=svc.db,
            now=time.time(), max_skew=settings.kiosk_max_skew_seconds)
    except kiosk_auth.KioskAuthError as exc:
        log.warning("kiosk request refused", extra={
            "event": "kiosk_refused", "reason": exc.reason, "kiosk_id": exc.kiosk_id,
            "method": scope["method"], "path": redact_path(scope["path"]),
            "peer": client_address(scope, settings.trusted_proxies)})
        await error_response(401, exc.code, exc.message)(scope, receive, send)
        return None
    kiosk_auth.mark_verified(scope, kiosk_id)
    return receive


async def _buffer_body(receive: Receive) -> tuple[bytes | None, Receive]:
    chunks = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return None, receive
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    body = b"".join(chunks)
    replayed = False

    async def replay() -> Message:
        nonlocal replayed
        if not replayed:
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return body, replay


def _path_with_query(scope: Scope) -> str:
    """The path as the client sent it (still percent-encoded), and its query if any."""
    raw = scope.get("raw_path")
    path = raw.decode("latin-1") if raw else quote(scope["path"])
    query = scope.get("query_string", b"").decode("latin-1")
    return f"{path}?{query}" if query else path


def require_kiosk(request: Request) -> str:
    kiosk_id = kiosk_auth.verified_kiosk(request.scope)
    if kiosk_id is None:  # check_signature runs on every /api/kiosk/ path; this is a backstop
        raise ApiError(401, "kiosk_unauthorized", "This kiosk request could not be "
                       "authenticated.")
    return kiosk_id


def _credential(body: dict) -> tuple[str, str]:
    unknown = sorted(set(body) - {"credential"})
    if unknown:
        raise ApiError(400, "unknown_field", f"Unknown field: {unknown[0]}.", unknown[0])
    credential = body.get("credential")
    if not isinstance(credential, dict) or set(credential) - {"kind", "value"}:
        raise ApiError(422, "invalid_credential", "credential must be {kind, value}.",
                       "credential")
    kind, value = credential.get("kind"), credential.get("value")
    if not isinstance(kind, str) or not 0 < len(kind) <= MAX_KIND_LENGTH:
        raise ApiError(422, "invalid_credential", "credential.kind must be a short text.",
                       "credential")
    if (not isinstance(value, str) or not 0 < len(value) <= MAX_CREDENTIAL_LENGTH
            or not value.isascii() or not value.isprintable()):
        raise ApiError(422, "invalid_credential", "credential.value must be printable ASCII.",
                       "credential")
    return kind, value


async def open_session(request: Request) -> Response:
    """A kiosk read a card: find the patron in Alma and start a session on the kiosk's channel.
    The card number goes to Alma only; it is never logged or stored. Too many unknown cards
    pause the kiosk's lookups (docs/security.md#kiosk-card-lookups)."""
    kiosk_id = require_kiosk(request)
    kind, value = _credential(await read_json_object(request))
    svc = services(request)
    paused = svc.kiosk_lookups.paused_for(kiosk_id)
    if paused > 0:
        seconds = retry_after(paused)
        raise ApiError(429, "kiosk_cooling_down", f"Too many cards were not recognised at this "
                       f"kiosk. Card lookups resume in {seconds} seconds.",
                       headers={"Retry-After": seconds})
    id_type = svc.settings.kiosk_user_id_type
    # The card's fees are read beside USER (one Alma round trip, not two), and kept for the
    # page only once USER says whose card it is (proxy/kiosk_fees.py).
    with CardFees(svc, value, id_type) as card_fees:
        try:
            user = await svc.alma.get_user(value, id_type)
        except AlmaUserNotFound:
            log.info("kiosk card not recognised", extra={"event": "kiosk_card_unknown",
                                                         "kiosk_id": kiosk_id, "kind": kind})
            if svc.kiosk_lookups.failed(kiosk_id):
                _cooling_down(request, kiosk_id)
            raise ApiError(404, "card_not_recognised", NOT_RECOGNISED) from None
        except AlmaError as exc:
            raise alma_failure(exc) from None
        patron = patron_from_alma(user)
        card_fees.keep_for(patron.primary_id)
    channel = kiosk_auth.channel_for(kiosk_id)
    kiosk_auth.end_open_sessions(svc.db, channel, svc.sessions.clock())
    session, cookie = svc.sessions.create(patron, "kiosk", channel)
    # No patron id: which patron used which kiosk when is theirs; the session row has it.
    log.info("kiosk session opened", extra={"event": "kiosk_session_opened",
                                            "kiosk_id": kiosk_id, "kind": kind})
    return JSONResponse({
        "session": cookie,
        "csrf_token": session.csrf_token,
        "patron": {"first_name": patron.first_name},
        "expires_at": iso_time(session.expires_at),
    }, status_code=201)


def _cooling_down(request: Request, kiosk_id: str) -> None:
    """The kiosk's lookups pause: a WARNING line now, and a ledger event (no payment) that the
    staff alerts pick up like any other."""
    svc = services(request)
    detail = {"kiosk_id": kiosk_id, "failures": svc.kiosk_lookups.max_failures,
              "seconds": svc.kiosk_lookups.window_seconds}
    log.warning("kiosk card lookups paused", extra={"event": "kiosk_cooldown", **detail})
    svc.ledger.add_event(None, EventKind.KIOSK_COOLDOWN, kiosk_auth.channel_for(kiosk_id),
                         detail)


async def end_session(request: Request) -> Response:
    """The kiosk reset: end the session its cookie names, if it is this kiosk's."""
    kiosk_id = require_kiosk(request)
    session = current_session(request)
    if session is None or session.channel != kiosk_auth.channel_for(kiosk_id):
        return JSONResponse({"ended": False})
    services(request).sessions.end(session)
    log.info("kiosk session ended", extra={"event": "kiosk_session_ended", "kiosk_id": kiosk_id})
    return JSONResponse({"ended": True})


async def report(request: Request) -> Response:
    """A kiosk's state for staff (docs/kiosk.md#the-fleet): kept as its latest report."""
    kiosk_id = require_kiosk(request)
    body = await read_json_object(request)
    try:
        fleet_report = kiosk_fleet.parse_report(body)
    except ValueError as exc:
        raise ApiError(422, "invalid_report", f"Report not accepted: {exc}.") from None
    svc = services(request)
    kiosk_fleet.record_report(svc.db, kiosk_id, fleet_report, svc.ledger.clock())
    return JSONResponse({"ok": True})


routes = [
    Route("/api/kiosk/sessions", open_session, methods=["POST"]),
    Route("/api/kiosk/sessions/current", end_session, methods=["DELETE"]),
    Route("/api/kiosk/report", report, methods=["POST"]),
]
