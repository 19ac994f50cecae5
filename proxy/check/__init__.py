"""`patronpay check`: whether this installation can take money, from the same settings as
`serve`. Every check reads; none pays, writes to Alma or signs anyone in.

`run_checks` returns one `Result` per check, in the order a go-live works through them: this
machine, Alma, CashNet, sign-in, kiosks.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Mapping

from proxy.check.alma import check_alma
from proxy.check.cashnet import (
    check_allowed_senders,
    check_checkout_url,
    check_item_codes,
    check_token,
)
from proxy.check.installation import check_ledger, check_settings, check_site
from proxy.check.kiosks import check_kiosks
from proxy.check.readonly import ReadOnlyTransport, client
from proxy.check.report import Result, passed, render_json, render_text
from proxy.check.signin import check_sign_in
from proxy.config import Settings

__all__ = ["Result", "passed", "render_json", "render_text", "run_checks"]


def run_checks(environ: Mapping[str, str] | None = None) -> list[Result]:
    """Every check, reading the settings from `environ` (default: this process's)."""
    environ = os.environ if environ is None else environ
    settings, result = check_settings(environ)
    if settings is None:
        return [result]  # nothing else can be judged without the settings
    return [result, check_ledger(settings), check_site(settings),
            *asyncio.run(_remote_checks(settings))]


async def _remote_checks(settings: Settings) -> list[Result]:
    """Alma has a transport of its own: its answers' `Date` headers are the clock check's."""
    async with client(ReadOnlyTransport()) as http:
        alma = await check_alma(settings, ReadOnlyTransport(), http)
        return [
            *alma.results,
            await check_checkout_url(settings, http),
            check_token(settings),
            check_allowed_senders(settings),
            *check_item_codes(settings, alma.fees),
            *await check_sign_in(settings, http),
            *check_kiosks(settings),
        ]
