"""Settings: environment, TOML, *_FILE secrets, one clear line per mistake."""

import re
from decimal import Decimal
from pathlib import Path

import pytest

from proxy.config import (
    ConfigError,
    env_name,
    known_environment_names,
    load_settings,
    reference_table,
    setting_fields,
)

BASE = {
    "PATRONPAY_PUBLIC_URL": "https://pay.library.example.edu/",
    "PATRONPAY_SECRET_KEYS": "k" * 32 + ",old" + "o" * 29,
    "PATRONPAY_ALMA_API_URL": "https://api-na.hosted.exlibrisgroup.com/almaws/v1",
    "PATRONPAY_ALMA_API_KEY": "l7xx-real-key",
    "PATRONPAY_CASHNET_CHECKOUT_URL": "https://commerce.cashnet.com/LIBFINES",
    "PATRONPAY_CASHNET_ITEM_CODE": "LIB-FINE",
    "PATRONPAY_CASHNET_POSTBACK_TOKEN": "t" * 40,
}


def test_minimal_environment_and_defaults():
    settings = load_settings(BASE)
    assert settings.public_url == "https://pay.library.example.edu"
    assert settings.secret_keys == ("k" * 32, "old" + "o" * 29)
    assert settings.min_payment == Decimal("1.00")
    assert settings.cashnet_ref_type == "PAYMENT_ID"
    assert settings.auth_methods == ("sso",)
    assert settings.alma_payment_method == "ONLINE"
    assert settings.is_https() and settings.public_origin() == "https://pay.library.example.edu"


def test_item_codes_map_fee_types():
    settings = load_settings(BASE | {"PATRONPAY_CASHNET_ITEM_CODES": "overduefine=LIB-OVERDUE, LOSTITEMREPLACEMENTFEE=LIB-LOST"})
    assert settings.item_code_for("OVERDUEFINE") == "LIB-OVERDUE"
    assert settings.item_code_for("LOCKERKEY") == "LIB-FINE"


@pytest.mark.parametrize("name", ["PATRONPAY_PUBLIC_URL", "PATRONPAY_ALMA_API_KEY",
                                  "PATRONPAY_CASHNET_POSTBACK_TOKEN", "PATRONPAY_SECRET_KEYS"])
def test_missing_required_setting_is_named(name):
    env = dict(BASE)
    del env[name]
    with pytest.raises(ConfigError, match=f"^{name} is required"):
        load_settings(env)


@pytest.mark.parametrize("name, value, fragment", [
    ("PATRONPAY_PUBLIC_URL", "http://pay.example.edu", "must use https"),
    ("PATRONPAY_MIN_PAYMENT", "1.005", "at most two decimals"),
    ("PATRONPAY_AUTH_METHODS", "sso,ldap", "choose from"),
    ("PATRONPAY_TRUSTED_PROXIES", "10.0.0.0/33", "not valid"),
    ("PATRONPAY_CASHNET_ITEM_CODES", "OVERDUEFINE", "KEY=VALUE"),
    ("PATRONPAY_ALMA_PAYMENT_METHOD", "CHEQUE", "choose from"),
    ("PATRONPAY_SESSION_IDLE_MINUTES", "-3", "positive"),
])
def test_malformed_setting_is_named_with_its_value(name, value, fragment):
    with pytest.raises(ConfigError) as caught:
        load_settings(BASE | {name: value})
    assert str(caught.value).startswith(f"{name} is not valid")
    assert fragment in str(caught.value)
    assert "\n" not in str(caught.value)


def test_secrets_are_never_echoed_in_errors():
    with pytest.raises(ConfigError) as caught:
        load_settings(BASE | {"PATRONPAY_CASHNET_POSTBACK_TOKEN": "short-secret"})
    assert "short-secret" not in str(caught.value)
    with pytest.raises(ConfigError) as caught:
        load_settings(BASE | {"PATRONPAY_SECRET_KEYS": "tooshortkey"})
    assert "tooshortkey" not in str(caught.value)


def test_a_malformed_kiosk_key_list_never_prints_a_secret():
    secret = "Sup3rS3cret-" + "x" * 30
    with pytest.raises(ConfigError) as caught:
        load_settings(BASE | {"PATRONPAY_KIOSK_KEYS": f"lib1={'y' * 40},kiosk2:{secret}"})
    assert str(caught.value) == ("PATRONPAY_KIOSK_KEYS is not valid: expected KEY=VALUE pairs "
                                 "separated by commas; item 2 is not one")
    assert "Sup3r" not in str(caught.value) and "yyyy" not in str(caught.value)


def test_loopback_http_is_allowed_for_the_sandbox():
    settings = load_settings(BASE | {"PATRONPAY_CASHNET_CHECKOUT_URL": "http://127.0.0.1:8765/cashnet/X"})
    assert settings.cashnet_checkout_url == "http://127.0.0.1:8765/cashnet/X"


def test_toml_file_and_environment_wins(tmp_path: Path):
    config = tmp_path / "patronpay.toml"
    config.write_text(
        'min_payment = "5.00"\n'
        'auth_methods = ["sso", "alma"]\n'
        'cashnet_item_codes = { OVERDUEFINE = "LIB-OVERDUE" }\n'
        'session_idle_minutes = 20\n'
        'reallocate_remainder = true\n')
    env = BASE | {"PATRONPAY_CONFIG": str(config), "PATRONPAY_SESSION_IDLE_MINUTES": "10"}
    settings = load_settings(env)
    assert settings.min_payment == Decimal("5.00")
    assert settings.auth_methods == ("sso", "alma")
    assert settings.item_code_for("overduefine") == "LIB-OVERDUE"
    assert settings.session_idle_minutes == 10
    assert settings.reallocate_remainder is True


def test_unknown_toml_key_and_bad_toml(tmp_path: Path):
    config = tmp_path / "p.toml"
    config.write_text('min_paymnet = "5.00"\n')
    with pytest.raises(ConfigError, match="unknown setting: min_paymnet"):
        load_settings(BASE | {"PATRONPAY_CONFIG": str(config)})
    config.write_text("not toml = = =")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_settings(BASE | {"PATRONPAY_CONFIG": str(config)})


def test_secret_from_file(tmp_path: Path):
    key_file = tmp_path / "alma-key"
    key_file.write_text("l7xx-from-credential\n")
    env = {k: v for k, v in BASE.items() if k != "PATRONPAY_ALMA_API_KEY"}
    settings = load_settings(env | {"PATRONPAY_ALMA_API_KEY_FILE": str(key_file)})
    assert settings.alma_api_key == "l7xx-from-credential"
    with pytest.raises(ConfigError, match="PATRONPAY_ALMA_API_KEY_FILE cannot be read"):
        load_settings(env | {"PATRONPAY_ALMA_API_KEY_FILE": str(tmp_path / "missing")})


def test_configuration_page_documents_every_setting():
    page = (Path(__file__).resolve().parent.parent / "docs" / "configuration.md").read_text()
    documented = set(re.findall(r"`(PATRONPAY_[A-Z0-9_]+)`", page))
    missing = [env_name(f.name) for f in setting_fields() if env_name(f.name) not in documented]
    assert missing == []


def test_configuration_page_table_is_current():
    """docs/configuration.md carries the generated table. Regenerate with: python -m proxy.config"""
    page = (Path(__file__).resolve().parent.parent / "docs" / "configuration.md").read_text()
    assert reference_table() in page


def test_an_unknown_environment_name_stops_start_up_with_a_suggestion():
    with pytest.raises(ConfigError) as caught:
        load_settings(BASE | {"PATRONPAY_CASHNET_POSTBACK_TOKN": "s3cret-" + "x" * 40})
    assert str(caught.value) == ("PATRONPAY_CASHNET_POSTBACK_TOKN is not a patronpay setting "
                                 "(did you mean PATRONPAY_CASHNET_POSTBACK_TOKEN?)")
    with pytest.raises(ConfigError, match=r"^PATRONPAY_COLOUR is not a patronpay setting$"):
        load_settings(BASE | {"PATRONPAY_COLOUR": "blue"})


def test_names_of_the_kiosk_agent_and_file_twins_are_not_refused():
    """One environment may serve the proxy and the kiosk agent (the demo does)."""
    from kiosk.settings import HELP, PREFIX

    kiosk = {PREFIX + suffix: "anything" for suffix in HELP}
    twins = {name + "_FILE": "/nonexistent" for name in kiosk}
    assert load_settings(BASE | kiosk | twins | {"OTHER_PROGRAM_SETTING": "x"}).public_url
    assert known_environment_names() >= {"PATRONPAY_CONFIG", "PATRONPAY_ALMA_API_KEY_FILE"}


def test_shipped_examples_and_code_use_only_known_names():
    root = Path(__file__).resolve().parent.parent
    files = [path for folder in ("systemd", "bench", "patronpay", "sandbox", "kiosk", "tools",
                                 "proxy", ".ci")
             for path in (root / folder).rglob("*") if path.is_file()
             and path.suffix not in (".pyc", ".png", ".jpg")]
    names = {name for path in files
             for name in re.findall(r"PATRONPAY_[A-Z0-9_]*[A-Z0-9](?![A-Z0-9_*])",
                                    path.read_text(errors="ignore"))}
    assert sorted(names - known_environment_names()) == []
