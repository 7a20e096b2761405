"""The re-drive ledger (migration 0009): the runs of votes.dlq offsets already
re-driven, read and extended in the operator-log transaction of a reprocess.

A transaction-scoped advisory lock, taken before the ledger is read, makes two
reprocesses run one after the other: the second reads the first's runs only once
they are committed, so no letter is re-driven twice by racing operators.
"""

from __future__ import annotations

import uuid
from typing import Any

import psycopg

from replay.errors import ReplayError
from replay.exit_codes import ExitCode
from replay.redrive_runs import RedrivenOffsets, Run

# Any constant; it names "the DLQ reprocess" among the database's advisory locks.
REPROCESS_LOCK = 0x5B_D1_0E_00


def lock_and_read(connection: psycopg.Connection[Any], topic: str) -> RedrivenOffsets:
    try:
        connection.execute("SELECT pg_advisory_xact_lock(%s)", (REPROCESS_LOCK,))
        rows = connection.execute(
            "SELECT dlq_partition, first_offset, last_offset FROM ops.dlq_redrive"
            " WHERE dlq_topic = %s",
            (topic,),
        ).fetchall()
    except psycopg.Error as exc:
        raise ReplayError(
            ExitCode.OPERATOR_LOG,
            f"the re-drive ledger cannot be read ({_first_line(exc)}); nothing was changed",
        ) from None
    return RedrivenOffsets(Run(int(p), int(first), int(last)) for p, first, last in rows)


def record(
    connection: psycopg.Connection[Any],
    redrive_id: uuid.UUID,
    topic: str,
    runs: list[Run],
) -> None:
    """Add the runs; raises psycopg.Error for the caller to report (Kafka already changed)."""
    with connection.cursor() as cursor:
        cursor.executemany(
            "INSERT INTO ops.dlq_redrive (redrive_id, dlq_topic, dlq_partition, first_offset,"
            " last_offset) VALUES (%s, %s, %s, %s, %s)",
            [(redrive_id, topic, r.partition, r.first, r.last) for r in runs],
        )


def _first_line(exc: psycopg.Error) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
