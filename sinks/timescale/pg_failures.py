"""What a PostgreSQL error means for a sink: wait it out, stop the process, or refuse a row.

A sink must react differently to three kinds of failure:

- **transient**: the database is away or busy (connection lost, server
  restarting, serialization failure, out of connections). The same write will
  succeed later, so it is retried inside the batch;
- **permanent**: the deployment is wrong (no privilege, a missing table or
  column, bad credentials, a missing database). No retry can fix it, so the
  sink stops loudly instead of looping;
- **row**: PostgreSQL refuses this data deterministically (a CHECK, a NOT
  NULL, a value out of range). Only the offending rows are dead-lettered.

The decision is made on the SQLSTATE class. Errors raised while *connecting*
carry no SQLSTATE (libpq reports them as text), so for those the server's
message is matched against the few startup refusals that are configuration
faults; this relies on the server's messages being in English (lc_messages C).
Any other connection error without a SQLSTATE is a lost or refused connection:
transient. Data that psycopg itself cannot send (a NUL byte in a text field)
is a row error too.
"""

from __future__ import annotations

from enum import StrEnum

import psycopg


class Failure(StrEnum):
    TRANSIENT = "transient"
    PERMANENT = "permanent"
    ROW = "row"


# SQLSTATE classes (the first two characters) and single codes. Classes not
# listed are permanent: an unknown failure stops the sink rather than spin.
_TRANSIENT_CLASSES = frozenset(
    {
        "08",  # connection exception
        "40",  # transaction rollback: serialization failure, deadlock
        "53",  # insufficient resources: disk full, out of memory, too many connections
        "57",  # operator intervention: admin/crash shutdown, cannot connect now, cancel
        "58",  # system error: I/O error
    }
)
_TRANSIENT_CODES = frozenset(
    {
        "55P03",  # lock_not_available
        "25P03",  # idle_in_transaction_session_timeout
    }
)
_ROW_CLASSES = frozenset(
    {
        "22",  # data exception: out of range, invalid text representation, …
        "23",  # integrity constraint violation (the conflict we expect is DO NOTHING'd)
    }
)

# Startup refusals that no retry fixes (they arrive without a SQLSTATE).
_CONNECT_CONFIG_FAULTS = (
    "authentication failed",
    "does not exist",
    "no pg_hba.conf entry",
    "permission denied for database",
    "is not permitted to log in",
)


def classify(exc: psycopg.Error) -> Failure:
    sqlstate = exc.sqlstate
    if sqlstate is None:
        message = str(exc)
        if isinstance(exc, psycopg.OperationalError) and any(
            fault in message for fault in _CONNECT_CONFIG_FAULTS
        ):
            return Failure.PERMANENT
        if isinstance(exc, psycopg.OperationalError | psycopg.InterfaceError):
            return Failure.TRANSIENT
        if isinstance(exc, psycopg.DataError | psycopg.IntegrityError):
            # Refused by psycopg before it reached the server, e.g. a NUL byte
            # in a text field: the row's data, not the deployment.
            return Failure.ROW
        # A client-side ProgrammingError, NotSupportedError …: a bug, not the weather.
        return Failure.PERMANENT
    if sqlstate in _TRANSIENT_CODES or sqlstate[:2] in _TRANSIENT_CLASSES:
        return Failure.TRANSIENT
    if sqlstate[:2] in _ROW_CLASSES:
        return Failure.ROW
    return Failure.PERMANENT


def is_transient(exc: BaseException) -> bool:
    return isinstance(exc, psycopg.Error) and classify(exc) is Failure.TRANSIENT


def is_row_error(exc: BaseException) -> bool:
    return isinstance(exc, psycopg.Error) and classify(exc) is Failure.ROW


def describe(exc: BaseException) -> str:
    """One line for a log or a dead letter: SQLSTATE, class name and message."""
    sqlstate = getattr(exc, "sqlstate", None) or "no-sqlstate"
    text = str(exc).strip()
    first_line = text.splitlines()[0] if text else ""
    return f"{sqlstate} {type(exc).__name__}: {first_line}"


class PermanentDatabaseError(RuntimeError):
    """The database refuses the sink for a reason no retry fixes; the process stops."""

    code = "pg_permanent"

    def __init__(self, cause: psycopg.Error) -> None:
        super().__init__(describe(cause))
        self.cause = cause
