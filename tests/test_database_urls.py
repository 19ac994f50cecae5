"""A PostgreSQL URL shown in a log line or an error never shows its password, wherever libpq
lets the URL carry one (docs/deploy.md#two-nodes)."""

import pytest

from proxy.database.postgres import without_password


@pytest.mark.parametrize(("url", "shown"), [
    ("postgresql://pp:s3cret@db.example.edu/patronpay",
     "postgresql://pp:***@db.example.edu/patronpay"),
    ("postgresql://pp@db.example.edu/patronpay?sslmode=require&password=s3cret",
     "postgresql://pp@db.example.edu/patronpay?sslmode=require&password=***"),
    ("postgresql:///patronpay?host=/run/postgresql&PASSWORD=s3cret",
     "postgresql:///patronpay?host=/run/postgresql&PASSWORD=***"),
    ("postgresql://pp@db.example.edu:5433/patronpay",
     "postgresql://pp@db.example.edu:5433/patronpay"),
])
def test_the_password_is_masked(url, shown):
    assert without_password(url) == shown
    assert "s3cret" not in without_password(url)
