"""CAS sign-in: the login and logout URLs to send the browser to, server-to-server validation
of the ticket it brings back, and the single-logout request a CAS server posts when a CAS
session ends (docs/deploy.md#sign-in-methods). A ticket is worth nothing until the CAS server
itself says who it belongs to, for exactly our service URL.

Real servers differ (docs/security.md#sign-in-checks): Apereo CAS validates at
`/p3/serviceValidate`; a Shibboleth IdP serving CAS has only `/serviceValidate` (CAS 2, with
attributes all the same) and issues tickets that encode state, far longer than 256 characters.
Attributes arrive nested in `<cas:attributes>`, directly under `<cas:authenticationSuccess>`,
or as `<cas:attribute name="…" value="…"/>`; some servers put whitespace before the XML
declaration.
"""

from __future__ import annotations

import hashlib
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from urllib.parse import urlencode

import httpx

from proxy.safe_xml import UnsafeXml, local_name, parse

CAS_NS = "{http://www.yale.edu/tp/cas}"
SAMLP_NS = "{urn:oasis:names:tc:SAML:2.0:protocol}"
VALIDATE_PATHS = ("/p3/serviceValidate", "/serviceValidate")
MAX_TICKET_LENGTH = 8192
MAX_RESPONSE_BYTES = 256 * 1024
MAX_LOGOUT_REQUEST_BYTES = 2 * MAX_TICKET_LENGTH  # a ticket and its small SAML envelope

# Elements of <cas:authenticationSuccess> that are not attributes.
_NOT_ATTRIBUTES = {"user", "attributes", "proxyGrantingTicket", "proxies"}


class CasError(Exception):
    """The ticket was refused, or the CAS server could not be asked. `code` is CAS's own
    failure code (INVALID_TICKET, INVALID_SERVICE, ...) or ours (UNAVAILABLE, BAD_RESPONSE,
    TICKET_TOO_LONG, MISSING_ATTRIBUTE)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class CasUser:
    user: str
    attributes: dict[str, list[str]] = field(default_factory=dict)

    def alma_id(self, attribute: str) -> str:
        """The Alma user id: the named attribute when configured, else the CAS user name."""
        if not attribute:
            return self.user
        values = self.attributes.get(attribute) or []
        if not values or not values[0].strip():
            raise CasError("MISSING_ATTRIBUTE", f"CAS did not release the attribute {attribute}")
        return values[0].strip()


def login_url(cas_url: str, service: str, *, renew: bool = False) -> str:
    params = {"service": service} | ({"renew": "true"} if renew else {})
    return f"{cas_url}/login?{urlencode(params)}"


def logout_url(cas_url: str, back_to: str) -> str:
    """CAS's logout, asked to offer the way back to our page (CAS 3 `service`; older servers
    read `url`)."""
    return f"{cas_url}/logout?{urlencode({'service': back_to, 'url': back_to})}"


def ticket_hash(ticket: str) -> str:
    """What a session keeps of its ticket: enough to find it again at single logout, useless
    to anyone who reads the database."""
    return hashlib.sha256(ticket.encode()).hexdigest()


def check_ticket_shape(ticket: str) -> None:
    """Refuse what no CAS server issues before asking one: not a service ticket, or over
    MAX_TICKET_LENGTH (a Shibboleth IdP's run to a couple of kilobytes)."""
    if len(ticket) > MAX_TICKET_LENGTH:
        raise CasError("TICKET_TOO_LONG", f"a ticket of more than {MAX_TICKET_LENGTH} characters")
    if not ticket.startswith("ST-") or not all(33 <= ord(c) < 127 for c in ticket):
        raise CasError("INVALID_TICKET", "not a CAS service ticket")


async def validate_ticket(http: httpx.AsyncClient, cas_url: str, service: str, ticket: str, *,
                          validate_path: str = VALIDATE_PATHS[0],
                          renew: bool = False) -> CasUser:
    """Ask the CAS server who the ticket belongs to. Tickets are single use: CAS refuses a
    replay, and a ticket issued for another service."""
    check_ticket_shape(ticket)
    params = {"service": service, "ticket": ticket} | ({"renew": "true"} if renew else {})
    try:
        response = await http.get(f"{cas_url}{validate_path}", params=params)
    except httpx.HTTPError as exc:
        raise CasError("UNAVAILABLE", f"CAS could not be reached: {type(exc).__name__}") from None
    if response.status_code != 200:
        raise CasError("UNAVAILABLE", f"CAS answered {response.status_code}")
    return parse_service_response(response.content)


def parse_service_response(text: str | bytes) -> CasUser:
    """The `<cas:serviceResponse>` document as a CasUser, or CasError."""
    try:
        root = parse(text, MAX_RESPONSE_BYTES)
    except UnsafeXml as exc:
        raise CasError("BAD_RESPONSE", f"CAS sent something we do not read: {exc}") from None
    failure = root.find(f"{CAS_NS}authenticationFailure")
    if failure is not None:
        raise CasError(failure.get("code", "INVALID_TICKET"), (failure.text or "").strip())
    success = root.find(f"{CAS_NS}authenticationSuccess")
    user = success.find(f"{CAS_NS}user") if success is not None else None
    if success is None or user is None or not (user.text or "").strip():
        raise CasError("BAD_RESPONSE", "CAS answered without a user")
    return CasUser(user.text.strip(), _attributes(success))


def _attributes(success: ET.Element) -> dict[str, list[str]]:
    """Every layout seen in the wild, merged: children of <cas:attributes>, attributes placed
    directly under <cas:authenticationSuccess>, and <cas:attribute name= value=/>."""
    attributes: dict[str, list[str]] = {}
    holders = [success, *success.findall(f"{CAS_NS}attributes")]
    for holder in holders:
        for element in holder:
            name = local_name(element.tag)
            if holder is success and name in _NOT_ATTRIBUTES:
                continue
            if name == "attribute" and element.get("name"):
                name, value = element.get("name", ""), element.get("value", element.text or "")
            else:
                value = element.text or ""
            attributes.setdefault(name, []).append(value.strip())
    return attributes


def logout_request_ticket(text: str | bytes) -> str:
    """The service ticket a CAS single-logout request names (`<samlp:SessionIndex>`), or
    CasError when it is not one."""
    try:
        root = parse(text, MAX_LOGOUT_REQUEST_BYTES)
    except UnsafeXml as exc:
        raise CasError("BAD_LOGOUT_REQUEST", f"not a logout request we read: {exc}") from None
    index = root.find(f"{SAMLP_NS}SessionIndex")
    ticket = (index.text or "").strip() if index is not None else ""
    if local_name(root.tag) != "LogoutRequest" or not ticket:
        raise CasError("BAD_LOGOUT_REQUEST", "a logout request naming no ticket")
    check_ticket_shape(ticket)
    return ticket
