"""Dead letters as the replay tools see them, and the filters that select them: pure.

A `DeadLetter` is one votes.dlq record (streams/dlq.py wrote its envelope) plus where
it sits in votes.dlq. A `LetterFilter` is the operator's selection, shared by `dlq
list`, `dlq show` and `dlq reprocess`, so the three always agree on which letters a
set of options means.

Time is the letter's `failedAt` (when the consumer gave up on the record), with
`--since` inclusive and `--until` exclusive, so consecutive windows never overlap.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

Headers = list[tuple[str, bytes | None]]


@dataclass(frozen=True)
class DeadLetter:
    dlq_partition: int
    dlq_offset: int
    original_topic: str
    original_partition: int
    original_offset: int
    key: bytes | None
    value: bytes | None
    headers: Headers
    error_code: str
    error_message: str
    failed_at: datetime
    attempts: int
    consumer_group: str

    @classmethod
    def from_envelope(
        cls, dlq_partition: int, dlq_offset: int, record: dict[str, Any]
    ) -> DeadLetter:
        """From the decoded votes.dlq-value record."""
        return cls(
            dlq_partition=dlq_partition,
            dlq_offset=dlq_offset,
            original_topic=record["originalTopic"],
            original_partition=record["originalPartition"],
            original_offset=record["originalOffset"],
            key=record["originalKey"],
            value=record["originalValue"],
            headers=[(h["key"], h["value"]) for h in record["originalHeaders"]],
            error_code=record["errorCode"],
            error_message=record["errorMessage"],
            failed_at=record["failedAt"],
            attempts=record["attempts"],
            consumer_group=record["consumerGroup"],
        )

    def describe(self) -> dict[str, Any]:
        """As plain JSON: bytes in base64 (and the key also as text when it is UTF-8)."""
        return {
            "dlq": {"partition": self.dlq_partition, "offset": self.dlq_offset},
            "original": {
                "topic": self.original_topic,
                "partition": self.original_partition,
                "offset": self.original_offset,
            },
            "key": _text(self.key),
            "keyBase64": _b64(self.key),
            "valueBase64": _b64(self.value),
            "headers": [{"key": k, "valueBase64": _b64(v)} for k, v in self.headers],
            "errorCode": self.error_code,
            "errorMessage": self.error_message,
            "failedAt": self.failed_at.isoformat(),
            "attempts": self.attempts,
            "consumerGroup": self.consumer_group,
        }


def _b64(data: bytes | None) -> str | None:
    return None if data is None else base64.b64encode(data).decode("ascii")


def _text(data: bytes | None) -> str | None:
    if data is None:
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return None


@dataclass(frozen=True)
class LetterFilter:
    """Every given criterion must hold; an empty set means any value."""

    reasons: frozenset[str] = field(default_factory=frozenset)
    since: datetime | None = None
    until: datetime | None = None
    topics: frozenset[str] = field(default_factory=frozenset)
    partitions: frozenset[int] = field(default_factory=frozenset)
    groups: frozenset[str] = field(default_factory=frozenset)

    @classmethod
    def of(
        cls,
        reasons: Iterable[str] = (),
        since: datetime | None = None,
        until: datetime | None = None,
        topics: Iterable[str] = (),
        partitions: Iterable[int] = (),
        groups: Iterable[str] = (),
    ) -> LetterFilter:
        for name, at in (("--since", since), ("--until", until)):
            # A naive time would mean the machine's zone, not the letters' UTC.
            if at is not None and at.utcoffset() is None:
                raise ValueError(f"{name} needs a UTC offset, e.g. 2026-11-29T17:00:00Z")
        if since is not None and until is not None and until <= since:
            raise ValueError("--until must be later than --since")
        return cls(
            frozenset(reasons),
            since,
            until,
            frozenset(topics),
            frozenset(partitions),
            frozenset(groups),
        )

    def matches(self, letter: DeadLetter) -> bool:
        return (
            (not self.reasons or letter.error_code in self.reasons)
            and (self.since is None or letter.failed_at >= self.since)
            and (self.until is None or letter.failed_at < self.until)
            and (not self.topics or letter.original_topic in self.topics)
            and (not self.partitions or letter.original_partition in self.partitions)
            and (not self.groups or letter.consumer_group in self.groups)
        )

    def describe(self) -> dict[str, Any]:
        """The filter as JSON, for the output and the operator log (only what was given)."""
        described: dict[str, Any] = {}
        for name, values in (
            ("reasons", self.reasons),
            ("topics", self.topics),
            ("partitions", self.partitions),
            ("groups", self.groups),
        ):
            if values:
                described[name] = sorted(values)
        if self.since is not None:
            described["since"] = self.since.isoformat()
        if self.until is not None:
            described["until"] = self.until.isoformat()
        return described
