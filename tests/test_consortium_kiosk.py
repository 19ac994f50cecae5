"""Kiosks below a consortium's prefix (docs/consortium.md#routing), over loopback: the real
kiosk agent, configured with its institution's prefixed URL (`<public URL>/campus-a`) and that
institution's key, scans a card and shows that institution's fees, read from its own Alma; the
same key pointed at the other institution is refused there (the signature covers the prefixed
path, and the other's kiosk_keys do not hold it)."""

from __future__ import annotations

import html
from collections.abc import Iterator

import httpx
import pytest
from support.consortium import ConsortiumDeployment, start_consortium
from support.kiosk import MARIA
from support.waiting import wait_for

from kiosk.agent import create_kiosk_app
from kiosk.institution_page import (
    HELP_MAX_CHARS,
    PageText,
    parse_page,
    rewrite,
    site_languages,
)
from kiosk.settings import KioskSettings, packaged_site
from patronpay.consortium_demo import HELP_TEXTS
from patronpay.serving import ServerThread, bind

SITE_DIR = packaged_site()
KEYS = {"campus-a": ("a-kiosk", "campus-a-kiosk-secret-0123456789abcdef"),
        "campus-b": ("b-kiosk", "campus-b-kiosk-secret-0123456789abcdef")}
# Maria's fees at each institution (the consortium sandbox's two Almas).
MARIA_FEES = {"campus-a": {"7730018830004146", "7730012450004146", "7730020010004146"},
              "campus-b": {"8840011110005257"}}


class Agent:
    """A kiosk agent on its own loopback port, and the page's same-origin fetch()."""

    def __init__(self, tmp_path, proxy_url: str, kiosk_id: str, secret: str) -> None:
        sock = bind("127.0.0.1", 0)
        settings = KioskSettings(kiosk_id=kiosk_id, kiosk_secret=secret, proxy_url=proxy_url,
                                 reset_file=str(tmp_path / f"reset-{sock.getsockname()[1]}"))
        self.server = ServerThread(create_kiosk_app(settings), sock=sock).start()
        self.page = httpx.Client(base_url=self.server.url, timeout=15.0,
                                 headers={"Origin": self.server.url})

    def scan(self, data: str) -> dict:
        answer = self.page.post("/api/read", json={"source": "wedge", "data": data})
        assert answer.status_code == 200, answer.text
        return answer.json()

    def fee_ids(self) -> set[str]:
        session = self.page.get("/api/session").json()["session"]
        fees = self.page.get("/api/fees", params={"handle": session["handle"]})
        assert fees.status_code == 200, fees.text
        return {fee["id"] for fee in fees.json()["fees"]}

    def stop(self) -> None:
        self.page.close()
        self.server.stop()


@pytest.fixture(scope="module")
def d(tmp_path_factory) -> Iterator[ConsortiumDeployment]:
    deployment = start_consortium(tmp_path_factory.mktemp("kiosks"), tables={
        code: {"kiosk_keys": f"{kiosk_id}={secret}", **PAGE_TABLES[code]}
        for code, (kiosk_id, secret) in KEYS.items()})
    yield deployment
    deployment.stop()


@pytest.fixture
def agent(d, tmp_path) -> Iterator:
    started: list[Agent] = []

    def start(code: str, key_of: str) -> Agent:
        started.append(Agent(tmp_path, d.base(code), *KEYS[key_of]))
        return started[-1]

    yield start
    for running in started:
        running.stop()


@pytest.mark.parametrize("code", ["campus-a", "campus-b"])
def test_a_kiosk_below_its_institutions_prefix_shows_that_institutions_fees(d, agent, code):
    other = "campus-b" if code == "campus-a" else "campus-a"
    d.alma(other).clear_requests()
    kiosk = agent(code, code)
    assert kiosk.scan(MARIA) == {"result": "accepted"}
    assert kiosk.fee_ids() == MARIA_FEES[code]
    assert d.alma_calls(code, method="GET")  # read from its own Alma
    assert not d.alma_calls(other)  # and nothing from the other's


def test_a_kiosks_key_is_refused_at_the_other_institution(d, agent):
    before = len(d.alma_calls("campus-b"))
    kiosk = agent("campus-b", "campus-a")  # Campus A's key, Campus B's URL
    assert kiosk.scan(MARIA) == {"result": "refused", "reason": "kiosk_unauthorized"}
    assert kiosk.page.get("/api/session").json()["session"] is None
    assert len(d.alma_calls("campus-b")) == before  # refused before Alma was asked


# -- what the agent hands the kiosk page: its institution's help text and languages ------------

PAGE_TABLES = {
    # Campus A offers Spanish first, and a help text in each, one with markup-like characters.
    "campus-a": {"languages": ["es", "en"],
                 "help_text": {"en": "Fines? Ask at <b>Desk 1</b> & call 555-0100.",
                               "es": "¿Multas? Pregunte en el mostrador 1."}},
    # Campus B: English only, one text for all.
    "campus-b": {"languages": ["en"]},
}


def kiosk_page(kiosk: Agent, path: str = "/kiosk/", wanted: str = "data-languages") -> str:
    """The page as the agent sends it, once it has read its institution's page text (the
    agent reads it when it starts, beside everything else)."""
    return wait_for(lambda: (lambda text: text if wanted in text else "")(
        kiosk.page.get(path).text), f"{wanted} in {path}")


def test_the_proxy_tells_each_institutions_help_text_and_languages(d):
    with httpx.Client(timeout=15.0) as client:
        a = client.get(d.base("campus-a") + "/consortium/page.json")
        b = client.get(d.base("campus-b") + "/consortium/page.json")
    assert a.status_code == 200 and a.headers["content-type"] == "application/json"
    assert a.json() == {"languages": ["es", "en"], "help_text": [
        {"language": "es", "text": "¿Multas? Pregunte en el mostrador 1."},
        {"language": "en", "text": "Fines? Ask at <b>Desk 1</b> & call 555-0100."}]}
    assert b.json() == {"languages": ["en"], "help_text": [
        {"language": "", "text": HELP_TEXTS["campus-b"]}]}


def test_a_kiosk_page_offers_its_institutions_languages_and_help_text(d, agent):
    page = kiosk_page(agent("campus-a", "campus-a"))
    assert '<html lang="en" data-languages="es en"' in page
    # Under the idle screen's lead and the fees screen's, as text: the markup is escaped.
    english = ('<p class="institution-help" lang="en">Fines? Ask at &lt;b&gt;Desk 1&lt;/b&gt; '
               "&amp; call 555-0100.</p>")
    spanish = '<p class="institution-help" lang="es">¿Multas? Pregunte en el mostrador 1.</p>'
    assert page.count(english) == 2 and page.count(spanish) == 2
    assert "<b>" not in page
    # The return page (back from CashNet) offers the same languages.
    assert 'data-languages="es en"' in kiosk_page(agent("campus-a", "campus-a"), "/kiosk/return")


def test_a_one_language_institutions_kiosk_page(d, agent):
    page = kiosk_page(agent("campus-b", "campus-b"))
    assert '<html lang="en" data-languages="en"' in page
    # One text for all its languages: no lang of its own, so it shows whatever the page's.
    assert page.count(f'<p class="institution-help">{html.escape(HELP_TEXTS["campus-b"])}</p>') == 2


def test_the_kiosk_stylesheet_shows_one_help_text_for_each_language_of_the_site():
    css = (SITE_DIR / "kiosk" / "kiosk.css").read_text(encoding="utf-8")
    for code in site_languages(SITE_DIR):
        assert (f'html[lang="{code}"] .institution-help[lang]:not([lang="{code}"]) '
                "{ display: none; }") in css


def test_outside_a_consortium_the_kiosk_page_is_the_sites_own(kiosk):
    k = kiosk()
    institution = k.app.state.institution
    wait_for(lambda: institution.answered, "the agent to ask the proxy")
    assert institution.current == PageText()  # the proxy had no page text: 404
    sent = httpx.get(k.url + "/kiosk/", timeout=15.0)
    assert sent.status_code == 200 and sent.headers["content-type"].startswith("text/html")
    assert sent.content == (SITE_DIR / "kiosk" / "index.html").read_bytes()


def test_the_agent_takes_only_what_makes_sense_of_the_proxys_answer():
    languages = ("en", "es")
    assert parse_page([], languages) == PageText()
    assert parse_page({"languages": "es", "help_text": "hi"}, languages) == PageText()
    page = parse_page({"languages": ["fr", "es", "es", 7], "help_text": [
        {"language": "es", "text": "Hola\u202e\x1b[31m  mundo\n"},
        {"language": "en", "text": "Not offered here"},  # English is not offered
        {"language": "es", "text": "A second Spanish text"},
        "junk", {"language": "", "text": 5},
    ]}, languages)
    assert page == PageText(("es",), (("es", "Hola [31m mundo"),))
    long = parse_page({"help_text": [{"language": "", "text": "x" * 5000}]}, languages)
    assert long.help_text == (("", "x" * HELP_MAX_CHARS),)
    assert rewrite(b'<html lang="en">', PageText(("es",), ())) == \
        b'<html lang="en" data-languages="es">'
