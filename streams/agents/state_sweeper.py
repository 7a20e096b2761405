"""Expiry of the vote state: a sweep that tombstones dedup entries and buckets past their time.

Every few seconds it reads the next slice of each held partition's state (a
cursor per partition walks the keys in order and wraps around), and deletes
the keys whose expiry has passed, locally and with a changelog tombstone, so
compaction frees them in Kafka too. Work per tick is bounded, whatever the
state's size. Deleting an expired key races with nothing: a dedup entry
expires only after no acceptable re-send of its vote can arrive, and a bucket
only after its minute has left every window, so no writer touches them again.
"""

from __future__ import annotations

import asyncio
from collections import Counter

from streams.agents.vote_stage import VoteStage
from streams.tables.vote_state import expired_keys

# 2000 keys of each held partition per tick (every 5 s), the loop yielded between
# partitions: a worker holding all 24 walks about 9,600 keys a second, more than
# it can create at its own throughput, so the walk keeps up with any sustained load.
KEYS_PER_PARTITION_PER_TICK = 2000


class StateSweeper:
    def __init__(self, stage: VoteStage) -> None:
        self.stage = stage
        self._after: dict[int, bytes | None] = {}
        self.counts: Counter[str] = Counter()

    async def tick(self) -> None:
        stage = self.stage
        if not stage.consumer.ready():
            return
        now_s = stage.clock().timestamp()
        held = sorted(stage.consumer.held())
        deleted = 0
        deliveries = stage.producer.batch()
        for partition in held:
            rows = stage.state.scan(
                partition, b"", after=self._after.get(partition), limit=KEYS_PER_PARTITION_PER_TICK
            )
            # A short slice means the walk reached the end: start over next tick.
            self._after[partition] = (
                rows[-1][0] if len(rows) == KEYS_PER_PARTITION_PER_TICK else None
            )
            await asyncio.sleep(0)
            gone = expired_keys(rows, now_s)
            if gone and stage.state.write(deliveries, partition, {}, gone):
                deleted += len(gone)
                for key in gone:
                    self.counts["dedup" if key.startswith(b"d|") else "bucket"] += 1
        await deliveries.confirm()
