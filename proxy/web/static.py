"""The static site, served as web files only.

The site folder is also a Python package (`patronpay_site`, so that a wheel ships it), which puts
an `__init__.py` and, once installed, a `__pycache__/` beside the pages. Neither is part of the
site: only the file types a page needs are served, and anything else answers 404 as if absent.

Text files go gzipped to a browser that accepts it: the fees page's files are about 90 KB as
written and under 30 KB compressed (docs/performance.md#the-fees-page-in-the-browser). Each
file is compressed once per version (path, size, modification time) and kept in memory, so a
page view costs no compression and no file read; API answers are not compressed (their CPU is
the fees page's own cost, and they are small).
"""

from __future__ import annotations

import gzip
from pathlib import Path, PurePosixPath

from starlette.datastructures import Headers, MutableHeaders
from starlette.exceptions import HTTPException
from starlette.responses import FileResponse, Response
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

WEB_SUFFIXES = frozenset({".html", ".js", ".css", ".json", ".png", ".svg", ".ico", ".webp",
                          ".woff2", ".txt"})
COMPRESSED_SUFFIXES = frozenset({".html", ".js", ".css", ".json", ".svg", ".txt"})
MAX_COMPRESSED_FILE = 1024 * 1024  # bigger files are sent as they are
MAX_KEPT_FILES = 512  # a site has a few dozen; a bound all the same


def is_web_file(path: str) -> bool:
    """A path the site may serve: a web file type, outside any `__pycache__` folder. Paths that
    name a folder (the index page) are left to StaticFiles."""
    parts = PurePosixPath(path).parts
    if "__pycache__" in parts:
        return False
    suffix = PurePosixPath(path).suffix.lower()
    return suffix == "" or suffix in WEB_SUFFIXES


def accepts_gzip(scope: Scope) -> bool:
    return scope["method"] == "GET" and \
        "gzip" in Headers(scope=scope).get("accept-encoding", "").lower()


class SiteFiles(StaticFiles):
    """StaticFiles limited to web files, text files gzipped for browsers that take it."""

    def __init__(self, *args, **kwargs) -> None:  # noqa: ANN002, ANN003 - StaticFiles' own
        super().__init__(*args, **kwargs)
        self._gzipped: dict[tuple[str, int, int], bytes] = {}

    async def get_response(self, path: str, scope: Scope) -> Response:
        if not is_web_file(path):
            raise HTTPException(status_code=404)
        response = await super().get_response(path, scope)
        if isinstance(response, FileResponse) and response.status_code == 200 and \
                accepts_gzip(scope):
            return self._compressed(response) or response
        return response

    def _compressed(self, response: FileResponse) -> Response | None:
        """The same answer with the file's gzipped bytes, or None to send it as it is."""
        stat = response.stat_result
        if stat is None or stat.st_size > MAX_COMPRESSED_FILE or \
                Path(response.path).suffix.lower() not in COMPRESSED_SUFFIXES:
            return None
        key = (str(response.path), stat.st_size, stat.st_mtime_ns)
        body = self._gzipped.get(key)
        if body is None:
            body = gzip.compress(Path(response.path).read_bytes(), compresslevel=9, mtime=0)
            if len(self._gzipped) >= MAX_KEPT_FILES:
                self._gzipped.clear()
            self._gzipped[key] = body
        compressed = Response(body, status_code=200)
        # No byte ranges of the compressed bytes: a Range header gets the whole answer.
        headers = MutableHeaders(raw=[(name, value) for name, value in response.raw_headers
                                      if name not in (b"content-length", b"accept-ranges")])
        headers["content-encoding"] = "gzip"
        headers["vary"] = "Accept-Encoding"
        # Another representation of the file: a weak tag of the same value, which StaticFiles
        # (it drops "W/" when it compares) still answers with 304 Not Modified.
        if "etag" in headers and not headers["etag"].startswith("W/"):
            headers["etag"] = "W/" + headers["etag"]
        compressed.raw_headers = headers.raw + [
            (b"content-length", str(len(body)).encode("latin-1"))]
        return compressed
