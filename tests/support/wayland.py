"""The kiosk's own Wayland session, headless, for tests (docs/kiosk.md#the-kiosk-browser): sway
with the project's config (systemd/patronpay-kiosk-sway.config) and Chromium with the project's
flags and managed policy, run as an unprivileged user in a private mount and PID namespace (the
policy is bind-mounted over /etc/chromium there only; when the session stops, every process in
it goes). Taps come from a virtual pointer (wlr-virtual-pointer), screenshots from grim, the
page's state from Chromium's remote debugging port (tests/support/devtools.py)."""

from __future__ import annotations

import io
import json
import os
import pwd
import shutil
import signal
import struct
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from PIL import Image

from kiosk.touch_keyboard import DISPLAY, REGISTRY, Connection, message, read_string, string, uint
from support.devtools import PageSocket, pages, port_of

ROOT = Path(__file__).resolve().parents[2]
SYSTEMD = ROOT / "systemd"
USER = "patronpay-kiosk-ci"
BUTTON_LEFT, PRESSED, RELEASED = 0x110, 1, 0
# Port 0: Chromium picks a free port and writes it to DevToolsActivePort in the profile; it
# listens on 127.0.0.1 only.
DEBUGGING = "--remote-debugging-port=0"


def ensure_user() -> pwd.struct_passwd:
    """The unprivileged user the session runs as (created on first use; tests run as root)."""
    try:
        return pwd.getpwnam(USER)
    except KeyError:
        subprocess.run(["useradd", "--system", "--user-group", "--no-create-home",
                        "--shell", "/usr/sbin/nologin", USER], check=True)
        return pwd.getpwnam(USER)


def policy_for(kiosk_url: str, cashnet_url: str, proxy_url: str) -> dict:
    """The project's Chromium policy, its three allowed addresses replaced by the test's, and
    developer tools allowed: with DeveloperToolsAvailability 2 Chromium refuses the remote
    debugging websocket (403 Forbidden), the test's one way to read what a field holds."""
    policy = json.loads((SYSTEMD / "chromium-kiosk-policy.json").read_text())
    origin = urlsplit(cashnet_url)
    policy["URLAllowlist"] = [kiosk_url, f"{origin.scheme}://{origin.netloc}",
                              proxy_url + "/cashnet/return"]
    assert policy["DeveloperToolsAvailability"] == 2
    policy["DeveloperToolsAvailability"] = 1
    return policy


def sway_config_for(kiosk_url: str, browser_dir: Path) -> str:
    """The project's sway config with the agent's address and the browser's runtime directory
    of this test; the keypad's watcher runs on Debian's python3 (the venv may be unreadable
    to the session's user). Chromium also opens its remote debugging port, on loopback, so the
    test can read what the page holds (tests/support/devtools.py)."""
    text = (SYSTEMD / "patronpay-kiosk-sway.config").read_text()
    for unit_value, here in (("http://127.0.0.1:8080", kiosk_url),
                             ("/run/kiosk-browser", str(browser_dir)),
                             ("/opt/patronpay/.venv/bin/python", "/usr/bin/python3"),
                             (" --app=", f" {DEBUGGING} --app=")):
        assert unit_value in text, unit_value
        text = text.replace(unit_value, here)
    return text


@dataclass
class WaylandSession:
    folder: Path
    process: subprocess.Popen
    log: Path
    pointer: VirtualPointer | None = None

    @property
    def runtime(self) -> Path:
        return self.folder / "run"

    def env(self) -> dict[str, str]:
        sockets = sorted(self.runtime.glob("wayland-[0-9]"))
        ipc = sorted(self.runtime.glob("sway-ipc.*.sock"))
        return {"PATH": "/usr/bin:/bin", "XDG_RUNTIME_DIR": str(self.runtime),
                "WAYLAND_DISPLAY": sockets[0].name if sockets else "",
                "SWAYSOCK": str(ipc[0]) if ipc else ""}

    def wait_ready(self, deadline: float) -> None:
        while not (self.env()["WAYLAND_DISPLAY"] and self.env()["SWAYSOCK"]):
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"sway did not start:\n{self.log_text()}")
            time.sleep(0.1)
        self.pointer = VirtualPointer(self.runtime / self.env()["WAYLAND_DISPLAY"])

    def screenshot(self, name: str) -> Image.Image:
        path = self.folder / f"{name}.png"
        subprocess.run(["grim", str(path)], env=self.env(), check=True, timeout=30)
        return Image.open(io.BytesIO(path.read_bytes())).convert("RGB")

    def swaymsg(self, *args: str) -> str:
        return subprocess.run(["swaymsg", *args], env=self.env(), check=True, timeout=30,
                              capture_output=True, text=True).stdout

    def tap(self, x: float, y: float) -> None:
        assert self.pointer is not None
        self.pointer.click(round(x), round(y))

    def window(self) -> dict[str, int]:
        """Where sway put the browser's window (x, y, width, height on the output): the whole
        output, or the part above the keypad while the keypad shows."""
        views = [node for node in walk(json.loads(self.swaymsg("-t", "get_tree")))
                 if node.get("pid") and node.get("type") == "con"]
        assert len(views) == 1, f"expected the one browser window, found {len(views)}"
        return views[0]["rect"]

    def page(self, address: str, deadline: float) -> PageSocket:
        """The browser's page whose address starts with `address`, once it shows one."""
        port = port_of(self.folder / "browser" / "profile", deadline)
        while True:
            found = [t for t in pages(port) if t.get("url", "").startswith(address)]
            if found:
                return PageSocket.open(found[0]["webSocketDebuggerUrl"])
            if time.monotonic() > deadline:
                raise AssertionError(f"the browser never showed {address}:\n{self.log_text()}")
            time.sleep(0.1)

    def log_text(self) -> str:
        lines = self.log.read_text(errors="replace").splitlines() if self.log.exists() else []
        return "\n".join(line for line in lines if "dbus" not in line)[-4000:]

    def stop(self) -> None:
        if self.pointer is not None:
            self.pointer.close()
        # SIGKILL to the namespace's first process (sway) ends every process in the namespace.
        # Not SIGTERM to unshare: it blocks SIGTERM while it waits for its child, and its
        # --kill-child death signal is cleared when setpriv changes the user, so sway and
        # Chromium outlived each test.
        for pid in children_of(self.process.pid):
            os.kill(pid, signal.SIGKILL)
        try:
            self.process.wait(15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(15)
        if not os.environ.get("PATRONPAY_KEEP_WAYLAND"):
            shutil.rmtree(self.folder, ignore_errors=True)


def children_of(pid: int) -> list[int]:
    """The processes whose parent is `pid` (from /proc/*/stat: the field after the name)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # gone meanwhile
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


def walk(node: dict) -> Iterator[dict]:
    yield node
    for child in node.get("nodes", []) + node.get("floating_nodes", []):
        yield from walk(child)


def start_session(kiosk_url: str, cashnet_url: str, proxy_url: str) -> WaylandSession:
    """sway on the headless backend, with Chromium and the keypad as its config starts them."""
    user = ensure_user()
    folder = Path(tempfile.mkdtemp(prefix="patronpay-wayland-"))
    folder.chmod(0o755)
    for name in ("run", "home", "browser"):
        (folder / name).mkdir(mode=0o700)
        os.chown(folder / name, user.pw_uid, user.pw_gid)
    lib = folder / "lib" / "kiosk"
    lib.mkdir(parents=True)
    (lib / "__init__.py").write_text("")
    shutil.copy(ROOT / "kiosk" / "touch_keyboard.py", lib / "touch_keyboard.py")
    etc = folder / "etc-chromium"
    shutil.copytree("/etc/chromium", etc)
    (etc / "policies" / "managed").mkdir(parents=True, exist_ok=True)
    (etc / "policies" / "managed" / "patronpay-kiosk.json").write_text(
        json.dumps(policy_for(kiosk_url, cashnet_url, proxy_url)))
    config = folder / "kiosk-sway.config"
    config.write_text(sway_config_for(kiosk_url, folder / "browser"))
    for path in [*(folder / "lib").rglob("*"), *etc.rglob("*"), config]:
        path.chmod(0o755 if path.is_dir() else 0o644)
    (folder / "lib").chmod(0o755)
    etc.chmod(0o755)
    env = {"PATH": "/usr/bin:/bin", "HOME": str(folder / "home"), "USER": user.pw_name,
           "XDG_RUNTIME_DIR": str(folder / "run"), "WLR_BACKENDS": "headless",
           "WLR_LIBINPUT_NO_DEVICES": "1", "WLR_RENDERER": "pixman", "XKB_DEFAULT_LAYOUT": "us",
           "XDG_CONFIG_HOME": str(folder / "browser" / "config"),
           "XDG_CACHE_HOME": str(folder / "browser" / "cache"), "PYTHONPATH": str(folder / "lib")}
    inner = (f"mount --bind {etc} /etc/chromium && exec setpriv --reuid={user.pw_uid} "
             f"--regid={user.pw_gid} --init-groups env -i "
             + " ".join(f"{k}={v}" for k, v in env.items())
             + f" sway --config {config}")
    log = folder / "session.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            ["unshare", "--mount", "--propagation", "private", "--pid", "--fork",
             "--kill-child", "sh", "-c", inner], stdout=out, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL)
    return WaylandSession(folder, process, log)


@dataclass
class VirtualPointer:
    """A mouse that exists only through the compositor (wlr-virtual-pointer-unstable-v1): what
    `seat cursor` cannot do while the headless seat has no pointer at all. A click is what a
    tap on the touchscreen does to the page and to the keypad."""

    path: Path
    conn: Connection = field(init=False)
    width: int = 1280
    height: int = 720
    next_id: int = 6  # the first free object id after the pointer's (see __post_init__)

    def __post_init__(self) -> None:
        self.conn = Connection.open(str(self.path))
        self.conn.send(message(DISPLAY, 1, uint(REGISTRY)) + message(DISPLAY, 0, uint(3)))
        found: dict[str, int] = {}
        stream = self.conn.messages()
        for object_id, opcode, payload in stream:
            if object_id == REGISTRY and opcode == 0:
                (name,) = struct.unpack_from("<I", payload)
                found.setdefault(read_string(payload, 4)[0], name)
            if object_id == 3:
                break
        manager = "zwlr_virtual_pointer_manager_v1"
        self.conn.send(message(REGISTRY, 0, uint(found[manager]) + string(manager) + uint(1)
                               + uint(4)))
        self.conn.send(message(4, 0, uint(0) + uint(5)))  # create_virtual_pointer(null, 5)

    def click(self, x: int, y: int) -> None:
        """Move there, press, release; return once sway has handled all three (a
        wl_display.sync round trip: requests on one connection are handled in order, and the
        surface under the pointer is sent its enter before the press, in that order too)."""
        stamp = int(time.monotonic() * 1000) & 0xFFFFFFFF
        frame = message(5, 4)
        # Two moves, the last one pixel on: a client the pointer enters is told where in
        # wl_pointer.enter, which wvkbd ignores (it places a press where the last motion was).
        for at in (x - 1, x):
            self.conn.send(message(5, 1, uint(stamp) + uint(at) + uint(y) + uint(self.width)
                                   + uint(self.height)) + frame)
        self.conn.send(message(5, 2, uint(stamp) + uint(BUTTON_LEFT) + uint(PRESSED)) + frame)
        self.conn.send(message(5, 2, uint(stamp + 60) + uint(BUTTON_LEFT) + uint(RELEASED))
                       + frame)
        self.roundtrip()

    def roundtrip(self) -> None:
        callback, self.next_id = self.next_id, self.next_id + 1
        self.conn.send(message(DISPLAY, 0, uint(callback)))
        for object_id, _opcode, _payload in self.conn.messages():
            if object_id == callback:  # wl_callback.done
                return

    def close(self) -> None:
        self.conn.sock.close()
