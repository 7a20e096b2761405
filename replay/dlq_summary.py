"""`dlq list`'s figures: letters counted by reason, original topic and partition, with
the time each group of letters spans. Pure, and bounded: one row per distinct
(reason, topic, partition), however many letters the DLQ holds."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from replay.dead_letters import DeadLetter


@dataclass
class SummaryRow:
    reason: str
    topic: str
    partition: int
    letters: int
    first_failed: datetime
    last_failed: datetime
    max_attempts: int

    def describe(self) -> dict[str, Any]:
        return {
            "reason": self.reason,
            "topic": self.topic,
            "partition": self.partition,
            "letters": self.letters,
            "firstFailedAt": self.first_failed.isoformat(),
            "lastFailedAt": self.last_failed.isoformat(),
            "maxAttempts": self.max_attempts,
        }


class DlqSummary:
    def __init__(self) -> None:
        self._rows: dict[tuple[str, str, int], SummaryRow] = {}
        # Records on votes.dlq that are not letters (not decodable as the envelope).
        self.unreadable = 0

    def add(self, letter: DeadLetter) -> None:
        key = (letter.error_code, letter.original_topic, letter.original_partition)
        row = self._rows.get(key)
        if row is None:
            self._rows[key] = SummaryRow(
                *key, 1, letter.failed_at, letter.failed_at, letter.attempts
            )
            return
        row.letters += 1
        row.first_failed = min(row.first_failed, letter.failed_at)
        row.last_failed = max(row.last_failed, letter.failed_at)
        row.max_attempts = max(row.max_attempts, letter.attempts)

    def rows(self) -> list[SummaryRow]:
        return [self._rows[k] for k in sorted(self._rows)]

    def by_reason(self) -> dict[str, int]:
        counts: Counter[str] = Counter()
        for row in self._rows.values():
            counts[row.reason] += row.letters
        return dict(sorted(counts.items()))

    @property
    def total(self) -> int:
        return sum(row.letters for row in self._rows.values())

    def describe(self) -> dict[str, Any]:
        rows = self.rows()
        return {
            "total": self.total,
            "byReason": self.by_reason(),
            "rows": [row.describe() for row in rows],
            "firstFailedAt": min(r.first_failed for r in rows).isoformat() if rows else None,
            "lastFailedAt": max(r.last_failed for r in rows).isoformat() if rows else None,
            "unreadable": self.unreadable,
        }
