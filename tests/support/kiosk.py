"""A kiosk agent on loopback wired to a deployment, its event stream, a fake card reader on a
pseudo-terminal, and the library cards the sandbox knows."""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from kiosk.agent import create_kiosk_app
from kiosk.settings import KioskSettings
from patronpay.serving import ServerThread, bind

SECRET = "kiosk-secret-0123456789abcdef0123456789"
MARIA, THOMAS, UNKNOWN = "23191000105866", "23191000200063", "23191000999995"
BANK_SWIPE = "%B4111111111111111^DOE/JANE^2812101?;4111111111111111=2812101?"
DEADLINE = 10.0


class Events:
    """Reads the agent's event stream on a thread, reconnecting with Last-Event-ID as a
    browser does, and lets the test wait for an event."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.events: list[dict] = []
        self.raw: list[str] = []
        self._changed = threading.Condition()
        self._stop = threading.Event()
        self._last_id = ""
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        self.wait(lambda e: e["type"] == "hello", "the first event")

    def _run(self) -> None:
        while not self._stop.is_set():
            headers = {"Last-Event-ID": self._last_id} if self._last_id else {}
            try:
                with httpx.stream("GET", self.url + "/api/events", headers=headers,
                                  timeout=30.0) as response:
                    for line in response.iter_lines():
                        self._line(line)
            except httpx.HTTPError:
                if self._stop.wait(0.1):
                    return

    def _line(self, line: str) -> None:
        with self._changed:
            self.raw.append(line)
            if line.startswith("id: "):
                self._last_id = line[4:]
            elif line.startswith("data: "):
                self.events.append(json.loads(line[6:]))
                self._changed.notify_all()

    def since(self, start: int) -> list[dict]:
        """Events after the first `start`, without the stream's own hellos."""
        with self._changed:
            return [e for e in self.events[start:] if e["type"] != "hello"]

    def wait(self, predicate: Callable[[dict], bool], what: str, start: int = 0) -> dict:
        with self._changed:
            found = self._changed.wait_for(
                lambda: next((e for e in self.events[start:] if predicate(e)), None), DEADLINE)
        if not found:
            raise AssertionError(f"timed out waiting for {what}; got {self.events}")
        return found

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(DEADLINE)


@dataclass
class Kiosk:
    d: object
    server: ServerThread
    app: object
    clients: list[httpx.Client] = field(default_factory=list)

    @property
    def url(self) -> str:
        return self.server.url

    @property
    def service(self):
        return self.app.state.kiosk

    def page(self) -> httpx.Client:
        """The kiosk page's fetch(): same origin."""
        client = httpx.Client(base_url=self.url, headers={"Origin": self.url}, timeout=15.0)
        self.clients.append(client)
        return client

    def scan(self, data: str) -> dict:
        response = self.page().post("/api/read", json={"source": "wedge", "data": data})
        assert response.status_code == 200, response.text
        return response.json()

    def session(self) -> dict | None:
        return self.page().get("/api/session").json()["session"]

    def handle(self) -> str:
        session = self.session()
        assert session is not None
        return session["handle"]

    def proxy_sessions(self) -> list[tuple]:
        return [tuple(r) for r in self.d.services.db.read(
            "SELECT patron_id, channel, ended_at IS NULL FROM sessions ORDER BY created_at")]


def start_kiosk(deploy, tmp_path, started: list[Kiosk], reader_factory=None, clock=time.time,
                stream_seconds=2.0, proxy_settings: dict | None = None, **overrides) -> Kiosk:
    """A deployment and a kiosk agent wired to it; `overrides` go to KioskSettings,
    `proxy_settings` to the proxy's settings (lower-case names)."""
    sock = bind("127.0.0.1", 0)
    url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    d = deploy(kiosk_keys=f"lib1={SECRET}", kiosk_return_url=url + "/kiosk/return",
               **(proxy_settings or {}))
    values = {"kiosk_id": "lib1", "kiosk_secret": SECRET, "proxy_url": d.url,
              "reset_file": str(tmp_path / f"reset-browser-{len(started)}")} | overrides
    app = create_kiosk_app(KioskSettings(**values), reader=reader_factory, clock=clock,
                           stream_seconds=stream_seconds)
    kiosk = Kiosk(d, ServerThread(app, sock=sock).start(), app)
    started.append(kiosk)
    return kiosk


def stop_kiosks(started: list[Kiosk]) -> None:
    for kiosk in started:
        for client in kiosk.clients:
            client.close()
        kiosk.server.stop()


_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime"}


def record_text(record: logging.LogRecord) -> str:
    """What a log line says: its message and the fields passed with `extra=`."""
    extra = {k: v for k, v in vars(record).items() if k not in _STANDARD}
    return record.getMessage() + " " + json.dumps(extra, default=str)


def write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


class FakeReaderPort:
    """A pty with a `/dev/serial/by-id`-style link to its slave side, made and unmade the way
    udev does it: the link appears atomically, and unplugging removes it."""

    NAME = "usb-Fake_Reader_0001-if00"

    def __init__(self, directory: Path) -> None:
        self.link = directory / self.NAME
        self.master = self.slave = -1

    def plug(self) -> None:
        self.master, self.slave = os.openpty()
        temporary = self.link.with_name(self.NAME + ".new")
        temporary.symlink_to(os.ttyname(self.slave))
        os.replace(temporary, self.link)

    def unplug(self) -> None:
        self.link.unlink()
        self.close_fds()

    def close_fds(self) -> None:
        for fd in (self.master, self.slave):
            if fd >= 0:
                os.close(fd)
        self.master = self.slave = -1

    def write(self, data: bytes) -> None:
        write_all(self.master, data)
