"""The gateway's per-building fan-out on the real Redis: one reader serves every client,
a client that stops reading is dropped without holding back the others, and a
building's reader stops with its last client."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable

from gateway.live_fanout import LiveFanout, Subscription
from sbp.settings import Settings
from sinks.live.redis_client import connect
from sinks.live.redis_keys import building_events

BLOCK_MS = 5000  # production's XREAD block


async def _until(probe: Callable[[], bool], within_s: float, what: str) -> float:
    """Seconds until `probe()` held; fails after `within_s`."""
    start = time.monotonic()
    while not probe():
        if time.monotonic() - start > within_s:
            raise AssertionError(f"timed out after {within_s}s waiting for {what}")
        await asyncio.sleep(0.02)
    return time.monotonic() - start


async def _next_data(sub: Subscription) -> str | None:
    event = await asyncio.wait_for(sub.queue.get(), timeout=10)
    return None if event is None else event[1]["data"]


async def test_a_slow_client_is_dropped_and_the_others_keep_flowing(stack: Settings) -> None:
    tenant, building = f"t-{uuid.uuid4().hex[:12]}", "b1"
    key = building_events(tenant, building)
    # Each as in production: the gateway's user reads, the worker's user appends.
    fanout = LiveFanout(stack.redis_url_for("gateway"), queue_size=3, block_ms=200)
    redis = connect(stack.redis_url_for("worker"), text=True)
    ops = connect(stack.redis_url_for("ops"))
    try:
        fast = fanout.subscribe(tenant, building, "0-0")
        slow = fanout.subscribe(tenant, building, "0-0")
        received: list[str | None] = []
        for i in range(10):
            await redis.xadd(key, {"type": "aggregate", "data": str(i)})
            received.append(await _next_data(fast))

        assert received == [str(i) for i in range(10)]
        # The slow client never read: its queue overflowed, so it was dropped and
        # told so with a final None, while the fast one got all ten in order.
        assert slow.dropped
        assert not fast.dropped
        drained = []
        while not slow.queue.empty():
            drained.append(slow.queue.get_nowait())
        assert drained[-1] is None
        assert len(drained) <= 3
        assert fanout.reader_count == 1  # the fast client still has its reader
    finally:
        await fanout.close()
        await ops.delete(key)  # the worker's user deletes nothing
        await ops.aclose()
        await redis.aclose()


async def test_one_reader_per_building_however_many_clients(stack: Settings) -> None:
    tenant = f"t-{uuid.uuid4().hex[:12]}"
    fanout = LiveFanout(stack.redis_url_for("gateway"), block_ms=BLOCK_MS)
    try:
        subs = [fanout.subscribe(tenant, "b1", "0-0") for _ in range(50)]
        other = fanout.subscribe(tenant, "b2", "0-0")
        assert fanout.reader_count == 2
        for sub in subs[:-1]:
            fanout.unsubscribe(sub)
        await asyncio.sleep(0.3)
        assert fanout.reader_count == 2  # one client of b1 is left
        fanout.unsubscribe(subs[-1])
        await _until(lambda: fanout.reader_count == 1, 3, "b1's reader to end")
        fanout.unsubscribe(other)
        await _until(lambda: fanout.reader_count == 0, 3, "b2's reader to end")
    finally:
        await fanout.close()


async def test_readers_of_many_buildings_end_within_a_block_period(stack: Settings) -> None:
    tenant = f"t-{uuid.uuid4().hex[:12]}"
    fanout = LiveFanout(stack.redis_url_for("gateway"), block_ms=BLOCK_MS)
    try:
        subs = [fanout.subscribe(tenant, f"b{i}", "0-0") for i in range(8) for _ in range(5)]
        assert fanout.reader_count == 8
        # Let every reader get into its blocking XREAD, where a leaked one would sit.
        await asyncio.sleep(0.5)
        for sub in subs:
            fanout.unsubscribe(sub)
            fanout.unsubscribe(sub)  # twice: leaving is idempotent
        took = await _until(lambda: fanout.reader_count == 0, BLOCK_MS / 1000, "readers to end")
        # Cancelled out of XREAD, not waiting for its block to run out.
        assert took < BLOCK_MS / 1000 / 2, took
    finally:
        await fanout.close()


async def test_a_reader_stopped_right_after_delivering_ends_at_once(stack: Settings) -> None:
    """The last client leaves as soon as it got an event: the reader is then sending its
    next XREAD, the moment a cancel used to be lost (redis-py's send under Python
    3.11's wait_for), leaving the reader blocked for a whole block period."""
    tenant, building = f"t-{uuid.uuid4().hex[:12]}", "b1"
    key = building_events(tenant, building)
    fanout = LiveFanout(stack.redis_url_for("gateway"), block_ms=BLOCK_MS)
    worker = connect(stack.redis_url_for("worker"), text=True)
    ops = connect(stack.redis_url_for("ops"))
    try:
        for round_ in range(3):
            sub = fanout.subscribe(tenant, building, "0-0" if round_ == 0 else "$")
            await asyncio.sleep(0.2)  # into its XREAD
            await worker.xadd(key, {"type": "aggregate", "data": str(round_)})
            assert await _next_data(sub) is not None
            fanout.unsubscribe(sub)
            took = await _until(lambda: fanout.reader_count == 0, BLOCK_MS / 1000, "reader end")
            assert took < 2.0, took
    finally:
        await fanout.close()
        await ops.delete(key)
        await ops.aclose()
        await worker.aclose()


async def test_a_reader_whose_last_client_was_dropped_stops(stack: Settings) -> None:
    tenant, building = f"t-{uuid.uuid4().hex[:12]}", "b1"
    key = building_events(tenant, building)
    fanout = LiveFanout(stack.redis_url_for("gateway"), queue_size=2, block_ms=BLOCK_MS)
    worker = connect(stack.redis_url_for("worker"), text=True)
    ops = connect(stack.redis_url_for("ops"))
    try:
        stalled = fanout.subscribe(tenant, building, "0-0")
        for i in range(3):
            last_id = str(await worker.xadd(key, {"type": "aggregate", "data": str(i)}))
        await _until(lambda: stalled.dropped, 10, "the stalled client to be dropped")
        # Nobody is left to read for, though the stalled client's request has not
        # ended (it never unsubscribed): the reader must not poll on for nobody.
        await _until(lambda: fanout.reader_count == 0, 3, "the reader to end")

        # The next client starts a fresh reader, which delivers.
        fresh = fanout.subscribe(tenant, building, last_id)
        assert fanout.reader_count == 1
        await worker.xadd(key, {"type": "aggregate", "data": "after"})
        assert await _next_data(fresh) == "after"
        fanout.unsubscribe(stalled)  # late, after being dropped: changes nothing
        assert fanout.reader_count == 1
        fanout.unsubscribe(fresh)
        await _until(lambda: fanout.reader_count == 0, 3, "the fresh reader to end")
    finally:
        await fanout.close()
        await ops.delete(key)
        await ops.aclose()
        await worker.aclose()


async def test_subscribing_again_at_once_after_the_last_client_left(stack: Settings) -> None:
    """A client leaving and the next arriving in the same instant: the new one gets a
    working reader, and the stopped one still ends."""
    tenant, building = f"t-{uuid.uuid4().hex[:12]}", "b1"
    key = building_events(tenant, building)
    fanout = LiveFanout(stack.redis_url_for("gateway"), block_ms=BLOCK_MS)
    worker = connect(stack.redis_url_for("worker"), text=True)
    ops = connect(stack.redis_url_for("ops"))
    try:
        first = fanout.subscribe(tenant, building, "0-0")
        await asyncio.sleep(0.3)
        fanout.unsubscribe(first)
        second = fanout.subscribe(tenant, building, "0-0")
        await _until(lambda: fanout.reader_count == 1, 3, "the first reader to end")
        await worker.xadd(key, {"type": "aggregate", "data": "after"})
        assert await _next_data(second) == "after"
        assert first.queue.empty()
    finally:
        await fanout.close()
        await ops.delete(key)
        await ops.aclose()
        await worker.aclose()
