"""Handing a finished message to the mail server: `PATRONPAY_SMTP_URL` read once, then one
SMTP conversation per message with the standard library's smtplib (run in a thread by the
worker, so a slow server never holds the event loop).

    smtp://host[:25]                  plain, loopback hosts only (a local relay, the sandbox)
    smtp+starttls://user@host[:587]   STARTTLS before anything else, certificate checked
    smtps://user@host[:465]           TLS from the first byte, certificate checked

The password comes from `PATRONPAY_SMTP_PASSWORD` (usually its `_FILE` twin), never the URL.
The server's certificate is checked against the system's authorities, or, when
`PATRONPAY_SMTP_CA_FILE` names a PEM file (a campus CA), against that file's alone.
"""

from __future__ import annotations

import ipaddress
import smtplib
import socket
import ssl
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

SCHEMES = {"smtp": 25, "smtp+starttls": 587, "smtps": 465}
TIMEOUT_SECONDS = 30.0


@dataclass(frozen=True)
class SmtpTarget:
    scheme: str
    host: str
    port: int
    username: str = ""
    ca_file: str = ""  # PEM authorities to trust instead of the system's; "" = the system's

    @property
    def url(self) -> str:
        """The URL as logged: it never holds a password."""
        user = f"{self.username}@" if self.username else ""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.scheme}://{user}{host}:{self.port}"


def parse_smtp_url(text: str, ca_file: str = "") -> SmtpTarget:
    """The mail server a `PATRONPAY_SMTP_URL` names (its certificate checked against the
    authorities in `ca_file` when one is given); ValueError says what is wrong."""
    parts = urlsplit(text.strip())
    if parts.scheme not in SCHEMES:
        raise ValueError("must start with smtp+starttls://, smtps:// or (loopback only) smtp://")
    if not parts.hostname:
        raise ValueError("needs a host, e.g. smtp+starttls://user@mail.example.edu:587")
    if parts.password is not None:
        raise ValueError("must not hold a password: put it in PATRONPAY_SMTP_PASSWORD_FILE")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise ValueError("takes no path or query")
    try:
        port = parts.port or SCHEMES[parts.scheme]
    except ValueError:
        raise ValueError("has a port that is not a number from 1 to 65535") from None
    if parts.scheme == "smtp" and not _is_loopback(parts.hostname):
        raise ValueError("plain smtp:// is allowed only on a loopback host; use "
                         "smtp+starttls:// or smtps://")
    return SmtpTarget(parts.scheme, parts.hostname, port, unquote(parts.username or ""),
                      ca_file)


def tls_context(ca_file: str = "") -> ssl.SSLContext:
    """The client's TLS context: hostname and certificate checked as always, against the
    system's authorities, or only those of `ca_file`. Only, not as well: the file then names
    exactly who may vouch for the mail server, and a deployment that wants both can put the
    system bundle in the file too (the other way round could not be expressed). The file is
    read for each conversation, so a renewed campus CA needs no restart; an unreadable or
    invalid one raises OSError (ssl.SSLError is one), which defers the message."""
    return ssl.create_default_context(cafile=ca_file or None)


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class MailRefused(Exception):
    """The server refused this message for good (5xx): sending it again will not help."""


class MailDeferred(Exception):
    """The message did not go now (server down, busy, 4xx, a timeout): try again later."""


def send(target: SmtpTarget, password: str, sender: str, recipients: list[str],
         message: bytes) -> None:
    """One message, one conversation. Returns only once the server has accepted it (its `250`
    to the end of DATA); raises MailRefused or MailDeferred otherwise."""
    try:
        with _connect(target) as client:
            if target.username:
                client.login(target.username, password)
            # Recipients refused while others took it are not retried: that would repeat
            # the message to those who have it.
            client.sendmail(sender, recipients, message)
    except smtplib.SMTPRecipientsRefused as exc:
        raise _classified(exc.recipients) from None
    except smtplib.SMTPResponseException as exc:
        if 500 <= exc.smtp_code < 600 and not isinstance(exc, smtplib.SMTPAuthenticationError):
            raise MailRefused(f"{exc.smtp_code} {_text(exc.smtp_error)}") from None
        raise MailDeferred(f"{exc.smtp_code} {_text(exc.smtp_error)}") from None
    except (OSError, smtplib.SMTPException) as exc:  # refused, reset, timeout, TLS, ...
        raise MailDeferred(type(exc).__name__ + (f": {exc}" if str(exc) else "")) from None


def _classified(recipients: dict) -> Exception:
    codes = [code for code, _ in recipients.values()]
    detail = "; ".join(f"{code} {_text(text)}" for code, text in recipients.values())
    if all(500 <= code < 600 for code in codes):
        return MailRefused(detail)
    return MailDeferred(detail)


def _connect(target: SmtpTarget) -> smtplib.SMTP:
    if target.scheme == "smtp":  # loopback only: no TLS, so no authorities to read
        return smtplib.SMTP(target.host, target.port, timeout=TIMEOUT_SECONDS,
                            local_hostname=_helo_name())
    context = tls_context(target.ca_file)
    if target.scheme == "smtps":
        return smtplib.SMTP_SSL(target.host, target.port, timeout=TIMEOUT_SECONDS,
                                context=context, local_hostname=_helo_name())
    client = smtplib.SMTP(target.host, target.port, timeout=TIMEOUT_SECONDS,
                          local_hostname=_helo_name())
    try:
        if target.scheme == "smtp+starttls":
            client.starttls(context=context)
    except BaseException:
        client.close()
        raise
    return client


def _helo_name() -> str:
    # Not smtplib's default getfqdn(): that may wait on DNS for seconds.
    return socket.gethostname() or "patronpay"


def _text(value: bytes | str) -> str:
    text = value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
    return " ".join(text.split())[:300]
