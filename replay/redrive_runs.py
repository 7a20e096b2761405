"""Which votes.dlq offsets were re-driven already, kept as runs: pure.

The ledger (migration 0009) stores, per DLQ partition, runs of offsets: every letter
from `first` to `last` was re-driven and its delivery confirmed. A reprocess scans
each partition in offset order and tells a `RunBuilder` about every record it reads,
re-driven or not; a record it did not re-drive (filtered out, at the attempts cap,
already done, unreadable) ends the current run, so a run never claims a letter that
was not re-driven, and a reprocess of a whole partition is one run. A letter whose
delivery Kafka refused is cut out of its run afterwards (`runs(refused=...)`): a
later reprocess re-drives it.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True, order=True)
class Run:
    partition: int
    first: int
    last: int

    def __post_init__(self) -> None:
        if not 0 <= self.first <= self.last:
            raise ValueError(f"not a run: {self}")


class RedrivenOffsets:
    """The recorded runs, answering "was this letter re-driven?" by binary search."""

    def __init__(self, runs: Iterable[Run] = ()) -> None:
        self._starts: dict[int, list[int]] = {}
        self._ends: dict[int, list[int]] = {}
        for run in sorted(runs):
            self._starts.setdefault(run.partition, []).append(run.first)
            self._ends.setdefault(run.partition, []).append(run.last)

    def contains(self, partition: int, offset: int) -> bool:
        starts = self._starts.get(partition)
        if not starts:
            return False
        i = bisect.bisect_right(starts, offset) - 1
        return i >= 0 and offset <= self._ends[partition][i]


class RunBuilder:
    """Turns one scan's records, in offset order per partition, into runs to record."""

    def __init__(self) -> None:
        self._open: dict[int, tuple[int, int]] = {}  # partition -> (first, last)
        self._closed: list[Run] = []

    def redriven(self, partition: int, offset: int) -> None:
        first, _last = self._open.get(partition, (offset, offset))
        self._open[partition] = (first, offset)

    def skipped(self, partition: int) -> None:
        current = self._open.pop(partition, None)
        if current is not None:
            self._closed.append(Run(partition, *current))

    def runs(self, refused: Iterable[tuple[int, int]] = ()) -> list[Run]:
        """Every run, closed, with the letters Kafka refused cut out."""
        for partition in list(self._open):
            self.skipped(partition)
        runs = sorted(self._closed)
        for partition, offset in sorted(set(refused)):
            runs = [part for run in runs for part in _cut(run, partition, offset)]
        return runs


def _cut(run: Run, partition: int, offset: int) -> list[Run]:
    if run.partition != partition or not run.first <= offset <= run.last:
        return [run]
    parts = []
    if run.first < offset:
        parts.append(Run(partition, run.first, offset - 1))
    if offset < run.last:
        parts.append(Run(partition, offset + 1, run.last))
    return parts
