"""`patronpay demo --consortium`: the consortium sandbox (two institutions, each with its own
Alma, CashNet store and campus sign-on) and one proxy serving both by path prefix, on this
machine (docs/consortium.md#sandbox-and-demo). `consortium_config` is also how the tests point
a consortium at the sandbox, so the demo is the configuration the tests prove."""

from __future__ import annotations

import asyncio
import json
import secrets
import tempfile
from pathlib import Path
from typing import Any

from patronpay.demo import bind_next_free, sandbox_environment
from patronpay.serving import Listener, bind, http_url, serve_together
from proxy.config import PREFIX
from proxy.consortium.config import load_consortium
from proxy.consortium.institutions import Consortium, Institution
from sandbox.consortium import (
    INSTITUTIONS,
    KNOWN_AT_BOTH,
    SandboxInstitution,
    create_consortium_sandbox_app,
    institution_urls,
)

ACCENTS = {"campus-a": "#6a1b9a", "campus-b": "#1d5e3a"}
# What each institution's fees page says under its lead: in each language, or one for all.
HELP_TEXTS: dict[str, str | dict[str, str]] = {
    "campus-a": {"en": "Questions about a fine? Ask at the Campus A circulation desk.",
                 "es": "¿Preguntas sobre una multa? Consulte en el mostrador de préstamo del "
                       "Campus A."},
    "campus-b": "Law and Medical libraries: circulation@campus-b.example.edu",
}
# Campus A's logo: an open book, white on its header.
LOGO_SVG = ('<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 32 32" width="32" height="32">'
            '<path d="M3 7c5-2 9-1 13 2v17c-4-3-8-4-13-2zM29 7c-5-2-9-1-13 2v17c4-3 8-4 13-2z" '
            'fill="#ffffff"/></svg>')
# Derived per institution by the consortium (docs/consortium.md#configuration).
DERIVED = ("public_url", "secret_keys", "database")
# How to sign in at each (button, account, password); mkowalski is known at both.
DEMO_SIGN_INS = {
    "campus-a": [("Sign in with your campus account", KNOWN_AT_BOTH, "student-pass"),
                 ("Library guest account", "jsmith", "correct-horse-7")],
    "campus-b": [("Sign in with your campus account", "rgarcia", "student-pass"),
                 ("Sign in with your campus account", KNOWN_AT_BOTH, "student-pass")],
}


def institution_table(institution: SandboxInstitution, sandbox_url: str,
                      proxy_url: str) -> dict[str, Any]:
    """One `[institutions.<code>]` table for that sandbox institution."""
    where = institution_urls(sandbox_url, institution)
    environment = sandbox_environment(f"{proxy_url}/{institution.code}",
                                      f"{sandbox_url}/{institution.code}", "unused", "unused")
    table = {key[len(PREFIX):].lower(): value for key, value in environment.items()}
    for key in (*DERIVED, "cashnet_postback_token"):
        table.pop(key)
    table.update({
        "name": institution.name, "accent": ACCENTS[institution.code],
        "help_text": HELP_TEXTS[institution.code],
        "alma_api_key": institution.alma_api_key,
        "cashnet_checkout_url": where["cashnet_checkout"],
        "cashnet_item_code": institution.item_code,
        "cashnet_item_codes": institution.item_codes,
        "cashnet_postback_token": secrets.token_urlsafe(32),
        "primo_institution": institution.primo_institution,
        "primo_jwks_url": where["primo_jwks"],
        "staff_sso_login_url": where["sso_login"] + "?next=/staff/",
    })
    return table


def consortium_config(folder: Path, proxy_url: str, sandbox_url: str,
                      tables: dict[str, dict[str, Any]] | None = None,
                      network: bool = False, routing: str = "path", **defaults: Any) -> Path:
    """Write the TOML file of a consortium of the sandbox's institutions, served at
    `proxy_url` by path (or by host: then `tables` gives each its `host`); `defaults` (setting
    names) apply to every institution, `tables` adds to one institution's own table (by
    code); `network` lets patrons pay fees across them."""
    lines = [f"public_url = {json.dumps(proxy_url)}",
             f"secret_keys = {json.dumps(secrets.token_hex(32))}",
             f"database = {json.dumps(str(folder / 'ledger.sqlite3'))}"]
    lines += [f"{key} = {json.dumps(value)}" for key, value in defaults.items()]
    lines += ["", "[consortium]", 'name = "Example University System"',
              f"routing = {_toml(routing)}",
              f"pay_network_fees = {_toml(network)}"]
    logo = folder / "campus-a-logo.svg"
    logo.write_text(LOGO_SVG, encoding="utf-8")
    for institution in INSTITUTIONS:
        lines += ["", f"[institutions.{institution.code}]"]
        table = institution_table(institution, sandbox_url, proxy_url)
        if institution.code == "campus-a":
            table["logo"] = str(logo)
        table.update((tables or {}).get(institution.code, {}))
        lines += [f"{key} = {_toml(value)}" for key, value in table.items()]
    path = folder / "consortium.toml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _toml(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return "[" + ", ".join(_toml(item) for item in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{key} = {_toml(item)}" for key, item in value.items()) + " }"
    return json.dumps(str(value))


def point_sandbox_at(sandbox_app, consortium: Consortium) -> None:
    """Enter each institution's URLs in its own sandbox, as its campus staff would."""
    stores = {i.code: i.store for i in INSTITUTIONS}
    for institution in consortium.institutions:
        sandbox = sandbox_app.state.institutions[institution.code]
        _point_one(sandbox, institution, stores[institution.code])


def _point_one(sandbox, institution: Institution, store: str) -> None:
    settings = institution.settings
    postback = f"{settings.public_url}/cashnet/postback/{settings.cashnet_postback_token}"
    sandbox.state.cashnet.configure_store(store, notify_success_url=postback,
                                          notify_failure_url=postback)
    sandbox.state.primo.configure(settings.public_url + "/auth/primo")
    sandbox.state.sso.configure(settings.public_url, settings.sso_header)
    sandbox.state.cas.register_service(settings.public_url + "/auth/cas")


def run_consortium_demo(host: str, port: int) -> int:
    from proxy.consortium.app import create_consortium_app
    from proxy.logs import configure_logging

    proxy_socket = bind(host, port)
    sandbox_socket = bind_next_free(host, proxy_socket.getsockname()[1] + 1 if port else 0)
    sandbox_app = create_consortium_sandbox_app()
    with tempfile.TemporaryDirectory(prefix="patronpay-consortium-") as folder:
        proxy_url = http_url(host, proxy_socket.getsockname()[1])
        sandbox_url = http_url(host, sandbox_socket.getsockname()[1])
        path = consortium_config(Path(folder), proxy_url, sandbox_url, network=True,
                                 log_level="WARNING")
        consortium = load_consortium({PREFIX + "CONFIG": str(path)})
        assert consortium is not None
        configure_logging("WARNING")
        point_sandbox_at(sandbox_app, consortium)
        listeners = [Listener("proxy", create_consortium_app(consortium), proxy_socket),
                     Listener("sandbox", sandbox_app, sandbox_socket)]
        print(f"patronpay demo: a consortium of {len(consortium.institutions)} institutions "
              f"at {proxy_url}/")
        for institution in consortium.institutions:
            print(f"  {institution.name}: {institution.settings.public_url}/")
            for label, user, password in DEMO_SIGN_INS[institution.code]:
                print(f"    {label + ':':36} {user} / {password}")
        print(f"  {KNOWN_AT_BOTH} owes fees at both, and sees both on either's fees page "
              "(each paid at its own institution); the others owe at one only.")
        print(f"  sandbox Alma, CashNet and sign-on of each: {sandbox_url}/ (no real money)")
        print(f"  configuration: {path} (while the demo runs)")
        print("  on CashNet's sandbox page any card number works; Pay, Decline or Cancel.")
        print("Stop with Ctrl-C.", flush=True)
        asyncio.run(serve_together(listeners))
    return 0
