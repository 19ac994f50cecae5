"""CAS 3.0 sign-in: the login URL to send the browser to, and server-to-server validation of
the ticket it brings back (`/p3/serviceValidate`). A ticket is worth nothing until the CAS
server itself says who it belongs to, for exactly our service URL."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from urllib.parse import urlencode

import httpx

CAS_NS = "{http://www.yale.edu/tp/cas}"
MAX_TICKET_LENGTH = 256


class CasError(Exception):
    """The ticket was refused, or the CAS server could not be asked. `code` is CAS's own
    failure code (INVALID_TICKET, INVALID_SERVICE, ...) or ours (UNAVAILABLE, BAD_RESPONSE)."""

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


def login_url(cas_url: str, service: str) -> str:
    return f"{cas_url}/login?{urlencode({'service': service})}"


async def validate_ticket(http: httpx.AsyncClient, cas_url: str, service: str,
                          ticket: str) -> CasUser:
    """Ask the CAS server who the ticket belongs to. Tickets are single use: CAS refuses a
    replay, and a ticket issued for another service."""
    if not ticket.startswith("ST-") or len(ticket) > MAX_TICKET_LENGTH:
        raise CasError("INVALID_TICKET", "not a CAS service ticket")
    try:
        response = await http.get(f"{cas_url}/p3/serviceValidate",
                                  params={"service": service, "ticket": ticket})
    except httpx.HTTPError as exc:
        raise CasError("UNAVAILABLE", f"CAS could not be reached: {type(exc).__name__}") from None
    if response.status_code != 200:
        raise CasError("UNAVAILABLE", f"CAS answered {response.status_code}")
    return parse_service_response(response.text)


def parse_service_response(text: str) -> CasUser:
    """The `<cas:serviceResponse>` document as a CasUser, or CasError."""
    try:
        root = ET.fromstring(text)  # noqa: S314 - from our configured CAS server; expat limits entity expansion
    except ET.ParseError:
        raise CasError("BAD_RESPONSE", "CAS sent something that is not XML") from None
    failure = root.find(f"{CAS_NS}authenticationFailure")
    if failure is not None:
        raise CasError(failure.get("code", "INVALID_TICKET"), (failure.text or "").strip())
    success = root.find(f"{CAS_NS}authenticationSuccess")
    user = success.find(f"{CAS_NS}user") if success is not None else None
    if user is None or not (user.text or "").strip():
        raise CasError("BAD_RESPONSE", "CAS answered without a user")
    attributes: dict[str, list[str]] = {}
    holder = success.find(f"{CAS_NS}attributes")
    for element in list(holder) if holder is not None else []:
        name = element.tag.removeprefix(CAS_NS)
        attributes.setdefault(name, []).append((element.text or "").strip())
    return CasUser(user.text.strip(), attributes)
