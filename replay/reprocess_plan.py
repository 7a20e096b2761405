"""What `dlq reprocess` does with each letter, and the record it re-drives: pure.

A letter is re-driven into its original topic, with its original key, value and
headers, to its original partition, so it goes through the agent path that failed
it: votes.raw letters (the vote stage's) through the vote stage, whose dedup by
voteUuid still holds; votes.accepted letters (the sink's) through the sink, whose
write is idempotent. The re-driven record carries `ATTEMPTS_HEADER` set to the
letter's attempts, so if it fails again the DLQ helper writes a new letter with one
attempt more (streams/dlq.py).

Each letter gets one verdict, in this order:

- `already-redriven`: the ledger says an earlier reprocess re-drove it. A letter is
  re-driven at most once; if that re-drive failed again, the newer letter (attempts
  + 1) is the one to re-drive next time.
- `attempts-cap`: it has used `max_attempts` attempts; it stays in the DLQ, reported.
- `not-redrivable`: its original topic is not one the pipeline consumes.
- `redrive`.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from replay.dead_letters import DeadLetter, Headers
from replay.redrive_runs import RedrivenOffsets
from streams.dlq import ATTEMPTS_HEADER
from streams.topics import VOTES_ACCEPTED, VOTES_RAW

# The topics a letter can return to, each with the Kafka principal allowed to write
# it (streams/kafka_acls.py): the re-drive produces as that service would, no more.
REDRIVE_PRINCIPALS: dict[str, str] = {
    VOTES_RAW.name: "gateway",
    VOTES_ACCEPTED.name: "worker",
}
DEFAULT_MAX_ATTEMPTS = 3


class Verdict(StrEnum):
    REDRIVE = "redrive"
    ALREADY_REDRIVEN = "already-redriven"
    AT_CAP = "attempts-cap"
    NOT_REDRIVABLE = "not-redrivable"


def verdict(letter: DeadLetter, done: RedrivenOffsets, max_attempts: int) -> Verdict:
    if done.contains(letter.dlq_partition, letter.dlq_offset):
        return Verdict.ALREADY_REDRIVEN
    if letter.attempts >= max_attempts:
        return Verdict.AT_CAP
    if letter.original_topic not in REDRIVE_PRINCIPALS:
        return Verdict.NOT_REDRIVABLE
    return Verdict.REDRIVE


def redrive_headers(letter: DeadLetter) -> Headers:
    """The original headers, with the attempts header set to the letter's attempts."""
    kept = [(k, v) for k, v in letter.headers if k != ATTEMPTS_HEADER]
    return [*kept, (ATTEMPTS_HEADER, str(letter.attempts).encode("ascii"))]


@dataclass
class ReprocessPlan:
    """Counts per reason and verdict: the dry-run's table and the operator log's detail."""

    max_attempts: int
    counts: dict[str, Counter[Verdict]] = field(default_factory=dict)
    # Letters by original topic that would be (or were) re-driven.
    by_topic: Counter[str] = field(default_factory=Counter)

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("--max-attempts must be at least 1")

    def add(self, letter: DeadLetter, judged: Verdict) -> None:
        self.counts.setdefault(letter.error_code, Counter())[judged] += 1
        if judged is Verdict.REDRIVE:
            self.by_topic[letter.original_topic] += 1

    def total(self, judged: Verdict) -> int:
        return sum(c[judged] for c in self.counts.values())

    def describe(self) -> dict[str, Any]:
        return {
            "maxAttempts": self.max_attempts,
            "byReason": {
                reason: {v.value: counts[v] for v in Verdict}
                for reason, counts in sorted(self.counts.items())
            },
            "totals": {v.value: self.total(v) for v in Verdict},
            "redriveByTopic": dict(sorted(self.by_topic.items())),
        }
