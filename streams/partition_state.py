"""Reading and writing the vote-state table, one input partition at a time.

The table is a faust Table on RocksDB: faust owns which partitions this worker
holds, opens their databases, and restores them from the changelog on
assignment. Writes bypass faust's per-key path (a producer call and a RocksDB
put per acknowledgement per key, which dominated the worker's profile): a
batch's keys go to the partition's database in one WriteBatch and to the
changelog partition through the caller's batch of deliveries, whose reports
the caller awaits before recording progress. After those reports the
changelog offsets are recorded as faust's persisted offset, so a restart with
the local files reads only the changelog's tail.

A partition that faust revoked has no database here any more: writes to it are
dropped (the new owner replays from the durable progress).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import rocksdict
from faust.types import TP

from streams.batch_producer import DeliveryBatch


class PartitionState:
    def __init__(
        self,
        databases: Callable[[], Mapping[int, Any]],
        persisted: Callable[[int, int], None],
        changelog_topic: str,
    ) -> None:
        """`databases`: the open RocksDB per held partition; `persisted(partition,
        offset)`: tells the store how far its changelog is already applied."""
        self._databases = databases
        self._persisted = persisted
        self.changelog_topic = changelog_topic

    @classmethod
    def of_table(cls, table: Any, changelog_topic: str) -> PartitionState:
        """Over a faust Table on the RocksDB store (its per-partition databases)."""

        def persisted(partition: int, offset: int) -> None:
            table.data.set_persisted_offset(TP(changelog_topic, partition), offset)

        return cls(lambda: table.data._dbs, persisted, changelog_topic)

    def _db(self, partition: int) -> Any | None:
        return self._databases().get(partition)

    def is_open(self, partition: int) -> bool:
        return self._db(partition) is not None

    def get_many(self, partition: int, keys: Sequence[bytes]) -> list[bytes | None]:
        db = self._db(partition)
        if db is None or not keys:
            return [None] * len(keys)
        values: list[bytes | None] = db.get(list(keys))
        return values

    def get(self, partition: int, key: bytes) -> bytes | None:
        return self.get_many(partition, [key])[0]

    def write(
        self,
        deliveries: DeliveryBatch,
        partition: int,
        puts: Mapping[bytes, bytes],
        deletes: Sequence[bytes] = (),
    ) -> bool:
        """Apply puts and deletes locally and to the changelog; False if not ours any more."""
        db = self._db(partition)
        if db is None:
            return False
        batch = rocksdict.WriteBatch(raw_mode=True)
        for key, value in puts.items():
            batch[key] = value
        for key in deletes:
            batch.delete(key)
        db.write(batch)
        topic = self.changelog_topic
        for key, value in puts.items():
            deliveries.produce(topic, key, value, partition=partition)
        for key in deletes:
            # A tombstone: compaction then drops the key from the changelog too.
            deliveries.produce(topic, key, None, partition=partition)
        return True

    def record_persisted(self, changelog_offsets: Mapping[int, int]) -> None:
        """Tell faust which changelog offsets the local databases already hold."""
        for partition, offset in changelog_offsets.items():
            if self.is_open(partition):
                self._persisted(partition, offset)

    def scan(
        self, partition: int, prefix: bytes, after: bytes | None = None, limit: int = 1000
    ) -> list[tuple[bytes, bytes]]:
        """Up to `limit` (key, value) pairs under `prefix`, in key order, after `after`."""
        db = self._db(partition)
        if db is None:
            return []
        found: list[tuple[bytes, bytes]] = []
        for key, value in _items_from(db, after if after is not None else prefix):
            if not key.startswith(prefix):
                break
            if after is not None and key == after:
                continue
            found.append((key, value))
            if len(found) >= limit:
                break
        return found


def _items_from(db: Any, start: bytes) -> Iterator[tuple[bytes, bytes]]:
    it = db.iter()
    it.seek(start)
    while it.valid():
        yield it.key(), it.value()
        it.next()
