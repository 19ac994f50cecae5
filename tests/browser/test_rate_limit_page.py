"""What a patron sees when their session has used its allowance on the routes that read Alma
(issue 14 item 1): the fees page shows the proxy's 429 as a sentence in the page's language
with the number of seconds from Retry-After, not a bare error."""

import re

import pytest
from playwright.sync_api import expect

pytestmark = pytest.mark.browser


def test_the_fees_page_says_how_long_to_wait(deploy, open_page, lang, L):
    # One request in a row, then one a minute: the sign-in's fees read takes the only token.
    d = deploy(session_burst="1", session_requests_per_minute="1")
    page = open_page(d.url, lang, sso_user="mkowalski")
    page.goto(d.url + "/auth/sso?next=/")
    expect(page.locator("#fee-rows tr")).to_have_count(3)

    with page.expect_response(lambda r: r.url.endswith("/api/fees")) as answer:
        page.reload()
    refused = answer.value
    assert refused.status == 429
    seconds = refused.headers["retry-after"]
    assert seconds.isdigit() and int(seconds) >= 1
    before, after = L["error.rate_limited"].split("{seconds}")
    expect(page.locator("#alert")).to_have_text(
        re.compile(re.escape(before) + r"\d+" + re.escape(after)))
    assert seconds in page.locator("#alert").inner_text()
