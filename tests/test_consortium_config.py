"""A consortium's configuration (docs/consortium.md#configuration): `[institutions.<code>]`
tables, each a whole set of settings over the shared defaults, and one clear line naming the
table and the key for every mistake."""

import pytest
from support.consortium_tables import CAMPUS_A, CAMPUS_B, DEFAULTS, VALUES, refused, write

from proxy.config import ConfigError, load_settings
from proxy.consortium.config import load_consortium


def test_without_tables_there_is_no_consortium_and_settings_are_unchanged(tmp_path):
    environ = write(tmp_path, DEFAULTS, 'alma_api_key = "l7xx"\n'
                    'cashnet_checkout_url = "https://commerce.cashnet.com/X"\n'
                    f'cashnet_postback_token = "{"t" * 40}"')
    assert load_consortium(environ) is None
    settings = load_settings(environ)
    assert settings.public_url == "https://pay.example.edu"
    assert settings.database == tmp_path / "ledger.sqlite3"


def test_each_institution_has_its_own_settings_over_the_defaults(tmp_path):
    consortium = load_consortium(write(tmp_path, DEFAULTS, CAMPUS_A, CAMPUS_B))
    assert consortium.routing == "path" and consortium.codes == ("campus-a", "campus-b")
    a, b = (i.settings for i in consortium.institutions)
    assert (a.alma_api_key, b.alma_api_key) == ("l7xx-campus-a", "l7xx-campus-b")
    assert a.alma_api_url == b.alma_api_url  # a shared default
    assert a.item_code_for("OVERDUEFINE") == "A-OVERDUE"
    assert b.item_code_for("OVERDUEFINE") == "LIB-FINE"
    assert (str(a.min_payment), str(b.min_payment)) == ("5.00", "1.00")
    assert (a.currency, b.currency) == ("USD", "CAD")
    assert b.auth_methods == ("alma",)
    # Derived for each: its own ledger, its own URL below the shared one, its own keys, and
    # its name on receipts.
    assert a.database == tmp_path / "ledger-campus-a.sqlite3"
    assert b.database == tmp_path / "ledger-campus-b.sqlite3"
    assert (a.public_url, b.public_url) == ("https://pay.example.edu/campus-a",
                                            "https://pay.example.edu/campus-b")
    assert a.secret_keys != b.secret_keys and "k" * 40 not in a.secret_keys + b.secret_keys
    assert a.library_name == "Campus A Library"
    assert consortium.institutions[0].accent == "#6a1b9a"


def test_a_table_wins_over_the_environment(tmp_path):
    environ = write(tmp_path, DEFAULTS, CAMPUS_A, CAMPUS_B)
    environ["PATRONPAY_MIN_PAYMENT"] = "2.00"
    a, b = (i.settings for i in load_consortium(environ).institutions)
    assert (str(a.min_payment), str(b.min_payment)) == ("5.00", "2.00")


def test_host_routing_gives_each_its_own_address(tmp_path):
    environ = write(tmp_path, DEFAULTS, '[consortium]\nrouting = "host"',
                    CAMPUS_A + 'host = "pay.campus-a.example.edu"',
                    CAMPUS_B + 'host = "pay.campus-b.example.edu"')
    a, b = load_consortium(environ).institutions
    assert a.settings.public_url == "https://pay.campus-a.example.edu"
    assert b.host == "pay.campus-b.example.edu"


@pytest.mark.parametrize("extra, fragment", [
    ('alma_api_ur = "x"', "[institutions.campus-b] has an unknown setting: alma_api_ur "
                          "(did you mean alma_api_url?)"),
    ('min_payment = "lots"', "[institutions.campus-b] min_payment is not valid"),
    ('accent = "#ffff00"', "[institutions.campus-b] accent is not valid: #ffff00 on white"),
    ('pay_network_fees = "yes"', "[institutions.campus-b] pay_network_fees must be true or "
                                 "false"),
    ('http_max_connections = 10', "[institutions.campus-b] http_max_connections is the whole "
                                  "deployment's: set it outside the [institutions.*] tables"),
])
def test_a_bad_key_is_named_with_its_table(tmp_path, extra, fragment):
    assert fragment in refused(write(tmp_path, DEFAULTS, CAMPUS_A, CAMPUS_B + extra))


def test_a_missing_alma_url_is_named_with_its_table(tmp_path):
    defaults = DEFAULTS.replace('alma_api_url = "https://api-na.hosted.exlibrisgroup.com/almaws/'
                                'v1"', "")
    message = refused(write(tmp_path, defaults, CAMPUS_A, CAMPUS_B))
    assert message.startswith("PATRONPAY_CONFIG [institutions.campus-a] needs alma_api_url "
                              "(or PATRONPAY_ALMA_API_URL for every institution)")


@pytest.mark.parametrize("code", ["Campus-A", "campus_a", "-a", "cashnet", "a" * 33])
def test_a_bad_institution_code_is_refused(tmp_path, code):
    text = CAMPUS_B.replace("[institutions.campus-b]", f'[institutions."{code}"]')
    assert "is not a valid institution code" in refused(write(tmp_path, DEFAULTS, text))


@pytest.mark.parametrize("key, b_line", [
    ("cashnet_postback_token", 'cashnet_postback_token = "{a_token}"'),
    ("database", 'database = "{folder}/ledger-campus-a.sqlite3"'),
    ("alma_api_key", 'alma_api_key = "l7xx-campus-a"'),
])
def test_what_two_institutions_must_not_share(tmp_path, key, b_line):
    b = "\n".join(line for line in CAMPUS_B.splitlines() if not line.startswith(key + " "))
    message = refused(write(tmp_path, DEFAULTS, CAMPUS_A, b + "\n" + b_line))
    assert message == (f"PATRONPAY_CONFIG [institutions.campus-b] {key} is the same as "
                       "[institutions.campus-a]'s: each institution needs its own")
    if key == "cashnet_postback_token":
        assert VALUES["a_token"] not in message


def test_two_institutions_on_one_host_are_refused(tmp_path):
    environ = write(tmp_path, DEFAULTS, '[consortium]\nrouting = "host"',
                    CAMPUS_A + 'host = "pay.example.edu"', CAMPUS_B + 'host = "PAY.example.edu"')
    assert refused(environ) == ("PATRONPAY_CONFIG [institutions.campus-b] host is the same as "
                                "[institutions.campus-a]'s: each institution needs its own")


def test_host_routing_needs_a_host_per_institution(tmp_path):
    environ = write(tmp_path, DEFAULTS, '[consortium]\nrouting = "host"',
                    CAMPUS_A + 'host = "pay.campus-a.example.edu"', CAMPUS_B)
    assert "[institutions.campus-b] host is required" in refused(environ)


def test_an_unknown_routing_is_refused(tmp_path):
    environ = write(tmp_path, DEFAULTS, '[consortium]\nrouting = "cookie"', CAMPUS_A)
    assert "[consortium] routing is not valid: choose path or host" in refused(environ)


def test_kiosk_keys_belong_in_the_tables(tmp_path):
    environ = write(tmp_path, DEFAULTS, f'kiosk_keys = "k1={"s" * 32}"', CAMPUS_A, CAMPUS_B)
    message = refused(environ)
    assert message.startswith("PATRONPAY_KIOSK_KEYS outside the [institutions.*] tables")
    assert "s" * 32 not in message


def test_a_command_names_its_institution_when_there_are_several(tmp_path):
    environ = write(tmp_path, DEFAULTS, CAMPUS_A, CAMPUS_B)
    with pytest.raises(ConfigError, match=r"several institutions \(campus-a, campus-b\): name "
                                          "one with --institution"):
        load_settings(environ)
    settings = load_settings(environ | {"PATRONPAY_INSTITUTION": "campus-b"})
    assert settings.alma_api_key == "l7xx-campus-b"
    with pytest.raises(ConfigError, match="no institution 'campus-c'"):
        load_settings(environ | {"PATRONPAY_INSTITUTION": "campus-c"})
    one = write(tmp_path, DEFAULTS, CAMPUS_A)
    assert load_settings(one).alma_api_key == "l7xx-campus-a"


def test_a_postgresql_ledger_is_named_in_each_table(tmp_path):
    shared = DEFAULTS.replace('database = "{folder}/ledger.sqlite3"',
                              'database = "postgresql://patronpay@db.example.edu/patronpay"')
    message = refused(write(tmp_path, shared, CAMPUS_A, CAMPUS_B))
    assert message.startswith("PATRONPAY_CONFIG [institutions.campus-a] needs its own database")
    own_a = CAMPUS_A + 'database = "postgresql://patronpay@db.example.edu/campus_a"'
    own_b = CAMPUS_B + 'database = "postgresql://patronpay@db.example.edu/campus_b"'
    a, b = load_consortium(write(tmp_path, shared, own_a, own_b)).institutions
    assert (a.settings.database, b.settings.database) == (
        "postgresql://patronpay@db.example.edu/campus_a",
        "postgresql://patronpay@db.example.edu/campus_b")
    same = CAMPUS_B + 'database = "postgresql://patronpay@db.example.edu/campus_a"'
    assert "database is the same as [institutions.campus-a]'s" in refused(
        write(tmp_path, shared, own_a, same))


def test_a_logo_is_a_small_image_file(tmp_path):
    (tmp_path / "a.svg").write_text("<svg xmlns='http://www.w3.org/2000/svg'/>")
    (tmp_path / "big.png").write_bytes(b"\0" * (256 * 1024 + 1))
    a = load_consortium(write(tmp_path, DEFAULTS, CAMPUS_A + f'logo = "{tmp_path}/a.svg"'))
    assert a.institutions[0].logo == tmp_path / "a.svg"
    for logo, fragment in [("a.gif", "is not valid: choose a .png, .webp or .svg file"),
                           ("none.png", "cannot be read: No such file or directory"),
                           ("big.png", "is larger than 256 KB")]:
        environ = write(tmp_path, DEFAULTS, CAMPUS_A + f'logo = "{tmp_path}/{logo}"')
        assert f"[institutions.campus-a] logo {fragment}" in refused(environ)


def test_languages_and_help_text_are_the_institutions_own(tmp_path):
    b = CAMPUS_B + 'languages = ["es"]\nhelp_text = "  Pregunte en el\\n mostrador. "\n'
    a = CAMPUS_A + 'help_text = {{ en = "Ask at the desk.", es = "Pregunte en el mostrador." }}\n'
    campus_a, campus_b = load_consortium(write(tmp_path, DEFAULTS, a, b)).institutions
    assert campus_a.languages == () and campus_a.help_text == (
        ("en", "Ask at the desk."), ("es", "Pregunte en el mostrador."))
    assert campus_b.languages == ("es",)
    assert campus_b.help_text == (("", "Pregunte en el mostrador."),)  # one text for all


@pytest.mark.parametrize("extra, fragment", [
    ('languages = ["en", "fr"]', "languages is not valid: 'fr' is not one of the site's "
                                 "languages (en, es)"),
    ('languages = []', "languages is not valid: name at least one language"),
    ('languages = ["es", "es"]', "languages is not valid: es is listed twice"),
    ('help_text = {{ en = "Ask." }}', "help_text is not valid: no text for es"),
    ('languages = ["en"]\nhelp_text = {{ en = "Ask.", es = "Pregunte." }}',
     "help_text is not valid: 'es' is not one of its languages (en)"),
    (f'help_text = "{"x" * 501}"', "help_text is not valid: the text is 501 characters; at "
                                   "most 500"),
    ('help_text = {{ en = "Ask.", es = " " }}', "help_text is not valid: the text es must be "
                                              "non-empty text"),
    ("help_text = 5", "help_text is not valid: expected text, or a table"),
])
def test_bad_languages_or_help_text_are_named_with_the_table(tmp_path, extra, fragment):
    environ = write(tmp_path, DEFAULTS, CAMPUS_A + extra, CAMPUS_B)
    assert f"[institutions.campus-a] {fragment}" in refused(environ)


def test_the_institution_setting_is_each_tables_code(tmp_path):
    environ = write(tmp_path, DEFAULTS, 'bursar_outbox = "/srv/bursar/out"', CAMPUS_A,
                    CAMPUS_B + 'bursar_outbox = "/srv/bursar/b-out"')
    a, b = load_consortium(environ | {"PATRONPAY_INSTITUTION": "campus-b"}).institutions
    assert (a.settings.institution, b.settings.institution) == ("campus-a", "campus-b")
    assert (a.settings.bursar_outbox, b.settings.bursar_outbox) == (
        "/srv/bursar/out/campus-a", "/srv/bursar/b-out")
    assert "[institutions.campus-a] institution is the table's code (campus-a)" in refused(
        write(tmp_path, DEFAULTS, CAMPUS_A + 'institution = "north"', CAMPUS_B))
    assert "bursar_outbox is the same as [institutions.campus-a]'s" in refused(write(
        tmp_path, DEFAULTS, 'bursar_outbox = "/srv/out"', CAMPUS_A,
        CAMPUS_B + 'bursar_outbox = "/srv/out/campus-a"'))
