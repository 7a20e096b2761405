"""Batch writer for `sbp.votes`: one COPY + one upsert per tenant per batch.

COPY into a table with row-level security is refused, so each batch is COPY'd
into a temporary table and moved with `INSERT … ON CONFLICT DO NOTHING`. The
conflict target is the primary key (tenant_id, vote_uuid, client_ts), so a vote
re-emitted after a crash, or a batch retried after an outage, is stored once.
Each tenant's rows go in their own transaction with `app.tenant_id` set, which
the RLS policy checks.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg

COLUMNS = (
    "tenant_id",
    "vote_uuid",
    "building_id",
    "zone_id",
    "kind",
    "value",
    "preference",
    "user_ref",
    "client_ts",
    "received_at",
    "late",
    "device_id",
    "app_version",
    "comment_cipher",
    "schema_version",
)
_COLS = ", ".join(COLUMNS)


def to_row(vote: Mapping[str, Any]) -> tuple[Any, ...]:
    return (
        vote["tenantId"],
        vote["voteUuid"],
        vote["buildingId"],
        vote["zoneId"],
        vote["kind"],
        vote["value"],
        vote.get("preference"),
        vote["userRef"],
        vote["clientTs"],
        vote["receivedAt"],
        vote["late"],
        vote.get("deviceId"),
        vote.get("appVersion"),
        vote.get("commentCipher"),
        vote["sourceSchemaVersion"],
    )


def by_tenant(rows: Iterable[tuple[Any, ...]]) -> dict[str, list[tuple[Any, ...]]]:
    groups: dict[str, list[tuple[Any, ...]]] = defaultdict(list)
    for row in rows:
        groups[row[0]].append(row)
    return groups


async def ensure_partitions(conn: psycopg.AsyncConnection[Any], now: datetime | None = None) -> int:
    """Monthly partitions from last month to a year ahead (votes older than 7 days are refused)."""
    start = (now or datetime.now(UTC)).replace(day=1) - timedelta(days=1)
    cur = await conn.execute(
        "SELECT sbp.ensure_vote_partitions(%s::date, 14)", (start.replace(day=1).date(),)
    )
    row = await cur.fetchone()
    await conn.commit()
    return int(row[0]) if row else 0


async def write_votes(conn: psycopg.AsyncConnection[Any], rows: Sequence[tuple[Any, ...]]) -> int:
    """Store the rows; returns how many were new. Raises on any failure (nothing half-done)."""
    inserted = 0
    for tenant_id, tenant_rows in by_tenant(rows).items():
        async with conn.transaction():
            await conn.execute("SELECT set_config('app.tenant_id', %s, true)", (tenant_id,))
            await conn.execute(
                "CREATE TEMP TABLE IF NOT EXISTS votes_in "
                "(LIKE sbp.votes INCLUDING DEFAULTS) ON COMMIT DELETE ROWS"
            )
            async with conn.cursor().copy(f"COPY votes_in ({_COLS}) FROM STDIN") as copy:
                for row in tenant_rows:
                    await copy.write_row(row)
            cur = await conn.execute(
                f"INSERT INTO sbp.votes ({_COLS}) SELECT {_COLS} FROM votes_in "
                "ON CONFLICT DO NOTHING"
            )
            inserted += cur.rowcount
    return inserted
