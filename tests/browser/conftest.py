"""Browser fixtures: Debian's Chromium driven by Playwright, a patron's browser that fails
the test on any script error or CSP refusal, and the per-language parametrisation."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from browser_support import INTL, LANGS, WAIT_MS, assert_accessible, launched_chromium, strings
from playwright.sync_api import Browser, Page, expect

expect.set_options(timeout=WAIT_MS)


@pytest.fixture(scope="module")
def chromium() -> Iterator[Browser]:
    """One Chromium per test module. Not per session: Playwright's sync API keeps an event
    loop running on the main thread while it is started, which would break the sandbox
    helpers (asyncio.run) of the non-browser tests collected after these."""
    with launched_chromium() as browser:
        yield browser


@pytest.fixture
def open_page(chromium: Browser) -> Iterator[Callable[..., Page]]:
    """`open_page(origin, lang="en", sso_user=None, **context_options)`: a fresh patron's
    browser whose languages are `lang`'s. With `sso_user`, every request carries the SSO
    header, as the campus web server in front of the proxy would add it. At the end, any
    script error or Content-Security-Policy refusal on our pages fails the test."""
    contexts = []
    problems: list[str] = []

    def open_(origin: str, lang: str = "en", sso_user: str | None = None,
              **options: Any) -> Page:
        headers = {"X-Remote-User": sso_user} if sso_user else {}
        options.setdefault("viewport", {"width": 1280, "height": 900})
        context = chromium.new_context(locale=INTL[lang], extra_http_headers=headers, **options)
        context.set_default_timeout(WAIT_MS)
        contexts.append(context)
        page = context.new_page()
        page.on("pageerror", lambda error: problems.append(f"script error: {error}"))

        def on_console(message) -> None:
            ours = message.location.get("url", "").startswith(origin)
            if ours and message.type == "error" and "Content Security Policy" in message.text:
                problems.append(f"CSP: {message.text}")

        page.on("console", on_console)
        return page

    yield open_
    for context in contexts:
        context.close()
    assert problems == [], problems


@pytest.fixture(params=LANGS)
def lang(request: pytest.FixtureRequest) -> str:
    """Run the test once per language of the site."""
    return request.param


@pytest.fixture
def L(lang: str) -> dict[str, str]:  # noqa: N802 - reads like the site's t()
    return strings(lang)


@pytest.fixture
def axe() -> Callable[[Page, str], None]:
    return assert_accessible
