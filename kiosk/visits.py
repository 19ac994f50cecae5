"""What the kiosk agent does, apart from HTTP: turn an accepted card into a proxy session, hold
that session, forward the patron's calls to the proxy, and end the session on reset or when a
deadline passes (kiosk/held_session.py), restarting the browser when the page cannot be trusted to
reset itself (docs/kiosk.md#session-reset).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from pathlib import Path

from kiosk.cards import Credential
from kiosk.events import EventBus
from kiosk.held_session import PatronSession, SessionHolder
from kiosk.lookup_guard import LookupGuard
from kiosk.proxy_client import ProxyAnswer, ProxyClient, ProxySession, ProxyUnavailable
from kiosk.scan_pipeline import ReadOutcome, ReadPipeline
from kiosk.settings import KioskSettings

log = logging.getLogger("patronpay.kiosk")

FINAL_STATES = ("posted", "declined", "cancelled", "expired", "attention", "resolved")
TICK_SECONDS = 0.25
PAYMENT_POLL_SECONDS = 3.0


class NoSession(Exception):
    """No patron session, or the page's handle names an earlier one."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


class KioskService:
    def __init__(self, settings: KioskSettings, client: ProxyClient, bus: EventBus, *,
                 clock: Callable[[], float] = time.time) -> None:
        self.settings = settings
        self.client = client
        self.bus = bus
        self.clock = clock
        self.holder = SessionHolder(lifetime_seconds=settings.session_lifetime_seconds,
                                    payment_max_seconds=settings.payment_max_seconds,
                                    after_result_seconds=settings.after_result_seconds,
                                    clock=clock)
        self.pipeline = ReadPipeline(settings.card_rules, settings.install_key,
                                     on_credential=self._open_for, on_refused=self._refused,
                                     busy=self._paying)
        self.reader_state = "connecting" if settings.reader else "none"
        self.lookups = LookupGuard()
        self.browser_resets = 0
        # For the fleet report (kiosk/fleet.py): when a card was last read, a payment started.
        self.last_scan_at: float | None = None
        self.last_payment_at: float | None = None
        self._tasks: set[asyncio.Task] = set()
        self._last_payment_poll = 0.0

    # -- reads ----------------------------------------------------------------------------------

    async def read(self, raw: bytes | str, source: str) -> ReadOutcome:
        self.last_scan_at = self.clock()
        return await self.pipeline.submit(raw, source)

    def serial_frame(self, frame: bytes) -> None:
        """From the reader thread via call_soon_threadsafe: handle the frame in order."""
        self.last_scan_at = self.clock()
        self._spawn(self.pipeline.submit(frame, "serial"))

    def serial_overflow(self) -> None:
        self.pipeline.refuse_overflow("serial")

    def reader_changed(self, state: str) -> None:
        self.reader_state = state
        self.bus.publish({"type": "reader", "state": state})

    def _paying(self) -> bool:
        session = self.holder.current
        return session is not None and session.paying

    def _refused(self, reason: str, source: str) -> None:
        self.bus.publish({"type": "scan", "result": "refused", "reason": reason})

    async def _open_for(self, credential: Credential, fingerprint: str) -> ReadOutcome:
        current = self.holder.current
        if current is not None and current.fingerprint == fingerprint:
            self.holder.touch()  # the same patron scanned again: keep their session
            self.bus.publish({"type": "session", "state": "open"})
            return ReadOutcome("accepted")
        if self.lookups.paused_for() > 0:
            return self._refuse_lookup("cooling_down")
        self.bus.publish({"type": "scan", "result": "accepted"})
        try:
            answer = await self.client.open_session(credential.kind, credential.value)
        except ProxyUnavailable:
            return self._refuse_lookup("unavailable")
        if answer.status == 201 and _session_fields(answer.data):
            # A new patron at the kiosk. The proxy has ended the kiosk's earlier session as it
            # opened this one; a card it does not know leaves the current patron's session be.
            if self.holder.end() is not None:
                log.info("session ended", extra={"event": "session_ended", "reason": "new_card"})
            proxy = ProxySession(answer.data["session"], answer.data["csrf_token"])
            first_name = str((answer.data.get("patron") or {}).get("first_name") or "")
            self.holder.open(proxy, first_name, fingerprint)
            log.info("session opened", extra={"event": "session_opened",
                                              "credential": fingerprint})
            self.bus.publish({"type": "session", "state": "open"})
            return ReadOutcome("accepted")
        if answer.status == 404 and answer.code == "card_not_recognised":
            if self.lookups.failed():
                log.warning("card lookups paused: too many cards not recognised", extra={
                    "event": "lookup_cooldown", "seconds": self.lookups.window_seconds})
                return self._refuse_lookup("cooling_down")
            return self._refuse_lookup("card_not_recognised")
        if answer.status == 429 and answer.code == "kiosk_cooling_down":
            self.lookups.pause(float(answer.retry_after or self.lookups.window_seconds))
            return self._refuse_lookup("cooling_down")
        if answer.status == 401:
            log.error("the proxy refused this kiosk: check PATRONPAY_KIOSK_ID and "
                      "PATRONPAY_KIOSK_SECRET against the proxy's PATRONPAY_KIOSK_KEYS, and the "
                      "kiosk's clock", extra={"event": "kiosk_refused_by_proxy",
                                              "code": answer.code})
            return self._refuse_lookup("kiosk_unauthorized")
        return self._refuse_lookup("unavailable")

    def _refuse_lookup(self, reason: str) -> ReadOutcome:
        log.info("card lookup refused", extra={"event": "lookup_refused", "reason": reason})
        self._refused(reason, "")
        return ReadOutcome("refused", reason)

    # -- the session ------------------------------------------------------------------------------

    def session_for(self, handle: str | None) -> PatronSession:
        session = self.holder.current
        if session is None:
            raise NoSession("no_session")
        if self.holder.matches(handle) is None:
            raise NoSession("session_changed")
        return session

    def touch(self, handle: str | None) -> PatronSession:
        session = self.session_for(handle)
        self.holder.touch()
        return session

    async def end_session(self, reason: str) -> bool:
        """Forget the patron here and end the session on the proxy. True if one was held."""
        session = self.holder.end()
        if session is None:
            return False
        log.info("session ended", extra={"event": "session_ended", "reason": reason})
        self.bus.publish({"type": "session", "state": "ended", "reason": reason})
        # If the proxy cannot be told, its own idle expiry ends the session; the agent has
        # forgotten it already.
        with contextlib.suppress(ProxyUnavailable):
            await self.client.end_session(session.proxy)
        return True

    async def forward(self, handle: str | None, call: str, *args: object) -> ProxyAnswer:
        """A patron call to the proxy as the current session. A 401 means the proxy ended the
        session (idle, account gone): the agent forgets it too."""
        session = self.session_for(handle)
        answer = await getattr(self.client, call)(session.proxy, *args)
        if answer.status == 401 and self.holder.current is session:
            await self.end_session("proxy_ended")
        return answer

    async def create_payment(self, handle: str | None, body: dict,
                             language: str = "") -> ProxyAnswer:
        answer = await self.forward(handle, "create_payment", body, language)
        payment = answer.data.get("payment") if answer.status == 201 else None
        if isinstance(payment, dict) and isinstance(payment.get("id"), str):
            self.holder.start_payment(payment["id"])
            self._keep_receipt_token(str(payment.get("receipt_token") or ""))
            self.last_payment_at = self.clock()
            log.info("payment started", extra={"event": "payment_started",
                                               "payment_id": payment["id"]})
        return answer

    async def resume_payment(self, handle: str | None, payment_id: str) -> ProxyAnswer:
        """Back to CashNet for this kiosk's payment in progress: it becomes the session's
        payment again, so the return page and the deadlines follow it."""
        answer = await self.forward(handle, "payment_action", payment_id, "resume")
        if answer.status == 200:
            self.holder.start_payment(payment_id)
            log.info("payment resumed", extra={"event": "payment_resumed",
                                               "payment_id": payment_id})
        return answer

    def _keep_receipt_token(self, token: str) -> None:
        """The web receipt's token stays with the payment, in memory: the kiosk offers it as a
        code to scan when its printer cannot print (kiosk/receipt_desk.py)."""
        session = self.holder.current
        if session is not None and session.payment is not None:
            session.payment.receipt_token = token

    async def current_payment(self, handle: str | None) -> ProxyAnswer | None:
        """The state of the session's payment, from the proxy; the browser is back."""
        session = self.session_for(handle)
        if session.payment is None:
            return None
        self.holder.browser_returned()
        answer = await self.forward(handle, "payment", session.payment.id)
        return answer

    # -- deadlines -----------------------------------------------------------------------------

    async def run_timers(self) -> None:
        """Forever: end the session when a deadline passes; while the patron is on CashNet,
        ask the proxy now and then whether the payment has a result."""
        while True:
            try:
                await self.check_deadlines()
                await self._poll_payment()
            except Exception as exc:  # a timer must never die; type only, no data
                log.error("kiosk timer failed", extra={"event": "timer_error",
                                                       "error": type(exc).__name__})
            await asyncio.sleep(TICK_SECONDS)

    async def check_deadlines(self) -> str | None:
        reason = self.holder.due()
        if reason is None:
            return None
        self.reset_browser(reason)
        await self.end_session(reason)
        return reason

    async def _poll_payment(self) -> None:
        session = self.holder.current
        if session is None or not session.paying or session.payment is None or \
                session.payment.result_at is not None:
            return
        now = time.monotonic()
        if now - self._last_payment_poll < PAYMENT_POLL_SECONDS:
            return
        self._last_payment_poll = now
        with contextlib.suppress(ProxyUnavailable):
            answer = await self.client.payment(session.proxy, session.payment.id)
            state = (answer.data.get("payment") or {}).get("state") if answer.ok else None
            if state in FINAL_STATES and self.holder.current is session:
                self.holder.result_known()

    def reset_browser(self, reason: str) -> None:
        """Ask systemd to restart the browser (a `.path` unit watches this file): the page did
        not reset itself, or the patron left CashNet's page open."""
        self.browser_resets += 1
        path = self.settings.reset_file
        log.warning("resetting the kiosk browser", extra={"event": "browser_reset",
                                                          "reason": reason})
        if not path:
            return
        try:  # closing the written file is what the `.path` unit's PathChanged= sees
            Path(path).write_text(f"{int(self.clock())} {reason}\n", encoding="utf-8")
        except OSError as exc:
            log.error("cannot write the browser reset file", extra={
                "event": "browser_reset_failed", "error": exc.strerror})

    # -- lifecycle ---------------------------------------------------------------------------

    def _spawn(self, coroutine) -> None:
        task = asyncio.ensure_future(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def shutdown(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await self.end_session("shutdown")


def _session_fields(data: dict) -> bool:
    return isinstance(data.get("session"), str) and isinstance(data.get("csrf_token"), str)
