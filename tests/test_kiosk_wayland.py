"""The kiosk as its units run it (issue 19): sway on the headless backend with the project's
config, Chromium with the project's flags and managed policy, the keypad, all as an unprivileged
user; the agent with the simulated reader. A scan shows the fees with Pay on a 1280x720 screen,
and on CashNet's page a tap on the card field brings up the keypad, whose taps type digits into
the field. The screen is checked on grim's screenshots by colour and shape, no OCR; the window's
place from sway; what the field holds from the page, through Chromium's remote debugging port
(docs/kiosk.md#the-kiosk-browser, docs/kiosk.md#card-entry-on-a-touch-screen)."""

from __future__ import annotations

import os
import re
import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from PIL import Image
from support.kiosk import MARIA
from support.waiting import wait_for
from support.wayland import WaylandSession, start_session

from kiosk.simulated_reader import ScannerSocket

ACCENT = (0x00, 0x3A, 0x70)  # the kiosk's --accent: its header and its primary buttons
# wvkbd's "dialer" layer as wvkbd 0.12 defines it (layout.mobintl.h): rows of (key, width).
DIALER = [[("Esc", 1), ("+", 1), ("BackSpace", 1)], [("1", 1), ("2", 1), ("3", 1)],
          [("4", 1), ("5", 1), ("6", 1)], [("7", 1), ("8", 1), ("9", 1)],
          [("*", 1), ("0", 1), ("#", 1)], [("Abc", 1), ("Enter", 2)]]
SYSTEMD = Path(__file__).resolve().parents[1] / "systemd"
SCREEN_DEADLINE = 30.0

TOOLS = {"sway": "sway", "grim": "grim", "chromium": "chromium", "unshare": "util-linux",
         "setpriv": "util-linux", "python3": "python3"}


@pytest.fixture
def session(kiosk) -> Iterator[tuple[WaylandSession, object, ScannerSocket]]:
    if os.geteuid() != 0:
        pytest.skip("runs the session as another user in its own mount namespace: needs root "
                    "(CI runs as root)")
    missing = [package for tool, package in TOOLS.items() if shutil.which(tool) is None]
    if missing:
        pytest.fail(f"missing Debian packages {sorted(set(missing))}: bash .ci/run installs them")
    scanner = ScannerSocket().start()
    k = kiosk(reader=scanner.url)
    wayland = start_session(k.url, k.d.settings.cashnet_checkout_url, k.d.url)
    try:
        wayland.wait_ready(time.monotonic() + SCREEN_DEADLINE)
        yield wayland, k, scanner
    finally:
        wayland.stop()
        scanner.close()


def accent_boxes(image: Image.Image, top: int, bottom: int) -> list[tuple[int, int, int, int]]:
    """Rows top..bottom cut into bands of accent-coloured pixels: each band's bounding box
    (left, top, right, bottom) where it holds 150+ accent pixels a row (a button, not a tick)."""
    pixels, width = image.load(), image.width
    boxes, current = [], None
    for y in range(top, bottom):
        xs = [x for x in range(0, width, 2) if near(pixels[x, y], ACCENT)]
        if len(xs) * 2 >= 150:
            left, right = min(xs), max(xs)
            current = [min(current[0], left), current[1], max(current[2], right), y] if current \
                else [left, y, right, y]
        elif current:
            boxes.append(tuple(current))
            current = None
    if current:
        boxes.append(tuple(current))
    return boxes


def near(pixel: tuple[int, int, int], colour: tuple[int, int, int], slack: int = 24) -> bool:
    return all(abs(a - b) <= slack for a, b in zip(pixel, colour, strict=True))


def screen_until(wayland: WaylandSession, name: str, test: Callable[[Image.Image], object],
                 what: str) -> tuple[Image.Image, object]:
    deadline = time.monotonic() + SCREEN_DEADLINE
    while True:
        image = wayland.screenshot(name)
        found = test(image)
        if found:
            return image, found
        if time.monotonic() > deadline:
            raise AssertionError(f"the screen never showed {what}; see {wayland.folder}/{name}.png"
                                 f"\n{wayland.log_text()}")
        time.sleep(0.3)


def pay_button(image: Image.Image):
    """The Pay button: an accent band below the header, wholly on screen."""
    boxes = [b for b in accent_boxes(image, 90, image.height) if b[3] - b[1] >= 40]
    band = next((b for b in boxes if b[3] < image.height - 2 and b[2] - b[0] >= 150), None)
    if band is None:
        return None
    # The solid button is the first run of accent across the band's top ("Pay a different
    # amount" beside it is white with an accent border).
    pixels, y = image.load(), band[1] + 6  # above the label's white text
    right = band[0]
    while right + 1 < image.width and near(pixels[right + 1, y], ACCENT):
        right += 1
    return (band[0], band[1], right, band[3]) if right - band[0] >= 150 else None


def scan_to_fees(wayland: WaylandSession, k, scanner: ScannerSocket) -> tuple[int, int, int, int]:
    idle, header = screen_until(wayland, "1-idle", lambda im: accent_boxes(im, 0, 90),
                                "the kiosk's header")
    assert idle.size == (1280, 720)
    assert pay_button(idle) is None
    wait_for(lambda: scanner.connected > 0, "the agent to connect to the reader")
    scanner.scan(MARIA)
    session = wait_for(k.session, "the agent's session for the scanned card")
    assert "Maria" in str(session)
    _image, box = screen_until(wayland, "2-fees", pay_button, "the fees with Pay on screen")
    return box


def test_a_scan_shows_the_fees_with_pay_on_a_1280x720_screen(session):
    wayland, k, scanner = session
    left, top, right, bottom = scan_to_fees(wayland, k, scanner)
    # Pay is a big button (64 px or more in CSS, two lines of accent at least), above the fold.
    assert bottom - top >= 50 and right - left >= 150 and bottom < 720


def keypad_height() -> int:
    """The keypad's height on a landscape screen, as the sway config starts wvkbd (-L)."""
    config = (SYSTEMD / "patronpay-kiosk-sway.config").read_text()
    return int(re.search(r"wvkbd-mobintl .*?-L (\d+)", config).group(1))


def key_centre(label: str, keypad: tuple[int, int, int, int]) -> tuple[float, float]:
    """Where wvkbd puts a key of its dialer layer in the keypad's box (left, top, width,
    height): rows share the height equally, keys share their row by their widths."""
    left, top, width, height = keypad
    row = next(i for i, keys in enumerate(DIALER) if label in dict(keys))
    names, widths = zip(*DIALER[row], strict=True)
    column = names.index(label)
    middle = sum(widths[:column]) + widths[column] / 2
    row_height = height // len(DIALER)
    return left + middle * width / sum(widths), top + (row + 0.5) * row_height


def dark_pixels(image: Image.Image, box: tuple[int, int, int, int], below: int) -> int:
    return sum(image.crop(box).convert("L").histogram()[:below])


def keypad_shown(image: Image.Image, height: int) -> bool:
    """wvkbd's dark keys fill the bottom of the screen."""
    strip = (0, image.height - height, image.width, image.height)
    return dark_pixels(image, strip, 110) > 0.6 * image.width * height


# CashNet's card number field, read from the page through the test's DevTools connection.
CARD = "document.getElementById('card-number')"
CASHNET_READY = f"document.readyState === 'complete' && {CARD} !== null"
# Brought into view as a patron scrolls to it (a swipe), to the middle of the screen.
CARD_INTO_VIEW = f"{CARD}.scrollIntoView({{block: 'center'}})"
# Its box in the page's view (CSS pixels: the screen's, at scale 1) and the view's height.
CARD_BOX = (f"(() => {{ const r = {CARD}.getBoundingClientRect();"
            " return [r.left, r.top, r.right, r.bottom, innerHeight]; })()")


def card_on_screen(page, window: dict[str, int]) -> tuple[int, int, int, int]:
    """The card field's box on the screen, once the page has the window's size (the view is
    the bottom of the window: an --app window in sway has no title bar)."""
    def laid_out():
        *box, view_height = page.evaluate(CARD_BOX)
        return view_height <= window["height"] and (box, view_height)

    box, view_height = wait_for(laid_out, "the page to take the window's size")
    assert box[1] >= 0 and box[3] <= view_height, f"the card field is out of view: {box}"
    top = window["y"] + window["height"] - view_height
    return (round(window["x"] + box[0]), round(top + box[1]), round(window["x"] + box[2]),
            round(top + box[3]))


def card_holds(page, expected: str) -> None:
    deadline = time.monotonic() + SCREEN_DEADLINE
    while (value := page.evaluate(f"{CARD}.value")) != expected:
        if time.monotonic() > deadline:
            raise AssertionError(f"the card field holds {value!r}, not {expected!r}")
        time.sleep(0.05)


def test_the_keypad_comes_up_on_cashnets_card_field_and_types_digits(session):
    if shutil.which("wvkbd-mobintl") is None:
        pytest.skip("Debian's wvkbd is not installable here (apt-cache policy wvkbd)")
    wayland, k, scanner = session
    height = keypad_height()
    left, top, right, bottom = scan_to_fees(wayland, k, scanner)
    wayland.tap((left + right) / 2, (top + bottom) / 2)  # Pay
    page = wayland.page(k.d.sandbox.url, time.monotonic() + SCREEN_DEADLINE)
    try:
        wait_for(lambda: page.evaluate(CASHNET_READY), "CashNet's checkout page",
                 timeout=SCREEN_DEADLINE)
        screen_until(wayland, "3-cashnet", lambda im: not keypad_shown(im, height),
                     "CashNet's page without the keypad")
        window = wayland.window()
        assert (window["width"], window["height"]) == (1280, 720)
        page.evaluate(CARD_INTO_VIEW)
        field = card_on_screen(page, window)
        wayland.tap((field[0] + field[2]) / 2, (field[1] + field[3]) / 2)

        # The keypad comes up at the bottom, as high as configured, and sway shrinks the
        # window to the part of the screen above it; the field keeps the focus, in view.
        window = wait_for(lambda: (w := wayland.window())["height"] < 720 and w,
                          "the window to make room for the keypad", timeout=SCREEN_DEADLINE)
        keypad = (0, window["y"] + window["height"], 1280, 720 - window["y"] - window["height"])
        assert keypad[3] == height, f"the keypad is not as configured: {keypad}"
        assert page.evaluate(f"document.activeElement === {CARD}")
        field = card_on_screen(page, window)
        inset = (field[0] + 4, field[1] + 4, field[2] - 4, field[3] - 4)
        page.evaluate(f"{CARD}.style.caretColor = 'transparent'")  # no blinking in the checks
        focused, _ = screen_until(
            wayland, "4-keypad",
            lambda im: keypad_shown(im, height) and dark_pixels(im, inset, 100) < 60,
            "the keypad under the empty card field")

        for typed in ("4", "42", "424", "4242"):  # a tap, a digit: never lost, never twice
            wayland.tap(*key_centre(typed[-1], keypad))
            card_holds(page, typed)
    finally:
        page.close()

    # What the patron sees: the digits in the field (the same in two screenshots in a row: the
    # last one painted), the keypad under it.
    blank, seen = dark_pixels(focused, inset, 100), [-1]

    def digits_shown(image: Image.Image) -> bool:
        ink = dark_pixels(image, inset, 100)
        settled, seen[0] = ink == seen[0], ink
        return keypad_shown(image, height) and ink > blank + 60 and settled

    screen_until(wayland, "5-typed", digits_shown, "the digits in the card field, over the keypad")
