"""The tenant service's Starlette app: the admin API and the outbox relay.

Run: `uvicorn --factory admin.app:create_app` (what `sbp dev up` does). The gateway
forwards `/api/v1/admin/*` here (gateway/admin_proxy.py), so clients see one API.
Its metrics (requests per route and tenant, as the gateway's, and the outbox
relay's counters) are served on a port of their own, `Settings.admin_metrics_port`.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from typing import Any

from confluent_kafka import Producer
from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, Metric
from prometheus_client.registry import Collector
from psycopg import AsyncConnection
from psycopg_pool import AsyncConnectionPool
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from admin.outbox_relay import OutboxRelay, producer_config
from admin.routes import ROUTES
from gateway.request_metrics import RequestMetrics, RequestMetricsMiddleware
from gateway.responses import OrjsonResponse
from identity.keyring import LocalKeyring
from identity.signing_keys import KeySet, refresh_periodically
from sbp.metrics.http_server import MetricsServer
from sbp.settings import Settings, get_settings
from schemas import catalog
from schemas.codec import AvroCodec, Writer, registry_client
from streams.topics import CONFIG_TENANT_SETTINGS, CONFIG_ZONES


async def healthz(_request: Request) -> Response:
    return OrjsonResponse({"status": "ok"})


async def readyz(request: Request) -> Response:
    state = request.app.state
    checks = {"relay": not state.relay_task.done()}
    try:
        async with state.db.connection() as conn:
            await conn.execute("SELECT 1")
        checks["postgres"] = True
    except Exception:
        checks["postgres"] = False
    ready = all(checks.values())
    return OrjsonResponse({"ready": ready, "checks": checks}, status_code=200 if ready else 503)


async def stats(request: Request) -> Response:
    relay: OutboxRelay = request.app.state.relay
    return OrjsonResponse(
        {"outbox_published": relay.published, "outbox_failed_rounds": relay.failed_rounds}
    )


class OutboxMetrics(Collector):
    """The relay's counters, read at a scrape (plain ints, written by the event loop)."""

    def __init__(self, relay: OutboxRelay) -> None:
        self._relay = relay

    def collect(self) -> Iterable[Metric]:
        return [
            CounterMetricFamily(
                "sbp_outbox_published",
                "Outbox rows published to the config topics.",
                value=self._relay.published,
            ),
            CounterMetricFamily(
                "sbp_outbox_failed_rounds",
                "Relay rounds that failed (retried).",
                value=self._relay.failed_rounds,
            ),
        ]


def _writers(codec: AvroCodec) -> dict[str, Writer]:
    writers = {}
    for topic in (CONFIG_ZONES, CONFIG_TENANT_SETTINGS):
        subject = catalog.value_subject(topic.name)
        newest = catalog.subjects()[subject][-1]
        writers[topic.name] = codec.writer(subject, newest.text)
    return writers


def create_app(settings: Settings | None = None) -> Starlette:
    settings = settings or get_settings()
    metrics = RequestMetrics(CollectorRegistry(), settings.metrics_tenant_label_cap)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        state = app.state
        state.settings = settings
        metrics_server = MetricsServer(metrics.registry, settings.host, settings.admin_metrics_port)
        state.keyset = KeySet.load_or_create(settings.keys_dir)
        state.keyring = LocalKeyring.load_or_create(settings.keys_dir)
        pool: AsyncConnectionPool[AsyncConnection[Any]] = AsyncConnectionPool(
            settings.pg_dsn("admin"),
            min_size=1,
            max_size=4,
            check=AsyncConnectionPool.check_connection,
            open=False,
            name="admin",
        )
        await pool.open(wait=True, timeout=10)
        state.db = pool
        codec = AvroCodec(registry_client(settings))
        writers = await asyncio.to_thread(_writers, codec)
        producer = Producer(producer_config(settings.kafka_config("admin_api")))
        state.relay = OutboxRelay(settings.pg_dsn("admin"), producer, codec, writers)
        state.relay_task = asyncio.create_task(state.relay.run_forever())
        metrics.registry.register(OutboxMetrics(state.relay))
        refresher = asyncio.create_task(refresh_periodically(state.keyset))
        try:
            yield
        finally:
            state.relay_task.cancel()
            refresher.cancel()
            await asyncio.to_thread(producer.flush, 5)
            await pool.close()
            metrics_server.close()

    return Starlette(
        routes=[
            Route("/healthz", healthz),
            Route("/readyz", readyz),
            Route("/stats", stats),
            *ROUTES,
        ],
        middleware=[Middleware(RequestMetricsMiddleware, metrics=metrics)],
        lifespan=lifespan,
    )
