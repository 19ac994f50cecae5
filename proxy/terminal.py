"""Text for a staff member's terminal, shared by the staff commands: aligned tables, ledger
times in UTC, notes shortened to fit a line, and untrusted text made harmless.

Values printed here come from CashNet, Alma, a bursar's file or a patron's browser. An escape
sequence among them could clear the screen, retitle the window or forge a "what to do" line,
and a newline could forge a whole row: `printable` shows every such character as a visible
escape (`\x1b`, `\n`), and `table` and `shorten` apply it to everything they print. Code that
prints a value some other way wraps it in `printable` (docs/security.md#staff-terminals).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime

NOTE_WIDTH = 60


def printable(text: object) -> str:
    """`text` with every character a terminal would act on (controls, newlines, tabs, escape,
    format characters such as right-to-left overrides) shown escaped, as Python writes it."""
    text = str(text)
    if text.isprintable():
        return text
    return "".join(ch if ch.isprintable() else repr(ch)[1:-1] for ch in text)


def when(moment: float | None) -> str:
    """A ledger time as `2025-03-14 10:40:05` (UTC), or `-`."""
    if moment is None:
        return "-"
    return datetime.fromtimestamp(moment, UTC).strftime("%Y-%m-%d %H:%M:%S")


def heard(moment: float | None, now: float) -> str:
    """When something (a kiosk) was last heard from, with how long ago: `2025-03-14 10:40:05
    (3 min ago)`, or `never`. Times are epoch seconds."""
    if moment is None:
        return "never"
    minutes = int(max(0.0, now - moment) // 60)
    ago = ("just now" if minutes == 0 else f"{minutes} min ago" if minutes < 120
           else f"{minutes // 60} h ago")
    return f"{when(moment)} ({ago})"


def gibibytes(size: int | None) -> str:
    """A size in bytes as `12.3 GiB`, or `-`."""
    return "-" if size is None else f"{size / 2**30:.1f} GiB"


def iso(moment: float | None) -> str | None:
    """A ledger time for JSON output: ISO 8601 in UTC to the millisecond, or None."""
    if moment is None:
        return None
    return datetime.fromtimestamp(moment, UTC).isoformat(timespec="milliseconds").replace(
        "+00:00", "Z")


def table(headers: Sequence[str], rows: Iterable[Sequence[str]],
          right: Iterable[int] = ()) -> str:
    """Columns aligned with two spaces between them; `right` columns are right-aligned."""
    headers = [printable(h) for h in headers]
    rows = [[printable(cell) for cell in row] for row in rows]
    right = set(right)
    widths = [max([len(h)] + [len(row[i]) for row in rows]) for i, h in enumerate(headers)]

    def line(cells: Sequence[str]) -> str:
        padded = [c.rjust(w) if i in right else c.ljust(w)
                  for i, (c, w) in enumerate(zip(cells, widths, strict=True))]
        return "  ".join(padded).rstrip()

    return "\n".join([line(headers)] + [line(row) for row in rows])


def shorten(text: str, width: int = NOTE_WIDTH) -> str:
    """`text` on one line (whitespace runs become one space, other controls are escaped),
    cut to `width` with `...`."""
    text = printable(" ".join(text.split()))
    return text if len(text) <= width else text[: width - 3] + "..."
