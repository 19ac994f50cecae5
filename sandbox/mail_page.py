"""The sandbox's mail page (`/mail/`): every message its SMTP server kept, newest first, and
each one whole: headers, the plain text, and the HTML shown inert in a sandboxed frame.
Everything in a message is shown escaped: it came from outside."""

from __future__ import annotations

import html
import time

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse
from starlette.routing import Route

from sandbox.smtp import Mailbox, Received

STYLE = ("body{font-family:sans-serif;margin:1.5rem;max-width:70rem}"
         "table{border-collapse:collapse}td,th{border:1px solid #bbb;padding:.3rem .5rem;"
         "text-align:left;vertical-align:top}pre{white-space:pre-wrap;background:#f4f4f4;"
         "padding:.75rem}iframe{width:100%;height:32rem;border:1px solid #bbb}")


def _page(title: str, body: str) -> HTMLResponse:
    return HTMLResponse(
        f"<!doctype html><html lang=en><head><meta charset=utf-8><title>{html.escape(title)}"
        f"</title><style>{STYLE}</style></head><body><main>{body}</main></body></html>",
        headers={"Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; "
                 "frame-src 'self' data:; img-src data:"})


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


async def index(request: Request) -> HTMLResponse:
    mailbox: Mailbox = request.app.state.mailbox
    rows = "".join(
        f"<tr><td><a href=\"{m.number}\">#{m.number}</a></td><td>{_e(_when(m))}</td>"
        f"<td>{_e(m.message.get('From', m.mail_from))}</td><td>{_e(', '.join(m.rcpt_tos))}</td>"
        f"<td>{_e(m.subject)}</td><td><code>{_e(m.message_id)}</code></td></tr>"
        for m in reversed(mailbox.messages()))
    table = ("<table><thead><tr><th>#</th><th>received</th><th>from</th><th>to</th>"
             f"<th>subject</th><th>Message-ID</th></tr></thead><tbody>{rows}</tbody></table>"
             if rows else "<p>No mail yet. Pay a fee in the demo: its receipt lands here.</p>")
    return _page("Sandbox mail", "<h1>Sandbox mail</h1><p>Every message the sandbox's mail "
                 "server received. It delivers nothing anywhere.</p>" + table)


async def show(request: Request) -> HTMLResponse:
    mailbox: Mailbox = request.app.state.mailbox
    received = mailbox.message(request.path_params["number"])
    if received is None:
        return _page("No such message", "<h1>No such message</h1><p><a href=\"./\">All mail"
                     "</a></p>")
    headers = "".join(f"<tr><th scope=row>{_e(name)}</th><td>{_e(value)}</td></tr>"
                      for name, value in received.message.items())
    text = received.part("plain")
    rich = received.part("html")
    body = (f"<p><a href=\"./\">All mail</a></p><h1>{_e(received.subject or '(no subject)')}"
            f"</h1><table>{headers}</table>"
            f"<h2>Plain text</h2><pre>{_e(text) if text else '(none)'}</pre>")
    if rich:
        # srcdoc is an attribute: escaped once here, the frame parses the HTML itself, with
        # no scripts, no forms and an origin of its own.
        body += (f"<h2>HTML</h2><iframe sandbox title=\"The message's HTML part\" "
                 f"srcdoc=\"{_e(rich)}\"></iframe>")
    return _page(f"Sandbox mail #{received.number}", body)


async def messages_json(request: Request) -> JSONResponse:
    mailbox: Mailbox = request.app.state.mailbox
    return JSONResponse([{"number": m.number, "at": m.at, "from": m.mail_from,
                          "to": list(m.rcpt_tos), "subject": m.subject,
                          "message_id": m.message_id} for m in mailbox.messages()])


def _when(received: Received) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(received.at))


def create_app(mailbox: Mailbox | None = None) -> Starlette:
    app = Starlette(routes=[
        Route("/", index),
        Route("/messages.json", messages_json),
        Route("/{number:int}", show),
    ])
    app.state.mailbox = mailbox or Mailbox()
    return app
