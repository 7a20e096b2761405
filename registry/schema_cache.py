"""A least-recently-used cache keyed by text, bounded by total text length (pure).

`functools.lru_cache` bounds only the count, and parsed schemas grow with their
text: 512 cached 1 MiB schemas would hold gigabytes. Not thread-safe; the
registry uses it from its event loop only.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Generic, TypeVar

V = TypeVar("V")


class TextCache(Generic[V]):
    def __init__(self, max_chars: int, max_entries: int) -> None:
        self.max_chars = max_chars
        self.max_entries = max_entries
        self._entries: OrderedDict[str, V] = OrderedDict()
        self._chars = 0

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def chars(self) -> int:
        """Total length of the cached keys."""
        return self._chars

    def get(self, key: str) -> V | None:
        value = self._entries.get(key)
        if value is not None:
            self._entries.move_to_end(key)
        return value

    def put(self, key: str, value: V) -> None:
        # A key over the whole budget is not cached: it would evict everything else.
        if len(key) > self.max_chars:
            return
        if key in self._entries:
            self._entries.move_to_end(key)
            self._entries[key] = value
            return
        self._entries[key] = value
        self._chars += len(key)
        while self._chars > self.max_chars or len(self._entries) > self.max_entries:
            evicted, _ = self._entries.popitem(last=False)
            self._chars -= len(evicted)
