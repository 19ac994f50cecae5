"""One `[institutions.<code>]` table of the TOML file (docs/consortium.md#configuration): which
keys it may hold, and its values as `proxy.config.load_settings` reads them (the
InstitutionTable it takes), its own over those derived for it."""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from proxy.config import PREFIX, ConfigError, env_name, setting_fields

# The table's own keys besides the settings: what its pages show, its host, the network.
OWN_KEYS = ("name", "host", "accent", "logo", "help_text", "languages", "pay_network_fees")
# Settings each table gets from its code alone.
FROM_THE_CODE = ("institution",)
# Settings of the whole deployment (one server, one log): never in a table.
DEPLOYMENT_ONLY = ("log_level", "http_max_connections", "http_header_timeout_seconds",
                   "http_body_timeout_seconds", "http_keepalive_seconds",
                   "http_max_header_bytes")


class Table:
    """One table, as load_settings reads it: its own values, and the values derived for it."""

    def __init__(self, code: str, values: Mapping[str, Any], derived: Mapping[str, Any]):
        self.code = code
        self.values = dict(values)
        self.derived = dict(derived)

    @property
    def title(self) -> str:
        return f"[institutions.{self.code}]"

    def has(self, field_name: str) -> bool:
        return (field_name in self.values or field_name + "_file" in self.values
                or field_name in self.derived)

    def raw(self, field_name: str) -> Any:
        if field_name in self.values:
            return self.values[field_name]
        if field_name + "_file" in self.values:
            path = str(self.values[field_name + "_file"])
            try:
                return Path(path).read_text(encoding="utf-8").strip()
            except OSError as exc:
                raise ConfigError(f"{PREFIX}CONFIG {self.title} {field_name}_file cannot be "
                                  f"read: {exc.strerror} ({path})") from None
        return self.derived[field_name]

    def key_name(self, field_name: str) -> str:
        return f"{PREFIX}CONFIG {self.title} {field_name}"

    def missing(self, field_name: str, help: str) -> str:
        return (f"{PREFIX}CONFIG {self.title} needs {field_name} (or {env_name(field_name)} "
                f"for every institution): {help}")


def check_keys(code: str, values: Mapping[str, Any]) -> None:
    """Every key of the table is a setting (or its `_file`) or one of its own, and none is
    the whole deployment's or given by its code."""
    title = f"[institutions.{code}]"
    settings_keys = [f.name for f in setting_fields()]
    refuse_unknown_keys(title, values,
                        [*settings_keys, *(k + "_file" for k in settings_keys), *OWN_KEYS])
    for key in DEPLOYMENT_ONLY:
        if key in values or key + "_file" in values:
            raise ConfigError(f"{PREFIX}CONFIG {title} {key} is the whole deployment's: set it "
                              "outside the [institutions.*] tables")
    for key in FROM_THE_CODE:
        if key in values or key + "_file" in values:
            raise ConfigError(f"{PREFIX}CONFIG {title} {key} is the table's code ({code}): "
                              "remove it")


def refuse_unknown_keys(title: str, values: Iterable[str], known: Iterable[str]) -> None:
    known = sorted(known)
    for key in sorted(values):
        if key not in known:
            close = difflib.get_close_matches(key, known, n=1, cutoff=0.8)
            hint = f" (did you mean {close[0]}?)" if close else ""
            raise ConfigError(f"{PREFIX}CONFIG {title} has an unknown setting: {key}{hint}")
