"""Reading what landed in the sandbox Alma, and an Alma that gives one canned answer (for the
answers no sandbox knob produces)."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from patronpay.serving import ServerThread


def payments_carrying(alma: Any, tx: str, patron: str = "mkowalski") -> dict[str, list[Decimal]]:
    """{fee id: amounts of the PAYMENT transactions carrying CashNet's transaction number
    `tx`} in the sandbox Alma (`alma` is its in-process state), for the patron's fees that
    have any. The proxy only ever pays, so the number on any other kind of transaction fails
    the test."""
    found: dict[str, list[Decimal]] = {}
    for fee in alma.user_state(patron)["fees"]:
        carrying = [t for t in fee.get("transactions", [])
                    if t.get("external_transaction_id") == tx]
        assert all(t.get("type") == "PAYMENT" for t in carrying), (fee["id"], carrying)
        if carrying:
            found[fee["id"]] = [t["amount"] for t in carrying]
    return found


def canned_alma(status: int, body: bytes, headers: dict | None = None) -> ServerThread:
    """An Alma that answers every API call with `status` and `body` (JSON unless `headers` say
    otherwise); use it as a context manager and point the client at its `/almaws/v1`."""
    async def answer(request: Request) -> Response:
        return Response(body, status, headers=headers or {"content-type": "application/json"})

    app = Starlette(routes=[Route("/almaws/v1/{path:path}", answer, methods=["GET", "POST"])])
    return ServerThread(app)


def error_body(code: str, shape: str = "A") -> bytes:
    """Alma's error answer for `code` in one of the shapes seen (docs/alma.md#error-bodies):
    A, the error in a list; B, the same under `web_service_result`; C, a single error object."""
    error = {"errorCode": code, "errorMessage": "m", "trackingId": "E01-1-ABCDE-AWAE1"}
    if shape == "C":
        body: dict[str, Any] = {"errorsExist": True, "errorList": {"error": error}}
    else:
        body = {"errorsExist": True, "errorList": {"error": [error]}}
    if shape == "B":
        body = {"web_service_result": body}
    return json.dumps(body).encode()
