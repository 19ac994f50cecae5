"""`GET /metrics` for Prometheus, answered only to `PATRONPAY_METRICS_ALLOWED`
(docs/operations.md#metrics). Anyone else gets the same 404 as an unknown path."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from proxy import kiosk_fleet, metrics
from proxy.ledger.figures import read_figures
from proxy.web.common import services
from proxy.web.errors import ApiError
from proxy.web.security import address_allowed, client_address


async def scrape(request: Request) -> Response:
    svc = services(request)
    settings = svc.settings
    # Behind the web server, the caller is the address it forwards, not the web server.
    caller = client_address(request.scope, settings.trusted_proxies)
    if not address_allowed(caller, settings.metrics_allowed):
        raise ApiError(404, "not_found", "Not found.")
    ledger = metrics.LedgerCollector(
        lambda: read_figures(svc.db, svc.ledger.clock(),
                             session_idle_seconds=settings.session_idle_minutes * 60,
                             session_max_seconds=settings.session_max_minutes * 60),
        kiosks=settings.kiosk_keys, clock=svc.ledger.clock,
        fleet=lambda: kiosk_fleet.fleet(svc.db, settings.kiosk_keys, svc.ledger.clock()))
    body, content_type = metrics.exposition(ledger)  # a few aggregate reads: milliseconds
    return Response(body, media_type=content_type)


routes = [Route("/metrics", scrape, methods=["GET"])]
