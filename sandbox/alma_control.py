"""Control endpoints of the Alma emulator (docs/sandbox.md#request-log-and-control-endpoints), the
HTTP twin of `AlmaSandbox`.

Bodies are JSON; amounts travel as strings (like the seed) and are parsed with Decimal.
These routes are neither throttled nor logged (the gateway lets `/_emulator/` through).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from sandbox.alma_sandbox import AlmaSandbox, decimals_to_strings
from sandbox.alma_state import SeedError


class BadBody(ValueError):
    """The control request's body is not what the endpoint takes."""


async def _body(request: Request) -> dict[str, Any]:
    raw = await request.body()
    try:
        body = json.loads(raw or b"{}", parse_float=Decimal)
    except ValueError as exc:
        raise BadBody(f"body is not JSON: {exc}") from exc
    if not isinstance(body, dict):
        raise BadBody("body must be a JSON object")
    return body


def _parse_clock(value: Any) -> datetime | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise BadBody("now must be an ISO timestamp or null")
    try:
        moment = datetime.fromisoformat(value)
    except ValueError as exc:
        raise BadBody(f"now is not an ISO timestamp: {value!r}") from exc
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def control_routes(sandbox: AlmaSandbox) -> list[Route]:
    """Routes under `/_emulator/` bound to one sandbox."""

    def guarded(handler: Any) -> Any:
        """Turn bad input into 400 and unknown users/fees into 404, as text."""

        async def endpoint(request: Request) -> Response:
            try:
                return await handler(request)
            except (BadBody, SeedError, ValueError, TypeError) as exc:
                return PlainTextResponse(str(exc), 400)
            except KeyError as exc:
                return PlainTextResponse(f"not found: {exc.args[0]}", 404)

        return endpoint

    async def get_requests(request: Request) -> Response:
        return JSONResponse(sandbox.requests())

    async def delete_requests(request: Request) -> Response:
        sandbox.clear_requests()
        return Response(status_code=204)

    async def put_faults(request: Request) -> Response:
        sandbox.set_faults(await _body(request))
        return Response(status_code=204)

    async def reset(request: Request) -> Response:
        sandbox.reset()
        return Response(status_code=204)

    async def user_state(request: Request) -> Response:
        state = sandbox.user_state(request.path_params["primary_id"])
        return JSONResponse(decimals_to_strings(state))

    async def primo_token(request: Request) -> Response:
        body = await _body(request)
        user_name = body.pop("userName", None)
        if not isinstance(user_name, str):
            raise BadBody("userName is required")
        claims = body.pop("claims", None) or {}
        token = sandbox.primo_token(user_name, **body, **claims)
        return JSONResponse({"token": token})

    async def rotate_key(request: Request) -> Response:
        body = await _body(request)
        kid = sandbox.rotate_key(bool(body.get("same_kid", False)),
                                 sandbox=bool(body.get("sandbox", False)))
        return JSONResponse({"kid": kid})

    async def put_clock(request: Request) -> Response:
        sandbox.set_clock(_parse_clock((await _body(request)).get("now")))
        return Response(status_code=204)

    async def add_user(request: Request) -> Response:
        return JSONResponse({"primary_id": sandbox.add_user(await _body(request))}, 201)

    async def add_fee(request: Request) -> Response:
        fee_id = sandbox.add_fee(request.path_params["primary_id"], await _body(request))
        return JSONResponse({"id": fee_id}, 201)

    async def patch_fee(request: Request) -> Response:
        fee = sandbox.set_fee(request.path_params["primary_id"], request.path_params["fee_id"],
                              **await _body(request))
        return JSONResponse(decimals_to_strings(fee))

    prefix = "/_emulator"
    return [
        Route(f"{prefix}/requests", guarded(get_requests), methods=["GET"]),
        Route(f"{prefix}/requests", guarded(delete_requests), methods=["DELETE"]),
        Route(f"{prefix}/faults", guarded(put_faults), methods=["PUT"]),
        Route(f"{prefix}/reset", guarded(reset), methods=["POST"]),
        Route(f"{prefix}/state/users/{{primary_id}}", guarded(user_state), methods=["GET"]),
        Route(f"{prefix}/primo-token", guarded(primo_token), methods=["POST"]),
        Route(f"{prefix}/rotate-key", guarded(rotate_key), methods=["POST"]),
        Route(f"{prefix}/clock", guarded(put_clock), methods=["PUT"]),
        Route(f"{prefix}/users", guarded(add_user), methods=["POST"]),
        Route(f"{prefix}/users/{{primary_id}}/fees", guarded(add_fee), methods=["POST"]),
        Route(f"{prefix}/users/{{primary_id}}/fees/{{fee_id}}", guarded(patch_fee),
              methods=["PATCH"]),
    ]
