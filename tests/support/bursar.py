"""What the bursar tests share: a deployment (sandbox Alma with its Analytics report and campus
bursar page, a proxy with its posting worker) configured for the bursar models, and a way to
run `patronpay bursar ...` in this process with that configuration."""

from __future__ import annotations

import contextlib
import io
import logging
import os
import secrets
import time
from decimal import Decimal
from pathlib import Path
from unittest import mock

from patronpay.cli import main
from patronpay.demo import point_store_at, sandbox_environment
from patronpay.serving import ServerThread, bind
from proxy.app import create_app
from proxy.config import load_settings
from proxy.runtime import build_services
from sandbox.alma_analytics import REPORT_PATH
from sandbox.app import create_sandbox_app
from support.posting import FAST_POSTING
from support.waiting import wait_for

D = Decimal
# The seeded patron with three fees: 60.00 (2024-11-04), 4.75 (2025-01-21), 12.50 (2025-03-02).
LOST, OVERDUE, DAMAGED = "7730018830004146", "7730012450004146", "7730020010004146"

BURSAR_SETTINGS = {
    "bursar_report_path": REPORT_PATH,
    "bursar_report_wait_seconds": "0.01",
    "bursar_report_page_size": "25",
}


class BursarRig:
    def __init__(self, tmp_path: Path, *, run_worker: bool = True, **overrides: str) -> None:
        self.tmp_path = tmp_path
        self.outbox = tmp_path / "outbox"
        self.inbox = tmp_path / "inbox"
        self.outbox.mkdir()
        self.inbox.mkdir()
        self.sandbox_app = create_sandbox_app()
        self.sandbox = ServerThread(self.sandbox_app).start()
        proxy_socket = bind("127.0.0.1", 0)
        public_url = f"http://127.0.0.1:{proxy_socket.getsockname()[1]}"
        self.database = tmp_path / "ledger.sqlite3"
        self.env = sandbox_environment(
            public_url, self.sandbox.url, self.database, secrets.token_urlsafe(32),
            **(FAST_POSTING | BURSAR_SETTINGS | {"bursar_outbox": str(self.outbox),
                                                 "bursar_inbox": str(self.inbox)} | overrides))
        self.settings = load_settings(self.env)
        self.services = build_services(self.settings)
        point_store_at(self.sandbox_app, self.settings)
        self.proxy = ServerThread(create_app(self.settings, self.services,
                                             run_worker=run_worker), sock=proxy_socket).start()
        self.bursar.configure(outbox=self.outbox, inbox=self.inbox,
                              export_headers=self.settings.bursar_export_columns)

    def close(self) -> None:
        self.proxy.stop()
        self.sandbox.stop()

    @property
    def alma(self):
        return self.sandbox_app.state.alma

    @property
    def analytics(self):
        return self.sandbox_app.state.alma_analytics

    @property
    def bursar(self):
        return self.sandbox_app.state.bursar

    @property
    def ledger(self):
        return self.services.ledger

    def cli(self, *argv: str) -> tuple[int, str, str]:
        """`patronpay bursar ARGV` in this process: (exit status, stdout, stderr)."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("PATRONPAY_")}
        out, err = io.StringIO(), io.StringIO()
        root = logging.getLogger()
        handlers, level = root.handlers[:], root.level
        try:
            with mock.patch.dict(os.environ, env | self.env, clear=True), \
                    contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
                status = main(["bursar", *argv])
        finally:
            root.handlers[:], root.level = handlers, level
        return status, out.getvalue(), err.getvalue()

    def age(self, path: Path, seconds: float = 3600) -> Path:
        """Make a dropped file look long finished (older than the inbox's settle time)."""
        then = time.time() - seconds
        os.utime(path, (then, then))
        return path

    def drop(self, name: str, text: str, aged: bool = True) -> Path:
        path = self.inbox / name
        path.write_text(text, encoding="utf-8")
        return self.age(path) if aged else path

    # --- what Alma and the ledger say ---

    def pays(self) -> list[dict]:
        return [r for r in self.alma.requests() if r["method"] == "POST"
                and "pay" in r["query"].get("op", [])]

    def in_alma(self, patron: str = "mkowalski") -> dict[str, list[tuple[str, Decimal]]]:
        """{fee id: [(external transaction id, amount)]} of the PAYMENT transactions made."""
        found: dict[str, list[tuple[str, Decimal]]] = {}
        for fee in self.alma.user_state(patron)["fees"]:
            for t in fee.get("transactions", []):
                if t.get("type") == "PAYMENT" and t.get("external_transaction_id"):
                    found.setdefault(fee["id"], []).append(
                        (t["external_transaction_id"], t["amount"]))
        return found

    def balances(self, patron: str = "mkowalski") -> dict[str, Decimal]:
        return {fee["id"]: fee["balance"] for fee in self.alma.user_state(patron)["fees"]}

    def bursar_payments(self) -> list:
        return [p for p in self.ledger.find_payments(limit=None) if p.channel == "bursar"]

    def wait_settled(self, timeout: float = 20.0) -> list:
        """Every bursar payment posted or waiting for staff (the worker is done with them)."""
        return wait_for(lambda: (ps := self.bursar_payments()) and all(
            p.state in ("posted", "attention") for p in ps) and ps, timeout=timeout,
            what="the bursar payments to be posted")
