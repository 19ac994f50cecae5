"""The sandbox for a consortium (docs/sandbox.md, docs/consortium.md#sandbox-and-demo): two
institutions, each a whole sandbox of its own below its code (`/campus-a/alma/...`,
`/campus-b/cashnet/...`): separate Alma institutions with their own API keys, libraries and
patrons, separate CashNet stores with their own item codes, and each its own campus sign-on.
`mkowalski` is known at both, with different fees at each (for fees owed at a sister
institution); `rgarcia` and `dokafor` only at Campus B; the others only at Campus A."""

from __future__ import annotations

import copy
from dataclasses import dataclass

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.routing import Mount, Route

from sandbox import alma
from sandbox.app import ALMA_API_KEY, CASHNET_STORE, create_sandbox_app, urls
from sandbox.cashnet_store import load_seed as load_stores


@dataclass(frozen=True)
class SandboxInstitution:
    code: str
    name: str
    alma_api_key: str
    store: str
    # Alma fee type -> this store's item code; `item_code` for the rest.
    item_codes: str
    item_code: str
    primo_institution: str


CAMPUS_A = SandboxInstitution(
    code="campus-a", name="Campus A Library", alma_api_key=ALMA_API_KEY, store=CASHNET_STORE,
    item_codes=("OVERDUEFINE=LIB-OVERDUE,RECALLEDOVERDUEFINE=LIB-OVERDUE,"
                "LOSTITEMREPLACEMENTFEE=LIB-LOST,LOSTITEMPROCESSFEE=LIB-LOST,"
                "DAMAGEDITEMFINE=LIB-DAMAGE"),
    item_code="LIB-FINE", primo_institution="01PATRON_INST")
CAMPUS_B = SandboxInstitution(
    code="campus-b", name="Campus B Libraries", alma_api_key="sandbox-alma-key-campus-b",
    store="BFINESTEST",
    item_codes="OVERDUEFINE=B-OVERDUE,DAMAGEDITEMFINE=B-DAMAGE,LOSTITEMREPLACEMENTFEE=B-LOST",
    item_code="B-FINE", primo_institution="01CAMPUSB_INST")
INSTITUTIONS = (CAMPUS_A, CAMPUS_B)

ONLY_AT_B = ("rgarcia", "dokafor")
KNOWN_AT_BOTH = "mkowalski"
# mkowalski's fee at Campus B: an overdue fine at its law library.
B_FEE_OF_BOTH = {
    "id": "8840011110005257", "type": "OVERDUEFINE", "status": "ACTIVE",
    "original_amount": "7.25", "balance": "7.25", "creation_time": "2025-02-03T09:15:00.000Z",
    "owner": "LAW", "title": "Contracts: cases and doctrine", "item_barcode": "52570001112223",
    "comment": None, "api_restricted": False, "transactions": [],
}


def alma_seed(institution: SandboxInstitution) -> dict:
    """That institution's Alma: Campus A is the packaged seed without Campus B's own
    patrons; Campus B is another institution with Campus B's patrons and mkowalski."""
    seed = copy.deepcopy(alma.load_seed())
    users = seed["users"]
    if institution is CAMPUS_A:
        seed["users"] = [u for u in users if u["primary_id"] not in ONLY_AT_B]
        return seed
    seed["institution"] = dict(seed["institution"], code=institution.primo_institution,
                               name=institution.name, id_suffix="5257",
                               libraries={"LAW": "Law Library", "MED": "Medical Library"})
    seed["api_keys"] = [{"key": institution.alma_api_key, "label": "demo", "read_only": False}]
    chosen = [u for u in users if u["primary_id"] in ONLY_AT_B]
    for user in chosen:
        for fee in user.get("fees", []):
            fee["id"] = fee["id"][:-4] + "5257"
            fee["owner"] = "MED" if fee.get("owner") else fee.get("owner")
            fee["api_restricted"] = False  # Campus A's seed has the restricted fee to test
    both = copy.deepcopy(next(u for u in users if u["primary_id"] == KNOWN_AT_BOTH))
    both["fees"] = [copy.deepcopy(B_FEE_OF_BOTH)]
    seed["users"] = [*chosen, both]
    return seed


def cashnet_stores(institution: SandboxInstitution) -> dict:
    """That institution's own CashNet store (Campus B's: its own name, merchant and codes)."""
    stores = load_stores()
    if institution is CAMPUS_A:
        return {CASHNET_STORE: stores[CASHNET_STORE]}
    store = copy.deepcopy(stores[CASHNET_STORE])
    store["merchant"] = "BFINES"
    store["item_codes"] = {code: {"price": None, "gl": None, "unique": False,
                                  "exclusive_group": None}
                           for code in ("B-FINE", "B-OVERDUE", "B-DAMAGE", "B-LOST")}
    return {institution.store: store}


def institution_urls(base: str, institution: SandboxInstitution) -> dict[str, str]:
    """Where that institution's sandbox services answer, for a consortium sandbox at `base`."""
    where = urls(f"{base}/{institution.code}")
    where["cashnet_checkout"] = f"{base}/{institution.code}/cashnet/{institution.store}"
    where["primo_jwks"] = (f"{base}/{institution.code}/alma/auth/"
                           f"{institution.primo_institution}/jwks.json")
    return where


async def index(request: Request) -> HTMLResponse:
    items = "".join(f'<li><a href="/{i.code}/">{i.name}</a></li>' for i in INSTITUTIONS)
    return HTMLResponse(
        "<!doctype html><html lang=en><head><meta charset=utf-8><title>patronpay consortium "
        "sandbox</title></head><body><main><h1>patronpay consortium sandbox</h1><p>Each "
        "institution's Alma, CashNet and campus sign-on. No real money, no real card data."
        f"</p><ul>{items}</ul></main></body></html>")


def create_consortium_sandbox_app() -> Starlette:
    """Every institution's sandbox below its code; `state.institutions` holds each one's
    app (its `.state.alma`, `.state.cashnet`, ...)."""
    apps = {i.code: create_sandbox_app(alma_seed=alma_seed(i), cashnet_stores=cashnet_stores(i))
            for i in INSTITUTIONS}
    app = Starlette(routes=[Route("/", index),
                            *(Mount(f"/{code}", app=sub) for code, sub in apps.items())])
    app.state.institutions = apps
    return app
