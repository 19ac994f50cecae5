"""Sandbox Alma: a Starlette stand-in for the Alma Users API and Primo's key set.

Serves the calls of docs/alma.md#calls (`/almaws/v1/users/...`, `/auth/{INST}/jwks.json`) with the
project's emulator decisions (docs/sandbox.md#sandbox-alma), plus control endpoints under
`/_emulator/` for tests and the demo. `create_app()` builds it from `sandbox/seed/alma.json`;
`app.state.alma` is the `AlmaSandbox` that tests drive in-process. Works at the root of a server or
mounted under a prefix (`link` URLs carry the prefix).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from importlib import resources
from typing import Any

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from sandbox.alma_analytics import AnalyticsReports
from sandbox.alma_api import AlmaError
from sandbox.alma_control import control_routes
from sandbox.alma_drop import ConnectionDropped
from sandbox.alma_gateway import CONTEXT_KEY, JSON_TYPE, AlmaGateway, error_response
from sandbox.alma_json import dumps
from sandbox.alma_sandbox import AlmaSandbox

__all__ = ["AlmaSandbox", "ConnectionDropped", "create_app", "load_seed"]

USERS = "/almaws/v1/users/{user_id}"


def load_seed() -> dict[str, Any]:
    """The packaged demo institution (`sandbox/seed/alma.json`)."""
    text = resources.files("sandbox").joinpath("seed/alma.json").read_text(encoding="utf-8")
    return json.loads(text)


def create_app(seed: dict | None = None) -> Starlette:
    sandbox = AlmaSandbox(seed if seed is not None else load_seed())
    routes = AlmaRoutes(sandbox)
    analytics = AnalyticsReports(sandbox)
    app = Starlette(
        routes=[
            Route(USERS, routes.get_user, methods=["GET"]),
            Route(USERS, routes.authenticate, methods=["POST"]),
            Route(USERS + "/fees", routes.list_fees, methods=["GET"]),
            Route(USERS + "/fees/all", routes.pay_all, methods=["POST"]),
            Route(USERS + "/fees/{fee_id}", routes.get_fee, methods=["GET"]),
            Route(USERS + "/fees/{fee_id}", routes.pay_fee, methods=["POST"]),
            Route("/auth/{inst}/jwks.json", routes.jwks, methods=["GET"]),
            Route("/almaws/v1/analytics/reports", analytics.reports, methods=["GET"]),
            *control_routes(sandbox),
        ],
        middleware=[Middleware(AlmaGateway, sandbox=sandbox)],
    )
    app.state.alma = sandbox
    app.state.alma_analytics = analytics
    return app


def base_url(request: Request) -> str:
    """This emulator's own base URL, mount prefix included, for `link` fields."""
    root = request.scope.get("root_path", "").rstrip("/")
    return f"{request.url.scheme}://{request.url.netloc}{root}"


def presented_key(request: Request) -> str | None:
    """The API key from `Authorization: apikey K`, else from the `apikey` query parameter."""
    scheme, _, key = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "apikey" and key.strip():
        return key.strip()
    return request.query_params.get("apikey")


def wants_json(request: Request) -> bool:
    accept = request.headers.get("accept", "").lower()
    return "application/json" in accept or request.query_params.get("format") == "json"


class AlmaRoutes:
    """The Alma calls. Checks run in the docs/sandbox.md#access-and-errors order: key, read-only,
    JSON, then the call."""

    def __init__(self, sandbox: AlmaSandbox) -> None:
        self.sandbox = sandbox

    def _answer(
        self,
        request: Request,
        action: Callable[[], dict[str, Any] | None],
        *,
        write: bool,
        commits: bool = False,
    ) -> Response:
        """Run one call: `write` ones are refused to read-only keys, `commits` ones change state.
        Keys added by the `api_keys` fault knob answer as their kind says."""
        presented = presented_key(request)
        api_key = self.sandbox.api_key(presented)
        kind = self.sandbox.settings.api_keys.get(presented or "")
        refusal_status = self.sandbox.settings.key_refusal_status
        if api_key is None and kind is None:
            return PlainTextResponse("Invalid API Key", refusal_status)
        try:
            if kind == "no_users" or (write and api_key is not None and api_key.read_only):
                raise AlmaError("UNAUTHORIZED")
            if not wants_json(request):
                return PlainTextResponse("emulator serves JSON only", 400)
            if kind == "other_institution":  # its institution has none of these patrons
                raise AlmaError("401861", user_id=request.path_params["user_id"])
            document = action()
        except AlmaError as error:
            status = refusal_status if error.code == "UNAUTHORIZED" else 400
            return error_response(self.sandbox, error.code, error.message, status=status)
        if commits:
            request.scope[CONTEXT_KEY].committed = True
        if document is None:
            return Response(status_code=204)
        return Response(dumps(document, self.sandbox.settings.number_style),
                        media_type=JSON_TYPE)

    async def get_user(self, request: Request) -> Response:
        params = request.query_params
        expand = {part.strip().lower() for part in params.get("expand", "none").split(",")}
        return self._answer(request, lambda: self.sandbox.user_document(
            request.path_params["user_id"], params.get("user_id_type"),
            brief=params.get("view") == "brief", expand=expand,
        ), write=False)

    async def authenticate(self, request: Request) -> Response:
        params = request.query_params
        password = request.headers.get("exl-user-pw") or params.get("password")

        def check() -> None:
            self.sandbox.authenticate(request.path_params["user_id"],
                                      params.get("user_id_type"), params.get("op"), password)

        return self._answer(request, check, write=True)

    async def list_fees(self, request: Request) -> Response:
        params = request.query_params
        return self._answer(request, lambda: self.sandbox.fees_document(
            request.path_params["user_id"], params.get("user_id_type"), params.get("status"),
            base_url(request),
        ), write=False)

    async def get_fee(self, request: Request) -> Response:
        return self._answer(request, lambda: self.sandbox.fee_document(
            request.path_params["user_id"], request.query_params.get("user_id_type"),
            request.path_params["fee_id"], base_url(request),
        ), write=False)

    async def pay_fee(self, request: Request) -> Response:
        return self._answer(request, lambda: self.sandbox.pay(
            request.path_params["user_id"], request.path_params["fee_id"],
            dict(request.query_params), base_url(request),
        ), write=True, commits=True)

    async def pay_all(self, request: Request) -> Response:
        return self._answer(request, lambda: self.sandbox.pay_all(
            request.path_params["user_id"], dict(request.query_params), base_url(request),
        ), write=True, commits=True)

    async def jwks(self, request: Request) -> Response:
        """Public, no API key (docs/alma.md#calls); `?env=sandbox` serves the sandbox environment's
        key."""
        if request.path_params["inst"] != self.sandbox.institution_code:
            return PlainTextResponse("Not Found", 404)
        sandbox_env = request.query_params.get("env") == "sandbox"
        return Response(json.dumps(self.sandbox.jwks(sandbox=sandbox_env)),
                        media_type="application/json")
