"""The PostgreSQL sink's batch bookkeeping: rows per tenant, rejected rows, offsets to commit."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from psycopg import errors

from sinks.timescale.pg_failures import is_row_error
from sinks.timescale.sink_batch import (
    PendingVote,
    commit_positions,
    group_by_tenant,
    write_isolating_rejects,
)


def pending(tenant: str, n: int, source: str) -> PendingVote[str]:
    return PendingVote((tenant, f"uuid-{n}", "b1", "z1"), source)


def test_rows_are_grouped_per_tenant_keeping_their_order() -> None:
    items = [
        pending("acme", 1, "p0@1"),
        pending("globex", 2, "p0@2"),
        pending("acme", 3, "p1@7"),
        pending("acme", 4, "p0@3"),
        pending("globex", 5, "p2@9"),
    ]
    groups = group_by_tenant(items)
    assert list(groups) == ["acme", "globex"]
    assert [i.source for i in groups["acme"]] == ["p0@1", "p1@7", "p0@3"]
    assert [i.source for i in groups["globex"]] == ["p0@2", "p2@9"]


def test_no_rows_no_groups() -> None:
    assert group_by_tenant([]) == {}


def test_the_commit_offset_is_one_past_the_highest_offset_read_per_partition() -> None:
    positions = [
        ("votes.accepted", 0, 10),
        ("votes.accepted", 3, 7),
        ("votes.accepted", 0, 12),
        ("votes.accepted", 0, 11),
        ("votes.accepted", 3, 5),
    ]
    assert commit_positions(positions) == {("votes.accepted", 0): 13, ("votes.accepted", 3): 8}


def test_a_partition_whose_only_record_is_at_offset_zero_commits_one() -> None:
    assert commit_positions([("votes.accepted", 5, 0)]) == {("votes.accepted", 5): 1}


class FakeTable:
    """Stores chunks atomically like one transaction; refuses any chunk holding a bad row."""

    def __init__(self, bad: set[int], present: set[int] | None = None) -> None:
        self.bad = bad
        self.rows: set[int] = set(present or ())
        self.stored_twice: list[int] = []
        self.writes = 0

    def write(self, chunk: Sequence[int]) -> int:
        self.writes += 1
        refused = [row for row in chunk if row in self.bad]
        if refused:
            raise errors.CheckViolation(f"row {refused[0]} violates check constraint")
        new = [row for row in chunk if row not in self.rows]
        self.rows.update(new)
        return len(new)


def test_a_clean_chunk_is_written_once() -> None:
    table = FakeTable(bad=set())
    outcome = write_isolating_rejects(list(range(2000)), table.write, is_row_error)
    assert (outcome.inserted, outcome.rejected, outcome.attempts) == (2000, [], 1)
    assert table.rows == set(range(2000))


def test_rows_already_present_are_not_counted_as_inserted() -> None:
    table = FakeTable(bad=set(), present={1, 2, 3})
    outcome = write_isolating_rejects([0, 1, 2, 3, 4], table.write, is_row_error)
    assert outcome.inserted == 2
    assert table.rows == {0, 1, 2, 3, 4}


def test_one_refused_row_is_isolated_and_the_rest_stored() -> None:
    table = FakeTable(bad={1234})
    outcome = write_isolating_rejects(list(range(2000)), table.write, is_row_error)
    assert [row for row, _exc in outcome.rejected] == [1234]
    assert isinstance(outcome.rejected[0][1], errors.CheckViolation)
    assert table.rows == set(range(2000)) - {1234}
    assert outcome.inserted == 1999
    # A halving per level down to the single row, two writes a level.
    assert outcome.attempts <= 1 + 2 * math.ceil(math.log2(2000))


@given(
    n=st.integers(min_value=1, max_value=300),
    bad_fraction=st.lists(st.floats(min_value=0, max_value=0.999), max_size=12),
)
def test_every_good_row_is_stored_and_only_the_bad_ones_are_rejected(
    n: int, bad_fraction: list[float]
) -> None:
    bad = {int(f * n) for f in bad_fraction}
    table = FakeTable(bad=bad)
    outcome = write_isolating_rejects(list(range(n)), table.write, is_row_error)
    assert table.rows == set(range(n)) - bad
    assert outcome.inserted == n - len(bad)
    assert sorted(row for row, _exc in outcome.rejected) == sorted(bad)
    assert outcome.attempts == table.writes
    if bad:
        assert outcome.attempts <= 1 + 2 * len(bad) * max(1, math.ceil(math.log2(n)))


@pytest.mark.parametrize(
    "failure",
    [
        errors.AdminShutdown("terminating connection due to administrator command"),
        errors.InsufficientPrivilege("permission denied for table votes"),
    ],
    ids=lambda exc: type(exc).__name__,
)
def test_a_failure_that_is_not_about_the_data_is_not_bisected(failure: Exception) -> None:
    calls: list[int] = []

    def write(chunk: Sequence[Any]) -> int:
        calls.append(len(chunk))
        raise failure

    with pytest.raises(type(failure)):
        write_isolating_rejects([1, 2, 3, 4], write, is_row_error)
    assert calls == [4]


def test_an_empty_batch_writes_nothing() -> None:
    table = FakeTable(bad=set())
    outcome = write_isolating_rejects(list[int](), table.write, is_row_error)
    assert (outcome.inserted, outcome.attempts, table.writes) == (0, 0, 0)
