"""A tiny HTTP/1.1 keep-alive client for the load loops.

httpx costs about 1.5 ms of CPU per request on the benchmark machine, as much as the service
under test, and the load generator shares two cores with it. This client does only what the
hot loops need (GET or a small POST, a Content-Length or chunked answer, one connection per
simulated patron), so the CPU goes to the services being measured. Loopback only.
"""

from __future__ import annotations

import asyncio
import contextlib
from urllib.parse import urlsplit

MAX_HEADER_BYTES = 64 * 1024
MAX_BODY_BYTES = 16 * 1024 * 1024


class HttpError(Exception):
    """The server answered something this client cannot read."""


class Connection:
    """One keep-alive connection to `base_url`; reconnects when the server closes it."""

    def __init__(self, base_url: str, timeout: float = 60.0) -> None:
        parts = urlsplit(base_url)
        if parts.hostname not in ("127.0.0.1", "localhost", "::1"):
            raise ValueError(f"loopback only, not {base_url}")
        self.host = parts.hostname
        self.port = parts.port or 80
        self.host_header = parts.netloc
        self.timeout = timeout
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def request(self, method: str, path: str, headers: dict[str, str] | None = None,
                      body: bytes = b"") -> tuple[int, dict[str, str], bytes]:
        """Send one request; return (status, headers with lower-case names, body). A request
        on a reused connection that the server had closed is sent once more."""
        for attempt in (1, 2):
            fresh = self._writer is None
            if fresh:
                await self._connect()
            try:
                return await asyncio.wait_for(self._exchange(method, path, headers, body),
                                              self.timeout)
            except (ConnectionError, asyncio.IncompleteReadError):
                await self.close()
                if fresh or attempt == 2:
                    raise
        raise AssertionError("unreachable")  # pragma: no cover

    async def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            with contextlib.suppress(ConnectionError, OSError):
                await self._writer.wait_closed()
        self._reader = self._writer = None

    async def _connect(self) -> None:
        self._reader, self._writer = await asyncio.open_connection(self.host, self.port)

    async def _exchange(self, method: str, path: str, headers: dict[str, str] | None,
                        body: bytes) -> tuple[int, dict[str, str], bytes]:
        assert self._reader is not None and self._writer is not None
        lines = [f"{method} {path} HTTP/1.1", f"Host: {self.host_header}"]
        lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
        if body or method in ("POST", "PUT"):
            lines.append(f"Content-Length: {len(body)}")
        self._writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body)
        await self._writer.drain()
        head = await self._reader.readuntil(b"\r\n\r\n")
        if len(head) > MAX_HEADER_BYTES:
            raise HttpError("response headers too large")
        status_line, *header_lines = head.decode("latin-1").split("\r\n")
        status = int(status_line.split(" ", 2)[1])
        fields = {}
        for line in header_lines:
            if ":" in line:
                name, value = line.split(":", 1)
                fields[name.strip().lower()] = value.strip()
        if "content-length" in fields:
            length = int(fields["content-length"])
            if length > MAX_BODY_BYTES:
                raise HttpError("response body too large")
            payload = await self._reader.readexactly(length)
        elif fields.get("transfer-encoding", "").lower() == "chunked":
            payload = await self._read_chunked()
        else:
            payload = b""
        if fields.get("connection", "").lower() == "close":
            await self.close()
        return status, fields, payload

    async def _read_chunked(self) -> bytes:
        assert self._reader is not None
        chunks = []
        total = 0
        while True:
            size = int((await self._reader.readuntil(b"\r\n")).split(b";")[0], 16)
            if size == 0:
                await self._reader.readuntil(b"\r\n")
                return b"".join(chunks)
            total += size
            if total > MAX_BODY_BYTES:
                raise HttpError("response body too large")
            chunks.append(await self._reader.readexactly(size))
            await self._reader.readexactly(2)
