"""Kiosks below a consortium's prefix (docs/consortium.md#routing), over loopback: the real
kiosk agent, configured with its institution's prefixed URL (`<public URL>/campus-a`) and that
institution's key, scans a card and shows that institution's fees, read from its own Alma; the
same key pointed at the other institution is refused there (the signature covers the prefixed
path, and the other's kiosk_keys do not hold it)."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from support.consortium import ConsortiumDeployment, start_consortium
from support.kiosk import MARIA

from kiosk.agent import create_kiosk_app
from kiosk.settings import KioskSettings
from patronpay.serving import ServerThread, bind

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
        code: {"kiosk_keys": f"{kiosk_id}={secret}"}
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
