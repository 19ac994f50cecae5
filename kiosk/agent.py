"""The kiosk agent: a loopback Starlette app that serves the kiosk pages, streams scan events
to them, takes keyboard-wedge reads from them, and forwards the patron's calls to the central
proxy as this kiosk (docs/kiosk.md).

The page's API is same-origin only: the Host must be a loopback name (no DNS rebinding), and
unsafe methods need an Origin equal to it. The page holds only a session handle; the proxy's
cookie stays in the agent. Every answer is `no-store`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
import time
from collections.abc import AsyncIterator, Callable
from decimal import Decimal
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit

import httpx
from starlette.applications import Starlette
from starlette.datastructures import Headers, MutableHeaders
from starlette.requests import ClientDisconnect, Request
from starlette.responses import (
    FileResponse,
    JSONResponse,
    RedirectResponse,
    Response,
    StreamingResponse,
)
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from kiosk import receipt_desk
from kiosk.events import EventBus
from kiosk.fleet import FleetReporter
from kiosk.framing import framer_from_setting
from kiosk.institution_page import InstitutionPage, rewrite, site_languages
from kiosk.printer import ReceiptPrinter
from kiosk.proxy_client import ProxyAnswer, ProxyClient, ProxyUnavailable
from kiosk.serial_reader import SerialReader
from kiosk.settings import KioskSettings, is_loopback_host
from kiosk.visits import KioskService, NoSession

log = logging.getLogger("patronpay.kiosk.agent")

# The page keeps the patron's language in this cookie (site/i18n.js), on the agent's origin.
LANG_COOKIE = "patronpay_lang"
LANGUAGE_TAG = re.compile(r"[a-z]{2,3}(-[A-Za-z0-9]{2,8})?")

MAX_BODY_BYTES = 8192
HANDLE_HEADER = "x-csrf-token"
# The files of site/ the kiosk pages share with the web pages, served at /<name>.
SHARED_ASSETS = ("style.css", "i18n.js", "api.js", "money.js", "fees.js", "payment_status.js",
                 "payments.js")


class Reader(Protocol):
    """What the agent needs of a reader (kiosk.serial_reader.SerialReader or a test double)."""

    @property
    def state(self) -> str: ...
    last_heartbeat: float
    def start(self) -> None: ...
    def stop(self, timeout: float = 2.0) -> bool: ...


ReaderFactory = Callable[[Callable[[bytes], None], Callable[[str], None], Callable[[], None]],
                         Reader]


# A kiosk shows the patron's last few payments only: others may be reading over a shoulder.
HISTORY_SHOWN = 3


class ApiProblem(Exception):
    def __init__(self, status: int, code: str, message: str = "") -> None:
        super().__init__(code)
        self.status = status
        self.code = code
        self.message = message or code.replace("_", " ")


def _problem(status: int, code: str, message: str = "") -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message or code.replace("_", " ")}},
                        status_code=status)


# -- the page's API ----------------------------------------------------------------------------


def _service(request: Request) -> KioskService:
    return request.app.state.kiosk


def _handle(request: Request) -> str | None:
    """The page's session handle: its "CSRF token" header on unsafe calls (site/api.js sends
    it), the `handle` query parameter on reads."""
    return request.headers.get(HANDLE_HEADER) or request.query_params.get("handle")


async def _json_body(request: Request) -> dict:
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise ApiProblem(413, "body_too_large")
        chunks.append(chunk)
    try:
        data = json.loads(b"".join(chunks) or b"{}", parse_float=Decimal)
    except (ValueError, UnicodeDecodeError):
        raise ApiProblem(400, "invalid_json") from None
    except RecursionError:  # nested deeper than the parser goes: not ours, not an error of ours
        log.info("request body nested too deeply", extra={"event": "bad_body",
                                                           "reason": "too_deep"})
        raise ApiProblem(400, "invalid_json") from None
    if not isinstance(data, dict):
        raise ApiProblem(400, "invalid_json")
    return data


def _settings_json(settings: KioskSettings) -> dict:
    return {"idle_seconds": settings.idle_seconds, "warning_seconds": settings.warning_seconds,
            "receipt_seconds": settings.receipt_seconds, "privacy": settings.privacy}


async def get_session(request: Request) -> Response:
    service = _service(request)
    session = service.holder.current
    body: dict[str, Any] = {"session": None, "settings": _settings_json(service.settings),
                            "reader": service.reader_state}
    if service.settings.printer is not None:  # the page offers "Print receipt"
        body["settings"]["printer"] = True
        body["printer"] = request.app.state.receipts.state
    if session is not None:
        body["session"] = {"handle": session.handle, "first_name": session.first_name,
                           "paying": session.paying,
                           "payment": session.payment.id if session.paying else None}
    return JSONResponse(body)


async def touch_session(request: Request) -> Response:
    _service(request).touch(_handle(request))
    return JSONResponse({"ok": True})


async def end_session(request: Request) -> Response:
    """The page's reset. With a handle, only that session ends (a stale page cannot end the
    next patron's session); without one, whatever is held ends."""
    service = _service(request)
    handle = _handle(request)
    if handle and service.holder.matches(handle) is None:
        return JSONResponse({"ended": False})
    return JSONResponse({"ended": await service.end_session("page_reset")})


async def post_read(request: Request) -> Response:
    body = await _json_body(request)
    data = body.get("data")
    if body.get("source") != "wedge" or not isinstance(data, str) or set(body) - {"source",
                                                                                  "data"}:
        raise ApiProblem(422, "invalid_read", "Send {\"source\": \"wedge\", \"data\": text}.")
    outcome = await _service(request).read(data, "wedge")
    return JSONResponse(outcome.to_json())


async def get_fees(request: Request) -> Response:
    answer = await _service(request).forward(_handle(request), "fees")
    request.app.state.receipts.remember_titles(_handle(request), answer)
    return _relay(answer)


def _page_language(request: Request) -> str:
    """The patron's language choice on the kiosk page (its cookie), passed on only when it
    looks like a language tag: the proxy picks among the languages it has."""
    language = request.cookies.get(LANG_COOKIE, "")
    return language if LANGUAGE_TAG.fullmatch(language) else ""


async def create_payment(request: Request) -> Response:
    body = await _json_body(request)
    unknown = sorted(set(body) - {"fee_ids", "amount"})
    if unknown:
        raise ApiProblem(400, "unknown_field", f"Unknown field: {unknown[0]}.")
    service = _service(request)
    answer = await service.create_payment(_handle(request), body, _page_language(request))
    if answer.status != 201:
        return _relay(answer)
    checkout = answer.data.get("checkout") or {}
    if not _checkout_allowed(checkout, service.settings):
        log.error("the proxy sent a checkout to an unexpected address",
                  extra={"event": "bad_checkout"})
        await service.end_session("bad_checkout")
        raise ApiProblem(502, "bad_checkout")
    payment = dict(answer.data.get("payment") or {})
    payment.pop("receipt_token", None)  # the kiosk's receipt comes from the agent
    return JSONResponse({"payment": payment, "checkout": checkout}, status_code=201)


async def payment_history(request: Request) -> Response:
    """The patron's last three payments, without receipt links (a kiosk cannot open them)."""
    answer = await _service(request).forward(_handle(request), "history", HISTORY_SHOWN)
    if answer.status != 200:
        return _relay(answer)
    payments = [{k: v for k, v in p.items() if k != "receipt_token"}
                for p in answer.data.get("payments") or [] if isinstance(p, dict)]
    return JSONResponse({"payments": payments})


async def resume_payment(request: Request) -> Response:
    service = _service(request)
    payment_id = request.path_params["payment_id"]
    answer = await service.resume_payment(_handle(request), payment_id)
    if answer.status != 200:
        return _relay(answer)
    checkout = answer.data.get("checkout") or {}
    if not _checkout_allowed(checkout, service.settings):
        log.error("the proxy sent a checkout to an unexpected address",
                  extra={"event": "bad_checkout"})
        await service.end_session("bad_checkout")
        raise ApiProblem(502, "bad_checkout")
    payment = dict(answer.data.get("payment") or {})
    payment.pop("receipt_token", None)
    return JSONResponse({"payment": payment, "checkout": checkout})


async def cancel_payment(request: Request) -> Response:
    answer = await _service(request).forward(_handle(request), "payment_action",
                                             request.path_params["payment_id"], "cancel")
    return _relay(answer)


async def current_payment(request: Request) -> Response:
    answer = await _service(request).current_payment(_handle(request))
    if answer is None:
        raise ApiProblem(404, "no_payment", "No payment in this session.")
    answer.data.pop("receipt_token", None)  # the kiosk's receipt comes from the agent
    return _relay(answer)


async def events(request: Request) -> Response:
    service = _service(request)
    first = {"type": "hello", "reader": service.reader_state,
             "session": service.holder.current is not None}
    stream = service.bus.stream(request.headers.get("last-event-id"), first)
    return StreamingResponse(stream, media_type="text/event-stream",
                             headers={"X-Accel-Buffering": "no"})


async def healthz(request: Request) -> Response:
    service = _service(request)
    reader = service.reader_state
    status = "reader_unavailable" if reader == "disconnected" else "ok"
    body = {"status": status, "reader": reader}
    if service.settings.printer is not None:
        body["printer"] = request.app.state.receipts.state
    return JSONResponse(body)


def _relay(answer: ProxyAnswer) -> Response:
    if answer.status >= 500:
        return _problem(503, "unavailable", "The payment service is not answering.")
    # The proxy's Retry-After (a 429 while the patron goes too fast) goes on to the page,
    # which says how long to wait.
    headers = {"Retry-After": answer.retry_after} if answer.retry_after else None
    return JSONResponse(answer.data, status_code=answer.status, headers=headers)


def _checkout_allowed(checkout: dict, settings: KioskSettings) -> bool:
    """The page posts the patron to this address: https, or plain http only on loopback (the
    demo's sandbox), and only by POST."""
    action = checkout.get("action")
    if not isinstance(action, str) or not isinstance(checkout.get("fields"), dict):
        return False
    parts = urlsplit(action)
    if parts.scheme == "https" and parts.hostname:
        return True
    return parts.scheme == "http" and is_loopback_host(parts.hostname or "") and \
        settings.proxy_url.startswith("http://")


async def _api_problem(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiProblem)
    return _problem(exc.status, exc.code, exc.message)


async def _no_session(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, NoSession)
    status = 401 if exc.code == "no_session" else 409
    return _problem(status, exc.code)


async def _unavailable(request: Request, exc: Exception) -> Response:
    return _problem(503, "unavailable", "The payment service is not answering.")


async def _client_gone(request: Request, exc: Exception) -> Response:
    """The page went away in the middle of its request body: nothing to answer, no error."""
    log.info("client disconnected mid-request", extra={"event": "bad_body",
                                                       "reason": "client_disconnected"})
    return _problem(400, "client_disconnected")


# -- guards and headers ------------------------------------------------------------------------


class LoopbackOnly:
    """Only loopback Host names (a DNS-rebinding page cannot reach the agent), and unsafe
    methods only from the agent's own pages (Origin equal to the Host). Every answer gets a
    strict CSP and `no-store`: kiosk pages show patron data and must not be cached."""

    def __init__(self, app: ASGIApp, csp: str) -> None:
        self.app = app
        self.csp = csp

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        host = headers.get("host", "")
        if not is_loopback_host(_host_name(host)):
            await _problem(421, "wrong_host")(scope, receive, send)
            return
        if scope["method"] not in ("GET", "HEAD") and headers.get("origin") != f"http://{host}":
            await _problem(403, "bad_origin")(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                out = MutableHeaders(scope=message)
                out["Cache-Control"] = "no-store"
                out.setdefault("Content-Security-Policy", self.csp)
                out.setdefault("X-Content-Type-Options", "nosniff")
                out.setdefault("X-Frame-Options", "DENY")
                out.setdefault("Referrer-Policy", "no-referrer")
                out.setdefault("Cross-Origin-Resource-Policy", "same-origin")
                out.setdefault("Permissions-Policy",
                               "camera=(), microphone=(), geolocation=(), payment=()")
            await send(message)

        await self.app(scope, receive, with_headers)


def _host_name(host_header: str) -> str:
    """The name in a Host header, or "" when it is malformed (`[::1`)."""
    try:
        return urlsplit("//" + host_header).hostname or ""
    except ValueError:
        return ""


def content_security_policy(settings: KioskSettings) -> str:
    # The CashNet host is known only from the checkout the proxy returns; the browser policy's
    # URL allow-list pins the real host, and the agent checks each checkout (_checkout_allowed).
    form_action = "'self' https:"
    if settings.proxy_url.startswith("http://"):
        form_action += " http://127.0.0.1:* http://localhost:*"
    return "; ".join([
        "default-src 'self'", "script-src 'self'", "style-src 'self'", "img-src 'self' data:",
        "connect-src 'self'", "object-src 'none'", "base-uri 'none'",
        f"form-action {form_action}", "frame-ancestors 'none'",
    ])


# -- the app -----------------------------------------------------------------------------------


def serial_reader_factory(settings: KioskSettings) -> ReaderFactory | None:
    if not settings.reader:
        return None

    def make(on_frame, on_state, on_overflow) -> Reader:
        framer = framer_from_setting(settings.reader_framing, settings.reader_idle_ms)
        return SerialReader(settings.reader, on_frame, framer, settings.reader_baud,
                            on_state, on_overflow=on_overflow)

    return make


def create_kiosk_app(settings: KioskSettings, *, reader: ReaderFactory | None = None,
                     transport: httpx.AsyncBaseTransport | None = None,
                     clock: Callable[[], float] = time.time,
                     stream_seconds: float = 20.0) -> Starlette:
    """The agent. `reader` builds the card reader from its three callbacks (default: a
    SerialReader on `settings.reader`, or none); `transport` reaches the proxy (tests);
    `clock` is the wall clock behind the session deadlines."""
    client = ProxyClient(settings.proxy_url, settings.kiosk_id, settings.kiosk_secret,
                         timeout=settings.proxy_timeout_seconds, transport=transport)
    bus = EventBus(stream_seconds)
    service = KioskService(settings, client, bus, clock=clock)
    make_reader = reader or serial_reader_factory(settings)
    if make_reader is not None:
        service.reader_state = "connecting"
    printer = ReceiptPrinter(settings.printer) if settings.printer is not None else None
    receipts = receipt_desk.ReceiptDesk(service, printer)
    reporter = FleetReporter(service, client, lambda: receipts.state, settings.report_seconds)
    institution = InstitutionPage(client, site_languages(settings.site_dir))

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        loop = asyncio.get_running_loop()
        card_reader = None
        if make_reader is not None:
            # The reader's callbacks run on its thread: hop onto the event loop.
            card_reader = make_reader(
                lambda frame: loop.call_soon_threadsafe(service.serial_frame, frame),
                lambda state: loop.call_soon_threadsafe(service.reader_changed, state),
                lambda: loop.call_soon_threadsafe(service.serial_overflow))
            card_reader.start()
        app.state.reader = card_reader
        timers = asyncio.create_task(service.run_timers())
        watchers = [asyncio.create_task(receipts.run()), asyncio.create_task(reporter.run()),
                    asyncio.create_task(institution.run())]
        try:
            yield
        finally:
            bus.close()
            for task in [timers, *watchers]:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            if card_reader is not None:
                await asyncio.to_thread(card_reader.stop)
            await service.shutdown()
            await client.aclose()

    site_dir = settings.site_dir
    kiosk_dir = site_dir / "kiosk"
    routes = [
        Route("/", lambda request: RedirectResponse("/kiosk/", status_code=303)),
        Route("/favicon.ico", lambda request: Response(status_code=204)),
        Route("/healthz", healthz, methods=["GET"]),
        Route("/api/events", events, methods=["GET"]),
        Route("/api/session", get_session, methods=["GET"]),
        Route("/api/session/touch", touch_session, methods=["POST"]),
        Route("/api/session/end", end_session, methods=["POST"]),
        Route("/api/read", post_read, methods=["POST"]),
        Route("/api/fees", get_fees, methods=["GET"]),
        Route("/api/payments", create_payment, methods=["POST"]),
        Route("/api/payments", payment_history, methods=["GET"]),
        Route("/api/payments/current", current_payment, methods=["GET"]),
        Route("/api/payments/{payment_id}/resume", resume_payment, methods=["POST"]),
        Route("/api/payments/{payment_id}/cancel", cancel_payment, methods=["POST"]),
        *receipt_desk.routes,
        # The pages go out with the institution's languages and help text put in.
        Route("/kiosk/", _page(kiosk_dir / "index.html"), methods=["GET"]),
        Route("/kiosk/index.html", _page(kiosk_dir / "index.html"), methods=["GET"]),
        Route("/kiosk/return", _page(kiosk_dir / "return.html"), methods=["GET"]),
        Mount("/kiosk", StaticFiles(directory=kiosk_dir, html=True), name="kiosk"),
        Mount("/locales", StaticFiles(directory=site_dir / "locales"), name="locales"),
        *[Route(f"/{name}", _asset(site_dir / name), methods=["GET"]) for name in SHARED_ASSETS],
    ]
    app = Starlette(
        routes=routes, lifespan=lifespan,
        exception_handlers={ApiProblem: _api_problem, NoSession: _no_session,
                            ProxyUnavailable: _unavailable, ClientDisconnect: _client_gone})
    app.add_middleware(LoopbackOnly, csp=content_security_policy(settings))
    app.state.kiosk = service
    app.state.receipts = receipts
    app.state.reporter = reporter
    app.state.institution = institution
    app.state.reader = None
    return app


def _asset(path: Path) -> Callable[[Request], Response]:
    def serve(request: Request) -> Response:
        return FileResponse(path)
    return serve


def _page(path: Path) -> Callable[[Request], Response]:
    """A kiosk page as its institution shows it (kiosk/institution_page.py). Read from disk
    each time, as the static files are: a page loads once per patron."""
    def serve(request: Request) -> Response:
        body = rewrite(path.read_bytes(), request.app.state.institution.current)
        return Response(body, media_type="text/html")
    return serve


def reader_heartbeat_ok(app: Starlette, max_age: float = 15.0) -> bool:
    """For the systemd watchdog: the reader thread (if any) turned its loop recently."""
    reader = getattr(app.state, "reader", None)
    return reader is None or time.monotonic() - reader.last_heartbeat < max_age
