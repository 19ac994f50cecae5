"""The proxy as a Starlette app: routes, guards, the static site, and the posting worker that
runs beside it for the app's lifetime."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Mount, Route

from proxy import kiosk_fleet
from proxy.config import Settings
from proxy.runtime import Services, build_services
from proxy.signin import registry as signin_registry
from proxy.staffweb.routes import routes as staff_routes
from proxy.web import api, auth, cashnet, kiosk, kiosk_receipt_email, metrics
from proxy.web.errors import EXCEPTION_HANDLERS
from proxy.web.responses import JSONResponse
from proxy.web.security import RequestGuards, content_security_policy
from proxy.web.static import SiteFiles


async def healthz(request: Request) -> Response:
    return JSONResponse({"status": "ok"})


async def readyz(request: Request) -> Response:
    services: Services = request.app.state.services
    if not services.db.writable():
        return JSONResponse({"status": "unavailable", "ledger": "not writable"},
                            status_code=503)
    return JSONResponse({"status": "ready", "ledger": "writable"})


def listen_for_work(services: Services, run_worker: bool) -> asyncio.Task | None:
    """On PostgreSQL, tell the other instances when this one records due work, and (when it
    runs a worker) wake its worker when another does (proxy/work_signal.py)."""
    if services.db.dialect != "postgresql":
        return None
    from proxy.work_signal import WorkSignal

    signal = WorkSignal(services.db)
    services.worker.announce = signal.announce_soon
    if not run_worker:
        return None
    return asyncio.create_task(signal.listen(services.worker.woken_elsewhere))


def request_guards(settings: Settings) -> Middleware:
    """The access log, security headers, body limit, origin check and kiosk signatures, in
    that order, as one layer (proxy/web/security.py): around every app that answers a
    patron's browser, the consortium's network routes included."""
    return Middleware(RequestGuards, csp=content_security_policy(settings.cashnet_checkout_url),
                      hsts=settings.is_https(), max_bytes=settings.max_body_bytes,
                      public_origin=settings.public_origin(), kiosk_check=kiosk.check_signature)


def create_app(settings: Settings, services: Services | None = None,
               run_worker: bool = True) -> Starlette:
    """The proxy app. Pass `services` to share or inspect them (tests); `run_worker=False`
    leaves posting to another process or to the test."""
    services = services or build_services(settings)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        task = asyncio.create_task(services.worker.run()) if run_worker else None
        mail = services.mail
        mail_task = asyncio.create_task(mail.run()) if run_worker and mail else None
        kiosks = asyncio.create_task(kiosk_fleet.watch(
            services.db, settings.kiosk_keys, lambda: services.ledger.clock())) \
            if run_worker and settings.kiosk_keys else None
        listening = listen_for_work(services, run_worker)
        try:
            yield
        finally:
            for watcher in (kiosks, listening):
                if watcher is not None:
                    watcher.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await watcher
            services.worker.stop()
            if mail is not None:
                mail.stop()
            if task is not None:
                await task
            if mail_task is not None:
                await mail_task
            await services.aclose()

    routes = [
        Route("/healthz", healthz, methods=["GET"]),
        Route("/readyz", readyz, methods=["GET"]),
        *api.routes,
        *signin_registry.routes(),
        *auth.routes,
        *cashnet.routes,
        *kiosk.routes,
        *kiosk_receipt_email.routes,
        *metrics.routes,
        *staff_routes,  # /staff/ (docs/operations.md#staff-pages)
        Mount("/", SiteFiles(directory=settings.site_dir, html=True), name="site"),
    ]
    app = Starlette(routes=routes, middleware=[request_guards(settings)],
                    exception_handlers=EXCEPTION_HANDLERS, lifespan=lifespan)
    app.state.services = services
    return app
