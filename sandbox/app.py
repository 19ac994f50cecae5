"""The whole sandbox on one port: Alma under /alma, CashNet under /cashnet, and an index page
that says where everything is. For staging and the demo; tests may run each app alone."""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.routing import Mount, Route

from sandbox import alma, cashnet

ALMA_PREFIX = "/alma"
CASHNET_PREFIX = "/cashnet"
ALMA_API_KEY = "sandbox-alma-key"
CASHNET_STORE = "LIBFINESTEST"


def urls(base: str) -> dict[str, str]:
    """Where each service of a sandbox served at `base` answers."""
    return {
        "alma_api": f"{base}{ALMA_PREFIX}/almaws/v1",
        "cashnet_checkout": f"{base}{CASHNET_PREFIX}/{CASHNET_STORE}",
        "primo_jwks": f"{base}{ALMA_PREFIX}/auth/01PATRON_INST/jwks.json",
    }


async def index(request: Request) -> HTMLResponse:
    base = str(request.base_url).rstrip("/")
    links = "".join(f"<li>{name}: <code>{url}</code></li>" for name, url in urls(base).items())
    return HTMLResponse(
        "<!doctype html><html lang=en><head><meta charset=utf-8><title>patronpay sandbox</title>"
        "</head><body><main><h1>patronpay sandbox</h1><p>Stand-ins for Alma and CashNet. "
        f"No real money, no real card data.</p><ul>{links}</ul></main></body></html>")


def create_sandbox_app(alma_seed: dict | None = None,
                       cashnet_stores: dict | None = None) -> Starlette:
    alma_app = alma.create_app(alma_seed)
    cashnet_app = cashnet.create_app(cashnet_stores)
    app = Starlette(routes=[
        Route("/", index),
        Mount(ALMA_PREFIX, app=alma_app),
        Mount(CASHNET_PREFIX, app=cashnet_app),
    ])
    app.state.alma = alma_app.state.alma
    app.state.cashnet = cashnet_app.state.cashnet
    return app
