"""Everything a running proxy holds, built once from the settings: the ledger, the sessions, the
Alma client, the posting worker, the receipt tokens."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import httpx

from proxy.alma import AlmaClient
from proxy.config import Settings
from proxy.db import Database
from proxy.fee_cache import FeeCache
from proxy.kiosk_lookups import KioskLookups
from proxy.ledger import Ledger
from proxy.mail.worker import MailWorker, mail_policy
from proxy.patron_limits import PatronLimits
from proxy.patron_sessions import SessionStore
from proxy.payments import fee_rules
from proxy.posting import PostingPolicy, PostingWorker
from proxy.primo import PrimoVerifier
from proxy.receipts import ReceiptTokens
from proxy.throttle import FailureLimiter

if TYPE_CHECKING:
    from proxy.shared_buckets import SharedBuckets


@dataclass
class Services:
    settings: Settings
    db: Database
    ledger: Ledger
    sessions: SessionStore
    alma: AlmaClient
    worker: PostingWorker
    receipts: ReceiptTokens
    guest_failures: FailureLimiter
    http: httpx.AsyncClient  # for sign-in services (CAS, Primo's key set); never Alma's API
    primo: PrimoVerifier
    fee_cache: FeeCache  # a patron's fee list, kept while fresh (proxy/fee_cache.py)
    patron_limits: PatronLimits
    kiosk_lookups: KioskLookups
    mail: MailWorker | None  # receipts and staff alerts; None without PATRONPAY_SMTP_URL

    async def aclose(self) -> None:
        self.worker.stop()
        if self.mail is not None:
            self.mail.stop()
        await self.alma.aclose()
        await self.http.aclose()
        self.db.close()


def posting_policy(settings: Settings) -> PostingPolicy:
    read_timeout = float(settings.alma_read_timeout)
    recheck = float(settings.alma_recheck_seconds)
    return PostingPolicy(
        method=settings.alma_payment_method,
        comment=settings.alma_payment_comment,
        currency=settings.currency,
        rules=fee_rules(settings),
        reallocate_remainder=settings.reallocate_remainder,
        give_up_seconds=float(settings.posting_give_up_hours) * 3600,
        backoff_cap_seconds=float(settings.posting_backoff_cap_seconds),
        recheck_seconds=recheck,
        # Long enough that a payment call in flight ends before another worker may take over.
        lease_seconds=max(120.0, 3 * read_timeout + recheck),
        expiry_seconds=float(settings.cashnet_expiry_hours) * 3600,
    )


def shared_buckets(db: Database) -> SharedBuckets | None:
    """On PostgreSQL the request buckets are shared by every instance (proxy/shared_buckets.py);
    on SQLite they stay in memory."""
    if db.dialect != "postgresql":
        return None
    from proxy.shared_buckets import SharedBuckets
    return SharedBuckets(db)


def alma_client(settings: Settings,
                transport: httpx.AsyncBaseTransport | None = None) -> AlmaClient:
    return AlmaClient(
        settings.alma_api_url,
        settings.alma_api_key,
        connect_timeout=float(settings.alma_connect_timeout),
        read_timeout=float(settings.alma_read_timeout),
        requests_per_second=settings.alma_requests_per_second,
        transport=transport,
    )


def build_services(
    settings: Settings,
    *,
    alma_transport: httpx.AsyncBaseTransport | None = None,
    clock: Callable[[], float] = time.time,
) -> Services:
    db = Database(settings.database)
    ledger = Ledger(db, clock, settings.institution)
    alma = alma_client(settings, alma_transport)
    if db.dialect == "postgresql":  # several instances: Alma's limit is for all of them
        from proxy.alma_budget import SharedBudget
        alma.share_budget(SharedBudget(db, settings.alma_api_key,
                                       settings.alma_requests_per_second).reserve)
    http = httpx.AsyncClient(timeout=httpx.Timeout(10.0, connect=5.0), follow_redirects=False)
    return Services(
        settings=settings,
        db=db,
        ledger=ledger,
        sessions=SessionStore(db, settings.secret_keys,
                              idle_seconds=settings.session_idle_minutes * 60,
                              max_seconds=settings.session_max_minutes * 60, clock=clock),
        alma=alma,
        # Each lane holds one payment for (1 + fees) Alma round trips: with half the rate
        # limit in lanes (4 to 16), posting can use the budget even when Alma is slow; its
        # calls go before page views' (proxy/alma_pace.py).
        worker=PostingWorker(ledger, alma.for_posting(), posting_policy(settings), clock=clock,
                             concurrency=min(16, max(4, settings.alma_requests_per_second // 2))),
        receipts=ReceiptTokens(settings.secret_keys, settings.receipt_days * 86400, clock),
        guest_failures=FailureLimiter(db, settings.guest_max_failures,
                                      settings.guest_lockout_seconds, clock),
        http=http,
        primo=PrimoVerifier(http, settings.primo_key_set_url(), issuer=settings.primo_issuer,
                            institution=settings.primo_institution, clock=clock),
        fee_cache=FeeCache(settings.fees_fresh_seconds, ledger.patron_marker),
        patron_limits=PatronLimits(settings.session_burst, settings.session_requests_per_minute,
                                   settings.patron_requests_per_minute,
                                   shared=shared_buckets(db)),
        kiosk_lookups=KioskLookups(settings.kiosk_lookup_failures,
                                   settings.kiosk_cooldown_seconds),
        mail=mail_worker(settings, ledger, alma, clock),
    )


def mail_worker(settings: Settings, ledger: Ledger, alma: AlmaClient,
                clock: Callable[[], float]) -> MailWorker | None:
    policy = mail_policy(settings)
    return MailWorker(ledger, alma, policy, clock=clock) if policy else None
