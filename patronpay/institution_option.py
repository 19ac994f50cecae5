"""`--institution` for the commands that work on one institution's ledger, Alma and settings
(docs/consortium.md#staff-commands): needed when the configuration holds several
`[institutions.*]` tables, and passed to the settings as PATRONPAY_INSTITUTION."""

from __future__ import annotations

import argparse
import contextlib
import os
from collections.abc import Iterable, Iterator

ENVIRONMENT_NAME = "PATRONPAY_INSTITUTION"


def add_institution_options(commands: argparse._SubParsersAction, skip: Iterable[str]) -> None:
    """Give every command below `commands` (and their own actions) `--institution`, except
    those in `skip`, which serve or stand for a whole deployment."""
    skipped = set(skip)
    for name, parser in commands.choices.items():
        if name not in skipped:
            _add(parser)


def _add(parser: argparse.ArgumentParser) -> None:
    nested = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    if nested:
        for child in nested[0].choices.values():
            _add(child)
        return
    parser.add_argument("--institution", metavar="CODE",
                        help="the institution, by its code in [institutions.<code>] (needed "
                             "when the configuration has several)")


@contextlib.contextmanager
def chosen_institution(code: str | None) -> Iterator[None]:
    """PATRONPAY_INSTITUTION set to `code` while the command runs (left alone without one)."""
    if not code:
        yield
        return
    before = os.environ.get(ENVIRONMENT_NAME)
    os.environ[ENVIRONMENT_NAME] = code
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(ENVIRONMENT_NAME, None)
        else:
            os.environ[ENVIRONMENT_NAME] = before
