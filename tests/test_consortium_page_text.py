"""What each institution's pages offer besides its name (docs/consortium.md#what-the-pages-show),
over loopback: its help text under the fees page's lead (in each of its languages, or one for
all; escaped), and only its languages in the language switch of every page, the server-rendered
CashNet hand-off page's too."""

from __future__ import annotations

import re
from collections.abc import Iterator

import httpx
import pytest
from support.consortium import ConsortiumDeployment, start_consortium

from patronpay.consortium_demo import HELP_TEXTS

B_HELP = "<b>Law</b> & Medical:\n  ask at the desk"
SWITCH_LANGUAGES = re.compile(r'hreflang="([a-z]+)"')


@pytest.fixture(scope="module")
def d(tmp_path_factory) -> Iterator[ConsortiumDeployment]:
    deployment = start_consortium(tmp_path_factory.mktemp("page-text"), tables={
        "campus-b": {"languages": ["es"], "help_text": B_HELP}})
    yield deployment
    deployment.stop()


def test_a_help_text_in_each_language_shows_in_the_pages_own(d):
    page = httpx.get(f"{d.url}/campus-a/").text
    en, es = HELP_TEXTS["campus-a"]["en"], HELP_TEXTS["campus-a"]["es"]
    assert (f'Pay your library fines and fees online.</p>\n'
            f'    <p class="institution-help" lang="en">{en}</p>\n'
            f'    <p class="institution-help" lang="es">{es}</p>') in page
    style = httpx.get(f"{d.url}/campus-a/consortium/institution.css").text
    assert ('html[lang="es"] .institution-help[lang]:not([lang="es"]) { display: none; }'
            in style)
    # Campus A offers every language of the site.
    assert '<html lang="en">' in page and SWITCH_LANGUAGES.findall(page) == ["en", "es"]


def test_one_help_text_for_all_is_escaped_text(d):
    page = httpx.get(f"{d.url}/campus-b/").text
    assert ('<p class="institution-help">&lt;b&gt;Law&lt;/b&gt; &amp; Medical: ask at the '
            'desk</p>') in page
    assert "<b>Law</b>" not in page
    assert "institution-help" not in httpx.get(f"{d.url}/campus-b/receipt.html").text


def test_the_language_switch_offers_only_the_institutions_languages(d):
    for path in ("/campus-b/", "/campus-b/receipt.html"):
        page = httpx.get(d.url + path).text
        assert '<html lang="en" data-languages="es">' in page  # what i18n.js offers
        assert SWITCH_LANGUAGES.findall(page) == ["es"]
    # The server-rendered CashNet hand-off page too.
    browser = d.sign_in_sso("campus-b", "dokafor")
    created = d.start_payment("campus-b", browser)
    hand_off = browser.get(f"/campus-b/pay/{created['payment']['id']}?lang=es").text
    assert SWITCH_LANGUAGES.findall(hand_off) == ["es"]
    assert "Español" in hand_off and "English" not in hand_off
