"""A simulated card reader for the demo and for trying a kiosk without hardware.

`ScannerSocket` is the reader's end of a `socket://` link: a loopback TCP server the agent
connects to with `PATRONPAY_KIOSK_READER=socket://127.0.0.1:<port>`, exactly as it would open
a serial device; `scan()` sends one read, terminated by CR as a barcode scanner would.
`create_scanner_app()` is a small page with a button per demo card (and a field for anything
else) that "scans" through it. Test cards only: nothing here is for real cards.
"""

from __future__ import annotations

import contextlib
import html
import logging
import socket
import threading
from urllib.parse import parse_qs, urlencode

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Route

log = logging.getLogger("patronpay.kiosk.simulated")

# Seeded sandbox patrons' library barcodes, plus reads the kiosk must refuse.
DEMO_CARDS: dict[str, tuple[str, str]] = {
    "mkowalski": ("Maria (three fees)", "23191000105866"),
    "jsmith": ("Jordan (guest, one fee)", "23191000200022"),
    "tlee": ("Thomas (a $1,250.00 lost-item fee)", "23191000200063"),
    "pchen": ("Priya (no fees)", "23191000200030"),
    "unknown": ("A card the library does not know", "23191000999995"),
    "lost": ("A card reported lost (inactive barcode)", "23191000200014"),
    "typo": ("A misread barcode (wrong check digit)", "23191000105867"),
    "bankcard": ("A bank card swiped by mistake (test number)",
                 "%B4111111111111111^DOE/JANE^2812101?;4111111111111111=2812101?"),
}
MAX_SCAN = 512


class ScannerSocket:
    """A loopback TCP server standing in for a reader; every connected client (the agent's
    `socket://` reader) receives each scan."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self._server = socket.create_server((host, port))
        self.host, self.port = self._server.getsockname()[:2]
        self._clients: list[socket.socket] = []
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._accept, name="demo-scanner", daemon=True)

    @property
    def url(self) -> str:
        return f"socket://{self.host}:{self.port}"

    def start(self) -> ScannerSocket:
        self._thread.start()
        return self

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._server.accept()
            except OSError:
                return  # closed
            with self._lock:
                self._clients.append(client)

    @property
    def connected(self) -> int:
        with self._lock:
            return len(self._clients)

    def scan(self, data: str | bytes, terminator: bytes = b"\r") -> int:
        """Send one read to every connected reader; returns how many received it."""
        payload = (data.encode("latin-1") if isinstance(data, str) else data) + terminator
        sent = 0
        with self._lock:
            for client in list(self._clients):
                try:
                    client.sendall(payload)
                    sent += 1
                except OSError:
                    self._clients.remove(client)
                    client.close()
        return sent

    def close(self) -> None:
        # shutdown() wakes the accept() blocked in the other thread; close() alone would not,
        # and the kernel would go on accepting connections for it.
        with contextlib.suppress(OSError):
            self._server.shutdown(socket.SHUT_RDWR)
        self._server.close()
        if self._thread.is_alive():
            self._thread.join(2.0)
        with self._lock:
            for client in self._clients:
                with contextlib.suppress(OSError):
                    client.close()
            self._clients.clear()


def create_scanner_app(scanner: ScannerSocket, kiosk_url: str) -> Starlette:
    """The demo's "scanner": a page with a button per demo card."""

    async def page(request: Request) -> Response:
        buttons = "\n".join(
            f'<li><button name="card" value="{html.escape(key)}">{html.escape(label)}</button>'
            f' <code>{html.escape(key)}</code></li>'
            for key, (label, _) in DEMO_CARDS.items())
        sent = request.query_params.get("sent")
        note = f"<p role=status>Scanned: {html.escape(sent)}</p>" if sent else ""
        body = f"""<!doctype html><html lang=en><head><meta charset=utf-8>
<title>Demo card reader</title></head><body>
<h1>Demo card reader</h1>
<p>Each button "scans" a test card at the kiosk: <a href="{html.escape(kiosk_url)}/kiosk/"
target=kiosk>{html.escape(kiosk_url)}/kiosk/</a>. Open the kiosk in another window.</p>
{note}<form method=post action=/scan><ul>{buttons}</ul></form>
<form method=post action=/scan><label>Any other read <input name=data maxlength={MAX_SCAN}>
</label> <button>Scan</button></form></body></html>"""
        return HTMLResponse(body, headers={"Cache-Control": "no-store"})

    async def scan(request: Request) -> Response:
        body = await request.body()
        if len(body) > 4 * MAX_SCAN:
            return JSONResponse({"error": {"code": "too_large"}}, status_code=413)
        # A plain urlencoded form (starlette's form parser needs python-multipart).
        form = parse_qs(body.decode("latin-1"), keep_blank_values=True)
        card, data = form.get("card", [""])[0], form.get("data", [""])[0]
        if card in DEMO_CARDS:
            read = DEMO_CARDS[card][1]
        elif data and len(data) <= MAX_SCAN:
            read, card = data, "typed read"
        else:
            return JSONResponse({"error": {"code": "unknown_card"}}, status_code=400)
        received = scanner.scan(read)
        if "text/html" in request.headers.get("accept", ""):
            return RedirectResponse("/?" + urlencode({"sent": card}), status_code=303)
        return JSONResponse({"scanned": card, "readers": received})

    return Starlette(routes=[Route("/", page, methods=["GET"]),
                             Route("/scan", scan, methods=["POST"])])
