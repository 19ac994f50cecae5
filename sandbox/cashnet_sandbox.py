"""The CashNet sandbox's state and operations: the Python facade of docs/sandbox.md#routes.

Thread-safe: tests call it from their own thread while uvicorn serves the app in another. All
state sits behind one lock that is never held across an `await` or a network call. Every
operation that sends notifications has an async form (used by the app's handlers, which share
their event loop with the proxy in the demo) and a sync form that runs the same coroutine on a
fresh event loop in the calling thread. Held, delayed, duplicated-later and retried deliveries
run on small daemon threads, so they never hold up a receipt.
"""

from __future__ import annotations

import asyncio
import copy
import secrets
import threading
from collections.abc import Callable, Coroutine, Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any, TypeVar
from urllib.parse import urlencode

from sandbox.cashnet_fields import (
    CANCEL_CODE,
    CANCEL_MESSAGE,
    DEFAULT_DECLINE,
    Outcome,
    decline_messages,
    encode_body,
    faults_for,
    result_fields,
)
from sandbox.cashnet_handoff import Handoff, HandoffError, merge_params, resolve_store, validate
from sandbox.cashnet_notify import (
    Delivery,
    delivered,
    send,
    skipped_record,
    with_token_fault,
)
from sandbox.cashnet_store import (
    find_store,
    load_seed,
    merge_store,
    normalize_store,
    normalize_stores,
    validate_faults,
)

T = TypeVar("T")
OUTCOMES = ("pay", "decline", "cancel")
FINAL = ("PAID", "CANCELLED")


class CheckoutNotFound(KeyError):
    """No checkout (or store) by that name."""


class CheckoutConflict(RuntimeError):
    """The checkout cannot take that action: it was rejected, or it is paid or cancelled."""


@dataclass
class _Pending:
    """A held or delayed batch of deliveries (the notification and its duplicates)."""

    cid: str
    batch: list[Delivery]
    duplicate_delay_s: float
    wake: threading.Event
    claimed: bool = False


class CashNetSandbox:
    """Checkouts, store configs, counters and the notification record of the emulator."""

    def __init__(self, stores: dict[str, Any] | None = None, *,
                 today: Callable[[], date] | None = None) -> None:
        self._initial = normalize_stores(load_seed() if stores is None else stores)
        self.today: Callable[[], date] = today or date.today  # tests may pin the business date
        self._lock = threading.RLock()
        self._generation = threading.Event()
        self._clear(restore_stores=True)

    # ----- configuration -------------------------------------------------------------------

    def stores(self) -> dict[str, dict[str, Any]]:
        with self._lock:
            return copy.deepcopy(self._stores)

    def store(self, name: str) -> dict[str, Any]:
        with self._lock:
            return copy.deepcopy(self._stores[self._store_name(name)])

    def configure_store(self, store: str, **settings: Any) -> dict[str, Any]:
        """Merge settings into a store (created from the defaults if new); returns its config."""
        with self._lock:
            canonical = find_store(self._stores, store)
            if canonical is None:
                canonical, config = store, normalize_store(store, settings)
            else:
                config = merge_store(canonical, self._stores[canonical], settings)
            self._stores[canonical] = config
            if "tx_start" in settings:
                self._counters.pop(canonical, None)
            return copy.deepcopy(config)

    def set_faults(self, store: str, faults: dict[str, Any]) -> dict[str, Any]:
        """Replace a store's default faults (docs/sandbox.md#cashnet-fault-knobs)."""
        with self._lock:
            canonical = self._store_name(store)
            self._stores[canonical]["faults"] = validate_faults(faults, where=f"store {store}")
            return copy.deepcopy(self._stores[canonical]["faults"])

    def reset(self, keep_stores: bool = False) -> None:
        """Forget checkouts, records, counters and pending deliveries; restore the stores."""
        with self._lock:
            self._generation.set()  # stops timers and retries of the old state
            for pendings in self._pending.values():
                for pending in pendings:
                    pending.wake.set()
            self._generation = threading.Event()
            self._clear(restore_stores=not keep_stores)

    def _clear(self, restore_stores: bool) -> None:
        if restore_stores:
            self._stores = copy.deepcopy(self._initial)
        self._checkouts: dict[str, dict[str, Any]] = {}
        self._handoffs: dict[str, Handoff] = {}
        self._records: list[dict[str, Any]] = []
        self._signouts: list[dict[str, Any]] = []
        self._counters: dict[str, int] = {}
        self._batches: dict[str, tuple[date, int]] = {}
        self._pending: dict[str, list[_Pending]] = {}

    # ----- inspection ----------------------------------------------------------------------

    def checkouts(self, ref: str | None = None) -> list[dict[str, Any]]:
        """All checkouts, oldest first; `ref` keeps those with that item or transaction ref."""
        with self._lock:
            found = [c for c in self._checkouts.values() if ref is None or _has_ref(c, ref)]
            return copy.deepcopy(found)

    def checkout(self, cid: str) -> dict[str, Any]:
        with self._lock:
            return copy.deepcopy(self._get(cid))

    def notifications(self, cid: str | None = None,
                      store: str | None = None) -> list[dict[str, Any]]:
        """The notification record (docs/sandbox.md#notification-record): one entry per delivery
        attempt (or skipped notification)."""
        with self._lock:
            return copy.deepcopy([
                record for record in self._records
                if (cid is None or record["cid"] == cid)
                and (store is None or record["store"].casefold() == store.casefold())
            ])

    def signouts(self, cid: str | None = None) -> list[dict[str, Any]]:
        """Each sign-out form rendered on a receipt page: url, method, fields."""
        with self._lock:
            return copy.deepcopy([s for s in self._signouts if cid in (None, s["cid"])])

    # ----- entry ---------------------------------------------------------------------------

    def outage(self, store: str | None, sources: Iterable[Iterable[tuple[str, str]]]) -> int | None:
        """The HTTP status a store's `status: 5xx` fault makes its entry point answer (no page,
        no checkout recorded: the server is down); None when it answers as usual."""
        requested = merge_params(*sources).get("virtual", "") if store is None else store
        with self._lock:
            canonical = find_store(self._stores, requested.strip()) if requested.strip() else None
            status = self._stores[canonical]["faults"].get("status") if canonical else None
        return status if isinstance(status, int) and 500 <= status < 600 else None

    def open_checkout(self, store: str | None, sources: Iterable[Iterable[tuple[str, str]]], *,
                      method: str = "POST", path: str = "") -> dict[str, Any]:
        """Record a hand-off; `store=None` takes the store from `virtual` (pageredir entry)."""
        params = merge_params(*sources)
        requested = params.get("virtual", "") if store is None else store
        cid = "cn" + secrets.token_hex(8)
        checkout = _new_checkout(cid, requested, method, path, params)
        with self._lock:
            try:
                canonical, config = resolve_store(self._stores, requested)
                checkout["store"] = canonical
                handoff = validate(canonical, config, params)
            except HandoffError as error:
                checkout["status"] = "REJECTED"
                checkout["error"] = {"code": error.code, "message": error.message,
                                     "detail": error.detail}
            else:
                self._handoffs[cid] = handoff
                checkout.update(_handoff_view(handoff))
            self._checkouts[cid] = checkout
            return copy.deepcopy(checkout)

    # ----- completion ----------------------------------------------------------------------

    def complete(self, cid: str, outcome: str = "pay", code: int | None = None,
                 faults: dict[str, Any] | None = None) -> dict[str, Any]:
        """Pay, decline or cancel without the page; delivers the notification before returning."""
        return _run(self.complete_async(cid, outcome, code, faults), "complete_async")

    async def complete_async(self, cid: str, outcome: str = "pay", code: int | None = None,
                             faults: dict[str, Any] | None = None) -> dict[str, Any]:
        with self._lock:
            result, batch, pending, skipped = self._settle(cid, outcome, code, faults)
        if pending is not None:
            self._hold(pending)
            result["notifications"] = []
        elif batch:
            result["notifications"] = await self._dispatch(batch, _dup_delay(batch))
        else:
            result["notifications"] = [skipped]
        return result

    def release(self, cid: str) -> list[dict[str, Any]]:
        """Deliver the checkout's held or delayed notifications now; returns their records."""
        return _run(self.release_async(cid), "release_async")

    async def release_async(self, cid: str) -> list[dict[str, Any]]:
        with self._lock:
            self._get(cid)
            pendings = self._pending.pop(cid, [])
            for pending in pendings:
                pending.claimed = True
                pending.wake.set()
            self._checkouts[cid]["pending_notifications"] = 0
        records = []
        for pending in pendings:
            records += await self._dispatch(pending.batch, pending.duplicate_delay_s)
        return records

    def receipt_shown(self, cid: str) -> dict[str, Any]:
        """The checkout as its receipt shows it; records the sign-out form being rendered."""
        with self._lock:
            checkout = self._get(cid)
            signout = (checkout["last_result"] or {}).get("signout")
            if checkout["status"] in FINAL and signout:
                self._signouts.append({
                    "id": len(self._signouts) + 1, "cid": cid, "store": checkout["store"],
                    **copy.deepcopy(signout), "rendered_at": _now(),
                })
            return copy.deepcopy(checkout)

    def _settle(self, cid: str, outcome: str, code: int | None, faults: dict[str, Any] | None
                ) -> tuple[dict[str, Any], list[Delivery], _Pending | None, dict | None]:
        """Under the lock: check, allocate numbers, build fields, update the checkout."""
        checkout = self._get(cid)
        if checkout["status"] == "REJECTED":
            raise CheckoutConflict(f"checkout {cid} was rejected ({checkout['error']['code']})")
        if checkout["status"] in FINAL:
            raise CheckoutConflict(f"checkout {cid} is final ({checkout['status']})")
        if outcome not in OUTCOMES:
            raise ValueError(f"outcome must be one of {', '.join(OUTCOMES)}")
        store = checkout["store"]
        config = self._stores[store]
        applied = {**config["faults"], **validate_faults(faults)}
        result_code = _result_code(outcome, code)
        numbers = self._numbers(store, config, outcome)
        done = _outcome(outcome, result_code, numbers)
        handoff = self._handoffs[cid]
        notify_pairs = result_fields(config, handoff, done, faults_for("notify", applied))
        signout_pairs = result_fields(config, handoff, done, faults_for("signout", applied))
        signout = _signout(config, handoff, done, signout_pairs,
                           bool(applied.get("signout_appends_query")))

        checkout["status"] = {"pay": "PAID", "decline": "DECLINED", "cancel": "CANCELLED"}[outcome]
        checkout["faults"] = applied
        attempt = {"outcome": outcome, "result": result_code, "respmessage": done.respmessage,
                   "tx": done.tx, "failedtx": done.failedtx, "batchno": done.batchno,
                   "effdate": done.effdate, "at": _now()}
        checkout["attempts"].append(attempt)
        checkout["tx"] = done.tx or checkout["tx"]
        if done.failedtx:
            checkout["failedtx"].append(done.failedtx)
        checkout["last_result"] = {**attempt, "fields": [list(p) for p in signout_pairs],
                                   "signout": signout}
        result = {"cid": cid, "status": checkout["status"], **{
            k: v for k, v in attempt.items() if k != "at" and v is not None}}
        result.update({"fields": [list(p) for p in notify_pairs], "signout": signout})

        batch, skipped = self._plan(cid, store, config, done, notify_pairs, applied)
        pending = None
        if batch and (applied.get("hold") or applied.get("delay_s")):
            pending = _Pending(cid, batch, applied.get("duplicate_delay_s", 0.0), threading.Event())
            self._pending.setdefault(cid, []).append(pending)
            checkout["pending_notifications"] += len(batch)
        result["pending"] = len(batch) if pending else 0
        return result, batch, pending, skipped

    def _numbers(self, store: str, config: dict[str, Any], outcome: str) -> dict[str, str]:
        """tx/failedtx from the store counter; batchno changes with the business day."""
        number = self._counters.get(store, config["tx_start"])
        self._counters[store] = number + 1
        day = self.today()
        last_day, batch = self._batches.get(store, (None, config["batch_start"] - 1))
        if last_day != day:
            batch += 1
            self._batches[store] = (day, batch)
        give_failedtx = outcome == "decline" or config["failedtx_on_cancel"]
        return {
            "tx": str(number) if outcome == "pay" else None,
            "failedtx": str(number) if outcome != "pay" and give_failedtx else None,
            "batchno": str(batch),
            "effdate": f"{day.month}/{day.day}/{day.year}",
        }

    def _plan(self, cid: str, store: str, config: dict[str, Any], done: Outcome,
              pairs: list[tuple[str, str]], faults: dict[str, Any]
              ) -> tuple[list[Delivery], dict[str, Any] | None]:
        """The deliveries to make, or (none and) the record of why there are none."""
        kind = "success" if done.success else "failure"
        url = config["notify_success_url"] if done.success else config["notify_failure_url"]
        reason = None
        if done.kind == "cancel" and not config["notify_on_cancel"]:
            reason = "cancel_not_notified"
        elif not url:
            reason = "no_url"
        elif faults.get("drop"):
            reason = "drop"
        if reason:
            record = {"id": len(self._records) + 1,
                      **skipped_record(cid, store, kind, reason, url, pairs, faults)}
            self._records.append(record)
            return [], copy.deepcopy(record)
        body, content_type = encode_body(pairs, faults)
        return [
            Delivery(
                cid=cid, store=store, kind=kind, pairs=pairs, body=body,
                url=with_token_fault(url, faults.get("url_token")),
                content_type=content_type, faults=dict(faults),
                timeout=config["notify_timeout_s"], retries=config["retries"],
                retry_delay_s=config["retry_delay_s"], generation=self._generation,
                number=number, source_address=faults.get("source_address"),
            )
            for number in range(1 + faults.get("duplicate", 0))
        ], None

    # ----- delivery ------------------------------------------------------------------------

    async def _dispatch(self, batch: list[Delivery], duplicate_delay_s: float) -> list[dict]:
        """Send the notification, then its duplicates (now, or later on a thread)."""
        records = [await self._attempt(batch[0])]
        duplicates = batch[1:]
        if duplicates and duplicate_delay_s > 0:
            _thread(self._later_duplicates, duplicates, duplicate_delay_s)
            return records
        for duplicate in duplicates:
            records.append(await self._attempt(duplicate))
        return records

    async def _attempt(self, delivery: Delivery) -> dict[str, Any]:
        record = self._keep(delivery, await send(delivery, 1))
        if not delivered(record) and delivery.retries > 0:
            _thread(self._retry, delivery)
        return record

    def _keep(self, delivery: Delivery, record: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            if delivery.generation is self._generation:  # not from before a reset
                record = {"id": len(self._records) + 1, **record}
                self._records.append(record)
            return copy.deepcopy(record)

    def _retry(self, delivery: Delivery) -> None:
        for attempt in range(2, delivery.retries + 2):
            if delivery.generation.wait(delivery.retry_delay_s):
                return
            if delivered(self._keep(delivery, asyncio.run(send(delivery, attempt)))):
                return

    def _later_duplicates(self, duplicates: list[Delivery], delay: float) -> None:
        if duplicates[0].generation.wait(delay):
            return
        for duplicate in duplicates:
            asyncio.run(self._attempt(duplicate))

    def _hold(self, pending: _Pending) -> None:
        """Keep the batch until release(); with `delay_s`, a timer releases it by itself."""
        delay = pending.batch[0].faults.get("delay_s")
        if delay:
            _thread(self._release_after, pending, delay)

    def _release_after(self, pending: _Pending, delay: float) -> None:
        pending.wake.wait(delay)
        with self._lock:
            if pending.claimed or pending.batch[0].generation is not self._generation:
                return
            pending.claimed = True
            self._pending[pending.cid].remove(pending)
            checkout = self._checkouts[pending.cid]
            checkout["pending_notifications"] -= len(pending.batch)
        asyncio.run(self._dispatch(pending.batch, pending.duplicate_delay_s))

    # ----- helpers -------------------------------------------------------------------------

    def _get(self, cid: str) -> dict[str, Any]:
        try:
            return self._checkouts[cid]
        except KeyError:
            raise CheckoutNotFound(f"no checkout {cid}") from None

    def _store_name(self, name: str) -> str:
        canonical = find_store(self._stores, name)
        if canonical is None:
            raise CheckoutNotFound(f"no store {name}")
        return canonical


def _new_checkout(cid: str, requested: str, method: str, path: str,
                  params: dict[str, str]) -> dict[str, Any]:
    return {
        "cid": cid, "store": None, "requested_store": requested, "status": "OPEN",
        "created_at": _now(), "entry": {"method": method, "path": path},
        "request": dict(params), "error": None, "lines": [], "total": None, "refs": [],
        "txn_refs": [], "custcode": None, "fname": None, "lname": None, "email": None,
        "signouturl": None, "prefill": {"name": "", "email": ""}, "attempts": [], "tx": None,
        "failedtx": [], "faults": {}, "last_result": None, "pending_notifications": 0,
    }


def _handoff_view(handoff: Handoff) -> dict[str, Any]:
    """What the checkout page shows, JSON-ready (amounts as `%.2f` strings)."""
    def first(*names: str) -> str:
        item1 = {ref["type"].lower(): ref["value"] for ref in handoff.refs if ref["item"] == 1}
        return next((v for n in names for v in (handoff.get(n), item1.get(n)) if v), "")

    full_name = " ".join(part for part in (handoff.get("fname"), handoff.get("lname")) if part)
    return {
        "lines": copy.deepcopy(handoff.lines),
        "total": format(handoff.total, "f"),
        "refs": copy.deepcopy(handoff.refs),
        "txn_refs": copy.deepcopy(handoff.txn_refs),
        **{name: handoff.get(name) or None
           for name in ("custcode", "fname", "lname", "email", "signouturl")},
        "prefill": {
            "name": full_name or first("card_name_g", "cardname_g", "name_g"),
            "email": first("email", "email_g"),
        },
    }


def _has_ref(checkout: dict[str, Any], value: str) -> bool:
    return any(ref["value"] == value for ref in checkout["refs"] + checkout["txn_refs"])


def _result_code(outcome: str, code: int | None) -> int:
    if outcome == "pay":
        return 0
    if outcome == "cancel":
        return CANCEL_CODE
    code = DEFAULT_DECLINE if code is None else code
    if not isinstance(code, int) or isinstance(code, bool) or code <= 0 or code == CANCEL_CODE:
        raise ValueError("a decline code is a positive integer other than 902")
    return code


def _outcome(kind: str, code: int, numbers: dict[str, str]) -> Outcome:
    if kind == "pay":
        return Outcome(kind, 0, "SUCCESS", **numbers)
    if kind == "cancel":
        return Outcome(kind, code, CANCEL_MESSAGE, **numbers)
    respmessage, ccmessage = decline_messages(code)
    return Outcome(kind, code, respmessage, **numbers, ccerror=(code, ccmessage))


def _signout(config: dict[str, Any], handoff: Handoff, done: Outcome,
             pairs: list[tuple[str, str]], appends_query: bool = False) -> dict[str, Any] | None:
    """The browser return: the request's signouturl, else the store's (failure) sign-out URL.
    `appends_query` adds the result to the URL with a `?` whether or not it already has a
    query, as some CashNet stores do, so the merchant's `p=<id>` arrives as `<id>?result=0`."""
    url = handoff.get("signouturl")
    if not url:
        url = config["signout_url"] if done.success else (
            config["signout_failure_url"] or config["signout_url"])
    if not url:
        return None
    if appends_query:
        number = ("tx", done.tx) if done.tx else ("failedtx", done.failedtx or "")
        url += "?" + urlencode([("result", str(done.result)), number])
    return {"url": url, "method": config["signout_method"], "fields": [list(p) for p in pairs]}


def _dup_delay(batch: list[Delivery]) -> float:
    return batch[0].faults.get("duplicate_delay_s", 0.0)


def _run(coroutine: Coroutine[Any, Any, T], instead: str) -> T:
    """Run a coroutine on a fresh loop; refuse inside a running loop (it would block it)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coroutine)
    coroutine.close()
    raise RuntimeError(f"called from a running event loop: await {instead}() instead")


def _thread(target: Callable[..., None], *args: Any) -> None:
    threading.Thread(target=target, args=args, daemon=True, name="cashnet-delivery").start()


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")
