"""Batch writer for each tenant's `votes`: one COPY + one upsert per tenant per batch.

Every tenant has its own schema (sinks/timescale/tenant_migrations/), found with
`sbp.tenant_schema`. COPY into a table with row-level security is refused, so each
batch is COPY'd into a temporary table and moved with `INSERT … ON CONFLICT DO
NOTHING` into `<tenant schema>.votes`. The conflict target is the primary key
(tenant_id, vote_uuid, client_ts), so a vote re-emitted after a crash, or a batch
retried after an outage, is stored once. Each tenant's rows go in their own
transaction with `app.tenant_id` set, which the RLS policy checks.

The PostgreSQL sink process (sinks/timescale/sink_worker.py) is the writer's
caller; it is a synchronous loop, so these functions take a synchronous
connection.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any

import psycopg
from psycopg import sql

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

# Months of partitions kept ahead per tenant, from the month before `now`; made again
# whenever the month turns, so a long-running sink never writes into the default one.
PARTITION_MONTHS = 4

_SCHEMA_OF = "SELECT sbp.tenant_schema(%s)"
_ENSURE_PARTITIONS = "SELECT sbp.ensure_tenant_vote_partitions(%s, %s::date, %s)"
_SET_TENANT = "SELECT set_config('app.tenant_id', %s, true)"
# Session-local staging table; ON COMMIT DELETE ROWS empties it after every batch.
# Its columns are spelled out rather than copied with LIKE <schema>.votes, which would
# need SELECT on the votes table: the sink's role may only insert votes.
_CREATE_STAGING = (
    "CREATE TEMP TABLE IF NOT EXISTS votes_in ("
    "tenant_id text, vote_uuid uuid, building_id text, zone_id text, kind text,"
    " value smallint, preference text, user_ref text, client_ts timestamptz,"
    " received_at timestamptz, late boolean, device_id text, app_version text,"
    " comment_cipher bytea, schema_version smallint) ON COMMIT DELETE ROWS"
)
_COPY_STAGING = f"COPY votes_in ({_COLS}) FROM STDIN"
_MOVE_STAGED = (
    f"INSERT INTO {{}}.votes ({_COLS}) SELECT {_COLS} FROM votes_in ON CONFLICT DO NOTHING"
)


def to_row(vote: Mapping[str, Any]) -> tuple[Any, ...]:
    """A votes.accepted record as a `COLUMNS` row; KeyError if it is not such a record."""
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


def first_partition_month(now: datetime | None = None) -> date:
    """The first day of the month before `now` (votes older than 7 days are refused)."""
    return ((now or datetime.now(UTC)).replace(day=1) - timedelta(days=1)).replace(day=1).date()


def prepare_session(conn: psycopg.Connection[Any]) -> None:
    """Create the session's staging table; on an autocommit connection, right after
    connecting."""
    conn.execute(_CREATE_STAGING)


def tenant_schema(conn: psycopg.Connection[Any], tenant_id: str) -> str | None:
    """The tenant's schema, or None if the tenant has none (it was never created)."""
    row = conn.execute(_SCHEMA_OF, (tenant_id,)).fetchone()
    return None if row is None or row[0] is None else str(row[0])


def ensure_partitions(conn: psycopg.Connection[Any], tenant_id: str, first_month: date) -> int:
    """Create the tenant's monthly partitions from `first_month` on that are missing;
    returns how many were created."""
    row = conn.execute(_ENSURE_PARTITIONS, (tenant_id, first_month, PARTITION_MONTHS)).fetchone()
    return int(row[0]) if row else 0


def store_tenant_votes(
    conn: psycopg.Connection[Any], schema: str, tenant_id: str, rows: Sequence[tuple[Any, ...]]
) -> int:
    """Store one tenant's rows in its schema, in one transaction; returns how many
    were new.

    Raises on any failure, and then nothing of these rows was stored.
    """
    move = sql.SQL(_MOVE_STAGED).format(sql.Identifier(schema))
    with conn.transaction():
        conn.execute(_SET_TENANT, (tenant_id,))
        with conn.cursor() as cur:
            with cur.copy(_COPY_STAGING) as copy:
                for row in rows:
                    copy.write_row(row)
            cur.execute(move)
            return cur.rowcount
