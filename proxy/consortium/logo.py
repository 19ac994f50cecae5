"""An institution's logo (docs/consortium.md#what-the-pages-show): a PNG, WebP or SVG file of
at most 256 KB, read at start-up so a mistake stops it with one line."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from proxy.config import PREFIX, ConfigError

LOGO_TYPES = {".png": "image/png", ".webp": "image/webp", ".svg": "image/svg+xml"}
LOGO_MAX_BYTES = 256 * 1024


def read_logo(title: str, value: Any) -> Path | None:
    """The logo file table `title` names, checked; None without one."""
    if value in ("", None):
        return None
    path = Path(str(value)).expanduser()
    where = f"{PREFIX}CONFIG {title} logo"
    if path.suffix.lower() not in LOGO_TYPES:
        raise ConfigError(f"{where} is not valid: choose a .png, .webp or .svg file ({path})")
    try:
        size = path.stat().st_size
        path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{where} cannot be read: {exc.strerror} ({path})") from None
    if size > LOGO_MAX_BYTES:
        raise ConfigError(f"{where} is larger than 256 KB ({path})")
    return path
