"""Kiosks: each kiosk's secret is long enough and its own."""

from __future__ import annotations

from proxy.check.report import Result, fail, ok, warn
from proxy.config import PREFIX, Settings

MIN_SECRET_LENGTH = 32


def check_kiosks(settings: Settings) -> list[Result]:
    keys = settings.kiosk_keys
    if not keys:
        return [ok("kiosks", "no kiosks are configured")]
    short = sorted(kiosk for kiosk, secret in keys.items() if len(secret) < MIN_SECRET_LENGTH)
    if short:  # start-up refuses these too
        return [fail("kiosks", f"kiosk {short[0]}'s secret is shorter than "
                     f"{MIN_SECRET_LENGTH} characters", f"give it a new secret (openssl rand "
                     f"-hex 32) in {PREFIX}KIOSK_KEYS and on the kiosk")]
    by_secret: dict[str, list[str]] = {}
    for kiosk, secret in sorted(keys.items()):
        by_secret.setdefault(secret, []).append(kiosk)
    shared = next((kiosks for kiosks in by_secret.values() if len(kiosks) > 1), None)
    if shared:
        return [warn("kiosks", f"kiosks {' and '.join(shared)} share a secret",
                     "give each kiosk its own, so one can be withdrawn alone")]
    return [ok("kiosks", f"{len(keys)} kiosk(s), each with its own secret of "
               f"{MIN_SECRET_LENGTH}+ characters: {', '.join(sorted(keys))}")]
