"""The whole sandbox on one port: Alma under /alma, CashNet under /cashnet, the campus sign-on
stand-ins (CAS under /cas, a Primo "Pay fines" page under /primo, an SSO gateway under /sso),
the mail its SMTP server received under /mail (the server itself, sandbox/smtp.py, is started
beside the app), and an index page that says where everything is. For staging and the demo;
tests may run each app alone."""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.routing import Mount, Route

from sandbox import alma, bursar, cas, cashnet, mail_page, primo, sso

ALMA_PREFIX = "/alma"
CASHNET_PREFIX = "/cashnet"
CAS_PREFIX = "/cas"
PRIMO_PREFIX = "/primo"
SSO_PREFIX = "/sso"
BURSAR_PREFIX = "/bursar"
MAIL_PREFIX = "/mail"
ALMA_API_KEY = "sandbox-alma-key"
CASHNET_STORE = "LIBFINESTEST"


def urls(base: str) -> dict[str, str]:
    """Where each service of a sandbox served at `base` answers."""
    return {
        "alma_api": f"{base}{ALMA_PREFIX}/almaws/v1",
        "cashnet_checkout": f"{base}{CASHNET_PREFIX}/{CASHNET_STORE}",
        "primo_jwks": f"{base}{ALMA_PREFIX}/auth/01PATRON_INST/jwks.json",
        "cas_url": f"{base}{CAS_PREFIX}",
        "primo_page": f"{base}{PRIMO_PREFIX}/",
        "sso_login": f"{base}{SSO_PREFIX}/login",
        "bursar_page": f"{base}{BURSAR_PREFIX}/",
        "mail_page": f"{base}{MAIL_PREFIX}/",
    }


async def index(request: Request) -> HTMLResponse:
    base = str(request.base_url).rstrip("/")
    links = "".join(f"<li>{name}: <code>{url}</code></li>" for name, url in urls(base).items())
    return HTMLResponse(
        "<!doctype html><html lang=en><head><meta charset=utf-8><title>patronpay sandbox</title>"
        "</head><body><main><h1>patronpay sandbox</h1><p>Stand-ins for Alma, CashNet and "
        "campus sign-on. No real money, no real card data.</p>"
        f"<ul>{links}</ul></main></body></html>")


def create_sandbox_app(alma_seed: dict | None = None,
                       cashnet_stores: dict | None = None,
                       campus_users: dict | None = None) -> Starlette:
    alma_app = alma.create_app(alma_seed)
    cashnet_app = cashnet.create_app(cashnet_stores)
    cas_app = cas.create_app(campus_users)
    seed = alma_seed if alma_seed is not None else alma.load_seed()
    patrons = [user["primary_id"] for user in seed.get("users", [])]
    primo_app = primo.create_primo_app(alma_app.state.alma, patrons)
    sso_app = sso.create_app(campus_users)
    bursar_app = bursar.create_app()
    mail_app = mail_page.create_app()  # fed by sandbox.smtp.SmtpServer(app.state.mailbox)
    app = Starlette(routes=[
        Route("/", index),
        Mount(ALMA_PREFIX, app=alma_app),
        Mount(CASHNET_PREFIX, app=cashnet_app),
        Mount(CAS_PREFIX, app=cas_app),
        Mount(PRIMO_PREFIX, app=primo_app),
        Mount(SSO_PREFIX, app=sso_app),
        Mount(BURSAR_PREFIX, app=bursar_app),
        Mount(MAIL_PREFIX, app=mail_app),
    ])
    app.state.alma = alma_app.state.alma
    app.state.cashnet = cashnet_app.state.cashnet
    app.state.cas = cas_app.state.cas
    app.state.primo = primo_app.state.primo
    app.state.sso = sso_app.state.sso
    app.state.bursar = bursar_app.state.bursar
    app.state.mailbox = mail_app.state.mailbox
    app.state.alma_analytics = alma_app.state.alma_analytics
    return app
