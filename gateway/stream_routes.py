"""GET /api/v1/buildings/{buildingId}/stream: the building's live events over SSE.

The SSE `id` is the Redis Stream id, so a reconnect with `Last-Event-ID` resumes
from the stream on any gateway process. A new connection (no Last-Event-ID,
or one older than the trimmed stream) first gets a `snapshot` event with every
zone's current state. Heartbeat comments keep proxies from closing an idle
stream. The stream ends when the token expires; the client reconnects with a
fresh token.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

from redis.exceptions import RedisError
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from gateway import sse_tickets
from gateway.batch_request import RequestRejected
from gateway.http_errors import authenticate, error_response, tenant_zones
from gateway.live_fanout import LiveFanout, Subscription, stream_id_key
from identity.principal import Principal
from identity.rbac import Action, BuildingAccess, Forbidden, authorize, building_access
from sinks.live.redis_keys import building_events, comfort_snapshots

STREAM_ID = re.compile(r"[0-9]{1,20}-[0-9]{1,20}")


def sse_frame(event: str, data: str, event_id: str | None = None) -> bytes:
    lines = []
    if event_id is not None:
        lines.append(f"id: {event_id}")
    lines.append(f"event: {event}")
    lines.extend(f"data: {line}" for line in data.splitlines() or [""])
    return ("\n".join(lines) + "\n\n").encode()


async def _snapshot_frame(client: Any, tenant_id: str, building_id: str) -> bytes:
    zones = await client.hgetall(comfort_snapshots(tenant_id, building_id))
    body = {
        "tenantId": tenant_id,
        "buildingId": building_id,
        "zones": [json.loads(v) for _k, v in sorted(zones.items())],
    }
    return sse_frame("snapshot", json.dumps(body, separators=(",", ":")))


async def _events(
    request: Request,
    principal: Principal,
    building_id: str,
    last_event_id: str | None,
    anchor: str,
) -> AsyncIterator[bytes]:
    state = request.app.state
    # A client with decode_responses=True: stream ids and fields come back as str.
    client: Any = state.redis_text
    fanout: LiveFanout = state.fanout
    tenant_id = principal.tenant_id
    key = building_events(tenant_id, building_id)
    sub: Subscription = fanout.subscribe(tenant_id, building_id, anchor)
    try:
        yield b"retry: 2000\n\n"
        last_sent = anchor
        oldest = await client.xrange(key, count=1)
        resumable = bool(last_event_id) and (
            not oldest or stream_id_key(oldest[0][0]) <= stream_id_key(last_event_id or "0-0")
        )
        if resumable and last_event_id:
            missed = await client.xrange(key, min=f"({last_event_id}", max="+")
            for stream_id, fields in missed:
                yield sse_frame(fields.get("type", "message"), fields.get("data", ""), stream_id)
                last_sent = stream_id
            if not missed:
                last_sent = last_event_id
        else:
            yield await _snapshot_frame(client, tenant_id, building_id)
        expires_in = (principal.expires_at - datetime.now(UTC)).total_seconds()
        deadline = asyncio.get_running_loop().time() + max(0.0, expires_in)
        heartbeat = state.sse_heartbeat_s
        while True:
            remaining = deadline - asyncio.get_running_loop().time()
            if remaining <= 0:
                yield sse_frame("end", json.dumps({"reason": "token_expired"}))
                return
            try:
                item = await asyncio.wait_for(sub.queue.get(), timeout=min(heartbeat, remaining))
            except TimeoutError:
                yield b": heartbeat\n\n"
                continue
            if item is None:
                # Dropped for being too slow; the client reconnects with Last-Event-ID.
                return
            stream_id, fields = item
            if stream_id_key(stream_id) <= stream_id_key(last_sent):
                continue
            yield sse_frame(fields.get("type", "message"), fields.get("data", ""), stream_id)
            last_sent = stream_id
    finally:
        fanout.unsubscribe(tenant_id, building_id, sub)


async def _stream_principal(request: Request) -> Principal:
    """From the Bearer token, or for browsers (EventSource sends no header) from a
    single-use `?ticket=`; either way authorized by the one RBAC SDK."""
    ticket = request.query_params.get("ticket")
    if ticket is None or "authorization" in request.headers:
        return authenticate(request, Action.BUILDING_STREAM)
    try:
        principal = await sse_tickets.redeem(request.app.state.redis, ticket)
    except sse_tickets.TicketError as exc:
        raise RequestRejected(401, "invalid_ticket", "unknown, used or expired ticket") from exc
    except RedisError as exc:
        raise RequestRejected(
            503, "live_unavailable", "live updates unavailable", retry_after_s=5
        ) from exc
    try:
        authorize(principal, Action.BUILDING_STREAM)
    except Forbidden as exc:
        raise RequestRejected(403, exc.code, exc.message) from exc
    return principal


async def building_stream(request: Request) -> Response:
    building_id = request.path_params["building_id"]
    try:
        principal = await _stream_principal(request)
        zones = await tenant_zones(request, principal)
        access = building_access(principal, building_id, zones.has_building(building_id))
        if access is BuildingAccess.UNKNOWN:
            raise RequestRejected(404, "unknown_building", "no such building")
        if access is BuildingAccess.FORBIDDEN:
            raise RequestRejected(403, "forbidden_building", "building outside your scope")
    except RequestRejected as rejected:
        return error_response(rejected)
    last_event_id = request.headers.get("last-event-id") or request.query_params.get("lastEventId")
    if last_event_id is not None and not STREAM_ID.fullmatch(last_event_id):
        # Not an id this stream ever sent: start afresh with a snapshot.
        last_event_id = None
    try:
        # The stream's current end, read before the response starts so that a
        # Redis outage is a clean 503 rather than a stream that breaks at once.
        newest = await request.app.state.redis_text.xrevrange(
            building_events(principal.tenant_id, building_id), count=1
        )
    except RedisError:
        return error_response(
            RequestRejected(503, "live_unavailable", "live updates unavailable", retry_after_s=5)
        )
    anchor = newest[0][0] if newest else "0-0"
    return StreamingResponse(
        _events(request, principal, building_id, last_event_id, anchor),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )
