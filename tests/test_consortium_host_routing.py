"""Host-name routing over loopback (docs/consortium.md#routing): a real `patronpay serve` on
127.0.0.1 serving two institutions by host name against the consortium sandbox. Each Host
header reaches its own institution (Campus A at `localhost`, Campus B at `127.0.0.1`, both this
machine); a host that names none gets 404 and no list; CashNet notifies each at its own host
and token; Campus A's session cookie means nothing at Campus B."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from support.posting import FAST_POSTING
from support.rig import ProxyProcess, free_port
from support.waiting import wait_for

from patronpay.consortium_demo import consortium_config, point_sandbox_at
from patronpay.serving import ServerThread
from proxy.consortium.config import load_consortium
from proxy.consortium.institutions import Consortium
from sandbox.consortium import create_consortium_sandbox_app

HOSTS = {"campus-a": "localhost", "campus-b": "127.0.0.1"}
NAMES = {"campus-a": "Campus A Library", "campus-b": "Campus B Libraries"}


@dataclass
class HostDeployment:
    proxy: ProxyProcess
    sandbox: ServerThread
    sandbox_app: Any
    consortium: Consortium

    def host(self, code: str) -> str:
        return f"{HOSTS[code]}:{self.proxy.port}"

    def client(self, code: str) -> httpx.Client:
        """A browser at `code`'s host name (connecting to 127.0.0.1 with its Host header)."""
        return httpx.Client(base_url=self.proxy.url, timeout=15.0, headers={
            "Host": self.host(code), "Origin": f"http://{self.host(code)}"})

    def cashnet(self, code: str):
        return self.sandbox_app.state.institutions[code].state.cashnet

    def alma(self, code: str):
        return self.sandbox_app.state.institutions[code].state.alma

    def settings(self, code: str):
        return self.consortium.institution(code).settings


@pytest.fixture(scope="module")
def d(tmp_path_factory) -> Iterator[HostDeployment]:
    folder: Path = tmp_path_factory.mktemp("by-host")
    sandbox_app = create_consortium_sandbox_app()
    sandbox = ServerThread(sandbox_app).start()
    port = free_port()
    path = consortium_config(folder, f"http://127.0.0.1:{port}", sandbox.url, routing="host",
                             tables={code: {"host": host} for code, host in HOSTS.items()},
                             **FAST_POSTING)
    consortium = load_consortium({"PATRONPAY_CONFIG": str(path)})
    assert consortium is not None
    point_sandbox_at(sandbox_app, consortium)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PATRONPAY_")}
    env.update(PATRONPAY_CONFIG=str(path), PYTHONUNBUFFERED="1")
    proxy = ProxyProcess(env, port, folder / "proxy.log")
    try:
        proxy.start()
        yield HostDeployment(proxy, sandbox, sandbox_app, consortium)
    finally:
        proxy.stop()
        sandbox.stop()


def sign_in(d: HostDeployment, code: str, user_id: str) -> httpx.Client:
    client = d.client(code)
    answer = client.get("/auth/sso", headers={"X-Remote-User": user_id})
    assert answer.status_code == 303 and answer.headers["location"] == "/", answer.text
    session = client.get("/api/session")
    assert session.status_code == 200, session.text
    client.headers["X-CSRF-Token"] = session.json()["csrf_token"]
    return client


def test_each_host_name_reaches_its_own_institution(d):
    for code, name in NAMES.items():
        with d.client(code) as client:
            page = client.get("/")
            assert page.status_code == 200
            assert re.search(f'<p class="site-name">(<img [^>]*> )?{name}</p>', page.text)
            assert 'src="/api.js"' in page.text  # its own host: no prefix
            style = client.get("/consortium/institution.css").text
            assert f"--accent: {'#6a1b9a' if code == 'campus-a' else '#1d5e3a'};" in style


@pytest.mark.parametrize("path", ["/", "/campus-a/", "/api/session", "/staff/"])
def test_a_host_that_names_no_institution_gets_404_and_no_list(d, path):
    answer = httpx.get(d.proxy.url + path, headers={"Host": f"pay.example.edu:{d.proxy.port}"})
    assert answer.status_code == 404
    assert "No institution is served at this address." in answer.text
    assert "Campus" not in answer.text


def test_a_load_balancers_health_check_by_address_answers_for_all(d):
    headers = {"Host": f"10.0.0.5:{d.proxy.port}"}
    assert httpx.get(d.proxy.url + "/healthz", headers=headers).json() == {"status": "ok"}
    assert httpx.get(d.proxy.url + "/readyz", headers=headers).json()["status"] == "ready"


def test_a_session_cookie_of_one_host_is_refused_at_the_other(d):
    at_a = sign_in(d, "campus-a", "mkowalski")  # known at both institutions
    cookie = "; ".join(f"{c.name}={c.value}" for c in at_a.cookies.jar)
    with d.client("campus-a") as client:
        assert client.get("/api/session", headers={"Cookie": cookie}).status_code == 200
    with d.client("campus-b") as client:
        assert client.get("/api/session", headers={"Cookie": cookie}).status_code == 401
        assert client.get("/api/fees", headers={"Cookie": cookie}).status_code == 401
    at_a.close()


def pay_and_wait_posted(d: HostDeployment, code: str, user_id: str) -> tuple[dict, str]:
    client = sign_in(d, code, user_id)
    try:
        created = client.post("/api/payments", json={})
        assert created.status_code == 201, created.text
        checkout = created.json()["checkout"]
        handed = httpx.post(checkout["action"], data=checkout["fields"], timeout=15.0)
        assert handed.status_code == 200, handed.text
        cid = handed.headers["X-Emulator-Checkout"]
        d.cashnet(code).complete(cid, outcome="pay")
        payment_id = created.json()["payment"]["id"]
        wait_for(lambda: client.get(f"/api/payments/{payment_id}").json()["payment"]["state"]
                 == "posted", f"payment {payment_id} at {code} to be posted", timeout=30)
    finally:
        client.close()
    return created.json(), cid


def test_cashnet_notifies_each_institution_at_its_own_host_and_token(d):
    for code, user_id in (("campus-a", "jsmith"), ("campus-b", "rgarcia")):
        created, cid = pay_and_wait_posted(d, code, user_id)
        # Sent to its own host (the sandbox shows the token redacted); posted, so accepted.
        sent = [r for r in d.cashnet(code).notifications(cid) if r["sent"]]
        assert sent and sent[0]["url"] == \
            f"http://{d.host(code)}/cashnet/postback/<redacted>", sent[0]
        posted = [r for r in d.alma(code).requests()
                  if r["method"] == "POST" and "pay" in r["query"].get("op", [])]
        assert posted, f"nothing posted to {code}'s Alma"
    # Campus A's token URL at Campus B's host: not Campus B's notification URL.
    a_token = d.settings("campus-a").cashnet_postback_token
    with d.client("campus-b") as client:
        assert client.post(f"/cashnet/postback/{a_token}", data={}).status_code == 404
