"""Alma's XML error body (`<web_service_result>`): the first error's fields.

Alma answers XML when it does not honour our `Accept: application/json` (some gateways and error
paths do), and the body then carries the same fields as the JSON form
(docs/alma.md#error-bodies). The body comes from the network, so it is parsed by
proxy/safe_xml.py (bounded in size, any DTD refused), here to at most `MAX_BYTES`.
"""

from __future__ import annotations

import re

from proxy.safe_xml import UnsafeXml, local_name, parse

MAX_BYTES = 64 * 1024
FIELDS = ("errorCode", "errorMessage", "trackingId")
MAX_FIELD_CHARS = 2000

# An XML body starts with `<` once leading whitespace and a byte-order mark are skipped.
_LOOKS_LIKE_XML = re.compile(r"^[\ufeff\s]*<")


class XmlRefused(ValueError):
    """The body is not an XML document this parser agrees to read."""


def looks_like_xml(text: str) -> bool:
    return bool(_LOOKS_LIKE_XML.match(text))


def first_error(text: str) -> tuple[str, str, str]:
    """(errorCode, errorMessage, trackingId) of the first `<error>` in a `<web_service_result>`
    body; empty strings when the body has none. Raises XmlRefused for a body that is too big,
    declares a DTD or is not well-formed."""
    try:
        root = parse(text.lstrip("\ufeff"), max_bytes=MAX_BYTES)
    except UnsafeXml as exc:
        raise XmlRefused(str(exc)) from None
    if local_name(root.tag) != "web_service_result":
        return "", "", ""
    error = next((e for e in root.iter() if local_name(e.tag) == "error"), None)
    if error is None:
        return "", "", ""
    values = {local_name(child.tag): "".join(child.itertext()).strip()[:MAX_FIELD_CHARS]
              for child in error}
    code, message, tracking = (values.get(name, "") for name in FIELDS)
    return code, message, tracking
