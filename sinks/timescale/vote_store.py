"""The sink's side of PostgreSQL: one connection, retried writes, rejected rows set apart.

The sink process is a synchronous loop, so it holds one synchronous
connection (autocommit, so each `conn.transaction()` is a real BEGIN/COMMIT),
opened on demand and dropped after any transient failure; the next attempt
reconnects at once, with no pool back-off lagging behind a recovered server.
Every write goes through the one retry policy, and every error is classified
(sinks/timescale/pg_failures.py):

- transient: retried inside the batch until it succeeds or the process stops;
- permanent: raised as `PermanentDatabaseError`, which stops the process;
- row: the chunk is halved until the refused rows stand alone; they are
  returned as rejected and everything else is stored.

Each tenant's votes go to its own schema. The store remembers the schema of the
tenants it wrote for (bounded, least recently used out first) and the month it last
made their partitions ahead for, so a batch costs one extra round trip only for a
tenant it has not seen, or on the first batch of a month. A tenant without a schema
(never created through the tenant service) has its rows returned as rejected with
`UnknownTenant`, so they reach the DLQ and never stop the sink.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from datetime import date
from typing import Any, TypeVar

import psycopg

from sinks.timescale.pg_failures import (
    Failure,
    PermanentDatabaseError,
    classify,
    describe,
    is_row_error,
    is_transient,
)
from sinks.timescale.retry_policy import until_success
from sinks.timescale.sink_batch import PendingVote, WriteOutcome, write_isolating_rejects
from sinks.timescale.vote_writer import (
    ensure_partitions,
    first_partition_month,
    prepare_session,
    store_tenant_votes,
    tenant_schema,
)

log = logging.getLogger(__name__)
S = TypeVar("S")

CONNECT_TIMEOUT_S = 3
# Tenants whose schema the store remembers; past this, the least recently written is
# looked up again when it next has votes.
SCHEMA_CACHE_SIZE = 10_000


class UnknownTenant(Exception):
    """Votes of a tenant that has no schema: never created, so nowhere to store them."""

    def __init__(self, tenant_id: str) -> None:
        super().__init__(f"tenant {tenant_id!r} has no schema (it was never created)")


class VoteStore:
    def __init__(
        self,
        dsn: str,
        stop: threading.Event,
        on_retry: Callable[[], None] = lambda: None,
        on_health: Callable[[bool], None] = lambda healthy: None,
    ) -> None:
        self._dsn = dsn
        self._conn: psycopg.Connection[Any] | None = None
        self._retrying = until_success("postgres", is_transient, stop, on_retry)
        self._on_health = on_health
        self._healthy = False
        # tenant → (schema, the month its partitions were last made ahead from).
        self._schemas: OrderedDict[str, tuple[str, date]] = OrderedDict()

    @property
    def healthy(self) -> bool:
        """Whether the last exchange with the database succeeded (for readiness)."""
        return self._healthy

    def _set_healthy(self, healthy: bool) -> None:
        if healthy != self._healthy:
            self._healthy = healthy
            # Called as it changes, so readiness turns 503 while a batch waits.
            self._on_health(healthy)

    def open(self) -> None:
        """Connect and prepare the session, waiting out a database that is not up yet."""
        self._retrying(self._attempt, lambda conn: None)

    def ping(self) -> bool:
        """One attempt, no retry: is the database answering? (For an idle sink's readiness.)"""
        try:
            self._attempt(lambda conn: conn.execute("SELECT 1"))
        except psycopg.Error:
            return False
        return True

    def store(
        self, tenant_id: str, items: Sequence[PendingVote[S]]
    ) -> WriteOutcome[PendingVote[S]]:
        """Store one tenant's rows durably; rows PostgreSQL refuses are returned, not stored."""

        schema = self._schema_of(tenant_id)
        if schema is None:
            refusal = UnknownTenant(tenant_id)
            return WriteOutcome(rejected=[(item, refusal) for item in items])

        def write(chunk: Sequence[PendingVote[S]]) -> int:
            rows = [item.row for item in chunk]
            inserted: int = self._retrying(
                self._attempt, lambda conn: store_tenant_votes(conn, schema, tenant_id, rows)
            )
            return inserted

        return write_isolating_rejects(items, write, is_row_error)

    def _schema_of(self, tenant_id: str) -> str | None:
        """The tenant's schema, its partitions made ahead for the current month."""
        month = first_partition_month()
        known = self._schemas.get(tenant_id)
        if known is not None and known[1] == month:
            self._schemas.move_to_end(tenant_id)
            return known[0]

        def resolve(conn: psycopg.Connection[Any]) -> str | None:
            schema = tenant_schema(conn, tenant_id)
            if schema is not None:
                created = ensure_partitions(conn, tenant_id, month)
                if created:
                    log.info("created %d vote partitions ahead for %s", created, schema)
            return schema

        try:
            found: str | None = self._retrying(self._attempt, resolve)
        except psycopg.Error as exc:
            # Only a row-class error gets here (the others are retried or already
            # permanent), e.g. a month that cannot be attached over rows the default
            # partition holds: the schema's state, never the batch's data.
            self._set_healthy(False)
            raise PermanentDatabaseError(exc) from exc
        if found is None:
            # Not remembered: a tenant created later is found on its next batch.
            return None
        self._schemas[tenant_id] = (found, month)
        self._schemas.move_to_end(tenant_id)
        while len(self._schemas) > SCHEMA_CACHE_SIZE:
            self._schemas.popitem(last=False)
        return found

    def close(self) -> None:
        self._reset()

    def _attempt(self, work: Callable[[psycopg.Connection[Any]], Any]) -> Any:
        try:
            result = work(self._connection())
        except psycopg.Error as exc:
            kind = classify(exc)
            if kind is Failure.PERMANENT:
                self._set_healthy(False)
                self._reset()
                raise PermanentDatabaseError(exc) from exc
            if kind is Failure.TRANSIENT:
                if self._healthy:
                    log.warning("postgres unavailable: %s", describe(exc))
                self._set_healthy(False)
                self._reset()
            # A row error rolled its transaction back; the connection stays usable.
            raise
        if not self._healthy:
            log.info("postgres answering")
        self._set_healthy(True)
        return result

    def _connection(self) -> psycopg.Connection[Any]:
        if self._conn is None or self._conn.closed:
            self._conn = None
            conn = psycopg.connect(self._dsn, autocommit=True, connect_timeout=CONNECT_TIMEOUT_S)
            try:
                prepare_session(conn)
            except BaseException:
                conn.close()
                raise
            self._conn = conn
        return self._conn

    def _reset(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None and not conn.closed:
            conn.close()
