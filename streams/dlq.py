"""The one DLQ helper: every consumer sends what it cannot process here, with its reason.

The envelope (schemas/avro/votes.dlq-value) keeps the original topic,
partition, offset, key, value bytes and headers, so an operator can inspect and
re-drive the record. The DLQ record keeps the original key. Its delivery is
awaited before the source record is acked, so a dead letter is never lost.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from schemas.catalog import value_subject
from streams.app import vote_dlq
from streams.counters import counters
from streams.serde import codec, writer
from streams.topics import VOTES_DLQ, WORKER_APP_ID

DLQ_SUBJECT = value_subject(VOTES_DLQ.name)


def envelope(message: Any, error_code: str, error_message: str, attempts: int) -> dict[str, Any]:
    headers = message.headers or []
    if isinstance(headers, dict):
        headers = list(headers.items())
    return {
        "originalTopic": message.topic,
        "originalPartition": message.partition,
        "originalOffset": message.offset,
        "originalKey": message.key,
        "originalValue": message.value,
        "originalHeaders": [
            {"key": str(k), "value": v if isinstance(v, bytes | None) else str(v).encode()}
            for k, v in headers
        ],
        "errorCode": error_code,
        "errorMessage": error_message[:2000],
        "failedAt": datetime.now(UTC),
        "attempts": attempts,
        "consumerGroup": WORKER_APP_ID,
    }


async def dead_letter(message: Any, error_code: str, error_message: str, attempts: int = 1) -> None:
    value = codec().encode(
        writer(DLQ_SUBJECT), envelope(message, error_code, error_message, attempts)
    )
    delivery = await vote_dlq.send(key=message.key, value=value)
    # Wait for Kafka's confirmation: the source record is acked right after this.
    await delivery
    counters[f"dlq_{error_code}"] += 1
