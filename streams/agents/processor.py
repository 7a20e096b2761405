"""votes.raw → votes.accepted: decode by writer schema, migrate v1→v2, validate, dedup.

Keyed `tenantId|voteUuid`, so the dedup table is co-partitioned with its input.
A record that cannot be decoded or validated goes to votes.dlq with its reason
and never blocks the partition. A registry outage is not the record's fault:
it is retried in place, never dead-lettered.
"""

from __future__ import annotations

import time
from typing import Any

from schemas.codec import DecodeError
from streams.app import accepted_votes, app, raw_votes, vote_dedup
from streams.counters import counters
from streams.dlq import dead_letter
from streams.serde import codec, decode_with_retry, writer
from streams.tables.comfort_buckets import zone_key
from streams.tables.dedup import Verdict, dedup_key, first_seen, judge
from streams.tables.vote_migration import Invalid, migrate
from streams.topics import VOTES_ACCEPTED

ACCEPTED_SUBJECT = f"{VOTES_ACCEPTED.name}-value"


@app.agent(raw_votes)
async def process_votes(stream: Any) -> None:
    async for event in stream.events():
        message = event.message
        try:
            raw = await decode_with_retry(event.value)
        except DecodeError as exc:
            await dead_letter(message, exc.code, exc.message)
            continue
        result = migrate(raw)
        if isinstance(result, Invalid):
            await dead_letter(message, result.code, result.message)
            continue
        key = dedup_key(result["tenantId"], result["voteUuid"])
        if message.key != key.encode():
            # The dedup state is only correct when a vote always lands on the
            # partition its key hashes to.
            await dead_letter(message, "wrong_key", f"key must be {key!r}")
            continue
        verdict = judge(vote_dedup.get(key.encode()), message.partition, message.offset)
        counters[f"processor_{verdict.value}"] += 1
        if verdict is Verdict.DUPLICATE:
            continue
        if verdict is Verdict.FIRST:
            vote_dedup[key.encode()] = first_seen(
                message.partition, message.offset, int(time.time() * 1000)
            )
        zone = zone_key(result["tenantId"], result["buildingId"], result["zoneId"])
        await accepted_votes.send(
            key=zone.encode(), value=codec().encode(writer(ACCEPTED_SUBJECT), result)
        )
