"""Reading a page's state from a running Chromium for tests: its remote debugging port (started
by the test on loopback only, `--remote-debugging-port=0`, the port written to the profile's
DevToolsActivePort) and one Chrome DevTools Protocol call, Runtime.evaluate, over a websocket.

No Playwright here: attaching Playwright to the browser under test turns on its focus emulation
and more, and the kiosk's keypad depends on the real focus. The websocket is the few lines of
RFC 6455 a client needs (masked text frames out, whole frames in)."""

from __future__ import annotations

import base64
import json
import os
import socket
import struct
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import httpx


def port_of(profile: Path, deadline: float) -> int:
    """The port Chromium chose, once it has written it (the file's first line)."""
    path = profile / "DevToolsActivePort"
    while True:
        lines = path.read_text().splitlines() if path.exists() else []
        if lines and lines[0].isdigit():
            return int(lines[0])
        if time.monotonic() > deadline:
            raise AssertionError(f"Chromium never wrote {path}")
        time.sleep(0.1)


def pages(port: int) -> list[dict]:
    """The browser's page targets with their addresses ([] while it cannot answer)."""
    try:
        targets = httpx.get(f"http://127.0.0.1:{port}/json/list", timeout=5).json()
    except httpx.HTTPError:
        return []
    return [t for t in targets if t.get("type") == "page"]


@dataclass
class PageSocket:
    """One page's DevTools websocket: evaluate an expression, get its value back."""

    sock: socket.socket
    next_id: int = 1
    buffer: bytes = field(default=b"", repr=False)

    @classmethod
    def open(cls, ws_url: str) -> PageSocket:
        address = urlsplit(ws_url)
        assert address.hostname == "127.0.0.1", ws_url  # loopback only
        sock = socket.create_connection((address.hostname, address.port), timeout=10)
        key = base64.b64encode(os.urandom(16)).decode()
        # No Origin header: Chromium refuses websocket clients that send one it was not told of.
        sock.sendall((f"GET {address.path} HTTP/1.1\r\nHost: 127.0.0.1:{address.port}\r\n"
                      f"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                      "Sec-WebSocket-Version: 13\r\n\r\n").encode())
        page = cls(sock)
        head = page._read_until(b"\r\n\r\n")
        if not head.startswith(b"HTTP/1.1 101"):
            raise AssertionError(f"DevTools refused the websocket: {head[:200]!r}")
        return page

    def evaluate(self, expression: str) -> object:
        """The expression's value in the page (JSON-able values only)."""
        call_id, self.next_id = self.next_id, self.next_id + 1
        self._send(json.dumps({"id": call_id, "method": "Runtime.evaluate", "params": {
            "expression": expression, "returnByValue": True}}))
        while True:
            reply = json.loads(self._receive())
            if reply.get("id") != call_id:
                continue  # an event: none are enabled, but skip whatever comes
            result = reply.get("result", {})
            if "exceptionDetails" in result or "error" in reply:
                raise AssertionError(f"{expression!r} failed in the page: {reply}")
            return result["result"].get("value")

    def close(self) -> None:
        self.sock.close()

    def _send(self, text: str) -> None:
        data, mask = text.encode(), os.urandom(4)
        size = len(data)
        head = bytes([0x81]) + (bytes([0x80 | size]) if size < 126
                                else struct.pack(">BH", 0x80 | 126, size))
        self.sock.sendall(head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(data)))

    def _receive(self) -> str:
        """The next whole text message (Chromium sends unfragmented, unmasked frames)."""
        while True:
            first, second = self._read(2)
            size = second & 0x7F
            if size == 126:
                (size,) = struct.unpack(">H", self._read(2))
            elif size == 127:
                (size,) = struct.unpack(">Q", self._read(8))
            payload = self._read(size)
            if first & 0x0F == 0x1:
                return payload.decode()
            if first & 0x0F == 0x8:
                raise AssertionError("DevTools closed the websocket")

    def _read(self, size: int) -> bytes:
        while len(self.buffer) < size:
            self._fill()
        data, self.buffer = self.buffer[:size], self.buffer[size:]
        return data

    def _read_until(self, marker: bytes) -> bytes:
        while marker not in self.buffer:
            self._fill()
        head, _, self.buffer = self.buffer.partition(marker)
        return head

    def _fill(self) -> None:
        chunk = self.sock.recv(65536)
        if not chunk:
            raise AssertionError("DevTools closed the connection")
        self.buffer += chunk
