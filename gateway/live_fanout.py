"""One Redis Stream reader per (tenant, building) per process, fanned out to SSE clients.

Each client has a bounded queue. A client that falls behind (its queue is full)
is dropped rather than allowed to stall the reader or the other clients; the
browser reconnects with Last-Event-ID and resumes from the stream. The reader
starts with the first subscriber and stops with the last, so Redis holds one
blocking connection per live building, never one per client.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field
from typing import Any

from sinks.live.redis_client import connect
from sinks.live.redis_keys import building_events

log = logging.getLogger(__name__)
CLOSE_TIMEOUT_S = 2.0
LiveEvent = tuple[str, dict[str, str]]  # (stream id, fields)


def stream_id_key(stream_id: str) -> tuple[int, int]:
    ms, _, seq = stream_id.partition("-")
    return int(ms), int(seq or 0)


@dataclass(eq=False)
class Subscription:
    queue: asyncio.Queue[LiveEvent | None]
    dropped: bool = False


@dataclass
class _Reader:
    task: asyncio.Task[None]
    subscribers: set[Subscription] = field(default_factory=set)


class LiveFanout:
    def __init__(self, redis_url: str, queue_size: int = 256, block_ms: int = 5000) -> None:
        self._redis_url = redis_url
        self._queue_size = queue_size
        self._block_ms = block_ms
        self._readers: dict[str, _Reader] = {}

    def subscribe(self, tenant_id: str, building_id: str, start_id: str) -> Subscription:
        """Join the building's live feed; events after `start_id` are delivered."""
        key = building_events(tenant_id, building_id)
        sub = Subscription(asyncio.Queue(self._queue_size))
        reader = self._readers.get(key)
        if reader is None or reader.task.done():
            # A reader that ended (it should not) is replaced, keeping its clients.
            subscribers = reader.subscribers if reader is not None else set()
            reader = _Reader(asyncio.create_task(self._read(key, start_id)), subscribers)
            self._readers[key] = reader
        reader.subscribers.add(sub)
        return sub

    def unsubscribe(self, tenant_id: str, building_id: str, sub: Subscription) -> None:
        key = building_events(tenant_id, building_id)
        reader = self._readers.get(key)
        if reader is None:
            return
        reader.subscribers.discard(sub)
        if not reader.subscribers:
            reader.task.cancel()
            del self._readers[key]

    async def close(self) -> None:
        tasks = [reader.task for reader in self._readers.values()]
        for task in tasks:
            task.cancel()
        if tasks:
            # Bounded: a reader cancelled inside a blocking XREAD has been seen to
            # take its connection down slowly, and closing must never hang.
            await asyncio.wait(tasks, timeout=CLOSE_TIMEOUT_S)
        self._readers.clear()

    async def _read(self, key: str, start_id: str) -> None:
        client = connect(self._redis_url, text=True)
        last_id = start_id
        delay = 0.2
        try:
            while True:
                try:
                    batches: Any = await client.xread({key: last_id}, block=self._block_ms)
                    delay = 0.2
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    log.warning("live reader for %s: %s; retrying in %.1fs", key, exc, delay)
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, 5.0)
                    continue
                for _stream, entries in batches or []:
                    for stream_id, fields in entries:
                        last_id = stream_id
                        self._deliver(key, (stream_id, fields))
        finally:
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await asyncio.wait_for(client.aclose(), CLOSE_TIMEOUT_S)

    def _deliver(self, key: str, event: LiveEvent) -> None:
        reader = self._readers.get(key)
        if reader is None:
            return
        for sub in list(reader.subscribers):
            try:
                sub.queue.put_nowait(event)
            except asyncio.QueueFull:
                # Too slow: drop this client, keep everyone else flowing.
                sub.dropped = True
                reader.subscribers.discard(sub)
                with contextlib.suppress(asyncio.QueueEmpty):
                    sub.queue.get_nowait()
                sub.queue.put_nowait(None)
