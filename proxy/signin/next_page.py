"""Where a patron goes after signing in (`next`): a path on this site, and only that.

Checking that `next` starts with one slash is not enough: browsers resolve dot segments, so
`/.//evil.example/` (or `/%2e//evil.example/`) becomes the path `//evil.example/`, which a page
that builds links from its own path would turn into a link to another host. So the path is
resolved here, as a browser would, and repeated slashes collapse to one.
"""

from __future__ import annotations

from urllib.parse import urlsplit

_DOT = {".", "%2e"}
_DOT_DOT = {"..", ".%2e", "%2e.", "%2e%2e"}


def safe_next(value: str | None) -> str:
    """A redirect target that stays on this site: a normalised path (with its query), never
    another origin; anything doubtful is `/`."""
    if not value or not value.startswith("/") or "\\" in value:
        return "/"
    if any(ord(c) < 32 or ord(c) == 127 for c in value):
        return "/"
    parts = urlsplit(value)
    if parts.scheme or parts.netloc:
        return "/"
    target = normalised_path(parts.path)
    if parts.query:
        target += "?" + parts.query
    if parts.fragment:
        target += "#" + parts.fragment
    return target


def normalised_path(path: str) -> str:
    """`path` with dot segments resolved and empty segments dropped; always one leading
    slash, and a trailing one where the path ended in a directory."""
    kept: list[str] = []
    segments = path.split("/")
    for segment in segments:
        lowered = segment.lower()
        if lowered in _DOT_DOT:
            if kept:
                kept.pop()
        elif segment and lowered not in _DOT:
            kept.append(segment)
    directory = segments[-1].lower() in ("", *_DOT, *_DOT_DOT)
    joined = "/" + "/".join(kept)
    return joined + "/" if directory and kept else joined
