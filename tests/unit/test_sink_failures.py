"""How the PostgreSQL sink classifies database errors: wait, stop, or refuse the row."""

from __future__ import annotations

import psycopg
import pytest
from psycopg import errors

from sinks.timescale.pg_failures import (
    Failure,
    PermanentDatabaseError,
    classify,
    describe,
    is_row_error,
    is_transient,
)

# What libpq reports when a connection attempt fails: text only, no SQLSTATE.
REFUSED = (
    'connection failed: connection to server at "127.0.0.1", port 15432 failed: '
    "Connection refused\n\tIs the server running on that host and accepting TCP/IP connections?"
)
STARTING = (
    'connection failed: connection to server at "127.0.0.1", port 15432 failed: '
    "FATAL:  the database system is starting up"
)
BAD_PASSWORD = (
    'connection failed: connection to server at "127.0.0.1", port 15432 failed: '
    'FATAL:  password authentication failed for user "sbp_app"'
)
NO_DATABASE = (
    'connection failed: connection to server at "127.0.0.1", port 15432 failed: '
    'FATAL:  database "sbp" does not exist'
)
NO_HBA = (
    'connection failed: connection to server at "10.0.0.9", port 5432 failed: '
    'FATAL:  no pg_hba.conf entry for host "10.0.0.1", user "sbp_app", database "sbp"'
)


@pytest.mark.parametrize(
    "exc",
    [
        errors.AdminShutdown("terminating connection due to administrator command"),
        errors.CrashShutdown("terminating connection because of crash of another process"),
        errors.CannotConnectNow("the database system is starting up"),
        errors.SerializationFailure("could not serialize access"),
        errors.DeadlockDetected("deadlock detected"),
        errors.TooManyConnections("sorry, too many clients already"),
        errors.DiskFull("could not extend file"),
        errors.OutOfMemory("out of memory"),
        errors.ConnectionFailure("connection failure"),
        errors.LockNotAvailable("could not obtain lock"),
        errors.QueryCanceled("canceling statement due to statement timeout"),
        errors.IdleInTransactionSessionTimeout("terminating connection due to idle timeout"),
        psycopg.OperationalError(REFUSED),
        psycopg.OperationalError(STARTING),
        psycopg.OperationalError("consuming input failed: server closed the connection"),
        psycopg.OperationalError("the connection is lost"),
        psycopg.InterfaceError("the connection is closed"),
    ],
    ids=lambda exc: type(exc).__name__,
)
def test_an_unavailable_or_busy_database_is_waited_out(exc: psycopg.Error) -> None:
    assert classify(exc) is Failure.TRANSIENT
    assert is_transient(exc)
    assert not is_row_error(exc)


@pytest.mark.parametrize(
    "exc",
    [
        errors.InsufficientPrivilege("permission denied for table votes"),
        errors.UndefinedTable('relation "sbp.votes" does not exist'),
        errors.UndefinedColumn('column "schema_version" does not exist'),
        errors.UndefinedFunction("function sbp.ensure_vote_partitions does not exist"),
        errors.InvalidPassword('password authentication failed for user "sbp_app"'),
        errors.InvalidAuthorizationSpecification('role "sbp_app" is not permitted to log in'),
        errors.InvalidCatalogName('database "sbp" does not exist'),
        errors.InvalidSchemaName('schema "sbp" does not exist'),
        errors.FeatureNotSupported("not supported"),
        errors.RaiseException("updated partition constraint would be violated"),
        psycopg.OperationalError(BAD_PASSWORD),
        psycopg.OperationalError(NO_DATABASE),
        psycopg.OperationalError(NO_HBA),
        psycopg.ProgrammingError("cannot adapt type 'object'"),
    ],
    ids=lambda exc: type(exc).__name__,
)
def test_a_configuration_fault_stops_the_sink(exc: psycopg.Error) -> None:
    assert classify(exc) is Failure.PERMANENT
    assert not is_transient(exc)
    assert not is_row_error(exc)


@pytest.mark.parametrize(
    "exc",
    [
        errors.CheckViolation('new row violates check constraint "votes_kind_check"'),
        errors.NotNullViolation('null value in column "user_ref"'),
        errors.ForeignKeyViolation("insert violates foreign key constraint"),
        errors.NumericValueOutOfRange("smallint out of range"),
        errors.InvalidTextRepresentation("invalid input syntax for type uuid"),
        errors.InvalidDatetimeFormat("invalid input syntax for type timestamp"),
        errors.StringDataRightTruncation("value too long"),
        errors.CharacterNotInRepertoire("invalid byte sequence for encoding UTF8: 0x00"),
        # What psycopg raises itself, before sending, for a NUL in a text field.
        psycopg.DataError("PostgreSQL text fields cannot contain NUL (0x00) bytes"),
    ],
    ids=lambda exc: type(exc).__name__,
)
def test_data_the_database_refuses_is_a_row_error(exc: psycopg.Error) -> None:
    assert classify(exc) is Failure.ROW
    assert is_row_error(exc)
    assert not is_transient(exc)


@pytest.mark.parametrize(
    ("sqlstate", "expected"),
    [
        ("08006", Failure.TRANSIENT),
        ("40001", Failure.TRANSIENT),
        ("53300", Failure.TRANSIENT),
        ("57P01", Failure.TRANSIENT),
        ("58030", Failure.TRANSIENT),
        ("22P02", Failure.ROW),
        ("23514", Failure.ROW),
        ("28P01", Failure.PERMANENT),
        ("42501", Failure.PERMANENT),
        ("42P01", Failure.PERMANENT),
        ("3D000", Failure.PERMANENT),
        ("XX001", Failure.PERMANENT),
    ],
)
def test_the_class_psycopg_maps_a_sqlstate_to_is_classified_by_that_sqlstate(
    sqlstate: str, expected: Failure
) -> None:
    cls = errors.lookup(sqlstate)
    assert cls.sqlstate == sqlstate
    assert classify(cls("from the server")) is expected


def test_errors_that_are_not_from_the_database_are_neither_retried_nor_rows() -> None:
    for exc in (
        TimeoutError("slow"),
        KeyError("tenantId"),
        PermanentDatabaseError(errors.UndefinedTable("x")),
    ):
        assert not is_transient(exc)
        assert not is_row_error(exc)


def test_the_description_names_sqlstate_class_and_first_line() -> None:
    exc = errors.CheckViolation('new row violates check constraint "votes_kind_check"\nDETAIL: …')
    assert describe(exc) == (
        '23514 CheckViolation: new row violates check constraint "votes_kind_check"'
    )
    assert describe(psycopg.OperationalError(REFUSED)).startswith(
        "no-sqlstate OperationalError: connection failed"
    )


def test_a_permanent_error_keeps_its_cause_and_describes_it() -> None:
    cause = errors.InsufficientPrivilege("permission denied for table votes")
    stop = PermanentDatabaseError(cause)
    assert stop.cause is cause
    assert str(stop) == "42501 InsufficientPrivilege: permission denied for table votes"
