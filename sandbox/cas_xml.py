"""The sandbox CAS's XML: validation answers in the attribute layouts real servers use, and the
single-logout request it posts to services.

Layouts (`ATTRIBUTE_LAYOUTS`):

  nested      CAS 3: <cas:attributes><cas:almaId>…</cas:almaId></cas:attributes>
  flat        released attributes directly under <cas:authenticationSuccess>
  name_value  <cas:attributes><cas:attribute name="almaId" value="…"/></cas:attributes>

`leading_whitespace` puts an XML declaration after a blank line, as some servers' templates do.
"""

from __future__ import annotations

import secrets
from datetime import datetime
from xml.sax.saxutils import escape, quoteattr

CAS_NAMESPACE = "http://www.yale.edu/tp/cas"
ATTRIBUTE_LAYOUTS = ("nested", "flat", "name_value")


def success_xml(user: str, pairs: list[tuple[str, str]], *, layout: str = "nested",
                leading_whitespace: bool = False) -> str:
    """A successful validation for `user` with attribute `pairs` (empty: none at all)."""
    lines = [f'<cas:serviceResponse xmlns:cas="{CAS_NAMESPACE}">',
             "    <cas:authenticationSuccess>",
             f"        <cas:user>{escape(user)}</cas:user>"]
    if pairs and layout == "flat":
        lines += [f"        <cas:{name}>{escape(value)}</cas:{name}>" for name, value in pairs]
    elif pairs and layout == "name_value":
        lines.append("        <cas:attributes>")
        lines += [f"            <cas:attribute name={quoteattr(name)} value={quoteattr(value)}/>"
                  for name, value in pairs]
        lines.append("        </cas:attributes>")
    elif pairs:
        lines.append("        <cas:attributes>")
        lines += [f"            <cas:{name}>{escape(value)}</cas:{name}>"
                  for name, value in pairs]
        lines.append("        </cas:attributes>")
    lines += ["    </cas:authenticationSuccess>", "</cas:serviceResponse>", ""]
    return _declared("\n".join(lines), leading_whitespace)


def failure_xml(code: str, message: str, *, leading_whitespace: bool = False) -> str:
    return _declared("\n".join([
        f'<cas:serviceResponse xmlns:cas="{CAS_NAMESPACE}">',
        f'    <cas:authenticationFailure code="{code}">{escape(message)}'
        "</cas:authenticationFailure>",
        "</cas:serviceResponse>", ""]), leading_whitespace)


def _declared(body: str, leading_whitespace: bool) -> str:
    if not leading_whitespace:
        return body
    return '\n  \n<?xml version="1.0" encoding="UTF-8"?>\n' + body


def logout_request_xml(ticket: str, issued: datetime) -> str:
    """The SAML LogoutRequest a CAS server posts as `logoutRequest` (CAS protocol, appendix
    on single logout): `SessionIndex` names the service ticket."""
    return (
        '<samlp:LogoutRequest xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" '
        'xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" '
        f'ID="LR-{secrets.token_hex(12)}" Version="2.0" '
        f'IssueInstant="{issued.strftime("%Y-%m-%dT%H:%M:%SZ")}">'
        "<saml:NameID>@NOT_USED@</saml:NameID>"
        f"<samlp:SessionIndex>{escape(ticket)}</samlp:SessionIndex>"
        "</samlp:LogoutRequest>")
