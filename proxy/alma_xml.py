"""Alma's XML error body (`<web_service_result>`), read with a small, bounded, streaming parser.

Alma answers XML when it does not honour our `Accept: application/json` (some gateways and error
paths do), and the body then carries the same fields as the JSON form
(docs/alma.md#error-bodies). The body comes from the network, so it is read with expat directly:
at most `MAX_BYTES`, at most `MAX_DEPTH` levels, and any DTD or entity declaration is refused
outright (with none there is nothing to expand and nothing external to fetch, which is what
defusedxml would otherwise guard against). No tree is built: only the first error's three fields
are kept.
"""

from __future__ import annotations

import re
from xml.parsers import expat

MAX_BYTES = 64 * 1024
MAX_DEPTH = 16
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
    too deep, declares a DTD or is not well-formed."""
    data = text.encode("utf-8")
    if len(data) > MAX_BYTES:
        raise XmlRefused(f"XML body larger than {MAX_BYTES} bytes")
    reader = _ErrorReader()
    parser = expat.ParserCreate()
    parser.StartDoctypeDeclHandler = _refuse_dtd
    parser.EntityDeclHandler = _refuse_dtd
    parser.StartElementHandler = reader.start
    parser.EndElementHandler = reader.end
    parser.CharacterDataHandler = reader.text
    try:
        parser.Parse(data, True)
    except expat.ExpatError as exc:
        raise XmlRefused(f"not well-formed XML ({exc})") from None
    if reader.root not in ("", "web_service_result"):
        return "", "", ""
    return reader.result()


def _refuse_dtd(*_args: object) -> None:
    raise XmlRefused("a DTD or entity declaration in an Alma answer")


def _local(name: str) -> str:
    """The element name without its namespace (expat passes `uri name` only with namespaces
    on; without, a prefix may remain)."""
    return name.rsplit(":", 1)[-1].rsplit(" ", 1)[-1]


class _ErrorReader:
    """Collects the fields of the first `<error>` element, wherever it sits."""

    def __init__(self) -> None:
        self.root = ""
        self.depth = 0
        self.in_error = False
        self.done = False
        self.field = ""
        self.values: dict[str, list[str]] = {name: [] for name in FIELDS}

    def start(self, name: str, _attributes: dict) -> None:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise XmlRefused(f"XML nested deeper than {MAX_DEPTH} levels")
        local = _local(name)
        if self.depth == 1:
            self.root = local
        if self.done:
            return
        if local == "error":
            self.in_error = True
        elif self.in_error and local in FIELDS:
            self.field = local

    def end(self, name: str) -> None:
        self.depth -= 1
        local = _local(name)
        if local == self.field:
            self.field = ""
        elif local == "error" and self.in_error:
            self.in_error = False
            self.done = True

    def text(self, data: str) -> None:
        if self.field and not self.done:
            parts = self.values[self.field]
            if sum(map(len, parts)) < MAX_FIELD_CHARS:
                parts.append(data)

    def result(self) -> tuple[str, str, str]:
        code, message, tracking = ("".join(self.values[name]).strip()[:MAX_FIELD_CHARS]
                                   for name in FIELDS)
        return code, message, tracking
