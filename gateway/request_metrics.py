"""RED metrics of the gateway (rate, errors, duration) per route and tenant, as ASGI middleware.

- `route` is the route's template (`/api/v1/buildings/{building_id}/stream`),
  never the raw path, and `unmatched` for a path no route serves: raw paths
  would make one series per building id, or per scanner's guess.
- `tenant` is the tenant of the verified token (`note_tenant`, called where a
  route authenticates), bounded by sbp/metrics/tenant_labels.py; requests
  without a verified token are `none`.
- The duration runs until the response starts (its status and headers are
  sent): for an SSE stream that is the time to open it, not its lifetime.
- An exception that escapes the route is counted as a 500, as the client sees it.

Served on a port of its own (`Settings.gateway_metrics_port`, bound to the
internal host) by sbp/metrics/http_server.py: a scrape never runs on the event
loop and never shares the public API's port. The tenant service uses the same
middleware; the gateway's own count of the admin routes it forwards is `none`
(the tenant service authenticates them, and labels them there).
"""

from __future__ import annotations

import time
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from sbp.metrics.tenant_labels import TenantLabels

TENANT_SCOPE_KEY = "sbp.tenant"
UNMATCHED = "unmatched"
# From a cached Redis answer (~1 ms) to a batch waiting out Kafka's delivery timeout.
DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


def note_tenant(scope: Scope, tenant_id: str) -> None:
    """Label this request with its verified tenant (only ever from a verified token)."""
    scope[TENANT_SCOPE_KEY] = tenant_id


class RequestMetrics:
    def __init__(self, registry: CollectorRegistry, tenant_label_cap: int) -> None:
        self.registry = registry
        self.tenants = TenantLabels(tenant_label_cap)
        self.requests = Counter(
            "sbp_http_requests",
            "HTTP requests answered by the gateway, by route template, method, status and tenant.",
            ["route", "method", "status", "tenant"],
            registry=registry,
        )
        self.duration = Histogram(
            "sbp_http_request_duration_seconds",
            "Time from a request's arrival to the start of its response.",
            ["route", "method", "tenant"],
            buckets=DURATION_BUCKETS,
            registry=registry,
        )
        self.tenants_labelled = Gauge(
            "sbp_http_tenant_labels",
            "Tenants with a label of their own in this process; the rest are `other`.",
            registry=registry,
        )
        self.tenants_labelled.set_function(lambda: self.tenants.labelled)

    def observe(self, scope: Scope, status: int, seconds: float) -> None:
        route: Any = scope.get("route")
        template = getattr(route, "path", None) or UNMATCHED
        method = scope.get("method", "")
        tenant = self.tenants.label(scope.get(TENANT_SCOPE_KEY))
        self.requests.labels(template, method, str(status), tenant).inc()
        self.duration.labels(template, method, tenant).observe(seconds)


class RequestMetricsMiddleware:
    def __init__(self, app: ASGIApp, metrics: RequestMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        answered: list[Any] = []  # (status, seconds) once the response starts

        async def timed_send(message: Message) -> None:
            if message["type"] == "http.response.start" and not answered:
                answered.append((message["status"], time.perf_counter() - started))
            await send(message)

        try:
            await self.app(scope, receive, timed_send)
        finally:
            if answered:
                status, seconds = answered[0]
            else:
                status, seconds = 500, time.perf_counter() - started
            self.metrics.observe(scope, status, seconds)
