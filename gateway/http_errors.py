"""The one error response shape: `{"error": {"code", "message"}}`, and the lookups every
route makes before its own work: its capped body, the caller's principal and its
tenant's zones."""

from __future__ import annotations

from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request

from gateway.batch_request import RequestRejected
from gateway.request_metrics import note_tenant
from gateway.responses import OrjsonResponse
from gateway.zone_directory import DirectoryUnavailable, TenantZones
from identity.principal import Principal
from identity.rbac import Action, Forbidden, authorize
from identity.tokens import TokenError, parse_bearer, verify_access_token


async def read_capped(request: Request, cap: int) -> bytes:
    """The body, refusing (413) as soon as it passes `cap` bytes: never buffered whole."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > cap:
        raise RequestRejected(413, "body_too_large", f"the body exceeds {cap} bytes")
    chunks, size = [], 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > cap:
                raise RequestRejected(413, "body_too_large", f"the body exceeds {cap} bytes")
            chunks.append(chunk)
    except ClientDisconnect:
        # The client went away (or was cut off for sending too slowly): nobody reads
        # the answer, and it is not the server's error to log.
        raise RequestRejected(400, "client_disconnected", "the body was not sent") from None
    return b"".join(chunks)


def error_response(rejected: RequestRejected) -> OrjsonResponse:
    headers = {}
    if rejected.retry_after_s is not None:
        headers["Retry-After"] = str(rejected.retry_after_s)
    if rejected.status == 401:
        headers["WWW-Authenticate"] = 'Bearer error="invalid_token"'
    return OrjsonResponse(rejected.to_json(), status_code=rejected.status, headers=headers)


def authenticate(request: Request, action: Action) -> Principal:
    """The caller's principal, authorized for `action`; raises RequestRejected (401/403)."""
    state = request.app.state
    try:
        token = parse_bearer(request.headers.get("authorization"))
        principal = verify_access_token(
            state.keyset,
            token,
            issuer=state.settings.jwt_issuer,
            audience=state.settings.jwt_audience,
        )
    except TokenError as exc:
        raise RequestRejected(401, exc.code, exc.message) from exc
    note_tenant(request.scope, principal.tenant_id)
    try:
        authorize(principal, action)
    except Forbidden as exc:
        raise RequestRejected(403, exc.code, exc.message) from exc
    return principal


async def tenant_zones(request: Request, principal: Principal) -> TenantZones:
    """The caller's tenant's zones; 503 (RequestRejected) when they cannot be read."""
    try:
        zones: TenantZones = await request.app.state.zones.for_tenant(principal.tenant_id)
    except DirectoryUnavailable as exc:
        raise RequestRejected(
            503,
            "zone_registry_unavailable",
            "zones cannot be checked now; retry later",
            retry_after_s=5,
        ) from exc
    return zones


# Starlette's own answers (no route matches the path, or not with this method) in the
# one error shape, never its plain-text default: e.g. an id holding a newline, which no
# route's pattern matches.
_ROUTING_CODES = {
    404: ("not_found", "no such route"),
    405: ("method_not_allowed", "method not allowed"),
}


async def routing_error(request: Request, exc: Exception) -> OrjsonResponse:
    status = exc.status_code if isinstance(exc, HTTPException) else 500
    code, message = _ROUTING_CODES.get(status, ("http_error", "the request was refused"))
    response = error_response(RequestRejected(status, code, message))
    if isinstance(exc, HTTPException) and exc.headers:
        response.headers.update(exc.headers)  # e.g. Allow on a 405
    return response
