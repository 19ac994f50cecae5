"""`patronpay demo` as a real process, the way a newcomer runs it: what it prints is read on a
thread and searched with a deadline, and the process is stopped however the test ends."""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
import sys
import threading
from collections.abc import Iterator, Mapping
from pathlib import Path

from support.waiting import wait_for

ROOT = Path(__file__).resolve().parent.parent.parent
URL = re.compile(r"http://[\d.:]+[^\s)]*")


class DemoProcess:
    def __init__(self, process: subprocess.Popen) -> None:
        self.process = process
        self.lines: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.process.stdout:
            self.lines.append(line.rstrip("\n"))

    def printed(self) -> str:
        return "\n".join(self.lines)

    def after(self, pattern: str, what: str, timeout: float = 30.0) -> re.Match:
        """The first match of `pattern` (multi-line) in what the demo printed."""
        return wait_for(lambda: re.search(pattern, self.printed(), re.M) or self._gone(what),
                        what, timeout=timeout)

    def printed_until(self, last: str, timeout: float = 30.0) -> list[str]:
        """The lines printed up to the one starting with `last`."""
        self.after(rf"^{re.escape(last)}", f"a line starting {last!r}", timeout)
        return list(self.lines)

    def url(self, pattern: str, timeout: float = 30.0) -> str:
        """The first URL printed on a line matching `pattern`."""
        def first() -> str | None:
            for line in list(self.lines):
                if re.search(pattern, line) and (found := URL.search(line)):
                    return found.group(0)
            return self._gone(f"a URL on a {pattern!r} line")

        return wait_for(first, f"a URL on a {pattern!r} line", timeout=timeout)

    def _gone(self, what: str) -> None:
        if self.process.poll() is not None:
            raise AssertionError(f"the demo exited before printing {what}: {self.printed()}")


@contextlib.contextmanager
def running_demo(*flags: str, env: Mapping[str, str] | None = None) -> Iterator[DemoProcess]:
    """`patronpay demo --port 0 FLAGS…` from the repository's root, stopped at the end."""
    process = subprocess.Popen(
        [sys.executable, "-m", "patronpay", "demo", *flags, "--port", "0"], cwd=ROOT,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        env={**(os.environ if env is None else env), "PYTHONUNBUFFERED": "1"})
    try:
        yield DemoProcess(process)
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
