"""The proxy as a real process to kill: `patronpay serve` as a child process, and a rig of a
sandbox in this process and that proxy on one ledger file."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path

import httpx

from patronpay.demo import point_store_at, sandbox_environment
from patronpay.serving import ServerThread
from proxy.config import load_settings
from proxy.db import Database
from proxy.ledger import Ledger
from sandbox.app import CASHNET_STORE, create_sandbox_app

from .waiting import wait_for

ROOT = Path(__file__).resolve().parents[2]
# Fast retries, and a look-before-pay window (2.5 s from the send) longer than any slow call
# the tests open (1.5 s), as production's 25 s is longer than its 20 s read timeout.
PROXY_SETTINGS = {"posting_backoff_cap_seconds": "0.2", "alma_read_timeout": "3",
                  "alma_recheck_seconds": "2.5", "log_level": "INFO"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class ProxyProcess:
    """`python -m patronpay serve --port P` as a child process, with its log in a file."""

    def __init__(self, env: dict[str, str], port: int, log_path: Path) -> None:
        self.env = env
        self.port = port
        self.log_path = log_path
        self.process: subprocess.Popen | None = None
        self.starts = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> ProxyProcess:
        self.starts += 1
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "patronpay", "serve", "--port", str(self.port)],
                env=self.env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
        wait_for(self._healthy, "patronpay serve to answer /healthz", timeout=30)
        return self

    def _healthy(self) -> bool:
        if self.process.poll() is not None:
            raise AssertionError(f"patronpay serve exited with {self.process.returncode}:\n"
                                 + self.log_path.read_text()[-3000:])
        try:
            return httpx.get(self.url + "/healthz", timeout=0.5).status_code == 200
        except httpx.HTTPError:
            return False

    def signal(self, sig: int) -> None:
        os.kill(self.process.pid, sig)

    def kill(self) -> None:
        """SIGKILL: no cleanup of any kind, then reap it (a zombie would still look alive)."""
        self.signal(signal.SIGKILL)
        self.process.wait(10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)

    def posted_lines(self) -> list[str]:
        return [line for line in self.log_path.read_text().splitlines()
                if '"event": "allocation_posted"' in line]


class Rig:
    """A sandbox in this process and a proxy child process on one ledger file."""

    def __init__(self, tmp_path: Path, database: Path | str | None = None) -> None:
        self.sandbox_app = create_sandbox_app()
        self.sandbox = ServerThread(self.sandbox_app).start()
        port = free_port()
        self.database = database or tmp_path / "ledger.sqlite3"  # or a PostgreSQL URL
        settings_env = sandbox_environment(f"http://127.0.0.1:{port}", self.sandbox.url,
                                           self.database, "t" * 40, **PROXY_SETTINGS)
        self.settings = load_settings(settings_env)
        point_store_at(self.sandbox_app, self.settings)
        # CashNet re-delivers a notification that got no 2xx: every 1.5 s, up to 5 times.
        self.cashnet.configure_store(CASHNET_STORE, retries=5, retry_delay_s=1.5,
                                     notify_timeout_s=10)
        env = {k: v for k, v in os.environ.items() if not k.startswith("PATRONPAY_")}
        env.update(settings_env, PYTHONUNBUFFERED="1")
        self.proxy = ProxyProcess(env, port, tmp_path / "proxy.log")
        self.ledger = Ledger(Database(self.database))

    @property
    def alma(self):
        return self.sandbox_app.state.alma

    @property
    def cashnet(self):
        return self.sandbox_app.state.cashnet

    def close(self) -> None:
        self.proxy.stop()
        self.ledger.db.close()
        self.sandbox.stop()

    # --- a patron's payment ---

    def start_payment(self, patron: str = "mkowalski", **body) -> tuple[str, str]:
        """Sign in, create a payment, hand it to CashNet: (payment id, checkout id)."""
        with httpx.Client(base_url=self.proxy.url, headers={"Origin": self.proxy.url},
                          timeout=15) as client:
            assert client.get("/auth/sso", headers={"X-Remote-User": patron}).status_code == 303
            client.headers["X-CSRF-Token"] = client.get("/api/session").json()["csrf_token"]
            response = client.post("/api/payments", json=body)
            assert response.status_code == 201, response.text
            created = response.json()
        checkout = created["checkout"]
        handed = httpx.post(checkout["action"], data=checkout["fields"], timeout=15)
        return created["payment"]["id"], handed.headers["X-Emulator-Checkout"]

    def complete_in_background(self, cid: str) -> threading.Thread:
        thread = threading.Thread(target=self.cashnet.complete, args=(cid,), daemon=True)
        thread.start()
        return thread

    # --- what the ledger and Alma say ---

    def payment(self, payment_id: str):
        return self.ledger.payment(payment_id)

    def wait_for_state(self, payment_id: str, state: str, timeout: float = 30.0):
        return wait_for(lambda: (p := self.payment(payment_id)) and p.state == state and p,
                        f"payment {payment_id} to be {state}", timeout=timeout)

    def allocations(self, payment_id: str) -> list[tuple]:
        return [(a.fee_id, a.amount, a.state, a.outcome)
                for a in self.payment(payment_id).allocations]

    def pays(self, fee_id: str | None = None) -> list[dict]:
        return [r for r in self.alma.requests() if r["method"] == "POST"
                and "pay" in r["query"].get("op", [])
                and (fee_id is None or r["path"].endswith("/" + fee_id))]

    def notification_outcomes(self, payment_id: str) -> list[str]:
        return [n["outcome"] for n in self.ledger.notifications(payment_id)]
