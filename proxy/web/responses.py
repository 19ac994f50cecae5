"""The JSON answers of the proxy's routes, encoded by orjson.

The same bytes as Starlette's `JSONResponse` (compact, UTF-8, keys in insertion order), at a
tenth of the standard library encoder's CPU: encoding the fees page was about a twentieth of
its CPU (docs/performance.md#the-fees-pages-own-cpu). What neither encodes is refused by both:
money is a string before it gets here, and a `Decimal` or another object is a TypeError.
"""

from __future__ import annotations

from typing import Any

import orjson
from starlette.responses import JSONResponse as StarletteJSONResponse


class JSONResponse(StarletteJSONResponse):
    def render(self, content: Any) -> bytes:
        # Non-string keys become strings, as the standard library encoder makes them.
        return orjson.dumps(content, option=orjson.OPT_NON_STR_KEYS)
