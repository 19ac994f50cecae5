"""E-mail addresses: the ones in the settings (checked at start-up) and a patron's from Alma
(checked before it becomes a recipient, since it is untrusted)."""

from __future__ import annotations

from email.errors import HeaderParseError
from email.headerregistry import Address
from email.utils import getaddresses, parseaddr


def parse_mailbox(text: str) -> str:
    """`fines@library.example.edu` or `Library fines <fines@library.example.edu>`, as given;
    ValueError when it is not one address."""
    text = text.strip()
    if any(ch in text for ch in "\r\n\0"):
        raise ValueError("must be one line")
    found = getaddresses([text])
    address = found[0][1] if len(found) == 1 else ""
    if not address or not plain_address(address):
        raise ValueError(f"is not an e-mail address: {text!r}")
    return text


def address_of(mailbox: str) -> str:
    """The bare address of a mailbox (`Name <a@b>` -> `a@b`), for the SMTP envelope."""
    return parseaddr(mailbox)[1]


def domain_of(mailbox: str) -> str:
    return address_of(mailbox).rpartition("@")[2] or "patronpay.invalid"


def plain_address(text: str) -> str | None:
    """`text` when it is a single ordinary address (local@domain, printable ASCII, no
    spaces), else None. What Alma holds is typed by people: anything odd is not mailed."""
    text = text.strip()
    if not text.isascii() or not text.isprintable() or " " in text or len(text) > 254:
        return None
    local, at, domain = text.rpartition("@")
    if not at or not local or "." not in domain or "@" in local or domain.startswith("."):
        return None
    try:
        Address(addr_spec=text)
    except (HeaderParseError, ValueError, IndexError):
        return None
    return text


def masked(address: str) -> str:
    """A hint of where mail goes, for a screen others may read: `m•••@example.edu`. The local
    part is what names a person, so only its first character is shown."""
    local, _, domain = address.rpartition("@")
    return f"{local[:1]}\u2022\u2022\u2022@{domain}"
