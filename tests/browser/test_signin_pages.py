"""Sign-in in a real browser: a Primo link for another patron asks "Continue as …?" instead of
swapping the session (axe-clean in every language), and the language links never lead to
another host, whatever path the page was opened at."""

import pytest
from browser_support import text
from playwright.sync_api import expect

pytestmark = pytest.mark.browser


def test_a_primo_link_for_someone_else_asks_continue_as(deploy, open_page, lang, L, axe):
    d = deploy()
    page = open_page(d.url, lang, sso_user="pchen")
    page.goto(d.url + "/auth/sso?next=/")
    expect(page.locator("#signed-in-as")).to_have_text(text(L["nav.signed_in_as"],
                                                            name="Priya Chen"))

    page.goto(f"{d.url}/auth/primo?jwt={d.alma.primo_token('mkowalski')}")
    question = page.get_by_role("region", name=L["switch.heading"])
    expect(question).to_be_visible()
    expect(page.get_by_role("heading", name=L["switch.heading"])).to_be_focused()
    expect(question).to_contain_text(text(L["switch.question"], current="Priya Chen",
                                          next="Maria Kowalski"))
    expect(page.locator("#fees")).to_be_hidden()  # Priya's fees are not shown under it
    axe(page, "continue as another patron?")

    page.get_by_role("button", name=text(L["switch.stay"], name="Priya Chen")).click()
    expect(page.get_by_role("heading", name=L["fees.heading"])).to_be_visible()
    expect(page.locator("#signed-in-as")).to_have_text(text(L["nav.signed_in_as"],
                                                            name="Priya Chen"))

    page.goto(f"{d.url}/auth/primo?jwt={d.alma.primo_token('mkowalski')}")
    page.get_by_role("button", name=text(L["switch.continue"], name="Maria Kowalski")).click()
    expect(page.locator("#signed-in-as")).to_have_text(text(L["nav.signed_in_as"],
                                                            name="Maria Kowalski"))
    expect(page.locator("#fee-rows tr")).to_have_count(3)


def test_language_links_stay_on_this_site_whatever_the_path(deploy, open_page):
    """`//evil.example/..%2Findex.html` is served as the fees page, and its path begins with
    `//`: links built from it as they were would point at evil.example."""
    d = deploy()
    page = open_page(d.url, "en")
    page.goto(d.url + "//evil.example/..%2Findex.html")
    links = page.get_by_role("navigation", name="Language").get_by_role("link")
    expect(links).to_have_count(2)
    hrefs = links.evaluate_all("(links) => links.map((link) => link.href)")
    assert all(href.startswith(d.url + "/evil.example/") for href in hrefs), hrefs
    links.nth(1).click()
    expect(page.locator("html")).to_have_attribute("lang", "es")
    assert page.url.startswith(d.url + "/")


def test_signing_out_of_a_cas_session_goes_through_the_cas_logout(deploy, open_page, lang, L):
    d = deploy()
    page = open_page(d.url, lang)
    page.goto(d.url + "/")
    page.get_by_role("link", name=L["signin.cas"]).click()
    page.get_by_label("User name").fill("arivera")
    page.get_by_label("Password").fill("student-pass")
    page.get_by_role("button", name="Log in").click()
    expect(page.locator("#signed-in-as")).to_have_text(text(L["nav.signed_in_as"],
                                                            name="Ana Rivera"))
    page.get_by_role("button", name=L["nav.signout"]).click()
    expect(page.get_by_role("heading", name="Logout successful")).to_be_visible()
    page.get_by_role("link", name=f"Continue to {d.url}/").click()
    # The next person at this computer who picks CAS meets the password form.
    page.get_by_role("link", name=L["signin.cas"]).click()
    expect(page.get_by_label("Password")).to_be_visible()
