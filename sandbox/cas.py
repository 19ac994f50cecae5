"""Sandbox CAS: a CAS 3.0 server with a login form and the seeded campus accounts.

Routes (relative to where the app is mounted, e.g. `/cas`):

  GET  /login?service=URL[&renew=true][&gateway=true]   login form (or straight back to the
                                                        service when a CAS session exists)
  POST /login                                           credentials → 302 to service?ticket=ST-…
  GET  /p3/serviceValidate?service=&ticket=[&renew=]    CAS 3.0 answer, with attributes
  GET  /serviceValidate?service=&ticket=[&renew=]       CAS 2.0 answer, with attributes too (as
                                                        current servers and Shibboleth give them)
  GET  /logout[?service=URL]                            ends the CAS session and posts a
                                                        single-logout request to each service
                                                        that got a ticket in it
  GET  /static/campus.css

What real servers do, the sandbox does: only registered services get tickets (by default any
http(s) service on a loopback host; `register_service` adds more); service tickets are single
use, valid for `ticket_ttl_s` (60 s by default) and bound to the exact service URL they were
issued for; a ticket that fails validation for any reason is used up; `renew=true` on
validation refuses a ticket that came from a CAS session rather than a password.

`configure(profile="shibboleth")` behaves like a Shibboleth IdP serving CAS: no `/p3/` path, and
tickets that encode state, well over a kilobyte long. `configure(attribute_layout=...,
leading_whitespace=...)` picks the XML variants of sandbox/cas_xml.py. `app.state.cas` is the
`CasServer` tests drive in-process.
"""

from __future__ import annotations

import copy
import re
import secrets
import threading
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from sandbox.campus import (
    STYLESHEET_ROUTE,
    CampusAccount,
    check_credentials,
    is_web_url,
    load_campus_users,
    page,
    parse_accounts,
    read_form,
    root_path,
    with_query,
)
from sandbox.cas_xml import ATTRIBUTE_LAYOUTS, failure_xml, logout_request_xml, success_xml

XML_TYPE = "application/xml;charset=UTF-8"
DEFAULT_TICKET_TTL_S = 60.0
SESSION_COOKIE = "CASTGC"
LOG_CAP = 10_000  # tickets and validations kept for inspection; oldest go first
PROFILES = ("apereo", "shibboleth")
SHIBBOLETH_TICKET_BYTES = 1200  # its tickets carry encrypted state: ~1.6 KB once encoded
LOOPBACK_SERVICE = r"https?://(127\.0\.0\.1|localhost|\[::1\])(:\d+)?([/?#].*)?"
LOGOUT_TIMEOUT_S = 5.0

INVALID_REQUEST = "INVALID_REQUEST"
INVALID_TICKET = "INVALID_TICKET"
INVALID_SERVICE = "INVALID_SERVICE"


@dataclass
class Ticket:
    id: str
    user: str
    service: str
    issued: datetime
    from_new_login: bool
    used: bool = False
    tgt: str | None = None  # the CAS session it was issued in, for single logout


@dataclass(frozen=True)
class Validation:
    """One serviceValidate outcome: `code` None means success."""
    code: str | None
    message: str
    user: str | None = None
    attributes: dict[str, tuple[str, ...]] | None = None
    issued: datetime | None = None
    from_new_login: bool = False


class CasServer:
    """Accounts, tickets, CAS sessions and the validation log, behind one lock.

    Routes (on the server's event loop) and tests (in another thread) both call in here.
    """

    def __init__(self, accounts: dict[str, CampusAccount],
                 ticket_ttl_s: float = DEFAULT_TICKET_TTL_S) -> None:
        self._accounts = accounts
        self._lock = threading.Lock()
        self._ttl = timedelta(seconds=ticket_ttl_s)
        self._clock: datetime | None = None
        self._tickets: dict[str, Ticket] = {}
        self._sessions: dict[str, str] = {}  # ticket-granting ticket → user
        self._validations: list[dict[str, Any]] = []
        self._validation_seq = 0
        self._ticket_seq = 0
        self._logouts: list[dict[str, Any]] = []
        self._services = [LOOPBACK_SERVICE]
        self._profile = "apereo"
        self._layout = "nested"
        self._leading_whitespace = False
        self._single_logout = True

    # -- settings and clock --------------------------------------------------------------------

    @property
    def ticket_ttl_s(self) -> float:
        return self._ttl.total_seconds()

    @ticket_ttl_s.setter
    def ticket_ttl_s(self, seconds: float) -> None:
        if seconds <= 0:
            raise ValueError("ticket_ttl_s must be positive")
        with self._lock:
            self._ttl = timedelta(seconds=seconds)

    def set_clock(self, moment: datetime | None) -> None:
        """Freeze the clock that issues and expires tickets (None: follow real time)."""
        if moment is not None and moment.tzinfo is None:
            raise ValueError("the CAS clock needs an aware datetime")
        with self._lock:
            self._clock = moment

    def now(self) -> datetime:
        clock = self._clock
        return clock if clock is not None else datetime.now(UTC)

    def configure(self, *, profile: str | None = None, attribute_layout: str | None = None,
                  leading_whitespace: bool | None = None,
                  single_logout: bool | None = None) -> None:
        """The server's manner: `profile` "apereo" (default) or "shibboleth"; the XML's
        attribute layout and leading whitespace; whether it sends single-logout requests."""
        if profile is not None and profile not in PROFILES:
            raise ValueError(f"profile must be one of {PROFILES}")
        if attribute_layout is not None and attribute_layout not in ATTRIBUTE_LAYOUTS:
            raise ValueError(f"attribute_layout must be one of {ATTRIBUTE_LAYOUTS}")
        with self._lock:
            self._profile = profile or self._profile
            self._layout = attribute_layout or self._layout
            if leading_whitespace is not None:
                self._leading_whitespace = leading_whitespace
            if single_logout is not None:
                self._single_logout = single_logout

    @property
    def profile(self) -> str:
        return self._profile

    def xml_style(self) -> dict[str, Any]:
        with self._lock:
            return {"layout": self._layout, "leading_whitespace": self._leading_whitespace}

    def register_service(self, prefix: str) -> None:
        """Register every service URL starting with `prefix` (as a CAS services registry
        entry would)."""
        if not is_web_url(prefix):
            raise ValueError(f"a service prefix must be an http(s) URL, got {prefix!r}")
        with self._lock:
            self._services.append(re.escape(prefix) + ".*")

    def is_registered(self, service: str) -> bool:
        with self._lock:
            return any(re.fullmatch(pattern, service) for pattern in self._services)

    # -- control accessor ----------------------------------------------------------------------

    def issue_ticket(self, user: str, service: str, *, from_new_login: bool = True,
                     tgt: str | None = None) -> str:
        """A service ticket for `user` at `service`, as a successful login would issue (in
        the CAS session `tgt`, if given).

        A user who is not a campus account gets a ticket with no attributes (so a client's
        fallback to the CAS user name can be tested).
        """
        with self._lock:
            return self._issue(user, service, from_new_login, tgt)

    def tickets(self) -> list[dict[str, Any]]:
        """Every ticket issued since the last reset, oldest first."""
        with self._lock:
            return [{"ticket": t.id, "user": t.user, "service": t.service,
                     "issued_at": _iso(t.issued), "expires_at": _iso(t.issued + self._ttl),
                     "used": t.used, "from_new_login": t.from_new_login}
                    for t in self._tickets.values()]

    def validations(self) -> list[dict[str, Any]]:
        """Every serviceValidate request: endpoint, service, ticket, outcome, reason, user."""
        with self._lock:
            return copy.deepcopy(self._validations)

    def logouts(self) -> list[dict[str, Any]]:
        """Every single-logout request sent: service, ticket, status, error."""
        with self._lock:
            return copy.deepcopy(self._logouts)

    def reset(self) -> None:
        """Forget tickets, CAS sessions, validations and logouts; real clock, default ticket
        lifetime, services registry and manner."""
        with self._lock:
            self._tickets.clear()
            self._sessions.clear()
            self._validations.clear()
            self._logouts.clear()
            self._clock = None
            self._ttl = timedelta(seconds=DEFAULT_TICKET_TTL_S)
            self._services = [LOOPBACK_SERVICE]
            self._profile, self._layout = "apereo", "nested"
            self._leading_whitespace, self._single_logout = False, True

    # -- used by the routes --------------------------------------------------------------------

    def log_in(self, user: str, password: str) -> CampusAccount | None:
        return check_credentials(self._accounts, user, password)

    def start_session(self, user: str) -> str:
        with self._lock:
            tgt = f"TGT-{secrets.token_urlsafe(32)}"
            self._sessions[tgt] = user
            return tgt

    def session_user(self, tgt: str | None) -> str | None:
        with self._lock:
            return self._sessions.get(tgt) if tgt else None

    def end_session(self, tgt: str | None) -> list[tuple[str, str]]:
        """End a CAS session; the (service, ticket) pairs to tell about it (none when single
        logout is off)."""
        with self._lock:
            if self._sessions.pop(tgt or "", None) is None or not self._single_logout:
                return []
            return [(t.service, t.id) for t in self._tickets.values() if t.tgt == tgt]

    def record_logout(self, **entry: Any) -> None:
        with self._lock:
            self._logouts.append(entry)
            del self._logouts[:-LOG_CAP]

    def validate(self, endpoint: str, service: str | None, ticket: str | None,
                 renew: bool = False) -> Validation:
        """Check and use up a service ticket (CAS protocol §2.5), and log the request."""
        with self._lock:
            outcome, reason = self._check(service, ticket, renew)
            self._validation_seq += 1
            self._validations.append({
                "seq": self._validation_seq, "time": _iso(self.now()), "endpoint": endpoint,
                "service": service, "ticket": ticket,
                "outcome": outcome.code or "success", "reason": reason, "user": outcome.user,
            })
            del self._validations[:-LOG_CAP]
            return outcome

    # -- inside the lock -----------------------------------------------------------------------

    def _issue(self, user: str, service: str, from_new_login: bool, tgt: str | None) -> str:
        self._ticket_seq += 1
        size = SHIBBOLETH_TICKET_BYTES if self._profile == "shibboleth" else 24
        ticket = Ticket(f"ST-{self._ticket_seq}-{secrets.token_urlsafe(size)}", user, service,
                        self.now(), from_new_login, tgt=tgt)
        self._tickets[ticket.id] = ticket
        while len(self._tickets) > LOG_CAP:
            del self._tickets[next(iter(self._tickets))]
        return ticket.id

    def _check(self, service: str | None, ticket_id: str | None,
               renew: bool) -> tuple[Validation, str]:
        if not service or not ticket_id:
            return Validation(INVALID_REQUEST,
                              "'service' and 'ticket' parameters are both required"), "missing"
        ticket = self._tickets.get(ticket_id)
        unknown = Validation(INVALID_TICKET, f"Ticket '{ticket_id}' not recognized")
        if ticket is None:
            return unknown, "unknown"
        if ticket.used:
            return unknown, "replayed"
        ticket.used = True  # whatever happens next, the ticket is spent
        if self.now() - ticket.issued > self._ttl:
            return unknown, "expired"
        if service != ticket.service:
            return Validation(
                INVALID_SERVICE,
                f"Ticket '{ticket_id}' does not match supplied service. The original service "
                f"was '{ticket.service}' and the supplied service was '{service}'."), "service"
        if not any(re.fullmatch(pattern, service) for pattern in self._services):
            return Validation(INVALID_SERVICE, f"Service '{service}' is not registered "
                              "with this CAS server."), "unregistered"
        if renew and not ticket.from_new_login:
            return Validation(INVALID_TICKET, f"Ticket '{ticket_id}' did not come from a new "
                              "login, and renew was asked for"), "renew"
        account = self._accounts.get(ticket.user)
        return Validation(None, "", ticket.user, account.attributes if account else {},
                          ticket.issued, ticket.from_new_login), "ok"


# -- the CAS XML ---------------------------------------------------------------------------

def attribute_pairs(result: Validation) -> list[tuple[str, str]]:
    """CAS's own protocol attributes first, then the account's released ones (multi-valued
    attributes repeat the element, as CAS does)."""
    issued = result.issued or datetime.now(UTC)
    pairs = [("authenticationDate", _iso(issued)),
             ("longTermAuthenticationRequestTokenUsed", "false"),
             ("isFromNewLogin", "true" if result.from_new_login else "false")]
    for name, values in (result.attributes or {}).items():
        pairs += [(name, value) for value in values]
    return pairs


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# -- routes ------------------------------------------------------------------------------------

class CasRoutes:
    def __init__(self, cas: CasServer) -> None:
        self.cas = cas

    async def login_form(self, request: Request) -> Response:
        params = request.query_params
        service = params.get("service", "")
        if service and not self._known(service):
            return bad_service(request, service)
        tgt = request.cookies.get(SESSION_COOKIE)
        user = self.cas.session_user(tgt)
        if user is not None and params.get("renew", "").lower() != "true":
            if service:  # single sign-on: a CAS session exists, no form needed
                return ticket_redirect(service, self.cas.issue_ticket(
                    user, service, from_new_login=False, tgt=tgt))
            return logged_in(request, user)
        if service and params.get("gateway", "").lower() == "true":
            return RedirectResponse(service, status_code=302)  # gateway: never show the form
        return login_page(request, service)

    async def login(self, request: Request) -> Response:
        form = await read_form(request)
        if form is None:
            return message(request, "Log in failed", "The login form could not be read.",
                           status=400)
        service = form.get("service", "")
        if service and not self._known(service):
            return bad_service(request, service)
        username = form.get("username", "").strip()
        account = self.cas.log_in(username, form.get("password", ""))
        if account is None:
            return login_page(request, service, username=username,
                              error="The user name or password is not right. Try again.")
        tgt = self.cas.start_session(account.user)
        if service:
            response = ticket_redirect(service, self.cas.issue_ticket(account.user, service,
                                                                      tgt=tgt))
        else:
            response = logged_in(request, account.user)
        response.set_cookie(SESSION_COOKIE, tgt, path=root_path(request) or "/", httponly=True,
                            samesite="lax", secure=request.url.scheme == "https")
        return response

    def _known(self, service: str) -> bool:
        return is_web_url(service) and self.cas.is_registered(service)

    async def service_validate_v3(self, request: Request) -> Response:
        if self.cas.profile == "shibboleth":  # a Shibboleth IdP has no /p3/ path
            return Response("Not Found", status_code=404, media_type="text/plain")
        return self._validate(request, "/p3/serviceValidate")

    async def service_validate_v2(self, request: Request) -> Response:
        return self._validate(request, "/serviceValidate")

    def _validate(self, request: Request, endpoint: str) -> Response:
        params = request.query_params
        result = self.cas.validate(endpoint, params.get("service"), params.get("ticket"),
                                   renew=params.get("renew", "").lower() == "true")
        style = self.cas.xml_style()
        body = (failure_xml(result.code, result.message,
                            leading_whitespace=style["leading_whitespace"]) if result.code
                else success_xml(result.user or "", attribute_pairs(result), **style))
        # CAS answers failures with 200 too: the XML says what happened.
        return Response(body, media_type=XML_TYPE, headers={"Cache-Control": "no-store"})

    async def logout(self, request: Request) -> Response:
        for service, ticket in self.cas.end_session(request.cookies.get(SESSION_COOKIE)):
            await self._single_logout(service, ticket)
        service = request.query_params.get("service", "")
        response = message(request, "Logout successful",
                           "You have logged out of the campus CAS.",
                           link=service if is_web_url(service) else None, problem=False)
        response.delete_cookie(SESSION_COOKIE, path=root_path(request) or "/", httponly=True,
                               samesite="lax")
        return response

    async def _single_logout(self, service: str, ticket: str) -> None:
        """Tell a service its ticket's CAS session ended: a back-channel form POST of
        `logoutRequest` to the service URL, as CAS servers send it."""
        entry: dict[str, Any] = {"service": service, "ticket": ticket}
        try:
            # Async client: in the demo the proxy runs on this same event loop.
            async with httpx.AsyncClient(timeout=LOGOUT_TIMEOUT_S, trust_env=False,
                                         follow_redirects=False) as client:
                answer = await client.post(service, data={
                    "logoutRequest": logout_request_xml(ticket, self.cas.now())})
            self.cas.record_logout(**entry, status=answer.status_code, error=None)
        except httpx.HTTPError as exc:
            self.cas.record_logout(**entry, status=None, error=type(exc).__name__)

    async def home(self, request: Request) -> Response:
        return RedirectResponse(f"{root_path(request)}/login", status_code=302)


def ticket_redirect(service: str, ticket: str) -> Response:
    return RedirectResponse(with_query(service, ticket=ticket), status_code=302)


def login_page(request: Request, service: str, *, username: str = "",
               error: str | None = None) -> Response:
    return page(request, "cas_login.html",
                {"service": service, "username": username, "error": error})


def logged_in(request: Request, user: str) -> Response:
    return message(request, "Log in successful",
                   f"You are logged in to the campus CAS as {user}.", problem=False)


def bad_service(request: Request, service: str) -> Response:
    reason = ("is not registered with this CAS server" if is_web_url(service)
              else "is not an http(s) URL")
    return message(request, "Application not authorized",
                   f"The service this login is for {reason}, so CAS will not send you there.",
                   status=400)


def message(request: Request, heading: str, text: str, *, status: int = 200,
            link: str | None = None, problem: bool = True) -> Response:
    return page(request, "cas_message.html",
                {"heading": heading, "message": text, "link": link, "problem": problem},
                status=status)


def create_app(users: dict | None = None) -> Starlette:
    """The CAS server with `users` (name → account dict), or the seeded campus accounts."""
    cas = CasServer(parse_accounts(users if users is not None else load_campus_users()))
    routes = CasRoutes(cas)
    app = Starlette(routes=[
        Route("/", routes.home, methods=["GET"]),
        Route("/login", routes.login_form, methods=["GET"]),
        Route("/login", routes.login, methods=["POST"]),
        Route("/p3/serviceValidate", routes.service_validate_v3, methods=["GET"]),
        Route("/serviceValidate", routes.service_validate_v2, methods=["GET"]),
        Route("/logout", routes.logout, methods=["GET"]),
        STYLESHEET_ROUTE,
    ])
    app.state.cas = cas
    return app
