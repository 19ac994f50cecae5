"""The Alma Users API client: the only module that speaks to Alma.

Every answer is parsed with Decimal. Every failure becomes one of the exceptions of
proxy/alma_errors.py, chosen so the caller knows what to do: tell the patron, retry later, or
(for a payment call whose outcome is unknown) read the fee before ever sending the payment again
(docs/alma.md#posting-exactly-once).
"""

from __future__ import annotations

import asyncio
import copy
import json
import logging
import random
import re
import time
from collections.abc import Callable
from decimal import Decimal
from typing import Any
from urllib.parse import quote

import httpx

from proxy import metrics
from proxy.alma_errors import (
    AlmaConfigError,
    AlmaError,
    AlmaFeeNotFound,
    AlmaInvalidCredentials,
    AlmaInvalidRequest,
    AlmaNotPayable,
    AlmaOutcomeUnknown,
    AlmaUnavailable,
    AlmaUserNotFound,
    error_for,
    is_throttle,
)
from proxy.alma_http import AlmaHttp
from proxy.alma_pace import Priority, RateLimiter
from proxy.alma_xml import XmlRefused, first_error, looks_like_xml
from proxy.money import format_amount

# The exceptions are part of this client's interface: callers import them from here.
__all__ = [
    "AlmaClient", "AlmaConfigError", "AlmaError", "AlmaFeeNotFound", "AlmaInvalidCredentials",
    "AlmaInvalidRequest", "AlmaNotPayable", "AlmaOutcomeUnknown", "AlmaUnavailable",
    "AlmaUserNotFound", "RateLimiter", "connection_limit",
]

log = logging.getLogger("patronpay.alma")

GET_RETRIES_ON_THROTTLE = 4
_USER_SEGMENT = re.compile(r"^/users/[^/]+")


def connection_limit(requests_per_second: int) -> int:
    """Connections to Alma: room for every call the rate limit lets through while Alma takes
    its time (seconds, at busy times); a fixed 10 capped us at 10 / latency calls a second.
    Not more than needed: httpx spends more CPU per request the bigger its pool."""
    return min(100, max(10, 2 * requests_per_second))


class AlmaClient:
    """Async client for the Users calls patronpay makes. Share one per process."""

    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        connect_timeout: float = 5.0,
        read_timeout: float = 20.0,
        requests_per_second: int = 20,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._calls = [0]  # shared with for_posting()'s view
        self._priority = Priority.PAGE
        self._limiter = RateLimiter(requests_per_second)
        self._http = AlmaHttp(
            self.base_url,
            {"Authorization": f"apikey {api_key}", "Accept": "application/json"},
            httpx.Timeout(connect=connect_timeout, read=read_timeout, write=10.0, pool=5.0),
            connection_limit(requests_per_second),
            transport,
        )

    @property
    def calls(self) -> int:
        """Alma calls made so far by this client and its posting view."""
        return self._calls[0]

    def for_posting(self) -> AlmaClient:
        """The same client (connections, rate limit, call count) for the posting worker: its
        calls go before page calls when calls queue (proxy/alma_pace.py)."""
        view = copy.copy(self)
        view._priority = Priority.POSTING
        return view

    async def aclose(self) -> None:
        await self._http.aclose()

    # --- the calls ---

    async def get_user(self, user_id: str, id_type: str = "all_unique",
                       view: str = "brief") -> dict:
        """USER: the patron record, by any unique identifier; the brief view unless asked
        for `full` (which adds the user's blocks)."""
        params = {"user_id_type": id_type, "view": view}
        return await self._get(f"/users/{_segment(user_id)}", params)

    async def authenticate(self, user_id: str, password: str) -> None:
        """AUTH: check an internal (guest) account's password. The password goes in a header,
        never in a URL or a log."""
        path = f"/users/{_segment(user_id)}"
        params = {"op": "auth", "user_id_type": "all_unique"}
        try:
            response = await self._send("POST", path, params, headers={"Exl-User-Pw": password})
        except httpx.HTTPError as exc:
            raise AlmaUnavailable(f"Alma could not be reached: {type(exc).__name__}") from None
        if response.status_code == 204:
            return
        error = _error_from(response)
        if isinstance(error, AlmaUserNotFound | AlmaInvalidCredentials):
            raise AlmaInvalidCredentials("invalid credentials", code=error.code,
                                         tracking_id=error.tracking_id, status=error.status)
        raise error

    async def list_fees(self, user_id: str, status: str = "ACTIVE",
                        id_type: str | None = None) -> dict:
        """LIST: the patron's fees in one status, as Alma sends them (amounts as Decimal).
        `user_id` is the primary ID unless `id_type` names another unique identifier."""
        params = {"status": status} | ({"user_id_type": id_type} if id_type else {})
        return await self._get(f"/users/{_segment(user_id)}/fees", params)

    async def get_fee(self, user_id: str, fee_id: str) -> dict:
        """FEE: one fee in any status, with its transactions."""
        return await self._get(f"/users/{_segment(user_id)}/fees/{_segment(fee_id)}", {})

    async def pay_fee(
        self,
        user_id: str,
        fee_id: str,
        amount: Decimal,
        *,
        method: str,
        external_transaction_id: str,
        comment: str = "",
    ) -> dict:
        """PAY: apply `amount` to one fee. Never retried here: an unknown outcome surfaces as
        AlmaOutcomeUnknown so the caller can look before paying again."""
        params = {
            "op": "pay",
            "amount": format_amount(amount),
            "method": method,
            "external_transaction_id": external_transaction_id,
        }
        if comment:
            params["comment"] = comment
        path = f"/users/{_segment(user_id)}/fees/{_segment(fee_id)}"
        try:
            response = await self._send("POST", path, params)
        except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
            raise AlmaUnavailable(f"payment not sent: {type(exc).__name__}") from None
        except httpx.HTTPError as exc:  # sent, and then anything: a timeout, a drop, a bad body
            raise AlmaOutcomeUnknown(
                f"payment may have been applied: {type(exc).__name__}", in_flight=True) from None
        if response.status_code >= 500 or _throttled(response):
            raise AlmaOutcomeUnknown(
                f"Alma answered {response.status_code}", in_flight=False,
                status=response.status_code)
        if response.status_code == 200:
            body = _json_or_none(response)
            if isinstance(body, dict) and not body.get("errorsExist") and "id" in body:
                return body
            raise AlmaOutcomeUnknown("unexpected answer to a payment", in_flight=False,
                                     status=200)
        error = _error_from(response)
        if error.code == "402119" or isinstance(error, AlmaUnavailable):
            raise AlmaOutcomeUnknown(str(error), in_flight=False, code=error.code,
                                     tracking_id=error.tracking_id, status=error.status)
        raise error

    # --- plumbing ---

    async def _get(self, path: str, params: dict[str, str]) -> dict:
        """A read, retried with backoff while Alma throttles us and once on a general error."""
        general_error_retried = False
        for attempt in range(GET_RETRIES_ON_THROTTLE + 1):
            try:
                response = await self._send("GET", path, params)
            except httpx.HTTPError as exc:
                raise AlmaUnavailable(f"Alma could not be reached: {type(exc).__name__}") from None
            if response.status_code == 200:
                body = _json_or_none(response)
                if isinstance(body, dict) and not body.get("errorsExist"):
                    return body
                raise AlmaUnavailable("Alma sent an unexpected answer", status=200)
            error = _error_from(response)
            retryable = is_throttle(error) and not error.daily_limit
            if retryable and attempt < GET_RETRIES_ON_THROTTLE:
                await asyncio.sleep(_retry_after(response, attempt))
                continue
            if error.code == "402119" and not general_error_retried:
                general_error_retried = True
                continue
            raise error
        raise AlmaUnavailable("Alma kept throttling")  # pragma: no cover - loop always raises

    def share_budget(self, reserve: Callable[[], float | None]) -> None:
        """Pace this client's calls with other instances' too (proxy/alma_budget.py). A call
        that finds no slot in the shared schedule within the connect timeout is not sent: it
        fails as AlmaUnavailable, as if Alma could not be reached."""
        self._limiter.shared = reserve
        self._limiter.shared_patience = self._http.timeout.connect or 5.0

    async def _send(
        self, method: str, path: str, params: dict[str, str], headers: dict | None = None
    ) -> httpx.Response:
        await self._limiter.acquire(self._priority)
        self._calls[0] += 1
        started = time.monotonic()
        response = None
        try:
            response = await self._http.send(method, path, params, headers)
            if _throttled(response):
                self._limiter.throttled()
            else:
                self._limiter.answered()
            return response
        finally:
            log.info(
                "alma call",
                extra={
                    "event": "alma_call",
                    "method": method,
                    "path": _loggable(path),
                    "op": params.get("op", ""),
                    "status": response.status_code if response is not None else None,
                    "ms": round((time.monotonic() - started) * 1000),
                },
            )
            metrics.alma_call(method, path, params.get("op", ""),
                              response.status_code if response is not None else None,
                              time.monotonic() - started)


def _loggable(path: str) -> str:
    """The path without its user id: at a kiosk that segment is the scanned card number."""
    return _USER_SEGMENT.sub("/users/{user}", path)


def _segment(value: str) -> str:
    """One path segment: primary ids may hold `@`, `.` and `/`."""
    return quote(value, safe="")


def _json_or_none(response: httpx.Response) -> Any:
    # The bytes, not `.text`: JSON is UTF-8, and httpx's charset look-up for `.text` costs
    # twice the parsing of a fee list (an invalid byte is a ValueError here too).
    try:
        return json.loads(response.content, parse_float=Decimal)
    except ValueError:
        return None


def _retry_after(response: httpx.Response, attempt: int) -> float:
    header = response.headers.get("Retry-After", "")
    if header.isdigit():
        return min(float(header), 10.0)
    return 0.5 * 2**attempt * random.uniform(0.8, 1.2)


def _throttled(response: httpx.Response) -> bool:
    """Alma is throttling us: HTTP 429, or its `PER_SECOND_THRESHOLD` code under another
    status (it has been seen with 400)."""
    if response.status_code == 429:
        return True
    if response.status_code != 400 or "PER_SECOND_THRESHOLD" not in response.text:
        return False
    return _error_fields(response)[0] == "PER_SECOND_THRESHOLD"


def _error_from(response: httpx.Response) -> AlmaError:
    """Turn a non-success answer into the exception the caller can act on (docs/alma.md#errors)."""
    status = response.status_code
    code, message, tracking = _error_fields(response)
    plain = "json" not in response.headers.get("content-type", "")
    if not code and plain and "Invalid API Key" in response.text:
        return AlmaConfigError("Alma refused the API key", code="Invalid API Key", status=status)
    if tracking:
        log.warning("alma error", extra={"event": "alma_error", "code": code,
                                         "tracking_id": tracking, "status": status})
    return error_for(status, code, message, tracking)


def _error_fields(response: httpx.Response) -> tuple[str, str, str]:
    """(code, message, trackingId) from a JSON or an XML error body; empty when neither."""
    if looks_like_xml(response.text):
        try:
            return first_error(response.text)
        except XmlRefused as exc:
            log.warning("alma error body refused", extra={"event": "alma_xml_refused",
                                                          "reason": str(exc)})
            return "", "", ""
    return _first_error(_json_or_none(response))


def _first_error(body: Any) -> tuple[str, str, str]:
    """(code, message, trackingId) from any of Alma's error body shapes."""
    if not isinstance(body, dict):
        return "", "", ""
    root = body.get("web_service_result", body)
    if not isinstance(root, dict):
        return "", "", ""
    errors = (root.get("errorList") or {}).get("error") or []
    if isinstance(errors, dict):
        errors = [errors]
    if not errors or not isinstance(errors[0], dict):
        return "", "", ""
    first = errors[0]
    return (str(first.get("errorCode", "")), str(first.get("errorMessage", "")),
            str(first.get("trackingId", "") or ""))
