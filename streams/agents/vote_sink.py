"""votes.accepted → PostgreSQL `sbp.votes`, in batches.

`take_events()` acks its batch in a `finally`, even when the body fails, so the
write is retried *inside* the batch until it succeeds: a PostgreSQL outage
delays the batch, it never drops it. Only a row PostgreSQL refuses
deterministically (a data or constraint error) is dead-lettered, found by
retrying the batch row by row. Undecodable records are dead-lettered by the
aggregator, which reads the same topic; this agent skips them.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import Any

import psycopg

from sbp.settings import get_settings
from schemas.codec import DecodeError
from sinks.timescale.connection import ReconnectingConnection
from sinks.timescale.vote_writer import ensure_partitions, to_row, write_votes
from streams.app import accepted_votes, app
from streams.batch_guard import complete_batch
from streams.counters import counters
from streams.dlq import dead_letter
from streams.serde import decode_with_retry
from streams.tables.vote_migration import accepted_shape_error

log = logging.getLogger(__name__)
BATCH_MAX = 2000
BATCH_WITHIN_S = 0.5
_DETERMINISTIC = (psycopg.errors.DataError, psycopg.errors.IntegrityError)


_db = ReconnectingConnection(get_settings().pg_dsn("app"), on_connect=ensure_partitions)


async def _write_until_durable(rows: list[tuple[Any, ...]]) -> None:
    delay = 0.2
    while True:
        conn = await _db.get_retrying()
        try:
            inserted = await write_votes(conn, rows)
            counters["sink_inserted"] += inserted
            counters["sink_replayed"] += len(rows) - inserted
            return
        except _DETERMINISTIC:
            raise
        except psycopg.Error as exc:
            log.warning("vote batch of %d not stored, retrying in %.1fs: %s", len(rows), delay, exc)
            await _db.reset()
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)


async def _sink(events: Sequence[Any]) -> None:
    rows: list[tuple[Any, ...]] = []
    sources: list[Any] = []
    for event in events:
        try:
            vote = await decode_with_retry(event.value)
        except DecodeError:
            continue
        if accepted_shape_error(vote) is not None:
            continue  # the aggregator dead-letters it
        rows.append(to_row(vote))
        sources.append(event.message)
    if not rows:
        return
    try:
        await _write_until_durable(rows)
    except _DETERMINISTIC:
        await _db.reset()
        for row, message in zip(rows, sources, strict=True):
            try:
                await _write_until_durable([row])
            except _DETERMINISTIC as exc:
                await _db.reset()
                await dead_letter(message, "db_rejected", f"{type(exc).__name__}: {exc}")


@app.agent(accepted_votes)
async def sink_votes(stream: Any) -> None:
    async for events in stream.take_events(BATCH_MAX, within=BATCH_WITHIN_S):
        await complete_batch(_sink, events)
