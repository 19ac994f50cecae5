"""Shared fixtures: a whole deployment (sandbox Alma and CashNet, and a proxy configured
against them) on real loopback servers, and a patron's browser-like HTTP client; a kiosk agent
wired to a deployment and a fake card reader; the sandbox Alma alone; the sandbox CashNet alone,
with a stand-in for the proxy that records what it sends. Plain helpers are in tests/support/."""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pytest
import support.postgres as postgres_support
from hypothesis import settings as hypothesis_settings
from support.cashnet import Receiver
from support.kiosk import FakeReaderPort, Kiosk, start_kiosk, stop_kiosks
from support.posting import FAST_POSTING
from support.waiting import wait_for

from patronpay.demo import point_store_at, sandbox_environment
from patronpay.serving import ServerThread, bind
from proxy.app import create_app
from proxy.config import Settings, load_settings
from proxy.runtime import Services, build_services
from sandbox.alma import AlmaSandbox
from sandbox.alma import create_app as create_alma_app
from sandbox.app import create_sandbox_app
from sandbox.cashnet import create_app as create_cashnet_app

# Timing never decides a test: no per-example deadline for property tests on a busy machine.
hypothesis_settings.register_profile("patronpay", deadline=None)
hypothesis_settings.load_profile("patronpay")



@dataclass
class Deployment:
    sandbox: ServerThread
    proxy: ServerThread
    settings: Settings
    services: Services
    sandbox_app: Any
    clients: list[httpx.Client] = field(default_factory=list)

    @property
    def alma(self):
        """The sandbox Alma's in-process accessor (state, request log, faults)."""
        return self.sandbox_app.state.alma

    @property
    def cashnet(self):
        return self.sandbox_app.state.cashnet

    @property
    def ledger(self):
        return self.services.ledger

    @property
    def url(self) -> str:
        return self.proxy.url

    def browser(self) -> httpx.Client:
        """A patron's browser: keeps cookies, sends our Origin like our pages do."""
        client = httpx.Client(base_url=self.url, headers={"Origin": self.url}, timeout=15.0)
        self.clients.append(client)
        return client

    def sign_in_sso(self, user_id: str) -> httpx.Client:
        client = self.browser()
        response = client.get("/auth/sso", headers={"X-Remote-User": user_id})
        assert response.status_code == 303, response.text
        return with_csrf(client)

    def sign_in_guest(self, user_id: str, password: str) -> httpx.Client:
        client = self.browser()
        response = client.post("/auth/alma", json={"user_id": user_id, "password": password})
        assert response.status_code == 200, response.text
        return with_csrf(client)

    def start_payment(self, client: httpx.Client, **body: Any) -> dict:
        response = client.post("/api/payments", json=body)
        assert response.status_code == 201, response.text
        return response.json()

    def hand_off(self, checkout: dict) -> str:
        """Post the checkout form to the sandbox CashNet as the browser would; the checkout id."""
        response = httpx.post(checkout["action"], data=checkout["fields"], timeout=15.0)
        assert response.status_code == 200, response.text
        assert "X-Emulator-Error" not in response.headers, response.text
        return response.headers["X-Emulator-Checkout"]

    def checkout(self, patron: str = "mkowalski", **body: Any) -> tuple[str, str]:
        """A patron signs in, starts a payment and is on CashNet's page: (payment id, checkout
        id). The test decides how the checkout ends."""
        created = self.start_payment(self.sign_in_sso(patron), **body)
        return created["payment"]["id"], self.hand_off(created["checkout"])

    def pay(self, client: httpx.Client, outcome: str = "pay", code: int | None = None,
            faults: dict | None = None, **body: Any) -> tuple[dict, dict]:
        """Create a payment, hand it to CashNet, complete it there: (created, completion)."""
        created = self.start_payment(client, **body)
        cid = self.hand_off(created["checkout"])
        completion = self.cashnet.complete(cid, outcome=outcome, code=code, faults=faults)
        return created, completion

    def follow_signout(self, completion: dict,
                       browser: httpx.Client | None = None) -> httpx.Response:
        """The patron clicks CashNet's "Sign out": the browser posts (or gets) the fields. A
        top-level GET carries the patron's SameSite=Lax cookie (pass their `browser`); a
        cross-site POST never does."""
        signout = completion["signout"]
        pairs = [tuple(pair) for pair in signout["fields"]]
        if signout["method"].upper() == "GET":
            return (browser or httpx).get(signout["url"], params=pairs, timeout=15.0)
        return httpx.post(signout["url"], content=urlencode(pairs), timeout=15.0,
                          headers={"Content-Type": "application/x-www-form-urlencoded"})

    def receipt(self, response: httpx.Response, browser: httpx.Client | None = None) -> dict:
        """The receipt the return redirect points at: by its receipt link, or (`?p=`, the
        return carried no session) as the receipt page gets it, with the patron's session."""
        assert response.status_code == 303, response.text
        location = response.headers["location"]
        query = parse_qs(urlsplit(location).query)
        if location.startswith("/receipt.html?p=") and browser is not None:
            return browser.get(f"/api/payments/{query['p'][0]}").json()["payment"]
        assert location.startswith("/receipt.html?r="), location
        return httpx.get(f"{self.url}/api/receipts/{query['r'][0]}").json()["payment"]

    def wait_for_state(self, payment_id: str, state: str, timeout: float = 15.0):
        return wait_for(lambda: (p := self.ledger.payment(payment_id)) and p.state == state and p,
                        f"payment {payment_id} to be {state}", timeout=timeout)

    def alma_calls(self, method: str | None = None, op: str | None = None) -> list[dict]:
        calls = [r for r in self.alma.requests() if r["path"].startswith("/almaws/")]
        if method:
            calls = [r for r in calls if r["method"] == method]
        if op:
            calls = [r for r in calls if op in r["query"].get("op", [])]
        return calls


def with_csrf(client: httpx.Client) -> httpx.Client:
    session = client.get("/api/session")
    assert session.status_code == 200, session.text
    client.headers["X-CSRF-Token"] = session.json()["csrf_token"]
    return client


# The ledger's backend: SQLite, or both in the modules marked `BOTH` (tests/support/postgres.py).
postgres_cluster = postgres_support.postgres_cluster
ledger_backend = postgres_support.ledger_backend
ledger_target = postgres_support.ledger_target


@pytest.fixture
def deploy(tmp_path: Path, ledger_target: Callable[[str], Path | str]
           ) -> Iterator[Callable[..., Deployment]]:
    """Start a deployment; keyword arguments override proxy settings (lower-case names)."""
    started: list[Deployment] = []

    def start(run_worker: bool = True, **overrides: str) -> Deployment:
        sandbox_app = create_sandbox_app()
        sandbox = ServerThread(sandbox_app).start()
        proxy_socket = bind("127.0.0.1", 0)
        public_url = f"http://127.0.0.1:{proxy_socket.getsockname()[1]}"
        env = sandbox_environment(public_url, sandbox.url, ledger_target(f"ledger{len(started)}"),
                                  secrets.token_urlsafe(32), **(FAST_POSTING | overrides))
        settings = load_settings(env)
        services = build_services(settings)
        point_store_at(sandbox_app, settings)
        proxy = ServerThread(create_app(settings, services, run_worker=run_worker),
                             sock=proxy_socket).start()
        deployment = Deployment(sandbox, proxy, settings, services, sandbox_app)
        started.append(deployment)
        return deployment

    yield start
    for deployment in started:
        for client in deployment.clients:
            client.close()
        deployment.proxy.stop()
        deployment.sandbox.stop()


@pytest.fixture
def kiosk(deploy, tmp_path: Path) -> Iterator[Callable[..., Kiosk]]:
    """`kiosk(**options)` starts a deployment and a kiosk agent wired to it (see start_kiosk)."""
    started: list[Kiosk] = []
    yield lambda **options: start_kiosk(deploy, tmp_path, started, **options)
    stop_kiosks(started)


@pytest.fixture
def fake_port(tmp_path: Path) -> Iterator[FakeReaderPort]:
    """A card reader plugged in: a pty behind a /dev/serial/by-id style link."""
    port = FakeReaderPort(tmp_path)
    port.plug()
    yield port
    port.close_fds()


@pytest.fixture(scope="module")
def cashnet_server() -> Iterator[ServerThread]:
    """The sandbox CashNet alone on a loopback port, one per test module; `.cashnet` is its
    in-process state."""
    app = create_cashnet_app()
    with ServerThread(app) as running:
        running.cashnet = app.state.cashnet  # type: ignore[attr-defined]
        yield running


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    """A stand-in for the proxy on a loopback port, recording what the sandbox CashNet sends."""
    receiver = Receiver()
    with ServerThread(receiver.app) as server:
        receiver.url = server.url
        yield receiver


@pytest.fixture(scope="module")
def alma_server() -> Iterator[ServerThread]:
    """The sandbox Alma alone on a loopback port, one per test module; `.alma` is its
    in-process state."""
    app = create_alma_app()
    with ServerThread(app) as running:
        running.alma = app.state.alma  # type: ignore[attr-defined]
        yield running


@pytest.fixture
def alma(alma_server: ServerThread) -> AlmaSandbox:
    """That sandbox Alma's state, back to its seed."""
    sandbox: AlmaSandbox = alma_server.alma  # type: ignore[attr-defined]
    sandbox.reset()
    return sandbox
