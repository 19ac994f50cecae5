"""The kiosk's receipt choices (docs/kiosk.md#receipt-printer): "Print receipt" on the return
page when a printer is configured, the printer's state (for the page, `/healthz` and the fleet
report), the web receipt as a code to scan when the printer cannot help, and "E-mail receipt"
when the proxy says it can mail this payment's receipt (docs/kiosk.md#e-mailed-receipt).

A receipt prints only on the patron's request, once per payment, and only for a payment the
proxy reports paid; whatever the printer does, the payment is not touched. Printer calls block,
so they run on a worker thread, one at a time.
"""

from __future__ import annotations

import asyncio
import json
import logging
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from kiosk.printer import NONE, PrinterTrouble, ReceiptPrinter
from kiosk.proxy_client import ProxyAnswer
from kiosk.receipt_text import (
    LANGUAGES,
    PRINTABLE_STATES,
    SlipContext,
    receipt_lines,
    slip_strings,
)
from kiosk.visits import KioskService

log = logging.getLogger("patronpay.kiosk.receipt")

CHECK_EVERY_SECONDS = 30.0
MAX_BODY_BYTES = 1024


class ReceiptDesk:
    def __init__(self, service: KioskService, printer: ReceiptPrinter | None) -> None:
        self.service = service
        self.printer = printer
        self._lock = asyncio.Lock()

    @property
    def state(self) -> str:
        return self.printer.state if self.printer is not None else NONE

    async def check(self) -> str:
        """Ask the printer now (it may have run out of paper since the last job)."""
        if self.printer is None:
            return NONE
        async with self._lock:
            before = self.printer.state
            await asyncio.to_thread(self.printer.check)
        self._announce(before)
        return self.state

    async def run(self) -> None:
        """Forever: the printer's state every 30 s, so /healthz and the fleet report know."""
        while self.printer is not None:
            try:
                await self.check()
            except Exception as exc:  # a monitor must never die; type only
                log.error("printer check failed", extra={"event": "printer_check_error",
                                                         "error": type(exc).__name__})
            await asyncio.sleep(CHECK_EVERY_SECONDS)

    def remember_titles(self, handle: str | None, answer: ProxyAnswer) -> None:
        """Keep the fees' titles for the receipt, only when receipts print titles."""
        session = self.service.holder.matches(handle)
        if not self.service.settings.receipt_titles or session is None or not answer.ok:
            return
        fees = answer.data.get("fees")
        session.titles = {str(fee.get("id")): str(fee.get("title") or "")
                          for fee in fees or [] if isinstance(fee, dict)}

    async def print_receipt(self, handle: str | None, language: str) -> Response:
        session = self.service.session_for(handle)
        payment = session.payment
        if self.printer is None:
            return _problem(404, "no_printer", "This kiosk has no receipt printer.")
        if payment is None:
            return _problem(404, "no_payment", "No payment in this session.")
        if payment.printed:
            return _problem(409, "already_printed", "This receipt has been printed.")
        answer = await self.service.forward(handle, "payment", payment.id)
        if answer.status == 401:  # the proxy ended the session (and so has the agent)
            return _problem(401, "no_session", "no session")
        data = answer.data.get("payment") if answer.ok else None
        if not isinstance(data, dict) or data.get("state") not in PRINTABLE_STATES:
            return _problem(409, "not_paid", "This payment is not paid (yet).")
        settings = self.service.settings
        context = SlipContext(settings.kiosk_id, settings.library_name,
                              settings.receipt_contact,
                              session.titles if settings.receipt_titles else None)
        try:
            lines = receipt_lines(data, context, slip_strings(settings.site_dir, language),
                                  language)
        except ValueError:
            log.error("the proxy's payment cannot be printed", extra={
                "event": "receipt_unprintable", "payment_id": payment.id})
            return _problem(502, "bad_payment", "The payment could not be read.")
        printed = await self._print(lines)
        if printed:
            payment.printed = True
        log.info("receipt printed" if printed else "receipt not printed", extra={
            "event": "receipt_printed" if printed else "receipt_not_printed",
            "payment_id": payment.id, "printer": self.state})
        return JSONResponse({"printed": printed, "printer": self.state,
                             "web_receipt": bool(payment.receipt_token) and not printed})

    async def _print(self, lines) -> bool:
        assert self.printer is not None
        async with self._lock:
            before = self.printer.state
            try:
                await asyncio.to_thread(self.printer.print_slip, lines)
                printed = True
            except PrinterTrouble:
                printed = False
        self._announce(before)
        return printed

    async def email_offer(self, handle: str | None) -> Response:
        """The proxy's word on e-mailing the session's payment's receipt: offered or not, and a
        masked hint of the address (the proxy never sends the address itself)."""
        return await self._email(handle, "receipt_email")

    async def email_receipt(self, handle: str | None) -> Response:
        """The patron chose "E-mail receipt": the proxy records it, once, for the session's
        own payment, and mails the receipt when the payment is posted."""
        return await self._email(handle, "request_receipt_email")

    async def _email(self, handle: str | None, call: str) -> Response:
        payment = self.service.session_for(handle).payment
        if payment is None:
            return _problem(404, "no_payment", "No payment in this session.")
        answer = await self.service.forward(handle, call, payment.id)
        if answer.status == 401:
            return _problem(401, "no_session", "no session")
        if answer.status >= 500:
            return _problem(503, "unavailable", "The payment service is not answering.")
        email = answer.data.get("email")
        if not answer.ok or not isinstance(email, dict):
            return JSONResponse({"error": {"code": answer.code or "unavailable",
                                           "message": "No e-mailed receipt."}},
                                status_code=answer.status if answer.status >= 400 else 502)
        if call == "request_receipt_email":
            log.info("receipt e-mail requested", extra={"event": "receipt_email_requested",
                                                        "payment_id": payment.id})
        return JSONResponse({"email": {"offered": email.get("offered") is True,
                                       "automatic": email.get("automatic") is True,
                                       "requested": email.get("requested") is True,
                                       "to": str(email.get("to") or "")[:100]}},
                            status_code=answer.status)

    def web_receipt_code(self, handle: str | None) -> Response:
        """The web receipt's address as a QR code (SVG) for the patron's phone."""
        session = self.service.session_for(handle)
        payment = session.payment
        if payment is None or not payment.receipt_token:
            return _problem(404, "no_receipt", "No web receipt for this session.")
        import qrcode
        import qrcode.image.svg

        url = (f"{self.service.settings.proxy_url}/receipt.html?r="
               f"{quote(payment.receipt_token, safe='')}")
        image = qrcode.make(url, image_factory=qrcode.image.svg.SvgPathImage, border=4)
        return Response(image.to_string(encoding="unicode"), media_type="image/svg+xml")

    def _announce(self, before: str) -> None:
        if self.state != before:
            log.info("printer state", extra={"event": "printer_state", "state": self.state})
            self.service.bus.publish({"type": "printer", "state": self.state})


def _problem(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status)


# -- the page's routes -------------------------------------------------------------------------


def _desk(request: Request) -> ReceiptDesk:
    return request.app.state.receipts


def _handle(request: Request) -> str | None:
    return request.headers.get("x-csrf-token") or request.query_params.get("handle")


async def print_route(request: Request) -> Response:
    """`POST /api/receipt/print` with `{"language": "en"|"es"}` (the patron's choice)."""
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_BODY_BYTES:
            return _problem(413, "body_too_large", "body too large")
    return await _desk(request).print_receipt(_handle(request), _language(body))


def _language(body: bytes) -> str:
    """The patron's language from the page, English for anything else."""
    try:
        data = json.loads(body or b"{}")
    except (ValueError, RecursionError):
        return "en"
    asked = data.get("language") if isinstance(data, dict) else None
    return asked if asked in LANGUAGES else "en"


async def code_route(request: Request) -> Response:
    return _desk(request).web_receipt_code(_handle(request))


async def email_offer_route(request: Request) -> Response:
    return await _desk(request).email_offer(_handle(request))


async def email_route(request: Request) -> Response:
    """`POST /api/receipt/email`: no body; the session's payment, to the patron's address."""
    return await _desk(request).email_receipt(_handle(request))


routes = [
    Route("/api/receipt/print", print_route, methods=["POST"]),
    Route("/api/receipt/code.svg", code_route, methods=["GET"]),
    Route("/api/receipt/email", email_offer_route, methods=["GET"]),
    Route("/api/receipt/email", email_route, methods=["POST"]),
]
