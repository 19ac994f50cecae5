"""One line per check: its name, ok / warn / fail, what was found and what to do, for a
terminal or (with `--json`) for a machine."""

from __future__ import annotations

import json
import unicodedata
from collections.abc import Sequence
from dataclasses import asdict, dataclass

OK, WARN, FAIL = "ok", "warn", "fail"


@dataclass(frozen=True)
class Result:
    check: str        # e.g. `alma.key`: the area, then what is checked
    status: str       # OK, WARN or FAIL
    message: str      # what was found
    action: str = ""  # what to do about it (empty when nothing needs doing)


def ok(check: str, message: str) -> Result:
    return Result(check, OK, message)


def warn(check: str, message: str, action: str) -> Result:
    return Result(check, WARN, message, action)


def fail(check: str, message: str, action: str) -> Result:
    return Result(check, FAIL, message, action)


def passed(results: Sequence[Result]) -> bool:
    """Nothing failed: warnings alone do not stop a go-live."""
    return all(result.status != FAIL for result in results)


def terminal_safe(text: str) -> str:
    """`text` with control and format characters shown as escapes: values from Alma, CashNet
    or the environment must not move the cursor, recolour the terminal or reorder the line."""
    return "".join(_escaped(char) if unicodedata.category(char) in ("Cc", "Cf", "Zl", "Zp")
                   else char for char in text)


def _escaped(char: str) -> str:
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def render_text(results: Sequence[Result]) -> str:
    width = max((len(result.check) for result in results), default=0)
    lines = []
    for result in results:
        line = f"{result.status:<4}  {result.check:<{width}}  {result.message}"
        if result.action:
            line += f" -- {result.action}"
        lines.append(terminal_safe(line))
    counts = {status: sum(r.status == status for r in results) for status in (OK, WARN, FAIL)}
    verdict = "ready to take payments" if passed(results) else "NOT ready to take payments"
    lines.append(f"{verdict}: {counts[OK]} ok, {counts[WARN]} warnings, {counts[FAIL]} failed")
    return "\n".join(lines)


def render_json(results: Sequence[Result]) -> str:
    """`ok` is the verdict; JSON's own escaping keeps control characters harmless."""
    return json.dumps({"ok": passed(results), "checks": [asdict(r) for r in results]},
                      indent=2)
