"""A consortium's pages in Chromium (docs/consortium.md#what-the-pages-show): the list of
institutions, and each institution's fees page below its prefix with its own name and colour,
its scripts calling its own API, axe clean in every language."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from browser_support import strings
from playwright.sync_api import expect
from support.consortium import ConsortiumDeployment, start_consortium

from patronpay.consortium_demo import HELP_TEXTS

pytestmark = pytest.mark.browser

INSTITUTIONS = [
    # code, name, header colour (its accent), a patron there, the titles of their fees
    ("campus-a", "Campus A Library", "rgb(106, 27, 154)", "mkowalski",
     ["The structure of scientific revolutions"]),
    ("campus-b", "Campus B Libraries", "rgb(29, 94, 58)", "mkowalski",
     ["Contracts: cases and doctrine"]),
]


@pytest.fixture(scope="module")
def d(tmp_path_factory) -> Iterator[ConsortiumDeployment]:
    deployment = start_consortium(tmp_path_factory.mktemp("consortium"))
    yield deployment
    deployment.stop()


def test_the_list_of_institutions_is_accessible(d, open_page, lang, axe):
    page = open_page(d.url, lang)
    page.goto(d.url + "/")
    expect(page.get_by_role("heading", level=1)).to_have_text("Example University System")
    links = page.get_by_role("link")
    expect(links).to_have_text(["Campus A Library", "Campus B Libraries"])
    axe(page, "the list of institutions")
    links.nth(1).click()
    expect(page).to_have_url(d.url + "/campus-b/")
    expect(page.locator(".site-name")).to_have_text("Campus B Libraries")


@pytest.mark.parametrize("code, name, colour, patron, titles", INSTITUTIONS)
def test_each_institution_has_its_own_name_and_colour(d, open_page, lang, L, axe,
                                                      code, name, colour, patron, titles):
    page = open_page(d.url, lang)
    page.goto(f"{d.url}/{code}/")
    expect(page.locator("#signin")).to_be_visible()
    expect(page.locator(".site-name")).to_have_text(name)
    logo = page.locator(".site-name img")
    if code == "campus-a":
        expect(logo).to_be_visible()
        assert logo.evaluate("e => e.naturalWidth") > 0
    else:
        expect(logo).to_have_count(0)
    header = page.locator(".site-header")
    assert header.evaluate("e => getComputedStyle(e).backgroundColor") == colour
    expect(page.locator("h1")).to_have_text(L["site.title"])  # translated: the scripts ran
    help_text = HELP_TEXTS[code]  # in each language, or one for all
    expect(page.locator(".institution-help:visible")).to_have_text(
        help_text[lang] if isinstance(help_text, dict) else help_text)
    axe(page, f"{code}: sign in")

    signed_in = open_page(d.url, lang, sso_user=patron)
    signed_in.goto(f"{d.url}/{code}/auth/sso?next=/")
    expect(signed_in).to_have_url(f"{d.url}/{code}/")
    rows = signed_in.locator("#fee-rows tr")
    expect(rows.first).to_be_visible()
    for title in titles:
        expect(signed_in.locator("#fee-rows")).to_contain_text(title)
    expect(signed_in.locator(".site-name")).to_have_text(name)
    axe(signed_in, f"{code}: fees")


NETWORK_HEADING = {"en": "Fees at other libraries", "es": "Cargos en otras bibliotecas"}


@pytest.fixture(scope="module")
def network(tmp_path_factory) -> Iterator[ConsortiumDeployment]:
    deployment = start_consortium(
        tmp_path_factory.mktemp("network"),
        tables={"campus-a": {"pay_network_fees": True}, "campus-b": {"pay_network_fees": True}})
    yield deployment
    deployment.stop()


def test_fees_at_a_sister_institution_are_listed_and_paid_there(network, open_page, lang, axe):
    d = network
    page = open_page(d.url, lang, sso_user="mkowalski")
    page.goto(f"{d.url}/campus-a/auth/sso?next=/")
    section = page.locator("#network-fees")
    expect(section.get_by_role("heading", level=2)).to_have_text(NETWORK_HEADING[lang])
    expect(section.get_by_role("heading", level=3)).to_have_text("Campus B Libraries")
    expect(section.locator("tbody tr")).to_have_count(1)
    expect(section).to_contain_text("Contracts: cases and doctrine")
    axe(page, "campus-a: fees with a sister institution's")
    section.get_by_role("button").click()
    expect(page).to_have_url(f"{d.url}/campus-b/")
    expect(page.locator(".site-name")).to_have_text("Campus B Libraries")
    expect(page.locator("#fee-rows")).to_contain_text("Contracts: cases and doctrine")
    expect(page.locator("#network-fees h3")).to_have_text("Campus A Library")
    axe(page, "campus-b: after the hand-off")


@pytest.fixture(scope="module")
def spanish_only(tmp_path_factory) -> Iterator[ConsortiumDeployment]:
    deployment = start_consortium(tmp_path_factory.mktemp("spanish"),
                                  tables={"campus-b": {"languages": ["es"]}})
    yield deployment
    deployment.stop()


def test_an_institution_in_one_language_offers_no_other(spanish_only, open_page, axe):
    d = spanish_only
    page = open_page(d.url, "en")  # an English browser
    page.goto(f"{d.url}/campus-b/?lang=en")
    expect(page.locator("h1")).to_have_text(strings("es")["site.title"])
    expect(page.locator("html")).to_have_attribute("lang", "es")
    expect(page.locator("[data-language-switch]")).to_be_hidden()
    axe(page, "campus-b in Spanish only")
    page.goto(f"{d.url}/campus-a/")  # its sister offers both, and English to this browser
    expect(page.locator("h1")).to_have_text(strings("en")["site.title"])
    expect(page.locator("[data-language-switch] a")).to_have_count(2)
