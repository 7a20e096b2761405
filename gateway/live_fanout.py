"""One Redis Stream reader per (tenant, building) per process, fanned out to SSE clients.

Each client has a bounded queue. A client that falls behind (its queue is full)
is dropped rather than allowed to stall the reader or the other clients; the
browser reconnects with Last-Event-ID and resumes from the stream.

Invariants:
- At most one reader per building, started by its first subscriber, so Redis
  holds one blocking connection per live building, never one per client.
- A reader lives exactly as long as its building has a subscriber. When the
  last one leaves, whether it unsubscribed or was dropped for being slow, the
  reader is unregistered at once and its task ends: cancelled out of its
  blocking XREAD (or, when it dropped the last client itself, before its next
  XREAD), then closing its connection within CLOSE_TIMEOUT_S. The next
  subscriber starts a new reader. `reader_count` counts the tasks not yet
  finished, so a reader that has stopped polling but not yet let go of its
  connection still counts.
- A reader's XREAD blocks for `block_ms`; a reply that takes READ_MARGIN_S
  longer means a dead connection, which is dropped and retried. That deadline
  is the reader's own `asyncio.timeout`, not redis-py's socket timeout: with
  one, redis-py sends each command under `asyncio.wait_for`, which on Python
  3.11 swallows a cancel that arrives as the send completes, and the "stopped"
  reader then sat in XREAD for another block period, or, before readers also
  checked that they are still registered, polled on forever.
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
READ_MARGIN_S = 5.0
LiveEvent = tuple[str, dict[str, str]]  # (stream id, fields)


def stream_id_key(stream_id: str) -> tuple[int, int]:
    """A Redis stream id as a sortable pair; only for ids Redis or the route validated."""
    ms, _, seq = stream_id.partition("-")
    return int(ms), int(seq or 0)


@dataclass(eq=False)
class Subscription:
    key: str  # the building's event stream
    queue: asyncio.Queue[LiveEvent | None]
    dropped: bool = False


@dataclass(eq=False)
class _Reader:
    key: str
    subscribers: set[Subscription] = field(default_factory=set)
    task: asyncio.Task[None] = field(init=False)


class LiveFanout:
    def __init__(self, redis_url: str, queue_size: int = 256, block_ms: int = 5000) -> None:
        self._redis_url = redis_url
        self._queue_size = queue_size
        self._block_ms = block_ms
        self._readers: dict[str, _Reader] = {}
        # Every reader task not yet finished, including stopped ones still closing
        # their connection: what `reader_count` reports.
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def reader_count(self) -> int:
        """Reader tasks still alive in this process (read-only; for tests and operators)."""
        return len(self._tasks)

    def subscribe(self, tenant_id: str, building_id: str, start_id: str) -> Subscription:
        """Join the building's live feed; a new reader delivers events after `start_id`,
        a running one delivers from where it is."""
        key = building_events(tenant_id, building_id)
        reader = self._readers.get(key)
        if reader is None:
            reader = _Reader(key)
            reader.task = asyncio.create_task(self._read(reader, start_id), name=f"reader {key}")
            self._tasks.add(reader.task)
            reader.task.add_done_callback(lambda task: self._reader_done(reader, task))
            self._readers[key] = reader
        sub = Subscription(key, asyncio.Queue(self._queue_size))
        reader.subscribers.add(sub)
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        """Leave the feed; idempotent, and a no-op for a client already dropped."""
        reader = self._readers.get(sub.key)
        if reader is None or sub not in reader.subscribers:
            return
        reader.subscribers.discard(sub)
        if not reader.subscribers:
            self._stop(reader)

    async def close(self) -> None:
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        if tasks:
            # Bounded: a reader cancelled inside a blocking XREAD has been seen to
            # take its connection down slowly, and closing must never hang.
            await asyncio.wait(tasks, timeout=CLOSE_TIMEOUT_S)
        self._readers.clear()

    def _stop(self, reader: _Reader) -> None:
        if self._readers.get(reader.key) is reader:
            del self._readers[reader.key]
        # A reader stopping itself (it dropped its last client) is between two
        # XREADs and sees that it is unregistered; any other is waiting on Redis
        # (or on its retry delay) and is cancelled out of the wait.
        if reader.task is not asyncio.current_task():
            reader.task.cancel()

    def _reader_done(self, reader: _Reader, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if self._readers.get(reader.key) is reader:
            # Ended while still registered: it failed rather than was stopped. Its
            # clients are told (None), reconnect with Last-Event-ID, and the first
            # of them starts a fresh reader.
            del self._readers[reader.key]
            for sub in list(reader.subscribers):
                _drop(reader, sub)
            if not task.cancelled() and task.exception() is not None:
                log.error("live reader for %s failed: %r", reader.key, task.exception())

    async def _read(self, reader: _Reader, start_id: str) -> None:
        deadline_s = self._block_ms / 1000 + READ_MARGIN_S
        # One connection: this reader never runs two commands at once.
        client = connect(self._redis_url, text=True, max_connections=1, socket_timeout_s=None)
        last_id = start_id
        delay = 0.2
        try:
            while self._readers.get(reader.key) is reader:
                try:
                    async with asyncio.timeout(deadline_s):
                        batches: Any = await client.xread(
                            {reader.key: last_id}, block=self._block_ms
                        )
                    delay = 0.2
                except Exception as exc:
                    why = str(exc) or type(exc).__name__  # a timeout's message is empty
                    log.warning("live reader for %s: %s; retrying in %.1fs", reader.key, why, delay)
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, 5.0)
                    continue
                for _stream, entries in batches or []:
                    for stream_id, fields in entries:
                        last_id = stream_id
                        self._deliver(reader, (stream_id, fields))
        finally:
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await asyncio.wait_for(client.aclose(), CLOSE_TIMEOUT_S)

    def _deliver(self, reader: _Reader, event: LiveEvent) -> None:
        for sub in list(reader.subscribers):
            try:
                sub.queue.put_nowait(event)
            except asyncio.QueueFull:
                # Too slow: drop this client, keep everyone else flowing.
                _drop(reader, sub)
        if not reader.subscribers:
            # Every client was dropped: nobody is left to read for.
            self._stop(reader)


def _drop(reader: _Reader, sub: Subscription) -> None:
    """Remove `sub` and end its feed with None, making room for it if need be."""
    sub.dropped = True
    reader.subscribers.discard(sub)
    with contextlib.suppress(asyncio.QueueEmpty):
        if sub.queue.full():
            sub.queue.get_nowait()
    sub.queue.put_nowait(None)
