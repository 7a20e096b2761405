"""The letters of votes.dlq, read for the DLQ commands: where to start, and decoding.

`--since` starts each partition's scan at the first record produced at or after it
(Kafka's time index): a letter's record is produced after its `failedAt` on the same
clock, so no letter that failed at or after `--since` lies before that offset. The
scan ends at each partition's log end as it was when the command began, so the
letters that a re-drive sends back to the DLQ are never read again by the same run.
"""

from __future__ import annotations

import base64
import uuid
from collections.abc import Iterator
from datetime import datetime
from typing import Any

from replay.dead_letters import DeadLetter
from replay.errors import ReplayError
from replay.exit_codes import ExitCode
from replay.kafka_offsets import KafkaOffsets
from replay.kafka_records import scan
from sbp.settings import Settings
from schemas.codec import AvroCodec, DecodeError, RegistryUnavailable
from streams.topics import VOTES_DLQ

DLQ = VOTES_DLQ.name
# One scanned record: its DLQ partition and offset, and the letter (None: unreadable).
Scanned = tuple[int, int, DeadLetter | None]


def dlq_bounds(kafka: KafkaOffsets, since: datetime | None) -> dict[int, tuple[int, int]]:
    """Per votes.dlq partition, the offsets [start, end) a scan reads."""
    wanted = [(DLQ, p) for p in kafka.topic_partitions(DLQ)]
    ranges = kafka.log_ranges(wanted)
    starts = {tp: log_start for tp, (log_start, _end) in ranges.items()}
    if since is not None:
        for tp, offset in kafka.offsets_for_time(wanted, int(since.timestamp() * 1000)).items():
            starts[tp] = ranges[tp][1] if offset is None else max(offset, starts[tp])
    return {p: (starts[(t, p)], ranges[(t, p)][1]) for t, p in wanted}


def read_letters(
    settings: Settings, codec: AvroCodec, bounds: dict[int, tuple[int, int]]
) -> Iterator[Scanned]:
    for msg in scan(settings, DLQ, bounds):
        partition, offset = msg.partition() or 0, msg.offset() or 0
        try:
            record = codec.decode(msg.value()).record
            letter = DeadLetter.from_envelope(partition, offset, record)
        except DecodeError:
            letter = None
        except RegistryUnavailable as exc:
            raise ReplayError(
                ExitCode.KAFKA, f"the schema registry is unreachable: {exc}"
            ) from None
        except (KeyError, TypeError):  # a record of another schema on the DLQ
            letter = None
        yield partition, offset, letter


def decoded_original(codec: AvroCodec, letter: DeadLetter) -> dict[str, Any]:
    """The original value decoded as its topic's Avro, or why it cannot be."""
    try:
        decoded = codec.decode(letter.value)
    except DecodeError as exc:
        return {"decodable": False, "reason": exc.code, "detail": exc.message}
    except RegistryUnavailable as exc:
        return {"decodable": False, "reason": "registry_unavailable", "detail": str(exc)}
    return {"decodable": True, "schemaId": decoded.schema_id, "record": plain(decoded.record)}


def plain(value: Any) -> Any:
    """A decoded Avro value as JSON: times in ISO 8601, bytes in base64."""
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, bytes):
        return base64.b64encode(value).decode("ascii")
    if isinstance(value, uuid.UUID):
        return str(value)
    return value
