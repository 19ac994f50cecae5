"""The consortium as one ASGI app (docs/consortium.md#routing): each institution is a whole
patronpay app built by `proxy.app.create_app` from its own settings, and this app picks which
one a request is for, by path prefix (`/<code>/`) or by host name, as `[consortium] routing`
says. It also runs every institution's lifespan (its posting worker, mail and kiosk watch: a
mounted app's lifespan would not run by itself), answers CashNet notifications sent to the
root by their token, and lists the institutions for a request that names none (under host
routing: 404)."""

from __future__ import annotations

import contextlib
import hmac
from collections.abc import Mapping

from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse

from proxy.app import create_app
from proxy.config import ConfigError, Settings, load_settings
from proxy.consortium.config import load_consortium
from proxy.consortium.institution_app import ASGIApp, InstitutionApp, Receive, Scope, Send
from proxy.consortium.institutions import Consortium, Institution
from proxy.consortium.ledger_owner import claim_ledger
from proxy.consortium.listing import institutions_page
from proxy.consortium.network import Member, Network, network_app
from proxy.runtime import Services
from proxy.web.responses import JSONResponse

POSTBACK = "/cashnet/postback/"


class ConsortiumApp:
    def __init__(self, consortium: Consortium, apps: Mapping[str, ASGIApp]) -> None:
        self.consortium = consortium
        self.inner = dict(apps)  # each institution's own patronpay app, by code
        by_path = consortium.routing == "path"
        network = Network({i.code: Member(i, _services(apps[i.code]))
                           for i in consortium.institutions})
        self.apps = {i.code: InstitutionApp(i, apps[i.code], i.prefix if by_path else "",
                                            network_app(network, i.code)
                                            if network.sisters(i.code) else None)
                     for i in consortium.institutions}
        self.by_host = {i.host: i for i in consortium.institutions if i.host}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if scope["type"] not in ("http", "websocket"):
            return
        if self.consortium.routing == "host":
            await self._by_host(scope, receive, send)
        else:
            await self._by_path(scope, receive, send)

    async def _by_path(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope["path"]
        code, _, rest = path.lstrip("/").partition("/")
        institution = self.consortium.institution(code)
        if institution is not None:
            if path == institution.prefix:  # relative links need the folder's slash
                query = scope.get("query_string", b"").decode("latin-1")
                target = institution.prefix + "/" + (f"?{query}" if query else "")
                await RedirectResponse(target, status_code=308)(scope, receive, send)
                return
            await self.apps[institution.code](scope, receive, send)
            return
        await self._root(scope, receive, send)

    async def _by_host(self, scope: Scope, receive: Receive, send: Send) -> None:
        host = Request(scope).headers.get("host", "").lower()
        name = host.rsplit(":", 1)[0] if not host.endswith("]") else host
        institution = self.by_host.get(name)
        if institution is None and scope["path"] in ("/healthz", "/readyz"):
            # A load balancer's check, by address: the whole deployment answers.
            await self._health(scope["path"])(scope, receive, send)
            return
        if institution is None:
            await PlainTextResponse("No institution is served at this address.",
                                    status_code=404)(scope, receive, send)
            return
        await self.apps[institution.code](scope, receive, send)

    async def _root(self, scope: Scope, receive: Receive, send: Send) -> None:
        """A request that names no institution."""
        path: str = scope["path"]
        if path.startswith(POSTBACK) and scope["type"] == "http":
            institution = self._by_token(path[len(POSTBACK):])
            if institution is not None:
                # Into that institution's own app, as if CashNet had used its own URL.
                await self.inner[institution.code](scope, receive, send)
                return
        if path in ("/healthz", "/readyz"):
            await self._health(path)(scope, receive, send)
            return
        status = 200 if path in ("/", "/index.html") else 404
        await institutions_page(self.consortium, status)(scope, receive, send)

    def _by_token(self, token: str) -> Institution | None:
        """The institution whose notification URL ends in `token` (each token is its own,
        checked at start-up)."""
        found = None
        for institution in self.consortium.institutions:
            s = institution.settings
            for known in (s.cashnet_postback_token, s.cashnet_postback_token_previous):
                if known and hmac.compare_digest(known.encode(), token.encode()):
                    found = institution
        return found

    def _health(self, path: str) -> JSONResponse:
        if path == "/healthz":
            return JSONResponse({"status": "ok"})
        down = [code for code, app in self.inner.items()
                if not _services(app).db.writable()]
        if down:
            return JSONResponse({"status": "unavailable", "ledger": "not writable",
                                 "institutions": down}, status_code=503)
        return JSONResponse({"status": "ready", "ledger": "writable"})

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        """Every institution's lifespan, entered in order and left in reverse; a failure to
        start stops them all."""
        message = await receive()
        assert message["type"] == "lifespan.startup"
        async with contextlib.AsyncExitStack() as stack:
            try:
                for app in self.inner.values():
                    await stack.enter_async_context(app.router.lifespan_context(app))
            except Exception as exc:  # reported to the server, which stops
                await send({"type": "lifespan.startup.failed", "message": repr(exc)})
                return
            await send({"type": "lifespan.startup.complete"})
            message = await receive()
            assert message["type"] == "lifespan.shutdown"
        await send({"type": "lifespan.shutdown.complete"})


def _services(app: ASGIApp) -> Services:
    return app.state.services  # type: ignore[attr-defined]


def create_consortium_app(consortium: Consortium,
                          services: Mapping[str, Services] | None = None,
                          run_worker: bool = True) -> ConsortiumApp:
    """One patronpay app per institution, behind one router, each on a ledger that is its own
    (proxy/consortium/ledger_owner.py). Pass `services` (by code) to share or inspect them
    (tests)."""
    services = services or {}
    apps = {i.code: create_app(i.settings, services.get(i.code), run_worker=run_worker)
            for i in consortium.institutions}
    try:
        for code, app in apps.items():
            claim_ledger(_services(app).db, code)
    except ConfigError:
        for app in apps.values():
            _services(app).db.close()
        raise
    return ConsortiumApp(consortium, apps)


def app_to_serve() -> tuple[Settings, ASGIApp]:
    """What `patronpay serve` runs: the consortium when the configuration has institutions
    (the HTTP server's settings are the whole deployment's, the same in every institution),
    else the one institution's app, as always."""
    consortium = load_consortium()
    if consortium is None:
        settings = load_settings()
        return settings, create_app(settings)
    return consortium.institutions[0].settings, create_consortium_app(consortium)
