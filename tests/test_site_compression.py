"""The site's text files go gzipped to a browser that accepts it, and come back as 304 when the
browser revalidates its copy (docs/performance.md#the-fees-page-in-the-browser); a client that
does not ask for gzip gets the file as written, and API answers are never compressed."""

from __future__ import annotations

import gzip
from pathlib import Path

SITE = Path(__file__).resolve().parent.parent / "site"


def test_text_files_are_gzipped_and_revalidate(deploy):
    d = deploy()
    browser = d.browser()
    wanted = {"Accept-Encoding": "gzip"}
    for path, file in (("/app.js", "app.js"), ("/style.css", "style.css"),
                       ("/locales/en.json", "locales/en.json"), ("/", "index.html")):
        raw = browser.stream("GET", path, headers=wanted)
        with raw as response:
            body = b"".join(response.iter_raw())
        assert response.status_code == 200
        assert response.headers["content-encoding"] == "gzip"
        assert response.headers["vary"] == "Accept-Encoding"
        assert int(response.headers["content-length"]) == len(body)
        assert "accept-ranges" not in response.headers
        written = (SITE / file).read_bytes()
        assert gzip.decompress(body) == written
        assert len(body) < len(written) / 2
        tag = response.headers["etag"]
        again = browser.get(path, headers=wanted | {"If-None-Match": tag})
        assert again.status_code == 304


def test_no_gzip_unless_asked_and_never_for_the_api(deploy):
    d = deploy()
    browser = d.browser()
    plain = browser.get("/app.js", headers={"Accept-Encoding": "identity"})
    assert plain.status_code == 200
    assert "content-encoding" not in plain.headers
    assert plain.content == (SITE / "app.js").read_bytes()
    api = browser.get("/api/session", headers={"Accept-Encoding": "gzip"})
    assert "content-encoding" not in api.headers
