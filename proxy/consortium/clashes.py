"""What institutions must never share (docs/consortium.md#configuration): values two tables
may not hold alike (CashNet's notification token, the ledger, the Alma key, the host, the bursar
folders, the public URL under path routing), and settings only a table may hold. Each stops
start-up with one line naming the table and the key."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from proxy.config import PREFIX, ConfigError, _raw_value, env_name
from proxy.consortium.derived import PER_INSTITUTION_FOLDERS
from proxy.consortium.institutions import Consortium

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
                 ("database", str(s.database.resolve()) if isinstance(s.database, Path)
                  else s.database),
                 ("cashnet_postback_token", s.cashnet_postback_token),
                 ("cashnet_postback_token", s.cashnet_postback_token_previous),
                 ("alma_api_key", s.alma_api_key),
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
