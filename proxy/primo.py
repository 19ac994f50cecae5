"""Primo VE "Pay fines" tokens (docs/alma.md#primo-tokens): verified, never just decoded.

The issuer is one of the configured ones (`Prima` for Primo VE, `soa` for Alma-Summon); the
institution code is compared without regard to case, as real tokens vary in it. ES256 only;
the key is chosen by `kid` from the institution's key set, which is cached for 12 hours and
fetched again (at most once a minute, so bad tokens cannot drive traffic) when a token names an
unknown key or fails its signature with a known one (rotation under one kid).
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass

import httpx
import jwt

KEY_SET_TTL_SECONDS = 12 * 3600
REFETCH_AT_MOST_EVERY_SECONDS = 60.0
CLOCK_SKEW_SECONDS = 60
MAX_TOKEN_LENGTH = 8192


class PrimoTokenError(Exception):
    """The token is refused; `reason` says why in a word staff can grep for."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


class KeySetUnavailable(Exception):
    """The key set could not be fetched."""


@dataclass(frozen=True)
class PrimoPatron:
    user_name: str
    display_name: str
    token_id: str      # the issuer's `jti` (or the token's hash): a token is used once
    expires_at: float  # `exp`: until then its `token_id` must be remembered


class PrimoVerifier:
    def __init__(self, http: httpx.AsyncClient, key_set_url: str, *,
                 issuer: str | tuple[str, ...], institution: str,
                 clock: Callable[[], float] = time.time) -> None:
        self.http = http
        self.key_set_url = key_set_url
        self.issuers = (issuer,) if isinstance(issuer, str) else tuple(issuer)
        self.institution = institution
        self.clock = clock
        self.fetches = 0
        self._keys: dict[str, dict] = {}
        self._fetched_at = float("-inf")
        self._lock = asyncio.Lock()

    async def verify(self, token: str) -> PrimoPatron:
        if not token or len(token) > MAX_TOKEN_LENGTH:
            raise PrimoTokenError("malformed", "no token, or too long")
        try:
            header = jwt.get_unverified_header(token)
        except jwt.DecodeError:
            raise PrimoTokenError("malformed", "not a JSON web token") from None
        if header.get("alg") != "ES256":
            raise PrimoTokenError("algorithm", f"algorithm {header.get('alg')!r} is not ES256")
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid:
            raise PrimoTokenError("unknown_key", "the token names no key")
        key = await self._key(kid, refresh=False)
        try:
            claims = self._decode(token, key)
        except jwt.InvalidSignatureError:
            # Perhaps a new key under the same kid: fetch the key set (at most once a minute).
            fresh = await self._key(kid, refresh=True)
            try:
                if fresh is key:
                    raise jwt.InvalidSignatureError
                claims = self._decode(token, fresh)
            except jwt.InvalidSignatureError:
                raise PrimoTokenError("signature", "signature does not verify") from None
        return self._patron(claims, token)

    def _decode(self, token: str, jwk: dict) -> dict:
        try:
            key = jwt.PyJWK(jwk, algorithm="ES256").key
            return jwt.decode(token, key, algorithms=["ES256"], issuer=self.issuers,
                              leeway=CLOCK_SKEW_SECONDS, options={"require": ["exp", "iss"]})
        except jwt.InvalidSignatureError:
            raise
        except jwt.ExpiredSignatureError:
            raise PrimoTokenError("expired", "the token has expired") from None
        except jwt.InvalidIssuerError:
            raise PrimoTokenError("issuer", "the token comes from another issuer") from None
        except (jwt.InvalidTokenError, jwt.PyJWKError) as exc:
            raise PrimoTokenError("invalid", f"the token is not valid: {type(exc).__name__}") \
                from None

    def _patron(self, claims: dict, token: str) -> PrimoPatron:
        if str(claims.get("institution", "")).casefold() != self.institution.casefold():
            raise PrimoTokenError("institution", "the token is for another institution")
        user_name = claims.get("userName")
        if not isinstance(user_name, str) or not user_name.strip():
            raise PrimoTokenError("no_user", "the token names no user")
        jti = claims.get("jti")
        token_id = (f"{claims['iss']}:{jti}" if isinstance(jti, str) and jti
                    else "sha256:" + hashlib.sha256(token.encode()).hexdigest())
        return PrimoPatron(user_name.strip(), str(claims.get("displayName") or ""), token_id,
                           float(claims["exp"]))

    async def _key(self, kid: str, *, refresh: bool) -> dict:
        """The JWK for `kid`, fetching the key set when stale, or once more when asked."""
        async with self._lock:
            now = self.clock()
            stale = now - self._fetched_at > KEY_SET_TTL_SECONDS
            may_refetch = now - self._fetched_at >= REFETCH_AT_MOST_EVERY_SECONDS
            if stale or ((refresh or kid not in self._keys) and may_refetch):
                await self._fetch()
            key = self._keys.get(kid)
        if key is None:
            raise PrimoTokenError("unknown_key", "the token names a key we do not know")
        return key

    async def _fetch(self) -> None:
        self.fetches += 1
        self._fetched_at = self.clock()
        try:
            response = await self.http.get(self.key_set_url)
            response.raise_for_status()
            keys = response.json().get("keys", [])
        except (httpx.HTTPError, ValueError, AttributeError) as exc:
            raise KeySetUnavailable(f"Primo key set unavailable: {type(exc).__name__}") from None
        self._keys = {k["kid"]: k for k in keys if isinstance(k, dict) and k.get("kid")
                      and k.get("kty") == "EC" and k.get("crv") == "P-256"}
