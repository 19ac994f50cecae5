"""Where the static site (web pages, kiosk pages, locales) is, for the proxy and the kiosk agent.

The repository's `site/` folder is installed as the package `patronpay_site` (setup.py maps
the name onto the folder: `site` itself would shadow the standard library's `site`). An
editable install finds it in the working tree, a wheel in site-packages; either way
`importlib.resources` hands back a real folder, which is what Starlette's StaticFiles serves.
"""

from __future__ import annotations

import importlib.resources
import os
from collections.abc import Iterable
from pathlib import Path

PACKAGE = "patronpay_site"
# What each server needs to find in a site folder before it serves it.
WEB_PAGES = ("index.html", "locales/en.json")
KIOSK_PAGES = ("kiosk/index.html", "kiosk/return.html", "locales/en.json")


class SiteFilesError(Exception):
    """The site folder is missing or unreadable; the message says which and why."""


def packaged_site() -> Path:
    """The site folder installed with patronpay (the working tree's `site/` in an editable
    install). Raises SiteFilesError when the installation has none on disk."""
    try:
        folder = importlib.resources.files(PACKAGE)
    except ModuleNotFoundError:
        raise SiteFilesError(f"the package {PACKAGE} is not installed") from None
    if not isinstance(folder, Path):
        # e.g. installed inside a zip file: StaticFiles needs a real folder.
        raise SiteFilesError(f"the package {PACKAGE} is not a folder on disk ({folder})")
    return folder


def checked_site(folder: Path, needs: Iterable[str]) -> Path:
    """`folder`, once it is a folder this process can read that holds every file in `needs`
    (paths relative to it). Raises SiteFilesError naming the first problem."""
    shown = repr(str(folder))
    try:
        os.listdir(folder)
    except FileNotFoundError:
        raise SiteFilesError(f"there is no folder {shown}") from None
    except NotADirectoryError:
        raise SiteFilesError(f"{shown} is not a folder") from None
    except OSError as exc:
        raise SiteFilesError(f"the folder {shown} cannot be read: {exc.strerror}") from None
    for name in needs:
        try:
            with (folder / name).open("rb"):
                pass
        except FileNotFoundError:
            raise SiteFilesError(f"{shown} has no {name}: it is not a patronpay site "
                                 "folder") from None
        except OSError as exc:
            raise SiteFilesError(f"{name} in {shown} cannot be read: {exc.strerror}") from None
    return folder
