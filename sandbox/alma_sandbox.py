"""`AlmaSandbox`: the emulator's state behind one lock, and the in-process control accessor.

Routes (running on the server's event loop) and tests (in another thread) both come through
here, so every method takes the `threading.Lock` and never awaits while holding it.
"""

from __future__ import annotations

import copy
import random
import secrets
import threading
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sandbox import alma_api
from sandbox.alma_faults import FaultSettings, Gate, Verdict
from sandbox.alma_primo import PrimoKeys
from sandbox.alma_render import render_fee, render_fees, render_user, tracking_id
from sandbox.alma_state import (
    FEE_STATUSES,
    AlmaState,
    ApiKey,
    Fee,
    SeedError,
    User,
    fee_to_raw,
    format_timestamp,
    parse_money,
    user_to_raw,
)

REDACTED = "***"
SECRET_QUERY_PARAMS = ("apikey", "password")
LOG_CAP = 10_000  # oldest entries go first; a long demo run must not grow without bound
FEE_FIELDS = {
    "balance", "original_amount", "status", "api_restricted", "comment", "title",
    "item_barcode", "bursar_transaction_id", "status_time", "creation_time", "owner", "type",
}


def redact_query(query: Mapping[str, list[str]]) -> dict[str, list[str]]:
    """The query as logged: API keys and passwords never reach the request log."""
    return {
        name: [REDACTED] * len(values) if name.lower() in SECRET_QUERY_PARAMS else list(values)
        for name, values in query.items()
    }


class AlmaSandbox:
    """One emulated Alma institution: users, fees, faults, request log, clock and Primo keys."""

    def __init__(self, seed: dict[str, Any]) -> None:
        self._seed = copy.deepcopy(seed)
        self._lock = threading.Lock()
        self._clock: datetime | None = None
        self._tracking_rng = random.Random()
        self._state = AlmaState(self._seed, self._now_text())
        self._gate = Gate()
        self._log: list[dict[str, Any]] = []
        self._seq = 0
        self._keys = PrimoKeys(self._state.institution.code)
        self._tokens_issued = 0

    # -- clock -----------------------------------------------------------------------------------

    def set_clock(self, moment: datetime | None) -> None:
        """Freeze the clock that stamps payments and the log (None: follow real time)."""
        if moment is not None and moment.tzinfo is None:
            raise ValueError("the emulator clock needs an aware datetime")
        with self._lock:
            self._clock = moment

    def now(self) -> datetime:
        clock = self._clock
        return clock if clock is not None else datetime.now(UTC)

    def _now_text(self) -> str:
        return format_timestamp(self.now())

    # -- control accessor ----------------------------------------------------------------------

    def requests(self) -> list[dict[str, Any]]:
        """The request log (docs/sandbox.md#request-log-and-control-endpoints), oldest first, as
        copies."""
        with self._lock:
            return copy.deepcopy(self._log)

    def clear_requests(self) -> None:
        with self._lock:
            self._log.clear()

    def set_faults(self, faults: dict[str, Any]) -> None:
        """Replace the fault settings; counters, windows and RNGs start afresh."""
        settings = FaultSettings.parse(faults)
        with self._lock:
            self._gate = Gate(settings)

    def reset(self) -> None:
        """Back to the seed: state, faults, request log, clock and keys."""
        with self._lock:
            self._clock = None
            self._state = AlmaState(self._seed, self._now_text())
            self._gate = Gate()
            self._log.clear()
            self._keys.restore()

    def user_state(self, primary_id: str) -> dict[str, Any]:
        """Raw state of one user (Decimal amounts, transactions); KeyError if unknown."""
        with self._lock:
            return user_to_raw(self._state.user_by_primary_id(primary_id))

    def all_users(self) -> list[dict[str, Any]]:
        """Raw state of every user, in seed order (the data of the Analytics report)."""
        with self._lock:
            return [user_to_raw(user) for user in self._state.users]

    def set_blocks(self, primary_id: str, blocks: list[dict[str, Any]]) -> None:
        """Replace a user's blocks: `{"type": "CASH", "status": "ACTIVE", "note": ...}`."""
        with self._lock:
            self._state.user_by_primary_id(primary_id).blocks = copy.deepcopy(blocks)

    def add_user(self, user: dict[str, Any]) -> str:
        """Add a user shaped like a seed entry (fees included); returns the primary ID."""
        with self._lock:
            return self._state.add_user(copy.deepcopy(user), self._now_text()).primary_id

    def add_fee(self, primary_id: str, fee: dict[str, Any]) -> str:
        """Charge a fee shaped like a seed fee (`id` optional); returns the fee id."""
        with self._lock:
            owner = self._state.user_by_primary_id(primary_id)
            return self._state.add_fee(owner, copy.deepcopy(fee), self._now_text()).id

    def set_fee(self, primary_id: str, fee_id: str, **changes: Any) -> dict[str, Any]:
        """Change a fee behind the client's back (e.g. waived meanwhile); returns its raw state.

        `status_time` moves to now when status or balance change, unless given.
        """
        unknown = set(changes) - FEE_FIELDS
        if unknown:
            raise ValueError(f"unknown fee fields: {sorted(unknown)}")
        if "status" in changes and changes["status"] not in FEE_STATUSES:
            raise ValueError(f"fee status must be one of {FEE_STATUSES}")
        with self._lock:
            owner = self._state.user_by_primary_id(primary_id)
            fee = next((f for f in owner.fees if f.id == fee_id), None)
            if fee is None:
                raise KeyError(fee_id)
            for name, value in changes.items():
                if name in ("balance", "original_amount"):
                    value = parse_money(value, name, sub_cent=fee.sub_cent)
                setattr(fee, name, value)
            if {"status", "balance"} & set(changes) and "status_time" not in changes:
                fee.status_time = self._now_text()
            return fee_to_raw(fee)

    def primo_token(
        self,
        user_name: str,
        *,
        ttl_s: int = 3600,
        iss: str = "Prima",
        kid: str | None = None,
        sandbox: bool = False,
        institution: str | None = None,
        **claims: Any,
    ) -> str:
        """A Primo VE patron token signed ES256 with the environment's key
        (docs/alma.md#primo-tokens).

        Extra claims are added or override; a claim given as None is left out.
        """
        with self._lock:
            self._tokens_issued += 1
            inst = self._state.institution.code
            try:
                user = self._state.user_by_primary_id(user_name)
            except KeyError:
                user = None
            issued = int(time.time())  # real time: verifiers check exp against the real clock
            payload: dict[str, Any] = {
                "iss": iss,
                "jti": f"{secrets.token_hex(8).upper()}:{self._tokens_issued}",
                "iat": issued,
                "exp": issued + ttl_s,
                "userName": user_name,
                "displayName": user.first_name if user else user_name,
                "user": user.internal_id if user else None,
                "userGroup": user.user_group if user else None,
                "institution": institution or inst,
                "userIp": "127.0.0.1",
                "authenticationProfile": "SAML",
                "language": "en",
                "onCampus": "false",
                "signedIn": "true",
                "viewId": f"{inst}:MAIN",
            }
            payload.update(claims)
            payload = {name: value for name, value in payload.items() if value is not None}
            return self._keys.sign(payload, sandbox=sandbox, kid=kid)

    def rotate_key(self, same_kid: bool, *, sandbox: bool = False) -> str:
        """New signing key for one environment (same or new kid); returns the kid now served."""
        with self._lock:
            return self._keys.rotate(same_kid=same_kid, sandbox=sandbox)

    def jwks(self, *, sandbox: bool) -> dict[str, Any]:
        """The key set; without its ES256 keys while the `jwks_es256` knob is off."""
        with self._lock:
            key_set = self._keys.jwks(sandbox=sandbox)
            if not self._gate.settings.jwks_es256:
                key_set["keys"] = [key for key in key_set["keys"] if key.get("kty") != "EC"]
            return key_set

    # -- used by the gateway -----------------------------------------------------------------------

    @property
    def settings(self) -> FaultSettings:
        return self._gate.settings

    @property
    def institution_code(self) -> str:
        return self._state.institution.code

    def latency_seconds(self) -> float:
        with self._lock:
            return self._gate.latency_seconds()

    def admit(
        self, method: str, path: str, query: Mapping[str, list[str]], *, throttled: bool
    ) -> tuple[int, Verdict]:
        """Run the gate for one request and open its log entry; returns (seq, verdict)."""
        with self._lock:
            verdict = self._gate.admit(method, path, throttled=throttled)
            self._seq += 1
            self._log.append({
                "seq": self._seq, "time": self._now_text(), "method": method, "path": path,
                "query": redact_query(query), "status": None, "fault": verdict.fault,
                "committed": False,
            })
            del self._log[:-LOG_CAP]
            return self._seq, verdict

    def finish(self, seq: int, status: int | None, committed: bool) -> None:
        """Close a log entry (status None: the connection was dropped)."""
        with self._lock:
            for entry in reversed(self._log):
                if entry["seq"] == seq:
                    entry["status"] = status
                    entry["committed"] = committed
                    return

    def tracking_id(self) -> str:
        with self._lock:
            return tracking_id(self.now(), self._tracking_rng)

    def api_key(self, key: str | None) -> ApiKey | None:
        with self._lock:
            return self._state.api_keys.get(key) if key else None

    # -- Alma calls, rendered under the lock so no half-applied state is ever seen ---------------

    def user_document(
        self, user_id: str, id_type: str | None, *, brief: bool, expand: set[str]
    ) -> dict[str, Any]:
        with self._lock:
            user = alma_api.get_user(self._state, user_id, id_type)
            return render_user(user, brief=brief, expand=expand)

    def authenticate(
        self, user_id: str, id_type: str | None, op: str | None, password: str | None
    ) -> None:
        with self._lock:
            alma_api.authenticate(self._state, user_id, id_type, op, password)

    def fees_document(
        self, user_id: str, id_type: str | None, status: str | None, base: str
    ) -> dict[str, Any]:
        with self._lock:
            user, fees = alma_api.list_fees(self._state, user_id, id_type, status)
            return self._render_fees(fees, user, base)

    def fee_document(
        self, user_id: str, id_type: str | None, fee_id: str, base: str
    ) -> dict[str, Any]:
        with self._lock:
            user, fee = alma_api.get_fee(self._state, user_id, id_type, fee_id)
            return render_fee(fee, user, self._state.institution, base,
                              self._gate.settings.fee_style)

    def pay(
        self, user_id: str, fee_id: str, params: Mapping[str, str], base: str
    ) -> dict[str, Any]:
        with self._lock:
            user, fee = alma_api.pay_fee(self._state, user_id, fee_id, params, self._now_text())
            return render_fee(fee, user, self._state.institution, base,
                              self._gate.settings.fee_style)

    def pay_all(self, user_id: str, params: Mapping[str, str], base: str) -> dict[str, Any]:
        with self._lock:
            user, fees = alma_api.pay_all(self._state, user_id, params, self._now_text())
            return self._render_fees(fees, user, base)

    def _render_fees(self, fees: list[Fee], user: User, base: str) -> dict[str, Any]:
        settings = self._gate.settings
        return render_fees(fees, user, self._state.institution, base,
                           settings.zero_fee_currency, settings.fee_style)


def decimals_to_strings(value: Any) -> Any:
    """Raw state made JSON-safe for the control API: amounts as strings, like the seed."""
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, dict):
        return {key: decimals_to_strings(item) for key, item in value.items()}
    if isinstance(value, list):
        return [decimals_to_strings(item) for item in value]
    return value


__all__ = ["AlmaSandbox", "SeedError", "decimals_to_strings", "redact_query"]
