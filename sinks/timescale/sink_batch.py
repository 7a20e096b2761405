"""The pure bookkeeping of a sink batch: grouping, row rejection, offsets to commit.

No I/O here: the write is passed in as a function, so the bisection that finds
the rows PostgreSQL refuses, and the offsets a batch may commit, are tested
without a database or a broker.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

T = TypeVar("T")
S = TypeVar("S")


@dataclass(frozen=True, slots=True)
class PendingVote(Generic[S]):
    """A row for `sbp.votes` and the record it came from (for the DLQ)."""

    row: tuple[Any, ...]
    source: S

    @property
    def tenant_id(self) -> str:
        tenant: str = self.row[0]
        return tenant


def group_by_tenant(items: Iterable[PendingVote[S]]) -> dict[str, list[PendingVote[S]]]:
    """Rows per tenant, each tenant's rows in their input order (RLS: one tenant a transaction)."""
    groups: dict[str, list[PendingVote[S]]] = {}
    for item in items:
        groups.setdefault(item.tenant_id, []).append(item)
    return groups


def commit_positions(positions: Iterable[tuple[str, int, int]]) -> dict[tuple[str, int], int]:
    """The offset to commit per (topic, partition): one past the highest offset read.

    Kafka's committed offset names the next record to read, so committing
    `offset + 1` marks every record up to and including `offset` as done.
    """
    highest: dict[tuple[str, int], int] = {}
    for topic, partition, offset in positions:
        key = (topic, partition)
        if offset > highest.get(key, -1):
            highest[key] = offset
    return {key: offset + 1 for key, offset in highest.items()}


@dataclass
class WriteOutcome(Generic[T]):
    inserted: int = 0
    rejected: list[tuple[T, Exception]] = field(default_factory=list)
    attempts: int = 0


def write_isolating_rejects(
    items: Sequence[T],
    write: Callable[[Sequence[T]], int],
    is_row_error: Callable[[BaseException], bool],
) -> WriteOutcome[T]:
    """Write `items`; when the database refuses the chunk for its data, halve it.

    `write` stores a chunk atomically and returns how many rows were new. A
    refusal judged `is_row_error` splits the chunk in two, down to single rows,
    which are then reported as rejected; any other exception propagates. With
    k bad rows among n, this costs about 2·k·log2(n) extra writes, and every
    good row is stored exactly once (a refused chunk stored nothing).
    """
    outcome: WriteOutcome[T] = WriteOutcome()
    # An explicit stack instead of recursion; chunks are processed in input order.
    stack: list[Sequence[T]] = [items] if items else []
    while stack:
        chunk = stack.pop()
        outcome.attempts += 1
        try:
            outcome.inserted += write(chunk)
        except Exception as exc:
            if not is_row_error(exc):
                raise
            if len(chunk) == 1:
                outcome.rejected.append((chunk[0], exc))
            else:
                middle = len(chunk) // 2
                stack.append(chunk[middle:])
                stack.append(chunk[:middle])
    return outcome
