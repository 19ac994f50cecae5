"""Sandbox Primo: a stand-in for Primo VE's "Pay fines" link (docs/alma.md#primo-tokens).

In Primo VE a signed-in patron's "Pay fines" link opens the payment URL configured in Alma with
a patron token appended as `jwt`. This app lists the sandbox Alma's patrons with such a link:

  GET /                 "Library account (sandbox Primo)": patrons, what they owe, links
  GET /pay?user=ID      302 to `<payment_url>?jwt=<fresh ES256 token>` (Primo's claims)
  GET /static/campus.css

Tokens are signed by the sandbox Alma (`AlmaSandbox.primo_token`), so they verify against the
JWKS it serves. `app.state.primo.configure(payment_url)` enters the proxy's `/auth/primo`, as
staff would in Alma's Payment Link Configuration; until then `/pay` answers 503.

Variants real campuses send, by `configure(...)`: `profile="alma_summon"` issues Alma-Summon's
tokens (`iss: "soa"`), and `institution_case="lower"` writes the institution code in lower
case, as some tokens carry it.
"""

from __future__ import annotations

import threading
from decimal import Decimal
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from sandbox.alma import AlmaSandbox, load_seed
from sandbox.campus import STYLESHEET_ROUTE, is_web_url, page, with_query

TOKEN_TTL_S = 24 * 3600  # Primo's documented example lifetime
ISSUERS = {"primo_ve": "Prima", "alma_summon": "soa"}
INSTITUTION_CASES = ("as_is", "lower")


class PrimoPage:
    """Where "Pay fines" points, and which Alma environment key signs the tokens."""

    def __init__(self, alma: AlmaSandbox, patrons: list[str]) -> None:
        self.alma = alma
        self.patrons = list(patrons)
        self._lock = threading.Lock()
        self._payment_url: str | None = None
        self._sandbox_key = False
        self._ttl_s = TOKEN_TTL_S
        self._issuer = ISSUERS["primo_ve"]
        self._lower_institution = False

    def configure(self, payment_url: str, *, sandbox_key: bool = False,
                  ttl_s: int = TOKEN_TTL_S, profile: str = "primo_ve",
                  institution_case: str = "as_is") -> None:
        """The payment site's entry (e.g. `http://127.0.0.1:8000/auth/primo`). `sandbox_key`
        signs with the key Alma serves at `jwks.json?env=sandbox` (a Primo sandbox
        environment); `profile` and `institution_case` pick the token variant."""
        if not is_web_url(payment_url):
            raise ValueError(f"payment_url must be an http(s) URL, got {payment_url!r}")
        if profile not in ISSUERS or institution_case not in INSTITUTION_CASES:
            raise ValueError(f"profile is one of {tuple(ISSUERS)}, institution_case one of "
                             f"{INSTITUTION_CASES}")
        with self._lock:
            self._payment_url = payment_url
            self._sandbox_key = sandbox_key
            self._ttl_s = ttl_s
            self._issuer = ISSUERS[profile]
            self._lower_institution = institution_case == "lower"

    @property
    def payment_url(self) -> str | None:
        return self._payment_url

    def pay_link(self, user: str, user_ip: str) -> str | None:
        """The payment URL with a fresh token for `user`; None when not configured."""
        with self._lock:
            target, sandbox_key, ttl_s = self._payment_url, self._sandbox_key, self._ttl_s
            issuer, lower = self._issuer, self._lower_institution
        if target is None:
            return None
        institution = self.alma.institution_code.lower() if lower else None
        token = self.alma.primo_token(user, ttl_s=ttl_s, sandbox=sandbox_key, userIp=user_ip,
                                      iss=issuer, institution=institution)
        return with_query(target, jwt=token)

    def patron_rows(self) -> list[dict[str, Any]]:
        """The listed patrons Alma knows, with what they owe (Σ balances of ACTIVE fees)."""
        rows = []
        for primary_id in self.patrons:
            try:
                user = self.alma.user_state(primary_id)
            except KeyError:
                continue
            owed = sum((fee["balance"] for fee in user["fees"] if fee["status"] == "ACTIVE"),
                       Decimal(0))
            rows.append({"id": user["primary_id"],
                         "name": f"{user['first_name']} {user['last_name']}".strip(),
                         "group": user["user_group"], "owed": f"{owed:.2f}"})
        return rows

    def knows(self, primary_id: str) -> str | None:
        """The patron's primary ID as Alma spells it, or None if Alma has no such patron."""
        try:
            return self.alma.user_state(primary_id)["primary_id"]
        except KeyError:
            return None


class PrimoRoutes:
    def __init__(self, primo: PrimoPage) -> None:
        self.primo = primo

    async def index(self, request: Request) -> Response:
        return page(request, "primo_index.html", {
            "patrons": self.primo.patron_rows(),
            "payment_url": self.primo.payment_url,
        })

    async def pay(self, request: Request) -> Response:
        requested = request.query_params.get("user", "").strip()
        if not requested:
            return problem(request, 400, "No patron chosen",
                           "Choose a patron on the library account page.")
        primary_id = self.primo.knows(requested)
        if primary_id is None:
            return problem(request, 404, "Patron not found",
                           f"The sandbox Alma has no patron {requested}.")
        link = self.primo.pay_link(primary_id, request.client.host if request.client else "")
        if link is None:
            return problem(request, 503, "Payment site not configured",
                           "No payment URL is configured for the \"Pay fines\" link. In Alma "
                           "this is the Payment Link Configuration; in the sandbox call "
                           "app.state.primo.configure(payment_url) (the demo does).")
        return RedirectResponse(link, status_code=302, headers={"Referrer-Policy": "no-referrer",
                                                                "Cache-Control": "no-store"})


def problem(request: Request, status: int, heading: str, text: str) -> Response:
    return page(request, "primo_message.html", {"heading": heading, "message": text},
                status=status)


def create_primo_app(alma_sandbox: AlmaSandbox, patrons: list[str] | None = None) -> Starlette:
    """The Primo page for `alma_sandbox`, listing `patrons` (primary IDs; default: the users
    of the packaged Alma seed)."""
    if patrons is None:
        patrons = [user["primary_id"] for user in load_seed()["users"]]
    primo = PrimoPage(alma_sandbox, patrons)
    routes = PrimoRoutes(primo)
    app = Starlette(routes=[
        Route("/", routes.index, methods=["GET"]),
        Route("/pay", routes.pay, methods=["GET"]),
        STYLESHEET_ROUTE,
    ])
    app.state.primo = primo
    return app
