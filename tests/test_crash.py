"""Crash safety (DESIGN §5): `patronpay serve` killed with SIGKILL at each dangerous moment of a
payment, then restarted on the same ledger, ends with every allocation applied in Alma exactly
once. The proxy runs as a child process (a real process to kill); the sandbox runs in the test
and opens the timing windows with its faults (slow and dropped Alma calls, CashNet re-delivery).

After each restart the test asserts the exact ledger state and the exact PAYMENT transactions
in Alma carrying the CashNet transaction number.
"""

from __future__ import annotations

import os
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from decimal import Decimal
from pathlib import Path
from urllib.parse import urlencode

import httpx
import pytest

from patronpay.demo import point_store_at, sandbox_environment
from patronpay.serving import ServerThread
from proxy.config import load_settings
from proxy.db import Database
from proxy.ledger import Ledger
from sandbox.app import CASHNET_STORE, create_sandbox_app

pytestmark = pytest.mark.slow

D = Decimal
ROOT = Path(__file__).resolve().parent.parent
LOST, OVERDUE = "7730018830004146", "7730012450004146"
FEES = "/almaws/v1/users/*/fees"
EXPECTED_62 = {LOST: [D("60.00")], OVERDUE: [D("2.00")]}
# Fast retries, and a look-before-pay window (2.5 s from the send) longer than any slow call
# the tests open (1.5 s), as production's 25 s is longer than its 20 s read timeout.
PROXY_SETTINGS = {"posting_backoff_cap_seconds": "0.2", "alma_read_timeout": "3",
                  "alma_recheck_seconds": "2.5", "log_level": "INFO"}


def wait_for(predicate, timeout=20.0, what="condition"):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.02)


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
        wait_for(self._healthy, 30, "patronpay serve to answer /healthz")
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


def connections_to(port: int) -> list[tuple[int, int, int | None]]:
    """Established TCP connections into `port`: (peer port, bytes the receiver has not read
    yet, bytes the sender has not had acknowledged), from /proc/net/tcp."""
    rows = []
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        local, remote, state = fields[1], fields[2], fields[3]
        tx_queue, rx_queue = (int(x, 16) for x in fields[4].split(":"))
        rows.append((int(local.rsplit(":", 1)[1], 16), int(remote.rsplit(":", 1)[1], 16),
                     state, tx_queue, rx_queue))
    unsent = {lport: tx for lport, rport, state, tx, _ in rows if rport == port and state == "01"}
    return [(rport, rx, unsent.get(rport)) for lport, rport, state, _, rx in rows
            if lport == port and state == "01"]


class Rig:
    """A sandbox in this process and a proxy child process on one ledger file."""

    def __init__(self, tmp_path: Path) -> None:
        self.sandbox_app = create_sandbox_app()
        self.sandbox = ServerThread(self.sandbox_app).start()
        port = free_port()
        self.database = tmp_path / "ledger.sqlite3"
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
                        timeout, f"payment {payment_id} to be {state}")

    def allocations(self, payment_id: str) -> list[tuple]:
        return [(a.fee_id, a.amount, a.state, a.outcome)
                for a in self.payment(payment_id).allocations]

    def pays(self, fee_id: str | None = None) -> list[dict]:
        return [r for r in self.alma.requests() if r["method"] == "POST"
                and "pay" in r["query"].get("op", [])
                and (fee_id is None or r["path"].endswith("/" + fee_id))]

    def in_alma(self, tx: str, patron: str = "mkowalski") -> dict[str, list[Decimal]]:
        """{fee id: amounts of the PAYMENT transactions carrying tx}, fees with any."""
        found = {}
        for fee in self.alma.user_state(patron)["fees"]:
            amounts = [t["amount"] for t in fee.get("transactions", [])
                       if t.get("type") == "PAYMENT" and t.get("external_transaction_id") == tx]
            if amounts:
                found[fee["id"]] = amounts
        return found

    def notification_outcomes(self, payment_id: str) -> list[str]:
        return [n["outcome"] for n in self.ledger.notifications(payment_id)]


@pytest.fixture
def rig(tmp_path):
    built = Rig(tmp_path)
    try:
        yield built
    finally:
        built.close()


def slow(path: str, method: str = "POST", latency_ms: int = 1500) -> dict:
    return {"match": {"method": method, "path": path}, "mode": "slow",
            "latency_ms": latency_ms, "next": 1}


def assert_posted_exactly_once(rig: Rig, payment_id: str, outcomes: list[str]) -> None:
    payment = rig.payment(payment_id)
    tx = payment.cashnet_tx
    assert payment.state == "posted"
    assert (payment.applied, payment.unapplied) == (D("62.00"), D("0.00"))
    assert rig.allocations(payment_id) == [
        (LOST, D("60.00"), "posted", outcomes[0]), (OVERDUE, D("2.00"), "posted", outcomes[1])]
    assert rig.in_alma(tx) == EXPECTED_62


# --- before the notification is recorded ---


def test_killed_before_reading_the_notification(rig):
    rig.proxy.start()
    payment_id, cid = rig.start_payment(amount="62.00")
    rig.proxy.signal(signal.SIGSTOP)  # frozen: CashNet's delivery waits in the socket
    delivery = rig.complete_in_background(cid)
    wait_for(lambda: any(unread for _, unread, _ in connections_to(rig.proxy.port)), 10,
             "the notification to wait unread in the proxy's socket")
    rig.proxy.kill()
    delivery.join(15)
    # Nothing of it reached the ledger; CashNet saw a failed delivery.
    assert (rig.payment(payment_id).state, rig.ledger.notifications()) == ("pending", [])
    first = rig.cashnet.notifications(cid)[0]
    assert (first["attempt"], first["status"]) == (1, None) and first["error"]
    rig.proxy.start()
    wait_for(lambda: rig.payment(payment_id).state == "posted", 30, "posted after restart")
    assert_posted_exactly_once(rig, payment_id, ["applied", "applied"])
    assert rig.notification_outcomes(payment_id) == ["paid"]
    attempts = rig.cashnet.notifications(cid)
    assert [a["status"] for a in attempts][-1] == 200
    assert all(a["status"] is None for a in attempts[:-1])
    assert len(rig.pays()) == 2


def test_killed_while_recording_the_notification(rig):
    rig.proxy.start()
    payment_id, cid = rig.start_payment(amount="62.00")
    # Hold the ledger's write lock: the proxy gets the notification but cannot commit it.
    lock = sqlite3.connect(rig.database, isolation_level=None, timeout=5)
    lock.execute("BEGIN IMMEDIATE")
    try:
        delivery = rig.complete_in_background(cid)

        def inside_the_write():
            # The proxy has read the whole notification (nothing left unread or unacknowledged
            # on one connection), and its event loop is blocked on the ledger's write lock:
            # it no longer answers /healthz.
            read = [c for c in connections_to(rig.proxy.port) if c[1] == 0 and c[2] == 0]
            if not read:
                return False
            try:
                httpx.get(f"http://127.0.0.1:{rig.proxy.port}/healthz", timeout=0.3)
            except httpx.TimeoutException:
                return True
            return False

        wait_for(inside_the_write, 10, "the proxy to be inside the notification's write")
        rig.proxy.kill()
    finally:
        lock.execute("ROLLBACK")
        lock.close()
    delivery.join(15)
    # The transaction died with the process: no notification row, no state, nothing queued.
    payment = rig.payment(payment_id)
    assert (payment.state, payment.cashnet_tx, rig.ledger.notifications()) == (
        "pending", None, [])
    assert [a.state for a in payment.allocations] == ["planned", "planned"]
    rig.proxy.start()
    wait_for(lambda: rig.payment(payment_id).state == "posted", 30, "posted after restart")
    assert_posted_exactly_once(rig, payment_id, ["applied", "applied"])
    assert rig.notification_outcomes(payment_id) == ["paid"]
    assert len(rig.pays()) == 2


# --- after the notification is recorded ---


def test_killed_after_recording_before_posting(rig):
    rig.proxy.start()
    payment_id, cid = rig.start_payment(amount="62.00")
    rig.alma.set_faults({"rules": [slow(FEES, method="GET", latency_ms=3000)]})
    completion = rig.cashnet.complete(cid)
    assert [n["status"] for n in completion["notifications"]] == [200]
    # The worker is reading the patron's fees (slowly) when the process dies.
    wait_for(lambda: any(r["path"].endswith("/fees") and r["status"] is None
                         for r in rig.alma.requests()), 10, "the worker's LIST in flight")
    rig.proxy.kill()
    payment = rig.payment(payment_id)
    assert (payment.state, [a.state for a in payment.allocations]) == ("paid", ["queued", "queued"])
    assert rig.pays() == []
    rig.proxy.start()
    wait_for(lambda: rig.payment(payment_id).state == "posted", 30, "posted after restart")
    assert_posted_exactly_once(rig, payment_id, ["applied", "applied"])
    # CashNet never saw our 200 (say) and sends the notification again: a duplicate, nothing more.
    body = urlencode([tuple(pair) for pair in completion["fields"]])
    again = httpx.post(f"{rig.proxy.url}/cashnet/postback/{'t' * 40}", content=body,
                       headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert (again.status_code, again.text) == (200, "OK")
    assert rig.notification_outcomes(payment_id) == ["paid", "same"]
    assert len(rig.pays()) == 2
    assert rig.in_alma(payment.cashnet_tx) == EXPECTED_62


def test_killed_between_two_fee_postings_after_alma_applied_the_second(rig):
    rig.proxy.start()
    payment_id, cid = rig.start_payment(amount="62.00")
    rig.alma.set_faults({"rules": [slow(f"{FEES}/{OVERDUE}")]})
    rig.cashnet.complete(cid)
    wait_for(lambda: rig.allocations(payment_id)[0][2:] == ("posted", "applied")
             and rig.allocations(payment_id)[1][2] == "sending"
             and [r["status"] for r in rig.pays(OVERDUE)] == [None], 10,
             "the first fee posted and the second payment call inside Alma")
    rig.proxy.kill()
    # Alma finishes the call after the caller died: applied, and the ledger does not know.
    wait_for(lambda: [(r["status"], r["committed"]) for r in rig.pays(OVERDUE)] == [(200, True)],
             10, "Alma to apply the orphaned payment call")
    assert rig.allocations(payment_id) == [
        (LOST, D("60.00"), "posted", "applied"), (OVERDUE, D("2.00"), "sending", "")]
    assert rig.in_alma(rig.payment(payment_id).cashnet_tx) == EXPECTED_62
    rig.proxy.start()
    wait_for(lambda: rig.payment(payment_id).state == "posted", 30, "posted after restart")
    # Found by looking before paying: no second payment call for that fee.
    assert_posted_exactly_once(rig, payment_id, ["applied", "found in Alma"])
    assert [len(rig.pays(LOST)), len(rig.pays(OVERDUE))] == [1, 1]
    assert [e["kind"] for e in rig.ledger.events(payment_id)].count("lease_broken") == 1


def test_killed_while_waiting_to_look_after_a_lost_answer(rig):
    rig.proxy.start()
    payment_id, cid = rig.start_payment(amount="62.00")
    rig.alma.set_faults({"rules": [{"match": {"method": "POST", "path": f"{FEES}/{OVERDUE}"},
                                    "mode": "drop", "next": 1}]})
    rig.cashnet.complete(cid)
    wait_for(lambda: rig.allocations(payment_id)[1][2:] == (
        "sending", "payment may have been applied: RemoteProtocolError"), 10,
        "the dropped payment call to be recorded as unknown")
    rig.proxy.kill()
    rig.proxy.start()
    wait_for(lambda: rig.payment(payment_id).state == "posted", 30, "posted after restart")
    assert_posted_exactly_once(rig, payment_id, ["applied", "applied"])
    # The dropped call never reached Alma's state; after looking, exactly one more was sent.
    assert [(r["status"], r["committed"]) for r in rig.pays(OVERDUE)] == [
        (None, False), (200, True)]
    assert len(rig.pays(LOST)) == 1


def test_repeated_kills_during_a_burst_lose_nothing_and_post_nothing_twice(rig):
    """Ten payments, the proxy killed four times at moments the sandbox makes likely to be
    mid-posting (every Alma call slowed), then left to finish."""
    rig.proxy.start()
    patrons = [f"crash{i:02d}" for i in range(10)]
    for patron in patrons:
        rig.alma.add_user({"primary_id": patron, "first_name": "Crash", "last_name": patron,
                           "fees": [{"type": "OVERDUEFINE", "original_amount": "3.10",
                                     "owner": "MAIN"},
                                    {"type": "DAMAGEDITEMFINE", "original_amount": "7.25",
                                     "owner": "LAW"}]})
    started = [rig.start_payment(patron) for patron in patrons]
    rig.alma.set_faults({"latency_ms": 150, "latency_jitter_ms": 300})
    for _, cid in started:
        rig.complete_in_background(cid)
    for _ in range(4):
        posted_before = len([r for r in rig.pays() if r["committed"]])
        wait_for(lambda n=posted_before: len([r for r in rig.pays() if r["committed"]]) > n
                 or all(rig.payment(p).state == "posted" for p, _ in started), 30,
                 "some progress")
        rig.proxy.kill()
        rig.proxy.start()
    rig.alma.set_faults({})
    for payment_id, _ in started:
        wait_for(lambda p=payment_id: rig.payment(p).state == "posted", 60,
                 f"payment {payment_id} posted")
    for (payment_id, _), patron in zip(started, patrons, strict=True):
        payment = rig.payment(payment_id)
        assert (payment.applied, payment.unapplied) == (D("10.35"), D("0.00"))
        fees = {a.fee_id: [a.amount] for a in payment.allocations}
        assert rig.in_alma(payment.cashnet_tx, patron) == fees
        assert [a.state for a in payment.allocations] == ["posted", "posted"]
    # Every payment call that Alma applied was for an allocation, once.
    applied = [r["path"] for r in rig.pays() if r["committed"]]
    assert len(applied) == len(set(applied)) == 20
