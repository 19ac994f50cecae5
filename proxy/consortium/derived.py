"""What an institution gets of its own when its table does not say
(docs/consortium.md#configuration): a ledger beside the default one, its public URL (the
default one with /<code>, or its host), signing keys derived from the default ones (so nothing
one institution signs verifies at another), its name on receipts, bursar folders below the
default ones, and its code, which its payment records name."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from proxy.config import PREFIX, ConfigError, _raw_value

POSTGRESQL = ("postgresql://", "postgres://")
# Folders derived per institution below the shared one: each its own files.
PER_INSTITUTION_FOLDERS = ("bursar_outbox", "bursar_inbox")


def derived_values(code: str, name: str, host: str, own: Mapping[str, Any],
                   environ: Mapping[str, str], file_values: dict[str, Any]) -> dict[str, Any]:
    """The derived values of table `code`, whose own values are `own`; the defaults are the
    environment's and the file's outside the tables."""
    def default(field_name: str) -> Any:
        return _raw_value(field_name, environ, file_values)

    derived: dict[str, Any] = {"library_name": name, "institution": code}
    for folder in PER_INSTITUTION_FOLDERS:
        shared_folder = str(default(folder) or "").strip()
        if shared_folder:
            derived[folder] = str(Path(shared_folder).expanduser() / code)
    shared = str(default("database") or "patronpay.sqlite3").strip()
    if shared.startswith(POSTGRESQL):
        if "database" not in own and "database_file" not in own:
            raise ConfigError(f"{PREFIX}CONFIG [institutions.{code}] needs its own database: "
                              "a PostgreSQL ledger is not derived from the shared one (set "
                              "database in each table)")
    else:
        database = Path(shared).expanduser()
        derived["database"] = str(database.with_name(f"{database.stem}-{code}{database.suffix}"))
    public_url = str(default("public_url") or "").strip().rstrip("/")
    if public_url:
        parts = urlsplit(public_url)
        port = f":{parts.port}" if parts.port else ""
        derived["public_url"] = (f"{parts.scheme}://{host}{port}" if host
                                 else f"{public_url}/{code}")
    keys = default("secret_keys")
    if keys and not ("secret_keys" in own or "secret_keys_file" in own):
        items = keys if isinstance(keys, list) else str(keys).split(",")
        derived["secret_keys"] = ",".join(
            hmac.new(str(k).strip().encode(), f"patronpay institution {code}".encode(),
                     hashlib.sha256).hexdigest() for k in items if str(k).strip())
    return derived
