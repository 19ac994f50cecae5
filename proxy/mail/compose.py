"""The messages: a patron's receipt (plain text and HTML, in the language of the page they paid
from) and a staff alert or digest (plain text, English).

Values from Alma and CashNet are untrusted: the HTML template escapes everything (Jinja2
autoescape), and every value is cut to one line of printable text first, so nothing can add a
header or a line of its own. Card data never reaches patronpay, so no receipt can hold any.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime
from functools import lru_cache
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from proxy.i18n import Translator, translator
from proxy.ledger import PaymentRecord
from proxy.mail.alerts import ALERT_MAILS_PER_HOUR, title_of
from proxy.states import AllocationState

HERE = Path(__file__).resolve().parent
LANGUAGES = tuple(sorted(p.stem for p in (HERE / "locales").glob("*.json")))
DEFAULT_LANGUAGE = "en"


@dataclass(frozen=True)
class Letterhead:
    """Who mail comes from."""

    sender: str  # the From: header
    library: str  # the library's name, or "" for the translated "the library"
    site_locales: Path  # the site's strings (fee type names in each language)


@dataclass(frozen=True)
class FeeLine:
    label: str
    amount: str


@dataclass(frozen=True)
class ReceiptFacts:
    language: str
    library: str
    first_name: str
    date: str
    amount: str
    cashnet_tx: str
    reference: str
    where: str
    fees: tuple[FeeLine, ...]


@lru_cache(maxsize=1)
def _templates() -> Environment:
    return Environment(loader=FileSystemLoader(HERE / "templates"),
                       autoescape=select_autoescape(["html"], default_for_string=False,
                                                    default=False),
                       undefined=StrictUndefined, keep_trailing_newline=True)


@lru_cache(maxsize=8)
def _strings(language: str) -> dict[str, str]:
    return json.loads((HERE / "locales" / f"{language}.json").read_text(encoding="utf-8"))


def mail_language(asked: str) -> str:
    return asked if asked in LANGUAGES else DEFAULT_LANGUAGE


def _t(language: str):
    strings, fallback = _strings(language), _strings(DEFAULT_LANGUAGE)

    def t(key: str, **params: object) -> str:
        text = strings.get(key, fallback[key])
        for name, value in params.items():
            text = text.replace("{" + name + "}", str(value))
        return text

    return t


def one_line(value: object, limit: int = 200) -> str:
    """Untrusted text as one line of printable characters, cut to `limit`."""
    text = "".join(ch if ch.isprintable() else " " for ch in str(value))
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def receipt_facts(payment: PaymentRecord, first_name: str, language: str,
                  letterhead: Letterhead) -> ReceiptFacts:
    language = mail_language(language)
    t = _t(language)
    site = translator(letterhead.site_locales, asked=language)
    library = one_line(letterhead.library) or t("the_library")
    fees = tuple(
        FeeLine(_fee_label(site, a.fee_type, a.fee_label), site.money(a.amount, payment.currency))
        for a in payment.allocations if a.state == AllocationState.POSTED and a.amount > 0)
    channel = payment.channel
    where = t("paid_at_kiosk", kiosk=one_line(channel.partition(":")[2], 60)) \
        if channel.startswith("kiosk:") else t("paid_at_web")
    moment = payment.paid_at or payment.posted_at or payment.created_at
    return ReceiptFacts(
        language=language, library=library, first_name=one_line(first_name, 80),
        date=_local_time(moment), amount=site.money(payment.amount, payment.currency),
        cashnet_tx=one_line(payment.cashnet_tx or "-", 64), reference=payment.id,
        where=where, fees=fees)


def _fee_label(site: Translator, fee_type: str, alma_label: str) -> str:
    """The site's name for a standard fee type in the patron's language, else Alma's."""
    key = f"feetype.{fee_type}"
    if site.lang != DEFAULT_LANGUAGE and key in site.strings:
        return site.strings[key]
    return one_line(alma_label or fee_type, 120)


def _local_time(moment: float) -> str:
    """The library's own clock (this server's zone), with the zone named."""
    return datetime.fromtimestamp(moment, UTC).astimezone().strftime("%Y-%m-%d %H:%M %Z")


def compose_receipt(facts: ReceiptFacts, letterhead: Letterhead, recipient: str,
                    message_id: str, now: float) -> EmailMessage:
    t = _t(facts.language)
    env = _templates()
    message = _headers(letterhead.sender, [recipient], message_id, now,
                       t("subject", library=facts.library, amount=facts.amount))
    message.set_content(env.get_template("receipt.txt").render(r=facts, t=t))
    message.add_alternative(env.get_template("receipt.html").render(r=facts, t=t),
                            subtype="html")
    # After the parts: making the message multipart moves Content-* headers into the first.
    message["Content-Language"] = facts.language
    return message


# Detail that says nothing to staff reading an alert ("kind" is the alert's own title).
ALERT_DETAIL_SKIPPED = frozenset({"kind", "from"})


@dataclass(frozen=True)
class AlertLine:
    title: str
    when: str
    facts: tuple[tuple[str, str], ...]
    command: str


def alert_lines(alerts: list[dict]) -> list[AlertLine]:
    """What staff read about each alert, from the alert and its event's detail."""
    lines = []
    for alert in alerts:
        detail, payment_id = alert["detail"], alert["payment_id"]
        facts = [("payment", payment_id)] if payment_id else []
        for name, value in sorted(detail.items()):
            if name in ALERT_DETAIL_SKIPPED or value in (None, "") \
                    or not isinstance(value, str | int | float):
                continue
            shown = _utc(value) if name.endswith("_at") and isinstance(value, int | float) \
                else one_line(value, 160)
            facts.append((name, shown))
        fields = detail.get("fields") if isinstance(detail.get("fields"), dict) else {}
        for name in ("tx", "amount"):
            if fields.get(name) and not any(n == name for n, _ in facts):
                facts.append((name, one_line(fields[name], 40)))
        command = f"patronpay payments show {payment_id}" if payment_id else ""
        lines.append(AlertLine(title_of(alert["kind"]), _utc(alert["at"]), tuple(facts),
                               command))
    return lines


def compose_alerts(alerts: list[dict], letterhead: Letterhead, recipients: list[str],
                   message_id: str, now: float) -> EmailMessage:
    lines = alert_lines(alerts)
    subject = f"patronpay: {lines[0].title}" if len(lines) == 1 \
        else f"patronpay: {len(lines)} alerts"
    message = _headers(letterhead.sender, recipients, message_id, now, subject)
    message.set_content(_templates().get_template("alerts.txt").render(
        alerts=lines, per_hour=ALERT_MAILS_PER_HOUR))
    return message


def _headers(sender: str, recipients: list[str], message_id: str, now: float,
             subject: str) -> EmailMessage:
    message = EmailMessage()
    message["From"] = sender
    message["To"] = ", ".join(recipients)
    message["Subject"] = one_line(subject, 150)
    message["Date"] = format_datetime(datetime.fromtimestamp(now, UTC))
    message["Message-ID"] = message_id
    message["Auto-Submitted"] = "auto-generated"  # no vacation replies, please
    return message


def _utc(moment: float) -> str:
    return datetime.fromtimestamp(moment, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def wire_bytes(message: EmailMessage) -> bytes:
    """The message as SMTP carries it: CRLF line ends (smtplib leaves bytes as they are)."""
    return message.as_bytes(policy=message.policy.clone(linesep="\r\n"))
