"""Who is paying: the few facts patronpay keeps about a patron, read from Alma's user record."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Patron:
    primary_id: str
    first_name: str
    last_name: str
    email: str
    account_type: str

    @property
    def name(self) -> str:
        return " ".join(part for part in (self.first_name, self.last_name) if part)


def patron_from_alma(user: dict) -> Patron:
    """Alma's user record (brief view) as a Patron."""
    account_type = user.get("account_type") or {}
    return Patron(
        primary_id=str(user.get("primary_id") or ""),
        first_name=str(user.get("first_name") or ""),
        last_name=str(user.get("last_name") or ""),
        email=_preferred_email(user),
        account_type=str(account_type.get("value") if isinstance(account_type, dict)
                         else account_type or ""),
    )


def _preferred_email(user: dict) -> str:
    emails = ((user.get("contact_info") or {}).get("email") or [])
    if isinstance(emails, dict):
        emails = [emails]
    preferred = [e for e in emails if isinstance(e, dict) and e.get("preferred")]
    for entry in preferred or emails:
        if isinstance(entry, dict) and entry.get("email_address"):
            return str(entry["email_address"])
    return ""
