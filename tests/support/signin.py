"""A patron's browser going through sign-in round trips: CAS (the login form included, with the
CAS server's own cookie kept, as a real browser keeps it) and Primo's "Pay fines" link."""

from __future__ import annotations

import html
import re
from urllib.parse import parse_qs, urljoin, urlsplit

import httpx


def location(response: httpx.Response) -> str:
    assert response.status_code in (302, 303), (response.status_code, response.text)
    return response.headers["location"]


def query(url: str) -> dict[str, str]:
    return {name: values[0] for name, values in parse_qs(urlsplit(url).query).items()}


def to_cas(browser: httpx.Client, next_page: str = "/") -> str:
    """The patron picks CAS: where patronpay sends the browser."""
    return location(browser.get("/auth/cas", params={"next": next_page}))


def cas_log_in(browser: httpx.Client, login_url: str, user: str, password: str) -> str:
    """Fill in the CAS login form at `login_url`; the URL CAS sends the browser back to."""
    form = browser.get(login_url)
    assert form.status_code == 200, form.text
    action = re.search(r'<form method="post" action="([^"]+)"', form.text).group(1)
    hidden = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', form.text))
    login = browser.post(urljoin(login_url, action),
                         data={**{k: html.unescape(v) for k, v in hidden.items()},
                               "username": user, "password": password})
    return location(login)


def cas_round_trip(browser: httpx.Client, user: str, password: str,
                   next_page: str = "/") -> tuple[str, httpx.Response]:
    """A whole CAS sign-in in `browser`: (the ticket, patronpay's answer to it)."""
    back = cas_log_in(browser, to_cas(browser, next_page), user, password)
    ticket = query(back)["ticket"]
    return ticket, browser.get(back)
