"""What a sign-in method declares: its name, its routes, the settings it cannot do without, and
how the sign-in page offers it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from starlette.routing import Route

if TYPE_CHECKING:
    from proxy.config import Settings


@dataclass(frozen=True)
class Offer:
    """How the sign-in page presents a method: a link to follow, a form to post, or only a
    notice (the patron arrives from elsewhere, e.g. Primo's Pay link)."""

    kind: Literal["link", "form", "notice"]
    target: str = ""        # the link's href or the form's action, ready to use
    entry: str | None = None  # the method's start, as the older `links` field lists it

    @classmethod
    def link(cls, href: str, entry: str) -> Offer:
        return cls("link", href, entry)

    @classmethod
    def form(cls, action: str) -> Offer:
        return cls("form", action, action)

    @classmethod
    def notice(cls) -> Offer:
        return cls("notice")

    def to_json(self, method: str) -> dict[str, str]:
        """One entry of `/api/session`'s `signin` list."""
        body = {"method": method, "kind": self.kind}
        if self.kind == "link":
            body["href"] = self.target
        elif self.kind == "form":
            body["action"] = self.target
        return body


@dataclass(frozen=True)
class SignInMethod:
    name: str                              # as written in PATRONPAY_AUTH_METHODS
    routes: tuple[Route, ...]              # served only while the method is offered
    offer: Callable[[Settings], Offer]
    requires: tuple[str, ...] = ()         # Settings fields that must not be empty
