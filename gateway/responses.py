"""The gateway's JSON response: Starlette's `JSONResponse`, rendered by orjson.

Same bytes as Starlette's own rendering for every body the gateway sends
(compact separators, UTF-8, keys in insertion order; no floats, so NaN never
arises), at a fraction of the cost on a 100-result batch answer.
"""

from __future__ import annotations

from typing import Any

import orjson
from starlette.responses import JSONResponse


class OrjsonResponse(JSONResponse):
    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)
