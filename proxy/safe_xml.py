"""XML from outside (a CAS server's answers, its single-logout requests), parsed safely: bounded
in size, and refused outright when it declares a DTD, which is where entity expansion and
external entities live. The CAS documents we read never need one.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from xml.parsers import expat

MAX_XML_BYTES = 256 * 1024


class UnsafeXml(ValueError):
    """Too large, not well-formed, or carrying a DTD."""


def parse(text: str | bytes, max_bytes: int = MAX_XML_BYTES) -> ET.Element:
    """The document's root element, tags as ElementTree spells them (`{namespace}name`).
    Leading whitespace is dropped first: some servers send it before the XML declaration,
    which a strict parser would refuse."""
    data = text.encode("utf-8") if isinstance(text, str) else text
    if len(data) > max_bytes:
        raise UnsafeXml(f"more than {max_bytes} bytes")
    builder = ET.TreeBuilder()
    parser = expat.ParserCreate(namespace_separator="}")
    parser.StartDoctypeDeclHandler = _refuse_dtd
    parser.EntityDeclHandler = _refuse_dtd
    parser.ExternalEntityRefHandler = _refuse_dtd
    parser.StartElementHandler = lambda tag, attrs: builder.start(
        _tag(tag), {_tag(name): value for name, value in attrs.items()})
    parser.EndElementHandler = lambda tag: builder.end(_tag(tag))
    parser.CharacterDataHandler = builder.data
    try:
        parser.Parse(data.lstrip(), True)
        return builder.close()
    except expat.ExpatError as exc:
        raise UnsafeXml(f"not well-formed XML: {exc}") from None
    except AssertionError:  # TreeBuilder: no root element
        raise UnsafeXml("no root element") from None


def _tag(name: str) -> str:
    namespace, separator, local = name.rpartition("}")
    return "{" + namespace + "}" + local if separator else local


def _refuse_dtd(*_args: object) -> None:
    raise UnsafeXml("a DTD or entity declaration")


def local_name(tag: str) -> str:
    """`{namespace}name` as `name`."""
    return tag.rpartition("}")[2]
