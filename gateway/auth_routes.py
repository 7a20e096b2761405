"""The identity routes (brief §4), under /api/v1/auth:

- POST /login          {tenantId, userId, password, totp?} → access + refresh token
- POST /refresh        {refreshToken} → a rotated pair (a retry within 30 s: the same one)
- POST /logout         {refreshToken} → 204, the login's family revoked
- POST /token          {tenantId, clientId, clientSecret} → a sensor's access token
- POST /sse-ticket     (Bearer) → a single-use ticket for EventSource, valid 30 s

Errors use the gateway's one shape `{"error": {"code", "message"}}`; 401s carry
`WWW-Authenticate`, 429s `Retry-After`. Token responses are never cached.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import psycopg
from starlette.requests import Request
from starlette.responses import Response

from gateway import sse_tickets
from gateway.batch_request import RequestRejected, parse_json_object
from gateway.http_errors import authenticate, error_response, read_capped
from gateway.responses import OrjsonResponse
from identity.auth_service import AuthError, AuthService, Issued
from identity.rbac import Action

T = TypeVar("T")
# Credentials and a refresh token are well under 1 KiB.
MAX_AUTH_BODY_BYTES = 4096
_NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


def _source(request: Request) -> str:
    # The peer address; a deployment behind a proxy configures uvicorn's
    # --forwarded-allow-ips so this is the client's.
    return request.client.host if request.client else "unknown"


async def _body(request: Request) -> dict[str, object]:
    return parse_json_object(await read_capped(request, MAX_AUTH_BODY_BYTES), MAX_AUTH_BODY_BYTES)


def _text(body: dict[str, object], name: str, *, required: bool = True) -> str | None:
    value = body.get(name)
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value:
        raise RequestRejected(422, "invalid_request", f"{name} must be a non-empty string")
    return value


def _service(request: Request) -> AuthService:
    service: AuthService = request.app.state.auth
    return service


async def _call(operation: Callable[..., Awaitable[T]], *args: Any) -> T:
    """Run an auth operation, once more on a fresh connection if PostgreSQL dropped the
    last one (a restart, a failover): the operations are safe to repeat (a refresh
    repeated after its commit is answered by the retry grace). Still failing: 503."""
    for attempt in (1, 2):
        try:
            return await operation(*args)
        except psycopg.OperationalError:
            if attempt == 2:
                break
    raise AuthError(503, "auth_unavailable", "accounts cannot be read now", retry_after_s=5)


def _tokens(issued: Issued) -> Response:
    return OrjsonResponse(issued.to_json(), headers=_NO_STORE)


Handler = Callable[[Request], Awaitable[Response]]


def _answered(handler: Handler) -> Handler:
    """Answer a RequestRejected or an AuthError raised anywhere in the handler with the
    one error body (and its Retry-After or WWW-Authenticate header)."""

    async def route(request: Request) -> Response:
        try:
            return await handler(request)
        except RequestRejected as rejected:
            return error_response(rejected)
        except AuthError as exc:
            return error_response(
                RequestRejected(exc.status, exc.code, exc.message, retry_after_s=exc.retry_after_s)
            )

    route.__name__ = handler.__name__
    return route


@_answered
async def login(request: Request) -> Response:
    body = await _body(request)
    tenant_id, user_id = _text(body, "tenantId"), _text(body, "userId")
    password, code = _text(body, "password"), _text(body, "totp", required=False)
    assert tenant_id and user_id and password
    issued = await _call(
        _service(request).login, tenant_id, user_id, password, code, _source(request)
    )
    return _tokens(issued)


@_answered
async def refresh(request: Request) -> Response:
    body = await _body(request)
    issued = await _call(_service(request).refresh, body.get("refreshToken"), _source(request))
    return _tokens(issued)


@_answered
async def logout(request: Request) -> Response:
    body = await _body(request)
    await _call(_service(request).logout, body.get("refreshToken"), _source(request))
    return Response(status_code=204)


@_answered
async def client_token(request: Request) -> Response:
    body = await _body(request)
    tenant_id, client_id = _text(body, "tenantId"), _text(body, "clientId")
    secret = _text(body, "clientSecret")
    assert tenant_id and client_id and secret
    issued = await _call(
        _service(request).client_token, tenant_id, client_id, secret, _source(request)
    )
    return _tokens(issued)


async def sse_ticket(request: Request) -> Response:
    try:
        principal = authenticate(request, Action.BUILDING_STREAM)
    except RequestRejected as rejected:
        return error_response(rejected)
    ticket = await sse_tickets.issue(request.app.state.redis, principal)
    return OrjsonResponse(
        {"ticket": ticket, "expiresIn": sse_tickets.TICKET_TTL_S}, headers=_NO_STORE
    )
