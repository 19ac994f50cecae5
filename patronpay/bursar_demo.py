"""`patronpay demo --bursar`: the bursar models wired up on this machine.

The demo's proxy gets an outbox (the fines file for the bursar) and an inbox (the bursar's
payments files), the sandbox's campus bursar page reads the one and writes into the other, and
a watcher in the demo does what the systemd units do in production: the fines file once at
start, then `bursar import --inbox` whenever a complete file is waiting. Its settings are
written to an environment file so the `patronpay bursar ...` commands can be tried by hand.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import os
import shlex
import threading
import time
from pathlib import Path

import httpx

from proxy.bursar.columns import import_headers
from proxy.bursar.inbox import waiting_files
from proxy.config import Settings
from sandbox.alma_analytics import REPORT_PATH
from sandbox.app import urls

SETTLE_SECONDS = 2
WATCH_SECONDS = 1.0


class BursarDemo:
    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.outbox = folder / "bursar-outbox"
        self.inbox = folder / "bursar-inbox"
        self.outbox.mkdir()
        self.inbox.mkdir()
        self.env_file = folder / "patronpay.env"
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def overrides(self) -> dict[str, str]:
        """The proxy's bursar settings (lower-case names, as `sandbox_environment` takes)."""
        return {"bursar_report_path": REPORT_PATH, "bursar_outbox": str(self.outbox),
                "bursar_inbox": str(self.inbox),
                "bursar_inbox_settle_seconds": str(SETTLE_SECONDS),
                "bursar_report_wait_seconds": "1"}

    def wire(self, sandbox_app, settings: Settings, environment: dict[str, str]) -> None:
        """Point the campus bursar page at the folders; write the settings for the shell."""
        sandbox_app.state.bursar.configure(
            outbox=self.outbox, inbox=self.inbox,
            export_headers=settings.bursar_export_columns,
            import_headers=import_headers(settings.bursar_import_columns),
            date_format=settings.bursar_date_format)
        # Demo secrets only (random, gone with the demo's folder); readable by this user alone.
        descriptor = os.open(self.env_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            for name, value in sorted(environment.items()):
                handle.write(f"export {name}={shlex.quote(value)}\n")

    def start(self, settings: Settings, sandbox_url: str) -> None:
        self._thread = threading.Thread(target=self._watch, args=(settings, sandbox_url),
                                        name="bursar-demo", daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)

    def print_help(self, sandbox_url: str) -> None:
        print("  bursar models (docs/bursar.md):")
        print(f"    campus bursar page: {urls(sandbox_url)['bursar_page']} (mark balances paid)")
        print(f"    fines file for the bursar in {self.outbox}")
        print(f"    payments files land in {self.inbox}; the demo imports them within "
              f"{SETTLE_SECONDS + 1} s, as the systemd path unit would")
        print("    try the commands in another shell:")
        print(f"      . {self.env_file}")
        for command in ("bursar export", "bursar holds --dry-run",
                        "bursar import --inbox --dry-run", "payments list --state posted"):
            print(f"      patronpay {command}")

    # --- the watcher ---

    def _watch(self, settings: Settings, sandbox_url: str) -> None:
        from patronpay import bursar_commands

        if not self._wait_for(sandbox_url):
            return
        self._run("export", bursar_commands._export, settings,
                  argparse.Namespace(output=None, day=None, allow_empty=False))
        while not self._stop.wait(WATCH_SECONDS):
            if waiting_files(self.inbox, SETTLE_SECONDS, time.time()):
                self._run("import --inbox", bursar_commands._import, settings,
                          argparse.Namespace(inbox=True, file=None, dry_run=False, rejects=None,
                                             post=False))

    def _wait_for(self, sandbox_url: str) -> bool:
        deadline = time.monotonic() + 30
        while not self._stop.is_set() and time.monotonic() < deadline:
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(sandbox_url + "/", timeout=1).status_code == 200:
                    return True
            self._stop.wait(0.2)
        return False

    def _run(self, label: str, handler, settings: Settings, args: argparse.Namespace) -> None:
        """One bursar command, its output shown under a heading; a failure is reported, not
        raised (the demo goes on). Only this thread prints while the demo serves, so taking
        standard output for the moment loses nobody's lines."""
        out = io.StringIO()
        try:
            with contextlib.redirect_stdout(out):
                asyncio.run(handler(args, settings))
        except Exception as exc:  # the demo shows it and carries on
            out.write(f"failed: {type(exc).__name__}: {exc}\n")
        text = "".join(f"  | {line}\n" for line in out.getvalue().splitlines())
        print(f"bursar demo, patronpay bursar {label}:\n{text}", end="", flush=True)
