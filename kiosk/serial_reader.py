"""The serial card reader loop (docs/kiosk.md#the-reader-loop).

One daemon thread per reader runs blocking pyserial: open the configured path (a
`/dev/serial/by-id/...` link, or a pyserial URL such as `loop://` or `socket://host:port`),
read, cut frames with a `Framer`, and hand each frame to `on_frame`. When the device goes away
(unplug, peer close, any SerialException/OSError) the port is closed, the partial frame
dropped, the state set to "disconnected", and the same path reopened after a backoff that
doubles from `backoff_initial` to `backoff_max`.

Threading contract for the caller (the kiosk agent):
- `on_frame(frame)`, `on_overflow()` and `on_state(state)` run **on the reader thread**. An
  asyncio caller wraps them, e.g.
  `on_frame=lambda frame: loop.call_soon_threadsafe(handle_frame, frame)`.
  They must return quickly; an exception from them is logged (type only) and the loop goes on.
- `last_heartbeat` is the monotonic time of the loop's latest turn. A turn takes at most the
  read timeout, or `backoff_max` while waiting to reopen, so a watchdog should allow more
  than that.

Frame contents are never logged, at any level: log lines name the path, states and errno only.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import threading
import time
from collections.abc import Callable
from typing import Protocol

import serial

from kiosk.framing import Framer

log = logging.getLogger(__name__)

CONNECTING = "connecting"
CONNECTED = "connected"
DISCONNECTED = "disconnected"


class Port(Protocol):
    """What the loop needs from a pyserial port."""

    @property
    def in_waiting(self) -> int: ...
    def read(self, size: int = 1) -> bytes: ...
    def close(self) -> None: ...


Opener = Callable[[str, int, float], Port]


def open_port(url_or_path: str, baud: int, timeout: float) -> Port:
    """Open a device path with an advisory exclusive lock (a second agent cannot read the same
    port); pyserial URLs (`loop://`, `socket://`, ...) have no lock to take, so none is asked."""
    if "://" in url_or_path:
        return serial.serial_for_url(url_or_path, baudrate=baud, timeout=timeout)
    return serial.serial_for_url(url_or_path, baudrate=baud, timeout=timeout, exclusive=True)


class SerialReader:
    """Reads one card reader on a background thread; see the module docstring."""

    def __init__(
        self,
        url_or_path: str,
        on_frame: Callable[[bytes], None],
        framer: Framer,
        baud: int = 9600,
        on_state: Callable[[str], None] | None = None,
        open_timeout: float = 0.2,
        backoff_initial: float = 0.5,
        backoff_max: float = 5.0,
        *,
        on_overflow: Callable[[], None] | None = None,
        opener: Opener = open_port,
    ) -> None:
        """`open_timeout` is the read timeout the port is opened with (0.2 s per the spec): the
        longest a read blocks, so it bounds how late an idle-framed frame or a stop is seen.
        `on_overflow` is told (without the bytes) when an over-long frame was discarded, so the
        caller can report `too_long`. `opener` opens the port (tests inject one)."""
        self.url_or_path = url_or_path
        self.baud = baud
        self.read_timeout = open_timeout
        self.backoff_initial = backoff_initial
        self.backoff_max = backoff_max
        self.last_heartbeat = time.monotonic()
        self._on_frame = on_frame
        self._on_state = on_state
        self._on_overflow = on_overflow
        self._framer = framer
        self._opener = opener
        self._state = CONNECTING
        self._stop = threading.Event()
        self._port: Port | None = None
        # Guards _port between the reader thread (open/close) and stop() (cancel_read): a
        # cancel on a port being closed could write to a file descriptor already reused.
        self._port_lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._config_error_logged = False

    @property
    def state(self) -> str:
        """Current state: "connecting" until the first open, then "connected" or "disconnected"."""
        return self._state

    def start(self) -> None:
        """Start the reader thread (once)."""
        if self._thread is not None:
            raise RuntimeError("reader already started")
        self.last_heartbeat = time.monotonic()
        self._thread = threading.Thread(target=self._run, name="card-reader", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 2.0) -> bool:
        """Stop the thread: wake a blocked read with `cancel_read()`, then join (bounded).
        Returns True when the thread has ended."""
        self._stop.set()
        with self._port_lock:
            cancel = getattr(self._port, "cancel_read", None)
            if cancel is not None:
                # If the port is failing anyway, the read timeout still ends the read.
                with contextlib.suppress(OSError, serial.SerialException):
                    cancel()
        if self._thread is None:
            return True
        self._thread.join(timeout)
        if self._thread.is_alive():
            log.warning(
                "card reader %s: thread did not stop within %.1f s", self.url_or_path, timeout
            )
            return False
        return True

    # -- the loop ----------------------------------------------------------------------------

    def _run(self) -> None:
        delay = self.backoff_initial
        while not self._stop.is_set():
            self.last_heartbeat = time.monotonic()
            port = self._try_open()
            if port is None:
                wait = delay
                if self._config_error_logged:
                    wait = self.backoff_max  # a configuration error will not fix itself soon
                self._set_state(DISCONNECTED)
                self._stop.wait(wait)
                delay = min(delay * 2, self.backoff_max)
                continue
            self._set_state(CONNECTED)
            log.info("card reader %s: connected", self.url_or_path)
            delay = self.backoff_initial
            self._config_error_logged = False
            self._pump(port)
            self._close()
            if not self._stop.is_set():
                self._set_state(DISCONNECTED)
                self._stop.wait(delay)
                delay = min(delay * 2, self.backoff_max)
        self._close()

    def _try_open(self) -> Port | None:
        try:
            port = self._opener(self.url_or_path, self.baud, self.read_timeout)
        except (serial.SerialException, OSError, ValueError) as exc:
            self._log_open_failure(exc)
            return None
        with self._port_lock:
            self._port = port
        return port

    def _pump(self, port: Port) -> None:
        """Read and deliver frames until the port fails or stop() is called."""
        try:
            while not self._stop.is_set():
                self.last_heartbeat = time.monotonic()
                data = port.read(port.in_waiting or 1)
                now = time.monotonic()
                overflows = self._framer.overflows
                frames = self._framer.feed(data, now) if data else self._framer.flush_if_idle(now)
                if self._framer.overflows != overflows:
                    self._report_overflow(self._framer.overflows - overflows)
                for frame in frames:
                    self._deliver(frame)
        except (serial.SerialException, OSError) as exc:
            if not self._stop.is_set():
                log.warning(
                    "card reader %s: disconnected (%s, errno %s)",
                    self.url_or_path, type(exc).__name__, getattr(exc, "errno", None),
                )  # fmt: skip
        except Exception as exc:  # a bug: reconnect rather than die; type only, never the data
            log.error(
                "card reader %s: unexpected %s, reopening", self.url_or_path, type(exc).__name__
            )

    def _close(self) -> None:
        with self._port_lock:
            port, self._port = self._port, None
            if port is not None:
                with contextlib.suppress(OSError, serial.SerialException):  # already gone
                    port.close()
        self._framer.reset()

    # -- callbacks and logging ---------------------------------------------------------------

    def _deliver(self, frame: bytes) -> None:
        try:
            self._on_frame(frame)
        except Exception as exc:  # the callback's message could hold the frame: type only
            log.error(
                "card reader %s: frame handler failed (%s)", self.url_or_path, type(exc).__name__
            )

    def _report_overflow(self, count: int) -> None:
        log.warning("card reader %s: %d over-long frame(s) discarded", self.url_or_path, count)
        if self._on_overflow is None:
            return
        for _ in range(count):
            try:
                self._on_overflow()
            except Exception as exc:
                log.error(
                    "card reader %s: overflow handler failed (%s)",
                    self.url_or_path,
                    type(exc).__name__,
                )

    def _set_state(self, state: str) -> None:
        if state == self._state:
            return
        self._state = state
        if self._on_state is not None:
            try:
                self._on_state(state)
            except Exception as exc:
                log.error(
                    "card reader %s: state handler failed (%s)",
                    self.url_or_path,
                    type(exc).__name__,
                )

    def _log_open_failure(self, exc: BaseException) -> None:
        """Permission denied and a malformed URL are configuration errors: logged once, until
        the reader connects again. Other failures (no device yet) are logged once per outage."""
        code = getattr(exc, "errno", None)
        if code == errno.EACCES or isinstance(exc, ValueError):
            if not self._config_error_logged:
                problem = "permission denied" if code == errno.EACCES else "not a usable port"
                log.error(
                    "card reader %s: configuration error: %s (the agent's user needs read/write "
                    "access: group dialout, DeviceAllow=char-ttyACM/char-ttyUSB)",
                    self.url_or_path, problem,
                )  # fmt: skip
                self._config_error_logged = True
            return
        if self._state != DISCONNECTED:
            log.warning(
                "card reader %s: cannot open (%s, errno %s)",
                self.url_or_path,
                type(exc).__name__,
                code,
            )
