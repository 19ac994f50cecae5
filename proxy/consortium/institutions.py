"""What a consortium is, once read (docs/consortium.md#configuration): its institutions, each
with its own whole `Settings` and what its pages show, and how requests find them."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from proxy.config import Settings


@dataclass(frozen=True)
class Institution:
    code: str
    name: str
    settings: Settings
    host: str = ""  # host-name routing only
    accent: str = ""  # the pages' colour, "#rrggbb"; empty keeps the site's own
    logo: Path | None = None  # shown beside its name in the page header
    help_text: tuple[tuple[str, str], ...] = ()  # (language or '' for all, text)
    languages: tuple[str, ...] = ()  # its language switch's; () offers all the site's
    pay_network_fees: bool = False

    @property
    def prefix(self) -> str:
        """The institution's path under path routing: `/<code>`."""
        return "/" + self.code


@dataclass(frozen=True)
class Consortium:
    name: str
    routing: str  # "path" or "host"
    institutions: tuple[Institution, ...]

    def institution(self, code: str) -> Institution | None:
        return next((i for i in self.institutions if i.code == code), None)

    @property
    def codes(self) -> tuple[str, ...]:
        return tuple(i.code for i in self.institutions)
