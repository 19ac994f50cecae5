"""The site's languages: every locale file complete and consistent with English, every error
code of the web flow translatable, and the server-rendered hand-off page in the patron's
language (proxy/i18n.py)."""

import json
import re
from decimal import Decimal
from pathlib import Path

import pytest

from proxy.i18n import accepted_languages, available_languages, choose_language, translator
from proxy.web.errors import _DEFAULT_CODES

ROOT = Path(__file__).resolve().parent.parent
LOCALES = ROOT / "site" / "locales"
# Where the web flow's error codes come from.
WEB_FLOW_SOURCES = ["proxy/web/api.py", "proxy/web/auth.py", "proxy/web/cashnet.py",
                    "proxy/web/common.py", "proxy/web/errors.py", "proxy/web/security.py",
                    "proxy/web/patron_payments.py",
                    "proxy/allocation.py",
                    *sorted(str(p.relative_to(ROOT)) for p in (ROOT / "proxy" / "signin").glob("*.py"))]
CODE_PATTERNS = [
    r'ApiError\(\s*\d+,\s*"(\w+)"',
    r'PaymentRequestError\(\s*"(\w+)"',
    r'_send_error\(\s*send,\s*\d+,\s*"(\w+)"',
    r'error_response\(\s*\d+,\s*"(\w+)"',
    r'\{"error":\s*"(\w+)"\}',
]


def load(lang: str) -> dict[str, str]:
    return json.loads((LOCALES / f"{lang}.json").read_text(encoding="utf-8"))


def placeholders(value: str) -> set[str]:
    return set(re.findall(r"\{(\w+)\}", value))


LANGS = sorted(p.stem for p in LOCALES.glob("*.json"))


def test_english_and_spanish_are_there():
    assert LANGS == ["en", "es"]
    assert available_languages(LOCALES) == ["en", "es"]


@pytest.mark.parametrize("lang", LANGS)
def test_locale_has_exactly_the_english_keys_in_the_same_order(lang):
    # The same order keeps the files side by side for translators and reviewers.
    assert list(load(lang)) == list(load("en"))


@pytest.mark.parametrize("lang", LANGS)
def test_no_empty_strings_and_placeholders_match(lang):
    english, strings = load("en"), load(lang)
    for key in strings:
        assert isinstance(strings[key], str) and strings[key].strip(), key
        assert placeholders(strings[key]) == placeholders(english[key]), key


@pytest.mark.parametrize("lang", LANGS)
def test_language_is_named_in_itself_with_its_intl_locale(lang):
    strings = load(lang)
    assert strings["lang.intl"].split("-")[0] == lang
    assert {"en": "English", "es": "Español"}[lang] == strings["lang.name"]


def test_the_switch_offers_exactly_the_locale_files():
    script = (ROOT / "site" / "i18n.js").read_text(encoding="utf-8")
    offered = dict(re.findall(r'(\w+): "([^"]+)"', re.search(
        r"const LANGUAGES = \{([^}]*)\}", script).group(1)))
    assert offered == {lang: load(lang)["lang.name"] for lang in LANGS}


def web_flow_error_codes() -> set[str]:
    codes = set(_DEFAULT_CODES.values()) | {"server_error", "error"}
    for source in WEB_FLOW_SOURCES:
        body = (ROOT / source).read_text(encoding="utf-8")
        for pattern in CODE_PATTERNS:
            codes |= set(re.findall(pattern, body))
        for call in re.findall(r"redirect_with_error\(([^)]*)\)", body):  # /?error=<code>
            codes |= set(re.findall(r'"([a-z_]+)"', call))
    return codes


def test_the_scan_finds_the_codes_we_know():
    codes = web_flow_error_codes()
    assert {"invalid_credentials", "amount_too_large", "bad_origin", "body_too_large",
            "not_signed_in", "unknown_payment", "alma_unavailable", "too_many_attempts",
            "account_not_found", "nothing_to_pay", "bad_csrf_token", "cas_failed"} <= codes


@pytest.mark.parametrize("lang", LANGS)
def test_every_web_flow_error_code_has_a_message(lang):
    strings = load(lang)
    missing = sorted(code for code in web_flow_error_codes() if f"error.{code}" not in strings)
    assert missing == []


def test_markup_keys_exist():
    english = load("en")
    for page in ("index.html", "receipt.html", "kiosk/index.html", "kiosk/return.html"):
        markup = (ROOT / "site" / page).read_text(encoding="utf-8")
        keys = re.findall(r'data-i18n="([\w.]+)"', markup)
        keys += re.findall(r":([\w.]+)\"", " ".join(re.findall(r'data-i18n-attr="[^"]+"', markup)))
        assert keys and [k for k in keys if k not in english] == [], page
    template = (ROOT / "proxy" / "templates" / "pay.html").read_text(encoding="utf-8")
    keys = re.findall(r"t\(['\"]([\w.]+)['\"]", template)
    assert keys and [k for k in keys if k not in english] == []


@pytest.mark.parametrize(("header", "expected"), [
    ("es-MX,es;q=0.9,en;q=0.8", ["es", "es", "en"]),
    ("en;q=0.5, es", ["es", "en"]),
    ("fr-CA, *;q=0.1", ["fr", "*"]),
    ("es;q=0, en", ["en"]),
    ("", []),
    ("es;q=abc, en", ["en"]),
])
def test_accept_language(header, expected):
    assert accepted_languages(header) == expected


@pytest.mark.parametrize(("asked", "cookie", "header", "expected"), [
    ("es", "en", "en", "es"),       # ?lang= wins
    (None, "es", "en-US", "es"),    # then the patron's earlier choice
    ("xx", "es", "en-US", "es"),    # an unknown ?lang= is ignored
    (None, None, "fr, es-MX;q=0.8", "es"),  # then the browser's languages we have
    (None, "xx", "fr", "en"),       # else English
])
def test_choose_language(asked, cookie, header, expected):
    assert choose_language(["en", "es"], asked, cookie, header) == expected


def test_translator_fills_placeholders_formats_money_and_falls_back(tmp_path):
    (tmp_path / "en.json").write_text(json.dumps({"lang.name": "English", "a": "Pay {amount}",
                                                  "b": "Only English"}))
    (tmp_path / "es.json").write_text(json.dumps({"lang.name": "Español", "a": "Pagar {amount}"}))
    t = translator(tmp_path, accept_language="es-US")
    assert (t.lang, t.languages) == ("es", [("en", "English"), ("es", "Español")])
    assert t("a", amount=t.money(Decimal("1250.5"), "USD")) == "Pagar $1,250.50"
    assert t("b") == "Only English"
    assert t("missing.key") == "missing.key"
    assert t.money(Decimal("7.00"), "EUR") == "7.00 EUR"


def test_hand_off_page_speaks_the_patrons_language(deploy):
    d = deploy()
    patron = d.sign_in_sso("mkowalski")
    payment = d.start_payment(patron, amount="12.50")["payment"]
    path = f"/pay/{payment['id']}"

    spanish = patron.get(path, headers={"Accept-Language": "es-MX,es;q=0.9"})
    assert spanish.status_code == 200
    assert '<html lang="es">' in spanish.text
    assert "<h1>Continuar a CashNet</h1>" in spanish.text
    assert "Va a pagar $12.50 por sus cargos de la biblioteca." in spanish.text
    assert 'href="?lang=en" lang="en" hreflang="en">English</a>' in spanish.text
    assert "patronpay_lang" not in spanish.headers.get("set-cookie", "")

    patron.cookies.set("patronpay_lang", "en")
    english = patron.get(path, headers={"Accept-Language": "es"})
    assert '<html lang="en">' in english.text and "You are paying $12.50" in english.text

    chosen = patron.get(path + "?lang=es")
    assert "<h1>Continuar a CashNet</h1>" in chosen.text
    cookie = chosen.headers["set-cookie"]
    assert cookie.startswith("patronpay_lang=es;") and "SameSite=lax" in cookie
    assert "HttpOnly" not in cookie
    assert '<script src="/pay.js"></script>' in chosen.text


def test_kiosk_pages_use_every_kiosk_key_and_only_keys_that_exist():
    english = load("en")
    used: set[str] = set()
    prefixes: list[str] = []
    for source in sorted((ROOT / "site" / "kiosk").glob("*.*")):
        body = source.read_text(encoding="utf-8")
        used |= set(re.findall(r'"(kiosk\.[\w.]+)"', body))
        used |= set(re.findall(r":(kiosk\.[\w.]+)\"", body))  # data-i18n-attr="attr:key"
        prefixes += re.findall(r"`(kiosk\.[\w.]+\.)\$\{", body)  # `kiosk.state.${state}`
    assert set(prefixes) == {"kiosk.state."}
    assert sorted(used - set(english)) == []
    kiosk_keys = {key for key in english if key.startswith("kiosk.")}
    assert sorted(k for k in kiosk_keys - used if not k.startswith(tuple(prefixes))) == []
