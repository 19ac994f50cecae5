"""Consortium configuration files for the tests: the shared defaults and two institutions'
tables, written as one PATRONPAY_CONFIG file, and the one line a refused configuration gives.
Shared by the configuration, clash and ledger-owner tests (a test module importing another
one fails under `pytest`, which does not put the repository root on sys.path)."""

from __future__ import annotations

from pathlib import Path

import pytest

from proxy.config import ConfigError
from proxy.consortium.config import load_consortium

DEFAULTS = """
public_url = "https://pay.example.edu"
secret_keys = "{key}"
database = "{folder}/ledger.sqlite3"
alma_api_url = "https://api-na.hosted.exlibrisgroup.com/almaws/v1"
cashnet_item_code = "LIB-FINE"
"""

CAMPUS_A = """
[institutions.campus-a]
name = "Campus A Library"
alma_api_key = "l7xx-campus-a"
cashnet_checkout_url = "https://commerce.cashnet.com/AFINES"
cashnet_postback_token = "{a_token}"
cashnet_item_codes = "OVERDUEFINE=A-OVERDUE"
min_payment = "5.00"
accent = "#6a1b9a"
"""

CAMPUS_B = """
[institutions.campus-b]
name = "Campus B Libraries"
alma_api_key = "l7xx-campus-b"
cashnet_checkout_url = "https://commerce.cashnet.com/BFINES"
cashnet_postback_token = "{b_token}"
currency = "CAD"
auth_methods = "alma"
"""

VALUES = {"key": "k" * 40, "a_token": "a" * 40, "b_token": "b" * 40}


def write(tmp_path: Path, *parts: str, **values: str) -> dict[str, str]:
    text = "\n".join(parts).format(folder=tmp_path, **(VALUES | values))
    path = tmp_path / "patronpay.toml"
    path.write_text(text, encoding="utf-8")
    return {"PATRONPAY_CONFIG": str(path)}


def refused(environ: dict[str, str]) -> str:
    with pytest.raises(ConfigError) as caught:
        load_consortium(environ)
    message = str(caught.value)
    assert "\n" not in message
    return message
