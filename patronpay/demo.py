"""`patronpay demo`: the sandbox and the proxy in one process, wired together, on this machine.

`sandbox_settings` is also how the tests and benchmarks point a proxy at a sandbox, so the demo
a newcomer runs is the configuration the tests prove.
"""

from __future__ import annotations

import asyncio
import secrets
import socket
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from kiosk.agent import create_kiosk_app
from kiosk.printer import parse_printer
from kiosk.settings import KioskSettings
from kiosk.simulated_reader import DEMO_CARDS, ScannerSocket, create_scanner_app
from patronpay.serving import Listener, bind, http_url, serve_together
from proxy.config import Settings, load_settings
from sandbox.app import ALMA_API_KEY, CASHNET_STORE, create_sandbox_app, urls
from sandbox.printer import VirtualPrinter
from sandbox.smtp import SmtpServer

# The sandbox store's item codes for Alma fee types (its seed defines these codes).
ITEM_CODES = ("OVERDUEFINE=LIB-OVERDUE,RECALLEDOVERDUEFINE=LIB-OVERDUE,"
              "LOSTITEMREPLACEMENTFEE=LIB-LOST,LOSTITEMPROCESSFEE=LIB-LOST,"
              "DAMAGEDITEMFINE=LIB-DAMAGE")

# How to sign in to the demo: (button on the sign-in page, demo account, password).
DEMO_SIGN_INS = [
    ("Sign in with your campus account", "mkowalski", "student-pass"),
    ("Sign in with campus login (CAS)", "arivera", "student-pass"),
    ("Library guest account", "jsmith", "correct-horse-7"),
]


def sandbox_environment(public_url: str, sandbox_url: str, database: Path | str,
                        postback_token: str, **overrides: str) -> dict[str, str]:
    """The proxy's environment for a sandbox served at `sandbox_url`."""
    where = urls(sandbox_url)
    env = {
        "PATRONPAY_PUBLIC_URL": public_url,
        "PATRONPAY_SECRET_KEYS": secrets.token_hex(32),
        "PATRONPAY_DATABASE": str(database),
        "PATRONPAY_ALMA_API_URL": where["alma_api"],
        "PATRONPAY_ALMA_API_KEY": ALMA_API_KEY,
        "PATRONPAY_CASHNET_CHECKOUT_URL": where["cashnet_checkout"],
        "PATRONPAY_CASHNET_ITEM_CODE": "LIB-FINE",
        "PATRONPAY_CASHNET_ITEM_CODES": ITEM_CODES,
        "PATRONPAY_CASHNET_POSTBACK_TOKEN": postback_token,
        # The sandbox CashNet notifies from this machine.
        "PATRONPAY_CASHNET_ALLOWED_IPS": "127.0.0.0/8,::1/128",
        # A seeded patron with fees, for `patronpay check`.
        "PATRONPAY_CHECK_PATRON": "mkowalski",
        "PATRONPAY_AUTH_METHODS": "sso,alma,cas,primo",
        "PATRONPAY_CAS_URL": where["cas_url"],
        "PATRONPAY_CAS_USER_ATTRIBUTE": "almaId",
        "PATRONPAY_PRIMO_INSTITUTION": "01PATRON_INST",
        "PATRONPAY_PRIMO_JWKS_URL": where["primo_jwks"],
        "PATRONPAY_SSO_LOGIN_URL": where["sso_login"],
        # Staff pages at /staff/ for the campus account tlee, signed in by the SSO gateway.
        "PATRONPAY_STAFF_SIGNIN": "sso",
        "PATRONPAY_STAFF_USERS": "tlee",
        "PATRONPAY_STAFF_SSO_LOGIN_URL": where["sso_login"] + "?next=/staff/",
    }
    env.update({f"PATRONPAY_{key.upper()}": value for key, value in overrides.items()})
    return env


def point_store_at(sandbox_app, settings: Settings) -> None:
    """Enter the proxy's URLs in the sandbox services, as campus staff would: the CashNet
    store's notification URL, Primo's "Pay fines" link, the campus sign-on's backend, the CAS
    services registry."""
    postback = f"{settings.public_url}/cashnet/postback/{settings.cashnet_postback_token}"
    sandbox_app.state.cashnet.configure_store(
        CASHNET_STORE, notify_success_url=postback, notify_failure_url=postback)
    sandbox_app.state.primo.configure(settings.public_url + "/auth/primo")
    sandbox_app.state.sso.configure(settings.public_url, settings.sso_header)
    sandbox_app.state.cas.register_service(settings.public_url + "/auth/cas")


KIOSK_ID = "demo-kiosk"


def mail_overrides(smtp: SmtpServer) -> dict[str, str]:
    """The proxy's e-mail settings for the sandbox's mail server (docs/sandbox.md#mail)."""
    return {"smtp_url": smtp.url, "mail_from": "Library fines <fines@library.example.edu>",
            "staff_email": "circ-desk@library.example.edu",
            "library_name": "Example University Library"}


def bind_next_free(host: str, start: int, tries: int = 20) -> socket.socket:
    """The first free port from `start` on (any free port when `start` is 0 or none is)."""
    for candidate in range(start, start + tries) if start else ():
        try:
            return bind(host, candidate)
        except OSError:
            continue
    return bind(host, 0)


@dataclass
class DemoKiosk:
    """A kiosk agent for the demo, with a simulated reader: a `socket://` "scanner" and a page
    whose buttons scan the seeded patrons' library cards."""

    host: str
    agent_socket: socket.socket
    scanner_page_socket: socket.socket
    scanner: ScannerSocket = field(default_factory=lambda: ScannerSocket().start())
    secret: str = field(default_factory=lambda: secrets.token_urlsafe(32))
    # A receipt printer on port 9100's protocol; its receipts (text and PNG) outlive the demo.
    printer: VirtualPrinter = field(default_factory=lambda: VirtualPrinter(
        tempfile.mkdtemp(prefix="patronpay-receipts-")).start())

    @classmethod
    def bind(cls, host: str, start: int) -> DemoKiosk:
        agent = bind_next_free(host, start)
        page = bind_next_free(host, agent.getsockname()[1] + 1 if start else 0)
        return cls(host, agent, page)

    @property
    def url(self) -> str:
        return http_url(self.host, self.agent_socket.getsockname()[1])

    @property
    def scanner_url(self) -> str:
        return http_url(self.host, self.scanner_page_socket.getsockname()[1])

    def proxy_overrides(self) -> dict[str, str]:
        """What the proxy needs to know of this kiosk."""
        return {"kiosk_keys": f"{KIOSK_ID}={self.secret}",
                "kiosk_return_url": self.url + "/kiosk/return"}

    def listeners(self, proxy_url: str) -> list[Listener]:
        settings = KioskSettings(kiosk_id=KIOSK_ID, kiosk_secret=self.secret,
                                 proxy_url=proxy_url, reader=self.scanner.url,
                                 printer=parse_printer(self.printer.connection),
                                 library_name="Demo Library")
        # Short event streams: the demo stops within a few seconds of Ctrl-C.
        agent = create_kiosk_app(settings, stream_seconds=5.0)
        return [Listener("kiosk", agent, self.agent_socket),
                Listener("scanner", create_scanner_app(self.scanner, self.url),
                         self.scanner_page_socket)]

    def print_help(self) -> None:
        print(f"  kiosk: {self.url}/kiosk/ (a self-service terminal; best in a tall window)")
        print(f"  card reader: {self.scanner_url}/ has a button per demo card, or")
        print(f"    curl -d card=mkowalski {self.scanner_url}/scan   "
              f"(cards: {', '.join(DEMO_CARDS)})")
        print(f"  receipt printer: what the kiosk prints lands in {self.printer.folder}/ "
              "(text and PNG)")

    def close(self) -> None:
        self.scanner.close()
        self.printer.close()


def run_demo(host: str, port: int, kiosk: bool = False, bursar: bool = False) -> int:
    from patronpay.bursar_demo import BursarDemo
    from proxy.app import create_app
    from proxy.logs import configure_logging

    proxy_socket = bind(host, port)
    sandbox_socket = bind_next_free(host, proxy_socket.getsockname()[1] + 1 if port else 0)
    demo_kiosk = DemoKiosk.bind(host, sandbox_socket.getsockname()[1] + 1 if port else 0) \
        if kiosk else None
    sandbox_app = create_sandbox_app()
    smtp = SmtpServer(sandbox_app.state.mailbox, host).start()
    with tempfile.TemporaryDirectory(prefix="patronpay-demo-") as folder:
        proxy_url = http_url(host, proxy_socket.getsockname()[1])
        sandbox_url = http_url(host, sandbox_socket.getsockname()[1])
        demo_bursar = BursarDemo(Path(folder)) if bursar else None
        environment = sandbox_environment(
            proxy_url, sandbox_url, Path(folder) / "ledger.sqlite3", secrets.token_urlsafe(32),
            log_level="WARNING", **mail_overrides(smtp),
            **(demo_kiosk.proxy_overrides() if demo_kiosk else {}),
            **(demo_bursar.overrides() if demo_bursar else {}))
        settings = load_settings(environment)
        configure_logging(settings.log_level)
        point_store_at(sandbox_app, settings)
        listeners = [Listener("proxy", create_app(settings), proxy_socket),
                     Listener("sandbox", sandbox_app, sandbox_socket)]
        if demo_kiosk:
            listeners += demo_kiosk.listeners(proxy_url)
        print(f"patronpay demo: pay library fines at {proxy_url}/")
        print(f"  sandbox Alma and CashNet at {sandbox_url}/ (no real money, no real cards)")
        print("  sign in (demo accounts only):")
        for label, user, password in DEMO_SIGN_INS:
            print(f"    {label + ':':36} {user} / {password}")
        print(f"    {'From the library catalog (Primo):':36} {urls(sandbox_url)['primo_page']}")
        print("  on CashNet's sandbox page any card number works; Pay, Decline or Cancel.")
        print(f"  e-mail: receipts and staff alerts land at {urls(sandbox_url)['mail_page']}")
        if demo_kiosk:
            demo_kiosk.print_help()
        if demo_bursar:
            demo_bursar.wire(sandbox_app, settings, environment)
            demo_bursar.print_help(sandbox_url)
        print("Stop with Ctrl-C.", flush=True)
        if demo_bursar:
            demo_bursar.start(settings, sandbox_url)
        try:
            asyncio.run(serve_together(listeners))
        finally:
            smtp.stop()
            if demo_kiosk:
                demo_kiosk.close()
            if demo_bursar:
                demo_bursar.close()
    return 0
