"""The registry's Starlette application and its lifespan.

Run it with `uvicorn --factory registry.app:create_app`. The lifespan opens one
connection pool to PostgreSQL, as the application role, and closes it on
shutdown; start-up fails if the database can't be reached, so a bad DSN shows
at once instead of as a registry that answers every request with 50001.
Every error leaves as Confluent's `{"error_code", "message"}` body, and every
request body is capped while it is read (`registry.body_limit`).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from psycopg import AsyncConnection
from psycopg_pool import AsyncConnectionPool
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response

from registry.auth import CHALLENGE
from registry.body_limit import BodyLimit
from registry.errors import RegistryError, Unauthorized
from registry.responses import RegistryResponse
from registry.routes import ROUTES
from registry.store import Connection, Store
from sbp.settings import Settings, get_settings

log = logging.getLogger(__name__)

POOL_MIN_SIZE = 1
POOL_MAX_SIZE = 10
CONNECT_TIMEOUT_S = 10.0


def create_app(settings: Settings | None = None) -> Starlette:
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        pool: AsyncConnectionPool[Connection] = AsyncConnectionPool(
            settings.pg_dsn("registry"),
            connection_class=AsyncConnection,
            kwargs={"autocommit": True},
            min_size=POOL_MIN_SIZE,
            max_size=POOL_MAX_SIZE,
            # A connection broken by a database restart is replaced on checkout
            # instead of failing the request that drew it.
            check=AsyncConnectionPool.check_connection,
            open=False,
            name="registry",
        )
        await pool.open(wait=True, timeout=CONNECT_TIMEOUT_S)
        app.state.store = Store(pool)
        try:
            yield
        finally:
            await pool.close()

    app = Starlette(
        routes=ROUTES,
        lifespan=lifespan,
        middleware=[Middleware(BodyLimit)],
        exception_handlers={
            RegistryError: _registry_error,
            HTTPException: _http_error,
            Exception: _unexpected_error,
        },
    )
    app.state.settings = settings
    return app


async def _registry_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RegistryError)
    headers = {"WWW-Authenticate": CHALLENGE} if isinstance(exc, Unauthorized) else None
    return RegistryResponse(exc.to_body(), status_code=exc.http_status, headers=headers)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    body = {"error_code": exc.status_code, "message": f"HTTP {exc.status_code} {exc.detail}"}
    return RegistryResponse(body, status_code=exc.status_code, headers=exc.headers)


async def _unexpected_error(request: Request, exc: Exception) -> Response:
    # A bug, not a client error: log it whole, tell the client only the code.
    log.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    body = {"error_code": 500, "message": "Internal error in the schema registry; see its log"}
    return RegistryResponse(body, status_code=500)
