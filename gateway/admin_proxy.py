"""`/api/v1/admin/*` on the gateway: forwarded to the tenant service as it is.

The tenant service authenticates and authorizes every call itself (the same token
checks and RBAC SDK), so the gateway only caps the body and passes the request on.
Clients see one API; the tenant service's port need not be public.
"""

from __future__ import annotations

import httpx
from starlette.requests import Request
from starlette.responses import Response

from gateway.batch_request import RequestRejected
from gateway.http_errors import error_response, read_capped

MAX_BODY_BYTES = 64 * 1024
_FORWARDED_REQUEST_HEADERS = ("authorization", "content-type", "accept")
_FORWARDED_RESPONSE_HEADERS = ("content-type", "cache-control", "retry-after", "www-authenticate")


async def forward(request: Request) -> Response:
    client: httpx.AsyncClient = request.app.state.admin_client
    try:
        body = await read_capped(request, MAX_BODY_BYTES)
    except RequestRejected as rejected:
        return error_response(rejected)
    headers = {h: v for h in _FORWARDED_REQUEST_HEADERS if (v := request.headers.get(h))}
    # The path and query exactly as the client encoded them: decoding and re-encoding
    # could change what the tenant service sees (or fail on odd bytes).
    target = request.scope["raw_path"].decode("latin-1")
    if request.scope.get("query_string"):
        target += "?" + request.scope["query_string"].decode("latin-1")
    try:
        upstream = await client.request(request.method, target, content=body, headers=headers)
    except (httpx.HTTPError, httpx.InvalidURL):
        return error_response(
            RequestRejected(
                503, "admin_unavailable", "the tenant service is unavailable", retry_after_s=5
            )
        )
    return Response(
        upstream.content,
        status_code=upstream.status_code,
        headers={h: v for h in _FORWARDED_RESPONSE_HEADERS if (v := upstream.headers.get(h))},
    )
