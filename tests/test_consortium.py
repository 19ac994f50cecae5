"""A consortium from one deployment (docs/consortium.md#routing): which institution a request
is for, by path prefix (over loopback, against the consortium sandbox) or by host name; the
list of institutions for a request that names none; each institution's pages below its own
prefix, with its own name and colour, and its cookies scoped to it."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from support.consortium import ConsortiumDeployment, start_consortium

from proxy.consortium.app import create_consortium_app
from proxy.consortium.config import load_consortium

LINK = re.compile(r'<a href="([^"]+)">([^<]+)</a>')


@pytest.fixture(scope="module")
def d(tmp_path_factory) -> Iterator[ConsortiumDeployment]:
    deployment = start_consortium(tmp_path_factory.mktemp("consortium"))
    yield deployment
    deployment.stop()


def test_the_root_lists_the_institutions(d):
    page = httpx.get(d.url + "/")
    assert page.status_code == 200
    assert '<html lang="en">' in page.text and "<h1>Example University System</h1>" in page.text
    assert LINK.findall(page.text) == [("/campus-a/", "Campus A Library"),
                                       ("/campus-b/", "Campus B Libraries")]
    assert "default-src 'none'" in page.headers["content-security-policy"]


@pytest.mark.parametrize("path", ["/campus-c/", "/api/fees", "/receipt.html", "/staff/"])
def test_a_path_that_names_no_institution_gets_the_list_with_404(d, path):
    page = httpx.get(d.url + path)
    assert page.status_code == 404
    assert "There is no library at this address" in page.text
    assert ("/campus-b/", "Campus B Libraries") in LINK.findall(page.text)


def test_the_prefix_alone_goes_to_its_folder(d):
    answer = httpx.get(d.url + "/campus-a?lang=es")
    assert answer.status_code == 308 and answer.headers["location"] == "/campus-a/?lang=es"


def test_each_institution_serves_its_pages_below_its_prefix(d):
    for code, name, accent in (("campus-a", "Campus A Library", "#6a1b9a"),
                               ("campus-b", "Campus B Libraries", "#1d5e3a")):
        page = httpx.get(f"{d.url}/{code}/")
        assert page.status_code == 200
        logo_tag = f'<img class="institution-logo" src="/{code}/consortium/logo" alt=""> ' \
            if code == "campus-a" else ""  # only Campus A has a logo
        assert f'<p class="site-name">{logo_tag}{name}</p>' in page.text
        assert f'<script src="/{code}/api.js" defer></script>' in page.text
        assert 'src="/api.js"' not in page.text and 'href="/style.css"' not in page.text
        assert f'href="/{code}/consortium/institution.css"' in page.text
        style = httpx.get(f"{d.url}/{code}/consortium/institution.css")
        assert style.headers["content-type"].startswith("text/css")
        assert f"--accent: {accent};" in style.text
        assert httpx.get(f"{d.url}/{code}/api.js").status_code == 200
        logo = httpx.get(f"{d.url}/{code}/consortium/logo")
        if code == "campus-a":
            assert logo.headers["content-type"] == "image/svg+xml"
            assert "sandbox" in logo.headers["content-security-policy"]
        else:
            assert "institution-logo" not in page.text and logo.status_code == 404
        receipt = httpx.get(f"{d.url}/{code}/receipt.html").text
        assert f'<p class="print-only site-name-print">{name}</p>' in receipt  # printed too
        assert httpx.get(f"{d.url}/{code}/locales/es.json").status_code == 200


def test_signing_in_stays_below_the_institution(d):
    browser = d.browser()
    answer = browser.get("/campus-a/auth/sso", headers={"X-Remote-User": "mkowalski"})
    assert answer.status_code == 303 and answer.headers["location"] == "/campus-a/"
    assert "Path=/campus-a;" in answer.headers["set-cookie"]
    assert browser.get("/campus-a/api/session").json()["patron"]["id"] == "mkowalski"
    # The browser keeps the cookie for Campus A's pages: at Campus B nobody is signed in.
    assert browser.get("/campus-b/api/session").status_code == 401
    d.sign_in_sso("campus-b", "rgarcia", client=browser)
    assert browser.get("/campus-b/api/session").json()["patron"]["id"] == "rgarcia"
    assert browser.get("/campus-a/api/session").json()["patron"]["id"] == "mkowalski"


def test_errors_redirect_below_the_institution(d):
    answer = httpx.get(d.url + "/campus-b/auth/sso")  # no user header: the page explains
    assert answer.status_code == 303 and answer.headers["location"].startswith("/campus-b/?")


def test_the_server_rendered_hand_off_keeps_its_prefix(d):
    browser = d.sign_in_sso("campus-b", "dokafor")
    created = d.start_payment("campus-b", browser)
    page = browser.get(f"/campus-b/pay/{created['payment']['id']}")
    assert page.status_code == 200
    assert 'href="/campus-b/style.css"' in page.text and 'src="/campus-b/pay.js"' in page.text
    assert created["checkout"]["action"] in page.text


def test_health_answers_for_the_whole_deployment(d):
    assert httpx.get(d.url + "/healthz").json() == {"status": "ok"}
    assert httpx.get(d.url + "/readyz").json()["status"] == "ready"


TOML = """
public_url = "https://pay.example.edu"
secret_keys = "{key}"
database = "{folder}/ledger.sqlite3"
alma_api_url = "https://api-na.hosted.exlibrisgroup.com/almaws/v1"
cashnet_item_code = "LIB-FINE"

[consortium]
name = "Colleges <&> Co"
routing = "{routing}"

[institutions.north]
name = "North <b>College</b>"
host = "pay.north.example.edu"
alma_api_key = "l7xx-north"
cashnet_checkout_url = "https://commerce.cashnet.com/NORTH"
cashnet_postback_token = "{north_token}"

[institutions.south]
name = "South College"
host = "pay.south.example.edu"
alma_api_key = "l7xx-south"
cashnet_checkout_url = "https://commerce.cashnet.com/SOUTH"
cashnet_postback_token = "{south_token}"
"""


def in_process(tmp_path: Path, routing: str):
    path = tmp_path / "consortium.toml"
    path.write_text(TOML.format(key="k" * 40, folder=tmp_path, routing=routing,
                                north_token="n" * 40, south_token="s" * 40), encoding="utf-8")
    consortium = load_consortium({"PATRONPAY_CONFIG": str(path)})
    return create_consortium_app(consortium, run_worker=False)


def get(app, url: str, **headers: str) -> httpx.Response:
    async def call() -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport) as client:
            return await client.get(url, headers=headers)
    return asyncio.run(call())


def test_names_are_escaped_on_the_list_and_on_the_pages(tmp_path):
    app = in_process(tmp_path, "path")
    page = get(app, "https://pay.example.edu/")
    assert "<title>Colleges &lt;&amp;&gt; Co</title>" in page.text
    assert '<a href="/north/">North &lt;b&gt;College&lt;/b&gt;</a>' in page.text
    site = get(app, "https://pay.example.edu/north/")
    assert '<p class="site-name">North &lt;b&gt;College&lt;/b&gt;</p>' in site.text


def test_host_routing_picks_the_institution_by_its_host(tmp_path):
    app = in_process(tmp_path, "host")
    north = get(app, "https://pay.north.example.edu/")
    assert north.status_code == 200
    assert '<p class="site-name">North &lt;b&gt;College&lt;/b&gt;</p>' in north.text
    assert 'src="/api.js"' in north.text  # its own host: no prefix
    south = get(app, "https://pay.south.example.edu:443/api/session")
    assert south.status_code == 401 and "methods" in south.json()
    # A host that names no institution: 404, and no list of the others.
    other = get(app, "https://pay.example.edu/")
    assert other.status_code == 404 and "South" not in other.text
