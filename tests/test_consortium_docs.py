"""The two-institution example of docs/consortium.md is a configuration start-up accepts, and
gives each institution what the page says."""

from __future__ import annotations

import re
from pathlib import Path

from proxy.consortium.config import load_consortium

PAGE = Path(__file__).resolve().parent.parent / "docs" / "consortium.md"
SECRETS = {"secret-keys": "k" * 64, "north-alma-key": "l7xx-north", "south-alma-key":
           "l7xx-south", "north-postback-token": "n" * 43, "south-postback-token": "s" * 43,
           "north-kiosk-keys": f"north-desk={'d' * 40}", "north-smtp-password": "pw",
           "north-logo.svg": "<svg xmlns='http://www.w3.org/2000/svg'/>"}


def test_the_documented_example_loads(tmp_path):
    example = re.search(r"```toml\n(.*?)```", PAGE.read_text(encoding="utf-8"), re.S).group(1)
    for name, value in SECRETS.items():
        (tmp_path / name).write_text(value + "\n", encoding="utf-8")
    text = example.replace("/etc/patronpay/", f"{tmp_path}/").replace(
        "/var/lib/patronpay/", f"{tmp_path}/")
    (tmp_path / "patronpay.toml").write_text(text, encoding="utf-8")
    consortium = load_consortium({"PATRONPAY_CONFIG": str(tmp_path / "patronpay.toml")})
    assert consortium.routing == "path" and consortium.codes == ("north", "south")
    north, south = consortium.institutions
    assert north.settings.public_url == "https://pay.example.edu/north"
    assert north.settings.alma_api_key == "l7xx-north"
    assert north.settings.kiosk_keys == {"north-desk": "d" * 40}
    assert north.settings.item_code_for("OVERDUEFINE") == "NLIB-OVERDUE"
    assert north.settings.database == tmp_path / "ledger-north.sqlite3"
    assert south.settings.auth_methods == ("cas", "alma") and south.settings.cas_url
    assert str(south.settings.min_payment) == "5.00"
    assert south.settings.staff_signin == "cas" and south.settings.staff_users == ("jdoe", "mroe")
    assert north.pay_network_fees and south.pay_network_fees
    assert north.settings.library_name == "North Campus Library"
    assert north.logo == tmp_path / "north-logo.svg" and south.logo is None
