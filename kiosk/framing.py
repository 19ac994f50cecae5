"""Cut a card reader's byte stream into frames (docs/kiosk.md#reader-input).

Pure and clock-free: the caller passes the time in, so every mode is testable without sleeping.
A Framer belongs to one thread (the reader loop); it holds no lock.

Modes:
- `eol`: a frame ends at CR or LF; CRLF gives one frame, empty frames are dropped.
- `idle`: a frame ends after `idle_ms` of silence.
- `stx_etx`: a frame is what lies between STX (0x02) and ETX (0x03); bytes outside are noise.
- `fixed`: every `fixed_len` bytes are a frame. A partial frame left by `idle_ms` of silence is
  dropped, so one lost byte cannot shift every later frame.

A frame that grows past `max_frame` bytes is discarded, along with the rest of it up to its end
(terminator, silence or ETX), and counted in `overflows`: the caller reports `too_long` from
the count and never sees the bytes.
"""

from __future__ import annotations

from typing import Literal

Mode = Literal["eol", "idle", "stx_etx", "fixed"]
MODES: tuple[str, ...] = ("eol", "idle", "stx_etx", "fixed")
MAX_FRAME = 256

_CR, _LF, _STX, _ETX = 0x0D, 0x0A, 0x02, 0x03


class Framer:
    """Incremental framer: `feed()` bytes as they arrive, `flush_if_idle()` between reads."""

    def __init__(
        self,
        mode: Mode = "eol",
        idle_ms: int = 50,
        fixed_len: int | None = None,
        max_frame: int = MAX_FRAME,
    ) -> None:
        if mode not in MODES:
            raise ValueError(f"framing: mode must be one of {', '.join(MODES)}")
        if idle_ms <= 0:
            raise ValueError("framing: idle_ms must be positive")
        if max_frame < 1:
            raise ValueError("framing: max_frame must be positive")
        if mode == "fixed" and (fixed_len is None or not 1 <= fixed_len <= max_frame):
            raise ValueError(f"framing: fixed needs a length between 1 and {max_frame}")
        self.mode = mode
        self.idle_s = idle_ms / 1000
        self.fixed_len = fixed_len
        self.max_frame = max_frame
        self.overflows = 0
        self._buf = bytearray()
        self._discarding = False  # inside an over-long frame, dropping bytes until its end
        self._in_frame = False  # stx_etx: between STX and ETX
        self._last_rx: float | None = None

    @property
    def pending(self) -> int:
        """Bytes held for an unfinished frame."""
        return len(self._buf)

    def reset(self) -> None:
        """Forget any partial frame (after a disconnect). `overflows` keeps counting."""
        self._buf.clear()
        self._discarding = False
        self._in_frame = False
        self._last_rx = None

    def feed(self, data: bytes, now: float) -> list[bytes]:
        """Add bytes received at monotonic time `now` (seconds); return the frames completed."""
        frames = self.flush_if_idle(now)
        if not data:
            return frames
        self._last_rx = now
        step = {
            "eol": self._eol_byte,
            "idle": self._plain_byte,
            "stx_etx": self._stx_etx_byte,
            "fixed": self._fixed_byte,
        }[self.mode]
        for byte in data:
            frame = step(byte)
            if frame:
                frames.append(frame)
        return frames

    def flush_if_idle(self, now: float) -> list[bytes]:
        """After `idle_ms` of silence: end an idle-mode frame (or an over-long one being
        discarded); in fixed mode drop a stale partial frame. Other modes wait for their end
        marker, however long it takes."""
        if self._last_rx is None or now - self._last_rx < self.idle_s:
            return []
        if self.mode == "idle":
            return self._end_frame()
        if self.mode == "fixed":
            self._buf.clear()
        return []

    # -- per-mode byte handlers: return a completed frame or None ----------------------------

    def _eol_byte(self, byte: int) -> bytes | None:
        if byte in (_CR, _LF):
            frame = self._end_frame()
            return frame[0] if frame else None
        self._append(byte)
        return None

    def _plain_byte(self, byte: int) -> bytes | None:
        self._append(byte)
        return None

    def _stx_etx_byte(self, byte: int) -> bytes | None:
        if byte == _STX:  # a new STX restarts the frame: the previous one never ended
            self._buf.clear()
            self._discarding = False
            self._in_frame = True
            return None
        if not self._in_frame:
            return None
        if byte == _ETX:
            self._in_frame = False
            frame = self._end_frame()
            return frame[0] if frame else None
        self._append(byte)
        return None

    def _fixed_byte(self, byte: int) -> bytes | None:
        self._buf.append(byte)
        if len(self._buf) == self.fixed_len:
            frame = bytes(self._buf)
            self._buf.clear()
            return frame
        return None

    # -- shared -------------------------------------------------------------------------------

    def _append(self, byte: int) -> None:
        if self._discarding:
            return
        self._buf.append(byte)
        if len(self._buf) > self.max_frame:
            self.overflows += 1
            self._buf.clear()
            self._discarding = True

    def _end_frame(self) -> list[bytes]:
        """Close the current frame: [frame], or [] if it was empty or over-long."""
        frame = bytes(self._buf)
        self._buf.clear()
        if self._discarding:
            self._discarding = False
            return []
        return [frame] if frame else []


def framer_from_setting(setting: str, idle_ms: int = 50, max_frame: int = MAX_FRAME) -> Framer:
    """A Framer from the reader's `framing` setting: `eol`, `idle`, `stx_etx` or `fixed:<n>`."""
    mode, _, length = setting.partition(":")
    if mode == "fixed":
        if not length.isascii() or not length.isdigit():
            raise ValueError("framing: use fixed:<n> with n a number of bytes")
        return Framer("fixed", idle_ms=idle_ms, fixed_len=int(length), max_frame=max_frame)
    if length or mode not in MODES:
        raise ValueError("framing: must be eol, idle, stx_etx or fixed:<n>")
    return Framer(mode, idle_ms=idle_ms, max_frame=max_frame)  # type: ignore[arg-type]
