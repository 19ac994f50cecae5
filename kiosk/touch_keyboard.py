"""The kiosk's on-screen keypad follows the focus (docs/kiosk.md#card-entry-on-a-touch-screen):
shown while a text field has the focus, hidden otherwise.

`python -m kiosk.touch_keyboard -- wvkbd-mobintl --hidden -l dialer ...` starts the keypad and
then watches the Wayland input-method protocol (input-method-unstable-v2), where the compositor
(sway) tells the one input method of the seat when a text field takes or loses the focus:
`activate` shows the keypad (SIGUSR2), `deactivate` hides it (SIGUSR1). Chromium takes part
with `--enable-wayland-ime --wayland-text-input-version=3`. Before it starts the keypad, it puts
a virtual keyboard that never types on the seat (see bind_input_method for why).

The compositor also sends an input method the text around the cursor, which on CashNet's page
is card data: this program skips those messages unread and never logs, prints or stores any
content. It needs no library: the few messages it reads are decoded here from the wire.
"""

from __future__ import annotations

import os
import signal
import socket
import struct
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass

DISPLAY, REGISTRY = 1, 2
# wl_display.sync and get_registry, wl_registry.bind, zwp_input_method_manager_v2.get_input_method,
# zwp_virtual_keyboard_manager_v1.create_virtual_keyboard.
SYNC, GET_REGISTRY, BIND, GET_INPUT_METHOD, CREATE_VIRTUAL_KEYBOARD = 0, 1, 0, 0, 0
# Events: wl_display.error, wl_registry.global; zwp_input_method_v2 activate, deactivate,
# done, unavailable.
ERROR, GLOBAL = 0, 0
ACTIVATE, DEACTIVATE, DONE, UNAVAILABLE = 0, 1, 5, 6
SHOW, HIDE = signal.SIGUSR2, signal.SIGUSR1


class WaylandError(RuntimeError):
    pass


def message(object_id: int, opcode: int, payload: bytes = b"") -> bytes:
    return struct.pack("<II", object_id, (8 + len(payload)) << 16 | opcode) + payload


def uint(value: int) -> bytes:
    return struct.pack("<I", value)


def string(value: str) -> bytes:
    raw = value.encode() + b"\0"
    return uint(len(raw)) + raw + b"\0" * (-len(raw) % 4)


def read_string(payload: bytes, at: int) -> tuple[str, int]:
    (length,) = struct.unpack_from("<I", payload, at)
    text = payload[at + 4:at + 4 + length - 1].decode("utf-8", "replace")
    return text, at + 4 + length + (-length % 4)


@dataclass
class Connection:
    """The client's end of the compositor's socket: whole messages in, requests out."""

    sock: socket.socket
    buffer: bytes = b""

    @classmethod
    def open(cls, path: str = "") -> Connection:
        """The compositor's socket: `path`, else $WAYLAND_DISPLAY in $XDG_RUNTIME_DIR."""
        if not path:
            name = os.environ.get("WAYLAND_DISPLAY", "wayland-0")
            path = name if name.startswith("/") else os.path.join(
                os.environ["XDG_RUNTIME_DIR"], name)
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.connect(path)
        return cls(sock)

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def messages(self) -> Iterator[tuple[int, int, bytes]]:
        while True:
            while len(self.buffer) >= 8:
                object_id, word = struct.unpack_from("<II", self.buffer)
                size = word >> 16
                if len(self.buffer) < size:
                    break
                payload, self.buffer = self.buffer[8:size], self.buffer[size:]
                yield object_id, word & 0xFFFF, payload
            chunk = self.sock.recv(65536)
            if not chunk:
                raise WaylandError("the compositor closed the connection")
            self.buffer += chunk


def protocol_error(payload: bytes) -> WaylandError:
    """wl_display.error: the object, the code and the compositor's message (never content)."""
    object_id, code = struct.unpack_from("<II", payload)
    return WaylandError(f"protocol error on object {object_id}, code {code}: "
                        f"{read_string(payload, 8)[0]}")


def bind_input_method(conn: Connection) -> tuple[int, Iterator[tuple[int, int, bytes]]]:
    """Bind the seat and the input method manager, ask for the seat's input method, and give
    the seat a keyboard that never types, before the keypad starts.

    Why the keyboard: Debian 12's wvkbd (0.12) asks the seat for a new pointer and a new touch
    object every time the compositor announces the seat's devices, and then acts on every tap
    once per object. wvkbd's own virtual keyboard makes sway announce them again (the seat
    gains a keyboard), so on a kiosk without a keyboard each tap typed its digit twice. With
    this keyboard already on the seat, wvkbd's adds nothing and the announcement is not
    repeated (fixed upstream in September 2023: https://github.com/jjsullivan5196/wvkbd/pull/40).
    """
    conn.send(message(DISPLAY, GET_REGISTRY, uint(REGISTRY)) + message(DISPLAY, SYNC, uint(3)))
    found: dict[str, tuple[int, int]] = {}
    stream = conn.messages()
    for object_id, opcode, payload in stream:
        if object_id == DISPLAY and opcode == ERROR:
            raise protocol_error(payload)
        if object_id == REGISTRY and opcode == GLOBAL:
            (name,) = struct.unpack_from("<I", payload)
            interface, at = read_string(payload, 4)
            (version,) = struct.unpack_from("<I", payload, at)
            found.setdefault(interface, (name, version))
        if object_id == 3:  # the sync's callback: every global has been announced
            break
    missing = {"wl_seat", "zwp_input_method_manager_v2", "zwp_virtual_keyboard_manager_v1"} \
        - set(found)
    if missing:
        raise WaylandError(f"the compositor lacks {', '.join(sorted(missing))}")
    # New ids in the order they are used: the compositor refuses a gap.
    seat, manager, keyboards, method, keyboard, done = 4, 5, 6, 7, 8, 9
    for new_id, interface, version in ((seat, "wl_seat", 1),
                                       (manager, "zwp_input_method_manager_v2", 1),
                                       (keyboards, "zwp_virtual_keyboard_manager_v1", 1)):
        name, _ = found[interface]
        conn.send(message(REGISTRY, BIND, uint(name) + string(interface) + uint(version)
                          + uint(new_id)))
    conn.send(message(manager, GET_INPUT_METHOD, uint(seat) + uint(method)))
    conn.send(message(keyboards, CREATE_VIRTUAL_KEYBOARD, uint(seat) + uint(keyboard)))
    conn.send(message(DISPLAY, SYNC, uint(done)))
    for object_id, opcode, payload in stream:
        if object_id == DISPLAY and opcode == ERROR:
            raise protocol_error(payload)
        if object_id == done:
            break
    return method, stream


def follow_focus(keyboard: subprocess.Popen, method: int,
                 stream: Iterator[tuple[int, int, bytes]]) -> None:
    """Show or hide the keypad at every `done` that changes whether a field has the focus.
    Only the opcodes are read; surrounding text and content types are skipped unread."""
    active = pending = False
    for object_id, opcode, payload in stream:
        if object_id == DISPLAY and opcode == ERROR:
            raise protocol_error(payload)
        if object_id != method:
            continue
        if opcode == UNAVAILABLE:
            raise WaylandError("another input method is already running on this seat")
        if opcode in (ACTIVATE, DEACTIVATE):
            pending = opcode == ACTIVATE
        elif opcode == DONE and pending != active:
            active = pending
            keyboard.send_signal(SHOW if active else HIDE)


def main(argv: list[str]) -> int:
    command = argv[1:] if argv[:1] == ["--"] else argv
    if not command:
        print("usage: python -m kiosk.touch_keyboard -- KEYBOARD-COMMAND...", file=sys.stderr)
        return 2
    try:
        conn = Connection.open()
        method, stream = bind_input_method(conn)
    except (OSError, KeyError, WaylandError) as exc:
        print(f"touch keyboard: {exc}", file=sys.stderr)
        return 1
    keyboard = subprocess.Popen(command)
    try:
        follow_focus(keyboard, method, stream)
    except (OSError, KeyError, WaylandError) as exc:
        print(f"touch keyboard: {exc}", file=sys.stderr)
        return 1
    finally:
        keyboard.terminate()
        keyboard.wait(5)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
