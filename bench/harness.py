"""The processes a benchmark measures, started the way an operator starts them.

The sandbox (`patronpay sandbox`), the proxy (`patronpay serve`) and the bare baseline
(`bench.baseline`) each run in their own process, so the load generator in the benchmark
process does not share the proxy's interpreter or its CPU accounting. Everything listens on
127.0.0.1; every wait has a deadline.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import re
import secrets
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from patronpay.demo import sandbox_environment
from sandbox.app import ALMA_API_KEY, CASHNET_STORE, urls

REPO = Path(__file__).resolve().parent.parent
LOOPBACK = "127.0.0.1"
START_TIMEOUT = 30.0
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
_SANDBOX_URL = re.compile(r"patronpay sandbox on (http://\S+?)/?$", re.MULTILINE)

class BenchError(RuntimeError):
    """Something the benchmark needs did not happen (a process did not start, a call failed)."""


def free_port() -> int:
    """A port free at this instant, for a command that takes `--port` (the kernel may hand it
    out again before the child binds it; `start_*` retry on that)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        return sock.getsockname()[1]


def clean_environment() -> dict[str, str]:
    """This process's environment without any PATRONPAY_* setting of the caller's own."""
    return {k: v for k, v in os.environ.items() if not k.startswith("PATRONPAY_")}


def _die_with_parent() -> None:
    """In the child, before exec: get SIGTERM when the benchmark process dies, however it
    dies (a test's timeout kills it outright), so no server outlives its benchmark."""
    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # 1: PR_SET_PDEATHSIG


class Process:
    """A child process we started: its log file, and its CPU and memory from /proc."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str], log_path: Path) -> None:
        self.name = name
        self.log_path = log_path
        self._log = open(log_path, "wb")  # noqa: SIM115 - closed in stop()
        self.started_at = time.monotonic()
        self.popen = subprocess.Popen(argv, env=env, cwd=REPO, stdin=subprocess.DEVNULL,
                                      stdout=self._log, stderr=subprocess.STDOUT,
                                      preexec_fn=_die_with_parent)

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace")

    def status_kib(self, field: str) -> int:
        """A `kB` field of /proc/<pid>/status: VmRSS (resident now), VmHWM (peak)."""
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
        raise BenchError(f"{field} not in /proc/{self.pid}/status")

    def rss_mib(self) -> float:
        return round(self.status_kib("VmRSS") / 1024, 1)

    def peak_rss_mib(self) -> float:
        return round(self.status_kib("VmHWM") / 1024, 1)

    def cpu_seconds(self) -> float:
        """User plus system CPU time the process has used so far."""
        stat = Path(f"/proc/{self.pid}/stat").read_text()
        fields = stat[stat.rindex(")") + 2:].split()
        return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS

    def stop(self, timeout: float = 15.0) -> None:
        """SIGTERM (uvicorn finishes in-flight requests and the lifespan), then SIGKILL."""
        if self.alive():
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(timeout)
        self._log.close()


def wait_until_ready(process: Process, url: str, timeout: float = START_TIMEOUT) -> float:
    """Poll `url` until it answers 200; return the seconds since the process was started."""
    deadline = time.monotonic() + timeout
    with httpx.Client(timeout=2.0, trust_env=False) as client:
        while time.monotonic() < deadline:
            if not process.alive():
                raise BenchError(f"{process.name} exited:\n{process.log_text()[-2000:]}")
            with contextlib.suppress(httpx.TransportError):
                if client.get(url).status_code == 200:
                    return time.monotonic() - process.started_at
            time.sleep(0.005)
    raise BenchError(f"{process.name} not ready at {url} after {timeout}s")


# --- the sandbox ---------------------------------------------------------------------------


class Sandbox:
    """`patronpay sandbox` in a child process, and its control endpoints."""

    def __init__(self, process: Process, url: str) -> None:
        self.process = process
        self.url = url
        self.where = urls(url)
        self.http = httpx.Client(base_url=url, timeout=30.0, trust_env=False)

    def close(self) -> None:
        self.http.close()
        self.process.stop()

    def _ok(self, response: httpx.Response, *statuses: int) -> httpx.Response:
        if response.status_code not in statuses:
            raise BenchError(f"sandbox {response.request.method} {response.request.url.path} "
                             f"answered {response.status_code}: {response.text[:300]}")
        return response

    # Alma

    def alma_faults(self, latency_ms: int = 0, rules: list[dict] | None = None,
                    per_second_limit: int | None = None) -> None:
        """Replace Alma's fault settings. The per-second limit (25, like Alma's) is off unless
        asked for: a load run measures us, not the sandbox's throttle."""
        body = {"per_second_limit": per_second_limit, "latency_ms": latency_ms,
                "rules": rules or []}
        self._ok(self.http.put("/alma/_emulator/faults", json=body), 204)

    def add_patron(self, primary_id: str, fees: list[dict[str, str]]) -> list[str]:
        """A new external-account patron with these fees (`{type, owner, original_amount}`);
        returns the fee ids, oldest first."""
        user = {"primary_id": primary_id, "first_name": "Bench", "last_name": primary_id,
                "account_type": "EXTERNAL", "user_group": "UGRAD",
                "emails": [{"address": f"{primary_id}@example.edu", "preferred": True}]}
        self._ok(self.http.post("/alma/_emulator/users", json=user), 201)
        ids = []
        for number, fee in enumerate(fees):
            fee = {"creation_time": f"2025-01-01T00:{number // 60:02d}:{number % 60:02d}.000Z",
                   "title": f"Bench item {number + 1}", **fee}
            created = self._ok(self.http.post(f"/alma/_emulator/users/{primary_id}/fees",
                                              json=fee), 201)
            ids.append(created.json()["id"])
        return ids

    def alma_requests(self) -> list[dict[str, Any]]:
        return self._ok(self.http.get("/alma/_emulator/requests"), 200).json()

    def clear_alma_requests(self) -> None:
        self._ok(self.http.delete("/alma/_emulator/requests"), 204)

    # CashNet

    def point_store_at(self, proxy: Proxy) -> None:
        """Enter the proxy's notification URL in the sandbox store, as campus staff would."""
        postback = f"{proxy.url}/cashnet/postback/{proxy.postback_token}"
        self._ok(self.http.put(f"/cashnet/_emulator/stores/{CASHNET_STORE}", json={
            "notify_success_url": postback, "notify_failure_url": postback}), 200)

    def hand_off(self, checkout: dict[str, Any]) -> str:
        """Post the hand-off form as the patron's browser would; returns the checkout id."""
        response = self._ok(self.http.post(checkout["action"], data=checkout["fields"]), 200)
        if "X-Emulator-Error" in response.headers:
            raise BenchError("CashNet refused the hand-off: "
                             f"{response.headers['X-Emulator-Error']}")
        return response.headers["X-Emulator-Checkout"]

    def complete(self, cid: str, faults: dict[str, Any] | None = None) -> dict[str, Any]:
        """The patron presses Pay; the sandbox delivers the notification before answering."""
        body: dict[str, Any] = {"outcome": "pay"}
        if faults:
            body["faults"] = faults
        return self._ok(self.http.post(f"/cashnet/_emulator/checkouts/{cid}/complete",
                                       json=body), 200).json()


def start_sandbox(workdir: Path) -> Sandbox:
    """`patronpay sandbox` on an ephemeral port, with Alma's per-second throttle off."""
    argv = [sys.executable, "-m", "patronpay", "sandbox", "--host", LOOPBACK, "--port", "0",
            "--smtp-port", "0"]
    process = Process("sandbox", argv, clean_environment(), workdir / "sandbox.log")
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        found = _SANDBOX_URL.search(process.log_text())
        if found:
            sandbox = Sandbox(process, found.group(1))
            wait_until_ready(process, sandbox.url + "/")
            sandbox.alma_faults()
            return sandbox
        if not process.alive():
            break
        time.sleep(0.01)
    process.stop()
    raise BenchError(f"the sandbox did not start:\n{process.log_text()[-2000:]}")


# --- the proxy -----------------------------------------------------------------------------


@dataclass
class Patron:
    """A signed-in patron: the headers their browser sends with every API call."""

    user_id: str
    cookie: str
    csrf_token: str
    origin: str

    def headers(self, unsafe: bool = False) -> dict[str, str]:
        headers = {"Cookie": self.cookie, "Accept": "application/json"}
        if unsafe:
            headers |= {"X-CSRF-Token": self.csrf_token, "Origin": self.origin,
                        "Content-Type": "application/json"}
        return headers


class Proxy:
    """`patronpay serve` in a child process, configured against a sandbox."""

    def __init__(self, process: Process, url: str, postback_token: str, database: Path,
                 startup_seconds: float) -> None:
        self.process = process
        self.url = url
        self.postback_token = postback_token
        self.database = database
        self.startup_seconds = startup_seconds
        self.http = httpx.Client(base_url=url, timeout=60.0, trust_env=False)

    def close(self) -> None:
        self.http.close()
        self.process.stop()

    def sign_in(self, user_id: str) -> Patron:
        """Single sign-on as the campus web server would pass it (from loopback, trusted)."""
        response = self.http.get("/auth/sso", headers={"X-Remote-User": user_id})
        if response.status_code != 303:
            raise BenchError(f"sign-in of {user_id} answered {response.status_code}: "
                             f"{response.text[:300]}")
        cookie = "; ".join(f"{name}={value}" for name, value in response.cookies.items())
        session = self.http.get("/api/session", headers={"Cookie": cookie})
        if session.status_code != 200:
            raise BenchError(f"no session for {user_id}: {session.text[:300]}")
        self.http.cookies.clear()
        return Patron(user_id, cookie, session.json()["csrf_token"], self.url)

    def payment_times(self, payment_ids: list[str]) -> dict[str, dict[str, Any]]:
        """State, paid_at and posted_at of payments, read from the ledger (read-only): the
        proxy's own clock for "notification recorded" and "posted"."""
        with contextlib.closing(open_ledger(self.database)) as conn:
            return payment_rows(conn, payment_ids)


def open_ledger(database: Path) -> sqlite3.Connection:
    """A read-only connection to a proxy's ledger (WAL: it never blocks the proxy's writes)."""
    conn = sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=10.0)
    conn.row_factory = sqlite3.Row
    return conn


def payment_rows(conn: sqlite3.Connection, payment_ids: list[str]) -> dict[str, dict[str, Any]]:
    """id, state, paid_at, posted_at of the given payments, by id."""
    found = {}
    for start in range(0, len(payment_ids), 500):
        chunk = payment_ids[start:start + 500]
        marks = ",".join("?" * len(chunk))  # placeholders only: the ids are bound
        query = f"SELECT id, state, paid_at, posted_at FROM payments WHERE id IN ({marks})"  # noqa: S608
        for row in conn.execute(query, chunk):
            found[row["id"]] = dict(row)
    return found


# A load generator is one client looping as many patrons as fast as it can: the per-session
# and per-patron limits (docs/security.md#rate-limits) would turn its loops into 429s. Out of
# the way unless a benchmark measures them (bench/flood.py).
NO_PATRON_LIMITS = {"session_burst": "1000000", "session_requests_per_minute": "100000000",
                    "patron_requests_per_minute": "100000000"}


def proxy_environment(sandbox: Sandbox, workdir: Path, port: int, name: str,
                      **overrides: str) -> tuple[dict[str, str], str, Path]:
    """The proxy's environment against `sandbox`: (environment, postback token, ledger)."""
    token = secrets.token_urlsafe(32)
    database = workdir / f"{name}.sqlite3"
    settings = sandbox_environment(f"http://{LOOPBACK}:{port}", sandbox.url, database, token,
                                   **(NO_PATRON_LIMITS | overrides))
    return clean_environment() | settings, token, database


def start_proxy(sandbox: Sandbox, workdir: Path, name: str = "proxy",
                **overrides: str) -> Proxy:
    """`patronpay serve` against the sandbox, ready (GET /readyz answered 200)."""
    for _attempt in range(3):  # the free port may be taken before the child binds it
        port = free_port()
        env, token, database = proxy_environment(sandbox, workdir, port, name, **overrides)
        argv = [sys.executable, "-m", "patronpay", "serve", "--host", LOOPBACK,
                "--port", str(port)]
        process = Process(name, argv, env, workdir / f"{name}.log")
        url = f"http://{LOOPBACK}:{port}"
        try:
            startup = wait_until_ready(process, url + "/readyz")
        except BenchError:
            process.stop()
            if "address already in use" in process.log_text().lower():
                database.unlink(missing_ok=True)
                continue
            raise
        return Proxy(process, url, token, database, startup)
    raise BenchError("no free port for the proxy after three tries")


# --- the baseline --------------------------------------------------------------------------


class Baseline:
    """`bench.baseline` in a child process: a bare Starlette route that forwards one Alma
    call. Same URL shape as the proxy's fees route; the patron comes in a header."""

    def __init__(self, process: Process, url: str) -> None:
        self.process = process
        self.url = url

    def close(self) -> None:
        self.process.stop()


def start_baseline(sandbox: Sandbox, workdir: Path, requests_per_second: int) -> Baseline:
    """The baseline, with the Alma connection pool of a proxy at `requests_per_second`."""
    for _attempt in range(3):
        port = free_port()
        argv = [sys.executable, "-m", "bench.baseline", "--port", str(port),
                "--alma-url", sandbox.where["alma_api"], "--api-key", ALMA_API_KEY,
                "--requests-per-second", str(requests_per_second)]
        process = Process("baseline", argv, clean_environment(), workdir / "baseline.log")
        url = f"http://{LOOPBACK}:{port}"
        try:
            wait_until_ready(process, url + "/healthz")
        except BenchError:
            process.stop()
            if "address already in use" in process.log_text().lower():
                continue
            raise
        return Baseline(process, url)
    raise BenchError("no free port for the baseline after three tries")


@contextlib.contextmanager
def deployment(workdir: Path, **proxy_overrides: str) -> Iterator[tuple[Sandbox, Proxy]]:
    """A sandbox and a proxy wired to it (its store notifies that proxy); both stopped after."""
    sandbox = start_sandbox(workdir)
    try:
        proxy = start_proxy(sandbox, workdir, **proxy_overrides)
        try:
            sandbox.point_store_at(proxy)
            yield sandbox, proxy
        finally:
            proxy.close()
    finally:
        sandbox.close()
