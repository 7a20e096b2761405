"""votes.raw → votes.accepted: decode by writer schema, migrate v1→v2, validate, dedup.

Keyed `tenantId|voteUuid`, so the dedup table is co-partitioned with its input.
A record that cannot be decoded or validated goes to votes.dlq with its reason
and never blocks the partition. A registry outage is not the record's fault:
it is retried in place, never dead-lettered.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from typing import Any

from schemas.catalog import value_subject
from schemas.codec import DecodeError
from streams.app import accepted_votes, app, raw_votes, vote_dedup
from streams.batch_guard import complete_batch
from streams.counters import counters
from streams.dlq import dead_letter
from streams.serde import codec, decode_with_retry, writer
from streams.table_writes import within_partition_of
from streams.tables.comfort_buckets import zone_key
from streams.tables.dedup import Verdict, dedup_key, first_seen, judge
from streams.tables.vote_migration import Invalid, migrate
from streams.topics import VOTES_ACCEPTED

ACCEPTED_SUBJECT = value_subject(VOTES_ACCEPTED.name)
BATCH_MAX = 1000
BATCH_WITHIN_S = 0.2


async def _process(event: Any) -> Any | None:
    """Handle one raw vote; returns the delivery future of its emit, if any."""
    message = event.message
    try:
        raw = await decode_with_retry(event.value)
    except DecodeError as exc:
        await dead_letter(message, exc.code, exc.message)
        return None
    result = migrate(raw)
    if isinstance(result, Invalid):
        await dead_letter(message, result.code, result.message)
        return None
    key = dedup_key(result["tenantId"], result["voteUuid"]).encode()
    if message.key != key:
        # The dedup state is only correct when a vote always lands on the
        # partition its key hashes to.
        await dead_letter(message, "wrong_key", f"key must be {key.decode()!r}")
        return None
    existing = vote_dedup.get(key)
    verdict = judge(existing, message.partition, message.offset)
    counters[f"processor_{verdict.value}"] += 1
    if verdict is Verdict.DUPLICATE:
        return None
    # Written again on a replay too: after a SIGKILL the local store can hold an
    # entry whose changelog record was never sent; rewriting it heals the changelog.
    entry = (
        first_seen(message.partition, message.offset, int(time.time() * 1000))
        if verdict is Verdict.FIRST
        else existing
    )
    with within_partition_of(event):
        vote_dedup[key] = entry
    zone = zone_key(result["tenantId"], result["buildingId"], result["zoneId"])
    return await accepted_votes.send(
        key=zone.encode(), value=codec().encode(writer(ACCEPTED_SUBJECT), result)
    )


async def _process_batch(events: Sequence[Any]) -> None:
    deliveries = [d for d in [await _process(event) for event in events] if d is not None]
    # Every emit confirmed before the batch may be acked; a failure raises, and
    # the batch guard stops the worker so the batch is processed again.
    await asyncio.gather(*deliveries)


@app.agent(raw_votes)
async def process_votes(stream: Any) -> None:
    async for events in stream.take_events(BATCH_MAX, within=BATCH_WITHIN_S):
        await complete_batch(_process_batch, events)
