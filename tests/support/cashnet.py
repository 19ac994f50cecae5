"""The sandbox CashNet's side of a test: the example hand-off, a stand-in for the proxy that
records what CashNet sends it, and the sandbox set up to notify that stand-in."""

from __future__ import annotations

import threading
from datetime import date
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from .waiting import wait_for

PAYMENT_ID = "9c4e0d2a7b1f48e3a6d5c8b7e2f1a0d9"
TOKEN = "Zp4vQ9wX2mK7nR1sT8uY3bC6dF0gH5jL"
BUSINESS_DAY = date(2025, 3, 14)


def example(signout_base: str = "http://127.0.0.1:9", **changes: str | None) -> dict[str, str]:
    """CashNet's example hand-off of two fines for PAYMENT_ID, its sign-out going back to
    `signout_base`, with changes (a value of None removes the field)."""
    fields = {
        "itemcnt": "2",
        "itemcode1": "LIB-OVERDUE", "amount1": "12.50", "desc1": "Overdue fine", "qty1": "1",
        "itemcode2": "LIB-LOST", "amount2": "1080.00", "desc2": "Lost item replacement",
        "qty2": "1",
        "custcode": "0012345678", "fname": "Ana", "lname": "Rivera",
        "email": "ana.rivera@example.edu",
        "signouturl": f"{signout_base}/cashnet/return?p={PAYMENT_ID}",
        "ref1type1": "PAYMENT_ID", "ref1val1": PAYMENT_ID,
    }
    fields.update(changes)
    return {name: value for name, value in fields.items() if value is not None}


class Receiver:
    """Stands in for the proxy: records every request (path, query, headers, raw body, peer
    address) and answers with the queued statuses, then 200."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.url = ""
        self.hits: list[dict] = []
        self.statuses: list[int] = []
        self.reply = "OK"
        self.app = Starlette(routes=[Route("/{path:path}", self._handle, methods=["GET", "POST"])])

    async def _handle(self, request: Request) -> PlainTextResponse:
        body = await request.body()
        with self._lock:
            self.hits.append({
                "method": request.method, "path": request.url.path,
                "query": request.url.query, "headers": dict(request.headers), "body": body,
                "client": request.client.host,
            })
            status = self.statuses.pop(0) if self.statuses else 200
            return PlainTextResponse(self.reply, status)

    def clear(self) -> None:
        with self._lock:
            self.hits, self.statuses, self.reply = [], [], "OK"

    def snapshot(self) -> list[dict]:
        with self._lock:
            return list(self.hits)

    def bodies(self) -> list[bytes]:
        return [hit["body"] for hit in self.snapshot()]

    def wait_for(self, count: int, timeout: float = 10.0) -> list[dict]:
        """The requests so far, once there are at least `count` of them."""
        return wait_for(lambda: hits if len(hits := self.snapshot()) >= count else None,
                        f"{count} requests", timeout=timeout)


def notifying(server: Any, receiver: Receiver) -> Any:
    """The sandbox CashNet behind `server` back to its start, on a pinned business day, with
    LIBFINESTEST notifying `receiver`; its `.url` is where it listens."""
    sandbox = server.cashnet
    sandbox.reset()
    receiver.clear()
    sandbox.today = lambda: BUSINESS_DAY
    sandbox.configure_store(
        "LIBFINESTEST",
        notify_success_url=f"{receiver.url}/cashnet/postback/{TOKEN}",
        notify_failure_url=f"{receiver.url}/cashnet/postback/{TOKEN}",
    )
    sandbox.url = server.url
    return sandbox
