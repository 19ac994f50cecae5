"""What two institutions may not share (docs/consortium.md#configuration), however it is
spelt: one PostgreSQL database under two URLs, the same signing key or kiosk secret in two
tables; and what an institution's name may hold. Each is one line naming both tables (or the
table) and the key, never the value."""

import pytest
from support.consortium_tables import CAMPUS_A, CAMPUS_B, DEFAULTS, refused, write

from proxy.consortium.config import load_consortium

SHARED_PG = DEFAULTS.replace('database = "{folder}/ledger.sqlite3"',
                             'database = "postgresql://patronpay@db.example.edu/patronpay"')
SAME = ("PATRONPAY_CONFIG [institutions.campus-b] {key} is the same as "
        "[institutions.campus-a]'s: each institution needs its own")


@pytest.mark.parametrize("a_url, b_url", [
    ("postgres://u@db/pp", "postgresql://u@db:5432/pp?sslmode=require"),
    ("postgresql://u@DB.example.edu/pp", "postgresql://other:secret@db.EXAMPLE.edu:5432/pp"),
    ("postgresql://u@db/pp", "postgresql://u@elsewhere/other?host=db&dbname=pp"),
    ("postgresql://pp@db", "postgresql://u@db/pp"),  # libpq's default database: the user's
])
def test_one_postgresql_database_under_two_urls_is_refused(tmp_path, a_url, b_url):
    environ = write(tmp_path, SHARED_PG, CAMPUS_A + f'database = "{a_url}"',
                    CAMPUS_B + f'database = "{b_url}"')
    message = refused(environ)
    assert message == SAME.format(key="database")
    assert "secret" not in message


@pytest.mark.parametrize("b_url", [
    "postgresql://u@db:5433/pp", "postgresql://u@db/pp2", "postgresql://u@db2/pp"])
def test_other_postgresql_databases_are_each_their_own(tmp_path, b_url):
    environ = write(tmp_path, SHARED_PG, CAMPUS_A + 'database = "postgres://u@db/pp"',
                    CAMPUS_B + f'database = "{b_url}"')
    assert len(load_consortium(environ).institutions) == 2


def test_one_sqlite_file_under_two_paths_is_refused(tmp_path):
    (tmp_path / "sub").mkdir()
    environ = write(tmp_path, DEFAULTS, CAMPUS_A + 'database = "{folder}/one.sqlite3"',
                    CAMPUS_B + 'database = "{folder}/sub/../one.sqlite3"')
    assert refused(environ) == SAME.format(key="database")


def test_the_same_signing_key_in_two_tables_is_refused(tmp_path):
    key = "s" * 40
    environ = write(tmp_path, DEFAULTS, CAMPUS_A + f'secret_keys = "{"a" * 40},{key}"',
                    CAMPUS_B + f'secret_keys = "{key}"')
    message = refused(environ)
    assert message == SAME.format(key="secret_keys")
    assert key not in message


def test_a_table_may_not_take_the_key_another_table_derives_from(tmp_path):
    """Derived keys (from the shared ones) differ per table; a table's own key differs from
    them, so only a key given twice clashes."""
    environ = write(tmp_path, DEFAULTS, CAMPUS_A, CAMPUS_B + f'secret_keys = "{"b" * 40}"')
    a, b = load_consortium(environ).institutions
    assert not set(a.settings.secret_keys) & set(b.settings.secret_keys)


@pytest.mark.parametrize("b_keys", ["k1={secret}", "kiosk-9={secret}"])
def test_the_same_kiosk_secret_in_two_tables_is_refused(tmp_path, b_keys):
    secret = "q" * 40
    environ = write(tmp_path, DEFAULTS,
                    CAMPUS_A + f'kiosk_keys = "k1={secret},k2={"r" * 40}"',
                    CAMPUS_B + f'kiosk_keys = "{b_keys.format(secret=secret)}"')
    message = refused(environ)
    assert message == SAME.format(key="kiosk_keys")
    assert secret not in message


def test_kiosks_with_their_own_secrets_are_accepted(tmp_path):
    environ = write(tmp_path, DEFAULTS, CAMPUS_A + f'kiosk_keys = "k1={"q" * 40}"',
                    CAMPUS_B + f'kiosk_keys = "k1={"r" * 40}"')
    assert [i.code for i in load_consortium(environ).institutions] == ["campus-a", "campus-b"]


@pytest.mark.parametrize("name", [
    "Campus\\nB", "Campus\\u001b[31mB", "Campus\\u202eB", "Campus\\u2028B", "Campus\\tB"])
def test_a_name_with_control_characters_is_refused(tmp_path, name):
    text = CAMPUS_B.replace('name = "Campus B Libraries"', f'name = "{name}"')
    message = refused(write(tmp_path, DEFAULTS, CAMPUS_A, text))
    assert message == ("PATRONPAY_CONFIG [institutions.campus-b] name must be one line of "
                       "printable text (it holds a control character)")


def test_a_name_is_at_most_a_hundred_characters(tmp_path):
    long = CAMPUS_B.replace('name = "Campus B Libraries"', f'name = "{"B" * 101}"')
    assert refused(write(tmp_path, DEFAULTS, CAMPUS_A, long)) == (
        "PATRONPAY_CONFIG [institutions.campus-b] name is too long: at most 100 characters")
    fits = CAMPUS_B.replace('name = "Campus B Libraries"',
                            f'name = "{"B" * 90} \u0645\u06cc\u200c\u0634\u0648\u062f"')
    assert load_consortium(write(tmp_path, DEFAULTS, CAMPUS_A, fits)).institutions[1].name


def test_the_consortium_name_is_checked_too(tmp_path):
    environ = write(tmp_path, DEFAULTS, '[consortium]\nname = "Fines\\u0007"', CAMPUS_A)
    assert refused(environ) == ("PATRONPAY_CONFIG [consortium] name must be one line of "
                                "printable text (it holds a control character)")
