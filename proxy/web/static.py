"""The static site, served as web files only.

The site folder is also a Python package (`patronpay_site`, so that a wheel ships it), which puts
an `__init__.py` and, once installed, a `__pycache__/` beside the pages. Neither is part of the
site: only the file types a page needs are served, and anything else answers 404 as if absent.
"""

from __future__ import annotations

from pathlib import PurePosixPath

from starlette.exceptions import HTTPException
from starlette.responses import Response
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

WEB_SUFFIXES = frozenset({".html", ".js", ".css", ".json", ".png", ".svg", ".ico", ".webp",
                          ".woff2", ".txt"})


def is_web_file(path: str) -> bool:
    """A path the site may serve: a web file type, outside any `__pycache__` folder. Paths that
    name a folder (the index page) are left to StaticFiles."""
    parts = PurePosixPath(path).parts
    if "__pycache__" in parts:
        return False
    suffix = PurePosixPath(path).suffix.lower()
    return suffix == "" or suffix in WEB_SUFFIXES


class SiteFiles(StaticFiles):
    """StaticFiles limited to web files."""

    async def get_response(self, path: str, scope: Scope) -> Response:
        if not is_web_file(path):
            raise HTTPException(status_code=404)
        return await super().get_response(path, scope)
