"""Storing a batch of accepted votes in PostgreSQL `sbp.votes`.

Called by the votes.accepted agent (streams/agents/aggregator.py) for every
batch it reads, so one stream consumes the topic: with a second agent on the
same topic, the lagging one was seen to lose records at worker start (faust
skips and acks events its flow control holds back), while the first kept them.

The batch is acked by faust even when its body fails, so the write is retried
*inside* the batch until it succeeds: a PostgreSQL outage delays the batch, it
never drops it. Only a row PostgreSQL refuses deterministically (a data or
constraint error) is dead-lettered, found by retrying the batch row by row.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import Any

import psycopg

from sbp.settings import get_settings
from sinks.timescale.connection import ReconnectingConnection
from sinks.timescale.vote_writer import ensure_partitions, to_row, write_votes
from streams.counters import counters
from streams.dlq import dead_letter

log = logging.getLogger(__name__)
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


async def store_votes(votes: Sequence[tuple[dict[str, Any], Any]]) -> None:
    """Store (vote, source message) pairs; returns once they are durable."""
    rows = [to_row(vote) for vote, _message in votes]
    if not rows:
        return
    try:
        await _write_until_durable(rows)
    except _DETERMINISTIC:
        await _db.reset()
        for row, (_vote, message) in zip(rows, votes, strict=True):
            try:
                await _write_until_durable([row])
            except _DETERMINISTIC as exc:
                await _db.reset()
                await dead_letter(message, "db_rejected", f"{type(exc).__name__}: {exc}")
