"""Sandbox CAS: a CAS 3.0 server with a login form and the seeded campus accounts.

Routes (relative to where the app is mounted, e.g. `/cas`):

  GET  /login?service=URL[&renew=true][&gateway=true]   login form (or straight back to the
                                                        service when a CAS session exists)
  POST /login                                           credentials → 302 to service?ticket=ST-…
  GET  /p3/serviceValidate?service=&ticket=             CAS 3.0 answer, with attributes
  GET  /serviceValidate?service=&ticket=                CAS 2.0 answer, without attributes
  GET  /logout[?service=URL]                            ends the CAS session
  GET  /static/campus.css

Service tickets behave like CAS's: single use, valid for `ticket_ttl_s` (10 s by default), and
bound to the exact service URL they were issued for. A ticket that fails validation for any
reason is used up. `app.state.cas` is the `CasServer` tests drive in-process.
"""

from __future__ import annotations

import copy
import secrets
import threading
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from xml.sax.saxutils import escape

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

CAS_NAMESPACE = "http://www.yale.edu/tp/cas"
XML_TYPE = "application/xml;charset=UTF-8"
DEFAULT_TICKET_TTL_S = 10.0
SESSION_COOKIE = "CASTGC"
LOG_CAP = 10_000  # tickets and validations kept for inspection; oldest go first

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

    # -- control accessor ----------------------------------------------------------------------

    def issue_ticket(self, user: str, service: str, *, from_new_login: bool = True) -> str:
        """A service ticket for `user` at `service`, as a successful login would issue.

        A user who is not a campus account gets a ticket with no attributes (so a client's
        fallback to the CAS user name can be tested).
        """
        with self._lock:
            return self._issue(user, service, from_new_login)

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

    def reset(self) -> None:
        """Forget tickets, CAS sessions and validations; real clock, default ticket lifetime."""
        with self._lock:
            self._tickets.clear()
            self._sessions.clear()
            self._validations.clear()
            self._clock = None
            self._ttl = timedelta(seconds=DEFAULT_TICKET_TTL_S)

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

    def end_session(self, tgt: str | None) -> None:
        with self._lock:
            self._sessions.pop(tgt or "", None)

    def validate(self, endpoint: str, service: str | None, ticket: str | None) -> Validation:
        """Check and use up a service ticket (CAS protocol §2.5), and log the request."""
        with self._lock:
            outcome, reason = self._check(service, ticket)
            self._validation_seq += 1
            self._validations.append({
                "seq": self._validation_seq, "time": _iso(self.now()), "endpoint": endpoint,
                "service": service, "ticket": ticket,
                "outcome": outcome.code or "success", "reason": reason, "user": outcome.user,
            })
            del self._validations[:-LOG_CAP]
            return outcome

    # -- inside the lock -----------------------------------------------------------------------

    def _issue(self, user: str, service: str, from_new_login: bool) -> str:
        self._ticket_seq += 1
        ticket = Ticket(f"ST-{self._ticket_seq}-{secrets.token_urlsafe(24)}", user, service,
                        self.now(), from_new_login)
        self._tickets[ticket.id] = ticket
        while len(self._tickets) > LOG_CAP:
            del self._tickets[next(iter(self._tickets))]
        return ticket.id

    def _check(self, service: str | None, ticket_id: str | None) -> tuple[Validation, str]:
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
        account = self._accounts.get(ticket.user)
        return Validation(None, "", ticket.user, account.attributes if account else {},
                          ticket.issued, ticket.from_new_login), "ok"


# -- the CAS XML -------------------------------------------------------------------------------

def success_xml(result: Validation, *, with_attributes: bool) -> str:
    lines = [f'<cas:serviceResponse xmlns:cas="{CAS_NAMESPACE}">',
             "    <cas:authenticationSuccess>",
             f"        <cas:user>{escape(result.user or '')}</cas:user>"]
    if with_attributes:
        lines.append("        <cas:attributes>")
        lines += [f"            <cas:{name}>{escape(value)}</cas:{name}>"
                  for name, value in _attribute_pairs(result)]
        lines.append("        </cas:attributes>")
    lines += ["    </cas:authenticationSuccess>", "</cas:serviceResponse>", ""]
    return "\n".join(lines)


def failure_xml(code: str, message: str) -> str:
    return "\n".join([
        f'<cas:serviceResponse xmlns:cas="{CAS_NAMESPACE}">',
        f'    <cas:authenticationFailure code="{code}">{escape(message)}'
        "</cas:authenticationFailure>",
        "</cas:serviceResponse>", ""])


def _attribute_pairs(result: Validation) -> list[tuple[str, str]]:
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
        if service and not is_web_url(service):
            return bad_service(request)
        user = self.cas.session_user(request.cookies.get(SESSION_COOKIE))
        if user is not None and params.get("renew", "").lower() != "true":
            if service:  # single sign-on: a CAS session exists, no form needed
                return ticket_redirect(service, self.cas.issue_ticket(user, service,
                                                                      from_new_login=False))
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
        if service and not is_web_url(service):
            return bad_service(request)
        username = form.get("username", "").strip()
        account = self.cas.log_in(username, form.get("password", ""))
        if account is None:
            return login_page(request, service, username=username,
                              error="The user name or password is not right. Try again.")
        tgt = self.cas.start_session(account.user)
        if service:
            response = ticket_redirect(service, self.cas.issue_ticket(account.user, service))
        else:
            response = logged_in(request, account.user)
        response.set_cookie(SESSION_COOKIE, tgt, path=root_path(request) or "/", httponly=True,
                            samesite="lax", secure=request.url.scheme == "https")
        return response

    async def service_validate_v3(self, request: Request) -> Response:
        return self._validate(request, "/p3/serviceValidate", with_attributes=True)

    async def service_validate_v2(self, request: Request) -> Response:
        return self._validate(request, "/serviceValidate", with_attributes=False)

    def _validate(self, request: Request, endpoint: str, *, with_attributes: bool) -> Response:
        params = request.query_params
        result = self.cas.validate(endpoint, params.get("service"), params.get("ticket"))
        body = (failure_xml(result.code, result.message) if result.code
                else success_xml(result, with_attributes=with_attributes))
        # CAS answers failures with 200 too: the XML says what happened.
        return Response(body, media_type=XML_TYPE, headers={"Cache-Control": "no-store"})

    async def logout(self, request: Request) -> Response:
        self.cas.end_session(request.cookies.get(SESSION_COOKIE))
        service = request.query_params.get("service", "")
        response = message(request, "Logout successful",
                           "You have logged out of the campus CAS.",
                           link=service if is_web_url(service) else None, problem=False)
        response.delete_cookie(SESSION_COOKIE, path=root_path(request) or "/", httponly=True,
                               samesite="lax")
        return response

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


def bad_service(request: Request) -> Response:
    return message(request, "Application not authorized",
                   "The service this login is for is not an http(s) URL, so CAS will not "
                   "send you there.", status=400)


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
