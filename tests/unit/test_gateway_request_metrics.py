"""The gateway's RED middleware: route templates, statuses, verified tenants, durations."""

from __future__ import annotations

from prometheus_client import CollectorRegistry
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.testclient import TestClient

from gateway.request_metrics import RequestMetrics, RequestMetricsMiddleware, note_tenant


async def zone(request: Request) -> Response:
    # What `authenticate` does once a token is verified.
    note_tenant(request.scope, request.headers["x-tenant"])
    return JSONResponse({"zone": request.path_params["zone_id"]})


async def broken(_request: Request) -> Response:
    raise RuntimeError("boom")


async def unavailable(_request: Request) -> Response:
    return JSONResponse({"error": {"code": "broker_unavailable"}}, status_code=503)


def client(cap: int = 10) -> tuple[TestClient, CollectorRegistry]:
    registry = CollectorRegistry()
    metrics = RequestMetrics(registry, cap)
    app = Starlette(
        routes=[
            Route("/zones/{zone_id}", zone),
            Route("/broken", broken),
            Route("/unavailable", unavailable, methods=["POST"]),
        ],
        middleware=[Middleware(RequestMetricsMiddleware, metrics=metrics)],
    )
    return TestClient(app, raise_server_exceptions=False), registry


def requests(registry: CollectorRegistry, **labels: str) -> float:
    return registry.get_sample_value("sbp_http_requests_total", labels) or 0.0


def test_requests_are_counted_by_route_template_never_by_raw_path() -> None:
    http, registry = client()
    for zone_id in ("z1", "z2", "z3"):
        assert http.get(f"/zones/{zone_id}", headers={"x-tenant": "t-a"}).status_code == 200
    labels = {"route": "/zones/{zone_id}", "method": "GET", "status": "200", "tenant": "t-a"}
    assert requests(registry, **labels) == 3
    text = "".join(str(s) for m in registry.collect() for s in m.samples)
    assert "/zones/z1" not in text


def test_errors_carry_their_status_and_an_escaped_exception_counts_as_500() -> None:
    http, registry = client()
    assert http.post("/unavailable").status_code == 503
    assert http.get("/broken").status_code == 500
    assert http.get("/nowhere").status_code == 404
    assert requests(registry, route="/unavailable", method="POST", status="503", tenant="none")
    assert requests(registry, route="/broken", method="GET", status="500", tenant="none") == 1
    assert requests(registry, route="unmatched", method="GET", status="404", tenant="none") == 1


def test_tenants_past_the_cap_fold_into_other_and_the_duration_is_observed() -> None:
    http, registry = client(cap=1)
    http.get("/zones/z1", headers={"x-tenant": "t-a"})
    http.get("/zones/z1", headers={"x-tenant": "t-b"})
    http.get("/zones/z1", headers={"x-tenant": "t-c"})
    base = {"route": "/zones/{zone_id}", "method": "GET", "status": "200"}
    assert requests(registry, **base, tenant="t-a") == 1
    assert requests(registry, **base, tenant="other") == 2
    assert requests(registry, **base, tenant="t-b") == 0
    count = registry.get_sample_value(
        "sbp_http_request_duration_seconds_count",
        {"route": "/zones/{zone_id}", "method": "GET", "tenant": "other"},
    )
    assert count == 2
    assert registry.get_sample_value("sbp_http_tenant_labels") == 1
