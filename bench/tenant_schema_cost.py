"""What a schema per tenant costs: creating a tenant, and the sink's write of a batch.

1. Creating a tenant as the tenant service does (its row, default settings, outbox
   rows, and now its own schema with every tenant migration), N times, against the
   simplest thing that does the same job without a schema: the same transaction
   with `sbp.provision_tenant_schema` left out. Both are rolled back, so the run
   leaves nothing behind; the ratio is what to read on a shared machine.
2. The sink's write of one 500-vote batch into the tenant's `votes` (COPY into the
   staging table, then `INSERT … SELECT … ON CONFLICT DO NOTHING`), as the sink's
   role, N times, each rolled back: the per-tenant lookup is cached by the sink, so
   this is the steady-state cost.

Run: `.venv/bin/python -m bench.tenant_schema_cost`
"""

from __future__ import annotations

import argparse
import statistics
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import psycopg

from bench.machine import describe_machine
from bench.tenant import fresh_tenant, require_loopback
from sbp.settings import Settings, get_settings
from sinks.timescale.vote_writer import prepare_session, store_tenant_votes, tenant_schema


def _timed(runs: int, once: Callable[[], None]) -> list[float]:
    took = []
    for _ in range(runs):
        start = time.perf_counter()
        once()
        took.append((time.perf_counter() - start) * 1000)
    return took


def _create(settings: Settings, with_schema: bool) -> None:
    tenant_id = f"bench-{uuid.uuid4().hex[:12]}"
    with (
        psycopg.connect(settings.pg_dsn("admin")) as conn,
        conn.transaction(force_rollback=True),
    ):
        conn.execute("SELECT set_config('app.tenant_id', %s, true)", (tenant_id,))
        conn.execute("INSERT INTO sbp.tenants (tenant_id, name) VALUES (%s, %s)", (tenant_id, "b"))
        if with_schema:
            conn.execute("SELECT sbp.provision_tenant_schema(%s)", (tenant_id,))
        conn.execute(
            "INSERT INTO sbp.tenant_settings (tenant_id, version, settings)"
            " VALUES (%s, 1, '{}'::jsonb)",
            (tenant_id,),
        )
        conn.execute(
            "INSERT INTO sbp.outbox (tenant_id, topic, record_key, payload)"
            " VALUES (%s, 'config.tenant-settings', %s, '{}'::jsonb)",
            (tenant_id, tenant_id),
        )


def _rows(tenant_id: str, n: int) -> list[tuple[Any, ...]]:
    now = datetime.now(UTC)
    # (tenant, vote, building, zone, kind, value, preference, userRef, clientTs,
    #  receivedAt, late, deviceId, appVersion, comment, schemaVersion)
    return [
        (
            tenant_id,
            uuid.uuid4(),
            "b1",
            "z1",
            "air",
            1,
            None,
            f"ref-{i}",
            now,
            now,
            False,
            *NO_DEVICE,
        )
        for i in range(n)
    ]


NO_DEVICE = (None, None, None, 2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tenants", type=int, default=30)
    parser.add_argument("--batches", type=int, default=30)
    parser.add_argument("--batch-size", type=int, default=500)
    args = parser.parse_args()
    settings = get_settings()
    require_loopback(settings)
    print(describe_machine())

    with_schema = _timed(args.tenants, lambda: _create(settings, True))
    without = _timed(args.tenants, lambda: _create(settings, False))
    print(
        f"create a tenant, {args.tenants} each: with its schema median"
        f" {statistics.median(with_schema):.1f} ms (max {max(with_schema):.1f}),"
        f" without {statistics.median(without):.1f} ms;"
        f" ratio {statistics.median(with_schema) / statistics.median(without):.1f}x"
    )

    tenant = fresh_tenant(settings)
    rows = _rows(tenant.tenant_id, args.batch_size)
    with psycopg.connect(settings.pg_dsn("sink"), autocommit=True) as conn:
        prepare_session(conn)
        schema = tenant_schema(conn, tenant.tenant_id)
        assert schema is not None

        def write() -> None:
            # A rolled-back batch: every run inserts the same new rows.
            try:
                with conn.transaction():
                    store_tenant_votes(conn, schema, tenant.tenant_id, rows)
                    raise _Rollback
            except _Rollback:
                pass

        took = _timed(args.batches, write)
    per_vote_us = statistics.median(took) * 1000 / args.batch_size
    print(
        f"sink write of {args.batch_size} votes into {schema}.votes, {args.batches} batches:"
        f" median {statistics.median(took):.1f} ms ({per_vote_us:.0f} µs a vote)"
    )


class _Rollback(Exception):
    pass


if __name__ == "__main__":
    main()
