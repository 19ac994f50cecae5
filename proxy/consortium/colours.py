"""An institution's colour on its pages (docs/consortium.md#what-the-pages-show): the site's
accent, the header's background behind white text and the colour of links on white. A colour
too light for either is refused at start-up, so no institution's pages fail WCAG's contrast
(4.5:1 for text, AA; the site's own accent is 8.4:1)."""

from __future__ import annotations

import re
from typing import Any

HEX = re.compile(r"#[0-9a-fA-F]{6}")
MIN_CONTRAST = 4.5


def parse_accent(value: Any) -> str:
    """`#rrggbb` dark enough for white text on it and for it as text on white; '' is none."""
    if value in ("", None):
        return ""
    text = str(value).strip()
    if not HEX.fullmatch(text):
        raise ValueError(f"expected a colour as #rrggbb (got {text!r})")
    ratio = contrast_with_white(text)
    if ratio < MIN_CONTRAST:
        raise ValueError(f"{text} on white is {ratio:.1f}:1; pages need at least "
                         f"{MIN_CONTRAST}:1 (choose a darker shade)")
    return text.lower()


def contrast_with_white(colour: str) -> float:
    """WCAG 2 contrast ratio of `#rrggbb` against white."""
    return 1.05 / (relative_luminance(colour) + 0.05)


def relative_luminance(colour: str) -> float:
    def channel(hex_pair: str) -> float:
        c = int(hex_pair, 16) / 255
        return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = (channel(colour[i:i + 2]) for i in (1, 3, 5))
    return 0.2126 * r + 0.7152 * g + 0.0722 * b
