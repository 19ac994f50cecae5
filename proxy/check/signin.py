"""Sign-in: the public URL is https, only the web servers in front may vouch for a patron, and
each offered method's own service answers (CAS, Primo's key set, an SSO login page)."""

from __future__ import annotations

from urllib.parse import urlsplit

import httpx
import jwt

from proxy.cas import CasError, parse_service_response
from proxy.check import readonly
from proxy.check.report import Result, fail, ok, warn
from proxy.config import PREFIX, Settings, is_loopback_host

# A trusted network larger than this is more than "our web servers".
MAX_TRUSTED_ADDRESSES = 256


async def check_sign_in(settings: Settings, http: httpx.AsyncClient) -> list[Result]:
    results = [check_public_url(settings), check_trusted_proxies(settings)]
    methods = settings.auth_methods
    if "sso" in methods and not settings.sso_login_url.startswith("/"):
        results.append(await _answers("signin.sso", "the single sign-on login page",
                                      settings.sso_login_url, f"{PREFIX}SSO_LOGIN_URL", http))
    if "cas" in methods:
        results.append(await check_cas(settings, http))
    if "primo" in methods:
        results.append(await check_primo(settings, http))
    return results


def check_public_url(settings: Settings) -> Result:
    url = settings.public_url
    if settings.is_https():
        return ok("signin.public_url", f"{url} is https")
    if is_loopback_host(urlsplit(url).hostname or ""):
        # Reachable from this machine only, so nothing crosses a network in the clear: a
        # trial or the demo. A campus install cannot serve patrons on it.
        return ok("signin.public_url", f"{url} is plain http on this machine only (a trial; "
                  f"patrons need {PREFIX}PUBLIC_URL on https)")
    return fail("signin.public_url", f"{url} is plain http",
                f"serve patronpay behind https and set {PREFIX}PUBLIC_URL to that URL")


def check_trusted_proxies(settings: Settings) -> Result:
    """Whoever is trusted may set the SSO header (sign in as anyone) and X-Forwarded-For."""
    what = ("the SSO header and X-Forwarded-For" if "sso" in settings.auth_methods
            else "X-Forwarded-For")
    action = f"list only your web servers' addresses in {PREFIX}TRUSTED_PROXIES"
    networks = settings.trusted_proxies
    for net in networks:
        if net.prefixlen == 0:
            return fail("signin.trusted_proxies", f"{net} is trusted: anyone may set {what}",
                        action)
    wide = [net for net in networks
            if not net.is_loopback and net.num_addresses > MAX_TRUSTED_ADDRESSES]
    if wide:
        return warn("signin.trusted_proxies", f"{wide[0]} is trusted: each of its "
                    f"{wide[0].num_addresses} addresses may set {what}", action)
    shown = ", ".join(str(net) for net in networks) or "nobody"
    return ok("signin.trusted_proxies", f"only {shown} may set {what}")


async def check_cas(settings: Settings, http: httpx.AsyncClient) -> Result:
    """Ask the validation endpoint about no ticket: a CAS 3.0 server answers with its XML."""
    url = f"{settings.cas_url}{settings.cas_validate_path}"
    action = (f"check {PREFIX}CAS_URL and {PREFIX}CAS_VALIDATE_PATH: the CAS base, with /login "
              f"and {settings.cas_validate_path} below it")
    answer = await readonly.get(http, url, service=settings.public_url + "/auth/cas")
    if isinstance(answer, str):
        return fail("signin.cas", f"the CAS server cannot be reached ({answer})", action)
    if answer.status_code != 200:
        return fail("signin.cas", f"{url} answers HTTP {answer.status_code}", action)
    try:
        parse_service_response(answer.text)
    except CasError as exc:
        if exc.code == "BAD_RESPONSE":
            return fail("signin.cas", f"{url} does not answer as CAS 3.0 does", action)
    return ok("signin.cas", f"the CAS server at {settings.cas_url} answers")


async def check_primo(settings: Settings, http: httpx.AsyncClient) -> Result:
    """Primo tokens are ES256: the key set must hold at least one usable EC P-256 key."""
    url = settings.primo_key_set_url()
    action = (f"check {PREFIX}PRIMO_INSTITUTION, {PREFIX}PRIMO_JWKS_URL and "
              f"{PREFIX}PRIMO_SANDBOX")
    answer = await readonly.get(http, url)
    if isinstance(answer, str):
        return fail("signin.primo", f"Primo's key set cannot be fetched ({answer})", action)
    if answer.status_code != 200:
        return fail("signin.primo", f"{url} answers HTTP {answer.status_code}", action)
    try:
        keys = answer.json().get("keys") or []
    except (ValueError, AttributeError):
        return fail("signin.primo", f"{url} is not a key set (JSON with `keys`)", action)
    usable = [key for key in keys if _es256(key)]
    if not usable:
        return fail("signin.primo", f"the key set at {url} has no ES256 key: Primo's tokens "
                    "cannot be verified", action)
    kids = ", ".join(str(key["kid"]) for key in usable)
    return ok("signin.primo", f"Primo's key set has {len(usable)} ES256 key(s): {kids}")


def _es256(key: object) -> bool:
    if not isinstance(key, dict) or not key.get("kid"):
        return False
    if key.get("kty") != "EC" or key.get("crv") != "P-256":
        return False
    try:
        jwt.PyJWK(key, algorithm="ES256")
    except (jwt.PyJWKError, jwt.InvalidKeyError, ValueError, TypeError):
        return False
    return True


async def _answers(check: str, what: str, url: str, setting: str,
                   http: httpx.AsyncClient) -> Result:
    answer = await readonly.get(http, url)
    if isinstance(answer, str):
        return fail(check, f"{what} cannot be reached ({answer})", f"check {setting}")
    if answer.status_code >= 400:
        return fail(check, f"{what} answers HTTP {answer.status_code}", f"check {setting}")
    return ok(check, f"{what} answers ({url})")
