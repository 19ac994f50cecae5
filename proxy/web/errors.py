"""Errors as JSON: `{"error": {"code", "message"}}` with a 4xx status, never a stack trace."""

from __future__ import annotations

import logging

from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response

from proxy.database.errors import UnavailableError
from proxy.web.responses import JSONResponse

log = logging.getLogger("patronpay.web")

_DEFAULT_CODES = {400: "bad_request", 401: "not_signed_in", 403: "forbidden", 404: "not_found",
                  405: "method_not_allowed", 409: "conflict", 413: "body_too_large",
                  415: "unsupported_media_type", 422: "invalid", 429: "too_many_requests",
                  502: "alma_error", 503: "unavailable"}


class ApiError(Exception):
    """Raised anywhere in a request to answer with a JSON error."""

    def __init__(self, status: int, code: str, message: str, field: str = "",
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.field = field
        self.headers = headers or {}


def error_response(status: int, code: str, message: str, field: str = "",
                   headers: dict[str, str] | None = None,
                   extra: dict | None = None) -> JSONResponse:
    error: dict = {"code": code, "message": message}
    if field:
        error["field"] = field
    return JSONResponse({"error": error} | (extra or {}), status_code=status, headers=headers,
                        media_type="application/json")


async def api_error_handler(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    return error_response(exc.status, exc.code, exc.message, exc.field, exc.headers)


async def http_error_handler(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    code = _DEFAULT_CODES.get(exc.status_code, "error")
    message = exc.detail if isinstance(exc.detail, str) else code.replace("_", " ")
    return error_response(exc.status_code, code, message, headers=exc.headers)


async def client_gone_handler(request: Request, exc: Exception) -> Response:
    """The client went away in the middle of its request body: its problem, not ours. Nobody
    reads the answer; the line in the log is INFO, not an error with a traceback."""
    log.info("client disconnected mid-request", extra={
        "event": "bad_body", "reason": "client_disconnected", "method": request.method})
    return error_response(400, "client_disconnected", "The request body did not arrive.")


async def database_unavailable_handler(request: Request, exc: Exception) -> Response:
    """PostgreSQL restarting or failing over: a clean 503 to try again, never a 2xx, so CashNet
    sends its notification again (docs/deploy.md#two-nodes)."""
    log.warning("database unavailable", extra={"event": "database_unavailable",
                                               "method": request.method})
    return error_response(503, "unavailable", "The service is busy for a moment. Please try "
                          "again.", headers={"Retry-After": "5"})


async def server_error_handler(request: Request, exc: Exception) -> Response:
    log.error("unhandled error", exc_info=exc, extra={"event": "server_error",
                                                      "method": request.method})
    return error_response(500, "server_error",
                          "Something went wrong on our side. Please try again.")


EXCEPTION_HANDLERS = {
    ApiError: api_error_handler,
    ClientDisconnect: client_gone_handler,
    HTTPException: http_error_handler,
    UnavailableError: database_unavailable_handler,
    Exception: server_error_handler,
}
