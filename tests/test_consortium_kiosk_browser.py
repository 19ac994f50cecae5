"""A consortium institution's kiosk in Debian's Chromium (docs/kiosk.md#a-consortiums-kiosk):
the real agent, pointed at its institution below the consortium's prefix, shows that
institution's help text in the patron's language (the switch changes it) on the idle and fees
screens, and offers only its languages: Campus A's two, Campus B's one (no switch at all).
axe-core with the AAA rules, as tests/test_kiosk_browser.py, on each screen."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect
from support.consortium import ConsortiumDeployment, start_consortium
from support.kiosk import MARIA
from support.waiting import wait_for

from kiosk.agent import create_kiosk_app
from kiosk.settings import KioskSettings
from patronpay.consortium_demo import HELP_TEXTS
from patronpay.serving import ServerThread, bind

sys.path.insert(0, str(Path(__file__).resolve().parent / "browser"))
from browser_support import (  # noqa: E402 - shared with tests/browser, which is not a package
    INTL,
    LANGS,
    WAIT_MS,
    assert_kiosk_accessible,
    launched_chromium,
)

pytestmark = pytest.mark.browser

PORTRAIT = {"width": 1080, "height": 1920}
LANDSCAPE = {"width": 1920, "height": 1080}
KEYS = {"campus-a": ("a-kiosk", "campus-a-kiosk-secret-0123456789abcdef"),
        "campus-b": ("b-kiosk", "campus-b-kiosk-secret-0123456789abcdef")}
CAMPUS_A_HELP = {"en": "Fines? Ask at <b>Desk 1</b> & call 555-0100.",
                 "es": "¿Multas? Pregunte en el mostrador 1."}
TABLES = {"campus-a": {"languages": ["es", "en"], "help_text": CAMPUS_A_HELP},
          "campus-b": {"languages": ["en"]}}  # and the sandbox's one help text for all
expect.set_options(timeout=WAIT_MS)


@pytest.fixture(scope="module")
def chromium() -> Iterator[Browser]:
    with launched_chromium() as browser:
        yield browser


@pytest.fixture(params=LANGS)
def lang(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture(scope="module")
def d(tmp_path_factory) -> Iterator[ConsortiumDeployment]:
    deployment = start_consortium(tmp_path_factory.mktemp("kiosk-pages"), tables={
        code: {"kiosk_keys": f"{kiosk_id}={secret}", **TABLES[code]}
        for code, (kiosk_id, secret) in KEYS.items()})
    yield deployment
    deployment.stop()


@pytest.fixture
def kiosk(d, tmp_path) -> Iterator:
    """`kiosk(code)`: a kiosk agent of that institution on its own loopback port, once it has
    read its institution's page text (it does so as it starts)."""
    started: list[ServerThread] = []

    def start(code: str) -> str:
        sock = bind("127.0.0.1", 0)
        settings = KioskSettings(kiosk_id=KEYS[code][0], kiosk_secret=KEYS[code][1],
                                 proxy_url=d.base(code),
                                 reset_file=str(tmp_path / f"reset-{code}"))
        app = create_kiosk_app(settings)
        started.append(ServerThread(app, sock=sock).start())
        wait_for(lambda: app.state.institution.answered, "the agent to read its page text")
        return started[-1].url

    yield start
    for server in started:
        server.stop()


@pytest.fixture
def browser_page(chromium) -> Iterator:
    """`browser_page(locale_lang)`: the kiosk's browser at a portrait panel's size, asking for
    `locale_lang`; any script error or CSP refusal fails the test."""
    contexts, problems = [], []

    def open_(locale_lang: str = "en") -> Page:
        context = chromium.new_context(viewport=PORTRAIT, locale=INTL[locale_lang])
        context.set_default_timeout(WAIT_MS)
        contexts.append(context)
        page = context.new_page()
        page.on("pageerror", lambda error: problems.append(f"script error: {error}"))
        page.on("console", lambda m: problems.append(f"console: {m.text}")
                if m.type == "error" and "Content Security Policy" in m.text else None)
        return page

    yield open_
    for context in contexts:
        context.close()
    assert problems == [], problems


def scan(url: str, card: str) -> None:
    """A card at the scanner (the wedge's own post to the agent; the page follows its event)."""
    answer = httpx.post(url + "/api/read", json={"source": "wedge", "data": card},
                        headers={"Origin": url}, timeout=15.0)
    assert answer.json() == {"result": "accepted"}, answer.text


def test_campus_a_kiosk_shows_its_help_text_in_the_chosen_language(kiosk, browser_page, lang):
    url = kiosk("campus-a")
    page = browser_page("en")  # the kiosk's own browser: English, which Campus A offers
    page.goto(url + "/kiosk/")
    expect(page.locator("#idle")).to_be_visible()
    expect(page.locator("html")).to_have_attribute("lang", "en")
    links = page.locator(".language-switch a")
    expect(links).to_have_count(2)
    assert links.evaluate_all("(all) => all.map((a) => a.dataset.lang)") == ["es", "en"]
    help_text = page.locator("#idle .institution-help:visible")
    expect(help_text).to_have_text(CAMPUS_A_HELP["en"])  # as text: the markup shows as typed
    page.locator(f'.language-switch a[data-lang="{lang}"]').click()
    expect(page.locator("html")).to_have_attribute("lang", lang)
    expect(help_text).to_have_text(CAMPUS_A_HELP[lang])
    assert_kiosk_accessible(page, f"campus-a idle, {lang}")

    scan(url, MARIA)
    expect(page.locator("#fees")).to_be_visible()
    expect(page.locator("#fee-list li").first).to_be_visible()
    expect(page.locator("#fees .institution-help:visible")).to_have_text(CAMPUS_A_HELP[lang])
    assert_kiosk_accessible(page, f"campus-a fees, {lang}")
    for size in (PORTRAIT, LANDSCAPE):  # with the help text, Pay still on screen, nothing wider
        page.set_viewport_size(size)
        expect(page.locator("#pay-all")).to_be_in_viewport()
        assert page.evaluate("() => document.documentElement.scrollWidth <= innerWidth"), size


def test_a_one_language_kiosk_has_no_language_switch(kiosk, browser_page, lang):
    url = kiosk("campus-b")
    page = browser_page(lang)  # a browser asking for Spanish still gets English, all it offers
    page.goto(url + "/kiosk/")
    expect(page.locator("#idle")).to_be_visible()
    expect(page.locator("html")).to_have_attribute("lang", "en")
    expect(page.locator("[data-language-switch]")).to_be_hidden()
    expect(page.locator("#idle .institution-help")).to_have_text(HELP_TEXTS["campus-b"])
    assert_kiosk_accessible(page, "campus-b idle")
    scan(url, MARIA)
    expect(page.locator("#fees")).to_be_visible()
    expect(page.locator("#fees .institution-help")).to_have_text(HELP_TEXTS["campus-b"])
    assert_kiosk_accessible(page, "campus-b fees")
