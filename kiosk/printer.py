"""The kiosk's receipt printer: an ESC/POS thermal printer over the network (port 9100), a
serial line, USB, or a device file, driven through python-escpos
(docs/kiosk.md#receipt-printer).

`PATRONPAY_KIOSK_PRINTER` names the connection (`parse_printer`). Each job opens the
connection, asks the printer for its state, prints and cuts, and closes again, so a printer
that was switched off and on, or a network printer that serves one connection at a time, never
holds a stale link. Every call here blocks: the agent runs them on a worker thread.

The printer's state is one of STATES. Printing is refused unless the printer reports it can
print (or cannot report at all, as a device file cannot): the patron is told plainly and the
payment is never touched.
"""

from __future__ import annotations

import importlib.util
import logging
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from kiosk.receipt_text import SlipLine

log = logging.getLogger("patronpay.kiosk.printer")

NONE = "none"  # no printer configured
READY = "ready"
PAPER_LOW = "paper_low"  # still prints; the roll is near its end
PAPER_OUT = "paper_out"
COVER_OPEN = "cover_open"
OFFLINE = "offline"  # unreachable, or the printer says it is offline
UNKNOWN = "unknown"  # the connection cannot report a state (a device file): printing is tried
STATES = (NONE, READY, PAPER_LOW, PAPER_OUT, COVER_OPEN, OFFLINE, UNKNOWN)
PRINTABLE = frozenset({READY, PAPER_LOW, UNKNOWN})

DEFAULT_PORT = 9100
DEFAULT_BAUD = 9600
TIMEOUT_SECONDS = 5.0
# ESC/POS "transmit real-time status", n=2: the cause of going offline (bit 2: cover open).
# python-escpos names n=1 and n=4 (RT_STATUS_ONLINE, RT_STATUS_PAPER) but not this one.
OFFLINE_CAUSE_QUERY = 2
COVER_OPEN_BIT = 0x04

SYNTAX = ("network:HOST[:PORT], serial:DEVICE[:BAUD], usb:VENDOR:PRODUCT (hex ids) or "
          "file:DEVICE")
USB_HELP = ("usb: needs pyusb and libusb on the kiosk (pip install pyusb; apt-get install "
            "libusb-1.0-0); or use file:/dev/usb/lp0 through the kernel's usblp driver")

_HOST = re.compile(r"[A-Za-z0-9.-]{1,253}|\[[0-9A-Fa-f:.]+\]")
_HEX_ID = re.compile(r"(?:0x)?([0-9A-Fa-f]{1,4})")


@dataclass(frozen=True)
class PrinterConnection:
    """Where the printer is. `kind` is network, serial, usb or file."""

    kind: str
    target: str  # host, device path, or "vendor:product" in hex
    port: int = DEFAULT_PORT  # network
    baud: int = DEFAULT_BAUD  # serial

    def describe(self) -> str:
        if self.kind == "network":
            return f"network:{self.target}:{self.port}"
        if self.kind == "serial":
            return f"serial:{self.target}:{self.baud}"
        return f"{self.kind}:{self.target}"


class PrinterTrouble(Exception):
    """The printer cannot print now; `state` says why (one of STATES)."""

    def __init__(self, state: str) -> None:
        super().__init__(state)
        self.state = state


def parse_printer(text: str) -> PrinterConnection | None:
    """`PATRONPAY_KIOSK_PRINTER` as a connection; None when empty. ValueError (one line, the
    reason) for anything else."""
    value = text.strip()
    if not value:
        return None
    kind, _, rest = value.partition(":")
    kind = kind.lower()
    if kind == "network":
        return _network(rest)
    if kind == "serial":
        return _serial(rest)
    if kind == "usb":
        return _usb(rest)
    if kind == "file":
        if not rest.startswith("/"):
            raise ValueError("file: needs an absolute device path, e.g. file:/dev/usb/lp0")
        return PrinterConnection("file", rest)
    raise ValueError(f"use {SYNTAX}")


def _network(rest: str) -> PrinterConnection:
    host, port = rest, DEFAULT_PORT
    if rest.count(":") == 1 or (rest.startswith("[") and "]:" in rest):
        host, _, port_text = rest.rpartition(":")
        port = _number(port_text, "the port", 1, 65535)
    if not _HOST.fullmatch(host):
        raise ValueError("network: needs a host name or address, e.g. network:10.0.0.7:9100")
    return PrinterConnection("network", host.strip("[]"), port=port)


def _serial(rest: str) -> PrinterConnection:
    path, baud = rest, DEFAULT_BAUD
    head, _, tail = rest.rpartition(":")
    if head and tail.isdigit():
        path, baud = head, _number(tail, "the baud rate", 1200, 921600)
    if not path.startswith("/"):
        raise ValueError("serial: needs an absolute device path, e.g. serial:/dev/ttyUSB0")
    return PrinterConnection("serial", path, baud=baud)


def _usb(rest: str) -> PrinterConnection:
    ids = [_HEX_ID.fullmatch(part) for part in rest.split(":")]
    if len(ids) != 2 or not all(ids):
        raise ValueError("usb: needs the vendor and product ids in hex, e.g. usb:04b8:0e15 "
                         "(see lsusb)")
    if not usb_available():
        raise ValueError(USB_HELP)
    vendor, product = (f"{int(match.group(1), 16):04x}" for match in ids if match)
    return PrinterConnection("usb", f"{vendor}:{product}")


def _number(text: str, what: str, low: int, high: int) -> int:
    if not text.isdigit() or not low <= int(text) <= high:
        raise ValueError(f"{what} must be a number from {low} to {high}")
    return int(text)


def usb_available() -> bool:
    """pyusb is installed and finds libusb (python-escpos's Usb needs both)."""
    if importlib.util.find_spec("usb") is None:
        return False
    import usb.backend.libusb1

    return usb.backend.libusb1.get_backend() is not None


# -- talking to the printer --------------------------------------------------------------------


def open_escpos(connection: PrinterConnection, timeout: float = TIMEOUT_SECONDS) -> Any:
    """A python-escpos printer for the connection (not opened yet: escpos opens on first use)."""
    from escpos import printer

    if connection.kind == "network":
        return printer.Network(connection.target, port=connection.port, timeout=timeout)
    if connection.kind == "serial":
        return printer.Serial(connection.target, baudrate=connection.baud, timeout=timeout)
    if connection.kind == "usb":
        vendor, product = (int(part, 16) for part in connection.target.split(":"))
        return printer.Usb(vendor, product, timeout=int(timeout * 1000))
    return printer.File(connection.target)


def read_state(device: Any) -> str:
    """The printer's state from its real-time status answers (python-escpos's `is_online`
    and `paper_status`). A connection without a way back (a device file) or a printer that
    answers nothing is UNKNOWN."""
    from escpos.constants import RT_STATUS, RT_STATUS_ONLINE

    try:
        if not device.query_status(RT_STATUS_ONLINE):
            return UNKNOWN
        if device.is_online():
            return {0: PAPER_OUT, 1: PAPER_LOW}.get(device.paper_status(), READY)
        cause = device.query_status(RT_STATUS + bytes([OFFLINE_CAUSE_QUERY]))
        if cause and cause[0] & COVER_OPEN_BIT:
            return COVER_OPEN
        return PAPER_OUT if device.paper_status() == 0 else OFFLINE
    except (NotImplementedError, TimeoutError):
        # A print server that does not pass status back times out: print all the same.
        return UNKNOWN


def write_slip(device: Any, lines: Sequence[SlipLine]) -> None:
    """The receipt as ESC/POS through python-escpos: styles per line, then feed and cut."""
    device.hw("INIT")
    for line in lines:
        device.set(align=line.align, bold=line.bold, double_height=line.big,
                   double_width=line.big, normal_textsize=not line.big)
        device.textln(line.text)
    device.set_with_default()
    device.cut()


Opener = Callable[[PrinterConnection], Any]


class ReceiptPrinter:
    """One printer, one job at a time (the caller serialises), its last known state kept."""

    def __init__(self, connection: PrinterConnection, opener: Opener | None = None) -> None:
        self.connection = connection
        self._open = opener or open_escpos
        self.state = UNKNOWN

    def check(self) -> str:
        """Ask the printer how it is; remember and return the state."""
        state = self.state = self._job(None)
        return state

    def print_slip(self, lines: Sequence[SlipLine]) -> str:
        """Print one receipt, or raise PrinterTrouble with the state that stopped it."""
        state = self.state = self._job(lines)
        if state not in PRINTABLE:
            raise PrinterTrouble(state)
        return state

    def _job(self, lines: Sequence[SlipLine] | None) -> str:
        from escpos.exceptions import Error as EscposError

        device = None
        try:
            device = self._open(self.connection)
            state = read_state(device)
            if lines is not None and state in PRINTABLE:
                write_slip(device, lines)
            return state
        except (EscposError, OSError, ValueError) as exc:
            # Unplugged, switched off, refused: the text of the error may name the device,
            # never a patron; the type is enough for the log.
            log.warning("receipt printer unavailable", extra={
                "event": "printer_unavailable", "printer": self.connection.kind,
                "error": type(exc).__name__})
            return OFFLINE
        finally:
            if device is not None:
                _close(device)


def _close(device: Any) -> None:
    try:
        device.close()
    except Exception as exc:  # closing a broken link must not hide what happened before
        log.debug("printer close failed", extra={"event": "printer_close_failed",
                                                 "error": type(exc).__name__})
