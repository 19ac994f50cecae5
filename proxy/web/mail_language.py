"""The language a receipt will be e-mailed in: the one the patron's page was in when they
started the payment (their `?lang=`, the site's language cookie, or their browser's)."""

from __future__ import annotations

from starlette.requests import Request

from proxy.i18n import LANG_COOKIE, available_languages, choose_language
from proxy.mail.outbox import remember_language
from proxy.web.common import services


def remember_page_language(request: Request, payment_id: str) -> None:
    """Kept on the payment, only when receipts are e-mailed (it costs a write)."""
    svc = services(request)
    if svc.mail is None or not svc.settings.receipt_email:
        return
    language = choose_language(available_languages(svc.settings.site_dir / "locales"),
                               request.query_params.get("lang"),
                               request.cookies.get(LANG_COOKIE),
                               request.headers.get("accept-language", ""))
    remember_language(svc.db, payment_id, language)
