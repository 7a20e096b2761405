"""The gateway's Starlette app: wiring only. Routes authenticate, validate and publish;
all business logic lives in the stream processors.

Run: `uvicorn --factory gateway.app:create_app` (what `sbp dev up` does).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import redis.asyncio as aioredis
from prometheus_client import CollectorRegistry
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from gateway import admin_proxy, auth_routes, openapi
from gateway.clock_skew import SkewPolicy
from gateway.http_errors import routing_error
from gateway.live_fanout import LiveFanout
from gateway.login_throttle import RedisLoginThrottle
from gateway.mark_store import MarkStore
from gateway.publisher import KafkaPublisher
from gateway.rate_budget import RateBudget
from gateway.request_metrics import RequestMetrics, RequestMetricsMiddleware
from gateway.responses import OrjsonResponse
from gateway.stream_routes import building_stream
from gateway.vote_ingest import IngestContext
from gateway.vote_routes import vote_batch, vote_single
from gateway.zone_directory import ZoneDirectory
from identity.account_store import purge_expired
from identity.auth_service import AuthService, TokenSettings
from identity.keyring import LocalKeyring
from identity.signing_keys import KeySet, refresh_periodically
from sbp.metrics.http_server import MetricsServer
from sbp.settings import Settings, get_settings
from sbp.tracing.provider import open_tracing
from schemas import catalog
from schemas.codec import AvroCodec, registry_client
from sinks.live.redis_client import connect
from sinks.timescale.connection import ReconnectingConnection
from streams.config_view import ConfigView
from streams.kafka_acls import GATEWAY_CONFIG_GROUP_PREFIX
from streams.topics import VOTES_RAW

RAW_SUBJECT = catalog.value_subject(VOTES_RAW.name)
GATEWAY_SERVICE = "sbp-gateway"
OPENAPI = openapi.document()


async def healthz(_request: Request) -> Response:
    return OrjsonResponse({"status": "ok"})


async def readyz(request: Request) -> Response:
    state = request.app.state
    # The config view must have caught up: before that, zones and per-tenant settings
    # would come from PostgreSQL reads and defaults only.
    checks = {"kafka": state.ingest.publisher.connected, "config": state.config.ready.is_set()}
    try:
        checks["redis"] = bool(await state.redis.ping())
    except aioredis.RedisError:
        checks["redis"] = False
    try:
        async with state.pg.transaction() as conn:
            await conn.execute("SELECT 1")
        checks["postgres"] = True
    except Exception:
        checks["postgres"] = False
    ready = all(checks.values())
    return OrjsonResponse({"ready": ready, "checks": checks}, status_code=200 if ready else 503)


async def openapi_json(_request: Request) -> Response:
    return OrjsonResponse(OPENAPI)


async def jwks(request: Request) -> Response:
    keyset: KeySet = request.app.state.keyset
    keyset.refresh()
    return OrjsonResponse(keyset.jwks(), headers={"Cache-Control": "max-age=300"})


async def _purge_auth_rows(auth_pg: ReconnectingConnection, every_s: float = 3600.0) -> None:
    """Expired refresh tokens and families, and audit rows past retention, go hourly,
    so the auth tables stay bounded by the number of live logins."""
    while True:
        try:
            async with auth_pg.transaction() as conn:
                await purge_expired(conn)
        except Exception:
            logging.getLogger(__name__).exception("auth purge failed; retried next hour")
        await asyncio.sleep(every_s)


def create_app(settings: Settings | None = None) -> Starlette:
    settings = settings or get_settings()
    metrics = RequestMetrics(CollectorRegistry(), settings.metrics_tenant_label_cap)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        state = app.state
        state.settings = settings
        metrics_server = MetricsServer(
            metrics.registry, settings.host, settings.gateway_metrics_port
        )
        state.keyset = KeySet.load_or_create(settings.keys_dir)
        codec = AvroCodec(registry_client(settings))
        versions = catalog.subjects()[RAW_SUBJECT]
        raw_writers = {v.version: codec.writer(RAW_SUBJECT, v.text) for v in versions}
        state.tracing = open_tracing(settings, GATEWAY_SERVICE, edge=True)
        publisher = KafkaPublisher(
            settings.kafka_config("gateway"),
            tracer=state.tracing.tracer if state.tracing else None,
        )
        await asyncio.to_thread(publisher.wait_connected)
        state.redis = connect(settings.redis_url_for("gateway"))
        state.redis_text = connect(settings.redis_url_for("gateway"), text=True)
        state.pg = ReconnectingConnection(settings.pg_dsn("gateway"))
        state.config = ConfigView(
            settings.kafka_config("gateway"), codec, group_id=GATEWAY_CONFIG_GROUP_PREFIX
        )
        state.config.start()
        state.zones = ZoneDirectory(state.pg, state.config)
        state.admin_client = httpx.AsyncClient(base_url=settings.admin_url, timeout=15)
        state.fanout = LiveFanout(settings.redis_url_for("gateway"))
        state.sse_heartbeat_s = settings.sse_heartbeat_s
        state.rate_budget = RateBudget()
        keyring = LocalKeyring.load_or_create(settings.keys_dir)
        state.ingest = IngestContext(
            codec=codec,
            raw_writers=raw_writers,
            publisher=publisher,
            marks=MarkStore(state.redis),
            keyring=keyring,
            policy=SkewPolicy(),
        )
        # Its own connection: logins and refreshes never queue behind zone lookups.
        auth_pg = ReconnectingConnection(settings.pg_dsn("gateway"))
        state.auth = AuthService(
            auth_pg,
            state.keyset,
            keyring,
            RedisLoginThrottle(state.redis),
            TokenSettings(settings.jwt_issuer, settings.jwt_audience, settings.access_token_ttl_s),
        )
        refresher = asyncio.create_task(refresh_periodically(state.keyset))
        purger = asyncio.create_task(_purge_auth_rows(auth_pg))
        try:
            yield
        finally:
            refresher.cancel()
            purger.cancel()
            await auth_pg.close()
            await state.fanout.close()
            await state.admin_client.aclose()
            await asyncio.to_thread(state.config.close)
            await asyncio.to_thread(publisher.close)
            await state.pg.close()
            await state.redis.aclose()
            await state.redis_text.aclose()
            if state.tracing is not None:
                await asyncio.to_thread(state.tracing.close)
            metrics_server.close()

    return Starlette(
        routes=[
            Route("/healthz", healthz),
            Route("/readyz", readyz),
            Route("/.well-known/jwks.json", jwks),
            Route("/openapi.json", openapi_json),
            Route("/api/v1/auth/login", auth_routes.login, methods=["POST"]),
            Route("/api/v1/auth/refresh", auth_routes.refresh, methods=["POST"]),
            Route("/api/v1/auth/logout", auth_routes.logout, methods=["POST"]),
            Route("/api/v1/auth/token", auth_routes.client_token, methods=["POST"]),
            Route("/api/v1/auth/sse-ticket", auth_routes.sse_ticket, methods=["POST"]),
            Route(
                "/api/v1/admin/{path:path}",
                admin_proxy.forward,
                methods=["GET", "POST", "PUT", "DELETE"],
            ),
            Route("/api/v1/votes/batch", vote_batch, methods=["POST"]),
            Route("/api/v1/votes", vote_single, methods=["POST"]),
            Route("/api/v1/buildings/{building_id}/stream", building_stream),
        ],
        middleware=[Middleware(RequestMetricsMiddleware, metrics=metrics)],
        exception_handlers={HTTPException: routing_error},
        lifespan=lifespan,
    )
