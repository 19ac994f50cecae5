"""What institutions must never share (docs/consortium.md#configuration): values two tables
may not hold alike (CashNet's notification token, the ledger, the Alma key, the signing keys,
the kiosks' secrets, the host, the bursar folders, the public URL under path routing), and
settings only a table may hold. Each stops start-up with one line naming both tables and the
key, never the value. A ledger is compared as the database it names, not as the text that
names it; the ledger's own record of its institution (ledger_owner.py) catches the rest."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from proxy.config import PREFIX, ConfigError, _raw_value, env_name
from proxy.consortium.derived import PER_INSTITUTION_FOLDERS
from proxy.consortium.institutions import Consortium
from proxy.db import is_postgres_url

POSTGRES_PORT = 5432

# Settings only a table may hold: outside the tables they would belong to every institution.
PER_INSTITUTION_ONLY = ("kiosk_keys",)


def refuse_shared_only(environ: Mapping[str, str], file_values: dict[str, Any]) -> None:
    for field_name in PER_INSTITUTION_ONLY:
        if _raw_value(field_name, environ, file_values) is not None:
            raise ConfigError(f"{env_name(field_name)} outside the [institutions.*] tables would "
                              "belong to every institution: set it in each institution's table")


def refuse_clashes(consortium: Consortium) -> None:
    seen: dict[tuple[str, str], str] = {}
    for institution in consortium.institutions:
        s = institution.settings
        owned = [("host", institution.host),
                 ("database", ledger_identity(s.database)),
                 ("cashnet_postback_token", s.cashnet_postback_token),
                 ("cashnet_postback_token", s.cashnet_postback_token_previous),
                 ("alma_api_key", s.alma_api_key),
                 *(("secret_keys", key) for key in s.secret_keys),
                 *(("kiosk_keys", secret) for secret in s.kiosk_keys.values()),
                 *((folder, getattr(s, folder)) for folder in PER_INSTITUTION_FOLDERS)]
        if consortium.routing == "path":
            owned.append(("public_url", s.public_url))
        for key, value in owned:
            if not value:
                continue
            other = seen.setdefault((key, value), institution.code)
            if other != institution.code:
                raise ConfigError(f"{PREFIX}CONFIG [institutions.{institution.code}] {key} is "
                                  f"the same as [institutions.{other}]'s: each institution "
                                  "needs its own")


def ledger_identity(database: Path | str) -> str:
    """Which ledger `database` is: an SQLite file by its real path; a PostgreSQL database by
    server, port and name, whatever the scheme's spelling, the host's case, a default port
    left out or the options (user, sslmode, ...) around them. libpq's own `host`, `port` and
    `dbname` options name the database too, so they count."""
    if not is_postgres_url(database):
        return str(Path(database).expanduser().resolve())
    parts = urlsplit(str(database))
    query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
    host = query.get("host") or unquote(parts.hostname or "")
    try:
        port = int(query.get("port") or parts.port or POSTGRES_PORT)
    except ValueError:  # libpq refuses it when connecting
        port = -1
    # libpq's default database is the user's name.
    name = query.get("dbname") or unquote(parts.path.lstrip("/")) or unquote(
        parts.username or "")
    return f"postgresql://{host.lower()}:{port}/{name}"
