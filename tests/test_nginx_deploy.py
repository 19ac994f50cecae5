"""The documented deployment behind a real web server (docs/deploy.md#nginx): Debian's nginx,
run unprivileged on loopback ports with the server configuration copied verbatim from
docs/deploy.md (only the documented placeholders substituted), in front of `patronpay serve`
and the sandbox. A payment goes end to end through it; a CAS ticket of 8 KiB reaches
patronpay; a spoofed SSO header and a spoofed X-Forwarded-For are refused; no token, ticket, jwt or receipt token reaches nginx's access or
error log, also with patronpay down and with an oversized body."""

from __future__ import annotations

import datetime
import ipaddress
import os
import re
import secrets
import shutil
import ssl
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route
from support.rig import ProxyProcess, free_port
from support.waiting import wait_for

from patronpay.demo import point_store_at, sandbox_environment
from patronpay.serving import ServerThread
from proxy.config import load_settings
from proxy.db import Database
from proxy.ledger import Ledger
from sandbox.app import create_sandbox_app

ROOT = Path(__file__).resolve().parent.parent
DEPLOY_DOC = ROOT / "docs" / "deploy.md"
MARKER = "# /etc/nginx/sites-available/patronpay"
NGINX = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)
# The campus sign-on's session cookie in the stand-in for oauth2-proxy, and whom it names.
CAMPUS_COOKIE = "_oauth2_proxy"
CAMPUS_SESSIONS = {"campus-session-mkowalski": "mkowalski"}
# Where CashNet's notifications come from: a loopback address other than nginx's own.
CASHNET_SENDER = "127.0.0.2"


def documented_server_config() -> str:
    """The fenced nginx block of docs/deploy.md that starts with the marker line, verbatim."""
    text = DEPLOY_DOC.read_text(encoding="utf-8")
    blocks = re.findall(r"^```nginx\n(.*?)^```$", text, flags=re.DOTALL | re.MULTILINE)
    found = [block for block in blocks if block.startswith(MARKER)]
    assert len(found) == 1, f"docs/deploy.md needs one ```nginx block starting {MARKER!r}"
    return found[0]


def substitute(config: str, replacements: dict[str, str]) -> str:
    """Only the placeholders docs/deploy.md names: each must be there to be replaced."""
    for placeholder, value in replacements.items():
        assert placeholder in config, f"the documented config no longer has {placeholder!r}"
        config = config.replace(placeholder, value)
    assert "/var/log/" not in config and ":8000" not in config and ":4180" not in config
    return config


def self_signed_certificate(folder: Path) -> tuple[Path, Path]:
    """A throwaway certificate for 127.0.0.1 and ::1, valid for a day."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "patronpay test")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(x509.SubjectAlternativeName([
                x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                x509.IPAddress(ipaddress.ip_address("::1"))]), critical=False)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    key_path.chmod(0o600)
    return cert_path, key_path


def campus_sign_on() -> Starlette:
    """A stand-in for oauth2-proxy: `/oauth2/auth` answers 202 naming the user of a known
    campus session cookie (as oauth2-proxy does with --set-xauthrequest) and 401 otherwise."""

    async def auth(request: Request) -> Response:
        user = CAMPUS_SESSIONS.get(request.cookies.get(CAMPUS_COOKIE, ""))
        if user is None:
            return Response(status_code=401)
        return Response(status_code=202, headers={"X-Auth-Request-User": user})

    async def sign_in(request: Request) -> Response:
        return HTMLResponse("<h1>Campus sign-on</h1>", status_code=403)

    return Starlette(routes=[Route("/oauth2/auth", auth), Route("/oauth2/sign_in", sign_in)])


class Nginx:
    """Debian's nginx as this user, with its own prefix, pid file, logs and temp folders."""

    def __init__(self, folder: Path, server_config: str) -> None:
        self.folder = folder
        self.logs = folder / "logs"
        self.logs.mkdir()
        (folder / "patronpay.conf").write_text(server_config)
        # As root, nginx would hand its workers to `nobody`, who cannot enter pytest's folders.
        user = "user root root;\n" if os.geteuid() == 0 else ""
        temp = "\n".join(f"    {kind}_temp_path {folder}/{kind};" for kind in
                         ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
        (folder / "nginx.conf").write_text(
            f"{user}daemon off;\nworker_processes 1;\npid {folder}/nginx.pid;\n"
            f"error_log {self.logs}/main-error.log;\nevents {{ worker_connections 64; }}\n"
            f"http {{\n{temp}\n    access_log {self.logs}/other-access.log;\n"
            f"    include {folder}/patronpay.conf;\n}}\n")
        self.process: subprocess.Popen | None = None

    def command(self, *extra: str) -> list[str]:
        return [NGINX, "-p", str(self.folder), "-c", str(self.folder / "nginx.conf"),
                "-e", str(self.logs / "early-error.log"), *extra]

    def start(self, https_url: str, ssl_context: ssl.SSLContext) -> Nginx:
        check = subprocess.run(self.command("-t"), capture_output=True, text=True, timeout=30)
        assert check.returncode == 0, check.stderr
        self.process = subprocess.Popen(self.command(), stdout=subprocess.DEVNULL,
                                        stderr=subprocess.DEVNULL)

        def answering() -> bool:
            assert self.process.poll() is None, self.read("main-error.log")
            try:
                httpx.get(https_url + "/healthz", verify=ssl_context, timeout=1)
                return True
            except httpx.HTTPError:
                return False

        wait_for(answering, "nginx to answer")
        return self

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)

    def read(self, name: str) -> str:
        path = self.logs / name
        return path.read_text(errors="replace") if path.exists() else ""

    def every_log(self) -> str:
        return "\n".join(self.read(p.name) for p in sorted(self.logs.iterdir()))


@dataclass
class Site:
    nginx: Nginx
    proxy: ProxyProcess
    sandbox_app: Starlette
    ledger: Ledger
    url: str  # https, through nginx
    http_url: str
    ssl: ssl.SSLContext
    postback_token: str
    secrets_seen: list[str]
    clients: list[httpx.Client]

    def browser(self) -> httpx.Client:
        client = httpx.Client(base_url=self.url, verify=self.ssl, timeout=15,
                              headers={"Origin": self.url})
        self.clients.append(client)
        return client

    def remember(self, secret: str) -> str:
        """A value that must never appear in nginx's logs."""
        assert len(secret) >= 16
        self.secrets_seen.append(secret)
        return secret


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Site]:
    if NGINX is None:
        pytest.fail("nginx is missing: install Debian's nginx (bash .ci/run does)")
    cert, key = self_signed_certificate(tmp_path)
    trust = ssl.create_default_context(cafile=str(cert))
    # The sandbox CashNet posts its notifications over https to nginx (from CASHNET_SENDER):
    # its client trusts this certificate through the usual variable.
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))
    https_port, http_port, proxy_port = free_port(), free_port(), free_port()
    public_url = f"https://127.0.0.1:{https_port}"

    sandbox_app = create_sandbox_app()
    sandbox_server = ServerThread(sandbox_app).start()
    sign_on = ServerThread(campus_sign_on()).start()
    token = secrets.token_urlsafe(32)
    env_settings = sandbox_environment(
        public_url, sandbox_server.url, tmp_path / "ledger.sqlite3", token,
        auth_methods="sso,cas,primo", sso_login_url="/auth/sso",
        trusted_proxies="127.0.0.1/32,::1/128", cashnet_allowed_ips=f"{CASHNET_SENDER}/32",
        posting_backoff_cap_seconds="0.2", alma_read_timeout="3", alma_recheck_seconds="2.5")
    settings = load_settings(env_settings)
    point_store_at(sandbox_app, settings)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PATRONPAY_")}
    env.update(env_settings, PYTHONUNBUFFERED="1")
    proxy = ProxyProcess(env, proxy_port, tmp_path / "proxy.log").start()

    server_config = substitute(documented_server_config(), {
        "listen 80;": f"listen 127.0.0.1:{http_port};",
        "listen [::]:80;": f"listen [::1]:{http_port};",
        "listen 443 ssl;": f"listen 127.0.0.1:{https_port} ssl;",
        "listen [::]:443 ssl;": f"listen [::1]:{https_port} ssl;",
        "/etc/ssl/certs/pay.library.example.edu.pem": str(cert),
        "/etc/ssl/private/pay.library.example.edu.key": str(key),
        "/var/log/nginx/": f"{tmp_path}/nginx/logs/",
        "127.0.0.1:8000": f"127.0.0.1:{proxy_port}",
        "127.0.0.1:4180": f"127.0.0.1:{sign_on.url.rsplit(':', 1)[1]}",
    })
    (tmp_path / "nginx").mkdir()
    nginx = Nginx(tmp_path / "nginx", server_config).start(public_url, trust)
    ledger = Ledger(Database(tmp_path / "ledger.sqlite3"))
    running = Site(nginx, proxy, sandbox_app, ledger, public_url,
                   f"http://127.0.0.1:{http_port}", trust, token, [token], [])
    yield running
    for client in running.clients:
        client.close()
    running.nginx.stop()
    nginx.stop()
    proxy.stop()
    ledger.db.close()
    sign_on.stop()
    sandbox_server.stop()


def sign_in_by_sso(site: Site) -> httpx.Client:
    client = site.browser()
    client.cookies.set(CAMPUS_COOKIE, "campus-session-mkowalski")
    answer = client.get("/auth/sso", params={"next": "/"})
    assert answer.status_code == 303, answer.text
    session = client.get("/api/session")
    assert session.status_code == 200, session.text
    assert (session.json()["patron"]["id"], session.json()["method"]) == ("mkowalski", "sso")
    client.headers["X-CSRF-Token"] = session.json()["csrf_token"]
    return client


def wait_for_state(site: Site, payment_id: str, state: str):
    return wait_for(lambda: (p := site.ledger.payment(payment_id)) and p.state == state and p,
                    f"payment {payment_id} to be {state}", timeout=30)


def assert_no_secret_in_logs(site: Site) -> None:
    logs = site.nginx.every_log()
    assert logs.strip(), "nginx wrote no log at all"
    for secret in site.secrets_seen:
        assert secret not in logs, f"a secret reached nginx's logs: {secret[:6]}..."


def test_a_payment_end_to_end_through_nginx(site):
    cashnet = site.sandbox_app.state.cashnet
    patron = sign_in_by_sso(site)
    created = patron.post("/api/payments", json={"amount": "62.00"})
    assert created.status_code == 201, created.text
    payment = created.json()["payment"]
    site.remember(payment["receipt_token"])
    checkout = created.json()["checkout"]
    handed = httpx.post(checkout["action"], data=checkout["fields"], timeout=15)
    cid = handed.headers["X-Emulator-Checkout"]

    # CashNet's notification reaches patronpay through nginx, from an allowed sender.
    completion = cashnet.complete(cid, faults={"source_address": CASHNET_SENDER})
    posted = wait_for_state(site, payment["id"], "posted")
    assert posted.cashnet_tx == completion["tx"]
    assert [n["outcome"] for n in site.ledger.notifications(payment["id"])] == ["paid"]

    # CashNet's sign-out, through nginx, to the receipt.
    signout = completion["signout"]
    back = patron.request(signout["method"], "/cashnet/return",
                          data=dict(tuple(pair) for pair in signout["fields"]))
    assert back.status_code == 303, back.text
    receipt_token = parse_qs(urlsplit(back.headers["location"]).query)["r"][0]
    site.remember(receipt_token)
    assert patron.get(back.headers["location"]).status_code == 200
    receipt = patron.get(f"/api/receipts/{receipt_token}")
    assert receipt.json()["payment"]["state"] == "posted"

    access = site.nginx.read("patronpay-access.log")
    assert '"POST /cashnet/postback/-" 200' in access
    assert '"GET /api/receipts/-" 200' in access
    assert_no_secret_in_logs(site)


def test_primo_and_cas_sign_ins_leave_no_jwt_or_ticket_in_the_logs(site):
    primo_link = site.sandbox_app.state.primo.pay_link("mkowalski", "127.0.0.1")
    jwt = site.remember(parse_qs(urlsplit(primo_link).query)["jwt"][0])
    by_primo = site.browser()
    assert by_primo.get("/auth/primo", params={"jwt": jwt}).status_code == 303
    assert by_primo.get("/api/session").json()["method"] == "primo"

    # CAS: the round trip starts here, the campus CAS issues a ticket for our service, and
    # the browser brings it back through nginx.
    by_cas = site.browser()
    to_cas = by_cas.get("/auth/cas", params={"next": "/"})
    assert to_cas.status_code == 303
    service = parse_qs(urlsplit(to_cas.headers["location"]).query)["service"][0]
    assert service == site.url + "/auth/cas"
    ticket = site.remember(site.sandbox_app.state.cas.issue_ticket("mkowalski", service))
    assert by_cas.get("/auth/cas", params={"ticket": ticket}).status_code == 303
    assert by_cas.get("/api/session").json()["method"] == "cas"
    assert '"GET /auth/primo" 303' in site.nginx.read("patronpay-access.log")
    assert_no_secret_in_logs(site)


def test_a_cas_ticket_of_8_kib_gets_through_nginx_to_cas(site):
    """patronpay takes tickets up to 8 KiB (a Shibboleth IdP's encode state); nginx's default
    request-line buffer (8k) would answer 414 before patronpay saw such a ticket."""
    cas = site.sandbox_app.state.cas
    browser = site.browser()
    assert browser.get("/auth/cas", params={"next": "/"}).status_code == 303
    ticket = site.remember("ST-" + secrets.token_urlsafe(6144)[:8192 - 3])
    assert len(ticket) == 8192
    answer = browser.get("/auth/cas", params={"ticket": ticket})
    assert answer.status_code == 303, answer.status_code
    assert answer.headers["location"] == "/?error=cas_failed"  # CAS never issued it
    assert [v["ticket"] for v in cas.validations()] == [ticket]  # CAS was asked
    assert_no_secret_in_logs(site)


def test_a_spoofed_sso_header_is_refused_on_every_path(site):
    for path in ("/auth/sso", "/auth/sso?next=/", "/api/session", "/", "/AUTH/SSO"):
        browser = site.browser()
        browser.cookies.set(CAMPUS_COOKIE, "campus-session-mkowalski")
        assert browser.get(path, headers={"X-Remote-User": "tlee"}).status_code == 400, path
        assert browser.get("/api/session").status_code == 401
    # Not signed in at the campus: the sign-on's page, and no session.
    stranger = site.browser()
    assert stranger.get("/auth/sso").status_code == 403
    assert stranger.get("/api/session").status_code == 401
    # A header name nginx drops (underscores) changes nothing: the campus session decides.
    browser = site.browser()
    browser.cookies.set(CAMPUS_COOKIE, "campus-session-mkowalski")
    assert browser.get("/auth/sso", headers={"X_Remote_User": "tlee"}).status_code == 303
    assert browser.get("/api/session").json()["patron"]["id"] == "mkowalski"


def test_a_spoofed_x_forwarded_for_is_refused(site):
    """A client on nginx's own address claims to be CashNet's sender: nginx replaces the
    header with the address it saw, and patronpay refuses the notification."""
    patron = sign_in_by_sso(site)
    payment_id = patron.post("/api/payments", json={"amount": "62.00"}).json()["payment"]["id"]
    form = {"result": "0", "tx": "991", "ref1type1": "PAYMENT_ID", "ref1val1": payment_id}
    spoofed = httpx.post(f"{site.url}/cashnet/postback/{site.postback_token}", data=form,
                         headers={"X-Forwarded-For": CASHNET_SENDER}, verify=site.ssl)
    assert spoofed.status_code == 403
    assert site.ledger.payment(payment_id).state == "pending"
    assert site.ledger.notifications(payment_id) == []
    assert_no_secret_in_logs(site)


def test_http_redirects_and_the_server_tells_no_version(site):
    answer = httpx.get(site.http_url + f"/cashnet/postback/{site.postback_token}")
    assert answer.status_code == 301
    assert answer.headers["location"].startswith("https://127.0.0.1/")
    over_ipv6 = httpx.get(site.url.replace("127.0.0.1", "[::1]") + "/healthz", verify=site.ssl)
    assert over_ipv6.status_code == 200
    assert over_ipv6.headers["server"] == "nginx"
    assert_no_secret_in_logs(site)


def test_no_secret_in_the_logs_with_an_oversized_body_or_patronpay_down(site):
    jwt = site.remember("eyJhbGciOiJFUzI1NiJ9." + secrets.token_urlsafe(40))
    ticket = site.remember("ST-" + secrets.token_urlsafe(30))
    receipt = site.remember(secrets.token_urlsafe(40))
    postback = f"{site.url}/cashnet/postback/{site.postback_token}"
    big = httpx.post(postback, content=b"x" * 100_000, verify=site.ssl,
                     headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert big.status_code == 413

    site.proxy.stop()
    asks = [("POST", postback, {"result": "0"}), ("GET", f"{site.url}/auth/primo?jwt={jwt}", None),
            ("GET", f"{site.url}/auth/cas?ticket={ticket}", None),
            ("GET", f"{site.url}/receipt.html?r={receipt}", None),
            ("GET", f"{site.url}/api/receipts/{receipt}", None)]
    for method, url, data in asks:
        assert httpx.request(method, url, data=data, verify=site.ssl).status_code == 502, url
    big = httpx.post(postback, content=b"x" * 100_000, verify=site.ssl)
    assert big.status_code == 413

    access = site.nginx.read("patronpay-access.log")
    assert '"POST /cashnet/postback/-" 413' in access
    assert '"POST /cashnet/postback/-" 502' in access
    assert '"GET /auth/primo" 502' in access
    assert_no_secret_in_logs(site)


def test_without_the_crit_level_nginx_would_log_the_token(site, tmp_path):
    """The control: the same configuration with the error log at nginx's default level writes
    the notification URL, token included, as soon as patronpay is down. So `crit` is what
    keeps it out above, not luck."""
    site.nginx.stop()
    config = (site.nginx.folder / "patronpay.conf").read_text()
    assert config.count("patronpay-error.log crit;") == 2
    (tmp_path / "control").mkdir()
    control = Nginx(tmp_path / "control",
                    config.replace("patronpay-error.log crit;", "patronpay-error.log error;"))
    site.nginx = control.start(site.url, site.ssl)
    site.proxy.stop()
    postback = f"{site.url}/cashnet/postback/{site.postback_token}"
    assert httpx.post(postback, data={"result": "0"}, verify=site.ssl).status_code == 502
    # The log folder substituted for the first run: both runs write the same files.
    error_log = tmp_path / "nginx" / "logs" / "patronpay-error.log"
    logged = wait_for(lambda: error_log.exists() and error_log.read_text(), "nginx's error log")
    assert site.postback_token in logged
