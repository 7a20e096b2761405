"""The operator log: one append-only row per executed change (migration 0008): an offset
reset, a DLQ reprocess, a range re-drive.

Written as the `replay` PostgreSQL role, which may INSERT into `ops.operator_log` and
do nothing else, so a stolen replay credential can neither read the log nor rewrite it.

Ordering, so no reset goes unrecorded: the row is inserted first, in an open
transaction; the Kafka change runs; then the transaction commits. A refused insert
(database down, no privilege) stops before Kafka is touched; a failed Kafka change
rolls the row back. Only a commit lost after Kafka applied the change leaves a
change without its row, and that is reported as such (exit 9) so the operator
records it by hand.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import psycopg

from identity.principal import Principal
from replay.errors import ReplayError
from replay.exit_codes import ExitCode
from sbp.settings import Settings

CONNECT_TIMEOUT_S = 10


@dataclass(frozen=True)
class LogEntry:
    principal: Principal
    action: str
    group: str
    topic: str
    detail: dict[str, Any]


class OperatorLogTransaction:
    """One transaction as the replay role: a log row, and whatever must commit with it
    (the re-drive ledger's runs). Commits only through `commit()`; leaving the block
    any other way rolls back."""

    def __init__(self, settings: Settings) -> None:
        try:
            self.connection = psycopg.connect(
                settings.pg_dsn("replay"), connect_timeout=CONNECT_TIMEOUT_S
            )
        except psycopg.Error as exc:
            raise _not_logged(exc) from None

    def __enter__(self) -> OperatorLogTransaction:
        return self

    def __exit__(self, *exc_info: object) -> None:
        # Rolls back whatever `commit()` did not commit, then closes.
        self.connection.rollback()
        self.connection.close()

    def record(self, entry: LogEntry) -> None:
        try:
            self.connection.execute(
                "INSERT INTO ops.operator_log"
                " (tenant_id, user_id, token_id, action, consumer_group, topic, detail)"
                " VALUES (%s, %s, %s, %s, %s, %s, %s::jsonb)",
                (
                    entry.principal.tenant_id,
                    entry.principal.user_id,
                    entry.principal.token_id,
                    entry.action,
                    entry.group,
                    entry.topic,
                    json.dumps(entry.detail),
                ),
            )
        except psycopg.Error as exc:
            raise _not_logged(exc) from None

    def commit(self, entry: LogEntry) -> None:
        """Commit after Kafka changed; a lost commit is reported as such (exit 9)."""
        try:
            self.connection.commit()
        except psycopg.Error as exc:
            raise ReplayError(
                ExitCode.APPLIED_NOT_LOGGED,
                f"Kafka was changed but the operator log row was lost ({exc}); "
                f"record this {entry.action} by hand: {json.dumps(entry.detail)}",
            ) from None


def record_and_apply(settings: Settings, entry: LogEntry, apply: Callable[[], None]) -> None:
    """Run `apply` inside the transaction that logs it; see the module docstring."""
    with OperatorLogTransaction(settings) as log:
        log.record(entry)
        apply()
        log.commit(entry)


def _not_logged(exc: psycopg.Error) -> ReplayError:
    first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return ReplayError(
        ExitCode.OPERATOR_LOG,
        f"the operator log cannot be written ({first_line}); nothing was changed",
    )
