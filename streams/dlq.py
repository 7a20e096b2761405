"""The one DLQ helper: every consumer sends what it cannot process here, with its reason.

The envelope (schemas/avro/votes.dlq-value) keeps the original topic,
partition, offset, key, value bytes and headers, so an operator can inspect and
re-drive the record; the DLQ record keeps the original key. Dead letters are
produced into the caller's batch of deliveries, so they are confirmed together
with the rest of the batch before its offsets or progress are recorded.

Attempts: `sbp replay dlq reprocess` re-drives a letter's original record with the
header `ATTEMPTS_HEADER` set to the letter's attempts. A record that fails again is
thus dead-lettered with one attempt more, whichever consumer fails it, and the
attempts cap of the reprocess can stop a record that keeps failing. A record without
the header (or with a value that is not a count) is on its first attempt.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from schemas.codec import AvroCodec, Writer
from streams.batch_producer import DeliveryBatch
from streams.topics import VOTES_DLQ

# The attempts a re-driven record already used; set by the reprocess, read here.
ATTEMPTS_HEADER = "sbp-dlq-attempts"


def attempts_of(headers: list[tuple[str, bytes | None]]) -> int:
    """This failure's attempt number: one more than the re-drive header says, else 1."""
    for name, value in reversed(headers):
        if name == ATTEMPTS_HEADER and value is not None:
            text = value.decode("ascii", "replace")
            if text.isdigit():
                return int(text) + 1
    return 1


@dataclass(frozen=True)
class SourceRecord:
    """What the DLQ keeps of the record that failed."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: list[tuple[str, bytes | None]]


# Every errorCode each consumer gives a dead letter (docs/topics.md). The metrics
# export each at 0 from the start: a counter series that first appears at 1 is no
# increase to `increase()` or `rate()`, so the first letter of a reason would never
# reach the dead-letter alert.
DECODE_REASONS = ("not_avro_framed", "undecodable", "unknown_schema_id")
VOTE_STAGE_REASONS = (*DECODE_REASONS, "invalid_schema", "invalid_value", "wrong_key")
SINK_REASONS = (*DECODE_REASONS, "wrong_schema", "db_rejected", "unknown_tenant")


def envelope(
    source: SourceRecord, error_code: str, error_message: str, attempts: int, group: str
) -> dict[str, Any]:
    return {
        "originalTopic": source.topic,
        "originalPartition": source.partition,
        "originalOffset": source.offset,
        "originalKey": source.key,
        "originalValue": source.value,
        "originalHeaders": [{"key": k, "value": v} for k, v in source.headers],
        "errorCode": error_code,
        "errorMessage": error_message[:2000],
        "failedAt": datetime.now(UTC),
        "attempts": attempts,
        "consumerGroup": group,
    }


class DeadLetters:
    def __init__(self, codec: AvroCodec, writer: Writer, group: str) -> None:
        self._codec = codec
        self._writer = writer
        self._group = group
        self.counts: Counter[str] = Counter()

    def send(
        self,
        deliveries: DeliveryBatch,
        source: SourceRecord,
        error_code: str,
        error_message: str,
    ) -> None:
        """Produce the dead letter into `deliveries`; the caller's `confirm()` awaits it."""
        attempts = attempts_of(source.headers)
        value = self._codec.encode(
            self._writer, envelope(source, error_code, error_message, attempts, self._group)
        )
        deliveries.produce(VOTES_DLQ.name, source.key, value)
        self.counts[error_code] += 1
