"""The serial reader loop (docs/kiosk.md#the-reader-loop): loop://, a pty behind a by-id style link
(unplug, replug), socket:// peer close, overlong lines, split frames, shutdown and backoff.
Outcomes are awaited with deadlines, never with sleeps."""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator

import pytest
import serial
from support.kiosk import FakeReaderPort
from support.waiting import wait_for

from kiosk.cards import Credential, default_card_rules, normalise
from kiosk.framing import Framer
from kiosk.serial_reader import SerialReader, open_port

pytestmark = pytest.mark.skipif(not hasattr(os, "openpty"), reason="Linux/POSIX only")

DEADLINE = 5.0
FAST = {"backoff_initial": 0.02, "backoff_max": 0.1}
BARCODE = b"23191000105866"


class Recorder:
    """Collects what the reader thread reports and lets the test wait for it."""

    def __init__(self) -> None:
        self.frames: list[bytes] = []
        self.states: list[str] = []
        self.overflows = 0
        self._changed = threading.Condition()

    def on_frame(self, frame: bytes) -> None:
        with self._changed:
            self.frames.append(frame)
            self._changed.notify_all()

    def on_state(self, state: str) -> None:
        with self._changed:
            self.states.append(state)
            self._changed.notify_all()

    def on_overflow(self) -> None:
        with self._changed:
            self.overflows += 1
            self._changed.notify_all()

    def wait_for(self, predicate: Callable[[], bool], what: str) -> None:
        with self._changed:
            if not self._changed.wait_for(predicate, timeout=DEADLINE):
                raise AssertionError(f"timed out waiting for {what}")

    def wait_connected(self, times: int = 1) -> None:
        self.wait_for(lambda: self.states.count("connected") >= times, f"connected x{times}")


def assert_logs_hold_no_data(
    caplog: pytest.LogCaptureFixture, reader: SerialReader, *pieces: bytes
) -> None:
    """No 4-character window of any piece appears in a log message (the reader's own path,
    which the messages are meant to name, is taken out first)."""
    messages = [r.getMessage().replace(reader.url_or_path, "<path>") for r in caplog.records]
    for piece in pieces:
        text = piece.decode("latin-1")
        for start in range(max(1, len(text) - 3)):
            window = text[start : start + 4]
            assert not any(window in message for message in messages), window


@contextlib.contextmanager
def running(reader: SerialReader) -> Iterator[SerialReader]:
    reader.start()
    try:
        yield reader
    finally:
        assert reader.stop(timeout=DEADLINE)


@pytest.fixture
def debug_logs(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.DEBUG)
    return caplog


def pty_reader(port: FakeReaderPort, recorder: Recorder, framer: Framer | None = None):
    return SerialReader(
        str(port.link),
        recorder.on_frame,
        framer or Framer("eol"),
        on_state=recorder.on_state,
        on_overflow=recorder.on_overflow,
        **FAST,
    )


# ---------------------------------------------------------------------------------------------
# loop://: framer and pipeline through a real pyserial port


def test_loop_url_frames_reach_the_pipeline(debug_logs) -> None:
    recorder = Recorder()
    ports: list[serial.SerialBase] = []

    def opener(url: str, baud: int, timeout: float) -> serial.SerialBase:
        port = open_port(url, baud, timeout)
        ports.append(port)
        return port

    reader = SerialReader(
        "loop://", recorder.on_frame, Framer("eol"), on_state=recorder.on_state, opener=opener
    )
    with running(reader):
        recorder.wait_connected()
        assert reader.state == "connected"
        ports[0].write(b"]F023191000105866\r\nA23191000105866B\r")
        recorder.wait_for(lambda: len(recorder.frames) == 2, "two frames")
    assert recorder.frames == [b"]F023191000105866", b"A23191000105866B"]
    assert [normalise(frame, default_card_rules()) for frame in recorder.frames] == [
        Credential("library_barcode", "23191000105866", "]F0", "serial"),
        Credential("library_barcode", "23191000105866", None, "serial"),
    ]
    assert recorder.states == ["connected"]
    assert ports[0].is_open is False  # stop() closed the port
    assert_logs_hold_no_data(debug_logs, reader, b"23191000105866")


def test_loop_url_idle_framing() -> None:
    recorder = Recorder()
    ports: list[serial.SerialBase] = []

    def opener(url: str, baud: int, timeout: float) -> serial.SerialBase:
        ports.append(open_port(url, baud, timeout))
        return ports[-1]

    framer = Framer("idle", idle_ms=30)
    reader = SerialReader("loop://", recorder.on_frame, framer, on_state=recorder.on_state,
                          opener=opener)  # fmt: skip
    with running(reader):
        recorder.wait_connected()
        ports[0].write(b"01008E6D5D")
        recorder.wait_for(lambda: recorder.frames == [b"01008E6D5D"], "the idle frame")


# ---------------------------------------------------------------------------------------------
# pty behind a by-id style link


def test_pty_frames_delivered(fake_port: FakeReaderPort, debug_logs) -> None:
    recorder = Recorder()
    with running(pty_reader(fake_port, recorder)) as reader:
        recorder.wait_connected()  # the reader opens first: open() flushes pending input
        fake_port.write(BARCODE + b"\r\n")
        fake_port.write(b"]F0" + BARCODE + b"\r")
        recorder.wait_for(lambda: len(recorder.frames) == 2, "two frames")
        assert reader.state == "connected"
    assert recorder.frames == [BARCODE, b"]F0" + BARCODE]
    assert_logs_hold_no_data(debug_logs, reader, BARCODE)


def test_partial_frame_then_terminator_in_a_later_write(fake_port: FakeReaderPort) -> None:
    recorder = Recorder()
    framer = Framer("eol")
    with running(pty_reader(fake_port, recorder, framer)):
        recorder.wait_connected()
        fake_port.write(b"2319100")
        wait_for(lambda: framer.pending == 7, "the partial frame to be read", timeout=DEADLINE)
        fake_port.write(b"0105866\r\n")
        recorder.wait_for(lambda: recorder.frames != [], "a frame")
        fake_port.write(b"\r")  # a lone terminator later: empty, dropped
        fake_port.write(b"X\r")
        recorder.wait_for(lambda: len(recorder.frames) == 2, "the marker frame")
    assert recorder.frames == [BARCODE, b"X"]


def test_ten_kilobyte_line_is_discarded(fake_port: FakeReaderPort, debug_logs) -> None:
    recorder = Recorder()
    line = b"4" * 10_000
    with running(pty_reader(fake_port, recorder)) as reader:
        recorder.wait_connected()
        fake_port.write(line + b"\r")
        fake_port.write(BARCODE + b"\r")
        recorder.wait_for(lambda: recorder.frames != [], "the frame after the long line")
    assert recorder.frames == [BARCODE]
    assert recorder.overflows == 1
    assert_logs_hold_no_data(debug_logs, reader, line[:8], BARCODE)
    assert any("1 over-long frame(s) discarded" in r.getMessage() for r in debug_logs.records)


def test_unplug_and_replug(fake_port: FakeReaderPort, debug_logs) -> None:
    recorder = Recorder()
    with running(pty_reader(fake_port, recorder)) as reader:
        recorder.wait_connected()
        fake_port.write(b"first\r")
        recorder.wait_for(lambda: recorder.frames == [b"first"], "the first frame")

        fake_port.write(b"half-a-fra")  # lost with the device
        fake_port.unplug()
        recorder.wait_for(lambda: "disconnected" in recorder.states, "disconnected")
        assert reader.state == "disconnected"

        fake_port.plug()
        recorder.wait_connected(times=2)
        fake_port.write(b"second\r")
        recorder.wait_for(lambda: len(recorder.frames) == 2, "the second frame")
    assert recorder.frames == [b"first", b"second"]
    assert recorder.states == ["connected", "disconnected", "connected"]
    messages = [r.getMessage() for r in debug_logs.records]
    assert all(str(fake_port.link) in message for message in messages)
    assert_logs_hold_no_data(debug_logs, reader, b"first", b"half-a-fra", b"second")


def test_heartbeat_advances_while_idle(fake_port: FakeReaderPort) -> None:
    recorder = Recorder()
    with running(pty_reader(fake_port, recorder)) as reader:
        recorder.wait_connected()
        first = reader.last_heartbeat
        wait_for(lambda: reader.last_heartbeat > first, "a later heartbeat", timeout=DEADLINE)


def test_stop_wakes_a_blocked_read(fake_port: FakeReaderPort) -> None:
    recorder = Recorder()
    reader = SerialReader(
        str(fake_port.link), recorder.on_frame, Framer("eol"), on_state=recorder.on_state,
        open_timeout=30.0,  # a read would block for 30 s without cancel_read()
    )  # fmt: skip
    reader.start()
    recorder.wait_connected()
    started = time.monotonic()
    assert reader.stop(timeout=DEADLINE) is True
    assert time.monotonic() - started < DEADLINE


# ---------------------------------------------------------------------------------------------
# socket:// peer close


def test_socket_peer_sends_one_frame_and_closes(debug_logs) -> None:
    server = socket.create_server(("127.0.0.1", 0))
    host, port = server.getsockname()[:2]

    recorder = Recorder()

    def serve_once() -> None:
        connection, _ = server.accept()
        server.close()  # later reconnects are refused
        with connection:
            # pyserial's open() discards input already received: send once it is connected.
            recorder.wait_connected()
            connection.sendall(b"]F023191000105866\r\n")

    thread = threading.Thread(target=serve_once, daemon=True)
    thread.start()
    reader = SerialReader(
        f"socket://{host}:{port}", recorder.on_frame, Framer("eol"),
        on_state=recorder.on_state, **FAST,
    )  # fmt: skip
    with running(reader):
        recorder.wait_for(lambda: "disconnected" in recorder.states, "disconnected")
        thread.join(DEADLINE)
    assert recorder.frames == [b"]F023191000105866"]
    assert recorder.states == ["connected", "disconnected"]
    assert_logs_hold_no_data(debug_logs, reader, BARCODE)


# ---------------------------------------------------------------------------------------------
# failures to open, backoff, callbacks that raise


class RecordingStop:
    """Stands in for the reader's stop event: records each backoff wait, returns at once, and
    sets itself after `limit` waits."""

    def __init__(self, limit: int) -> None:
        self.waits: list[float] = []
        self.limit = limit
        self.reached = threading.Event()

    def is_set(self) -> bool:
        return self.reached.is_set()

    def set(self) -> None:
        self.reached.set()

    def wait(self, timeout: float) -> bool:
        self.waits.append(timeout)
        if len(self.waits) >= self.limit:
            self.reached.set()
        return self.reached.is_set()


def test_backoff_doubles_to_the_maximum() -> None:
    def missing(url: str, baud: int, timeout: float):
        raise serial.SerialException(errno.ENOENT, f"could not open port {url}")

    states: list[str] = []
    reader = SerialReader(
        "/dev/serial/by-id/absent", lambda f: None, Framer(), on_state=states.append,
        opener=missing,
    )  # fmt: skip
    stop = RecordingStop(limit=7)
    reader._stop = stop  # type: ignore[assignment]
    reader.start()
    assert stop.reached.wait(DEADLINE)
    assert reader.stop(timeout=DEADLINE)
    assert stop.waits == [0.5, 1.0, 2.0, 4.0, 5.0, 5.0, 5.0]
    assert states == ["disconnected"]


def test_backoff_restarts_after_a_good_connection() -> None:
    recorder = Recorder()
    opened: list[serial.SerialBase] = []

    def flaky(url: str, baud: int, timeout: float) -> serial.SerialBase:
        if len(opened) in (0, 1, 3):  # fail, fail, (connect), fail, then connect again
            opened.append(None)  # type: ignore[arg-type]
            raise serial.SerialException(errno.ENOENT, "gone")
        port = open_port("loop://", baud, timeout)
        opened.append(port)
        port.close()  # the read fails at once: a device that drops straight away
        return port

    reader = SerialReader("loop://", recorder.on_frame, Framer(), on_state=recorder.on_state,
                          opener=flaky)  # fmt: skip
    stop = RecordingStop(limit=5)
    reader._stop = stop  # type: ignore[assignment]
    reader.start()
    assert stop.reached.wait(DEADLINE)
    assert reader.stop(timeout=DEADLINE)
    # fail 0.5, fail 1.0, connect+drop 0.5, fail 1.0, connect+drop 0.5
    assert stop.waits == [0.5, 1.0, 0.5, 1.0, 0.5]


def test_permission_denied_is_logged_once(debug_logs) -> None:
    calls: list[float] = []

    def denied(url: str, baud: int, timeout: float):
        calls.append(time.monotonic())
        raise serial.SerialException(errno.EACCES, f"could not open port {url}: Permission denied")

    path = "/dev/serial/by-id/usb-Fake_Reader_0001-if00"
    reader = SerialReader(path, lambda f: None, Framer(), opener=denied, **FAST)
    with running(reader):
        wait_for(lambda: len(calls) >= 4, "four open attempts", timeout=DEADLINE)
        assert reader.state == "disconnected"
    errors = [r for r in debug_logs.records if r.levelno >= logging.ERROR]
    assert [r.getMessage() for r in errors] == [
        f"card reader {path}: configuration error: permission denied (the agent's user needs "
        "read/write access: group dialout, DeviceAllow=char-ttyACM/char-ttyUSB)"
    ]
    assert len(debug_logs.records) == 1


def test_bad_url_is_a_configuration_error(debug_logs) -> None:
    reader = SerialReader("nosuch://x", lambda f: None, Framer(), **FAST)
    with running(reader):
        wait_for(lambda: reader.state == "disconnected", "disconnected", timeout=DEADLINE)
    assert [r.levelname for r in debug_logs.records] == ["ERROR"]
    assert "configuration error: not a usable port" in debug_logs.records[0].getMessage()


def test_raising_frame_handler_logs_type_only(fake_port: FakeReaderPort, debug_logs) -> None:
    recorder = Recorder()

    def handler(frame: bytes) -> None:
        if frame.startswith(b"%B"):
            raise ValueError(f"cannot handle {frame!r}")
        recorder.on_frame(frame)

    reader = SerialReader(str(fake_port.link), handler, Framer(), on_state=recorder.on_state,
                          **FAST)  # fmt: skip
    with running(reader):
        recorder.wait_connected()
        fake_port.write(b"%B4111111111111111^DOE/JANE^2812?\r" + BARCODE + b"\r")
        recorder.wait_for(lambda: recorder.frames == [BARCODE], "the frame after the failure")
    assert f"card reader {fake_port.link}: frame handler failed (ValueError)" in [
        r.getMessage() for r in debug_logs.records
    ]
    assert_logs_hold_no_data(debug_logs, reader, b"4111111111111111", BARCODE)


def test_start_twice_is_refused() -> None:
    reader = SerialReader("loop://", lambda f: None, Framer())
    with running(reader), pytest.raises(RuntimeError, match="^reader already started$"):
        reader.start()
