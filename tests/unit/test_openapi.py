"""/openapi.json describes every route the gateway serves and every admin route it
forwards, with the methods they take, and every error answer uses the one shape."""

from __future__ import annotations

import re

from starlette.routing import Route

from admin.routes import ROUTES as ADMIN_ROUTES
from gateway.app import create_app
from gateway.openapi import document
from sbp.settings import Settings

PROXY = "/api/v1/admin/{path:path}"


def _mounted() -> set[tuple[str, str]]:
    found = set()
    gateway_routes = [r for r in create_app(Settings()).routes if isinstance(r, Route)]
    for route in [*gateway_routes, *ADMIN_ROUTES]:
        assert isinstance(route, Route)
        if route.path == PROXY:
            continue
        methods = (route.methods or {"GET"}) - {"HEAD"}
        found |= {(route.path, m.lower()) for m in methods}
    return found


def test_every_route_is_described_with_its_methods() -> None:
    described = {(path, method) for path, ops in document()["paths"].items() for method in ops}
    assert _mounted() == described


def test_every_error_answer_uses_the_error_shape() -> None:
    for path, ops in document()["paths"].items():
        for method, op in ops.items():
            for status, answer in op["responses"].items():
                if int(status) >= 400 and not (path == "/readyz" and status == "503"):
                    schema = answer["content"]["application/json"]["schema"]
                    assert schema == {"$ref": "#/components/schemas/Error"}, (path, method)
            params = re.findall(r"{(\w+)}", path)
            assert sorted(p["name"] for p in op.get("parameters", [])) == sorted(params)
