"""The sandbox CashNet hosted checkout (docs/sandbox.md#sandbox-cashnet), as a Starlette app.

The patron's browser posts the hand-off here, pays/declines/cancels on a dummy card page, and
goes back to the merchant through the receipt's "Sign out" form; store notifications go server
to server. Tests and the demo steer it through `/_emulator/...` or `app.state.cashnet`.

CashNet matches paths and store names without regard to case, while Starlette routing is
case-sensitive, so one catch-all route dispatches everything. All links carry the mount prefix
(`root_path`), so the app also works mounted under `/cashnet` in a combined sandbox.

Routes (any letter case):
  GET|POST /{store}, /404Handler/pageredirpost.aspx?virtual=   hand-off -> checkout or error page
  POST /_checkout/{cid}/action       the page's Pay / Decline / Cancel buttons
  GET  /_checkout/{cid}/receipt      receipt with the "Sign out" form
  GET  /_emulator/checkouts[?ref=], /_emulator/checkouts/{cid}, /_emulator/notifications
       [?cid=&store=], /_emulator/signouts[?cid=], /_emulator/stores[/{store}]
  POST /_emulator/checkouts/{cid}/complete | release, /_emulator/reset[?keep_stores=1]
  PUT  /_emulator/stores/{store} (merge settings), /_emulator/stores/{store}/faults
  GET  /_emulator/static/cashnet.css, /_emulator/static/cashnet-signout.js
"""

from __future__ import annotations

import ipaddress
import json
from decimal import Decimal
from http import HTTPStatus
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit, urlunsplit

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response
from starlette.routing import Route
from starlette.templating import Jinja2Templates

from sandbox.cashnet_fields import DEFAULT_DECLINE, PAGE_DECLINE_CODES, decline_messages
from sandbox.cashnet_handoff import ERROR_MESSAGES
from sandbox.cashnet_sandbox import CashNetSandbox, CheckoutConflict, CheckoutNotFound
from sandbox.cashnet_store import StoreConfigError

__all__ = ["DEFAULT_HOST", "DEFAULT_PORT", "ERROR_MESSAGES", "CashNetSandbox", "check_bind",
           "create_app", "is_loopback_host"]

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8765
MAX_BODY = 1024 * 1024
TEMPLATES = Jinja2Templates(directory=Path(__file__).parent / "templates")

# Our pages load nothing from elsewhere and run no inline script; the sign-out form may post to
# any http(s) merchant, and no one may frame the card page.
PAGE_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
        "form-action 'self' http: https:; base-uri 'none'; frame-ancestors 'none'"
    ),
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
}

SIGNOUT_JS = """\
// Submit the receipt's sign-out form by itself after data-auto-signout seconds (demo option).
"use strict";
document.addEventListener("DOMContentLoaded", function () {
  var form = document.querySelector("form[data-auto-signout]");
  if (!form) { return; }
  var seconds = Number(form.getAttribute("data-auto-signout")) || 0;
  window.setTimeout(function () { form.submit(); }, seconds * 1000);
});
"""

CSS = """\
body { font-family: system-ui, sans-serif; margin: 0; color: #1b1b1b; background: #f4f6f8; }
.banner { background: #003a63; color: #fff; padding: 0.75rem 1.5rem; }
.banner .brand { font-size: 1.4rem; font-weight: 700; margin: 0; }
.banner .notice { margin: 0.25rem 0 0; }
main { max-width: 46rem; margin: 1.5rem auto; background: #fff; padding: 1.5rem; }
footer { text-align: center; font-size: 0.9rem; padding: 1rem; }
table.lines { border-collapse: collapse; width: 100%; }
table.lines caption { text-align: left; font-weight: 600; padding-bottom: 0.5rem; }
table.lines th, table.lines td { border-bottom: 1px solid #c8cdd2; padding: 0.4rem; }
table.lines .num { text-align: right; }
fieldset { margin: 1rem 0; border: 1px solid #c8cdd2; }
label { display: block; font-weight: 600; }
input, select, button { font-size: 1rem; padding: 0.4rem; }
button { background: #003a63; color: #fff; border: 0; padding: 0.5rem 1rem; cursor: pointer; }
button:focus, input:focus, select:focus { outline: 3px solid #ffbf47; }
.alert { border-left: 6px solid #b00020; background: #fdecee; padding: 0.5rem 1rem; }
dl.summary dt { font-weight: 600; }
"""


# ----- binding (the CLI refuses a non-loopback bind without --allow-remote) -------------------

def is_loopback_host(host: str) -> bool:
    """True for `localhost` and loopback IP literals (127.0.0.0/8, ::1)."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_bind(host: str, allow_remote: bool = False) -> None:
    """Raise ValueError for a non-loopback bind unless remote access was asked for."""
    if not allow_remote and not is_loopback_host(host):
        raise ValueError(
            f"refusing to bind the CashNet sandbox to {host}: it is not a loopback address "
            "(pass --allow-remote to expose it)")


# ----- the app --------------------------------------------------------------------------------

def create_app(stores: dict[str, Any] | None = None) -> Starlette:
    """The emulator app; `stores=None` loads `sandbox/seed/cashnet.json`."""
    app = Starlette(routes=[
        Route("/{path:path}", _dispatch, methods=["GET", "HEAD", "POST", "PUT"]),
    ])
    app.state.cashnet = CashNetSandbox(stores)
    return app


async def _dispatch(request: Request) -> Response:
    segments = [part for part in request.path_params["path"].split("/") if part]
    lowered = [part.lower() for part in segments]
    if lowered[:1] == ["_emulator"]:
        return await _emulator(request, segments[1:], lowered[1:])
    if lowered[:1] == ["_checkout"] and len(segments) == 3:
        return await _checkout_page(request, segments[1], lowered[2])
    if lowered == ["404handler", "pageredirpost.aspx"]:
        return await _entry(request, None)
    if len(segments) == 1 and not lowered[0].startswith(("_checkout", "_emulator")):
        return await _entry(request, segments[0])
    return _error_page(request, None, "Not found", "There is no page at this address.", 404)


def _sandbox(request: Request) -> CashNetSandbox:
    return request.app.state.cashnet


def _root(request: Request) -> str:
    return request.scope.get("root_path", "").rstrip("/")


# ----- the patron's pages ---------------------------------------------------------------------

async def _entry(request: Request, store: str | None) -> Response:
    """The hand-off: GET query and POST form both count; `store=None` means use `virtual`."""
    if request.method not in ("GET", "HEAD", "POST"):
        return PlainTextResponse("Method Not Allowed", status_code=405)
    sources = [_parse_pairs(request.scope.get("query_string", b""))]
    if request.method == "POST":
        body = await _read_body(request)
        if body is None:
            return _error_page(request, None, "Request too large", "", 413)
        sources.append(_parse_pairs(body))
    outage = _sandbox(request).outage(store, sources)
    if outage is not None:
        return PlainTextResponse(f"{outage} {HTTPStatus(outage).phrase}", status_code=outage)
    checkout = _sandbox(request).open_checkout(
        store, sources, method=request.method, path=request.url.path)
    headers = {"X-Emulator-Checkout": checkout["cid"]}
    if checkout["status"] == "REJECTED":
        error = checkout["error"]
        headers["X-Emulator-Error"] = str(error["code"])
        return _render(request, "cashnet_error.html", {"error": error, "cid": checkout["cid"]},
                       headers=headers)
    return _render_checkout(request, checkout, None, headers)


async def _checkout_page(request: Request, cid: str, page: str) -> Response:
    sandbox = _sandbox(request)
    try:
        checkout = sandbox.checkout(cid)
    except CheckoutNotFound:
        return _error_page(request, None, "Unknown checkout", f"No checkout {cid}.", 404)
    headers = {"X-Emulator-Checkout": cid}
    if page == "receipt" and request.method in ("GET", "HEAD"):
        return _receipt(request, cid, headers)
    if page != "action" or request.method != "POST":
        return _error_page(request, None, "Not found", "There is no page at this address.", 404)
    if checkout["status"] == "REJECTED":
        return _error_page(request, cid, "Checkout rejected", "This checkout was refused.", 409)
    return await _action(request, checkout, headers)


async def _action(request: Request, checkout: dict[str, Any], headers: dict[str, str]) -> Response:
    """A button on the card page. Only `action` and `code` are read from the form: the rest is
    whatever was typed into the dummy card fields, and it is dropped here, unread and unlogged."""
    body = await _read_body(request)
    form = dict(_parse_pairs(body or b""))
    action, code_text = form.get("action", ""), form.get("code", "")
    cid = checkout["cid"]
    receipt = RedirectResponse(f"{_root(request)}/_checkout/{cid}/receipt", 303, headers)
    if checkout["status"] in ("PAID", "CANCELLED"):
        return receipt  # a finished checkout is final: show its receipt, send nothing
    code = None
    if action == "decline":
        code = int(code_text) if code_text.strip().isdigit() else DEFAULT_DECLINE
        if code not in PAGE_DECLINE_CODES:
            return _error_page(request, cid, "Bad decline code", "Choose 7, 209 or 232.", 400)
    elif action not in ("pay", "cancel"):
        return _error_page(request, cid, "Unknown action", "Choose Pay, Decline or Cancel.", 400)
    try:
        result = await _sandbox(request).complete_async(cid, action, code)
    except CheckoutConflict:
        return receipt
    if action != "decline":
        return receipt
    return _render_checkout(request, _sandbox(request).checkout(cid), result, headers)


def _render_checkout(request: Request, checkout: dict[str, Any], declined: dict | None,
                     headers: dict[str, str]) -> Response:
    context = {
        "checkout": checkout,
        "declined": declined,
        "action_url": f"{_root(request)}/_checkout/{checkout['cid']}/action",
        "decline_codes": [(code, decline_messages(code)[0]) for code in PAGE_DECLINE_CODES],
        "default_decline": DEFAULT_DECLINE,
    }
    return _render(request, "cashnet_checkout.html", context, headers=headers)


def _receipt(request: Request, cid: str, headers: dict[str, str]) -> Response:
    sandbox = _sandbox(request)
    checkout = sandbox.checkout(cid)
    if checkout["status"] not in ("PAID", "CANCELLED"):
        return _error_page(request, cid, "No receipt yet", "This checkout is not finished.", 404)
    checkout = sandbox.receipt_shown(cid)
    result = checkout["last_result"]
    signout = result["signout"]
    auto = sandbox.store(checkout["store"])["auto_signout_s"]
    context = {
        "checkout": checkout,
        "result": result,
        "signout": signout,
        "auto_signout": None if auto is None else f"{auto:g}",
    }
    if signout:
        context["signout_action"], context["signout_hidden"] = _signout_form(signout)
    return _render(request, "cashnet_receipt.html", context, headers=headers)


def _signout_form(signout: dict[str, Any]) -> tuple[str, list[tuple[str, str]]]:
    """A GET form replaces the action's query string, so its pairs travel as hidden fields
    (keeping the proxy's `?p=` lookup fallback); a POST form keeps the URL as it is."""
    fields = [(name, value) for name, value in signout["fields"]]
    if signout["method"] != "GET":
        return signout["url"], fields
    parts = urlsplit(signout["url"])
    query = parse_qsl(parts.query, keep_blank_values=True)
    return urlunsplit(parts._replace(query="", fragment="")), query + fields


def _error_page(request: Request, cid: str | None, message: str, detail: str,
                status: int) -> Response:
    error = {"code": None, "message": message, "detail": detail}
    return _render(request, "cashnet_error.html", {"error": error, "cid": cid}, status=status)


def _render(request: Request, name: str, context: dict[str, Any], *, status: int = 200,
            headers: dict[str, str] | None = None) -> Response:
    context = {"root": _root(request), **context}
    return TEMPLATES.TemplateResponse(
        request, name, context, status_code=status, headers={**PAGE_HEADERS, **(headers or {})})


# ----- the emulator's control API -------------------------------------------------------------

async def _emulator(request: Request, segments: list[str], lowered: list[str]) -> Response:
    sandbox = _sandbox(request)
    method = request.method
    try:
        if lowered[:1] == ["static"] and len(lowered) == 2 and method in ("GET", "HEAD"):
            return _static(lowered[1])
        if lowered == ["checkouts"] and method == "GET":
            return _json(sandbox.checkouts(request.query_params.get("ref")))
        if lowered[:1] == ["checkouts"] and len(lowered) == 2 and method == "GET":
            return _json(sandbox.checkout(segments[1]))
        if lowered[:1] == ["checkouts"] and lowered[2:] == ["complete"] and method == "POST":
            return _json(await _complete(request, sandbox, segments[1]))
        if lowered[:1] == ["checkouts"] and lowered[2:] == ["release"] and method == "POST":
            return _json({"notifications": await sandbox.release_async(segments[1])})
        if lowered == ["notifications"] and method == "GET":
            query = request.query_params
            return _json(sandbox.notifications(query.get("cid"), query.get("store")))
        if lowered == ["signouts"] and method == "GET":
            return _json(sandbox.signouts(request.query_params.get("cid")))
        if lowered == ["stores"] and method == "GET":
            return _json(sandbox.stores())
        if lowered[:1] == ["stores"] and len(lowered) == 2 and method == "GET":
            return _json(sandbox.store(segments[1]))
        if lowered[:1] == ["stores"] and len(lowered) == 2 and method == "PUT":
            return _json(sandbox.configure_store(segments[1], **await _json_body(request)))
        if lowered[:1] == ["stores"] and lowered[2:] == ["faults"] and method == "PUT":
            return _json(sandbox.set_faults(segments[1], await _json_body(request)))
        if lowered == ["reset"] and method == "POST":
            sandbox.reset(keep_stores=request.query_params.get("keep_stores") in ("1", "true"))
            return _json({"reset": True})
    except CheckoutNotFound as exc:
        return _json_error(404, "not_found", exc.args[0])
    except CheckoutConflict as exc:
        return _json_error(409, "conflict", str(exc))
    except (StoreConfigError, ValueError, TypeError) as exc:
        return _json_error(400, "bad_request", str(exc))
    return _json_error(404, "not_found", "no such emulator route")


async def _complete(request: Request, sandbox: CashNetSandbox, cid: str) -> dict[str, Any]:
    payload = await _json_body(request)
    unknown = set(payload) - {"outcome", "code", "faults"}
    if unknown:
        raise ValueError(f"unknown key(s) {sorted(unknown)}")
    code = payload.get("code")
    if isinstance(code, str) and code.isdigit():
        code = int(code)
    return await sandbox.complete_async(cid, payload.get("outcome", "pay"), code,
                                        payload.get("faults"))


async def _json_body(request: Request) -> dict[str, Any]:
    body = await _read_body(request)
    if body is None:
        raise ValueError("request body too large")
    try:
        payload = json.loads(body or b"{}", parse_float=Decimal)
    except ValueError as exc:
        raise ValueError(f"body is not JSON: {exc}") from None
    if not isinstance(payload, dict):
        raise ValueError("body must be a JSON object")
    return payload


def _static(name: str) -> Response:
    if name == "cashnet-signout.js":
        return Response(SIGNOUT_JS, media_type="text/javascript")
    if name == "cashnet.css":
        return Response(CSS, media_type="text/css")
    raise CheckoutNotFound(f"no static file {name}")


def _json(data: Any, status: int = 200) -> Response:
    text = json.dumps(data, default=_json_default, ensure_ascii=False)
    return Response(text.encode("utf-8"), status, media_type="application/json")


def _json_error(status: int, code: str, message: str) -> Response:
    return _json({"error": {"code": code, "message": message}}, status)


def _json_default(value: Any) -> Any:
    """Decimals as plain strings; raw notification bodies byte-for-byte as latin-1 text."""
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, bytes):
        return value.decode("latin-1")
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


# ----- request parsing ------------------------------------------------------------------------

async def _read_body(request: Request) -> bytes | None:
    """The raw body, or None past MAX_BODY. Read ourselves: no python-multipart needed."""
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


def _parse_pairs(raw: bytes) -> list[tuple[str, str]]:
    """Form-urlencoded pairs; UTF-8 first, windows-1252 when that fails
    (docs/cashnet.md#tolerant-parsing)."""
    try:
        return parse_qsl(raw.decode("utf-8"), keep_blank_values=True, errors="strict")
    except UnicodeDecodeError:
        return parse_qsl(raw.decode("cp1252", "replace"), keep_blank_values=True,
                         encoding="cp1252", errors="replace")

