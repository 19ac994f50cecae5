"""The sign-in methods, in the order the settings' error messages list them. This is the one
place that knows them all: the settings check names and requirements against it, the app
serves its routes, and `/api/session` offers what it says."""

from __future__ import annotations

import functools
from collections.abc import Iterator
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from proxy.config import Settings
from proxy.signin import alma_guest, cas, primo, sso
from proxy.signin.common import require_offered
from proxy.signin.method import SignInMethod

METHODS: tuple[SignInMethod, ...] = (
    sso.METHOD,
    cas.METHOD,
    primo.METHOD,
    alma_guest.METHOD,
)

_BY_NAME = {method.name: method for method in METHODS}


def names() -> tuple[str, ...]:
    return tuple(_BY_NAME)


def required_settings(offered: tuple[str, ...]) -> Iterator[tuple[str, str]]:
    """(method, Settings field) for each setting the offered methods cannot do without, in
    registry order."""
    for method in METHODS:
        if method.name in offered:
            for name in method.requires:
                yield method.name, name


def offered(settings: Settings) -> list[SignInMethod]:
    """The configured methods in configured order, each once."""
    return [_BY_NAME[name] for name in dict.fromkeys(settings.auth_methods)]


def page_choices(settings: Settings) -> dict[str, Any]:
    """What the sign-in page needs, for `/api/session` when nobody is signed in: `signin` in
    configured order, and the older `methods` and `links` fields as they were."""
    offers = [(method.name, method.offer(settings)) for method in offered(settings)]
    return {
        "methods": list(settings.auth_methods),
        "links": {name: offer.entry for name, offer in offers if offer.entry is not None},
        "signin": [offer.to_json(name) for name, offer in offers],
    }


def routes() -> list[Route]:
    """Every method's routes, each answering 404 `method_disabled` while its method is not
    offered."""
    return [_only_when_offered(method.name, route)
            for method in METHODS for route in method.routes]


def _only_when_offered(method: str, route: Route) -> Route:
    endpoint = route.endpoint

    @functools.wraps(endpoint)
    async def guarded(request: Request) -> Response:
        require_offered(request, method)
        return await endpoint(request)

    return Route(route.path, guarded, methods=route.methods, name=route.name)
