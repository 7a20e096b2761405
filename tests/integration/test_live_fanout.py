"""The gateway's per-building fan-out on the real Redis: one reader serves every client,
and a client that stops reading is dropped without holding back the others."""

from __future__ import annotations

import asyncio
import uuid

from gateway.live_fanout import LiveFanout
from sbp.settings import Settings
from sinks.live.redis_client import connect
from sinks.live.redis_keys import building_events


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
        received: list[str] = []
        for i in range(10):
            await redis.xadd(key, {"type": "aggregate", "data": str(i)})
            event = await asyncio.wait_for(fast.queue.get(), timeout=10)
            assert event is not None
            received.append(event[1]["data"])

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
    finally:
        await fanout.close()
        await ops.delete(key)  # the worker's user deletes nothing
        await ops.aclose()
        await redis.aclose()


async def test_one_reader_per_building_however_many_clients(stack: Settings) -> None:
    tenant = f"t-{uuid.uuid4().hex[:12]}"
    fanout = LiveFanout(stack.redis_url_for("gateway"), block_ms=200)
    try:
        subs = [fanout.subscribe(tenant, "b1", "0-0") for _ in range(50)]
        other = fanout.subscribe(tenant, "b2", "0-0")
        assert len(fanout._readers) == 2
        for sub in subs:
            fanout.unsubscribe(tenant, "b1", sub)
        assert len(fanout._readers) == 1  # the last client gone, its reader stopped
        fanout.unsubscribe(tenant, "b2", other)
        assert fanout._readers == {}
    finally:
        await fanout.close()
