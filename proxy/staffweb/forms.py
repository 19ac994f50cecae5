"""The staff pages' form posts: url-encoded bodies (parsed here, so the service needs no
python-multipart) carrying the staff session's CSRF token.

Two guards stand in front of every action: the app's origin check (an unsafe method needs our
own `Origin`, proxy/web/security.py) and the token here, which only a page we rendered for this
staff session holds (docs/security.md#csrf-and-origin-checks).
"""

from __future__ import annotations

import hmac
from urllib.parse import parse_qsl

from starlette.requests import Request

from proxy.staffweb.sessions import StaffSession

FORM_TYPE = "application/x-www-form-urlencoded"
MAX_FIELDS = 20


class FormRefused(Exception):
    """A post the pages did not send: wrong type, unreadable, or without the session's token."""

    def __init__(self, status: int, text: str) -> None:
        super().__init__(text)
        self.status = status
        self.text = text


async def read_form(request: Request, session: StaffSession) -> dict[str, str]:
    """The form's fields (first value of each), once its CSRF token matches the session's.
    The body's size is bounded before it gets here (PATRONPAY_MAX_BODY_BYTES)."""
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind != FORM_TYPE:
        raise FormRefused(415, "This page takes only its own forms.")
    body = (await request.body()).decode("utf-8", errors="replace")
    try:
        pairs = parse_qsl(body, keep_blank_values=True, max_num_fields=MAX_FIELDS)
    except ValueError:
        raise FormRefused(400, "The form could not be read.") from None
    form: dict[str, str] = {}
    for name, value in pairs:
        form.setdefault(name, value)
    sent = form.get("csrf_token", "")
    if not hmac.compare_digest(sent.encode(), session.csrf_token.encode()):
        raise FormRefused(403, "This form is missing its security token, or it belongs to "
                          "another sign-in. Reload the page and try again.")
    return form
