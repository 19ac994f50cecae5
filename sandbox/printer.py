"""A virtual ESC/POS receipt printer for the demo and the tests: a real TCP server on loopback
speaking the printer's side of port 9100, so the kiosk agent drives it through python-escpos's
Network connection exactly as it drives a real printer
(docs/kiosk.md#the-virtual-receipt-printer).

It decodes the commands a receipt uses (initialise, print modes, bold, alignment, code pages,
feeds, cut) into lines, and keeps each receipt, on its cut, as `receipt-0001.txt` and
`receipt-0001.png` in its folder. It answers the real-time status queries (DLE EOT n) from its
`state`, which a test can set to paper out, cover open or offline; while it cannot print it
keeps nothing of what it is sent, as a stopped printer prints nothing. This decoder is the
test's printer, not a part of patronpay: it imports nothing from the kiosk or the proxy.
"""

from __future__ import annotations

import socket
import socketserver
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

ESC, GS, DLE, EOT, LF = 0x1B, 0x1D, 0x10, 0x04, 0x0A
STATES = ("ready", "paper_low", "paper_out", "cover_open", "offline")
STOPPED = ("paper_out", "cover_open", "offline")
COLUMNS = 32  # font A on a 58 mm roll
DOTS = 384  # that roll's width in dots at 203 dpi
CODE_PAGES = {0: "cp437", 2: "cp850", 3: "cp860", 4: "cp863", 5: "cp865", 16: "cp1252",
              17: "cp866", 18: "cp852", 19: "cp858"}
# Parameter bytes after ESC x and GS x for the commands this printer knows; others take one.
ESC_PARAMS = {ord("@"): 0, ord("2"): 0, ord("!"): 1, ord("E"): 1, ord("-"): 1, ord("M"): 1,
              ord("a"): 1, ord("t"): 1, ord("{"): 1, ord("G"): 1, ord("d"): 1, ord("J"): 1,
              ord("3"): 1}
GS_PARAMS = {ord("!"): 1, ord("b"): 1, ord("B"): 1}


@dataclass(frozen=True)
class PrintedLine:
    text: str
    align: str = "left"
    bold: bool = False
    big: bool = False


@dataclass
class Receipt:
    lines: list[PrintedLine]
    text_file: Path
    image_file: Path

    @property
    def texts(self) -> list[str]:
        return [line.text for line in self.lines]


@dataclass
class _Style:
    align: str = "left"
    bold: bool = False
    big: bool = False
    code_page: int = 0


@dataclass
class Decoder:
    """ESC/POS bytes in, lines and cuts out. Feed it any slices of the stream."""

    style: _Style = field(default_factory=_Style)
    pending: bytearray = field(default_factory=bytearray)
    line: bytearray = field(default_factory=bytearray)
    lines: list[PrintedLine] = field(default_factory=list)
    parts: list[str] = field(default_factory=list)  # a line's text before a code page switch

    def feed(self, data: bytes) -> Iterator[tuple[str, object]]:
        """Events: ("status", n) for a status query, ("cut", [lines]) for a finished receipt."""
        self.pending += data
        while self.pending:
            used, event = self._one(self.pending)
            if used == 0:
                return  # a command whose parameters have not arrived yet
            del self.pending[:used]
            if event is not None:
                yield event

    def _one(self, buf: bytearray) -> tuple[int, tuple[str, object] | None]:
        first = buf[0]
        if first == LF:
            self._end_line()
            return 1, None
        if first == DLE:
            if len(buf) < 3:
                return 0, None
            return 3, ("status", buf[2]) if buf[1] == EOT else None
        if first == ESC:
            return self._esc(buf)
        if first == GS:
            return self._gs(buf)
        if first >= 0x20:
            self.line.append(first)
        return 1, None

    def _esc(self, buf: bytearray) -> tuple[int, tuple[str, object] | None]:
        if len(buf) < 2:
            return 0, None
        size = 2 + ESC_PARAMS.get(buf[1], 1)
        if len(buf) < size:
            return 0, None
        command, value = chr(buf[1]), buf[2] if size > 2 else 0
        if command == "@":
            self.style = _Style()
        elif command == "!":
            self.style.bold, self.style.big = bool(value & 0x08), bool(value & 0x30)
        elif command == "E":
            self.style.bold = bool(value & 1)
        elif command == "a":
            self.style.align = {0: "left", 1: "center", 2: "right"}.get(value % 48, "left")
        elif command == "t":
            self._flush_code_page()
            self.style.code_page = value
        return size, None

    def _gs(self, buf: bytearray) -> tuple[int, tuple[str, object] | None]:
        if len(buf) < 3:
            return 0, None
        if buf[1] == ord("V"):  # cut: GS V m, or GS V m n for m 65/66
            size = 4 if buf[2] in (65, 66) else 3
            if len(buf) < size:
                return 0, None
            self._end_line(keep_empty=False)
            lines, self.lines = self.lines, []
            return size, ("cut", lines)
        if buf[1] == ord("!"):
            self.style.big = buf[2] != 0
        return 2 + GS_PARAMS.get(buf[1], 1), None

    def _flush_code_page(self) -> None:
        """Text so far was in the old code page: decode it before the switch."""
        if self.line:
            self.parts.append(self._decode(bytes(self.line)))
            self.line.clear()

    def _decode(self, data: bytes) -> str:
        codec = CODE_PAGES.get(self.style.code_page)
        return data.decode(codec) if codec else data.decode("latin-1")

    def _end_line(self, keep_empty: bool = True) -> None:
        text = "".join(self.parts) + self._decode(bytes(self.line))
        self.parts.clear()
        self.line.clear()
        if text or keep_empty:
            self.lines.append(PrintedLine(text, self.style.align, self.style.bold,
                                          self.style.big))


def status_byte(state: str, query: int) -> int:
    """The printer's answer to DLE EOT n (bits 1 and 4 are always set)."""
    base = 0x12
    if query == 1:  # printer status: bit 3 offline
        return base | (0x08 if state in STOPPED else 0)
    if query == 2:  # offline cause: bit 2 cover open, bit 5 stopped at paper end
        return base | (0x04 if state == "cover_open" else 0) | (
            0x20 if state == "paper_out" else 0)
    if query == 4:  # paper sensors: bits 2-3 near end, bits 5-6 out
        return {"paper_low": 0x1E, "paper_out": 0x72}.get(state, base)
    return base


class VirtualPrinter:
    def __init__(self, folder: Path | str, host: str = "127.0.0.1", port: int = 0) -> None:
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.state = "ready"
        self.receipts: list[Receipt] = []
        self.discarded = 0  # bytes sent while it could not print
        self._changed = threading.Condition()
        printer = self

        class Handler(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                printer._serve(self.request)

        self._server = socketserver.ThreadingTCPServer((host, port), Handler,
                                                       bind_and_activate=True)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def start(self) -> VirtualPrinter:
        self._thread.start()
        return self

    @property
    def address(self) -> tuple[str, int]:
        return self._server.server_address[:2]

    @property
    def connection(self) -> str:
        """The kiosk's PATRONPAY_KIOSK_PRINTER for this printer."""
        host, port = self.address
        return f"network:{host}:{port}"

    def set_state(self, state: str) -> None:
        if state not in STATES:
            raise ValueError(f"state must be one of {', '.join(STATES)}")
        self.state = state

    def wait_for(self, count: int, timeout: float = 10.0) -> list[Receipt]:
        with self._changed:
            if not self._changed.wait_for(lambda: len(self.receipts) >= count, timeout):
                raise AssertionError(f"{len(self.receipts)} receipt(s) printed, not {count}")
            return list(self.receipts)

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _serve(self, conn: socket.socket) -> None:
        decoder = Decoder()
        conn.settimeout(30.0)
        while True:
            try:
                data = conn.recv(4096)
            except OSError:
                return
            if not data:
                return
            for kind, value in decoder.feed(data):
                if kind == "status":
                    conn.sendall(bytes([status_byte(self.state, int(value))]))  # type: ignore[arg-type]
                elif kind == "cut":
                    self._keep(value)  # type: ignore[arg-type]
            if self.state in STOPPED:
                self.discarded += len(data)
                decoder.lines.clear()

    def _keep(self, lines: list[PrintedLine]) -> None:
        if self.state in STOPPED:
            return
        with self._changed:
            stem = self.folder / f"receipt-{len(self.receipts) + 1:04d}"
            text_file, image_file = stem.with_suffix(".txt"), stem.with_suffix(".png")
            text_file.write_text(render_text(lines), encoding="utf-8")
            render_png(lines, image_file)
            self.receipts.append(Receipt(lines, text_file, image_file))
            self._changed.notify_all()


def render_text(lines: list[PrintedLine]) -> str:
    """The receipt as a roll of text, aligned as printed (big text takes two columns)."""
    out = []
    for line in lines:
        width = COLUMNS // 2 if line.big else COLUMNS
        if line.align == "center":
            out.append(line.text.center(width).rstrip())
        elif line.align == "right":
            out.append(line.text.rjust(width))
        else:
            out.append(line.text)
    return "\n".join(out) + "\n"


def render_png(lines: list[PrintedLine], path: Path) -> None:
    """The receipt as a picture of the roll (Pillow, which python-escpos depends on)."""
    from PIL import Image, ImageDraw, ImageFont

    def font(size: int):
        for name in ("DejaVuSansMono.ttf", "/usr/share/fonts/truetype/dejavu/DejaVuSansMono.ttf"):
            try:
                return ImageFont.truetype(name, size)
            except OSError:
                continue
        return ImageFont.load_default(size)

    normal, big = font(18), font(36)  # 32 columns of DejaVu Sans Mono fill the 384 dots
    margin, height = 12, 24
    rows = sum(2 if line.big else 1 for line in lines) + 2
    image = Image.new("L", (DOTS, margin * 2 + rows * height), 255)
    draw = ImageDraw.Draw(image)
    y = margin
    for line in lines:
        face = big if line.big else normal
        width = draw.textlength(line.text, font=face)
        x = {"center": (DOTS - width) / 2, "right": DOTS - margin - width}.get(line.align, margin)
        draw.text((max(margin, x), y), line.text, fill=0, font=face,
                  stroke_width=1 if line.bold else 0, stroke_fill=0)
        y += height * (2 if line.big else 1)
    image.save(path, "PNG")
