"""One change to faust's consumer: it never drops votes.raw records as "already read".

faust remembers the highest offset it handed to a stream per partition and
drops any record below it. After the vote stage seeks back over a gap, records
that were already fetched from past the gap still arrive first and raise that
mark, so the very records the seek asked for were then dropped, and the stage
waited for them until it sought again (seen in the rebalance drill: the same
gap sought three times over eleven seconds).

The vote stage judges every record against its own durable progress
(streams/tables/partition_cursor.py), which makes faust's mark redundant for
this topic: a record below the progress is skipped there, a record past it is
a gap there. For every other topic faust's behaviour is unchanged.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from faust.types import TP


class _ReadOffsets(defaultdict[TP, int | None]):
    def __init__(self, ignored_topics: frozenset[str]) -> None:
        super().__init__(lambda: None)
        self._ignored = ignored_topics

    def __getitem__(self, tp: TP) -> int | None:
        if tp.topic in self._ignored:
            return None
        return super().__getitem__(tp)


def never_drop_records_of(app: Any, *topics: str) -> None:
    """Install before the worker starts (the fetch loop binds the mapping once)."""
    consumer = app.consumer
    current = consumer._read_offset
    replacement = _ReadOffsets(frozenset(topics))
    replacement.update(current)
    consumer._read_offset = replacement
