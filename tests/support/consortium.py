"""A consortium on loopback for tests: the consortium sandbox (two institutions, each its own
Alma, CashNet store and sign-on) and one proxy serving both by path prefix."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from patronpay.consortium_demo import consortium_config, point_sandbox_at
from patronpay.serving import ServerThread, bind
from proxy.consortium.app import create_consortium_app
from proxy.consortium.config import load_consortium
from proxy.consortium.institutions import Consortium
from proxy.runtime import Services, build_services
from sandbox.consortium import create_consortium_sandbox_app
from support.posting import FAST_POSTING
from support.waiting import wait_for


@dataclass
class ConsortiumDeployment:
    proxy: ServerThread
    sandbox: ServerThread
    sandbox_app: Any
    consortium: Consortium
    services: dict[str, Services]
    clients: list[httpx.Client] = field(default_factory=list)

    @property
    def url(self) -> str:
        return self.proxy.url

    def base(self, code: str) -> str:
        return f"{self.url}/{code}"

    def alma(self, code: str):
        return self.sandbox_app.state.institutions[code].state.alma

    def cashnet(self, code: str):
        return self.sandbox_app.state.institutions[code].state.cashnet

    def ledger(self, code: str):
        return self.services[code].ledger

    def settings(self, code: str):
        return self.services[code].settings

    def browser(self) -> httpx.Client:
        client = httpx.Client(base_url=self.url, headers={"Origin": self.url}, timeout=15.0)
        self.clients.append(client)
        return client

    def sign_in_sso(self, code: str, user_id: str,
                    client: httpx.Client | None = None) -> httpx.Client:
        client = client or self.browser()
        response = client.get(f"/{code}/auth/sso", headers={"X-Remote-User": user_id})
        assert response.status_code == 303, response.text
        session = client.get(f"/{code}/api/session")
        assert session.status_code == 200, session.text
        client.headers["X-CSRF-Token"] = session.json()["csrf_token"]
        return client

    def start_payment(self, code: str, client: httpx.Client, **body: Any) -> dict:
        response = client.post(f"/{code}/api/payments", json=body)
        assert response.status_code == 201, response.text
        return response.json()

    def hand_off(self, checkout: dict) -> str:
        response = httpx.post(checkout["action"], data=checkout["fields"], timeout=15.0)
        assert response.status_code == 200, response.text
        assert "X-Emulator-Error" not in response.headers, response.text
        return response.headers["X-Emulator-Checkout"]

    def pay(self, code: str, client: httpx.Client, **body: Any) -> tuple[dict, str]:
        """Start a payment at `code`, hand it to that institution's CashNet, pay it there."""
        created = self.start_payment(code, client, **body)
        cid = self.hand_off(created["checkout"])
        self.cashnet(code).complete(cid, outcome="pay")
        return created, cid

    def wait_for_state(self, code: str, payment_id: str, state: str, timeout: float = 20.0):
        ledger = self.ledger(code)
        return wait_for(lambda: (p := ledger.payment(payment_id)) and p.state == state and p,
                        f"payment {payment_id} at {code} to be {state}", timeout=timeout)

    def alma_calls(self, code: str, method: str | None = None,
                   op: str | None = None) -> list[dict]:
        calls = [r for r in self.alma(code).requests() if r["path"].startswith("/almaws/")]
        if method:
            calls = [r for r in calls if r["method"] == method]
        if op:
            calls = [r for r in calls if op in r["query"].get("op", [])]
        return calls

    def stop(self) -> None:
        for client in self.clients:
            client.close()
        self.proxy.stop()
        self.sandbox.stop()


def start_consortium(folder: Path, run_worker: bool = True,
                     tables: dict[str, dict[str, Any]] | None = None,
                     **defaults: str) -> ConsortiumDeployment:
    sandbox_app = create_consortium_sandbox_app()
    sandbox = ServerThread(sandbox_app).start()
    proxy_socket = bind("127.0.0.1", 0)
    proxy_url = f"http://127.0.0.1:{proxy_socket.getsockname()[1]}"
    path = consortium_config(folder, proxy_url, sandbox.url, tables,
                             **(FAST_POSTING | defaults))
    consortium = load_consortium({"PATRONPAY_CONFIG": str(path)})
    assert consortium is not None
    services = {i.code: build_services(i.settings) for i in consortium.institutions}
    point_sandbox_at(sandbox_app, consortium)
    app = create_consortium_app(consortium, services, run_worker=run_worker)
    proxy = ServerThread(app, sock=proxy_socket).start()
    return ConsortiumDeployment(proxy, sandbox, sandbox_app, consortium, services)
