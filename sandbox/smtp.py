"""The sandbox's mail server: an SMTP server (aiosmtpd) on a loopback port that keeps every
message it receives, for the `/mail/` page and for tests. It delivers nothing anywhere.

Faults, for tests of a proxy killed or cut off mid-conversation (docs/sandbox.md#mail):
`hold("mail")` keeps the next conversation waiting after its `MAIL FROM` (nothing received
yet), `hold("data")` keeps the next message, then waits before answering `250` (received, not
acknowledged); `release()` lets them go on. `stop()` and `start()` again on the same port are a
mail server that is down and comes back.
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import socket
import threading
import time
import warnings
from dataclasses import dataclass, field
from email.message import EmailMessage

from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword

HOLD_STAGES = ("mail", "data")
HOLD_POLL_SECONDS = 0.02
HOLD_LIMIT_SECONDS = 120.0


@dataclass(frozen=True)
class Received:
    number: int
    at: float
    peer: str
    mail_from: str
    rcpt_tos: tuple[str, ...]
    data: bytes

    @property
    def message(self) -> EmailMessage:
        return email.message_from_bytes(self.data, policy=email.policy.default)

    @property
    def message_id(self) -> str:
        return str(self.message.get("Message-ID", ""))

    @property
    def subject(self) -> str:
        return str(self.message.get("Subject", ""))

    def part(self, subtype: str) -> str:
        """The text of the message's text/`subtype` part ("" when it has none)."""
        body = self.message.get_body(preferencelist=(subtype,))
        return body.get_content() if body is not None and \
            body.get_content_subtype() == subtype else ""


@dataclass
class Mailbox:
    """What the server received, and its faults. Safe to use from any thread."""

    _lock: threading.Lock = field(default_factory=threading.Lock)
    _messages: list[Received] = field(default_factory=list)
    _holds: dict[str, int] = field(default_factory=dict)
    _gate: threading.Event = field(default_factory=threading.Event)
    _waiting: int = 0
    logins: dict[str, str] = field(default_factory=dict)  # user -> password, when required

    def keep(self, peer: str, mail_from: str, rcpt_tos: list[str], data: bytes) -> Received:
        with self._lock:
            received = Received(len(self._messages) + 1, time.time(), peer, mail_from,
                                tuple(rcpt_tos), data)
            self._messages.append(received)
            return received

    def messages(self) -> list[Received]:
        with self._lock:
            return list(self._messages)

    def message(self, number: int) -> Received | None:
        with self._lock:
            return self._messages[number - 1] if 0 < number <= len(self._messages) else None

    def clear(self) -> None:
        with self._lock:
            self._messages.clear()

    def hold(self, stage: str, count: int = 1) -> None:
        """Hold the next `count` conversations at `stage` ("mail" or "data")."""
        if stage not in HOLD_STAGES:
            raise ValueError(f"stage must be one of {HOLD_STAGES}")
        with self._lock:
            self._holds[stage] = self._holds.get(stage, 0) + count
            self._gate.clear()

    def release(self) -> None:
        with self._lock:
            self._holds.clear()
            self._gate.set()

    def waiting(self) -> int:
        """How many conversations are held right now."""
        with self._lock:
            return self._waiting

    async def pause_at(self, stage: str) -> None:
        with self._lock:
            if not self._holds.get(stage):
                return
            self._holds[stage] -= 1
            self._waiting += 1
        try:
            deadline = time.monotonic() + HOLD_LIMIT_SECONDS
            while not self._gate.is_set() and time.monotonic() < deadline:
                await asyncio.sleep(HOLD_POLL_SECONDS)
        finally:
            with self._lock:
                self._waiting -= 1


class _Handler:
    def __init__(self, mailbox: Mailbox) -> None:
        self.mailbox = mailbox

    async def handle_MAIL(self, server, session, envelope, address, mail_options):  # noqa: N802
        await self.mailbox.pause_at("mail")
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):  # noqa: N802
        peer = session.peer[0] if isinstance(session.peer, tuple) else str(session.peer)
        self.mailbox.keep(peer, envelope.mail_from, list(envelope.rcpt_tos),
                          bytes(envelope.original_content or envelope.content))
        await self.mailbox.pause_at("data")
        return "250 Message accepted (kept by the sandbox, delivered nowhere)"


class SmtpServer:
    """The mail server on its own thread and event loop, on a loopback port (ephemeral when
    0). `url` is what PATRONPAY_SMTP_URL takes."""

    def __init__(self, mailbox: Mailbox, host: str = "127.0.0.1", port: int = 0) -> None:
        self.mailbox = mailbox
        self.host = host
        self.port = port
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: asyncio.AbstractServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"smtp://{host}:{self.port}"

    def start(self, timeout: float = 10.0) -> SmtpServer:
        sock = socket.socket(socket.AF_INET6 if ":" in self.host else socket.AF_INET,
                             socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, self.port))
        self.port = sock.getsockname()[1]
        ready = threading.Event()
        self._loop = asyncio.new_event_loop()
        handler = _Handler(self.mailbox)

        def conversation() -> SMTP:
            with warnings.catch_warnings():  # AUTH without TLS: loopback, sandbox passwords
                warnings.simplefilter("ignore", UserWarning)
                return SMTP(handler, hostname="sandbox.invalid", loop=self._loop,
                            auth_require_tls=False, authenticator=self._authenticate,
                            auth_required=bool(self.mailbox.logins))

        def serve() -> None:
            asyncio.set_event_loop(self._loop)
            self._server = self._loop.run_until_complete(
                self._loop.create_server(conversation, sock=sock))
            ready.set()
            self._loop.run_forever()

        self._thread = threading.Thread(target=serve, name=f"smtp:{self.port}", daemon=True)
        self._thread.start()
        if not ready.wait(timeout):
            raise RuntimeError(f"sandbox SMTP server on {self.url} did not start")
        return self

    def _authenticate(self, server, session, envelope, mechanism, data) -> AuthResult:
        if isinstance(data, LoginPassword):
            user, password = data.login.decode(), data.password.decode()
            if self.mailbox.logins.get(user) == password:
                return AuthResult(success=True)
        return AuthResult(success=False, handled=False)

    def stop(self) -> None:
        """Close the port (clients are refused) and drop the conversations in progress."""
        if self._loop is None:
            return
        loop, server = self._loop, self._server

        async def close() -> None:
            if server is not None:
                server.close()
            # Conversations in progress end too, as when a mail server goes down.
            others = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in others:
                task.cancel()
            await asyncio.gather(*others, return_exceptions=True)
            loop.stop()

        self.mailbox.release()
        asyncio.run_coroutine_threadsafe(close(), loop)
        if self._thread is not None:
            self._thread.join(10)
        loop.close()
        self._loop = self._server = self._thread = None
