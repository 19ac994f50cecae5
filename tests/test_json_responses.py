"""The routes' JSON answers (proxy/web/responses.py): orjson's bytes are the bytes Starlette's
encoder wrote, so no page or client sees a difference; what neither can encode is refused."""

from decimal import Decimal

import pytest
from starlette.responses import JSONResponse as StarletteJSONResponse

from proxy.web.responses import JSONResponse

BODIES = [
    {"currency": "USD", "total": "77.25", "inexact_count": 0, "payable": True, "note": None,
     "fees": [{"id": "7730018830004146", "title": "Cien años de soledad — «edición» 📚",
               "library": {"code": "MAIN", "name": "Biblioteca \"Central\"\n"}}]},
    {"error": {"code": "rate_limited", "message": "Wait 3 seconds", "retry": 3}},
    {2026: "a number as a key", "list": [1, -2, 3.5, [], {}], "empty": ""},
    [],
]


@pytest.mark.parametrize("body", BODIES)
def test_the_same_bytes_as_starlettes_encoder(body):
    ours, theirs = JSONResponse(body), StarletteJSONResponse(body)
    assert ours.body == theirs.body
    assert ours.headers["content-type"] == theirs.headers["content-type"] == "application/json"


def test_money_must_already_be_a_string():
    with pytest.raises(TypeError):
        JSONResponse({"amount": Decimal("12.50")})
