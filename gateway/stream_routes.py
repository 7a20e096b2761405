"""GET /api/v1/buildings/{buildingId}/stream: the building's live events over SSE.

The SSE `id` is the Redis Stream id, so a reconnect with `Last-Event-ID` (or
`?lastEventId=`, for clients that cannot set the header) resumes from the stream
on any gateway process. A new connection first gets a `snapshot` event with every
zone's current state. Heartbeat comments keep proxies from closing an idle stream.
The stream ends when the token expires; the client reconnects with a fresh token.

Resuming (docs/sse-limits.md):
- A Last-Event-ID is used only if it is an id this stream could have sent: two
  decimal numbers of at most 64 bits each, no later than the stream's newest
  entry when the request arrived, and no earlier than its oldest entry (older
  ones were trimmed, so events in between are lost). Anything else gets the
  snapshot instead, as a new connection does: an id is client input, and a
  browser whose EventSource got an error status would stop reconnecting.
- The missed events are read in pages of RESUME_PAGE (XRANGE ... COUNT), up to
  the newest entry read after the live subscription began; later ones come live.
  The stream is trimmed to about EVENTS_MAXLEN, which bounds a resume.

Releasing: the event generator is closed however the response ends (the
client left, a send failed, the server shuts down), and its `finally` leaves the
building's feed, so a building's reader stops with its last client. A client that
stops reading while events keep coming is cut off after WRITE_TIMEOUT_S instead
of holding its connection and its queue forever. Neither a client that leaves nor
a Redis error during the stream logs a traceback: the first is normal, the second
is one warning line and an ended stream, which the client resumes.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
from collections.abc import AsyncGenerator, AsyncIterator
from datetime import UTC, datetime
from typing import Any

from redis.exceptions import RedisError
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.types import Message, Send

from gateway import sse_tickets
from gateway.batch_request import RequestRejected
from gateway.http_errors import authenticate, error_response, tenant_zones
from gateway.live_fanout import LiveFanout, stream_id_key
from gateway.request_metrics import note_tenant
from identity.principal import Principal
from identity.rbac import Action, BuildingAccess, Forbidden, authorize, building_access
from sinks.live.redis_keys import building_events, comfort_snapshots

log = logging.getLogger(__name__)

# Redis stream ids are two unsigned 64-bit numbers; 20 digits bound the parse.
STREAM_ID = re.compile(r"([0-9]{1,20})-([0-9]{1,20})")
MAX_ID_PART = 2**64 - 1
RESUME_PAGE = 500
# A client whose socket takes no bytes for this long has stopped reading.
WRITE_TIMEOUT_S = 30.0


def resume_id(raw: str | None, newest: str) -> str | None:
    """`raw` as a canonical stream id when a client may resume from it, else None.

    `newest` is the stream's newest id ("0-0" when empty). Pure: the oldest-entry
    check needs Redis and happens in the stream itself.
    """
    if raw is None:
        return None
    match = STREAM_ID.fullmatch(raw)
    if match is None:
        return None
    ms, seq = int(match[1]), int(match[2])
    if ms > MAX_ID_PART or seq > MAX_ID_PART or (ms, seq) > stream_id_key(newest):
        return None
    return f"{ms}-{seq}"


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


async def _missed_events(
    client: Any, key: str, after: str, until: str
) -> AsyncIterator[tuple[str, dict[str, str]]]:
    """Entries with `after` < id <= `until`, one bounded XRANGE page at a time."""
    cursor = after
    while stream_id_key(cursor) < stream_id_key(until):
        page = await client.xrange(key, min=f"({cursor}", max=until, count=RESUME_PAGE)
        for entry in page:
            yield entry
        if len(page) < RESUME_PAGE:
            return
        cursor = page[-1][0]


async def _events(
    request: Request,
    principal: Principal,
    building_id: str,
    resume_from: str | None,
    anchor: str,
) -> AsyncGenerator[bytes, None]:
    state = request.app.state
    # A client with decode_responses=True: stream ids and fields come back as str.
    client: Any = state.redis_text
    fanout: LiveFanout = state.fanout
    tenant_id = principal.tenant_id
    key = building_events(tenant_id, building_id)
    # Subscribed before anything is read, so every event after what is read next
    # also arrives live; the live loop skips what was already sent.
    sub = fanout.subscribe(tenant_id, building_id, anchor)
    try:
        yield b"retry: 2000\n\n"
        last_sent = anchor
        oldest: list[Any] = []
        newest: list[Any] = []
        if resume_from is not None:
            async with client.pipeline(transaction=False) as pipe:
                pipe.xrange(key, count=1)
                pipe.xrevrange(key, count=1)
                oldest, newest = await pipe.execute()
        if resume_from is not None and (
            not oldest or stream_id_key(oldest[0][0]) <= stream_id_key(resume_from)
        ):
            last_sent = resume_from
            until = newest[0][0] if newest else resume_from
            async for stream_id, fields in _missed_events(client, key, resume_from, until):
                yield sse_frame(fields.get("type", "message"), fields.get("data", ""), stream_id)
                last_sent = stream_id
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
                async with asyncio.timeout(min(heartbeat, remaining)):
                    item = await sub.queue.get()
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
    except RedisError as exc:
        # The response has started, so no 503 can be sent: end the stream, and the
        # client's reconnect (after `retry`) resumes from its Last-Event-ID.
        log.warning("SSE stream for %s ended, Redis unavailable: %s", key, exc)
    finally:
        fanout.unsubscribe(sub)


class _ClientStalled(Exception):
    """Internal: a send did not complete within WRITE_TIMEOUT_S."""


class _EventStream(StreamingResponse):
    """A StreamingResponse that always closes its generator, and stops a stalled client.

    Starlette stops iterating when the client disconnects but leaves the generator
    open when that happens during a send: its `finally` would then wait for the
    garbage collector, and the building's reader with it.
    """

    def __init__(self, events: AsyncGenerator[bytes, None]) -> None:
        super().__init__(
            events,
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )
        self._events = events

    async def stream_response(self, send: Send) -> None:
        async def send_in_time(message: Message) -> None:
            try:
                async with asyncio.timeout(WRITE_TIMEOUT_S):
                    await send(message)
            except TimeoutError:
                raise _ClientStalled from None

        async with contextlib.aclosing(self._events):
            try:
                await super().stream_response(send_in_time)
            except _ClientStalled:
                # Returning with the response incomplete makes the server close the
                # connection; the client, if it is still there, resumes.
                log.warning("SSE client read nothing for %.0f s; stream closed", WRITE_TIMEOUT_S)


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
    note_tenant(request.scope, principal.tenant_id)
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
    raw_id = request.headers.get("last-event-id") or request.query_params.get("lastEventId")
    resume_from = resume_id(raw_id, anchor)
    return _EventStream(_events(request, principal, building_id, resume_from, anchor))
