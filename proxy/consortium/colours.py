"""An institution's colour on its pages (docs/consortium.md#what-the-pages-show): the site's
accent, the background of the header and buttons behind white text, and the colour of links and
buttons on white and on the cards' light grey. A colour too light for any of these is refused
at start-up, so no institution's pages fail WCAG's contrast (4.5:1 for text, AA; the site's own
accent is 8.4:1 on white, 7.7:1 on the grey)."""

from __future__ import annotations

import re
from typing import Any

HEX = re.compile(r"#[0-9a-fA-F]{6}")
MIN_CONTRAST = 4.5
# The site's backgrounds under accent-coloured text (site/style.css: --paper, --soft).
BACKGROUNDS = {"#ffffff": "white", "#f2f5f8": "the cards' light grey #f2f5f8"}


def parse_accent(value: Any) -> str:
    """`#rrggbb` dark enough for white text on it and for it as text on white; '' is none."""
    if value in ("", None):
        return ""
    text = str(value).strip()
    if not HEX.fullmatch(text):
        raise ValueError(f"expected a colour as #rrggbb (got {text!r})")
    for background, name in BACKGROUNDS.items():
        ratio = contrast(text, background)
        if ratio < MIN_CONTRAST:
            raise ValueError(f"{text} on {name} is {ratio:.1f}:1; pages need at least "
                             f"{MIN_CONTRAST}:1 (choose a darker shade)")
    return text.lower()


def contrast(a: str, b: str) -> float:
    """WCAG 2 contrast ratio of two `#rrggbb` colours."""
    high, low = sorted((relative_luminance(a), relative_luminance(b)), reverse=True)
    return (high + 0.05) / (low + 0.05)


def relative_luminance(colour: str) -> float:
    def channel(hex_pair: str) -> float:
        c = int(hex_pair, 16) / 255
        return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = (channel(colour[i:i + 2]) for i in (1, 3, 5))
    return 0.2126 * r + 0.7152 * g + 0.0722 * b
